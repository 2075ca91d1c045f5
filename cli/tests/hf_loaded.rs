//! Verifying what a loader downloaded: a snapshot holding only the files a Hugging Face loader
//! fetches (fetched by the real client from `weightgate serve`, one file at a time as
//! `from_pretrained` does), the attestation fetched by the command `verify` names, an
//! `hf download --local-dir` folder with `model.sig`, and the cache's refs read as the real
//! client reads them.

use crate::common;
use crate::hf_cache::{add_to_cache_as_the_client_does, flip_one_byte, venv_bin, verify};
use crate::support::serve::Server;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, policy_trusting, td, testdata};

/// The real client with the environment of a downstream user of `endpoint`.
pub(crate) fn client(program: &Path, endpoint: &str, hf_home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1");
    cmd
}

pub(crate) fn output_of(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cache_client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf/cache_client.py")
}

/// `ck` (tiny plus a README) attested with an Ed25519 key and an ECDSA `model.sig`, admitted
/// as `lab/tiny` and served.
pub(crate) fn serve_signed_tiny(dir: &Path) -> (PathBuf, Server) {
    let ck = dir.join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    fs::write(
        ck.join("README.md"),
        "---\nlicense: apache-2.0\n---\n# tiny\n",
    )
    .unwrap();
    let ec = dir.join("ec");
    let r = common::run(["keygen", "--type", "p256", "--out", ec.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = common::run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--oms-key",
        dir.join("ec.key").to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The gate checks model.sig at admission and serves it as a file of the revision.
    let policy = policy_trusting(
        dir,
        &["test-lab"],
        &format!(
            "[[model_signing_key]]\nname = \"lab-ec\"\npath = \"{}\"",
            dir.join("ec.pub").display()
        ),
    );
    let store = dir.join("store");
    let r = common::run([
        "admit",
        ck.to_str().unwrap(),
        "--repo",
        "lab/tiny",
        "--store",
        store.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args(["--policy", policy.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"]);
    (ck, Server::spawn(cmd))
}

/// The command between the first pair of backticks after `hf download`.
fn named_command(stderr: &str) -> Vec<String> {
    let start = stderr.find("`hf download ").expect(stderr) + 1;
    let len = stderr[start..].find('`').unwrap();
    stderr[start..start + len]
        .split(' ')
        .map(str::to_string)
        .collect()
}

#[test]
fn a_loader_fetched_snapshot_and_a_local_dir_verify_for_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, server) = serve_signed_tiny(dir.path());
    let endpoint = server.url();
    let hf_home = dir.path().join("hf-home");

    // What from_pretrained fetches for a sharded model: it probes the single file, then the
    // config, the index and every shard the index names; never README.md or weightgate.att.
    let mut fetch = client(&venv_bin("python"), &endpoint, &hf_home);
    fetch.arg(cache_client()).args([
        "fetch",
        "lab/tiny",
        "?model.safetensors",
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]);
    let snapshot = PathBuf::from(output_of(fetch).trim());
    let commit = snapshot.file_name().unwrap().to_str().unwrap().to_string();
    assert!(!snapshot.join("README.md").exists());

    // No attestation: the error names the command that brings it, which works as given.
    let r = verify(&hf_home, &["--hf", "lab/tiny"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let command = named_command(&r.stderr);
    assert_eq!(
        command,
        [
            "hf",
            "download",
            "lab/tiny",
            "weightgate.att",
            "--revision",
            &commit
        ],
        "{}",
        r.stderr
    );
    let mut hf = client(&venv_bin("hf"), &endpoint, &hf_home);
    hf.args(&command[1..]);
    output_of(hf);
    drop(server);

    // README.md was never downloaded: listed, not a failure.
    let r = verify(&hf_home, &["--hf", "lab/tiny"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("1 file not downloaded, so not checked")
            && r.stdout.contains("README.md"),
        "{}",
        r.stdout
    );
    let r = verify(&hf_home, &["--hf", "lab/tiny", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        json["facts"]["not_downloaded"],
        serde_json::json!(["README.md"])
    );
    let r = verify(&hf_home, &["--hf", "lab/tiny", "--complete"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("subject.missing_file"), "{}", r.stdout);
    assert!(r.stdout.contains("README.md"), "{}", r.stdout);

    // Exported from the snapshot: the package URL names the repository and commit.
    let r = common::run([
        "export",
        "--format",
        "cyclonedx",
        snapshot.join("weightgate.att").to_str().unwrap(),
        "--trust",
        &td("keys/test-lab.pub"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bom: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        bom["metadata"]["component"]["purl"],
        format!("pkg:huggingface/lab/tiny@{commit}")
    );

    // Provenance only: the output says no regime was judged.
    let r = verify(&hf_home, &["--hf", "lab/tiny", "--provenance-only"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no regime was judged"), "{}", r.stdout);
    assert!(!r.stdout.contains("regime eu"), "{}", r.stdout);

    // A shard the index names, absent: denied (the model could not load these weights).
    let shard = snapshot.join("model-00002-of-00002.safetensors");
    let target = fs::read_link(&shard).unwrap();
    fs::remove_file(&shard).unwrap();
    let r = verify(&hf_home, &["--hf", "lab/tiny"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("model-00002-of-00002.safetensors"),
        "{}",
        r.stdout
    );
    std::os::unix::fs::symlink(&target, &shard).unwrap();
    // The index and every shard absent: nothing a model loads is there.
    let kept = dir.path().join("kept");
    fs::create_dir(&kept).unwrap();
    for name in [
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        fs::rename(snapshot.join(name), kept.join(name)).unwrap();
    }
    let r = verify(&hf_home, &["--hf", "lab/tiny"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("subject.missing_file"), "{}", r.stdout);
    for e in fs::read_dir(&kept).unwrap() {
        let e = e.unwrap();
        fs::rename(e.path(), snapshot.join(e.file_name())).unwrap();
    }
    // A present file nobody attested: still a failure.
    let extra = dir.path().join("pytorch_model.bin");
    fs::write(&extra, b"not attested").unwrap();
    add_to_cache_as_the_client_does(&snapshot, &extra);
    let r = verify(&hf_home, &["--hf", "lab/tiny"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("subject.extra_file"), "{}", r.stdout);
    fs::remove_file(snapshot.join("pytorch_model.bin")).unwrap();
    // One flipped byte in a loaded shard: denied.
    flip_one_byte(&snapshot.join("model-00001-of-00002.safetensors"));
    let r = verify(&hf_home, &["--hf", "lab/tiny"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("subject.digest_mismatch"), "{}", r.stdout);

    // Path mistakes: a missing path is named as such; the attestation's path is understood.
    let r = verify(&hf_home, &[dir.path().join("tinyy").to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("tinyy: no such file or folder"),
        "{}",
        r.stderr
    );
    let r = verify(&hf_home, &[ck.join("weightgate.att").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ALLOWED"), "{}", r.stdout);

    let _ = (dir, endpoint);
}

#[test]
fn a_local_dir_download_verifies_with_model_sig_and_model_signing_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (_ck, server) = serve_signed_tiny(dir.path());
    let hf_home = dir.path().join("hf-home");
    let local = dir.path().join("local");
    let mut hf = client(&venv_bin("hf"), &server.url(), &hf_home);
    hf.args([
        "download",
        "lab/tiny",
        "--local-dir",
        local.to_str().unwrap(),
    ]);
    output_of(hf);
    drop(server);
    assert!(local.join(".cache/huggingface").is_dir());
    assert!(local.join("model.sig").is_file());
    let ec_pub = dir.path().join("ec.pub");
    // The gate's policy: trusts the lab and holds its [[model_signing_key]].
    let policy = dir.path().join("policy.toml");
    let model_signing = || {
        Command::new(venv_bin("python"))
            .args(["-m", "model_signing", "verify", "key"])
            .arg(&local)
            .arg("--signature")
            .arg(local.join("model.sig"))
            .arg("--public_key")
            .arg(&ec_pub)
            .arg("--ignore-paths")
            .arg(local.join(".cache/huggingface"))
            .output()
            .unwrap()
    };
    let weightgate_policy = || {
        let out = common::bin()
            .args(["verify", local.to_str().unwrap(), "--quiet", "--policy"])
            .arg(&policy)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    let out = model_signing();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = verify(
        &hf_home,
        &[
            local.to_str().unwrap(),
            "--oms-key",
            ec_pub.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("model.sig"), "{}", r.stdout);
    assert!(!r.stdout.contains(".cache/huggingface"), "{}", r.stdout);
    let (code, stdout) = weightgate_policy();
    assert_eq!(code, Some(0), "{stdout}");

    // Both deny one flipped byte.
    flip_one_byte(&local.join("model-00001-of-00002.safetensors"));
    assert!(!model_signing().status.success());
    let r = verify(
        &hf_home,
        &[
            local.to_str().unwrap(),
            "--oms-key",
            ec_pub.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("oms.digest_mismatch"), "{}", r.stdout);
    assert_eq!(weightgate_policy().0, Some(1));
}

/// A cache whose `refs/main` holds `<commit>\n`: the client opens the snapshot folder named
/// with the newline, so trimming it would verify other bytes than those loaded.
#[test]
fn the_cache_ref_is_read_as_the_client_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hf-home/hub");
    let repo = hub.join("models--org--tiny");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let attested = common::attested_tiny();
    let add_snapshot = |name: &str, flip: bool| {
        let snap = repo.join("snapshots").join(name);
        fs::create_dir_all(&snap).unwrap();
        fs::create_dir_all(repo.join("blobs")).unwrap();
        for e in fs::read_dir(&attested.model).unwrap() {
            let e = e.unwrap();
            let mut bytes = fs::read(e.path()).unwrap();
            if flip && e.file_name() == "model-00002-of-00002.safetensors" {
                *bytes.last_mut().unwrap() ^= 1;
            }
            let staged = dir.path().join(e.file_name());
            fs::write(&staged, bytes).unwrap();
            add_to_cache_as_the_client_does(&snap, &staged);
        }
        snap
    };
    add_snapshot(commit, false);
    let other = add_snapshot(&format!("{commit}\n"), true);
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();

    let lookup = |rev: &str| -> Vec<String> {
        let mut cmd = Command::new(venv_bin("python"));
        cmd.arg(cache_client())
            .args(["lookup", "org/tiny", rev])
            .env("HF_HUB_CACHE", &hub)
            .env("HF_HUB_OFFLINE", "1");
        serde_json::from_str(&output_of(cmd)).unwrap()
    };
    let hf_home = dir.path().join("hf-home");
    // The real client loads the folder named with the newline; verify refuses the ref.
    let found = lookup("main");
    assert_eq!(found[0], other.to_str().unwrap(), "{found:?}");
    let r = verify(&hf_home, &["--hf", "org/tiny"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("refs/main") && r.stderr.contains("not exactly a 40-hex commit id"),
        "{}",
        r.stderr
    );
    // That folder given by path: denied for its name.
    let r = verify(&hf_home, &[other.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("subject.unsafe_path") && r.stdout.contains("is not one"),
        "{}",
        r.stdout
    );

    // The ref as the client writes it: both agree on the attested snapshot.
    fs::write(repo.join("refs/main"), commit).unwrap();
    let want = repo.join("snapshots").join(commit);
    assert_eq!(lookup("main"), [want.to_str().unwrap(); 2]);
    let r = verify(&hf_home, &["--hf", "org/tiny"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // A ref named after a commit id that names another commit: the lookups disagree.
    fs::write(repo.join("refs").join(commit), "f".repeat(40)).unwrap();
    let r = verify(&hf_home, &["--hf", &format!("org/tiny@{commit}")]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("names commit ffff"), "{}", r.stderr);
}
