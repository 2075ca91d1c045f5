//! ECDSA keys trusted to sign OpenSSF model-signing bundles with the `key` method.

use std::path::Path;

use weightgate_attest::keys::{EcVerifyingKey, KeyError};

/// A key trusted for OpenSSF model-signing bundles.
#[derive(Debug, Clone)]
pub struct ModelSigningKey {
    pub name: String,
    pub key: EcVerifyingKey,
}

impl ModelSigningKey {
    /// A public key file (SPKI PEM), named by its path.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Ok(ModelSigningKey {
            name: path.display().to_string(),
            key: EcVerifyingKey::load(path)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ed25519_key_is_not_a_model_signing_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys/test-lab.pub");
        let err = ModelSigningKey::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("an Ed25519 key") && err.contains("P-256, P-384 and P-521"),
            "{err}"
        );
    }
}
