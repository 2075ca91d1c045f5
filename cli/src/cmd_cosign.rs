//! `weightgate cosign ENVELOPE --key KEY`: an auditor's further signature over the same payload.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::Exit;
use crate::signing_key::{TokenArgs, open_signer};
use weightgate_attest::io::{Replace, write_atomically};
use weightgate_attest::signing::{SigningPurpose, cosign};
use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement,
};
use weightgate_verifier::inputs::{InputKind, read_input};

#[derive(Args, Debug)]
pub struct CosignArgs {
    /// The envelope to sign (replaced whole, atomically).
    pub envelope: PathBuf,
    /// Ed25519 private key: a PKCS#8 PEM file (`weightgate keygen`) or a key in a PKCS#11
    /// token, `pkcs11:token=...;object=...` (RFC 7512).
    #[arg(long, env = "WEIGHTGATE_KEY", hide_env_values = true)]
    pub key: PathBuf,
    #[command(flatten)]
    pub token: TokenArgs,
}

pub fn run(args: CosignArgs) -> anyhow::Result<Exit> {
    let bytes = read_input(&args.envelope, InputKind::Envelope)?;
    let mut envelope = Envelope::decode_strict(&bytes)
        .with_context(|| format!("{}: not a weightgate envelope", args.envelope.display()))?;
    // A cosigner vouches for what it can read: refuse payloads that do not decode.
    match envelope.payload_type.as_str() {
        ATTESTATION_PAYLOAD_TYPE => {
            Statement::decode_strict(&envelope.payload)
                .with_context(|| format!("{}: payload", args.envelope.display()))?;
        }
        GRANT_PAYLOAD_TYPE => {
            Grant::decode_strict(&envelope.payload)
                .with_context(|| format!("{}: payload", args.envelope.display()))?;
        }
        other => anyhow::bail!(
            "{}: unknown payload type `{other}`",
            args.envelope.display()
        ),
    }
    let signer = open_signer(&args.key, SigningPurpose::Envelope, &args.token)?;
    let id = cosign(&mut envelope, &*signer)?;
    write_atomically(&args.envelope, &envelope.encode(), 0o644, Replace::Allowed)
        .with_context(|| format!("{}: cannot write", args.envelope.display()))?;
    println!(
        "cosigned {} with key {id} ({} signatures)",
        args.envelope.display(),
        envelope.signatures.len()
    );
    Ok(Exit::Ok)
}
