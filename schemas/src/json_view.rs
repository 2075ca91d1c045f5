//! JSON for people and `--json`: digests in hex, operation counts as decimal strings.

use serde_json::{Value, json};

use crate::dsse::Envelope;
use crate::statement::Statement;

/// The statement as JSON (same field names as the CBOR).
pub fn statement_to_json(statement: &Statement) -> Value {
    serde_json::to_value(statement).unwrap_or(Value::Null)
}

/// The envelope without its payload bytes: type, payload length, signatures (hex).
pub fn envelope_to_json(envelope: &Envelope) -> Value {
    json!({
        "payloadType": envelope.payload_type,
        "payload_len": envelope.payload.len(),
        "signatures": envelope.signatures.iter().map(|s| json!({
            "keyid": s.keyid,
            "sig": hex::encode(&s.sig),
        })).collect::<Vec<_>>(),
    })
}
