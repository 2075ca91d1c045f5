//! `weightgate grant ATTESTATION --reference NUMBER --key ISSUER.key --out FILE`: an issuer
//! (a licensing authority) countersigns one reference of one model.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::Exit;
use crate::signing_key::{TokenArgs, open_signer};
use crate::time_arg::{now, parse_time};
use weightgate_attest::io::{Replace, write_atomically};
use weightgate_attest::signing::{SigningPurpose, grant};
use weightgate_verifier::inputs::{InputKind, read_input};

#[derive(Args, Debug)]
pub struct GrantArgs {
    /// The lab's attestation naming the reference.
    pub attestation: PathBuf,
    /// The reference number to countersign (exactly one reference must carry it).
    #[arg(long, value_name = "NUMBER")]
    pub reference: String,
    /// The issuer's Ed25519 private key: a PKCS#8 PEM file or a `pkcs11:` URI (RFC 7512).
    #[arg(long)]
    pub key: PathBuf,
    /// Where to write the grant envelope (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Time of the grant (RFC 3339, a date or Unix seconds); default now.
    #[arg(long, value_parser = parse_time)]
    pub issued_at: Option<i64>,
    #[command(flatten)]
    pub token: TokenArgs,
}

pub fn run(args: GrantArgs) -> anyhow::Result<Exit> {
    let bytes = read_input(&args.attestation, InputKind::Attestation)?;
    let signer = open_signer(&args.key, SigningPurpose::Envelope, &args.token)?;
    let signed = grant(
        &bytes,
        &args.reference,
        args.issued_at.unwrap_or_else(now),
        &*signer,
    )
    .with_context(|| args.attestation.display().to_string())?;
    let (grant, st) = (&signed.grant, &signed.statement);
    write_atomically(
        &args.out,
        &signed.envelope.encode(),
        0o644,
        Replace::Allowed,
    )
    .with_context(|| format!("{}: cannot write", args.out.display()))?;
    println!(
        "granted {} {} from {} for {} (root sha256:{}) -> {}",
        grant.reference.kind.as_str(),
        grant.reference.number,
        grant.reference.authority,
        st.model.name,
        st.subject.root_sha256.to_hex(),
        args.out.display()
    );
    Ok(Exit::Ok)
}
