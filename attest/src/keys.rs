//! Ed25519 keys: PKCS#8 PEM private keys (mode 0600), SPKI PEM public keys, key ids.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::{self, LineEnding};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::atomic_file::{Replace, write_atomically};

/// What is wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: cannot read key: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: cannot write key: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{source_name}: {problem}")]
    Format {
        source_name: String,
        problem: String,
    },
}

fn format_error(source_name: &str, problem: impl Into<String>) -> KeyError {
    KeyError::Format {
        source_name: source_name.to_string(),
        problem: problem.into(),
    }
}

/// Lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo DER: the DSSE `keyid`.
pub fn key_id(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    hex::encode(Sha256::digest(der))
}

/// A fresh key from the operating system's random source.
pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut getrandom::rand_core::UnwrapErr(getrandom::SysRng))
}

/// Private key as PKCS#8 PEM.
pub fn signing_key_pem(key: &SigningKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// Public key as SPKI PEM.
pub fn verifying_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// Writes `BASE.key` (0600) and `BASE.pub`; refuses to overwrite either. Returns the key id.
pub fn write_key_pair(base: &Path, key: &SigningKey) -> Result<String, KeyError> {
    write_pem_pair(
        base,
        &signing_key_pem(key),
        &verifying_key_pem(&key.verifying_key()),
    )?;
    Ok(key_id(&key.verifying_key()))
}

/// Writes `BASE.key` (0600) and `BASE.pub` (0644), each atomically; refuses to overwrite either.
pub(crate) fn write_pem_pair(
    base: &Path,
    private_pem: &str,
    public_pem: &str,
) -> Result<(), KeyError> {
    let with_ext = |ext: &str| {
        let mut p = base.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (private, public) = (with_ext(".key"), with_ext(".pub"));
    for p in [&private, &public] {
        if p.exists() {
            return Err(KeyError::Write {
                path: p.clone(),
                error: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already exists; refusing to overwrite it",
                ),
            });
        }
    }
    write_atomically(&private, private_pem.as_bytes(), 0o600, Replace::Never).map_err(|error| {
        KeyError::Write {
            path: private.clone(),
            error,
        }
    })?;
    write_atomically(&public, public_pem.as_bytes(), 0o644, Replace::Never).map_err(|error| {
        KeyError::Write {
            path: public,
            error,
        }
    })
}

/// Names the algorithm of a DER key by the OIDs it carries, for error messages.
fn algorithm_of(der: &[u8]) -> &'static str {
    const OIDS: &[(&[u8], &str)] = &[
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            "an RSA key",
        ),
        (
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            "an ECDSA P-256 key",
        ),
        (&[0x2b, 0x81, 0x04, 0x00, 0x22], "an ECDSA P-384 key"),
        (&[0x2b, 0x81, 0x04, 0x00, 0x23], "an ECDSA P-521 key"),
        (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01], "an EC key"),
        (&[0x2b, 0x65, 0x6f], "an X448/Ed448 key"),
        (&[0x2b, 0x65, 0x6e], "an X25519 key"),
    ];
    OIDS.iter()
        .find(|(oid, _)| der.windows(oid.len()).any(|w| w == *oid))
        .map_or("not an Ed25519 key", |(_, name)| name)
}

pub(crate) fn pem_label(text: &str, source_name: &str) -> Result<(String, Vec<u8>), KeyError> {
    if text.trim_start().starts_with("ssh-") || text.contains("BEGIN OPENSSH PRIVATE KEY") {
        return Err(format_error(
            source_name,
            "an OpenSSH key; weightgate reads PEM (PKCS#8 private, SPKI public): convert with `ssh-keygen -p -m PKCS8` or create one with `weightgate keygen`",
        ));
    }
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| format_error(source_name, "not a PEM key (no `-----BEGIN` line)"))?;
    let (label, der) = pem::decode_vec(&text.as_bytes()[start..])
        .map_err(|e| format_error(source_name, format!("malformed PEM: {e}")))?;
    Ok((label.to_string(), der))
}

/// Parses an Ed25519 private key (PKCS#8 PEM); `source_name` names it in errors.
pub fn parse_signing_key(text: &str, source_name: &str) -> Result<SigningKey, KeyError> {
    let (label, der) = pem_label(text, source_name)?;
    match label.as_str() {
        "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der).map_err(|e| {
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

/// Reads and parses a private key file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    parse_signing_key(&read_key_file(path)?, &path.display().to_string())
}

/// Reads and parses a public key file.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    parse_verifying_key(&read_key_file(path)?, &path.display().to_string())
}

/// A key file's text, read with the key-file size cap.
pub(crate) fn read_key_file(path: &Path) -> Result<String, KeyError> {
    crate::read_capped_to_string(path, crate::MAX_KEY_FILE_LEN).map_err(|error| KeyError::Read {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_kinds() {
        let k = SigningKey::from_bytes(&[7u8; 32]);
        let pem = signing_key_pem(&k);
        assert_eq!(
            parse_signing_key(&pem, "k").unwrap().to_bytes(),
            k.to_bytes()
        );
        let pubpem = verifying_key_pem(&k.verifying_key());
        assert_eq!(
            parse_verifying_key(&pubpem, "p").unwrap(),
            k.verifying_key()
        );
        assert!(
            parse_signing_key(&pubpem, "p")
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
            parse_signing_key("ssh-ed25519 AAAA", "s")
                .unwrap_err()
                .to_string()
                .contains("OpenSSH")
        );
        assert!(
            parse_signing_key("hello", "s")
                .unwrap_err()
                .to_string()
                .contains("not a PEM key")
        );
        assert_eq!(key_id(&k.verifying_key()).len(), 64);
    }
}
