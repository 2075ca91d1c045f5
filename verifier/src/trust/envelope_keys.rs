//! Ed25519 keys trusted to sign weightgate envelopes: a lab's attestations, or an issuer's
//! grants for one authority.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use weightgate_attest::keys::{KeyError, key_id, load_verifying_key};

/// A public key the verifier trusts, with its validity window (Unix seconds, end exclusive).
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub key: VerifyingKey,
    /// Lowercase hex SHA-256 of the SPKI DER.
    pub keyid: String,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
}

impl TrustedKey {
    pub fn new(
        name: String,
        key: VerifyingKey,
        valid_from: Option<i64>,
        valid_until: Option<i64>,
    ) -> Self {
        TrustedKey {
            name,
            keyid: key_id(&key),
            key,
            valid_from,
            valid_until,
        }
    }

    /// A public key file (SPKI PEM) trusted without a window, named by its path.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let key = load_verifying_key(path)?;
        Ok(Self::new(path.display().to_string(), key, None, None))
    }
}

/// A licence issuer whose grants count for references from `authority`.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub key: TrustedKey,
    pub authority: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use weightgate_schemas::Envelope;

    fn testdata(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(p)
    }

    #[test]
    fn a_loaded_key_has_the_key_id_its_envelopes_carry() {
        let lab = TrustedKey::load(&testdata("keys/test-lab.pub")).unwrap();
        let golden = std::fs::read(testdata("envelopes/golden_tiny.att")).unwrap();
        let envelope = Envelope::decode_strict(&golden).unwrap();
        assert_eq!(envelope.signatures[0].keyid, lab.keyid);
        assert_eq!(
            lab.name,
            testdata("keys/test-lab.pub").display().to_string()
        );
        assert_eq!((lab.valid_from, lab.valid_until), (None, None));
        let err = TrustedKey::load(&testdata("keys/test-lab.key")).unwrap_err();
        assert!(
            err.to_string().contains("a private key where a public key"),
            "{err}"
        );
    }
}
