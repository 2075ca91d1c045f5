//! The attestation as an in-toto Statement v1, for tools that store attestations as in-toto
//! (for example beside OpenSSF model-signing bundles in `claims.jsonl`). The subject is the
//! model's root digest, the one `model.sig` names; the predicate carries the statement's JSON
//! view and the original signed envelope, whose Ed25519 signatures stay checkable.

use serde_json::{Value, json};

use crate::dsse::Envelope;
use crate::json_view::{envelope_to_json, statement_to_json};
use crate::oms::IN_TOTO_STATEMENT_V1;
use crate::statement::Statement;

/// Our predicate type. The URI names the format version; nothing is fetched from it.
pub const WEIGHTGATE_PREDICATE_V1: &str = "https://weightgate.dev/attestation/v1";

/// The in-toto statement for an attestation envelope and its decoded statement.
pub fn intoto_statement(envelope: &Envelope, statement: &Statement) -> Value {
    json!({
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{
            "name": statement.model.name,
            "digest": { "sha256": statement.subject.root_sha256.to_hex() },
        }],
        "predicateType": WEIGHTGATE_PREDICATE_V1,
        "predicate": {
            "statement": statement_to_json(statement),
            "envelope": envelope_to_json(envelope),
        },
    })
}
