//! A blob swapped between the gate's check and its open: downloads run while another thread
//! keeps exchanging the store's `blobs/` folder with one holding a different file of the same
//! size, mtime and mode under the same name. The path the gate checks and the file it opens
//! may then differ; no response may carry the other bytes under the original ETag. Real
//! `admit` and `weightgate serve` on a folder store.

use crate::common;
use crate::support::serve;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{attest_as_lab, copy_dir, http_get, policy_trusting, testdata};
use serve::Server;
use sha2::Digest as _;

/// How long downloads race the swaps.
const RACE: Duration = Duration::from_secs(3);

#[test]
fn a_blob_swapped_after_its_check_is_never_served_under_the_original_etag() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("model");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let original: Vec<u8> = (0..64u32 << 10).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(ck.join("weights.bin"), &original).unwrap();
    attest_as_lab(&ck);
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let store = dir.path().join("store");
    let r = common::run([
        "admit",
        ck.to_str().unwrap(),
        "--repo",
        "lab/model",
        "--store",
        store.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The impostor: same name, size, mtime and read-only mode, other bytes and inode.
    let sha = hex_sha256(&original);
    let blobs = store.join("blobs");
    let other_blobs = store.join("blobs-other");
    let parked = store.join("blobs-parked");
    fs::create_dir(&other_blobs).unwrap();
    let impostor: Vec<u8> = original.iter().map(|b| b ^ 0x5a).collect();
    let impostor_path = other_blobs.join(&sha);
    fs::write(&impostor_path, &impostor).unwrap();
    let mtime = fs::metadata(blobs.join(&sha)).unwrap().modified().unwrap();
    fs::File::options()
        .write(true)
        .open(&impostor_path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    fs::set_permissions(&impostor_path, fs::Permissions::from_mode(0o444)).unwrap();

    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap(), "--policy"])
        .arg(&policy)
        .args(["--listen", "127.0.0.1:0"]);
    let server = Server::spawn(cmd);
    let path = "/lab/model/resolve/main/weights.bin";
    let (status, body) = http_get(&server.addr, path, &[]);
    assert_eq!(status, 200);
    assert!(body == original, "the admitted bytes, before any swap");

    // Renaming folders leaves the blob files' inodes and ctimes as admitted: whenever the path
    // leads to the original, every check of it passes.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let (blobs, other_blobs, parked) = (blobs.clone(), other_blobs.clone(), parked.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                fs::rename(&blobs, &parked).unwrap();
                fs::rename(&other_blobs, &blobs).unwrap();
                fs::rename(&blobs, &other_blobs).unwrap();
                fs::rename(&parked, &blobs).unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let (mut served, mut refused, mut requests) = (0, 0, 0);
    let started = Instant::now();
    while started.elapsed() < RACE {
        let (status, body) = http_get(&server.addr, path, &[]);
        requests += 1;
        match status {
            200 => {
                assert!(
                    body != impostor,
                    "request {requests}: the swapped-in blob was served under the original ETag"
                );
                assert!(body == original, "request {requests}: other bytes served");
                served += 1;
            }
            // Changed (451) or missing for a moment (503): refused, nothing served.
            451 | 503 => refused += 1,
            other => panic!("request {requests}: unexpected status {other}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    eprintln!(
        "{requests} downloads beside {} swaps: {served} served whole, {refused} refused",
        swaps.load(Ordering::Relaxed)
    );
    assert!(
        refused > 0,
        "the swaps never reached the gate: the race was not exercised"
    );
    assert!(
        server.logged_now("the stored file no longer matches what was admitted"),
        "a swapped blob is refused with a log line"
    );
    // Swapped back: the original is served again.
    let (status, body) = http_get(&server.addr, path, &[]);
    assert_eq!(status, 200);
    assert!(body == original);
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}
