//! Untrusted strings reach the terminal escaped: an envelope's keyid and payload type, and a
//! safetensors `__metadata__`, cannot paint a fake screen in `inspect` or `verify`.

use crate::common;

use std::fs;

use common::{attest_as_lab, copy_dir, run, td, testdata};
use weightgate_schemas::Envelope;

const PAINT: &str = "\u{1b}[2J\u{1b}[H\u{1b}[32mALLOWED\u{1b}[0m\r\u{9b}1A\u{202e}";

fn assert_inert(what: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n') && !text.contains('\u{202e}'),
        "{what} printed a raw control character: {text:?}"
    );
    assert!(text.contains("\\u{1b}[2J"), "{what} hid the input: {text}");
}

#[test]
fn keyids_payload_types_and_metadata_are_escaped_in_human_output() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    // A shard whose header metadata carries escape sequences.
    let header = serde_json::json!({
        "__metadata__": { "format": "pt", "note": PAINT },
        "w": { "dtype": "F32", "shape": [1], "data_offsets": [0, 4] },
    })
    .to_string();
    let mut shard = (header.len() as u64).to_le_bytes().to_vec();
    shard.extend(header.as_bytes());
    shard.extend([0u8; 4]);
    fs::write(ck.join("painted.safetensors"), shard).unwrap();
    let r = run(["inspect", ck.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_inert("inspect CHECKPOINT", &r.stdout);

    attest_as_lab(&ck);
    let att = ck.join("weightgate.att");
    // The keyid is not signed: anyone can rewrite it.
    let mut env = Envelope::decode_strict(&fs::read(&att).unwrap()).unwrap();
    env.signatures[0].keyid = format!("lab{PAINT}");
    fs::write(&att, env.encode()).unwrap();
    let r = run(["inspect", att.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_inert("inspect ENVELOPE", &r.stdout);
    let r = run([
        "verify",
        ck.to_str().unwrap(),
        "--trust",
        &td("keys/test-other.pub"),
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_inert("verify", &r.stdout);

    // An unknown payload type is named in the error, escaped.
    env.payload_type = format!("x/{PAINT}");
    fs::write(&att, env.encode()).unwrap();
    let r = run(["inspect", att.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_inert("inspect error", &r.stderr);
}
