//! JSON for people and for `--json`: the same serde types, through a human-readable serializer.
//!
//! ciborium reports `is_human_readable() == false` and serde_json `true`, so the same types give
//! bytes in CBOR and text in JSON: digests as lowercase hex, operation counts as decimal strings
//! (JSON numbers lose precision above 2^53), the envelope's payload and signatures as standard
//! base64 (the DSSE JSON envelope). Key names are those of the CBOR encoding and the CDDL.
//! JSON is a view: it is never signed and never verified.

use serde::Serialize;
use serde_json::Value;

use crate::dsse::Envelope;
use crate::grant::Grant;
use crate::statement::Statement;

/// The statement as JSON (`subject.root_sha256` as hex, `compute.total` as a decimal string, …).
pub fn statement_to_json(statement: &Statement) -> Value {
    to_json(statement)
}

/// The grant as JSON.
pub fn grant_to_json(grant: &Grant) -> Value {
    to_json(grant)
}

/// The envelope in the DSSE JSON envelope shape: `{"payload": b64, "payloadType": ...,
/// "signatures": [{"keyid": ..., "sig": b64}]}`. A standard DSSE verifier checks the same signatures.
pub fn envelope_to_json(envelope: &Envelope) -> Value {
    to_json(envelope)
}

fn to_json<T: Serialize>(value: &T) -> Value {
    // These types hold no maps with non-string keys and no floats, so conversion cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}
