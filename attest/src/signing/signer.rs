//! The signing seam: everything that signs (envelopes, cosignatures, grants, `model.sig`) asks a
//! [`Signer`] for a signature and never sees a private key, so a key in a file, a hardware token
//! or a cloud KMS plug in alike. Each implementation is one file beside this one.

use std::path::Path;

use ed25519_dalek::pkcs8::DecodePublicKey as _;
use sha2::{Digest as _, Sha256};

use super::ecdsa_file_signer::EcdsaFileSigner;
use super::ed25519_file_signer::Ed25519FileSigner;
use crate::keys::{EcCurve, EcVerifyingKey, KeyError};

/// A signature algorithm, with the signature encoding [`Signer::sign`] returns for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032) over the message: 64 bytes, `R || S`.
    Ed25519,
    /// ECDSA over the message hashed with the curve's hash (SHA-256, SHA-384, SHA-512):
    /// ASN.1 DER.
    Ecdsa(EcCurve),
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureAlgorithm::Ed25519 => f.write_str("Ed25519"),
            SignatureAlgorithm::Ecdsa(curve) => write!(f, "ECDSA {}", curve.name()),
        }
    }
}

/// What a signature is for; each accepts its own algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningPurpose {
    /// A weightgate DSSE envelope: an attestation, a cosignature, a grant, an in-toto export.
    Envelope,
    /// An OpenSSF model-signing bundle (`model.sig`).
    ModelSignature,
}

impl SigningPurpose {
    pub(crate) fn accepts(self, algorithm: SignatureAlgorithm) -> bool {
        match self {
            SigningPurpose::Envelope => algorithm == SignatureAlgorithm::Ed25519,
            // The only key types OpenSSF model signing accepts.
            SigningPurpose::ModelSignature => matches!(algorithm, SignatureAlgorithm::Ecdsa(_)),
        }
    }

    /// What [`SigningPurpose::accepts`] says, for error messages.
    fn needs(self) -> &'static str {
        match self {
            SigningPurpose::Envelope => "a weightgate envelope needs an Ed25519 key",
            SigningPurpose::ModelSignature => {
                "OpenSSF model signing accepts only ECDSA keys on P-256, P-384 and P-521"
            }
        }
    }

    /// Refuses a signer whose algorithm this purpose does not accept.
    pub(crate) fn check(self, signer: &dyn Signer) -> Result<(), SignError> {
        let algorithm = signer.algorithm();
        if self.accepts(algorithm) {
            return Ok(());
        }
        Err(SignError::WrongAlgorithm {
            key_id: signer.key_id(),
            algorithm,
            needs: self.needs(),
        })
    }
}

/// Why a signature could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("key {key_id}: an {algorithm} key, but {needs}")]
    WrongAlgorithm {
        key_id: String,
        algorithm: SignatureAlgorithm,
        needs: &'static str,
    },
    /// The signer failed: a token removed, a service unreachable, a PIN refused.
    #[error("key {key_id}: cannot sign")]
    Failed {
        key_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("key {key_id}: its public key is not an {algorithm} key: {problem}")]
    BadPublicKey {
        key_id: String,
        algorithm: SignatureAlgorithm,
        problem: String,
    },
    /// Checked after every signature, so a faulty signer cannot write an envelope no verifier
    /// accepts.
    #[error("key {key_id}: the {algorithm} signature it made does not verify with its public key")]
    BadSignature {
        key_id: String,
        algorithm: SignatureAlgorithm,
    },
}

/// A private key that signs without handing itself out.
///
/// The private key may live in a file, a hardware token or a remote service: callers see only
/// its public key, its algorithm and the signatures it makes. Signing may fail (a token removed,
/// a service unreachable), so [`Signer::sign`] returns a [`SignError`].
pub trait Signer {
    fn algorithm(&self) -> SignatureAlgorithm;

    /// The public key as SubjectPublicKeyInfo DER: it names the key in envelopes (the key id)
    /// and in `model.sig` bundles (the key hint).
    fn public_key_der(&self) -> &[u8];

    /// Signs `message` as [`SignatureAlgorithm`] describes for [`Signer::algorithm`].
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;

    /// Lowercase hex SHA-256 of [`Signer::public_key_der`]: the DSSE `keyid`. Implementations
    /// keep this definition, which verifiers compute from the public key alone.
    fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.public_key_der()))
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn algorithm(&self) -> SignatureAlgorithm {
        (**self).algorithm()
    }
    fn public_key_der(&self) -> &[u8] {
        (**self).public_key_der()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign(message)
    }
    fn key_id(&self) -> String {
        (**self).key_id()
    }
}

/// Shows what identifies the key, never a secret.
impl std::fmt::Debug for dyn Signer + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, key {})", self.algorithm(), self.key_id())
    }
}

/// Opens the private key file at `path` (PEM) as a signer for `purpose`: Ed25519 PKCS#8 for
/// envelopes; ECDSA P-256/P-384/P-521 PKCS#8 or SEC1 for `model.sig`. A key of another kind
/// is refused here, naming what it is and what `purpose` needs.
pub fn load_signer(path: &Path, purpose: SigningPurpose) -> Result<Box<dyn Signer>, KeyError> {
    Ok(match purpose {
        SigningPurpose::Envelope => Box::new(Ed25519FileSigner::load(path)?),
        SigningPurpose::ModelSignature => Box::new(EcdsaFileSigner::load(path)?),
    })
}

/// Signs `message` for `purpose`: refuses a signer of the wrong algorithm, then checks the
/// signature with the signer's own public key.
pub(crate) fn sign_for(
    signer: &dyn Signer,
    purpose: SigningPurpose,
    message: &[u8],
) -> Result<Vec<u8>, SignError> {
    purpose.check(signer)?;
    let signature = signer.sign(message)?;
    let algorithm = signer.algorithm();
    let verifies = match algorithm {
        SignatureAlgorithm::Ed25519 => {
            let public = ed25519_dalek::VerifyingKey::from_public_key_der(signer.public_key_der())
                .map_err(|e| SignError::BadPublicKey {
                    key_id: signer.key_id(),
                    algorithm,
                    problem: e.to_string(),
                })?;
            ed25519_dalek::Signature::from_slice(&signature)
                .is_ok_and(|s| public.verify_strict(message, &s).is_ok())
        }
        SignatureAlgorithm::Ecdsa(_) => {
            let public = ecdsa_public_key(signer, purpose)?;
            public.verify_der(message, &signature).is_ok()
        }
    };
    if !verifies {
        return Err(SignError::BadSignature {
            key_id: signer.key_id(),
            algorithm,
        });
    }
    Ok(signature)
}

/// The public key of an ECDSA signer, once `purpose` accepts its algorithm.
pub(crate) fn ecdsa_public_key(
    signer: &dyn Signer,
    purpose: SigningPurpose,
) -> Result<EcVerifyingKey, SignError> {
    purpose.check(signer)?;
    let algorithm = signer.algorithm();
    let bad_key = |problem: String| SignError::BadPublicKey {
        key_id: signer.key_id(),
        algorithm,
        problem,
    };
    let public = EcVerifyingKey::from_spki_der(signer.public_key_der(), "the signer's public key")
        .map_err(|e| bad_key(e.to_string()))?;
    if SignatureAlgorithm::Ecdsa(public.curve()) != algorithm {
        return Err(bad_key(format!("an ECDSA {} key", public.curve().name())));
    }
    Ok(public)
}

#[cfg(test)]
pub(crate) mod test_signers {
    //! Signers for the error paths: they stand in for a token that fails or misbehaves.

    use super::*;

    /// Wraps a real signer and fails or corrupts its signatures.
    pub struct Faulty<S> {
        pub inner: S,
        pub fault: Fault,
    }

    #[derive(Clone, Copy)]
    pub enum Fault {
        /// `sign` fails, as a removed token does.
        Fails,
        /// `sign` returns a signature with one bit flipped.
        FlipsABit,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("token removed")]
    pub struct TokenRemoved;

    impl<S: Signer> Signer for Faulty<S> {
        fn algorithm(&self) -> SignatureAlgorithm {
            self.inner.algorithm()
        }
        fn public_key_der(&self) -> &[u8] {
            self.inner.public_key_der()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
            match self.fault {
                Fault::Fails => Err(SignError::Failed {
                    key_id: self.key_id(),
                    source: Box::new(TokenRemoved),
                }),
                Fault::FlipsABit => {
                    let mut signature = self.inner.sign(message)?;
                    let last = signature.len() - 1;
                    signature[last] ^= 1;
                    Ok(signature)
                }
            }
        }
    }

    /// Asserts that `result` failed because the token was removed.
    pub fn assert_token_removed<T: std::fmt::Debug>(result: Result<T, SignError>) {
        match result {
            Err(SignError::Failed { source, .. }) => {
                assert!(source.is::<TokenRemoved>(), "{source}")
            }
            other => panic!("expected the signer's failure, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_signers::{Fault, Faulty};
    use super::*;

    fn testdata(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(p)
    }

    #[test]
    fn file_signers_sign_what_their_public_key_verifies() {
        let ed = load_signer(&testdata("keys/test-lab.key"), SigningPurpose::Envelope).unwrap();
        assert_eq!(ed.algorithm(), SignatureAlgorithm::Ed25519);
        let public = crate::keys::load_verifying_key(&testdata("keys/test-lab.pub")).unwrap();
        assert_eq!(ed.key_id(), crate::keys::key_id(&public));
        let sig = sign_for(&*ed, SigningPurpose::Envelope, b"message").unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        public.verify_strict(b"message", &sig).unwrap();
        assert!(public.verify_strict(b"other", &sig).is_err());

        for curve in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
            let ec = EcdsaFileSigner::generate(curve);
            assert_eq!(ec.algorithm(), SignatureAlgorithm::Ecdsa(curve));
            let sig = sign_for(&ec, SigningPurpose::ModelSignature, b"message").unwrap();
            let public = ecdsa_public_key(&ec, SigningPurpose::ModelSignature).unwrap();
            public.verify_der(b"message", &sig).unwrap();
            assert!(public.verify_der(b"other", &sig).is_err());
        }
    }

    #[test]
    fn a_signer_of_the_wrong_algorithm_is_refused_before_it_signs() {
        let ed = Ed25519FileSigner::load(&testdata("keys/test-lab.key")).unwrap();
        let failing = Faulty {
            inner: ed,
            fault: Fault::Fails,
        };
        // The algorithm check comes first: the failing token is never asked.
        let err = sign_for(&failing, SigningPurpose::ModelSignature, b"m").unwrap_err();
        assert!(matches!(err, SignError::WrongAlgorithm { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "key {}: an Ed25519 key, but OpenSSF model signing accepts only ECDSA keys on P-256, P-384 and P-521",
                failing.key_id()
            )
        );
        let ec = EcdsaFileSigner::generate(EcCurve::P384);
        let err = sign_for(&ec, SigningPurpose::Envelope, b"m").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("an ECDSA P-384 key, but a weightgate envelope needs an Ed25519 key"),
            "{err}"
        );
    }

    #[test]
    fn a_signature_that_does_not_verify_is_refused() {
        let ed = Ed25519FileSigner::load(&testdata("keys/test-lab.key")).unwrap();
        let flips = Faulty {
            inner: ed,
            fault: Fault::FlipsABit,
        };
        let err = sign_for(&flips, SigningPurpose::Envelope, b"m").unwrap_err();
        assert!(matches!(err, SignError::BadSignature { .. }), "{err:?}");
        let flips = Faulty {
            inner: EcdsaFileSigner::generate(EcCurve::P256),
            fault: Fault::FlipsABit,
        };
        let err = sign_for(&flips, SigningPurpose::ModelSignature, b"m").unwrap_err();
        assert!(matches!(err, SignError::BadSignature { .. }), "{err:?}");
    }

    #[test]
    fn debug_shows_the_key_id_and_no_secret() {
        let ed = load_signer(&testdata("keys/test-lab.key"), SigningPurpose::Envelope).unwrap();
        let shown = format!("{ed:?}");
        assert_eq!(shown, format!("Signer(Ed25519, key {})", ed.key_id()));
    }
}
