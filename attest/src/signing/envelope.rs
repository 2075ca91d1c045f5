//! DSSE signing of statements and grants.

use weightgate_schemas::{Envelope, Signature, pae};

use super::signer::{SignError, Signer, SigningPurpose, sign_for};

/// Signs `payload` as `payload_type` into a new envelope with one signature.
pub fn sign_envelope(
    payload_type: &str,
    payload: Vec<u8>,
    signer: &dyn Signer,
) -> Result<Envelope, SignError> {
    let mut envelope = Envelope {
        payload_type: payload_type.to_string(),
        payload,
        signatures: Vec::new(),
    };
    push_signature(&mut envelope, signer)?;
    Ok(envelope)
}

fn push_signature(envelope: &mut Envelope, signer: &dyn Signer) -> Result<(), SignError> {
    let message = pae(&envelope.payload_type, &envelope.payload);
    let sig = sign_for(signer, SigningPurpose::Envelope, &message)?;
    envelope.signatures.push(Signature {
        keyid: signer.key_id(),
        sig,
    });
    Ok(())
}

/// Why a cosignature was not added.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// A second copy of a signature adds nothing.
    #[error("key {keyid} has already signed this envelope")]
    AlreadySigned { keyid: String },
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Adds a further signature (an auditor's, say) over the unchanged payload and returns the
/// signer's key id. Refuses a key that already signed.
pub fn cosign(envelope: &mut Envelope, signer: &dyn Signer) -> Result<String, CosignError> {
    let id = signer.key_id();
    if envelope.signatures.iter().any(|s| s.keyid == id) {
        return Err(CosignError::AlreadySigned { keyid: id });
    }
    push_signature(envelope, signer)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Ed25519FileSigner;
    use crate::signing::signer::test_signers::{Fault, Faulty, assert_token_removed};

    fn lab() -> Ed25519FileSigner {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys/test-lab.key");
        Ed25519FileSigner::load(&p).unwrap()
    }

    #[test]
    fn the_golden_envelope_is_signed_byte_for_byte_again() {
        let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let golden = std::fs::read(testdata.join("envelopes/golden_tiny.att")).unwrap();
        let envelope = Envelope::decode_strict(&golden).unwrap();
        let again =
            sign_envelope(&envelope.payload_type, envelope.payload.clone(), &lab()).unwrap();
        assert_eq!(again.encode(), golden);
    }

    #[test]
    fn cosigning_adds_one_signature_per_key() {
        let mut envelope = sign_envelope("t", b"payload".to_vec(), &lab()).unwrap();
        let other = Ed25519FileSigner::generate();
        assert_eq!(cosign(&mut envelope, &other).unwrap(), other.key_id());
        assert_eq!(envelope.signatures.len(), 2);
        assert!(matches!(
            cosign(&mut envelope, &lab()),
            Err(CosignError::AlreadySigned { keyid }) if keyid == lab().key_id()
        ));
        assert_eq!(envelope.signatures.len(), 2);
    }

    #[test]
    fn a_failing_signer_fails_signing_and_cosigning() {
        let failing = Faulty {
            inner: Ed25519FileSigner::generate(),
            fault: Fault::Fails,
        };
        assert_token_removed(sign_envelope("t", b"payload".to_vec(), &failing));
        let mut envelope = sign_envelope("t", b"payload".to_vec(), &lab()).unwrap();
        match cosign(&mut envelope, &failing) {
            Err(CosignError::Sign(e)) => assert_token_removed::<()>(Err(e)),
            other => panic!("{other:?}"),
        }
        assert_eq!(envelope.signatures.len(), 1, "nothing was added");
    }
}
