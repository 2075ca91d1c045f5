//! `weightgate.cddl` against fresh output of this crate and against every envelope in testdata/.
//!
//! The cddl crate validates shape, not encoding form (it decodes into a generic value first), so
//! canonical form is covered by `strict_decoding.rs`; together they cover the format.

mod common;

use std::path::{Path, PathBuf};

use ciborium::Value;
use common::*;
use weightgate_schemas::*;

const CDDL: &str = include_str!("../weightgate.cddl");

/// Validates against rule `root` (the file's first rule is the default root, so prefix another).
fn validate(root: &str, cbor: &[u8]) -> Result<(), String> {
    let schema = format!("root = {root}\n{CDDL}");
    cddl::validate_cbor_from_slice(&schema, cbor, None).map_err(|e| e.to_string())
}

#[test]
fn the_schema_parses_and_its_first_rule_is_the_file() {
    let e = attestation_envelope().encode();
    cddl::validate_cbor_from_slice(CDDL, &e, None).unwrap();
    assert!(cddl::validate_cbor_from_slice(CDDL, &full_statement().encode(), None).is_err());
}

#[test]
fn fresh_examples_validate() {
    for s in [full_statement(), minimal_statement()] {
        validate("statement", &s.encode()).unwrap();
        let e = envelope(ATTESTATION_PAYLOAD_TYPE, s.encode()).encode();
        validate("attestation-envelope", &e).unwrap();
        validate("weightgate-envelope", &e).unwrap();
        validate("envelope", &e).unwrap();
    }
    validate("grant", &grant().encode()).unwrap();
    for root in ["grant-envelope", "weightgate-envelope", "envelope"] {
        validate(root, &grant_envelope().encode()).unwrap();
    }
    // Extremes of the integer types.
    let mut s = full_statement();
    s.issued_at = i64::MIN;
    s.expires_at = Some(i64::MAX);
    s.subject.files[0].size = u64::MAX;
    s.compute.total = Ops(u128::MAX);
    s.compute.inputs.utilisation_permille = Some(1000);
    validate("statement", &s.encode()).unwrap();
}

/// Breaks one field of a valid document at a time; the schema must refuse each.
#[test]
fn the_schema_refuses_what_the_format_forbids() {
    type Edit = Box<dyn Fn(&mut Statement)>;
    type ValueEdit = Box<dyn Fn(&mut Value)>;
    let statement_edits: Vec<(&str, Edit)> = vec![
        (
            "three-letter country",
            Box::new(|s| s.entity.country = "DEU".into()),
        ),
        (
            "lower-case country",
            Box::new(|s| s.entity.parent_country = "de".into()),
        ),
        (
            "lower-case destination",
            Box::new(|s| s.references[0].destinations[0] = "us".into()),
        ),
        (
            "short LEI",
            Box::new(|s| {
                s.entity.lei.as_mut().unwrap().pop();
            }),
        ),
        (
            "lower-case LEI",
            Box::new(|s| s.entity.lei = s.entity.lei.as_ref().map(|l| l.to_lowercase())),
        ),
        (
            "letter in LEI check digits",
            Box::new(|s| s.entity.lei.as_mut().unwrap().replace_range(19.., "X")),
        ),
        (
            "utilisation over 1000",
            Box::new(|s| s.compute.inputs.utilisation_permille = Some(1001)),
        ),
        ("no files", Box::new(|s| s.subject.files.clear())),
        ("version 2", Box::new(|s| s.schema_version = 2)),
    ];
    for (name, edit) in statement_edits {
        let mut s = full_statement();
        edit(&mut s);
        assert!(
            validate("statement", &s.encode()).is_err(),
            "{name} accepted"
        );
        // Inside an envelope, through `.cbor`.
        let e = envelope(ATTESTATION_PAYLOAD_TYPE, s.encode()).encode();
        assert!(
            validate("weightgate-envelope", &e).is_err(),
            "{name} accepted in an envelope"
        );
    }

    let value_edits: Vec<(&str, &str, ValueEdit)> = vec![
        (
            "unknown key",
            "statement",
            Box::new(|v| entries(v).push((Value::Text("x".into()), Value::Bool(true)))),
        ),
        (
            "missing key",
            "statement",
            Box::new(|v| entries(v).retain(|(k, _)| k.as_text() != Some("entity"))),
        ),
        (
            "null option",
            "statement",
            Box::new(|v| *field(v, "expires_at") = Value::Null),
        ),
        (
            "31-byte digest",
            "statement",
            Box::new(|v| *field(field(v, "subject"), "root_sha256") = Value::Bytes(vec![0; 31])),
        ),
        (
            "hex digest",
            "statement",
            Box::new(|v| *field(field(v, "subject"), "root_sha256") = Value::Text("00".repeat(32))),
        ),
        (
            "float",
            "statement",
            Box::new(|v| *field(v, "issued_at") = Value::Float(1.5)),
        ),
        (
            "time over i64",
            "statement",
            Box::new(|v| *field(v, "issued_at") = Value::Integer(u64::MAX.into())),
        ),
        (
            "text ops",
            "statement",
            Box::new(|v| *field(field(v, "compute"), "total") = Value::Text("1e26".into())),
        ),
        (
            "negative ops",
            "statement",
            Box::new(|v| *field(field(v, "compute"), "total") = Value::Integer((-1).into())),
        ),
        (
            "unknown method",
            "statement",
            Box::new(|v| *field(field(v, "compute"), "method") = Value::Text("6ND".into())),
        ),
        (
            "unknown kind",
            "grant",
            Box::new(|v| *field(field(v, "reference"), "kind") = Value::Text("licence".into())),
        ),
        (
            "63-byte sig",
            "envelope",
            Box::new(|v| *field(sig0(v), "sig") = Value::Bytes(vec![0; 63])),
        ),
        (
            "upper-case keyid",
            "envelope",
            Box::new(|v| *field(sig0(v), "keyid") = Value::Text("AB".repeat(32))),
        ),
        (
            "short keyid",
            "envelope",
            Box::new(|v| *field(sig0(v), "keyid") = Value::Text("ab".repeat(31))),
        ),
        (
            "no signatures",
            "weightgate-envelope",
            Box::new(|v| *field(v, "signatures") = Value::Array(vec![])),
        ),
        (
            "in-toto type",
            "weightgate-envelope",
            Box::new(|v| {
                *field(v, "payloadType") = Value::Text("application/vnd.in-toto+json".into())
            }),
        ),
        (
            "payload not CBOR",
            "weightgate-envelope",
            Box::new(|v| *field(v, "payload") = Value::Bytes(b"{}".to_vec())),
        ),
        (
            "grant as attestation",
            "weightgate-envelope",
            Box::new(|v| *field(v, "payload") = Value::Bytes(grant().encode())),
        ),
        (
            "payload as text",
            "envelope",
            Box::new(|v| *field(v, "payload") = Value::Text("oA==".into())),
        ),
    ];
    for (name, root, edit) in value_edits {
        let valid = match root {
            "statement" => full_statement().encode(),
            "grant" => grant().encode(),
            _ => attestation_envelope().encode(),
        };
        validate(root, &valid).unwrap();
        let mut v = to_value(&valid);
        edit(&mut v);
        assert!(validate(root, &from_value(&v)).is_err(), "{name} accepted");
    }
}

/// The first signature map of an envelope value.
fn sig0(v: &mut Value) -> &mut Value {
    match field(v, "signatures") {
        Value::Array(a) => &mut a[0],
        other => panic!("{other:?}"),
    }
}

/// Every `*.att` and `*.grant` under testdata/ that is not a `fail_*` case, if there are any.
#[test]
fn every_envelope_in_testdata_validates() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(&p, out);
            } else if !name.starts_with("fail_")
                && (name.ends_with(".att") || name.ends_with(".grant"))
            {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata"),
        &mut files,
    );
    for p in &files {
        let bytes = std::fs::read(p).unwrap();
        validate("weightgate-envelope", &bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let env =
            Envelope::decode_strict(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let ok = match env.payload_type.as_str() {
            ATTESTATION_PAYLOAD_TYPE => Statement::decode_strict(&env.payload).map(drop),
            _ => Grant::decode_strict(&env.payload).map(drop),
        };
        ok.unwrap_or_else(|e| panic!("{} payload: {e}", p.display()));
    }
    eprintln!("{} envelopes in testdata/ validate", files.len());
}
