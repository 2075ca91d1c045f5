//! An Ed25519 private key read from a PKCS#8 PEM file (written 0600 by `weightgate keygen`):
//! the signer of attestations, cosignatures and grants.

use std::path::Path;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};

use super::key_pair_files::write_pem_pair;
use super::signer::{SignError, SignatureAlgorithm, Signer};
use crate::keys::{KeyError, algorithm_of, format_error, pem_label, read_key_file};

/// An Ed25519 key held in memory, loaded from or written to a key file.
pub struct Ed25519FileSigner {
    key: SigningKey,
    public_der: Vec<u8>,
}

/// Shows the key id only: secrets stay out of logs.
impl std::fmt::Debug for Ed25519FileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519FileSigner(key {})", self.key_id())
    }
}

impl Ed25519FileSigner {
    fn new(key: SigningKey) -> Self {
        let public_der = key
            .verifying_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        Ed25519FileSigner { key, public_der }
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::new(SigningKey::generate(&mut getrandom::rand_core::UnwrapErr(
            getrandom::SysRng,
        )))
    }

    /// Parses a PKCS#8 PEM private key; `source_name` names it in errors.
    pub(crate) fn from_pem(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_label(text, source_name)?;
        match label.as_str() {
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der)
                .map(Self::new)
                .map_err(|e| {
                    let what = algorithm_of(&der);
                    if what == "not an Ed25519 key" {
                        format_error(source_name, format!("invalid Ed25519 PKCS#8 key: {e}"))
                    } else {
                        format_error(
                            source_name,
                            format!("{what}, but signing needs an Ed25519 key"),
                        )
                    }
                }),
            "PUBLIC KEY" => Err(format_error(
                source_name,
                "a public key, but signing needs the private key (the .key file)",
            )),
            "RSA PRIVATE KEY" => Err(format_error(
                source_name,
                "an RSA key, but signing needs an Ed25519 key",
            )),
            "EC PRIVATE KEY" => Err(format_error(
                source_name,
                "an EC key, but signing needs an Ed25519 key",
            )),
            "ENCRYPTED PRIVATE KEY" => Err(format_error(
                source_name,
                "an encrypted PKCS#8 key; weightgate reads unencrypted keys (protect them with file permissions or a secrets store)",
            )),
            other => Err(format_error(
                source_name,
                format!("unexpected PEM block `{other}`"),
            )),
        }
    }

    /// Reads and parses a private key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read_key_file(path)?, &path.display().to_string())
    }

    /// Writes `BASE.key` (PKCS#8 PEM, 0600) and `BASE.pub` (SPKI PEM); refuses to overwrite
    /// either. Returns the key id.
    pub fn write_key_pair(&self, base: &Path) -> Result<String, KeyError> {
        let private_pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .unwrap_or_default();
        let public_pem = self
            .key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default();
        write_pem_pair(base, &private_pem, &public_pem)?;
        Ok(self.key_id())
    }
}

impl Signer for Ed25519FileSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed25519
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{key_id, parse_verifying_key};

    #[test]
    fn round_trip_and_wrong_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Ed25519FileSigner::generate();
        let id = signer.write_key_pair(&dir.path().join("k")).unwrap();
        assert_eq!(id, signer.key_id());
        let again = Ed25519FileSigner::load(&dir.path().join("k.key")).unwrap();
        assert_eq!(again.key.to_bytes(), signer.key.to_bytes());
        let pubpem = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
        let public = parse_verifying_key(&pubpem, "p").unwrap();
        assert_eq!(public, signer.key.verifying_key());
        assert_eq!(key_id(&public), id);
        assert_eq!(id.len(), 64);
        // Never overwrites.
        assert!(
            signer
                .write_key_pair(&dir.path().join("k"))
                .unwrap_err()
                .to_string()
                .contains("refusing to overwrite")
        );
        let pem = std::fs::read_to_string(dir.path().join("k.key")).unwrap();
        assert!(
            Ed25519FileSigner::from_pem(&pubpem, "p")
                .unwrap_err()
                .to_string()
                .contains("a public key, but signing needs the private key")
        );
        assert!(
            parse_verifying_key(&pem, "k")
                .unwrap_err()
                .to_string()
                .contains("a private key where a public key")
        );
        assert!(
            Ed25519FileSigner::from_pem("ssh-ed25519 AAAA", "s")
                .unwrap_err()
                .to_string()
                .contains("OpenSSH")
        );
        assert!(
            Ed25519FileSigner::from_pem("hello", "s")
                .unwrap_err()
                .to_string()
                .contains("not a PEM key")
        );
    }
}
