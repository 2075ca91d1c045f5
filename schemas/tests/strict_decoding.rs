//! Every strictness rule, on real statements, envelopes and grants; and the key order.

mod common;

use ciborium::Value;
use common::*;
use weightgate_schemas::*;

fn statement_err(bytes: &[u8]) -> StatementError {
    Statement::decode_strict(bytes).unwrap_err()
}

fn cbor_err(bytes: &[u8]) -> CborError {
    match statement_err(bytes) {
        StatementError::Cbor(e) => e,
        other => panic!("{other:?}"),
    }
}

fn schema_err(bytes: &[u8], needle: &str) {
    match cbor_err(bytes) {
        CborError::Schema { message, .. } => assert!(message.contains(needle), "{message}"),
        other => panic!("wanted `{needle}`, got {other:?}"),
    }
}

fn non_canonical(bytes: &[u8]) {
    assert!(matches!(cbor_err(bytes), CborError::NonCanonical { .. }));
}

#[test]
fn every_type_round_trips() {
    for s in [full_statement(), minimal_statement()] {
        assert_eq!(Statement::decode_strict(&s.encode()).unwrap(), s);
    }
    assert_eq!(Grant::decode_strict(&grant().encode()).unwrap(), grant());
    for e in [attestation_envelope(), grant_envelope()] {
        assert_eq!(Envelope::decode_strict(&e.encode()).unwrap(), e);
    }
}

#[test]
fn encoding_is_stable_and_decodes_to_the_same_bytes() {
    let s = full_statement();
    assert_eq!(s.encode(), s.clone().encode());
    // 3e26 + 7 = 0xf8277896582678ac000007: a tag-2 bignum of 11 bytes.
    let total = [&text("total")[..], &hex_bytes("c24bf8277896582678ac000007")].concat();
    assert!(s.encode().windows(total.len()).any(|w| w == total));
    assert!(
        minimal_statement()
            .encode()
            .windows(9)
            .any(|w| w == b"\x65total\x19\x03\xe8")
    );
}

fn hex_bytes(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap()
}

#[test]
fn non_shortest_integers_and_lengths() {
    let b = minimal_statement().encode();
    // `size: 10` as 0x18 0x0a.
    non_canonical(&splice(
        &b,
        &[&text("size")[..], &[0x0a]].concat(),
        &[&text("size")[..], &[0x18, 0x0a]].concat(),
    ));
    // The `model` key with a one-byte length argument.
    non_canonical(&splice(
        &b,
        &text("model"),
        &[&[0x78, 0x05][..], b"model"].concat(),
    ));
    // issued_at (4 bytes) as 8 bytes.
    let issued = [
        &text("issued_at")[..],
        &[0x1a],
        &1_793_491_200u32.to_be_bytes(),
    ]
    .concat();
    let long = [
        &text("issued_at")[..],
        &[0x1b],
        &1_793_491_200u64.to_be_bytes(),
    ]
    .concat();
    non_canonical(&splice(&b, &issued, &long));
    // The top-level map length as 0xb8 0x07.
    let mut m = vec![0xb8, 0x07];
    m.extend_from_slice(&b[1..]);
    assert_eq!(b[0], 0xa7);
    assert_eq!(cbor_err(&m), CborError::NonCanonical { offset: 0 });
}

#[test]
fn operation_counts_only_in_shortest_form() {
    let b = minimal_statement().encode();
    let total = [&text("total")[..], &[0x19, 0x03, 0xe8]].concat();
    // A bignum for a value that fits 64 bits, and one with a leading zero byte.
    non_canonical(&splice(
        &b,
        &total,
        &[&text("total")[..], &[0xc2, 0x42, 0x03, 0xe8]].concat(),
    ));
    let full = full_statement().encode();
    let big = [&text("total")[..], &hex_bytes("c24bf8277896582678ac000007")].concat();
    let padded = [
        &text("total")[..],
        &hex_bytes("c24c00f8277896582678ac000007"),
    ]
    .concat();
    non_canonical(&splice(&full, &big, &padded));
    // A negative bignum, and a bignum over 2^128.
    schema_err(
        &splice(
            &full,
            &big,
            &[&text("total")[..], &hex_bytes("c34bf8277896582678ac000007")].concat(),
        ),
        "negative",
    );
    let huge = [&text("total")[..], &[0xc2, 0x51], &[0xff; 17]].concat();
    schema_err(&splice(&full, &big, &huge), "too large");
}

#[test]
fn indefinite_lengths() {
    let b = full_statement().encode();
    // Top-level map.
    let mut m = b.clone();
    m[0] = 0xbf;
    m.push(0xff);
    non_canonical(&m);
    // The destinations array.
    let dest = [&text("destinations")[..], &[0x82], &text("DE"), &text("US")].concat();
    let indef = [
        &text("destinations")[..],
        &[0x9f],
        &text("DE"),
        &text("US"),
        &[0xff],
    ]
    .concat();
    non_canonical(&splice(&b, &dest, &indef));
    // A text value in two chunks.
    let name = [&text("name")[..], &text("tiny-lm")].concat();
    let chunked = [
        &text("name")[..],
        &[0x7f],
        &text("tiny"),
        &text("-lm"),
        &[0xff],
    ]
    .concat();
    non_canonical(&splice(&b, &name, &chunked));
    // A digest as an indefinite byte string: digests are read as definite strings only.
    let root = [&text("root_sha256")[..], &[0x58, 0x20], &[9; 32]].concat();
    let chunked = [
        &text("root_sha256")[..],
        &[0x5f, 0x50],
        &[9; 16],
        &[0x50],
        &[9; 16],
        &[0xff],
    ]
    .concat();
    schema_err(&splice(&b, &root, &chunked), "expected bytes");
    // The envelope payload as an indefinite byte string.
    let e = attestation_envelope().encode();
    let p = attestation_envelope().payload;
    let len = u16::try_from(p.len()).unwrap();
    let head = [&text("payload")[..], &[0x59], &len.to_be_bytes(), &p[..1]].concat();
    let split = [
        &text("payload")[..],
        &[0x5f, 0x41, p[0], 0x59],
        &(len - 1).to_be_bytes(),
    ]
    .concat();
    let mut indef = splice(&e, &head, &split);
    let sigs = text("signatures");
    let at = indef.windows(sigs.len()).position(|w| w == sigs).unwrap();
    indef.insert(at, 0xff);
    let r = Envelope::decode_strict(&indef);
    assert!(matches!(r, Err(CborError::NonCanonical { .. })), "{r:?}");
}

#[test]
fn duplicate_reordered_unknown_and_null_keys() {
    let b = full_statement().encode();
    // Duplicate key.
    let mut v = to_value(&b);
    entries(&mut v).push((Value::Text("issued_at".into()), Value::Integer(5.into())));
    schema_err(&from_value(&v), "duplicate field `issued_at`");
    // Reordered keys, at the top and nested.
    let mut v = to_value(&b);
    entries(&mut v).swap(0, 1);
    non_canonical(&from_value(&v));
    let mut v = to_value(&b);
    entries(field(&mut v, "entity")).swap(1, 2);
    non_canonical(&from_value(&v));
    // Unknown field, at the top and nested.
    let mut v = to_value(&b);
    entries(&mut v).push((Value::Text("x".into()), Value::Integer(1.into())));
    schema_err(&from_value(&v), "unknown field `x`");
    let mut v = to_value(&b);
    entries(field(&mut v, "model")).push((Value::Text("licence".into()), Value::Bool(true)));
    schema_err(&from_value(&v), "unknown field `licence`");
    // An explicit null (or undefined) for an absent option.
    let mut v = to_value(&minimal_statement().encode());
    let at = entries(&mut v)
        .iter()
        .position(|(k, _)| k.as_text() == Some("references"))
        .unwrap();
    entries(&mut v).insert(at, (Value::Text("expires_at".into()), Value::Null));
    let null = from_value(&v);
    non_canonical(&null);
    let null_key = [&text("expires_at")[..], &[0xf6]].concat();
    non_canonical(&splice(
        &null,
        &null_key,
        &[&text("expires_at")[..], &[0xf7]].concat(),
    ));
    // A missing required field.
    let mut v = to_value(&b);
    entries(&mut v).retain(|(k, _)| k.as_text() != Some("entity"));
    schema_err(&from_value(&v), "missing field `entity`");
    // A byte-string key where text belongs.
    let mut v = to_value(&b);
    entries(&mut v)[0].0 = Value::Bytes(b"model".to_vec());
    non_canonical(&from_value(&v));
}

#[test]
fn tags_and_wrong_types() {
    let b = minimal_statement().encode();
    let issued = [&text("issued_at")[..], &[0x1a]].concat();
    // Tag 1 (epoch time) on an integer; self-describe tag on the whole item.
    non_canonical(&splice(
        &b,
        &issued,
        &[&text("issued_at")[..], &[0xc1, 0x1a]].concat(),
    ));
    non_canonical(&[&[0xd9, 0xd9, 0xf7][..], &b].concat());
    // A float where an integer belongs.
    let size = [&text("size")[..], &[0x0a]].concat();
    schema_err(
        &splice(
            &b,
            &size,
            &[&text("size")[..], &[0xf9, 0x49, 0x00]].concat(),
        ),
        "float",
    );
    // A negative size; a string enum value that does not exist.
    schema_err(
        &splice(&b, &size, &[&text("size")[..], &[0x29]].concat()),
        "negative",
    );
    schema_err(
        &splice(&b, &text("measured"), &text("guessed")),
        "unknown variant `guessed`",
    );
}

#[test]
fn trailing_bytes() {
    for extra in [&[0x00][..], &[0xa0], &minimal_statement().encode()] {
        let b = [&minimal_statement().encode()[..], extra].concat();
        assert_eq!(
            cbor_err(&b),
            CborError::TrailingBytes { count: extra.len() }
        );
    }
    let e = [&attestation_envelope().encode()[..], &[0xff]].concat();
    assert_eq!(
        Envelope::decode_strict(&e),
        Err(CborError::TrailingBytes { count: 1 })
    );
}

#[test]
fn truncated_and_malformed() {
    let b = full_statement().encode();
    for cut in [1, b.len() / 2, b.len() - 1] {
        assert_eq!(cbor_err(&b[..cut]), CborError::Truncated, "cut at {cut}");
    }
    assert!(matches!(
        Statement::decode_strict(&[]),
        Err(StatementError::Cbor(CborError::Truncated))
    ));
    // A length that claims 2^63 bytes is refused without allocating them.
    let huge = [
        &[0xa3][..],
        &text("payload"),
        &[0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(Envelope::decode_strict(&huge), Err(CborError::Truncated));
    // Reserved additional information (28) is not CBOR.
    assert!(matches!(
        Envelope::decode_strict(&[0xa3, 0x1c]),
        Err(CborError::Malformed { .. })
    ));
    // Invalid UTF-8 in a text string.
    let name = [&text("name")[..], &text("tiny-lm")].concat();
    let bad = [
        &text("name")[..],
        &[0x67, b't', b'i', b'n', b'y', 0xff, b'l', b'm'],
    ]
    .concat();
    assert!(Statement::decode_strict(&splice(&b, &name, &bad)).is_err());
}

#[test]
fn oversize_is_refused_before_parsing() {
    let mut s = minimal_statement();
    s.model.name = "x".repeat(MAX_STATEMENT_LEN);
    let b = s.encode();
    assert_eq!(
        cbor_err(&b),
        CborError::TooLarge {
            len: b.len(),
            max: MAX_STATEMENT_LEN
        }
    );
    let e = envelope(ATTESTATION_PAYLOAD_TYPE, vec![0; MAX_ENVELOPE_LEN]).encode();
    assert!(matches!(
        Envelope::decode_strict(&e),
        Err(CborError::TooLarge { .. })
    ));
    let mut g = grant();
    g.reference.authority = "x".repeat(MAX_GRANT_LEN);
    assert!(matches!(
        Grant::decode_strict(&g.encode()),
        Err(StatementError::Cbor(CborError::TooLarge { .. }))
    ));
    // A statement of exactly the largest size passes the size cap (its giant name is then
    // refused as too long), and an envelope carrying it decodes.
    let mut s = minimal_statement();
    s.model.name = String::new();
    let base = s.encode().len();
    s.model.name = "x".repeat(MAX_STATEMENT_LEN - base - 4); // the length grows by 4 bytes
    let b = s.encode();
    assert_eq!(b.len(), MAX_STATEMENT_LEN);
    assert!(matches!(
        Statement::decode_strict(&b),
        Err(StatementError::FieldTooLong {
            field: "model.name",
            ..
        })
    ));
    let e = envelope(ATTESTATION_PAYLOAD_TYPE, b);
    assert_eq!(Envelope::decode_strict(&e.encode()).unwrap(), e);
}

#[test]
fn deep_nesting_errors_without_overflowing_the_stack() {
    let mut deep = vec![0x81u8; 100_000];
    deep.push(0x00);
    // As the whole item.
    assert!(Statement::decode_strict(&deep).is_err());
    assert!(Envelope::decode_strict(&deep).is_err());
    assert!(Grant::decode_strict(&deep).is_err());
    // As the value of an unknown field (the schema-version probe skips unknown values, so it
    // meets the nesting and must stop at the limit).
    let b = minimal_statement().encode();
    let mut v = [&[b[0] + 1][..], &b[1..], &text("x"), &deep].concat();
    schema_err(&v, "unknown field `x`");
    // With schema_version 2, the probe is what reads it.
    v = splice(
        &v,
        &[&text("schema_version")[..], &[0x01]].concat(),
        &[&text("schema_version")[..], &[0x02]].concat(),
    );
    assert!(Statement::decode_strict(&v).is_err());
    // As a known field's value.
    let refs = [&text("references")[..], &[0x80]].concat();
    let nested = [&text("references")[..], &deep].concat();
    assert!(Statement::decode_strict(&splice(&b, &refs, &nested)).is_err());
    // 10^5 nested arrays and maps as an envelope's signatures.
    let e = envelope(ATTESTATION_PAYLOAD_TYPE, vec![]).encode();
    let key = text("signatures");
    let head = &e[..e.windows(key.len()).position(|w| w == key).unwrap() + key.len()];
    let mut maps = Vec::new();
    for _ in 0..100_000 {
        maps.extend_from_slice(&[0xa1, 0x63, b's', b'i', b'g']);
    }
    for nested in [&deep, &[&[0x81][..], &maps, &[0x40]].concat()] {
        assert!(Envelope::decode_strict(&[head, nested].concat()).is_err());
    }
}

#[test]
fn unknown_schema_version_has_its_own_error() {
    let version = [&text("schema_version")[..], &[0x01]].concat();
    let b = minimal_statement().encode();
    let unknown = |v: u64| StatementError::UnknownSchemaVersion {
        found: v,
        supported: 1,
    };
    for (enc, found) in [
        (vec![0x02], 2),
        (vec![0x00], 0),
        (vec![0x1b, 0, 0, 1, 0, 0, 0, 0, 0], 1 << 40),
    ] {
        let v = splice(&b, &version, &[&text("schema_version")[..], &enc].concat());
        assert_eq!(statement_err(&v), unknown(found));
    }
    // A version-2 statement with fields v1 does not know is still named as version 2.
    let mut v = to_value(&splice(
        &b,
        &version,
        &[&text("schema_version")[..], &[0x02]].concat(),
    ));
    entries(&mut v).insert(0, (Value::Text("new".into()), Value::Array(vec![])));
    entries(field(&mut v, "model")).push((Value::Text("family".into()), Value::Text("x".into())));
    let v2 = from_value(&v);
    assert_eq!(statement_err(&v2), unknown(2));
    assert_eq!(
        statement_err(&v2).to_string(),
        "unknown schema version 2 (this build reads version 1)"
    );
    // Version 1 with an unknown field is an unknown field, not a version problem.
    let mut v = to_value(&b);
    entries(&mut v).insert(0, (Value::Text("new".into()), Value::Array(vec![])));
    schema_err(&from_value(&v), "unknown field `new`");
    // A version that is not an integer is a shape error.
    schema_err(
        &splice(
            &b,
            &version,
            &[&text("schema_version")[..], &text("1")].concat(),
        ),
        "invalid type",
    );
}

#[test]
fn digests_are_exactly_32_bytes() {
    let b = full_statement().encode();
    let root = [&text("root_sha256")[..], &[0x58, 0x20], &[9; 32]].concat();
    for (len, head) in [
        (31usize, vec![0x58, 0x1f]),
        (33, vec![0x58, 0x21]),
        (0, vec![0x40]),
        (64, vec![0x58, 0x40]),
    ] {
        let wrong = [&text("root_sha256")[..], &head, &vec![9; len]].concat();
        schema_err(
            &splice(&b, &root, &wrong),
            &format!("digest of {len} bytes, expected 32"),
        );
    }
    // Hex text where bytes belong.
    let as_text = [&text("root_sha256")[..], &text(&d(9).to_hex())].concat();
    schema_err(
        &splice(&b, &root, &as_text),
        "invalid type: string, expected bytes",
    );
}

/// RFC 8949 §4.2.1: map keys sorted by their encoded bytes (for text keys: length first, then
/// bytewise), at every level. This is what the field declaration order must produce.
#[test]
fn field_declaration_order_is_core_deterministic() {
    fn check(v: &Value, path: &str, seen: &mut usize) {
        match v {
            Value::Map(m) => {
                let keys: Vec<Vec<u8>> = m.iter().map(|(k, _)| cbor::to_vec(k).unwrap()).collect();
                for w in keys.windows(2) {
                    assert!(w[0].len() <= w[1].len(), "{path}: longer key first");
                    assert!(
                        w[0] < w[1],
                        "{path}: keys out of order: {:02x?} before {:02x?}",
                        w[0],
                        w[1]
                    );
                }
                for (k, v) in m {
                    *seen += 1;
                    check(
                        v,
                        &format!("{path}.{}", k.as_text().expect("text keys only")),
                        seen,
                    );
                }
            }
            Value::Array(a) => a.iter().for_each(|i| check(i, &format!("{path}[]"), seen)),
            Value::Bytes(b) if path.ends_with("payload") => check(&to_value(b), path, seen),
            _ => {}
        }
    }
    let mut keys = 0;
    check(
        &to_value(&attestation_envelope().encode()),
        "envelope",
        &mut keys,
    );
    check(
        &to_value(&grant_envelope().encode()),
        "grant-envelope",
        &mut keys,
    );
    check(
        &to_value(&minimal_statement().encode()),
        "statement",
        &mut keys,
    );
    // Every key of every type was visited at least once (full statement: 75 keys, envelopes 10).
    assert!(keys > 100, "{keys}");
}

#[test]
fn json_view_is_hex_decimal_and_base64() {
    let s = full_statement();
    let j = json_view::statement_to_json(&s);
    assert_eq!(j["subject"]["root_sha256"], d(9).to_hex());
    assert_eq!(j["compute"]["total"], "300000000000000000000000007");
    assert_eq!(j["compute"]["inputs"]["params_total"], 405_000_000_000u64);
    assert_eq!(j["compute"]["method"], "hardware");
    assert_eq!(j["references"][0]["kind"], "export-licence");
    assert!(
        j["subject"]["files"][0].get("tensors").is_none(),
        "absent options are absent in JSON too"
    );
    assert_eq!(serde_json::from_value::<Statement>(j).unwrap(), s);

    let g = json_view::grant_to_json(&grant());
    assert_eq!(serde_json::from_value::<Grant>(g).unwrap(), grant());

    let e = json_view::envelope_to_json(&grant_envelope());
    assert_eq!(e["payloadType"], GRANT_PAYLOAD_TYPE);
    assert_eq!(e["signatures"][0]["sig"], base64_of(&[0x5a; 64]));
    assert_eq!(e["payload"], base64_of(&grant().encode()));
    assert_eq!(
        serde_json::from_value::<Envelope>(e).unwrap(),
        grant_envelope()
    );
}

/// Standard base64, written out here so the test does not share code with the crate.
fn base64_of(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
