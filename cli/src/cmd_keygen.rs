//! `weightgate keygen --out NAME [--type ed25519|p256|p384|p521]`: a new signing key.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::Exit;
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
    #[arg(long, value_name = "NAME")]
    pub out: PathBuf,
    /// Key type.
    #[arg(long = "type", value_enum, default_value_t = KeyType::Ed25519)]
    pub key_type: KeyType,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<Exit> {
    let curve = match args.key_type {
        KeyType::Ed25519 => {
            let id = Ed25519FileSigner::generate().write_key_pair(&args.out)?;
            println!("{id}");
            eprintln!(
                "wrote {0}.key (keep it secret) and {0}.pub; key id {id}",
                args.out.display()
            );
            return Ok(Exit::Ok);
        }
        KeyType::P256 => EcCurve::P256,
        KeyType::P384 => EcCurve::P384,
        KeyType::P521 => EcCurve::P521,
    };
    let hint = EcdsaFileSigner::generate(curve).write_key_pair(&args.out)?;
    println!("{hint}");
    eprintln!(
        "wrote {0}.key (keep it secret) and {0}.pub: ECDSA {1} for OpenSSF model signing; key hint {hint}",
        args.out.display(),
        curve.name()
    );
    Ok(Exit::Ok)
}
