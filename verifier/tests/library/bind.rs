//! The second stage: the statement bound to the bytes on disk (sizes, digests, the file list).

use std::fs;

use crate::support::{Judged, codes, policy_trusting, read, tiny_copy};

fn verify_copy(change: impl FnOnce(&std::path::Path)) -> Vec<&'static str> {
    let (_dir, copy) = tiny_copy();
    change(&copy);
    let d = Judged::of(copy).verify(
        &read("envelopes/golden_tiny.att"),
        &policy_trusting(&["test-lab"], ""),
    );
    assert!(!d.allowed, "{:?}", d.checks);
    codes(&d)
}

#[test]
fn the_tiny_checkpoint_matches_its_golden_envelope() {
    let d = Judged::tiny().verify(
        &read("envelopes/golden_tiny.att"),
        &policy_trusting(&["test-lab"], ""),
    );
    assert!(d.allowed, "{:?}", d.reasons);
    assert_eq!(d.facts.bytes_hashed, 1799);
    assert_eq!(
        d.facts.root_sha256.as_deref(),
        Some("511c1c8be1a9ca13b4a3566684e9d07480f239fe46784d910875018b1154e84b")
    );
}

#[test]
fn a_changed_byte_is_a_digest_mismatch() {
    let got = verify_copy(|ck| {
        let shard = ck.join("model-00002-of-00002.safetensors");
        let mut bytes = fs::read(&shard).unwrap();
        *bytes.last_mut().unwrap() ^= 0x01;
        fs::write(&shard, bytes).unwrap();
    });
    assert_eq!(got, ["subject.digest_mismatch"]);
}

#[test]
fn a_missing_file_is_named() {
    let got = verify_copy(|ck| fs::remove_file(ck.join("config.json")).unwrap());
    assert!(got.contains(&"subject.missing_file"), "{got:?}");
    assert!(got.iter().all(|c| c.starts_with("subject.")), "{got:?}");
}

#[test]
fn a_file_the_statement_does_not_list_is_refused() {
    let got = verify_copy(|ck| fs::write(ck.join("notes.txt"), b"added later").unwrap());
    assert_eq!(got, ["subject.extra_file"]);
}

#[test]
fn a_longer_file_is_a_size_mismatch() {
    let got = verify_copy(|ck| {
        let config = ck.join("config.json");
        let mut bytes = fs::read(&config).unwrap();
        bytes.push(b'\n');
        fs::write(&config, bytes).unwrap();
    });
    assert!(got.contains(&"subject.size_mismatch"), "{got:?}");
}
