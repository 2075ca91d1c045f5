//! `weightgate keygen --out NAME [--type ed25519|p256|p384|p521]`: a new signing key in key
//! files; `weightgate keygen --pkcs11 URI`: a new key pair in a PKCS#11 token.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::Exit;
use crate::signing_key::TokenArgs;
use weightgate_attest::keys::EcCurve;
use weightgate_attest::signing::{EcdsaFileSigner, Ed25519FileSigner};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// Ed25519: signs weightgate attestations, grants and cosignatures.
    Ed25519,
    /// ECDSA P-256: signs OpenSSF model-signing bundles (`attest --oms-key`).
    P256,
    /// ECDSA P-384, for `attest --oms-key`.
    P384,
    /// ECDSA P-521, for `attest --oms-key`.
    P521,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Writes NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SPKI PEM); never overwrites.
    #[arg(long, value_name = "NAME", required_unless_present = "pkcs11")]
    pub out: Option<PathBuf>,
    /// Key type.
    #[arg(long = "type", value_enum, default_value_t = KeyType::Ed25519)]
    pub key_type: KeyType,
    /// Create the key pair in a PKCS#11 token instead, labelled with the URI's `object` (and
    /// its `id` as CKA_ID, else a random one); prints the public key (SPKI PEM, for `--trust`).
    /// Never adds a key beside an object of the same label or id.
    #[arg(long, value_name = "URI", conflicts_with = "out")]
    pub pkcs11: Option<String>,
    #[command(flatten)]
    pub token: TokenArgs,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<Exit> {
    if let Some(uri) = &args.pkcs11 {
        return in_token(uri, args.key_type, &args.token);
    }
    let out = args.out.expect("clap requires --out without --pkcs11");
    let curve = match args.key_type {
        KeyType::Ed25519 => {
            let id = Ed25519FileSigner::generate().write_key_pair(&out)?;
            println!("{id}");
            eprintln!(
                "wrote {0}.key (keep it secret) and {0}.pub; key id {id}",
                out.display()
            );
            return Ok(Exit::Ok);
        }
        KeyType::P256 => EcCurve::P256,
        KeyType::P384 => EcCurve::P384,
        KeyType::P521 => EcCurve::P521,
    };
    let hint = EcdsaFileSigner::generate(curve).write_key_pair(&out)?;
    println!("{hint}");
    eprintln!(
        "wrote {0}.key (keep it secret) and {0}.pub: ECDSA {1} for OpenSSF model signing; key hint {hint}",
        out.display(),
        curve.name()
    );
    Ok(Exit::Ok)
}

#[cfg(feature = "pkcs11")]
fn in_token(uri: &str, key_type: KeyType, token: &TokenArgs) -> anyhow::Result<Exit> {
    use weightgate_attest::signing::{Pkcs11Uri, TokenKeyType, generate_token_key};
    let uri = Pkcs11Uri::parse(uri)?;
    let key_type = match key_type {
        KeyType::Ed25519 => TokenKeyType::Ed25519,
        KeyType::P256 => TokenKeyType::Ecdsa(EcCurve::P256),
        KeyType::P384 => TokenKeyType::Ecdsa(EcCurve::P384),
        KeyType::P521 => TokenKeyType::Ecdsa(EcCurve::P521),
    };
    let made = generate_token_key(&uri, &crate::signing_key::options(token), key_type)?;
    print!("{}", made.public_pem);
    let name = match key_type {
        TokenKeyType::Ed25519 => "key id",
        TokenKeyType::Ecdsa(_) => "key hint",
    };
    eprintln!(
        "created the key pair {} in the token; sign with --key '{}'; {name} {}",
        made.uri, made.uri, made.key_name
    );
    Ok(Exit::Ok)
}

#[cfg(not(feature = "pkcs11"))]
fn in_token(_uri: &str, _key_type: KeyType, _token: &TokenArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("{}", crate::signing_key::NO_PKCS11)
}
