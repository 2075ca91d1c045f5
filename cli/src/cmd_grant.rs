//! `weightgate grant ATTESTATION --reference NUMBER --key ISSUER.key --out FILE`: an issuer
//! (a licensing authority) countersigns one reference of one model.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::Exit;
use crate::time_arg::{now, parse_time};
use weightgate_attest::io::{Replace, write_atomically};
use weightgate_attest::signing::{load_signing_key, sign_envelope};
use weightgate_schemas::{Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement};

#[derive(Args, Debug)]
pub struct GrantArgs {
    /// The lab's attestation naming the reference.
    pub attestation: PathBuf,
    /// The reference number to countersign.
    #[arg(long)]
    pub reference: String,
    /// The issuer's Ed25519 private key.
    #[arg(long)]
    pub key: PathBuf,
    /// Where to write the grant envelope.
    #[arg(long)]
    pub out: PathBuf,
    /// Time of the grant (default now).
    #[arg(long, value_parser = parse_time)]
    pub issued_at: Option<i64>,
}

pub fn run(args: GrantArgs) -> anyhow::Result<Exit> {
    let bytes = weightgate_attest::io::read_capped(
        &args.attestation,
        weightgate_schemas::MAX_ENVELOPE_LEN as u64,
    )
    .with_context(|| format!("{}: cannot read", args.attestation.display()))?;
    let env = Envelope::decode_strict(&bytes)
        .with_context(|| format!("{}: not a weightgate envelope", args.attestation.display()))?;
    let st = Statement::decode_strict(&env.payload)
        .with_context(|| format!("{}: payload", args.attestation.display()))?;
    let matches: Vec<_> = st
        .references
        .iter()
        .filter(|r| r.number == args.reference)
        .collect();
    let reference = match matches.as_slice() {
        [one] => (*one).clone(),
        [] => anyhow::bail!(
            "{}: no reference numbered `{}`",
            args.attestation.display(),
            args.reference
        ),
        _ => anyhow::bail!(
            "{}: several references numbered `{}`",
            args.attestation.display(),
            args.reference
        ),
    };
    let key = load_signing_key(&args.key)?;
    let grant = Grant {
        issued_at: args.issued_at.unwrap_or_else(now),
        reference,
        root_sha256: st.subject.root_sha256,
    };
    let envelope = sign_envelope(GRANT_PAYLOAD_TYPE, grant.encode(), &key);
    write_atomically(&args.out, &envelope.encode(), 0o644, Replace::Allowed)
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
