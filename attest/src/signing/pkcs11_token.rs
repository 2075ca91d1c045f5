//! Reaching a key in a PKCS#11 token: load the module a URI names, find the one token it
//! selects, log in with a PIN from where the user keeps it, find the one key object, and read
//! its public key. The signer and key generation share this.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;
use ed25519_dalek::pkcs8::EncodePublicKey as _;

use super::pkcs11_uri::{ObjectType, Pkcs11Uri};
use crate::keys::{EcCurve, EcVerifyingKey};

/// The longest PIN file read: PINs are short; this bounds a `pin-source` naming a device.
const MAX_PIN_FILE_LEN: u64 = 1024;

/// How to reach a token beyond what its URI says: defaults for the module and the PIN.
#[derive(Default)]
pub struct Pkcs11Options {
    /// The module when the URI names none (`--pkcs11-module`).
    pub module: Option<PathBuf>,
    /// Where the PIN is when the URI names no `pin-source` (`--pin-source`).
    pub pin_source: Option<String>,
    /// The PIN itself when neither names a source (from the environment).
    pub pin: Option<Vec<u8>>,
}

/// Shows where the PIN comes from, never the PIN.
impl std::fmt::Debug for Pkcs11Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Options")
            .field("module", &self.module)
            .field("pin_source", &self.pin_source)
            .field("pin", &self.pin.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// Why a key in a token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    #[error(transparent)]
    Uri(#[from] super::pkcs11_uri::Pkcs11UriError),
    #[error(
        "no PKCS#11 module: add `module-path=` to the URI, or give --pkcs11-module or WEIGHTGATE_PKCS11_MODULE"
    )]
    NoModule,
    #[error("cannot load the PKCS#11 module {}: {problem}", module.display())]
    Module { module: PathBuf, problem: String },
    #[error("no token matches {wanted} in module {} ({present})", module.display())]
    NoToken {
        wanted: String,
        module: PathBuf,
        present: String,
    },
    #[error("{count} tokens match {wanted} ({present}): add `token=` or `serial=` to the URI")]
    ManyTokens {
        wanted: String,
        count: usize,
        present: String,
    },
    #[error(
        "token {token:?} needs a PIN: give `pin-source=` in the URI, --pin-source, or WEIGHTGATE_PKCS11_PIN"
    )]
    NoPin { token: String },
    #[error("cannot read the PIN from pin-source {source_name:?}: {problem}")]
    PinSource {
        source_name: String,
        problem: String,
    },
    #[error("token {token:?} refused the PIN (CKR_PIN_INCORRECT)")]
    PinIncorrect { token: String },
    #[error("token {token:?}: the user PIN is locked (CKR_PIN_LOCKED)")]
    PinLocked { token: String },
    #[error("token {token:?} has no private key matching {wanted}")]
    NoKey { token: String, wanted: String },
    #[error(
        "token {token:?} has {count} private keys matching {wanted}: add `object=` or `id=` to the URI"
    )]
    ManyKeys {
        token: String,
        count: usize,
        wanted: String,
    },
    #[error("{uri}: `type={found}` names no private key, and signing needs one (`type=private`)")]
    NotPrivate { uri: String, found: &'static str },
    #[error("token {token:?}: {refused}")]
    WrongAlgorithm {
        token: String,
        refused: super::signer::SignError,
    },
    #[error("token {token:?}: key {wanted}: {problem}")]
    Key {
        token: String,
        wanted: String,
        problem: String,
    },
    #[error("token {token:?} does not offer {mechanism}, which {purpose} needs")]
    NoMechanism {
        token: String,
        mechanism: &'static str,
        purpose: &'static str,
    },
    #[error("token {token:?}: {operation} failed: {error}")]
    Token {
        token: String,
        operation: &'static str,
        error: CkError,
    },
}

/// The type of a key pair in a token that weightgate signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKeyType {
    Ed25519,
    Ecdsa(EcCurve),
}

/// DER `OBJECT IDENTIFIER` of each curve: CKA_EC_PARAMS of a named curve.
pub(crate) fn ec_params(key_type: TokenKeyType) -> &'static [u8] {
    match key_type {
        // 1.3.101.112 (RFC 8410), as PKCS#11 3.0 names Edwards curves.
        TokenKeyType::Ed25519 => &[0x06, 0x03, 0x2b, 0x65, 0x70],
        TokenKeyType::Ecdsa(EcCurve::P256) => {
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        }
        TokenKeyType::Ecdsa(EcCurve::P384) => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        TokenKeyType::Ecdsa(EcCurve::P521) => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
    }
}

/// An open, logged-in session on the one token a URI selects.
pub(crate) struct TokenSession {
    pub session: Session,
    /// The token's label, for messages.
    pub token: String,
    slot: Slot,
    pkcs11: Pkcs11,
}

/// PKCS#11 pads its fixed-width text fields with spaces.
fn trimmed(field: &str) -> &str {
    field.trim_end_matches([' ', '\0'])
}

fn load_module(uri: &Pkcs11Uri, options: &Pkcs11Options) -> Result<(Pkcs11, PathBuf), Pkcs11Error> {
    let module = match (&uri.module_path, &uri.module_name) {
        (Some(path), _) => path.clone(),
        // RFC 7512 leaves resolving a name to the platform: the dynamic loader's search path.
        (None, Some(name)) => PathBuf::from(format!("lib{name}.so")),
        (None, None) => options.module.clone().ok_or(Pkcs11Error::NoModule)?,
    };
    let failed = |error: CkError| {
        // The loader's own message, once (cryptoki repeats it in its wrapper).
        let mut cause: &dyn std::error::Error = &error;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        Pkcs11Error::Module {
            module: module.clone(),
            problem: cause.to_string(),
        }
    };
    let pkcs11 = Pkcs11::new(&module).map_err(failed)?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Initialisation is per process: a second key in the same module finds it done.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(e)),
    }
    Ok((pkcs11, module))
}

impl TokenSession {
    /// Opens a session on the token `uri` selects and logs in. `read_write` for creating keys.
    pub fn open(
        uri: &Pkcs11Uri,
        options: &Pkcs11Options,
        read_write: bool,
    ) -> Result<Self, Pkcs11Error> {
        let (pkcs11, module) = load_module(uri, options)?;
        let wanted = uri.token_description();
        let token_error = |operation, error| Pkcs11Error::Token {
            token: wanted.clone(),
            operation,
            error,
        };
        let library = pkcs11
            .get_library_info()
            .map_err(|e| token_error("C_GetInfo", e))?;
        let library_matches = uri
            .library_manufacturer
            .as_deref()
            .is_none_or(|m| trimmed(library.manufacturer_id()) == m)
            && uri
                .library_description
                .as_deref()
                .is_none_or(|d| trimmed(library.library_description()) == d)
            && uri.library_version.is_none_or(|(major, minor)| {
                let v = library.library_version();
                v.major() == major && minor.is_none_or(|minor| v.minor() == minor)
            });
        let slots = pkcs11
            .get_slots_with_token()
            .map_err(|e| token_error("C_GetSlotList", e))?;
        let mut present = Vec::new();
        let mut matching = Vec::new();
        for slot in slots {
            let (Ok(slot_info), Ok(token_info)) =
                (pkcs11.get_slot_info(slot), pkcs11.get_token_info(slot))
            else {
                // Removed between the list and the look: not present.
                continue;
            };
            if !token_info.token_initialized() {
                // SoftHSM and others offer a free slot with an uninitialised token.
                continue;
            }
            let label = trimmed(token_info.label()).to_string();
            let is = |want: &Option<String>, have: &str| {
                want.as_deref().is_none_or(|w| trimmed(have) == w)
            };
            let matches = library_matches
                && uri.slot_id.is_none_or(|id| slot.id() == id)
                && is(&uri.slot_description, slot_info.slot_description())
                && is(&uri.slot_manufacturer, slot_info.manufacturer_id())
                && is(&uri.token, token_info.label())
                && is(&uri.manufacturer, token_info.manufacturer_id())
                && is(&uri.model, token_info.model())
                && is(&uri.serial, token_info.serial_number());
            present.push(format!("{label:?}"));
            if matches {
                matching.push((slot, label, token_info));
            }
        }
        let present = if present.is_empty() {
            "no token present: removed, or not initialised".to_string()
        } else {
            format!("tokens present: {}", present.join(", "))
        };
        if matching.len() > 1 {
            return Err(Pkcs11Error::ManyTokens {
                wanted,
                count: matching.len(),
                present,
            });
        }
        let Some((slot, token, token_info)) = matching.pop() else {
            return Err(Pkcs11Error::NoToken {
                wanted,
                module,
                present,
            });
        };
        let failed = |operation, error| Pkcs11Error::Token {
            token: token.clone(),
            operation,
            error,
        };
        let session = if read_write {
            pkcs11.open_rw_session(slot)
        } else {
            pkcs11.open_ro_session(slot)
        }
        .map_err(|e| failed("C_OpenSession", e))?;

        let pin_source = uri.pin_source.as_ref().or(options.pin_source.as_ref());
        let pin = match pin_source {
            Some(source) => Some(read_pin_source(source)?),
            None => options.pin.clone(),
        };
        let login = match pin {
            Some(pin) => session.login_with_raw(UserType::User, &RawAuthPin::new(Box::new(pin))),
            // A PIN pad or biometric reader authenticates on the device itself.
            None if token_info.protected_authentication_path() => {
                session.login(UserType::User, None)
            }
            None if token_info.login_required() => {
                return Err(Pkcs11Error::NoPin { token });
            }
            None => Ok(()),
        };
        match login {
            // Sessions of one process share the login: another key of this token did it.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(Pkcs11Error::PinIncorrect { token });
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(Pkcs11Error::PinLocked { token });
            }
            Err(e) => return Err(failed("C_Login", e)),
        }
        Ok(TokenSession {
            session,
            token,
            slot,
            pkcs11,
        })
    }

    pub fn error(&self, operation: &'static str, error: CkError) -> Pkcs11Error {
        Pkcs11Error::Token {
            token: self.token.clone(),
            operation,
            error,
        }
    }

    /// Refuses a token that lacks `mechanism`, before anything is asked of it.
    pub fn require(
        &self,
        mechanism: MechanismType,
        name: &'static str,
        purpose: &'static str,
    ) -> Result<(), Pkcs11Error> {
        let mechanisms = self
            .pkcs11
            .get_mechanism_list(self.slot)
            .map_err(|e| self.error("C_GetMechanismList", e))?;
        if mechanisms.contains(&mechanism) {
            return Ok(());
        }
        Err(Pkcs11Error::NoMechanism {
            token: self.token.clone(),
            mechanism: name,
            purpose,
        })
    }

    /// Objects of `class` with the URI's label and id.
    pub fn find(
        &self,
        uri: &Pkcs11Uri,
        class: ObjectClass,
    ) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
        let mut template = vec![Attribute::Class(class)];
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        self.session
            .find_objects(&template)
            .map_err(|e| self.error("C_FindObjects", e))
    }

    /// The one private key the URI names, with its type and SubjectPublicKeyInfo DER.
    pub fn private_key(
        &self,
        uri: &Pkcs11Uri,
    ) -> Result<(ObjectHandle, TokenKeyType, Vec<u8>), Pkcs11Error> {
        if let Some(found) = uri.object_type.filter(|t| *t != ObjectType::Private) {
            return Err(Pkcs11Error::NotPrivate {
                uri: uri.to_string(),
                found: match found {
                    ObjectType::Public => "public",
                    ObjectType::Cert => "cert",
                    ObjectType::SecretKey => "secret-key",
                    _ => "data",
                },
            });
        }
        let wanted = uri.object_description();
        let keys = self.find(uri, ObjectClass::PRIVATE_KEY)?;
        let key = match keys.as_slice() {
            [key] => *key,
            [] => {
                return Err(Pkcs11Error::NoKey {
                    token: self.token.clone(),
                    wanted,
                });
            }
            _ => {
                return Err(Pkcs11Error::ManyKeys {
                    token: self.token.clone(),
                    count: keys.len(),
                    wanted,
                });
            }
        };
        let key_error = |problem: String| Pkcs11Error::Key {
            token: self.token.clone(),
            wanted: wanted.clone(),
            problem,
        };
        let attributes = self
            .session
            .get_attributes(
                key,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::Id,
                    AttributeType::Label,
                ],
            )
            .map_err(|e| self.error("C_GetAttributeValue", e))?;
        let (mut key_type, mut params, mut id, mut label) = (None, None, None, None);
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::Id(i) if !i.is_empty() => id = Some(i),
                Attribute::Label(l) if !l.is_empty() => label = Some(l),
                _ => {}
            }
        }
        let params = params.ok_or_else(|| {
            key_error(format!(
                "a {} key; weightgate signs with Ed25519 and ECDSA P-256/P-384/P-521 keys",
                key_type.map_or("non-EC".to_string(), |t| t.to_string())
            ))
        })?;
        let key_type = match key_type {
            Some(KeyType::EC_EDWARDS) if params == ec_params(TokenKeyType::Ed25519) => {
                TokenKeyType::Ed25519
            }
            // PKCS#11 3.0 also allows naming the curve by a PrintableString.
            Some(KeyType::EC_EDWARDS) if params == b"\x13\x0cedwards25519" => TokenKeyType::Ed25519,
            Some(KeyType::EC) => [EcCurve::P256, EcCurve::P384, EcCurve::P521]
                .into_iter()
                .map(TokenKeyType::Ecdsa)
                .find(|t| ec_params(*t) == params)
                .ok_or_else(|| {
                    key_error(format!(
                        "an EC key on a curve weightgate does not sign with (EC params {}); \
                         it signs with P-256, P-384 and P-521",
                        hex::encode(&params)
                    ))
                })?,
            _ => {
                return Err(key_error(format!(
                    "an Edwards key that is not Ed25519 (EC params {})",
                    hex::encode(&params)
                )));
            }
        };
        let public = self.public_key_of(key, key_type, id, label, &key_error)?;
        Ok((key, key_type, public))
    }

    /// The SubjectPublicKeyInfo of a private key: CKA_PUBLIC_KEY_INFO where the token keeps it
    /// on the private key (PKCS#11 3.0), else the public key object beside it (same CKA_ID,
    /// or the same label where the key has no id).
    fn public_key_of(
        &self,
        key: ObjectHandle,
        key_type: TokenKeyType,
        id: Option<Vec<u8>>,
        label: Option<Vec<u8>>,
        key_error: &dyn Fn(String) -> Pkcs11Error,
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let info = self
            .session
            .get_attributes(key, &[AttributeType::PublicKeyInfo])
            .unwrap_or_default();
        if let Some(Attribute::PublicKeyInfo(der)) = info.into_iter().next()
            && !der.is_empty()
        {
            return spki_checked(&der, key_type).map_err(key_error);
        }
        let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        match (id, label) {
            (Some(id), _) => template.push(Attribute::Id(id)),
            (None, Some(label)) => template.push(Attribute::Label(label)),
            (None, None) => {
                return Err(key_error(
                    "the private key has neither CKA_ID nor label to find its public key by".into(),
                ));
            }
        }
        let publics = self
            .session
            .find_objects(&template)
            .map_err(|e| self.error("C_FindObjects", e))?;
        let [public] = publics.as_slice() else {
            return Err(key_error(format!(
                "{} public key objects share the private key's CKA_ID (or label); one is needed to know the public key",
                publics.len()
            )));
        };
        let attributes = self
            .session
            .get_attributes(*public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(|e| self.error("C_GetAttributeValue", e))?;
        let (mut params, mut point) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let (Some(params), Some(point)) = (params, point) else {
            return Err(key_error(
                "its public key object has no CKA_EC_PARAMS or CKA_EC_POINT".into(),
            ));
        };
        if params != ec_params(key_type) && params != b"\x13\x0cedwards25519" {
            return Err(key_error(
                "its public key object is on another curve than the private key".into(),
            ));
        }
        spki_of_point(&point, key_type).map_err(key_error)
    }
}

/// SubjectPublicKeyInfo DER of a public point as CKA_EC_POINT holds it: a DER OCTET STRING
/// around the point (the standard), or the bare point (what some tokens return).
pub(crate) fn spki_of_point(point: &[u8], key_type: TokenKeyType) -> Result<Vec<u8>, String> {
    let wrapped = match point {
        [0x04, len, rest @ ..] if *len < 0x80 && usize::from(*len) == rest.len() => Some(rest),
        [0x04, 0x81, len, rest @ ..] if *len >= 0x80 && usize::from(*len) == rest.len() => {
            Some(rest)
        }
        _ => None,
    };
    // A bare point can look like a wrapped one by chance: the wrapped reading is tried first,
    // and whichever is a valid point of the key's type wins.
    let mut problem = String::new();
    for candidate in wrapped.into_iter().chain([point]) {
        match spki_of_bare_point(candidate, key_type) {
            Ok(spki) => return Ok(spki),
            Err(e) => problem = e,
        }
    }
    Err(problem)
}

fn spki_of_bare_point(point: &[u8], key_type: TokenKeyType) -> Result<Vec<u8>, String> {
    let invalid = |e: &dyn std::fmt::Display| match key_type {
        TokenKeyType::Ed25519 => format!("its Ed25519 public key is invalid: {e}"),
        TokenKeyType::Ecdsa(curve) => format!("its {} public point is invalid: {e}", curve.name()),
    };
    let spki = match key_type {
        TokenKeyType::Ed25519 => {
            let bytes: &[u8; 32] = point
                .try_into()
                .map_err(|_| format!("an Ed25519 public key of {} bytes, not 32", point.len()))?;
            ed25519_dalek::VerifyingKey::from_bytes(bytes)
                .map_err(|e| invalid(&e))?
                .to_public_key_der()
        }
        TokenKeyType::Ecdsa(EcCurve::P256) => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|e| invalid(&e))?
            .to_public_key_der(),
        TokenKeyType::Ecdsa(EcCurve::P384) => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|e| invalid(&e))?
            .to_public_key_der(),
        TokenKeyType::Ecdsa(EcCurve::P521) => p521::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|e| invalid(&e))?
            .to_public_key_der(),
    };
    spki.map(|d| d.as_bytes().to_vec())
        .map_err(|e| e.to_string())
}

/// A SubjectPublicKeyInfo the token gave, checked to be of the private key's type.
fn spki_checked(der: &[u8], key_type: TokenKeyType) -> Result<Vec<u8>, String> {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let matches = match key_type {
        TokenKeyType::Ed25519 => ed25519_dalek::VerifyingKey::from_public_key_der(der).is_ok(),
        TokenKeyType::Ecdsa(curve) => EcVerifyingKey::from_spki_der(der, "CKA_PUBLIC_KEY_INFO")
            .is_ok_and(|k| k.curve() == curve),
    };
    if matches {
        Ok(der.to_vec())
    } else {
        Err("its CKA_PUBLIC_KEY_INFO is not a public key of the private key's type".into())
    }
}

/// Reads a PIN from a `pin-source`: a `file:` URI (RFC 8089) or a path. One trailing line
/// ending is not part of the PIN.
pub(crate) fn read_pin_source(source: &str) -> Result<Vec<u8>, Pkcs11Error> {
    let problem = |problem: String| Pkcs11Error::PinSource {
        source_name: source.to_string(),
        problem,
    };
    let path = match source.strip_prefix("file:") {
        Some(rest) => {
            // file:/p, file:///p and file://localhost/p name the same local file.
            let rest = rest
                .strip_prefix("//localhost")
                .or_else(|| rest.strip_prefix("//"))
                .unwrap_or(rest);
            if !rest.starts_with('/') {
                return Err(problem(
                    "a file: URI names a local absolute path (file:/path or file:///path)".into(),
                ));
            }
            Path::new(rest)
        }
        None if source.contains(':') && !source.starts_with('/') && !source.starts_with('.') => {
            return Err(problem(
                "weightgate reads PINs from files: give a path or a file: URI".into(),
            ));
        }
        None => Path::new(source),
    };
    let file = std::fs::File::open(path).map_err(|e| problem(e.to_string()))?;
    let mut pin = Vec::new();
    file.take(MAX_PIN_FILE_LEN + 1)
        .read_to_end(&mut pin)
        .map_err(|e| problem(e.to_string()))?;
    if pin.len() as u64 > MAX_PIN_FILE_LEN {
        return Err(problem(format!(
            "longer than {MAX_PIN_FILE_LEN} bytes: not a PIN file"
        )));
    }
    if pin.ends_with(b"\n") {
        pin.pop();
        if pin.ends_with(b"\r") {
            pin.pop();
        }
    }
    if pin.is_empty() {
        return Err(problem("the file is empty".into()));
    }
    Ok(pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_source_is_a_file_uri_or_a_path_and_one_line_ending_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin");
        std::fs::write(&file, "12 34\r\n").unwrap();
        let path = file.to_str().unwrap();
        for source in [
            path.to_string(),
            format!("file:{path}"),
            format!("file://{path}"),
            format!("file://localhost{path}"),
        ] {
            assert_eq!(read_pin_source(&source).unwrap(), b"12 34", "{source}");
        }
        let err = |source: &str| read_pin_source(source).unwrap_err().to_string();
        assert!(err("file:relative").contains("local absolute path"));
        assert!(err("https://example.invalid/pin").contains("reads PINs from files"));
        assert!(err(&format!("{path}.missing")).contains("No such file"));
        std::fs::write(&file, "\n").unwrap();
        assert!(err(path).contains("empty"));
        std::fs::write(&file, vec![b'1'; 2000]).unwrap();
        assert!(err(path).contains("not a PIN file"));
    }

    #[test]
    fn a_public_point_is_read_wrapped_or_bare() {
        let ec = crate::signing::EcdsaFileSigner::generate(EcCurve::P256);
        let spki = crate::signing::Signer::public_key_der(&ec).to_vec();
        let public = EcVerifyingKey::from_spki_der(&spki, "test").unwrap();
        // The uncompressed point ends a P-256 SubjectPublicKeyInfo.
        let bare = spki[spki.len() - 65..].to_vec();
        let mut wrapped = vec![0x04, bare.len() as u8];
        wrapped.extend_from_slice(&bare);
        for point in [&bare, &wrapped] {
            assert_eq!(
                spki_of_point(point, TokenKeyType::Ecdsa(EcCurve::P256)).unwrap(),
                public.to_spki_der()
            );
        }
        assert!(
            spki_of_point(&bare, TokenKeyType::Ecdsa(EcCurve::P384))
                .unwrap_err()
                .contains("P-384 public point is invalid")
        );
        let ed = [9u8; 32];
        let mut wrapped = vec![0x04, 32];
        wrapped.extend_from_slice(&ed);
        assert_eq!(
            spki_of_point(&wrapped, TokenKeyType::Ed25519).unwrap(),
            spki_of_point(&ed, TokenKeyType::Ed25519).unwrap()
        );
        assert!(
            spki_of_point(&ed[..31], TokenKeyType::Ed25519)
                .unwrap_err()
                .contains("31 bytes")
        );
    }
}
