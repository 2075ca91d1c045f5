//! Private keys: Ed25519 (the attestation) and ECDSA P-256/P-384/P-521 (`model.sig`). Private
//! keys are PKCS#8 PEM written 0600; ECDSA keys are also read as SEC1 (`EC PRIVATE KEY`).

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};

use crate::io::{Replace, write_atomically};
use crate::keys::ecdsa::each_curve;
use crate::keys::{
    EcCurve, EcVerifyingKey, KeyError, ONLY_CURVES, algorithm_of, curve_of, format_error, key_id,
    pem_label, read_key_file, verifying_key_pem,
};

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

/// Reads and parses a private key file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    parse_signing_key(&read_key_file(path)?, &path.display().to_string())
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

/// Writes `BASE.key` (PKCS#8 PEM, 0600) and `BASE.pub` (SPKI PEM); never overwrites. Returns
/// the hint model signing records for the public key.
pub fn write_ec_key_pair(base: &Path, key: &EcSigningKey) -> Result<String, KeyError> {
    let public = key.verifying_key();
    write_pem_pair(base, &key.to_pkcs8_pem(), &public.to_spki_pem())?;
    Ok(public.hint())
}

#[cfg(test)]
mod ed25519_tests {
    use super::*;
    use crate::keys::parse_verifying_key;

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

#[cfg(test)]
mod ecdsa_tests {
    use super::*;
    use crate::keys::EcSignatureError;

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
        let ed = signing_key_pem(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
        let err = EcSigningKey::from_pem(&ed, "ed.key")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("an Ed25519 key") && err.contains("P-256"),
            "{err}"
        );
        let ed_pub =
            verifying_key_pem(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
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
