//! Golden and `fail_*` envelope vectors.
//!
//! The golden envelope is what `attest` writes for the tiny checkpoint, the fixed test key and a
//! fixed time; ed25519 is deterministic, so any change of encoding changes its bytes and fails
//! here. The `fail_*` envelopes are derived from it. Run with `WEIGHTGATE_WRITE_VECTORS=1` to
//! rewrite them after an intended format change (and say so in docs/format.md).

use crate::common;

use std::fs;
use std::path::Path;

use common::{copy_dir, run, testdata};
use weightgate_attest::signing::{Ed25519FileSigner, sign_envelope};
use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement, pae};

const ISSUED_AT: &str = "2026-11-01T00:00:00Z";

fn golden_from_attest() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let r = run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        testdata().join("keys/test-lab.key").to_str().unwrap(),
        "--claims",
        testdata().join("claims/tiny-below.toml").to_str().unwrap(),
        "--issued-at",
        ISSUED_AT,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    fs::read(ck.join("weightgate.att")).unwrap()
}

/// Replaces the first occurrence of `from` with `to`.
fn splice(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

fn resign(statement_bytes: Vec<u8>) -> Vec<u8> {
    let key = Ed25519FileSigner::load(&testdata().join("keys/test-lab.key")).unwrap();
    sign_envelope(ATTESTATION_PAYLOAD_TYPE, statement_bytes, &key)
        .unwrap()
        .encode()
}

/// (name, bytes, expected message from `inspect`, or None when only a signature check catches it)
fn fail_vectors(golden: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let env = Envelope::decode_strict(golden).unwrap();
    let mut v = Vec::new();

    let mut bad_sig = env.clone();
    bad_sig.signatures[0].sig[10] ^= 0x01;
    v.push(("fail_bad_signature", bad_sig.encode(), "signature"));

    let mut other_payload = env.clone();
    other_payload.payload = splice(&env.payload, b"tiny-lm", b"tiny-LM");
    v.push(("fail_payload_altered", other_payload.encode(), "signature"));

    let mut wrong_type = env.clone();
    wrong_type.payload_type = "application/vnd.in-toto+json".into();
    v.push((
        "fail_wrong_payload_type",
        wrong_type.encode(),
        "unknown payload type `application/vnd.in-toto+json`",
    ));

    // Payload length as a 4-byte integer where 2 bytes suffice.
    let len = env.payload.len() as u16;
    let short = [&[0x67][..], b"payload", &[0x59], &len.to_be_bytes()].concat();
    let long = [&[0x67][..], b"payload", &[0x5a, 0, 0], &len.to_be_bytes()].concat();
    v.push((
        "fail_non_shortest_length",
        splice(golden, &short, &long),
        "not in canonical form",
    ));

    // The signatures array with indefinite length.
    let sigs = [&[0x6a][..], b"signatures", &[0x81]].concat();
    let indef = [&[0x6a][..], b"signatures", &[0x9f]].concat();
    let mut indefinite = splice(golden, &sigs, &indef);
    let type_key = [&[0x6b][..], b"payloadType"].concat();
    let at = indefinite
        .windows(type_key.len())
        .position(|w| w == type_key)
        .unwrap();
    indefinite.insert(at, 0xff);
    v.push((
        "fail_indefinite_length",
        indefinite,
        "not in canonical form",
    ));

    // payloadType twice.
    let at = golden
        .windows(type_key.len())
        .position(|w| w == type_key)
        .unwrap();
    let mut dup = golden.to_vec();
    dup[0] = 0xa4;
    dup.extend_from_slice(&golden[at..]);
    v.push(("fail_duplicate_key", dup, "duplicate field `payloadType`"));

    // payloadType first instead of last.
    let reordered = [&[0xa3][..], &golden[at..], &golden[1..at]].concat();
    v.push(("fail_reordered_keys", reordered, "not in canonical form"));

    let mut trailing = golden.to_vec();
    trailing.push(0x00);
    v.push(("fail_trailing_bytes", trailing, "1 trailing bytes"));

    // A map claiming a 2^63-byte payload: must be refused without allocating it.
    let huge = [
        &[0xa3, 0x67][..],
        b"payload",
        &[0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    v.push(("fail_huge_length", huge, "malformed CBOR"));

    // 100,000 nested arrays: typed decoding stops at the first wrong type, without recursing.
    let mut deep = vec![0x81u8; 100_000];
    deep.push(0x00);
    v.push((
        "fail_deep_nesting",
        deep,
        "invalid type: sequence, expected map",
    ));
    // The same nesting in a signed statement, as the value of an unknown field.
    let mut deep_statement = env.payload.clone();
    deep_statement[0] += 1;
    deep_statement.extend_from_slice(&[0x61, b'x']);
    deep_statement.extend(std::iter::repeat_n(0x81u8, 100_000));
    deep_statement.push(0x00);
    v.push((
        "fail_statement_deep_nesting",
        resign(deep_statement),
        "payload: malformed CBOR",
    ));

    let mut unknown_field = golden.to_vec();
    unknown_field[0] = 0xa4;
    unknown_field.extend_from_slice(&[0x61, b'x', 0x01]);
    v.push(("fail_unknown_field", unknown_field, "unknown field `x`"));

    // Re-signed statements that decode badly.
    let statement = Statement::decode_strict(&env.payload).unwrap();
    let version_key = [&[0x6e][..], b"schema_version", &[0x01]].concat();
    let v2 = splice(
        &env.payload,
        &version_key,
        &[&[0x6e][..], b"schema_version", &[0x02]].concat(),
    );
    v.push((
        "fail_unknown_schema_version",
        resign(v2),
        "unknown schema version 2",
    ));
    let mut non_canonical_statement = env.payload.clone();
    non_canonical_statement.push(0x00);
    v.push((
        "fail_statement_trailing_bytes",
        resign(non_canonical_statement),
        "trailing bytes",
    ));
    let _ = statement;
    v
}

#[test]
fn golden_envelope_and_fail_vectors_are_current() {
    let golden = golden_from_attest();
    let dir = testdata().join("envelopes");
    let write = std::env::var_os("WEIGHTGATE_WRITE_VECTORS").is_some();
    let mut expected_files = vec![("golden_tiny.att".to_string(), golden.clone())];
    for (name, bytes, msg) in fail_vectors(&golden) {
        expected_files.push((format!("{name}.att"), bytes));
        expected_files.push((format!("{name}.expected"), format!("{msg}\n").into_bytes()));
    }
    if write {
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &expected_files {
            fs::write(dir.join(name), bytes).unwrap();
        }
        fs::write(dir.join("golden_tiny.hex"), hex::encode(&golden) + "\n").unwrap();
    }
    for (name, bytes) in &expected_files {
        let on_disk = fs::read(dir.join(name)).unwrap_or_else(|_| {
            panic!("missing testdata/envelopes/{name}; run with WEIGHTGATE_WRITE_VECTORS=1")
        });
        assert!(
            on_disk == *bytes,
            "testdata/envelopes/{name} differs from what the code now produces: the encoding changed"
        );
    }
    assert_eq!(
        fs::read_to_string(dir.join("golden_tiny.hex"))
            .unwrap()
            .trim(),
        hex::encode(&golden)
    );
}

#[test]
fn golden_envelope_signature_checks_with_the_test_key() {
    let golden = fs::read(testdata().join("envelopes/golden_tiny.att")).unwrap();
    let env = Envelope::decode_strict(&golden).unwrap();
    let key =
        weightgate_attest::keys::load_verifying_key(&testdata().join("keys/test-lab.pub")).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&env.signatures[0].sig).unwrap();
    key.verify_strict(&pae(&env.payload_type, &env.payload), &sig)
        .unwrap();
    assert_eq!(
        env.signatures[0].keyid,
        weightgate_attest::keys::key_id(&key)
    );
}

/// Every decode-level `fail_*` envelope is refused by `inspect` with its message and exit 2; the
/// signature-level ones decode (their refusal is `verify`'s job, tested there).
#[test]
fn inspect_refuses_every_malformed_envelope() {
    let dir = testdata().join("envelopes");
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap();
        if !(name.starts_with("fail_") && name.ends_with(".att")) {
            continue;
        }
        let want = fs::read_to_string(p.with_extension("expected")).unwrap();
        let want = want.trim();
        let r = run(["inspect", p.to_str().unwrap()]);
        if want == "signature" {
            assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        } else {
            assert_eq!(r.code, 2, "{name}: {}", r.stdout);
            assert!(
                r.stderr.contains(want),
                "{name}: got {:?}, want {want:?}",
                r.stderr
            );
            assert!(
                r.stderr.contains(name),
                "{name}: error does not name the file"
            );
        }
        n += 1;
    }
    assert!(n >= 12, "only {n} fail envelopes");
}

#[test]
fn fail_vectors_are_small() {
    for e in fs::read_dir(testdata().join("envelopes")).unwrap() {
        let p = e.unwrap().path();
        assert!(
            fs::metadata(&p).unwrap().len() < 1 << 20,
            "{}",
            Path::new(&p).display()
        );
    }
}
