//! `weightgate export-intoto ENVELOPE [--key KEY] [--out PATH]`: the attestation as an in-toto
//! Statement v1 in a DSSE JSON envelope, one line (fit for appending to `claims.jsonl`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::Exit;
use weightgate_attest::io::{Replace, write_atomically};
use weightgate_attest::signing::{SigningPurpose, load_signer, sign_envelope};
use weightgate_schemas::intoto::intoto_statement;
use weightgate_schemas::json_view::envelope_to_json;
use weightgate_schemas::oms::IN_TOTO_PAYLOAD_TYPE;
use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement};
use weightgate_verifier::inputs::{InputKind, read_input};

#[derive(Args, Debug, Clone)]
pub struct ExportIntotoArgs {
    /// The weightgate attestation envelope.
    pub envelope: PathBuf,
    /// Sign the DSSE envelope with this Ed25519 key (PKCS#8 PEM); without it the DSSE envelope carries no
    /// signature and trust rests on the original envelope inside the predicate.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Write here (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub check: crate::export_check::ExportCheck,
}

/// The envelope file's bytes, the envelope and its statement, decoded (the signatures are
/// checked by [`crate::export_check::ExportCheck::authenticate`]).
pub fn read_attestation(path: &Path) -> anyhow::Result<(Vec<u8>, Envelope, Statement)> {
    let name = path.display().to_string();
    let bytes = read_input(path, InputKind::Attestation)?;
    let envelope = Envelope::decode_strict(&bytes)
        .with_context(|| format!("{name}: not a weightgate envelope"))?;
    if envelope.payload_type != ATTESTATION_PAYLOAD_TYPE {
        anyhow::bail!(
            "{name}: payload type `{}` is not an attestation",
            envelope.payload_type
        );
    }
    let statement =
        Statement::decode_strict(&envelope.payload).with_context(|| format!("{name}: payload"))?;
    Ok((bytes, envelope, statement))
}

/// Writes `text` atomically to `out`, or to standard output.
pub fn write_output(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => write_atomically(p, text.as_bytes(), 0o644, Replace::Allowed)
            .with_context(|| format!("{}: cannot write", p.display()))?,
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("cannot write to standard output")?
        }
    }
    Ok(())
}

pub fn run(args: ExportIntotoArgs) -> anyhow::Result<Exit> {
    let (bytes, envelope, statement) = read_attestation(&args.envelope)?;
    args.check.authenticate(&args.envelope, &bytes)?;
    let payload = intoto_statement(&envelope, &statement)
        .to_string()
        .into_bytes();
    let dsse = match &args.key {
        Some(k) => sign_envelope(
            IN_TOTO_PAYLOAD_TYPE,
            payload,
            &*load_signer(k, SigningPurpose::Envelope)?,
        )?,
        None => {
            crate::terminal::say_err!(
                "weightgate: note: the DSSE envelope written carries no signature (pass --key to sign it); trust rests on the signed attestation inside its predicate"
            );
            Envelope {
                payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
                payload,
                signatures: Vec::new(),
            }
        }
    };
    let mut line = envelope_to_json(&dsse).to_string();
    line.push('\n');
    write_output(args.out.as_deref(), &line)?;
    Ok(Exit::Ok)
}
