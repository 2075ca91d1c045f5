//! ECDSA keys on NIST P-256, P-384 and P-521: the only keys OpenSSF model signing accepts, so
//! they sign `model.sig` beside the Ed25519 attestation. Private keys as PKCS#8 or SEC1
//! (`EC PRIVATE KEY`) PEM, public keys as SPKI PEM; text before `-----BEGIN` (as `openssl`
//! writes it) is skipped. Signatures are RFC 6979 deterministic, ASN.1 DER, with the hash the
//! curve calls for (SHA-256, SHA-384, SHA-512), as the reference implementation does.

use std::path::Path;

use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::{Digest as _, Sha256};

use crate::keys::{KeyError, pem_label, read_key_file, write_pem_pair};

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

    /// The hash ECDSA uses on this curve in OpenSSF model signing.
    pub fn hash_name(self) -> &'static str {
        match self {
            EcCurve::P256 => "SHA-256",
            EcCurve::P384 => "SHA-384",
            EcCurve::P521 => "SHA-512",
        }
    }
}

/// An ECDSA private key.
#[derive(Clone)]
pub enum EcSigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

/// Shows the curve only: secrets stay out of logs.
impl std::fmt::Debug for EcSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcSigningKey({})", self.curve().name())
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

fn format_error(source_name: &str, problem: impl Into<String>) -> KeyError {
    KeyError::Format {
        source_name: source_name.to_string(),
        problem: problem.into(),
    }
}

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
fn curve_of(der: &[u8]) -> Result<EcCurve, &'static str> {
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

const ONLY_CURVES: &str = "OpenSSF model signing accepts only ECDSA keys on P-256, P-384 and P-521 (`weightgate keygen --type p256`)";

impl EcSigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(curve: EcCurve) -> Self {
        use p256::elliptic_curve::Generate as _;
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        match curve {
            EcCurve::P256 => {
                EcSigningKey::P256(p256::ecdsa::SigningKey::generate_from_rng(&mut rng))
            }
            EcCurve::P384 => {
                EcSigningKey::P384(p384::ecdsa::SigningKey::generate_from_rng(&mut rng))
            }
            EcCurve::P521 => {
                EcSigningKey::P521(p521::ecdsa::SigningKey::generate_from_rng(&mut rng))
            }
        }
    }

    pub fn curve(&self) -> EcCurve {
        match self {
            EcSigningKey::P256(_) => EcCurve::P256,
            EcSigningKey::P384(_) => EcCurve::P384,
            EcSigningKey::P521(_) => EcCurve::P521,
        }
    }

    /// Parses a PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM private key.
    pub fn from_pem(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_label(text, source_name)?;
        let sec1 = match label.as_str() {
            "PRIVATE KEY" => false,
            "EC PRIVATE KEY" => true,
            "PUBLIC KEY" => {
                return Err(format_error(
                    source_name,
                    "a public key, but signing needs the private key",
                ));
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(format_error(
                    source_name,
                    "an encrypted PKCS#8 key; weightgate reads unencrypted keys",
                ));
            }
            "RSA PRIVATE KEY" => {
                return Err(format_error(
                    source_name,
                    format!("an RSA key; {ONLY_CURVES}"),
                ));
            }
            other => {
                return Err(format_error(
                    source_name,
                    format!("unexpected PEM block `{other}`"),
                ));
            }
        };
        let curve = curve_of(&der)
            .map_err(|what| format_error(source_name, format!("{what}; {ONLY_CURVES}")))?;
        let bad =
            |e: String| format_error(source_name, format!("invalid {} key: {e}", curve.name()));
        macro_rules! load {
            ($m:ident, $variant:ident) => {{
                let secret = if sec1 {
                    $m::SecretKey::from_sec1_der(&der).map_err(|e| bad(e.to_string()))?
                } else {
                    $m::SecretKey::from_pkcs8_der(&der).map_err(|e| bad(e.to_string()))?
                };
                EcSigningKey::$variant($m::ecdsa::SigningKey::from(&secret))
            }};
        }
        Ok(match curve {
            EcCurve::P256 => load!(p256, P256),
            EcCurve::P384 => load!(p384, P384),
            EcCurve::P521 => load!(p521, P521),
        })
    }

    /// Reads and parses a private key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read_key_file(path)?, &path.display().to_string())
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> String {
        each_curve!(self, EcSigningKey, k => k
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .unwrap_or_default())
    }

    pub fn verifying_key(&self) -> EcVerifyingKey {
        match self {
            EcSigningKey::P256(k) => EcVerifyingKey::P256(*k.verifying_key()),
            EcSigningKey::P384(k) => EcVerifyingKey::P384(*k.verifying_key()),
            EcSigningKey::P521(k) => EcVerifyingKey::P521(*k.verifying_key()),
        }
    }

    /// ECDSA over `message` with the curve's hash; ASN.1 DER.
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        match self {
            EcSigningKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            EcSigningKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            EcSigningKey::P521(k) => {
                let s: p521::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
        }
    }
}

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

    /// Checks an ASN.1 DER ECDSA signature over `message`.
    pub fn verify_der(&self, message: &[u8], signature: &[u8]) -> Result<(), EcSignatureError> {
        use p256::ecdsa::signature::Verifier as _;
        let curve = self.curve().name();
        let not_der = || EcSignatureError::NotDer {
            curve,
            len: signature.len(),
        };
        let invalid = |_| EcSignatureError::Invalid { curve };
        match self {
            EcVerifyingKey::P256(k) => {
                let s = p256::ecdsa::Signature::from_der(signature).map_err(|_| not_der())?;
                k.verify(message, &s).map_err(invalid)
            }
            EcVerifyingKey::P384(k) => {
                let s = p384::ecdsa::Signature::from_der(signature).map_err(|_| not_der())?;
                k.verify(message, &s).map_err(invalid)
            }
            EcVerifyingKey::P521(k) => {
                let s = p521::ecdsa::Signature::from_der(signature).map_err(|_| not_der())?;
                k.verify(message, &s).map_err(invalid)
            }
        }
    }
}

/// Writes `BASE.key` (PKCS#8 PEM, 0600) and `BASE.pub` (SPKI PEM); never overwrites. Returns
/// the hint model signing records for the public key.
pub fn write_ec_key_pair(base: &Path, key: &EcSigningKey) -> Result<String, KeyError> {
    let public = key.verifying_key();
    write_pem_pair(base, &key.to_pkcs8_pem(), &public.to_spki_pem())?;
    Ok(public.hint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_curve_signs_verifies_and_round_trips_through_pem() {
        for curve in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
            let key = EcSigningKey::generate(curve);
            let again = EcSigningKey::from_pem(&key.to_pkcs8_pem(), "k").unwrap();
            assert_eq!(again.curve(), curve);
            let public = EcVerifyingKey::from_pem(&key.verifying_key().to_spki_pem(), "p").unwrap();
            assert_eq!(public, key.verifying_key());
            let sig = key.sign_der(b"message");
            // RFC 6979: the same key and message always give the same signature.
            assert_eq!(sig, again.sign_der(b"message"));
            assert_eq!(sig[0], 0x30, "DER SEQUENCE");
            public.verify_der(b"message", &sig).unwrap();
            assert_eq!(
                public.verify_der(b"other", &sig),
                Err(EcSignatureError::Invalid {
                    curve: curve.name()
                })
            );
            assert!(matches!(
                public.verify_der(b"message", &sig[2..]),
                Err(EcSignatureError::NotDer { .. })
            ));
        }
    }

    #[test]
    fn wrong_kinds_of_keys_are_named() {
        let ed = crate::keys::signing_key_pem(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
        let err = EcSigningKey::from_pem(&ed, "ed.key")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("an Ed25519 key") && err.contains("P-256"),
            "{err}"
        );
        let ed_pub = crate::keys::verifying_key_pem(
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key(),
        );
        let err = EcVerifyingKey::from_pem(&ed_pub, "ed.pub")
            .unwrap_err()
            .to_string();
        assert!(err.contains("an Ed25519 key"), "{err}");
        let p256 = EcSigningKey::generate(EcCurve::P256);
        let err = EcVerifyingKey::from_pem(&p256.to_pkcs8_pem(), "k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a private key where a public key"), "{err}");
        let err = EcSigningKey::from_pem(&p256.verifying_key().to_spki_pem(), "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a public key, but signing needs"), "{err}");
    }
}
