//! Grants: an issuer (a licensing authority) countersigns one reference of one attestation,
//! binding the reference to the model's root digest.

use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, CborError, Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement,
    StatementError,
};

use super::envelope::sign_envelope;
use super::signer::{SignError, Signer};

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
    #[error(transparent)]
    Sign(#[from] SignError),
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
/// `attestation` at `issued_at` (Unix seconds) with the issuer's `signer`. The attestation's
/// signatures are not checked here: an issuer grants what it reviewed, and `verify` checks both.
pub fn grant(
    attestation: &[u8],
    reference_number: &str,
    issued_at: i64,
    signer: &dyn Signer,
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
    let envelope = sign_envelope(GRANT_PAYLOAD_TYPE, grant.encode(), signer)?;
    Ok(SignedGrant {
        grant,
        envelope,
        statement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Ed25519FileSigner;
    use crate::signing::signer::test_signers::{Fault, Faulty, assert_token_removed};
    use weightgate_schemas::ReferenceKind;

    fn testdata(p: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(p)
    }

    fn reference(number: &str) -> weightgate_schemas::Reference {
        weightgate_schemas::Reference {
            kind: ReferenceKind::ExportLicence,
            number: number.into(),
            authority: "US BIS".into(),
            valid_from: 0,
            valid_until: None,
            destinations: vec!["DE".into()],
            holder: None,
            made_at: None,
        }
    }

    /// The golden attestation with `references`, signed again by the test lab.
    fn attestation_with(references: Vec<weightgate_schemas::Reference>) -> Vec<u8> {
        let golden = std::fs::read(testdata("envelopes/golden_tiny.att")).unwrap();
        let mut st =
            Statement::decode_strict(&Envelope::decode_strict(&golden).unwrap().payload).unwrap();
        st.references = references;
        let lab = Ed25519FileSigner::load(&testdata("keys/test-lab.key")).unwrap();
        sign_envelope(ATTESTATION_PAYLOAD_TYPE, st.encode(), &lab)
            .unwrap()
            .encode()
    }

    #[test]
    fn grants_exactly_one_matching_reference_for_the_models_root() {
        let issuer = Ed25519FileSigner::load(&testdata("keys/test-issuer.key")).unwrap();
        let att = attestation_with(vec![reference("A1"), reference("B2")]);
        let signed = grant(&att, "B2", 1_800_000_000, &issuer).unwrap();
        assert_eq!(signed.grant.reference, reference("B2"));
        assert_eq!(signed.grant.issued_at, 1_800_000_000);
        assert_eq!(
            signed.grant.root_sha256,
            signed.statement.subject.root_sha256
        );
        assert_eq!(signed.envelope.payload_type, GRANT_PAYLOAD_TYPE);
        assert_eq!(
            Grant::decode_strict(&signed.envelope.payload).unwrap(),
            signed.grant
        );
        let issuer_pub =
            crate::keys::load_verifying_key(&testdata("keys/test-issuer.pub")).unwrap();
        assert_eq!(
            signed.envelope.signatures[0].keyid,
            crate::keys::key_id(&issuer_pub)
        );

        let err = |number: &str, att: &[u8]| grant(att, number, 0, &issuer).err().unwrap();
        assert!(matches!(err("C3", &att), GrantError::NoSuchReference(n) if n == "C3"));
        let twice = attestation_with(vec![reference("A1"), reference("A1")]);
        assert!(matches!(err("A1", &twice), GrantError::AmbiguousReference(n) if n == "A1"));
        let grant_envelope = signed.envelope.encode();
        assert!(matches!(
            err("B2", &grant_envelope),
            GrantError::NotAnAttestation(t) if t == GRANT_PAYLOAD_TYPE
        ));
        assert!(matches!(err("B2", b"not cbor"), GrantError::Envelope(_)));
    }

    #[test]
    fn a_failing_signer_fails_the_grant() {
        let failing = Faulty {
            inner: Ed25519FileSigner::generate(),
            fault: Fault::Fails,
        };
        let att = attestation_with(vec![reference("A1")]);
        match grant(&att, "A1", 0, &failing) {
            Err(GrantError::Sign(e)) => assert_token_removed::<()>(Err(e)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("granted with a failing signer"),
        }
    }
}
