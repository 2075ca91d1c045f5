//! Uploads through the gate's write routes with the unchanged `huggingface_hub` client (LFS
//! path, `HF_HUB_DISABLE_XET=1`): admitted, refused with the reason, tokens and namespaces,
//! bad input and the red-team questions (cli/tests/hf/upload_client.py), against one
//! `weightgate serve` over a folder store.

use crate::common;
use crate::support::serve;

use std::fs;
use std::path::Path;

use common::{copy_dir, run, td, testdata};
use serve::Server;

fn token(store: &Path, name: &str, write: &str) -> String {
    let t = common::write_token(store, name, &[write]);
    assert!(t.starts_with("wg_") && t.len() == 67, "{t}");
    t
}

fn attest(dir: &Path, key: &str) {
    let r = run([
        "attest",
        dir.to_str().unwrap(),
        "--key",
        &td(&format!("keys/{key}.key")),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn hf_upload_through_the_gate_is_judged_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    let tiny = testdata().join("checkpoints/tiny");
    copy_dir(&tiny, &p("good"));
    attest(&p("good"), "test-lab");
    copy_dir(&p("good"), &p("tampered"));
    let shard = p("tampered/model-00002-of-00002.safetensors");
    let mut bytes = fs::read(&shard).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&shard, bytes).unwrap();
    copy_dir(&tiny, &p("unattested"));
    copy_dir(&tiny, &p("other-lab"));
    attest(&p("other-lab"), "test-other");
    let policy = format!(
        "[policy]\nname = \"uploads\"\n\
         [[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n\
         [[trusted_key]]\nname = \"other\"\npath = \"{}\"\n\
         [[namespace]]\nname = \"lab\"\nkeys = [\"lab\"]\n\
         [[namespace]]\nname = \"other\"\nkeys = [\"other\"]\n",
        td("keys/test-lab.pub"),
        td("keys/test-other.pub")
    );
    fs::write(p("policy.toml"), policy).unwrap();
    let store = p("store");
    let lab = token(&store, "lab-ci", "lab");
    let other = token(&store, "other-ci", "other");
    // Only the hash is stored.
    let stored: String = fs::read_dir(store.join("tokens"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(!stored.contains(&lab[3..]) && stored.contains("lab-ci"));

    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args(["--policy", p("policy.toml").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--upload-idle-timeout", "1"]);
    let server = Server::spawn(cmd);
    let out = std::process::Command::new(common::python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf/upload_client.py"))
        .args([&server.url(), store.to_str().unwrap()])
        .args(["good", "tampered", "unattested", "other-lab"].map(&p))
        .args([&lab, &other, p("work").to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS ").count(), 12, "{stdout}");
    // Tokens never reach the log; their names do.
    let audit = fs::read_to_string(store.join("audit.log")).unwrap();
    assert!(!audit.contains(&lab) && !audit.contains(&other));
    assert!(audit.contains("\"token\":\"lab-ci\""));
    assert!(!server.log_has(&lab[3..]));
}

/// `weightgate push`: the LFS path without Python; the second push of the same shards sends no
/// bytes; a refusal exits 1 with the reason code.
#[test]
fn weightgate_push_is_judged_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    copy_dir(&testdata().join("checkpoints/tiny"), &p("good"));
    attest(&p("good"), "test-lab");
    copy_dir(&p("good"), &p("tampered"));
    let shard = p("tampered/model-00001-of-00002.safetensors");
    let mut bytes = fs::read(&shard).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&shard, bytes).unwrap();
    let policy = common::policy_trusting(dir.path(), &["test-lab"], "");
    let store = p("store");
    let lab = token(&store, "release-job", "lab/tiny");
    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args([
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
    let server = Server::spawn(cmd);
    let push = |folder: &str, repo: &str, token: &str| {
        common::run_env(
            &[("HF_TOKEN", token)],
            [
                "push",
                p(folder).to_str().unwrap(),
                "--repo",
                repo,
                "--endpoint",
                &server.url(),
            ],
        )
    };
    let first = push("good", "lab/tiny", &lab);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("1424 bytes uploaded"),
        "{}",
        first.stdout
    );
    let again = push("good", "lab/tiny", &lab);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains(" 0 bytes uploaded"),
        "{}",
        again.stdout
    );
    let (status, body) = common::http_get(
        &server.addr,
        "/lab/tiny/resolve/main/model-00001-of-00002.safetensors",
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        fs::read(p("good/model-00001-of-00002.safetensors")).unwrap()
    );
    let refused = push("tampered", "lab/tiny", &lab);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("subject.digest_mismatch"),
        "{}",
        refused.stderr
    );
    // Its scope is one repository.
    let outside = push("good", "lab/other", &lab);
    assert_eq!(outside.code, 1, "{}", outside.stderr);
    assert!(
        outside.stderr.contains("may not write lab/other"),
        "{}",
        outside.stderr
    );
    let none = push("good", "lab/tiny", "");
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("HF_TOKEN"), "{}", none.stderr);
}

/// `weightgate admit` follows the policy's `[[namespace]]` binding as the commit route does.
#[test]
fn admit_follows_the_namespace_binding() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    copy_dir(&testdata().join("checkpoints/tiny"), &p("other-lab"));
    attest(&p("other-lab"), "test-other");
    let policy = format!(
        "[policy]\nname = \"ns\"\n\
         [[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n\
         [[trusted_key]]\nname = \"other\"\npath = \"{}\"\n\
         [[namespace]]\nname = \"lab\"\nkeys = [\"lab\"]\n\
         [[namespace]]\nname = \"other\"\nkeys = [\"other\"]\n",
        td("keys/test-lab.pub"),
        td("keys/test-other.pub")
    );
    fs::write(p("policy.toml"), policy).unwrap();
    let admit = |repo: &str| {
        run([
            "admit",
            p("other-lab").to_str().unwrap(),
            "--repo",
            repo,
            "--store",
            p("store").to_str().unwrap(),
            "--policy",
            p("policy.toml").to_str().unwrap(),
        ])
    };
    let refused = admit("lab/impostor");
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    let out = format!("{}{}", refused.stdout, refused.stderr);
    assert!(out.contains("signature.wrong_namespace"), "{out}");
    assert!(!p("store/repos/lab").exists());
    // Undeclared organisations take nothing once any is declared.
    let undeclared = admit("third/x");
    assert_eq!(undeclared.code, 1);
    assert!(format!("{}{}", undeclared.stdout, undeclared.stderr).contains("no [[namespace]]"));
    let own = admit("other/tiny");
    assert_eq!(own.code, 0, "{}{}", own.stdout, own.stderr);
}
