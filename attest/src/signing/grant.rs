//! Grants: an issuer (a licensing authority) countersigns one reference of one attestation,
//! binding the reference to the model's root digest.

use ed25519_dalek::SigningKey;
use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, CborError, Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement,
    StatementError,
};

use super::envelope::sign_envelope;

/// Why an attestation cannot be granted.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("not a weightgate envelope: {0}")]
    Envelope(#[from] CborError),
    #[error("payload type `{0}` is not an attestation")]
    NotAnAttestation(String),
    #[error("payload: {0}")]
    Statement(#[from] StatementError),
    #[error("no reference numbered `{0}`")]
    NoSuchReference(String),
    #[error("several references numbered `{0}`")]
    AmbiguousReference(String),
}

/// A signed grant and the statement it countersigns.
pub struct SignedGrant {
    pub grant: Grant,
    /// The grant envelope, signed by the issuer's key.
    pub envelope: Envelope,
    /// The attestation's statement (for the issuer's record: model name, root digest).
    pub statement: Statement,
}

/// Countersigns the reference numbered `reference_number` of the attestation envelope
/// `attestation` at `issued_at` (Unix seconds) with the issuer's `key`. The attestation's
/// signatures are not checked here: an issuer grants what it reviewed, and `verify` checks both.
pub fn grant(
    attestation: &[u8],
    reference_number: &str,
    issued_at: i64,
    key: &SigningKey,
) -> Result<SignedGrant, GrantError> {
    let envelope = Envelope::decode_strict(attestation)?;
    if envelope.payload_type != ATTESTATION_PAYLOAD_TYPE {
        return Err(GrantError::NotAnAttestation(envelope.payload_type));
    }
    let statement = Statement::decode_strict(&envelope.payload)?;
    let mut matches = statement
        .references
        .iter()
        .filter(|r| r.number == reference_number);
    let reference = match (matches.next(), matches.next()) {
        (Some(one), None) => one.clone(),
        (None, _) => return Err(GrantError::NoSuchReference(reference_number.into())),
        (Some(_), Some(_)) => {
            return Err(GrantError::AmbiguousReference(reference_number.into()));
        }
    };
    let grant = Grant {
        issued_at,
        reference,
        root_sha256: statement.subject.root_sha256,
    };
    let envelope = sign_envelope(GRANT_PAYLOAD_TYPE, grant.encode(), key);
    Ok(SignedGrant {
        grant,
        envelope,
        statement,
    })
}
