//! Every envelope in testdata/ and freshly encoded examples validate against weightgate.cddl,
//! and the canonical key order holds at every level.

use std::path::Path;

use ciborium::Value;
use weightgate_schemas::*;

const CDDL: &str = include_str!("../weightgate.cddl");

/// The CDDL file has several roots; validate against one by prefixing a root rule.
fn validate(root: &str, cbor: &[u8]) -> Result<(), String> {
    let schema = format!("root = {root}\n{CDDL}");
    cddl::validate_cbor_from_slice(&schema, cbor, None).map_err(|e| e.to_string())
}

fn example_statement(big: bool) -> Statement {
    let d = Digest([7; 32]);
    Statement {
        model: Model { name: "m".into(), version: "1".into(), open_weights: true },
        entity: Entity {
            lei: "549300WGTGATETEST087".into(),
            contact: "c".into(),
            country: "DE".into(),
            legal_name: "L".into(),
            parent_country: "US".into(),
        },
        compute: Compute {
            total: Ops(if big { 3 * 10u128.pow(26) } else { 1000 }),
            inputs: EstimationInputs {
                tokens: Some(Ops(10u128.pow(13))),
                accelerator: Some("H100".into()),
                params_total: Some(352),
                params_active: Some(352),
                accelerator_count: Some(8),
                accelerator_hours: Some(100),
                utilisation_permille: Some(400),
                peak_flops_per_accelerator: Some(Ops(989 * 10u128.pow(12))),
            },
            method: EstimationMethod::Hardware,
            components: Components {
                base_model: big.then(|| BaseModel {
                    ops: Ops(10u128.pow(26)),
                    name: "base".into(),
                    root_sha256: d,
                    attestation_sha256: Some(d),
                }),
                pre_training: Ops(if big { 2 * 10u128.pow(26) } else { 1000 }),
                post_training: Ops(0),
                synthetic_data: Ops(0),
            },
        },
        subject: Subject {
            files: vec![FileEntry {
                path: "model.safetensors".into(),
                size: 10,
                blake3: d,
                sha256: d,
                tensors: big.then(|| vec![TensorDigest { name: "a".into(), blake3: d }]),
            }],
            root_sha256: d,
        },
        issued_at: 1_700_000_000,
        expires_at: big.then_some(1_800_000_000),
        references: vec![Reference {
            kind: ReferenceKind::ExportLicence,
            number: "D1".into(),
            authority: "BIS".into(),
            valid_from: 0,
            valid_until: Some(1),
            destinations: vec!["DE".into()],
        }],
        schema_version: SCHEMA_VERSION,
    }
}

fn envelope(payload: Vec<u8>, payload_type: &str) -> Envelope {
    Envelope {
        payload,
        signatures: vec![Signature { sig: vec![1; 64], keyid: "a".repeat(64) }],
        payload_type: payload_type.into(),
    }
}

fn check_key_order(v: &Value, path: &str) {
    match v {
        Value::Map(entries) => {
            let keys: Vec<Vec<u8>> = entries
                .iter()
                .map(|(k, _)| {
                    let mut b = Vec::new();
                    ciborium::ser::into_writer(k, &mut b).unwrap();
                    b
                })
                .collect();
            for w in keys.windows(2) {
                assert!((w[0].len(), &w[0]) < (w[1].len(), &w[1]), "{path}: keys out of RFC 8949 order");
            }
            for (k, v) in entries {
                check_key_order(v, &format!("{path}.{}", k.as_text().unwrap_or("?")));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| check_key_order(i, path)),
        _ => {}
    }
}

#[test]
fn fresh_examples_validate_and_are_core_deterministic() {
    for big in [false, true] {
        let s = example_statement(big);
        let bytes = s.encode();
        validate("statement", &bytes).unwrap();
        assert_eq!(Statement::decode_strict(&bytes).unwrap(), s);
        check_key_order(&ciborium::from_reader(&bytes[..]).unwrap(), "statement");
        let env = envelope(bytes, ATTESTATION_PAYLOAD_TYPE).encode();
        validate("envelope", &env).unwrap();
        check_key_order(&ciborium::from_reader(&env[..]).unwrap(), "envelope");
    }
    let grant = Grant {
        issued_at: 5,
        reference: example_statement(false).references[0].clone(),
        root_sha256: Digest([1; 32]),
    };
    validate("grant", &grant.encode()).unwrap();
    check_key_order(&ciborium::from_reader(&grant.encode()[..]).unwrap(), "grant");
}

#[test]
fn the_schema_rejects_what_the_format_forbids() {
    let mut s = example_statement(false);
    s.entity.country = "DEU".into();
    assert!(validate("statement", &s.encode()).is_err());
    let env = envelope(vec![1], "text/plain").encode();
    assert!(validate("envelope", &env).is_err());
    let mut short_sig = envelope(vec![1], ATTESTATION_PAYLOAD_TYPE);
    short_sig.signatures[0].sig = vec![1; 63];
    assert!(validate("envelope", &short_sig.encode()).is_err());
}

#[test]
fn every_envelope_in_testdata_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/envelopes");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("fail_") || !name.ends_with(".att") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        validate("envelope", &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let env = Envelope::decode_strict(&bytes).unwrap();
        validate("statement", &env.payload).unwrap_or_else(|e| panic!("{name} payload: {e}"));
        n += 1;
    }
    assert!(n >= 1, "no envelopes in testdata/envelopes");
}
