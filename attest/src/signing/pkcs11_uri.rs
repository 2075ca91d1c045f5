//! PKCS#11 URIs (RFC 7512): `pkcs11:token=Lab%20HSM;object=release?module-path=/usr/lib/x.so`.
//!
//! Parsed strictly: every character outside the RFC's sets must be percent-encoded, a path
//! attribute appears at most once, and an attribute weightgate does not know is refused rather
//! than ignored (ignoring one could select another key than the one meant). A PIN in the URI
//! (`pin-value`) is refused: command lines and URIs end up in shell histories and process lists.

use std::fmt;
use std::path::PathBuf;

/// What a `pkcs11:` URI selects: a token (by its own and its slot's and library's attributes),
/// an object in it, and where to find the module and the PIN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label (`token`).
    pub token: Option<String>,
    /// Token manufacturer (`manufacturer`).
    pub manufacturer: Option<String>,
    /// Token model (`model`).
    pub model: Option<String>,
    /// Token serial number (`serial`).
    pub serial: Option<String>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    /// Slot id (`slot-id`, decimal).
    pub slot_id: Option<u64>,
    pub library_manufacturer: Option<String>,
    pub library_description: Option<String>,
    /// Cryptoki library version (`library-version`): major, and minor if given.
    pub library_version: Option<(u8, Option<u8>)>,
    /// Object label (`object`).
    pub object: Option<String>,
    /// Object id (`id`, CKA_ID): bytes, percent-encoded in the URI.
    pub id: Option<Vec<u8>>,
    /// Object class (`type`).
    pub object_type: Option<ObjectType>,
    /// The module to load (`module-path`).
    pub module_path: Option<PathBuf>,
    /// The module's name without `lib` and extension (`module-name`), found on the dynamic
    /// loader's search path.
    pub module_name: Option<String>,
    /// Where the PIN is (`pin-source`): a `file:` URI or a path.
    pub pin_source: Option<String>,
}

/// The `type` attribute's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Public,
    Private,
    Cert,
    SecretKey,
    Data,
}

impl ObjectType {
    fn name(self) -> &'static str {
        match self {
            ObjectType::Public => "public",
            ObjectType::Private => "private",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// Why a `pkcs11:` URI is refused. Never quotes a `pin-value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PKCS#11 URI (RFC 7512): {0}")]
pub struct Pkcs11UriError(String);

impl Pkcs11UriError {
    pub(crate) fn new(problem: impl Into<String>) -> Self {
        Pkcs11UriError(problem.into())
    }
}

fn invalid(problem: impl Into<String>) -> Pkcs11UriError {
    Pkcs11UriError::new(problem)
}

const PATH_ATTRIBUTES: &[&str] = &[
    "token",
    "manufacturer",
    "model",
    "serial",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
    "library-manufacturer",
    "library-description",
    "library-version",
    "object",
    "id",
    "type",
];

/// RFC 7512 `pk11-res-avail`, allowed unencoded in path and query values alike.
fn reserved_available(c: u8) -> bool {
    b":[]@!$'()*+,=".contains(&c)
}

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~".contains(&c)
}

/// Decodes one attribute value. `extra` are the characters its component also allows
/// unencoded (`&` in the path; `/`, `?`, `|` in the query).
fn percent_decode(attribute: &str, value: &str, extra: &[u8]) -> Result<Vec<u8>, Pkcs11UriError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| {
                    invalid(format!(
                        "`{attribute}`: `%` must be followed by two hex digits"
                    ))
                })?;
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
        } else if unreserved(c) || reserved_available(c) || extra.contains(&c) {
            out.push(c);
            i += 1;
        } else {
            let shown = value[i..].chars().next().unwrap_or('?');
            return Err(invalid(format!(
                "`{attribute}`: the character {shown:?} must be percent-encoded (as %{})",
                shown
                    .to_string()
                    .bytes()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join("%")
            )));
        }
    }
    Ok(out)
}

fn text(attribute: &str, bytes: Vec<u8>) -> Result<String, Pkcs11UriError> {
    String::from_utf8(bytes)
        .map_err(|_| invalid(format!("`{attribute}` is not UTF-8 once percent-decoded")))
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI.
    pub fn parse(uri: &str) -> Result<Self, Pkcs11UriError> {
        let rest = uri
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
            .map(|_| &uri[7..])
            .ok_or_else(|| invalid("does not start with `pkcs11:`"))?;
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        if rest.contains('#') {
            return Err(invalid("a PKCS#11 URI has no fragment (`#`)"));
        }
        let mut parsed = Pkcs11Uri::default();
        let mut seen = Vec::new();
        for attribute in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| invalid(format!("path attribute `{attribute}` has no `=`")))?;
            if !PATH_ATTRIBUTES.contains(&name) {
                return Err(invalid(format!(
                    "unknown path attribute `{name}` (weightgate knows {})",
                    PATH_ATTRIBUTES.join(", ")
                )));
            }
            if seen.contains(&name) {
                return Err(invalid(format!("path attribute `{name}` appears twice")));
            }
            seen.push(name);
            let bytes = percent_decode(name, value, b"&")?;
            parsed.set_path_attribute(name, bytes)?;
        }
        let mut seen = Vec::new();
        for attribute in query.into_iter().flat_map(|q| q.split('&')) {
            if attribute.is_empty() {
                continue;
            }
            let (name, value) = attribute.split_once('=').unwrap_or((attribute, ""));
            if name == "pin-value" {
                return Err(invalid(
                    "`pin-value` puts the PIN on the command line; name a file with `pin-source`, \
                     --pin-source, or set WEIGHTGATE_PKCS11_PIN",
                ));
            }
            if !["module-path", "module-name", "pin-source"].contains(&name) {
                return Err(invalid(format!(
                    "unknown query attribute `{name}` (weightgate knows module-path, module-name, pin-source)"
                )));
            }
            if seen.contains(&name) {
                return Err(invalid(format!("query attribute `{name}` appears twice")));
            }
            seen.push(name);
            let value = text(name, percent_decode(name, value, b"/?|")?)?;
            if value.is_empty() {
                return Err(invalid(format!("query attribute `{name}` is empty")));
            }
            match name {
                "module-path" => {
                    let path = PathBuf::from(value);
                    if !path.is_absolute() {
                        return Err(invalid("`module-path` must be an absolute path"));
                    }
                    parsed.module_path = Some(path);
                }
                "module-name" => parsed.module_name = Some(value),
                _ => parsed.pin_source = Some(value),
            }
        }
        if parsed.module_path.is_some() && parsed.module_name.is_some() {
            return Err(invalid(
                "give `module-path` or `module-name`, not both (they could name two modules)",
            ));
        }
        Ok(parsed)
    }

    fn set_path_attribute(&mut self, name: &str, bytes: Vec<u8>) -> Result<(), Pkcs11UriError> {
        match name {
            "id" => self.id = Some(bytes),
            "slot-id" => {
                let value = text(name, bytes)?;
                self.slot_id = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| invalid(format!("`slot-id` {value:?} is not a number")))?,
                );
            }
            "library-version" => {
                let value = text(name, bytes)?;
                let number = |s: &str| {
                    s.parse::<u8>()
                        .ok()
                        .filter(|_| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                };
                let version = match value.split_once('.') {
                    None => number(&value).map(|major| (major, None)),
                    Some((major, minor)) => number(major).zip(number(minor).map(Some)),
                };
                self.library_version = Some(version.ok_or_else(|| {
                    invalid(format!(
                        "`library-version` {value:?} is not MAJOR or MAJOR.MINOR"
                    ))
                })?);
            }
            "type" => {
                let value = text(name, bytes)?;
                self.object_type = Some(match value.as_str() {
                    "public" => ObjectType::Public,
                    "private" => ObjectType::Private,
                    "cert" => ObjectType::Cert,
                    "secret-key" => ObjectType::SecretKey,
                    "data" => ObjectType::Data,
                    other => {
                        return Err(invalid(format!(
                            "`type` {other:?} is not public, private, cert, secret-key or data"
                        )));
                    }
                });
            }
            _ => {
                let value = Some(text(name, bytes)?);
                match name {
                    "token" => self.token = value,
                    "manufacturer" => self.manufacturer = value,
                    "model" => self.model = value,
                    "serial" => self.serial = value,
                    "slot-description" => self.slot_description = value,
                    "slot-manufacturer" => self.slot_manufacturer = value,
                    "library-manufacturer" => self.library_manufacturer = value,
                    "library-description" => self.library_description = value,
                    _ => self.object = value,
                }
            }
        }
        Ok(())
    }

    /// The attributes that select a token, as `name=value` pairs (values unencoded).
    pub(crate) fn token_selectors(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut text = |name, value: &Option<String>| {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        };
        text("library-manufacturer", &self.library_manufacturer);
        text("library-description", &self.library_description);
        text("slot-description", &self.slot_description);
        text("slot-manufacturer", &self.slot_manufacturer);
        text("token", &self.token);
        text("manufacturer", &self.manufacturer);
        text("model", &self.model);
        text("serial", &self.serial);
        if let Some((major, minor)) = self.library_version {
            let v = match minor {
                Some(minor) => format!("{major}.{minor}"),
                None => major.to_string(),
            };
            out.insert(0, ("library-version", v));
        }
        if let Some(id) = self.slot_id {
            out.push(("slot-id", id.to_string()));
        }
        out
    }

    /// The token part of the URI, for messages: `token="Lab HSM"`, or `any token`.
    pub(crate) fn token_description(&self) -> String {
        let selectors = self.token_selectors();
        if selectors.is_empty() {
            return "any token".into();
        }
        selectors
            .iter()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The object part of the URI, for messages: `object="release" id=01`.
    pub(crate) fn object_description(&self) -> String {
        let mut parts = Vec::new();
        if let Some(label) = &self.object {
            parts.push(format!("object={label:?}"));
        }
        if let Some(id) = &self.id {
            parts.push(format!("id={}", hex::encode(id)));
        }
        if let Some(t) = self.object_type {
            parts.push(format!("type={}", t.name()));
        }
        if parts.is_empty() {
            return "no object attribute".into();
        }
        parts.join(" ")
    }
}

/// The path attributes, percent-encoded where RFC 7512 requires: a URI that names the same
/// token and object (module and PIN source left out).
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn encode(bytes: &[u8]) -> String {
            bytes
                .iter()
                .map(|&b| {
                    if unreserved(b) || (reserved_available(b) && b != b'=') {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }
        let mut parts: Vec<String> = self
            .token_selectors()
            .into_iter()
            .map(|(name, value)| format!("{name}={}", encode(value.as_bytes())))
            .collect();
        if let Some(label) = &self.object {
            parts.push(format!("object={}", encode(label.as_bytes())));
        }
        if let Some(id) = &self.id {
            let id: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            parts.push(format!("id={id}"));
        }
        if let Some(t) = self.object_type {
            parts.push(format!("type={}", t.name()));
        }
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_examples() {
        // RFC 7512 section 3.
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(uri.model.as_deref(), Some("1.0"));
        assert_eq!(uri.object.as_deref(), Some("my-certificate"));
        assert_eq!(uri.object_type, Some(ObjectType::Cert));
        assert_eq!(
            uri.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(uri.serial.as_deref(), Some(""));

        let uri = Pkcs11Uri::parse(
            "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11&pin-source=file:/etc/token_pin",
        )
        .unwrap();
        assert_eq!(uri.module_name.as_deref(), Some("mypkcs11"));
        assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/token_pin"));
        assert_eq!(uri.object_type, Some(ObjectType::Private));

        let uri = Pkcs11Uri::parse(
            "pkcs11:slot-description=Sun%20Metaslot;library-version=1.14;library-manufacturer=Snake%20Oil,%20Inc.;slot-id=2?module-path=/usr/lib/libpkcs11.so",
        )
        .unwrap();
        assert_eq!(uri.library_version, Some((1, Some(14))));
        assert_eq!(uri.slot_id, Some(2));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/libpkcs11.so"))
        );
        assert_eq!(Pkcs11Uri::parse("pkcs11:").unwrap(), Pkcs11Uri::default());
        assert_eq!(
            Pkcs11Uri::parse("PKCS11:token=a&b")
                .unwrap()
                .token
                .as_deref(),
            Some("a&b")
        );
    }

    #[test]
    fn display_round_trips_the_path() {
        for text in [
            "pkcs11:token=Lab%20HSM;object=release%3Bkey;id=%01%FF",
            "pkcs11:library-version=3;slot-id=7;type=private",
        ] {
            let uri = Pkcs11Uri::parse(text).unwrap();
            assert_eq!(Pkcs11Uri::parse(&uri.to_string()).unwrap(), uri);
        }
    }

    #[test]
    fn refuses_what_it_cannot_use_exactly() {
        let err = |text: &str| Pkcs11Uri::parse(text).unwrap_err().to_string();
        assert!(err("pkcs:token=a").contains("does not start with `pkcs11:`"));
        assert!(err("pkcs11:token=a;token=b").contains("`token` appears twice"));
        assert!(err("pkcs11:tokn=a").contains("unknown path attribute `tokn`"));
        assert!(err("pkcs11:x-vendor=a").contains("unknown path attribute `x-vendor`"));
        assert!(err("pkcs11:token=a%2").contains("two hex digits"));
        assert!(err("pkcs11:token=a%zz").contains("two hex digits"));
        assert!(err("pkcs11:token=Lab HSM").contains("' ' must be percent-encoded (as %20)"));
        assert!(err("pkcs11:object=a/b").contains("'/' must be percent-encoded"));
        assert!(err("pkcs11:token=%FF").contains("not UTF-8"));
        assert!(err("pkcs11:type=secret").contains("`type` \"secret\""));
        assert!(err("pkcs11:slot-id=-1").contains("not a number"));
        assert!(err("pkcs11:library-version=1.x").contains("MAJOR.MINOR"));
        assert!(err("pkcs11:token=a#frag").contains("fragment"));
        assert!(err("pkcs11:token?module-path=/m.so").contains("has no `=`"));
        assert!(err("pkcs11:?module-path=lib.so").contains("absolute"));
        assert!(err("pkcs11:?module-path=/a.so&module-path=/b.so").contains("twice"));
        assert!(err("pkcs11:?module-path=/a.so&module-name=b").contains("not both"));
        assert!(err("pkcs11:?foo=1").contains("unknown query attribute `foo`"));
        // The PIN is never echoed.
        let message = err("pkcs11:token=a?pin-value=123456");
        assert!(message.contains("`pin-value` puts the PIN on the command line"));
        assert!(!message.contains("123456"), "{message}");
    }
}
