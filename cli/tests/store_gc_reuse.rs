//! `store gc` beside an admission that reuses old unreferenced objects: the admission's blobs
//! and envelope survive, and the revision is served whole. Real `admit` and `store gc`
//! processes on one folder store; gc is stopped (SIGSTOP) after it has read the records and
//! begun deleting, so the admission runs in that window unless it waits for `gc.lock`.

use crate::common;

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{attest_as_lab, copy_dir, policy_trusting, testdata};
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

    // gc has read the records and started deleting when it is stopped: thousands of
    // unreferenced files that sort before every real blob keep it busy before it reaches them.
    let blobs = store.join("blobs");
    let junk: Vec<_> = (0..5000u32)
        .map(|i| blobs.join(format!("{:064x}", i + 1)))
        .collect();
    for j in &junk {
        fs::write(j, b"unreferenced").unwrap();
    }
    let gc = common::bin()
        .args([
            "store",
            "gc",
            "--store",
            store.to_str().unwrap(),
            "--grace",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while junk[0].exists() {
        assert!(Instant::now() < deadline, "gc never started deleting");
        std::hint::spin_loop();
    }
    signal(gc.id(), "STOP");
    assert!(
        junk[junk.len() - 1].exists(),
        "gc got through the junk before it was stopped"
    );
    // While gc is stopped between its listing and its deletes, the admission runs: to its end
    // (nothing keeps it from gc), or until it waits for gc (then gc goes on first).
    let mut admission = admit("lab/new");
    let lock = fs::metadata(store.join("gc.lock")).map(|m| m.ino()).ok();
    loop {
        if admission.try_wait().unwrap().is_some() {
            break;
        }
        if lock.is_some_and(waits_for_lock) {
            eprintln!("the admission waits for gc.lock");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the admission neither ended nor waited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(gc.id(), "CONT");
    let gc = gc.wait_with_output().unwrap();
    let out = admission.wait_with_output().unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert!(
        out.status.success(),
        "admission failed beside gc: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Whether a process waits for a lock on the file with inode `ino` (`/proc/locks` lists
/// blocked requests with `->`).
fn waits_for_lock(ino: u64) -> bool {
    fs::read_to_string("/proc/locks").is_ok_and(|t| {
        t.lines().any(|l| {
            l.contains("->")
                && l.split_whitespace()
                    .any(|w| w.ends_with(&format!(":{ino}")))
        })
    })
}
