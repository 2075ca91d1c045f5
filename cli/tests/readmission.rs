//! A new revision of an admitted model, through the binary: blobs already in the store are
//! reused without being copied or read when their recorded identity is unchanged, hashed again
//! when it is not, and an altered blob stops the admission. What is served afterwards is each
//! revision's own attested bytes.

use crate::common;
use crate::support::serve;

use std::fs;
use std::path::{Path, PathBuf};

use common::{attest_as_lab, copy_dir, policy_trusting, revision_of, run, testdata};
use serve::Server;

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// Flips the last byte of `file` (inside the last tensor's data, so the header stays
    /// valid) and attests the checkpoint again.
    fn change_and_attest(&self, file: &str) {
        let p = self.path("model").join(file);
        let mut bytes = fs::read(&p).unwrap();
        *bytes.last_mut().unwrap() ^= 0x5a;
        fs::write(&p, bytes).unwrap();
        self.attest();
    }

    fn attest(&self) {
        attest_as_lab(&self.path("model"));
    }

    fn admit(&self) -> common::Run {
        self.admit_as("lab/model", "main")
    }

    fn admit_as(&self, repo: &str, ref_name: &str) -> common::Run {
        run([
            "admit",
            self.path("model").to_str().unwrap(),
            "--repo",
            repo,
            "--revision",
            ref_name,
            "--store",
            self.store().to_str().unwrap(),
            "--policy",
            self.path("policy.toml").to_str().unwrap(),
            "--quiet",
        ])
    }

    fn blob(&self, file: &str) -> PathBuf {
        use sha2::Digest as _;
        let bytes = fs::read(self.path("model").join(file)).unwrap();
        self.store()
            .join("blobs")
            .join(hex::encode(sha2::Sha256::digest(bytes)))
    }
}

fn lab() -> Lab {
    let lab = Lab {
        dir: tempfile::tempdir().unwrap(),
    };
    copy_dir(&testdata().join("checkpoints/tiny"), &lab.path("model"));
    policy_trusting(lab.dir.path(), &["test-lab"], "");
    lab.attest();
    lab
}

fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    common::http_get(addr, path, &[])
}

fn blob_count(store: &Path) -> usize {
    fs::read_dir(store.join("blobs")).unwrap().count()
}

#[test]
fn a_revision_that_changes_one_shard_copies_only_that_shard() {
    let lab = lab();
    let r = lab.admit();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("already stored"), "{}", r.stdout);
    let first = revision_of(&r.stdout);
    let first_shard = fs::read(lab.path("model/model-00002-of-00002.safetensors")).unwrap();
    let unchanged = lab.blob("config.json");
    let identity = fs::metadata(&unchanged).unwrap();
    assert_eq!(blob_count(&lab.store()), 4);

    lab.change_and_attest("model-00002-of-00002.safetensors");
    // The unchanged files of the source are not read: damage to one of them (same size, same
    // name) does not reach the store, which serves the attested bytes it already holds.
    let config = lab.path("model/config.json");
    let original_config = fs::read(&config).unwrap();
    let mut damaged = original_config.clone();
    damaged[1] ^= 1;
    fs::write(&config, &damaged).unwrap();
    let r = lab.admit();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("3 already stored)"), "{}", r.stdout);
    assert!(!r.stdout.contains("hashed again"), "{}", r.stdout);
    let second = revision_of(&r.stdout);
    assert_ne!(first, second);
    assert_eq!(blob_count(&lab.store()), 5);
    // The reused blob was neither replaced nor touched.
    let now = fs::metadata(&unchanged).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (now.ino(), now.ctime(), now.ctime_nsec()),
        (identity.ino(), identity.ctime(), identity.ctime_nsec())
    );

    // Another ref of the same repository has them too: nothing is read.
    let r = lab.admit_as("lab/model", "v2");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("4 already stored)"), "{}", r.stdout);

    // Another repository may share those blobs only by showing it has the bytes: the damaged
    // source file is read and refused, though the store holds the attested blob.
    let r = lab.admit_as("other/copy", "main");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("subject.digest_mismatch"), "{}", r.stdout);
    assert!(r.stdout.contains("config.json"), "{}", r.stdout);
    fs::write(&config, &original_config).unwrap();
    let r = lab.admit_as("other/copy", "main");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("4 already stored (4 of them hashed again)"),
        "{}",
        r.stdout
    );
    assert_eq!(blob_count(&lab.store()), 5);

    let server = Server::spawn({
        let mut c = common::bin();
        c.args(["serve", "--store", lab.store().to_str().unwrap()])
            .args(["--policy", lab.path("policy.toml").to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"]);
        c
    });
    let shard = "model-00002-of-00002.safetensors";
    let (s, body) = get(&server.addr, &format!("/lab/model/resolve/{first}/{shard}"));
    assert_eq!((s, body == first_shard), (200, true));
    let (s, body) = get(&server.addr, &format!("/lab/model/resolve/main/{shard}"));
    assert_eq!(s, 200);
    assert_eq!(body, fs::read(lab.path("model").join(shard)).unwrap());
    let (s, body) = get(&server.addr, "/lab/model/resolve/main/config.json");
    assert_eq!((s, body == original_config), (200, true));
}

#[test]
fn a_blob_whose_identity_changed_is_hashed_again_and_an_altered_one_stops_admission() {
    let lab = lab();
    let r = lab.admit();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Its status-change time moves (same mode, same bytes): no longer provably as admitted.
    let config_blob = lab.blob("config.json");
    use std::os::unix::fs::PermissionsExt;
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::set_permissions(&config_blob, fs::Permissions::from_mode(0o444)).unwrap();
    lab.change_and_attest("model-00001-of-00002.safetensors");
    let r = lab.admit();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("3 already stored (1 of them hashed again)"),
        "{}",
        r.stdout
    );

    // Bytes changed behind the store's back: the next admission refuses to reuse them and
    // publishes nothing.
    let refs_before = fs::read(lab.store().join("repos/lab/model/refs/main")).unwrap();
    let mut bytes = fs::read(&config_blob).unwrap();
    bytes[0] ^= 1;
    fs::set_permissions(&config_blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&config_blob, &bytes).unwrap();
    fs::set_permissions(&config_blob, fs::Permissions::from_mode(0o444)).unwrap();
    lab.change_and_attest("model-00002-of-00002.safetensors");
    let r = lab.admit();
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("altered after admission"), "{}", r.stderr);
    assert_eq!(
        fs::read(lab.store().join("repos/lab/model/refs/main")).unwrap(),
        refs_before
    );
    assert_eq!(fs::read_dir(lab.store().join("tmp")).unwrap().count(), 0);
}
