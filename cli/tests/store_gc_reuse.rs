//! `store gc` beside an admission that reuses old unreferenced objects: the admission's blobs
//! and envelope survive, and the revision is served whole. Real `admit` and `store gc`
//! processes on one folder store.

use crate::common;

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{attest_as_lab, copy_dir, policy_trusting, run, testdata};
use weightgate_verifier::gate::store::FolderStore;

#[test]
fn gc_during_an_admission_keeps_what_the_admission_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("model");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    // A large file keeps the admission busy (hashing the orphaned blob again) while gc runs.
    let big: Vec<u8> = (0..(64u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(ck.join("weights.bin"), &big).unwrap();
    drop(big);
    attest_as_lab(&ck);
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let store = dir.path().join("store");
    let admit = |repo: &str| {
        common::bin()
            .args(["admit", ck.to_str().unwrap(), "--repo", repo, "--store"])
            .arg(&store)
            .arg("--policy")
            .arg(&policy)
            .arg("--quiet")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Everything stored, then orphaned: its revision is gone, so gc may remove the blobs and
    // the envelope, and the next admission of the same checkpoint reuses them (hashing the
    // large blob again first, since no record vouches for it any more).
    let first = admit("lab/old").wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    fs::remove_dir_all(store.join("repos/lab/old")).unwrap();

    let started = Instant::now();
    let admission = admit("lab/new");
    std::thread::sleep(Duration::from_millis(300));
    let gc = run([
        "store",
        "gc",
        "--store",
        store.to_str().unwrap(),
        "--grace",
        "0",
    ]);
    let gc_done = started.elapsed();
    let out = admission.wait_with_output().unwrap();
    let admit_done = started.elapsed();
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(
        out.status.success(),
        "admission failed beside gc: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("gc finished at {gc_done:?}, the admission at {admit_done:?}");
    // Everything the admitted revision names is there and unchanged.
    let store = FolderStore::open(&store).unwrap();
    let m = store
        .manifest("lab/new", "main")
        .unwrap()
        .expect("admitted");
    for f in &m.files {
        assert_eq!(store.blob_problem(f), None, "{}", f.path);
    }
    assert!(!store.attestation(&m).unwrap().is_empty());
}
