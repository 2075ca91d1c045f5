//! Example values shared by the integration tests.
#![allow(dead_code)]

use ciborium::Value;
use weightgate_schemas::*;

pub fn d(b: u8) -> Digest {
    Digest([b; 32])
}

/// Every optional field present, per-tensor digests, a base model, an operation count > 2^64.
pub fn full_statement() -> Statement {
    Statement {
        model: Model {
            name: "tiny-lm".into(),
            version: "1.0.0".into(),
            open_weights: false,
            placed_on_market: Some(1_780_000_000),
        },
        entity: Entity {
            lei: Some("5493001KJTIIGC8Y1R12".into()),
            contact: "lab@example.invalid".into(),
            country: "DE".into(),
            revenue: Some(Revenue {
                usd: 750_000_000,
                fiscal_year: 2025,
            }),
            legal_name: "Example Lab GmbH".into(),
            parent_country: "US".into(),
        },
        compute: Compute {
            total: Ops(3 * 10u128.pow(26) + 7),
            inputs: EstimationInputs {
                source: Some("training log run-42".into()),
                tokens: Some(Ops(15_600 * 10u128.pow(9))),
                accelerator: Some("H100-SXM".into()),
                params_total: Some(405_000_000_000),
                params_active: Some(37_000_000_000),
                accelerator_count: Some(16_384),
                accelerator_hours: Some(30_840_000),
                utilisation_permille: Some(400),
                peak_flops_per_accelerator: Some(Ops(989 * 10u128.pow(12))),
                precision: None,
                utilisation_justification: None,
            },
            method: EstimationMethod::Hardware,
            components: Components {
                base_model: Some(BaseModel {
                    ops: Some(Ops(10u128.pow(26))),
                    name: "base-lm".into(),
                    root_sha256: d(1),
                    systemic_risk: Some(true),
                    attestation_sha256: Some(d(2)),
                }),
                pre_training: Ops(2 * 10u128.pow(26)),
                post_training: Ops(5),
                synthetic_data: Ops(2),
                synthetic_data_share_permille: None,
            },
        },
        subject: Subject {
            files: vec![
                FileEntry {
                    path: "config.json".into(),
                    size: 10,
                    blake3: d(3),
                    sha256: d(4),
                    tensors: None,
                },
                FileEntry {
                    path: "model.safetensors".into(),
                    size: 5_000_000_000,
                    blake3: d(5),
                    sha256: d(6),
                    tensors: Some(vec![
                        TensorDigest {
                            name: "embed.weight".into(),
                            blake3: d(7),
                        },
                        TensorDigest {
                            name: "lm_head.weight".into(),
                            blake3: d(8),
                        },
                    ]),
                },
            ],
            root_sha256: d(9),
        },
        issued_at: 1_793_491_200,
        expires_at: Some(1_825_027_200),
        references: vec![
            Reference {
                kind: ReferenceKind::ExportLicence,
                holder: Some("5493001KJTIIGC8Y1R12".into()),
                number: "D123456".into(),
                made_at: Some(1_789_000_000),
                authority: "US BIS".into(),
                valid_from: 1_790_000_000,
                valid_until: Some(1_830_000_000),
                destinations: vec!["DE".into(), "US".into()],
            },
            Reference {
                kind: ReferenceKind::Notification,
                holder: None,
                number: "AIO-2026-0042".into(),
                made_at: None,
                authority: "European Commission AI Office".into(),
                valid_from: -1,
                valid_until: None,
                destinations: vec![],
            },
        ],
        schema_version: SCHEMA_VERSION,
    }
}

/// Every optional field absent, no references.
pub fn minimal_statement() -> Statement {
    let mut s = full_statement();
    s.compute = Compute {
        total: Ops(1000),
        inputs: EstimationInputs::default(),
        method: EstimationMethod::Measured,
        components: Components {
            base_model: None,
            pre_training: Ops(1000),
            post_training: Ops(0),
            synthetic_data: Ops(0),
            synthetic_data_share_permille: None,
        },
    };
    s.subject.files.truncate(1);
    s.model.placed_on_market = None;
    s.entity.revenue = None;
    s.expires_at = None;
    s.references.clear();
    s
}

pub fn grant() -> Grant {
    Grant {
        issued_at: 1_793_491_200,
        reference: full_statement().references[0].clone(),
        root_sha256: d(9),
    }
}

pub fn envelope(payload_type: &str, payload: Vec<u8>) -> Envelope {
    Envelope {
        payload,
        signatures: vec![
            Signature {
                sig: vec![0x5a; 64],
                keyid: "95a606307a602a77bbcffa454967dcc77dc6a5a8b4ee3afee777dba5f58a75a3".into(),
            },
            Signature {
                sig: vec![0xa5; 64],
                keyid: "ab".repeat(32),
            },
        ],
        payload_type: payload_type.into(),
    }
}

pub fn attestation_envelope() -> Envelope {
    envelope(ATTESTATION_PAYLOAD_TYPE, full_statement().encode())
}

pub fn grant_envelope() -> Envelope {
    envelope(GRANT_PAYLOAD_TYPE, grant().encode())
}

/// Decodes canonical bytes into a generic value, for editing at the CBOR level.
pub fn to_value(bytes: &[u8]) -> Value {
    ciborium::from_reader(bytes).unwrap()
}

/// Encodes a generic value as is (ciborium keeps map entry order).
pub fn from_value(v: &Value) -> Vec<u8> {
    cbor::to_vec(v).unwrap()
}

/// The entries of a map value.
pub fn entries(v: &mut Value) -> &mut Vec<(Value, Value)> {
    match v {
        Value::Map(m) => m,
        other => panic!("not a map: {other:?}"),
    }
}

/// The value under text key `key` in a map value.
pub fn field<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    entries(v)
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {key}"))
}

/// Replaces the first occurrence of `from` with `to`.
pub fn splice(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

/// A CBOR text string item.
pub fn text(s: &str) -> Vec<u8> {
    cbor::to_vec(s).unwrap()
}
