//! The bytes hashed are the bytes whose header was checked: a same-size file renamed over a
//! checked one between reading its header and hashing it (the race `verify --full` lost) is
//! refused, not hashed. The race is replayed here step by step, deterministically.

use std::fs;
use std::path::Path;

use weightgate_attest::hashing::{HashOptions, hash_checkpoint};
use weightgate_attest::reading::{Checkpoint, CheckpointError, OpenOptions};

/// A one-tensor safetensors file image whose header is `header`, padded to `len` bytes total.
fn shard(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend(header.as_bytes());
    v.extend(data);
    v
}

fn checked(dir: &Path) -> Checkpoint {
    Checkpoint::open(dir, &OpenOptions::default()).unwrap()
}

#[test]
fn a_file_replaced_between_its_header_check_and_hashing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = shard(
        r#"{"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#,
        &[1; 8],
    );
    // Same size; its header is overlapping and would be refused if it were parsed.
    let evil = shard(
        r#"{"w":{"dtype":"U8","shape":[8],"data_offsets":[0,9]}}"#,
        &[2; 8],
    );
    assert_eq!(good.len(), evil.len());
    let path = dir.path().join("model.safetensors");
    fs::write(&path, &good).unwrap();
    let ck = checked(dir.path());
    // Renamed over it after the header check.
    let tmp = dir.path().join("x.tmp");
    fs::write(&tmp, &evil).unwrap();
    fs::rename(&tmp, &path).unwrap();
    let err = hash_checkpoint(&ck, &HashOptions::default(), &|_| {}).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::ChangedWhileHashing { what, .. }
            if what.contains("no longer the file whose header was checked")),
        "{err}"
    );

    // Modified in place (same inode, new modification time): refused too.
    fs::write(&path, &good).unwrap();
    let ck = checked(dir.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&path, &evil).unwrap();
    let err = hash_checkpoint(&ck, &HashOptions::default(), &|_| {}).unwrap_err();
    assert!(
        matches!(err, CheckpointError::ChangedWhileHashing { .. }),
        "{err}"
    );

    // Unchanged: hashed.
    fs::write(&path, &good).unwrap();
    let ck = checked(dir.path());
    hash_checkpoint(&ck, &HashOptions::default(), &|_| {}).unwrap();
}
