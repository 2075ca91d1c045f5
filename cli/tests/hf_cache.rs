//! Downstream verification of what the real `hf` CLI (huggingface_hub, installed by `.ci/run`
//! into `.ci/venv`) downloads from `weightgate serve`: a cache snapshot and a `--local-dir`
//! folder verify with `--trust` alone, and are denied after one flipped byte.

use crate::common;
use crate::support::serve;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, attest_as_lab, copy_dir, policy_trusting, td, testdata};
use serve::Server;
use sha2::Digest as _;

pub(crate) fn venv_bin(name: &str) -> PathBuf {
    let python = match std::env::var_os("WEIGHTGATE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python"),
    };
    let p = python.parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} missing: run .ci/run, which installs the pinned huggingface_hub there (this test is never skipped)",
        p.display()
    );
    p
}

/// Attests the tiny checkpoint, admits it as `lab/tiny` and serves it; returns the checkpoint,
/// the server and its endpoint.
fn serve_tiny(dir: &Path) -> (PathBuf, Server, String) {
    let ck = dir.join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    attest_as_lab(&ck);
    let policy = policy_trusting(dir, &["test-lab"], "");
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
        .args([
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
    let server = Server::spawn(cmd);
    let endpoint = server.url();
    (ck, server, endpoint)
}

/// `hf download` with a fresh `HF_HOME`, as a downstream user runs it.
fn hf_download(endpoint: &str, hf_home: &Path, extra: &[&str]) {
    let out = Command::new(venv_bin("hf"))
        .args(["download", "lab/tiny"])
        .args(extra)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hf download: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `weightgate verify` with only the cache environment the test chooses.
pub(crate) fn verify(hf_home: &Path, args: &[&str]) -> Run {
    let out = common::bin()
        .arg("verify")
        .args(args)
        .args(["--trust", &td("keys/test-lab.pub"), "--quiet"])
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}

/// Puts `file` into a cache snapshot as `hf_hub_download` stores a file: the content as
/// `blobs/<sha256>` (an LFS file's etag), a relative link from the snapshot.
pub(crate) fn add_to_cache_as_the_client_does(snapshot: &Path, file: &Path) {
    let bytes = fs::read(file).unwrap();
    let blob = hex::encode(sha2::Sha256::digest(&bytes));
    fs::write(snapshot.join("../../blobs").join(&blob), &bytes).unwrap();
    symlink(
        format!("../../blobs/{blob}"),
        snapshot.join(file.file_name().unwrap()),
    )
    .unwrap();
}

pub(crate) fn flip_one_byte(path: &Path) {
    let real = fs::canonicalize(path).unwrap();
    let mut perms = fs::metadata(&real).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&real, perms).unwrap();
    let mut bytes = fs::read(&real).unwrap();
    let at = bytes.len() - 1;
    bytes[at] ^= 1;
    fs::write(&real, bytes).unwrap();
}

#[test]
fn hf_download_snapshot_and_local_dir_verify_with_trust_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, server, endpoint) = serve_tiny(dir.path());
    let hf_home = dir.path().join("hf-home");
    hf_download(&endpoint, &hf_home, &[]);
    let local = dir.path().join("local");
    hf_download(
        &endpoint,
        &hf_home,
        &["--local-dir", local.to_str().unwrap()],
    );
    drop(server);

    let repo = hf_home.join("hub/models--lab--tiny");
    let commit = fs::read_to_string(repo.join("refs/main")).unwrap();
    let snapshot = repo.join("snapshots").join(&commit);
    assert!(
        fs::symlink_metadata(snapshot.join("config.json"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the client stores links into blobs/"
    );
    let snap = snapshot.to_str().unwrap();

    // The gate serves weightgate.att as a file of the revision, so the snapshot holds it (a
    // link into blobs/ like every file) and verifies with --trust alone, by path or by --hf.
    let att = ck.join("weightgate.att");
    assert_eq!(
        fs::read(snapshot.join("weightgate.att")).unwrap(),
        fs::read(&att).unwrap()
    );
    let r = verify(&hf_home, &[snap]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ALLOWED"), "{}", r.stdout);
    for spec in [
        "lab/tiny".to_string(),
        "lab/tiny@main".into(),
        format!("lab/tiny@{commit}"),
        format!("lab/tiny@{}", &commit[..7]),
    ] {
        let r = verify(&hf_home, &["--hf", &spec]);
        assert_eq!(r.code, 0, "--hf {spec}: {}{}", r.stdout, r.stderr);
    }
    let r = verify(&hf_home, &["--hf", "lab/tiny@v9"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("revision `v9` is not in the cache") && r.stderr.contains(&commit),
        "{}",
        r.stderr
    );
    let r = verify(&hf_home, &["--hf", "lab/other"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("lab/other is not in the Hugging Face cache"),
        "{}",
        r.stderr
    );
    let r = verify(&hf_home, &["--hf", "../etc"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("is not a Hugging Face repository id"),
        "{}",
        r.stderr
    );

    // The repository folder is answered with the snapshot to pass.
    let r = verify(&hf_home, &[repo.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("a Hugging Face cache repository folder, not a snapshot")
            && r.stderr.contains(&format!("{snap} (main)")),
        "{}",
        r.stderr
    );

    // Without the attestation in the snapshot, the error says where to point instead.
    fs::remove_file(snapshot.join("weightgate.att")).unwrap();
    let r = verify(&hf_home, &[snap]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot read the attestation") && r.stderr.contains("--attestation"),
        "{}",
        r.stderr
    );
    let r = verify(&hf_home, &[snap, "--attestation", att.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    add_to_cache_as_the_client_does(&snapshot, &att);

    // One flipped byte in a blob: denied.
    flip_one_byte(&snapshot.join("model-00002-of-00002.safetensors"));
    let r = verify(&hf_home, &["--hf", "lab/tiny"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("subject.digest_mismatch"), "{}", r.stdout);

    // The --local-dir folder: its .cache/huggingface/ metadata is left out by default.
    assert!(local.join(".cache/huggingface").is_dir());
    assert!(local.join("weightgate.att").is_file());
    let r = verify(&hf_home, &[local.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // Signed there with model.sig too: the stock model_signing verifier accepts it, as the
    // bundle names .cache/huggingface among the paths it leaves out.
    let r = common::run([
        "keygen",
        "--type",
        "p256",
        "--out",
        dir.path().join("ec").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    fs::remove_file(local.join("weightgate.att")).unwrap();
    let r = common::run([
        "attest",
        local.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--oms-key",
        dir.path().join("ec.key").to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = Command::new(venv_bin("python"))
        .args(["-m", "model_signing", "verify", "key"])
        .arg(&local)
        .arg("--signature")
        .arg(local.join("model.sig"))
        .arg("--public_key")
        .arg(dir.path().join("ec.pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = verify(&hf_home, &[local.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    flip_one_byte(&local.join("config.json"));
    let r = verify(&hf_home, &[local.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
}

/// A hand-made snapshot in the client's layout, plus look-alikes that must not widen anything.
#[test]
fn only_a_real_cache_snapshot_may_link_into_its_own_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let make = |repo: &Path| -> PathBuf {
        let snap = repo.join("snapshots/0123456789abcdef0123456789abcdef01234567");
        fs::create_dir_all(&snap).unwrap();
        fs::create_dir_all(repo.join("blobs")).unwrap();
        for e in fs::read_dir(testdata().join("checkpoints/tiny")).unwrap() {
            add_to_cache_as_the_client_does(&snap, &e.unwrap().path());
        }
        snap
    };
    let hash = |p: &Path, extra: &[&str]| {
        let mut args = vec!["hash".to_string(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(p.to_str().unwrap().into());
        common::run(args)
    };
    let direct = hash(&testdata().join("checkpoints/tiny"), &[]);
    let snap = make(&dir.path().join("hub/models--org--tiny"));
    let r = hash(&snap, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, direct.stdout);
    // One file of the snapshot, itself a link.
    let r = hash(&snap.join("config.json"), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A folder merely named `snapshots`: no wider rule, with or without --allow-symlinks.
    let fake = make(&dir.path().join("not-a-cache"));
    for extra in [&[][..], &["--allow-symlinks"][..]] {
        let r = hash(&fake, extra);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stdout);
        assert!(r.stderr.contains("symbolic link refused"), "{}", r.stderr);
    }
    let r = hash(&fake.join("config.json"), &[]);
    assert_eq!(r.code, 2, "{}", r.stdout);

    // In a real snapshot, a link elsewhere in the repository or into another repository's
    // blobs is refused.
    let other = make(&dir.path().join("hub/models--org--other"));
    let other_blob = fs::read_link(other.join("config.json")).unwrap();
    for (name, target) in [
        ("ref.txt", PathBuf::from("../../refs/main")),
        (
            "theirs.json",
            PathBuf::from("../../../models--org--other/blobs")
                .join(other_blob.file_name().unwrap()),
        ),
    ] {
        let repo = dir.path().join("hub/models--org--tiny");
        fs::create_dir_all(repo.join("refs")).unwrap();
        fs::write(
            repo.join("refs/main"),
            "0123456789abcdef0123456789abcdef01234567",
        )
        .unwrap();
        symlink(&target, snap.join(name)).unwrap();
        let r = hash(&snap, &["--allow-symlinks"]);
        assert_eq!(r.code, 2, "{name}: {}", r.stdout);
        assert!(
            r.stderr.contains(&format!("{name}: symbolic link refused")),
            "{}",
            r.stderr
        );
        fs::remove_file(snap.join(name)).unwrap();
    }

    // The repository folder itself: the snapshot to pass, with its ref.
    let r = hash(&dir.path().join("hub/models--org--tiny"), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!("{} (main)", snap.display())),
        "{}",
        r.stderr
    );
}
