//! `store gc` and Xet objects, with the unchanged `hf upload` (Xet, the default path): the
//! xorbs and shards of a refused upload go once past the grace period; those of a published
//! revision stay, so the client that uploaded them can still refer to them from its shard
//! cache.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{self, copy_dir, http_get, policy_trusting, python, run, testdata};
use crate::support::serve::Server;

/// Names of the stored Xet objects of namespace `lab` (`xorbs/HASH`, `shards/HASH`, ...).
fn xet_objects(store: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for kind in ["xorbs", "xorb-indexes", "shards"] {
        if let Ok(entries) = fs::read_dir(store.join("xet/lab").join(kind)) {
            for e in entries.flatten() {
                out.insert(format!("{kind}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

fn gc(store: &Path, grace: &str) -> String {
    let r = run([
        "store",
        "gc",
        "--store",
        store.to_str().unwrap(),
        "--grace",
        grace,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

#[test]
fn gc_removes_the_xet_objects_of_refused_uploads_and_keeps_the_published_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    copy_dir(&testdata().join("checkpoints/tiny"), &p("good"));
    common::attest_as_lab(&p("good"));
    // Other bytes in every large file, no attestation: refused at the commit. (A shard that
    // also describes a published file stays, with its xorbs.)
    copy_dir(&testdata().join("checkpoints/tiny"), &p("unattested"));
    for shard in ["model-00001-of-00002", "model-00002-of-00002"] {
        let shard = p(&format!("unattested/{shard}.safetensors"));
        let mut bytes = fs::read(&shard).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&shard, bytes).unwrap();
    }

    let store = p("store");
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let token = common::write_token(&store, "lab-release", &["lab"]);
    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args([
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
    let server = Server::spawn(cmd);
    // Each upload from its own client cache unless named: a fresh client sends every xorb.
    let hf_upload = |folder: &str, repo: &str, home: &str| -> Output {
        Command::new(python().parent().unwrap().join("hf"))
            .args(["upload", repo, p(folder).to_str().unwrap(), "."])
            .env("HF_ENDPOINT", server.url())
            .env("HF_TOKEN", &token)
            .env("HF_HOME", p(home))
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env_remove("HF_HUB_DISABLE_XET")
            .output()
            .unwrap()
    };

    let refused = hf_upload("unattested", "lab/refused", "client-refused");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403 Forbidden"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let of_refused = xet_objects(&store);
    assert!(
        of_refused.iter().any(|o| o.starts_with("xorbs/"))
            && of_refused.iter().any(|o| o.starts_with("shards/")),
        "{of_refused:?}"
    );
    let good = hf_upload("good", "lab/tiny", "client-good");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let of_good: BTreeSet<String> = xet_objects(&store)
        .difference(&of_refused)
        .cloned()
        .collect();
    assert!(
        of_good.iter().any(|o| o.starts_with("shards/")),
        "{of_good:?}"
    );

    // Within the grace period nothing goes.
    gc(&store, "1h");
    assert_eq!(
        xet_objects(&store),
        &of_refused | &of_good,
        "gc removed young Xet objects"
    );
    // Past it, what no revision or pending upload names goes; the published revision's stay.
    gc(&store, "0");
    assert_eq!(xet_objects(&store), of_good);
    for name in ["config.json", "model-00001-of-00002.safetensors"] {
        let (status, body) = http_get(&server.addr, &format!("/lab/tiny/resolve/main/{name}"), &[]);
        assert_eq!(status, 200, "{name}");
        assert_eq!(body, fs::read(p("good").join(name)).unwrap(), "{name}");
    }
    // The client that uploaded them refers to the kept xorbs from its shard cache.
    let again = hf_upload("good", "lab/tiny-again", "client-good");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let (status, _) = http_get(
        &server.addr,
        "/lab/tiny-again/resolve/main/config.json",
        &[],
    );
    assert_eq!(status, 200);
}
