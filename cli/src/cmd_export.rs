//! `weightgate export --format cyclonedx|intoto ENVELOPE [--out PATH]`: the attestation in
//! another ecosystem's format. `export-intoto` remains as the old name of `--format intoto`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use sha2::Digest as _;

use crate::Exit;
use crate::cmd_export_intoto::{ExportIntotoArgs, read_attestation, write_output};
use weightgate_schemas::cyclonedx::cyclonedx_bom;

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ExportFormat {
    /// CycloneDX 1.6 ML-BOM (JSON): model component, file hashes, entity, compute, pedigree.
    Cyclonedx,
    /// in-toto Statement v1 in a DSSE JSON envelope, one line (for claims.jsonl).
    Intoto,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The format to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// The weightgate attestation envelope.
    pub envelope: PathBuf,
    /// intoto only: sign the DSSE envelope with this Ed25519 key.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Write here (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<Exit> {
    match args.format {
        ExportFormat::Intoto => crate::cmd_export_intoto::run(ExportIntotoArgs {
            envelope: args.envelope,
            key: args.key,
            out: args.out,
        }),
        ExportFormat::Cyclonedx => {
            if args.key.is_some() {
                anyhow::bail!(
                    "--key signs the in-toto DSSE envelope only; the CycloneDX document names the signed attestation by its SHA-256 instead"
                );
            }
            let (bytes, envelope, statement) = read_attestation(&args.envelope)?;
            let file_name = args
                .envelope
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "weightgate.att".into());
            let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
            let bom = cyclonedx_bom(&envelope, &statement, &file_name, &digest);
            let mut text = serde_json::to_string_pretty(&bom)?;
            text.push('\n');
            write_output(args.out.as_deref(), &text)?;
            Ok(Exit::Ok)
        }
    }
}
