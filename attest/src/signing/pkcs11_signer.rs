//! A private key in a PKCS#11 token (an HSM, a smart card, SoftHSM), named by a `pkcs11:` URI
//! (RFC 7512). The key never leaves the token: it signs Ed25519 with CKM_EDDSA (PKCS#11 3.0)
//! and ECDSA with CKM_ECDSA over the digest weightgate computes, and the raw `r || s` the token
//! returns is DER-encoded, the encoding the file signer writes.

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use sha2::Digest as _;

use super::pkcs11_token::{Pkcs11Error, Pkcs11Options, TokenKeyType, TokenSession, ec_params};
use super::pkcs11_uri::{ObjectType, Pkcs11Uri};
use super::signer::{SignError, SignatureAlgorithm, Signer, SigningPurpose};
use crate::keys::EcCurve;

/// A signing key held in a PKCS#11 token, with an open, logged-in session.
pub struct Pkcs11Signer {
    token: TokenSession,
    key: ObjectHandle,
    key_type: TokenKeyType,
    public_der: Vec<u8>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pkcs11Signer({}, token {:?}, key {})",
            self.algorithm(),
            self.token.token,
            self.key_id()
        )
    }
}

fn algorithm_of(key_type: TokenKeyType) -> SignatureAlgorithm {
    match key_type {
        TokenKeyType::Ed25519 => SignatureAlgorithm::Ed25519,
        TokenKeyType::Ecdsa(curve) => SignatureAlgorithm::Ecdsa(curve),
    }
}

impl Pkcs11Signer {
    /// Opens the private key `uri` names for `purpose`: loads the module, finds the token,
    /// logs in, finds the key and its public key, refuses a key of an algorithm `purpose` does
    /// not accept, and checks the token offers the key's signing mechanism.
    pub fn open(
        uri: &Pkcs11Uri,
        options: &Pkcs11Options,
        purpose: SigningPurpose,
    ) -> Result<Self, Pkcs11Error> {
        let token = TokenSession::open(uri, options, false)?;
        let (key, key_type, public_der) = token.private_key(uri)?;
        let signer = Pkcs11Signer {
            token,
            key,
            key_type,
            public_der,
        };
        purpose
            .check(&signer)
            .map_err(|refused| Pkcs11Error::WrongAlgorithm {
                token: signer.token.token.clone(),
                refused,
            })?;
        let token = &signer.token;
        match key_type {
            TokenKeyType::Ed25519 => {
                token.require(MechanismType::EDDSA, "CKM_EDDSA", "Ed25519 signing")?
            }
            TokenKeyType::Ecdsa(_) => {
                token.require(MechanismType::ECDSA, "CKM_ECDSA", "ECDSA signing")?
            }
        }
        Ok(signer)
    }

    fn sign_in_token(&self, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let session = &self.token.session;
        let signed = |e| self.token.error("C_Sign", e);
        let wrong_length = |len: usize, expected: usize| Pkcs11Error::Key {
            token: self.token.token.clone(),
            wanted: format!("key {}", self.key_id()),
            problem: format!("the token returned a {len}-byte signature, not {expected} bytes"),
        };
        match self.key_type {
            TokenKeyType::Ed25519 => {
                let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                let signature = session
                    .sign(&mechanism, self.key, message)
                    .map_err(signed)?;
                if signature.len() != 64 {
                    return Err(wrong_length(signature.len(), 64));
                }
                Ok(signature)
            }
            TokenKeyType::Ecdsa(curve) => {
                // CKM_ECDSA signs a digest: the curve's own hash, as the file signer uses.
                let digest = match curve {
                    EcCurve::P256 => sha2::Sha256::digest(message).to_vec(),
                    EcCurve::P384 => sha2::Sha384::digest(message).to_vec(),
                    EcCurve::P521 => sha2::Sha512::digest(message).to_vec(),
                };
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.key, &digest)
                    .map_err(signed)?;
                let der = match curve {
                    EcCurve::P256 => p256::ecdsa::Signature::from_slice(&raw)
                        .map(|s| s.to_der().as_bytes().to_vec()),
                    EcCurve::P384 => p384::ecdsa::Signature::from_slice(&raw)
                        .map(|s| s.to_der().as_bytes().to_vec()),
                    EcCurve::P521 => p521::ecdsa::Signature::from_slice(&raw)
                        .map(|s| s.to_der().as_bytes().to_vec()),
                };
                let field = match curve {
                    EcCurve::P256 => 32,
                    EcCurve::P384 => 48,
                    EcCurve::P521 => 66,
                };
                der.map_err(|_| wrong_length(raw.len(), 2 * field))
            }
        }
    }
}

impl Signer for Pkcs11Signer {
    fn algorithm(&self) -> SignatureAlgorithm {
        algorithm_of(self.key_type)
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_in_token(message)
            .map_err(|source| SignError::Failed {
                key_id: self.key_id(),
                source: Box::new(source),
            })
    }
}

/// A key pair just made in a token.
#[derive(Debug)]
pub struct GeneratedTokenKey {
    /// The new public key as SPKI PEM, as `weightgate keygen` writes NAME.pub: what
    /// `verify --trust` and `verify-oms --key` take.
    pub public_pem: String,
    /// What names the key in what it signs: the key id (Ed25519, the DSSE `keyid`) or the
    /// key hint (ECDSA, `model.sig`).
    pub key_name: String,
    /// A URI naming the new private key exactly (its label and CKA_ID).
    pub uri: Pkcs11Uri,
}

/// Creates a key pair in the token `uri` selects, labelled with its `object` and with its `id`
/// as CKA_ID (a random 16-byte id where the URI gives none). The private key is sensitive and
/// not extractable. Refuses to create a key beside an object with the same label or id, so no
/// URI that named one key comes to name two.
pub fn generate_token_key(
    uri: &Pkcs11Uri,
    options: &Pkcs11Options,
    key_type: TokenKeyType,
) -> Result<GeneratedTokenKey, Pkcs11Error> {
    if uri.object.is_none() {
        return Err(super::pkcs11_uri::Pkcs11UriError::new(
            "a new key needs a label: add `object=` to the URI",
        )
        .into());
    }
    if uri
        .object_type
        .is_some_and(|t| t != ObjectType::Private && t != ObjectType::Public)
    {
        return Err(super::pkcs11_uri::Pkcs11UriError::new(
            "a new key pair is `type=private` and `type=public`; leave `type` out",
        )
        .into());
    }
    let token = TokenSession::open(uri, options, true)?;
    let (mechanism, mechanism_name, purpose) = match key_type {
        TokenKeyType::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            "CKM_EC_EDWARDS_KEY_PAIR_GEN",
        ),
        TokenKeyType::Ecdsa(_) => (
            Mechanism::EccKeyPairGen,
            MechanismType::ECC_KEY_PAIR_GEN,
            "CKM_EC_KEY_PAIR_GEN",
        ),
    };
    token.require(mechanism_name, purpose, "creating the key")?;
    match key_type {
        TokenKeyType::Ed25519 => {
            token.require(MechanismType::EDDSA, "CKM_EDDSA", "Ed25519 signing")?
        }
        TokenKeyType::Ecdsa(_) => {
            token.require(MechanismType::ECDSA, "CKM_ECDSA", "ECDSA signing")?
        }
    }
    let label = uri.object.clone().unwrap_or_default();
    let id = match &uri.id {
        Some(id) => id.clone(),
        None => {
            let mut id = vec![0; 16];
            getrandom::fill(&mut id).map_err(|e| Pkcs11Error::Key {
                token: token.token.clone(),
                wanted: uri.object_description(),
                problem: format!("no random id: {e}"),
            })?;
            id
        }
    };
    // Any object with the label, and any with the id: either would make the URI ambiguous.
    let by_label = Pkcs11Uri {
        object: Some(label.clone()),
        ..Pkcs11Uri::default()
    };
    let by_id = Pkcs11Uri {
        id: Some(id.clone()),
        ..Pkcs11Uri::default()
    };
    for (selector, what) in [(&by_label, "label"), (&by_id, "id")] {
        for class in [
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::CERTIFICATE,
            ObjectClass::SECRET_KEY,
        ] {
            if !token.find(selector, class)?.is_empty() {
                return Err(Pkcs11Error::Key {
                    token: token.token.clone(),
                    wanted: selector.object_description(),
                    problem: format!(
                        "an object with this {what} exists; keygen never adds a second key under one name"
                    ),
                });
            }
        }
    }
    let common = [
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let mut public_template = common.to_vec();
    public_template.extend([
        Attribute::Verify(true),
        Attribute::Private(false),
        Attribute::EcParams(ec_params(key_type).to_vec()),
    ]);
    let mut private_template = common.to_vec();
    private_template.extend([
        Attribute::Sign(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ]);
    token
        .session
        .generate_key_pair(&mechanism, &public_template, &private_template)
        .map_err(|e| token.error("C_GenerateKeyPair", e))?;
    let made = Pkcs11Uri {
        object: Some(label),
        id: Some(id),
        object_type: Some(ObjectType::Private),
        ..uri.clone()
    };
    let (_, made_type, public_der) = token.private_key(&made)?;
    debug_assert_eq!(made_type, key_type);
    let (public_pem, key_name) = match key_type {
        TokenKeyType::Ed25519 => {
            use ed25519_dalek::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
            let public = ed25519_dalek::VerifyingKey::from_public_key_der(&public_der)
                .expect("private_key checked the SubjectPublicKeyInfo");
            let pem = public
                .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .expect("an Ed25519 key encodes");
            (pem, crate::keys::key_id(&public))
        }
        TokenKeyType::Ecdsa(_) => {
            let public = crate::keys::EcVerifyingKey::from_spki_der(&public_der, "the new key")
                .expect("private_key checked the SubjectPublicKeyInfo");
            (public.to_spki_pem(), public.hint())
        }
    };
    Ok(GeneratedTokenKey {
        public_pem,
        key_name,
        uri: Pkcs11Uri {
            object_type: None,
            module_path: None,
            module_name: None,
            pin_source: None,
            ..made
        },
    })
}
