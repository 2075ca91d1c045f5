//! ECDSA public keys on NIST P-256, P-384 and P-521: the only keys OpenSSF model signing accepts, so
//! they sign `model.sig` beside the Ed25519 attestation. Private keys as PKCS#8 or SEC1
//! (`EC PRIVATE KEY`) PEM, public keys as SPKI PEM; text before `-----BEGIN` (as `openssl`
//! writes it) is skipped. Signatures are RFC 6979 deterministic, ASN.1 DER, with the hash the
//! curve calls for (SHA-256, SHA-384, SHA-512), as the reference implementation does.

use std::path::Path;

use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest as _, Sha256};

use super::{KeyError, format_error, pem_label, read_key_file};

/// A curve OpenSSF model signing accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurve {
    P256,
    P384,
    P521,
}

impl EcCurve {
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }
}

/// An ECDSA public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcVerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

/// Runs `$body` with `$k` bound to the key inside any variant of `$enum`.
macro_rules! each_curve {
    ($value:expr, $enum:ident, $k:ident => $body:expr) => {
        match $value {
            $enum::P256($k) => $body,
            $enum::P384($k) => $body,
            $enum::P521($k) => $body,
        }
    };
}

#[cfg(feature = "signing")]
pub(crate) use each_curve;

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

fn contains(der: &[u8], oid: &[u8]) -> bool {
    der.windows(oid.len()).any(|w| w == oid)
}

/// Which supported curve a DER key names, or what else it is.
pub(crate) fn curve_of(der: &[u8]) -> Result<EcCurve, &'static str> {
    if contains(der, OID_P256) {
        Ok(EcCurve::P256)
    } else if contains(der, OID_P384) {
        Ok(EcCurve::P384)
    } else if contains(der, OID_P521) {
        Ok(EcCurve::P521)
    } else if contains(der, OID_SECP256K1) {
        Err("an EC key on secp256k1")
    } else if contains(der, OID_ED25519) {
        Err("an Ed25519 key")
    } else if contains(der, OID_RSA) {
        Err("an RSA key")
    } else if contains(der, OID_EC_PUBLIC_KEY) {
        Err("an EC key on an unsupported curve")
    } else {
        Err("a key of an unknown type")
    }
}

pub(crate) const ONLY_CURVES: &str = "OpenSSF model signing accepts only ECDSA keys on P-256, P-384 and P-521 (`weightgate keygen --type p256`)";

/// Why an ECDSA signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcSignatureError {
    #[error(
        "the signature is not ASN.1 DER for {curve} ({len} bytes; a raw r||s signature is not accepted)"
    )]
    NotDer { curve: &'static str, len: usize },
    #[error("the {curve} signature does not verify")]
    Invalid { curve: &'static str },
}

/// Parses `$signature` as ASN.1 DER for `$key`'s curve, binds the key to `$k` and the signature
/// to `$s`, and maps the result of `$check` to [`EcSignatureError`].
macro_rules! check_der {
    ($key:expr, $signature:expr, $k:ident, $s:ident => $check:expr) => {{
        let curve = $key.curve().name();
        let not_der = || EcSignatureError::NotDer {
            curve,
            len: $signature.len(),
        };
        let invalid = |_| EcSignatureError::Invalid { curve };
        match $key {
            EcVerifyingKey::P256($k) => {
                let $s = p256::ecdsa::Signature::from_der($signature).map_err(|_| not_der())?;
                $check.map_err(invalid)
            }
            EcVerifyingKey::P384($k) => {
                let $s = p384::ecdsa::Signature::from_der($signature).map_err(|_| not_der())?;
                $check.map_err(invalid)
            }
            EcVerifyingKey::P521($k) => {
                let $s = p521::ecdsa::Signature::from_der($signature).map_err(|_| not_der())?;
                $check.map_err(invalid)
            }
        }
    }};
}

impl EcVerifyingKey {
    pub fn curve(&self) -> EcCurve {
        match self {
            EcVerifyingKey::P256(_) => EcCurve::P256,
            EcVerifyingKey::P384(_) => EcCurve::P384,
            EcVerifyingKey::P521(_) => EcCurve::P521,
        }
    }

    /// Parses an SPKI (`PUBLIC KEY`) PEM public key.
    pub fn from_pem(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_label(text, source_name)?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&der, source_name),
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                Err(format_error(
                    source_name,
                    "a private key where a public key is expected; never hand private keys to a verifier",
                ))
            }
            other => Err(format_error(
                source_name,
                format!("unexpected PEM block `{other}`"),
            )),
        }
    }

    /// Parses SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: &[u8], source_name: &str) -> Result<Self, KeyError> {
        let curve = curve_of(der)
            .map_err(|what| format_error(source_name, format!("{what}; {ONLY_CURVES}")))?;
        let bad = |e: String| {
            format_error(
                source_name,
                format!("invalid {} public key: {e}", curve.name()),
            )
        };
        Ok(match curve {
            EcCurve::P256 => EcVerifyingKey::P256(
                p256::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map_err(|e| bad(e.to_string()))?,
            ),
            EcCurve::P384 => EcVerifyingKey::P384(
                p384::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map_err(|e| bad(e.to_string()))?,
            ),
            EcCurve::P521 => EcVerifyingKey::P521(
                p521::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map_err(|e| bad(e.to_string()))?,
            ),
        })
    }

    /// Reads and parses a public key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read_key_file(path)?, &path.display().to_string())
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_spki_der(&self) -> Vec<u8> {
        each_curve!(self, EcVerifyingKey, k => k
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default())
    }

    /// SPKI PEM exactly as OpenSSL and Python `cryptography` write it: 64-column base64 lines
    /// and a final newline. Its SHA-256 is the bundle's key hint.
    pub fn to_spki_pem(&self) -> String {
        pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.to_spki_der()).unwrap_or_default()
    }

    /// The `verificationMaterial.publicKey.hint` model signing writes: hex SHA-256 of the PEM.
    pub fn hint(&self) -> String {
        hex::encode(Sha256::digest(self.to_spki_pem().as_bytes()))
    }

    /// Checks a DER ECDSA signature over an already computed digest (X.509 signatures name
    /// their hash, which need not be the curve's usual one).
    pub fn verify_prehash_der(
        &self,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), EcSignatureError> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        check_der!(self, signature, k, s => k.verify_prehash(digest, &s))
    }

    /// Checks an ASN.1 DER ECDSA signature over `message`.
    pub fn verify_der(&self, message: &[u8], signature: &[u8]) -> Result<(), EcSignatureError> {
        use p256::ecdsa::signature::Verifier as _;
        check_der!(self, signature, k, s => k.verify(message, &s))
    }
}
