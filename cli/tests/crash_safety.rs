//! SIGKILL at random points: `attest` (in attest_cli.rs), `cosign` and `admit` never leave a
//! partial envelope or store entry visible, and a rerun succeeds.

use crate::common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{attest_as_lab, copy_dir, policy_trusting, run, td, testdata};
use weightgate_verifier::gate::store::FolderStore;

/// Deterministic "random" delays spread over `0..max_us` microseconds.
fn delays(n: u64, max_us: u64) -> impl Iterator<Item = Duration> {
    (0..n).map(move |i| Duration::from_micros((i * 7919 + 13) % max_us))
}

fn kill_after(args: &[&str], delay: Duration) {
    let mut child = common::bin()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL; it may already have finished
    let _ = child.wait();
}

#[test]
fn a_killed_cosign_leaves_the_old_envelope_or_the_new_one_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let att = ck.join("weightgate.att");
    attest_as_lab(&ck);
    let original = fs::read(&att).unwrap();
    // Kills spread over twice what one cosign takes on this machine now, so both outcomes
    // happen whatever else the machine is doing.
    let cosign_args = [
        "cosign",
        att.to_str().unwrap(),
        "--key",
        &td("keys/test-auditor.key"),
    ];
    let started = std::time::Instant::now();
    assert_eq!(run(cosign_args).code, 0);
    let span_us = (2 * started.elapsed().as_micros() as u64).max(6000);
    let (mut old_seen, mut new_seen) = (0, 0);
    for delay in delays(40, span_us) {
        fs::write(&att, &original).unwrap();
        kill_after(
            &[
                "cosign",
                att.to_str().unwrap(),
                "--key",
                &td("keys/test-auditor.key"),
            ],
            delay,
        );
        let now = fs::read(&att).unwrap();
        if now == original {
            old_seen += 1;
        } else {
            // Whole: decodes strictly with both signatures, which verify.
            let env = weightgate_schemas::Envelope::decode_strict(&now)
                .expect("a killed cosign left a partial envelope");
            assert_eq!(env.signatures.len(), 2);
            assert_eq!(
                env.payload,
                weightgate_schemas::Envelope::decode_strict(&original)
                    .unwrap()
                    .payload
            );
            new_seen += 1;
        }
    }
    // Both outcomes happened: the kills really landed at different points.
    assert!(
        old_seen > 0 && new_seen > 0,
        "old {old_seen}, new {new_seen}"
    );
    fs::write(&att, &original).unwrap();
    let r = run([
        "cosign",
        att.to_str().unwrap(),
        "--key",
        &td("keys/test-auditor.key"),
    ]);
    assert_eq!(r.code, 0, "rerun: {}", r.stderr);
    let r = run([
        "verify",
        ck.to_str().unwrap(),
        "--trust",
        &td("keys/test-lab.pub"),
        "--trust",
        &td("keys/test-auditor.pub"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

/// After any kill, the repo either is not in the store or is there whole: every blob the
/// manifest names exists with the admitted size and digest.
fn assert_store_whole(store: &Path, repo: &str) -> bool {
    if !store.exists() {
        return false;
    }
    let s = FolderStore::open(store).expect("store readable after a kill");
    match s
        .manifest(repo, "main")
        .expect("manifest readable after a kill")
    {
        None => false,
        Some(m) => {
            for f in &m.files {
                assert_eq!(s.blob_problem(f), None, "{}: partial blob visible", f.path);
            }
            true
        }
    }
}

#[test]
fn a_killed_admit_leaves_the_store_as_it_was_or_complete() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("model");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    // 48 MiB of real bytes so copying and fsync take a while.
    let data: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    fs::write(ck.join("weights.bin"), &data).unwrap();
    attest_as_lab(&ck);
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let (mut absent, mut whole) = (0, 0);
    for (i, delay) in delays(8, 600_000).enumerate() {
        let store = dir.path().join(format!("store-{i}"));
        let args = [
            "admit",
            ck.to_str().unwrap(),
            "--repo",
            "lab/model",
            "--store",
            store.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ];
        kill_after(&args, delay);
        if assert_store_whole(&store, "lab/model") {
            whole += 1;
        } else {
            absent += 1;
        }
        // A rerun succeeds and completes the store.
        let r = run(args);
        assert_eq!(
            r.code, 0,
            "rerun after a kill at {delay:?}: {}{}",
            r.stdout, r.stderr
        );
        assert!(assert_store_whole(&store, "lab/model"));
    }
    assert!(
        absent > 0,
        "no kill landed before admission finished (whole {whole})"
    );
}
