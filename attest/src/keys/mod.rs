//! Public keys and key files: what both signing and verifying need. Private keys live in
//! [`crate::signing`], compiled only with the `signing` feature.

mod certificate_signature;
pub(crate) mod ecdsa;
mod ed25519;
mod fulcio;
mod x509;

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem;

use crate::io::{MAX_KEY_FILE_LEN, read_capped_to_string};

pub use certificate_signature::{RSA_BITS, certificate_key_verifies};
pub use ecdsa::{EcCurve, EcSignatureError, EcVerifyingKey};
#[cfg(feature = "signing")]
pub(crate) use ecdsa::{ONLY_CURVES, curve_of};
pub use ed25519::{key_id, load_verifying_key, parse_verifying_key};
pub use fulcio::{CtLogKey, SctError, fulcio_issuer, verify_embedded_sct};
pub use x509::{
    CertificatePurpose, ChainError, MAX_BUNDLE_CERTIFICATES, MAX_PATH, VerifiedChain,
    certificate_key, load_certificates, verify_chain, verify_chain_for,
};

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

pub(crate) fn format_error(source_name: &str, problem: impl Into<String>) -> KeyError {
    KeyError::Format {
        source_name: source_name.to_string(),
        problem: problem.into(),
    }
}

/// Names the algorithm of a DER key by the OIDs it carries, for error messages.
pub(crate) fn algorithm_of(der: &[u8]) -> &'static str {
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

/// A PEM block's label and DER bytes; text before `-----BEGIN` is skipped.
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

/// A key file's text, read with the key-file size cap.
pub(crate) fn read_key_file(path: &Path) -> Result<String, KeyError> {
    read_capped_to_string(path, MAX_KEY_FILE_LEN).map_err(|error| KeyError::Read {
        path: path.to_path_buf(),
        error,
    })
}
