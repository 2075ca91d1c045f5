//! An ECDSA private key on P-256, P-384 or P-521 read from a PEM file (PKCS#8, or SEC1
//! `EC PRIVATE KEY` as `openssl ecparam` writes it): the signer of `model.sig` bundles.
//! Signatures are RFC 6979 deterministic, ASN.1 DER, with the curve's hash.

use std::path::Path;

use p256::pkcs8::der::pem::LineEnding;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};

use super::key_pair_files::write_pem_pair;
use super::signer::{SignError, SignatureAlgorithm, Signer};
use crate::keys::ecdsa::each_curve;
use crate::keys::{
    EcCurve, EcVerifyingKey, KeyError, ONLY_CURVES, curve_of, format_error, pem_label,
    read_key_file,
};

enum Key {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

/// An ECDSA key held in memory, loaded from or written to a key file.
pub struct EcdsaFileSigner {
    key: Key,
    public: EcVerifyingKey,
    public_der: Vec<u8>,
}

/// Shows the curve and key hint only: secrets stay out of logs.
impl std::fmt::Debug for EcdsaFileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EcdsaFileSigner({}, hint {})",
            self.public.curve().name(),
            self.public.hint()
        )
    }
}

impl EcdsaFileSigner {
    fn new(key: Key) -> Self {
        let public = match &key {
            Key::P256(k) => EcVerifyingKey::P256(*k.verifying_key()),
            Key::P384(k) => EcVerifyingKey::P384(*k.verifying_key()),
            Key::P521(k) => EcVerifyingKey::P521(*k.verifying_key()),
        };
        let public_der = public.to_spki_der();
        EcdsaFileSigner {
            key,
            public,
            public_der,
        }
    }

    /// A fresh key from the operating system's random source.
    pub fn generate(curve: EcCurve) -> Self {
        use p256::elliptic_curve::Generate as _;
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        Self::new(match curve {
            EcCurve::P256 => Key::P256(p256::ecdsa::SigningKey::generate_from_rng(&mut rng)),
            EcCurve::P384 => Key::P384(p384::ecdsa::SigningKey::generate_from_rng(&mut rng)),
            EcCurve::P521 => Key::P521(p521::ecdsa::SigningKey::generate_from_rng(&mut rng)),
        })
    }

    /// Parses a PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM private key.
    pub(crate) fn from_pem(text: &str, source_name: &str) -> Result<Self, KeyError> {
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
                Key::$variant($m::ecdsa::SigningKey::from(&secret))
            }};
        }
        Ok(Self::new(match curve {
            EcCurve::P256 => load!(p256, P256),
            EcCurve::P384 => load!(p384, P384),
            EcCurve::P521 => load!(p521, P521),
        }))
    }

    /// Reads and parses a private key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read_key_file(path)?, &path.display().to_string())
    }

    /// Writes `BASE.key` (PKCS#8 PEM, 0600) and `BASE.pub` (SPKI PEM); never overwrites.
    /// Returns the hint model signing records for the public key.
    pub fn write_key_pair(&self, base: &Path) -> Result<String, KeyError> {
        let private_pem = each_curve!(&self.key, Key, k => k
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .unwrap_or_default());
        write_pem_pair(base, &private_pem, &self.public.to_spki_pem())?;
        Ok(self.public.hint())
    }
}

impl Signer for EcdsaFileSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ecdsa(self.public.curve())
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use p256::ecdsa::signature::Signer as _;
        let failed = |e: p256::ecdsa::Error| SignError::Failed {
            key_id: self.key_id(),
            source: Box::new(e),
        };
        Ok(match &self.key {
            Key::P256(k) => {
                let s: p256::ecdsa::Signature = k.try_sign(message).map_err(failed)?;
                s.to_der().as_bytes().to_vec()
            }
            Key::P384(k) => {
                let s: p384::ecdsa::Signature = k.try_sign(message).map_err(failed)?;
                s.to_der().as_bytes().to_vec()
            }
            Key::P521(k) => {
                let s: p521::ecdsa::Signature = k.try_sign(message).map_err(failed)?;
                s.to_der().as_bytes().to_vec()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::EcSignatureError;

    fn private_pem(signer: &EcdsaFileSigner) -> String {
        each_curve!(&signer.key, Key, k => k
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .unwrap())
    }

    #[test]
    fn every_curve_signs_verifies_and_round_trips_through_pem() {
        for curve in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
            let key = EcdsaFileSigner::generate(curve);
            let again = EcdsaFileSigner::from_pem(&private_pem(&key), "k").unwrap();
            assert_eq!(again.algorithm(), SignatureAlgorithm::Ecdsa(curve));
            let public = EcVerifyingKey::from_pem(&key.public.to_spki_pem(), "p").unwrap();
            assert_eq!(public, key.public);
            assert_eq!(public.to_spki_der(), key.public_key_der());
            let sig = key.sign(b"message").unwrap();
            // RFC 6979: the same key and message always give the same signature.
            assert_eq!(sig, again.sign(b"message").unwrap());
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
    fn key_pairs_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = EcdsaFileSigner::generate(EcCurve::P384);
        let hint = key.write_key_pair(&dir.path().join("m")).unwrap();
        assert_eq!(hint, key.public.hint());
        let again = EcdsaFileSigner::load(&dir.path().join("m.key")).unwrap();
        assert_eq!(again.public, key.public);
        let public = EcVerifyingKey::load(&dir.path().join("m.pub")).unwrap();
        assert_eq!(public, key.public);
        assert!(key.write_key_pair(&dir.path().join("m")).is_err());
    }

    #[test]
    fn wrong_kinds_of_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        super::super::Ed25519FileSigner::generate()
            .write_key_pair(&dir.path().join("ed"))
            .unwrap();
        let ed = std::fs::read_to_string(dir.path().join("ed.key")).unwrap();
        let err = EcdsaFileSigner::from_pem(&ed, "ed.key")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("an Ed25519 key") && err.contains("P-256"),
            "{err}"
        );
        let ed_pub = std::fs::read_to_string(dir.path().join("ed.pub")).unwrap();
        let err = EcVerifyingKey::from_pem(&ed_pub, "ed.pub")
            .unwrap_err()
            .to_string();
        assert!(err.contains("an Ed25519 key"), "{err}");
        let p256 = EcdsaFileSigner::generate(EcCurve::P256);
        let err = EcVerifyingKey::from_pem(&private_pem(&p256), "k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a private key where a public key"), "{err}");
        let err = EcdsaFileSigner::from_pem(&p256.public.to_spki_pem(), "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a public key, but signing needs"), "{err}");
    }
}
