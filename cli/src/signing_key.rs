//! `--key`: a private key file (PEM) or a key in a PKCS#11 token (`pkcs11:` URI, RFC 7512),
//! opened as a signer, with the token options every signing command shares.

use std::path::{Path, PathBuf};

use clap::Args;
use weightgate_attest::signing::{Signer, SigningPurpose, load_signer};

/// How to reach keys in PKCS#11 tokens (for `--key pkcs11:...`).
#[derive(Args, Debug, Clone, Default)]
pub struct TokenArgs {
    /// The PKCS#11 module (shared library) for `pkcs11:` keys whose URI has no `module-path`.
    #[arg(long, value_name = "PATH", env = "WEIGHTGATE_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// Where the token's PIN is, for `pkcs11:` keys whose URI has no `pin-source`: a file
    /// (path or `file:` URI; one trailing newline is dropped). Else the PIN is read from
    /// WEIGHTGATE_PKCS11_PIN.
    #[arg(long, value_name = "FILE", env = "WEIGHTGATE_PKCS11_PIN_SOURCE")]
    pub pin_source: Option<String>,
}

/// The `pkcs11:` URI a `--key` value is, if it is one.
pub fn token_uri(key: &Path) -> Option<&str> {
    key.to_str().filter(|k| {
        k.get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
    })
}

/// Opens `key` as a signer for `purpose`: a `pkcs11:` URI through the token, anything else as
/// a key file.
pub fn open_signer(
    key: &Path,
    purpose: SigningPurpose,
    token: &TokenArgs,
) -> anyhow::Result<Box<dyn Signer>> {
    match token_uri(key) {
        Some(uri) => token_signer(uri, purpose, token),
        None => Ok(load_signer(key, purpose)?),
    }
}

#[cfg(feature = "pkcs11")]
pub use with_tokens::*;

#[cfg(feature = "pkcs11")]
mod with_tokens {
    use super::*;
    use weightgate_attest::signing::{Pkcs11Options, Pkcs11Signer, Pkcs11Uri};

    /// The environment variable that may hold a token's PIN: never a flag, whose value every
    /// user of the machine can read in the process list.
    pub const PIN_VARIABLE: &str = "WEIGHTGATE_PKCS11_PIN";

    pub fn options(token: &TokenArgs) -> Pkcs11Options {
        use std::os::unix::ffi::OsStringExt as _;
        Pkcs11Options {
            module: token.pkcs11_module.clone(),
            pin_source: token.pin_source.clone(),
            pin: std::env::var_os(PIN_VARIABLE).map(|pin| pin.into_vec()),
        }
    }

    pub(super) fn token_signer(
        uri: &str,
        purpose: SigningPurpose,
        token: &TokenArgs,
    ) -> anyhow::Result<Box<dyn Signer>> {
        let uri = Pkcs11Uri::parse(uri)?;
        Ok(Box::new(Pkcs11Signer::open(
            &uri,
            &options(token),
            purpose,
        )?))
    }
}

#[cfg(not(feature = "pkcs11"))]
fn token_signer(
    _uri: &str,
    _purpose: SigningPurpose,
    _token: &TokenArgs,
) -> anyhow::Result<Box<dyn Signer>> {
    anyhow::bail!("{NO_PKCS11}")
}

/// What a build without the `pkcs11` feature says to a `pkcs11:` key.
#[cfg(not(feature = "pkcs11"))]
pub const NO_PKCS11: &str =
    "this weightgate was built without PKCS#11 support (cargo feature `pkcs11`)";
