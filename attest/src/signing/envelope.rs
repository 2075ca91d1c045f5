//! DSSE signing of statements and grants with Ed25519.

use ed25519_dalek::{Signer, SigningKey};
use weightgate_schemas::{Envelope, Signature, pae};

use crate::keys::key_id;

/// Signs `payload` as `payload_type` into a new envelope with one signature.
pub fn sign_envelope(payload_type: &str, payload: Vec<u8>, key: &SigningKey) -> Envelope {
    let mut envelope = Envelope {
        payload_type: payload_type.to_string(),
        payload,
        signatures: Vec::new(),
    };
    push_signature(&mut envelope, key);
    envelope
}

fn push_signature(envelope: &mut Envelope, key: &SigningKey) {
    let sig = key.sign(&pae(&envelope.payload_type, &envelope.payload));
    envelope.signatures.push(Signature {
        keyid: key_id(&key.verifying_key()),
        sig: sig.to_bytes().to_vec(),
    });
}

/// The key has already signed the envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {keyid} has already signed this envelope")]
pub struct AlreadySigned {
    pub keyid: String,
}

/// Adds a further signature (an auditor's, say) over the unchanged payload.
/// Refuses a key that already signed, since a second copy adds nothing.
pub fn cosign(envelope: &mut Envelope, key: &SigningKey) -> Result<String, AlreadySigned> {
    let id = key_id(&key.verifying_key());
    if envelope.signatures.iter().any(|s| s.keyid == id) {
        return Err(AlreadySigned { keyid: id });
    }
    push_signature(envelope, key);
    Ok(id)
}
