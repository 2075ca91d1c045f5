//! Ed25519 public keys: SPKI PEM, key ids.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest as _, Sha256};

use super::{KeyError, algorithm_of, format_error, pem_label, read_key_file};

/// Lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo DER: the DSSE `keyid`.
pub fn key_id(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    hex::encode(Sha256::digest(der))
}

/// Parses an Ed25519 public key (SPKI PEM).
pub fn parse_verifying_key(text: &str, source_name: &str) -> Result<VerifyingKey, KeyError> {
    let (label, der) = pem_label(text, source_name)?;
    match label.as_str() {
        "PUBLIC KEY" => VerifyingKey::from_public_key_der(&der).map_err(|e| {
            let what = algorithm_of(&der);
            if what == "not an Ed25519 key" {
                format_error(source_name, format!("invalid Ed25519 public key: {e}"))
            } else {
                format_error(
                    source_name,
                    format!("{what}, but an Ed25519 public key is needed"),
                )
            }
        }),
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
            Err(format_error(
                source_name,
                "a private key where a public key (the .pub file) is expected; never hand private keys to a verifier",
            ))
        }
        other => Err(format_error(
            source_name,
            format!("unexpected PEM block `{other}`"),
        )),
    }
}

/// Reads and parses a public key file.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    parse_verifying_key(&read_key_file(path)?, &path.display().to_string())
}
