//! `weightgate export --format cyclonedx|intoto ENVELOPE [--out PATH]`: the attestation in
//! another ecosystem's format. `export-intoto` remains as the old name of `--format intoto`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use sha2::Digest as _;

use crate::Exit;
use crate::cmd_export_intoto::{ExportIntotoArgs, read_attestation, write_output};
use crate::export_check::ExportCheck;
use weightgate_attest::reading::{HfDownload, hf_download_layout};
use weightgate_schemas::cyclonedx::{BomSubject, cyclonedx_bom};

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
    /// cyclonedx only: the Hugging Face repository and commit the model is published as, for
    /// the package URL `pkg:huggingface/ORG/NAME@COMMIT` (found by itself when the envelope lies
    /// in a Hugging Face cache snapshot).
    #[arg(long, value_name = "ORG/NAME@COMMIT")]
    pub hf: Option<String>,
    #[command(flatten)]
    pub check: ExportCheck,
}

/// The package URL's repository and commit: `--hf`, else the cache snapshot holding the
/// envelope.
fn hf_release(args: &ExportArgs) -> anyhow::Result<Option<(String, String)>> {
    if let Some(spec) = &args.hf {
        let (repo, commit) = spec
            .split_once('@')
            .filter(|(r, c)| {
                r.split('/').count() == 2
                    && !r.split('/').any(str::is_empty)
                    && c.len() == 40
                    && c.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--hf {spec}: give ORG/NAME@COMMIT with the 40-hex commit id (a package URL names an immutable revision)"
                )
            })?;
        return Ok(Some((repo.to_string(), commit.to_string())));
    }
    let folder = args.envelope.parent().unwrap_or(Path::new("."));
    Ok(match hf_download_layout(folder) {
        Some(HfDownload::CacheSnapshot { repo_id, commit }) => Some((repo_id, commit)),
        _ => None,
    })
}

pub fn run(args: ExportArgs) -> anyhow::Result<Exit> {
    match args.format {
        ExportFormat::Intoto => {
            if args.hf.is_some() {
                anyhow::bail!("--hf names the package URL of the CycloneDX document only");
            }
            crate::cmd_export_intoto::run(ExportIntotoArgs {
                envelope: args.envelope,
                key: args.key,
                out: args.out,
                check: args.check,
            })
        }
        ExportFormat::Cyclonedx => {
            if args.key.is_some() {
                anyhow::bail!(
                    "--key signs the in-toto DSSE envelope only; the CycloneDX document names the signed attestation by its SHA-256 instead"
                );
            }
            let (bytes, envelope, statement) = read_attestation(&args.envelope)?;
            let authenticated = args.check.authenticate(&args.envelope, &bytes)?;
            let release = hf_release(&args)?;
            let file_name = args
                .envelope
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "weightgate.att".into());
            let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
            let subject = BomSubject {
                envelope_file: &file_name,
                envelope_sha256: &digest,
                authenticated,
                huggingface: release.as_ref().map(|(r, c)| (r.as_str(), c.as_str())),
            };
            let bom = cyclonedx_bom(&envelope, &statement, &subject);
            let mut text = serde_json::to_string_pretty(&bom)?;
            text.push('\n');
            write_output(args.out.as_deref(), &text)?;
            Ok(Exit::Ok)
        }
    }
}
