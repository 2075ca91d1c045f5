//! `weightgate store gc` on a folder store: unreferenced files and dead staging folders go
//! once past the grace period; everything a revision record names stays whole.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{attested_tiny, policy_trusting, run};
use weightgate_verifier::gate::store::FolderStore;

#[test]
fn folder_gc_removes_only_unreferenced_files_past_the_grace_period() {
    let tiny = attested_tiny();
    let (dir, ck) = (&tiny.dir, &tiny.model);
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let r = run([
        "admit",
        ck.to_str().unwrap(),
        "--repo",
        "lab/model",
        "--store",
        s,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Left-overs: a blob no record names (read-only, as blobs are), an envelope, and the
    // staging folder of an admission whose process is gone.
    let junk_blob = store.join("blobs").join("cd".repeat(32));
    fs::write(&junk_blob, b"orphan").unwrap();
    fs::set_permissions(&junk_blob, fs::Permissions::from_mode(0o444)).unwrap();
    let junk_att = store
        .join("attestations")
        .join(format!("{}.att", "ef".repeat(32)));
    fs::write(&junk_att, b"orphan").unwrap();
    let dead = store.join("tmp/admit-4194999-1");
    fs::create_dir_all(&dead).unwrap();
    fs::write(dead.join("part"), b"x").unwrap();

    let r = run(["store", "gc", "--store", s, "--grace", "1h"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0 removed"), "{}", r.stdout);
    assert!(junk_blob.exists() && junk_att.exists() && dead.exists());

    let r = run(["store", "gc", "--store", s, "--grace", "0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("1 revision(s) read, 2 removed"),
        "{}",
        r.stdout
    );
    assert!(!junk_blob.exists() && !junk_att.exists() && !dead.exists());
    let store = FolderStore::open(&store).unwrap();
    let m = store
        .manifest("lab/model", "main")
        .unwrap()
        .expect("still admitted");
    for f in &m.files {
        assert_eq!(store.blob_problem(f), None, "{}", f.path);
    }
    assert!(!store.attestation(&m).unwrap().is_empty());

    // A record that cannot be read stops the collection before anything is removed.
    fs::write(&junk_blob, b"orphan").unwrap();
    let rec = store
        .root
        .join(format!("repos/lab/model/revisions/{}.json", m.revision));
    fs::set_permissions(&rec, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&rec, b"[truncated").unwrap();
    let r = run(["store", "gc", "--store", s, "--grace", "0"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("nothing was removed"), "{}", r.stderr);
    assert!(junk_blob.exists());
}
