//! `weightgate verify CHECKPOINT`: allowed (0), denied (1) or input error (2).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::Exit;
use crate::checkpoint_args::{CheckpointArgs, HashReadArg};
use crate::progress::Bar;
use crate::run_args::RunArgs;
use crate::terminal::say;
use crate::time_arg::{now, parse_time};
use weightgate_attest::reading::{
    HfDownload, default_attestation_path, discover, find_snapshot, hf_download_layout,
    hub_cache_dir, refuse_hf_cache_repository, relative_inside,
};
use weightgate_schemas::country::normalise_destination;
use weightgate_verifier::inputs::{InputKind, read_attestation, read_grant, read_input};
use weightgate_verifier::model_sig::{OmsOptions, OmsRequest};
use weightgate_verifier::policy::{Context, Policy};
use weightgate_verifier::stages::{SubjectScope, SubjectSource};
use weightgate_verifier::trust::TrustedKey;
use weightgate_verifier::{Decision, VerifyRequest, render, verify};

#[derive(Args, Debug)]
#[command(group(
    // One error naming both ways to say whom to trust.
    clap::ArgGroup::new("trust_source").required(true).args(["policy", "trust"])
))]
pub struct VerifyArgs {
    /// Checkpoint folder or single file (or its attestation, `DIR/weightgate.att` or
    /// `FILE.att`); a Hugging Face cache snapshot (`models--ORG--NAME/snapshots/REV`) or
    /// `hf download --local-dir` folder as it is.
    #[arg(required_unless_present = "hf", conflicts_with = "hf")]
    pub path: Option<PathBuf>,
    /// The snapshot of this model in the local Hugging Face cache (HF_HUB_CACHE, else
    /// HF_HOME/hub, else ~/.cache/huggingface/hub); REV is a branch, tag or commit id (default main).
    #[arg(long, value_name = "ORG/NAME[@REV]")]
    pub hf: Option<String>,
    /// Follow symbolic links that stay inside the checkpoint (a Hugging Face cache snapshot's
    /// links into its repository's blobs/ are followed without it).
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Leave this relative path (file or folder) out; repeatable.
    #[arg(long = "ignore", value_name = "PATH")]
    pub ignore: Vec<String>,
    #[command(flatten)]
    pub read: HashReadArg,
    /// The envelope (default CHECKPOINT/weightgate.att, or FILE.att beside a single file).
    #[arg(long)]
    pub attestation: Option<PathBuf>,
    /// Policy file (TOML; see docs/policy.md).
    #[arg(long, conflicts_with = "trust")]
    pub policy: Option<PathBuf>,
    /// Trust this Ed25519 public key (SPKI PEM) with the default regimes; repeatable.
    #[arg(long, value_name = "KEY.pub")]
    pub trust: Vec<PathBuf>,
    /// Where the weights go (ISO 3166-1 alpha-2), for destination-bound licences.
    #[arg(long, value_name = "CC")]
    pub destination: Option<String>,
    /// Judge as of this time (RFC 3339, a date or Unix seconds) instead of now.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<i64>,
    /// Recompute SHA-256 as well as BLAKE3 (and the root from the bytes).
    #[arg(long)]
    pub full: bool,
    /// A Hugging Face download (cache snapshot or --local-dir folder) must hold every attested
    /// file; by default files never downloaded are listed, and only the weights a model loads
    /// must be there.
    #[arg(long)]
    pub complete: bool,
    /// Check provenance only: signatures, revocation, the bytes, model.sig, compute
    /// consistency and lineage; no regime is judged.
    #[arg(long)]
    pub provenance_only: bool,
    /// A licence countersigned by its issuer (`weightgate grant`); repeatable.
    #[arg(long, value_name = "FILE")]
    pub grant: Vec<PathBuf>,
    /// The base model's envelope, for a derived model.
    #[arg(long, value_name = "FILE")]
    pub base_attestation: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub oms: OmsArgs,
}

/// Checking an OpenSSF model-signing bundle beside the attestation.
#[derive(Args, Debug, Default)]
pub struct OmsArgs {
    /// Check model.sig too, trusting this ECDSA P-256/P-384/P-521 public key (SPKI PEM)
    /// besides the policy's [[model_signing_key]]s; repeatable.
    #[arg(long, value_name = "PUB.pem")]
    pub oms_key: Vec<PathBuf>,
    /// The bundle (default CHECKPOINT/model.sig, or FILE.sig).
    #[arg(long, value_name = "PATH")]
    pub oms_bundle: Option<PathBuf>,
    /// Leave this relative path out of the model.sig check; repeatable.
    #[arg(long, value_name = "PATH")]
    pub oms_ignore: Vec<String>,
    /// Files the bundle does not sign are not an error.
    #[arg(long)]
    pub oms_ignore_unsigned: bool,
    /// Check model.sig too, trusting these anchors (PEM certificates) for the `certificate`
    /// method besides the policy's; repeatable.
    #[arg(long, value_name = "PEM")]
    pub oms_certificate_chain: Vec<PathBuf>,
    /// The identity the model.sig signing certificate must name (with --oms-certificate-chain
    /// or --oms-sigstore); repeatable: any one will do.
    #[arg(long, value_name = "NAME")]
    pub oms_identity: Vec<String>,
    /// Check a Sigstore keyless model.sig offline (as `verify-oms --sigstore`): the Fulcio
    /// certificate must name --oms-identity, vouched for by --oms-issuer.
    #[arg(long, requires_all = ["oms_identity", "oms_issuer"])]
    pub oms_sigstore: bool,
    /// The OIDC issuer that must have vouched for the --oms-sigstore identity.
    #[arg(long, value_name = "URL", requires = "oms_sigstore")]
    pub oms_issuer: Option<String>,
    /// A Sigstore `TrustedRoot` (or `ClientTrustConfig`) JSON file in place of the public-good
    /// root the build carries.
    #[arg(long, value_name = "trusted_root.json", requires = "oms_sigstore")]
    pub oms_trust_root: Option<PathBuf>,
}

impl OmsArgs {
    pub fn options(&self) -> anyhow::Result<OmsOptions> {
        let extra = crate::cmd_oms::model_signing_trust(&crate::cmd_oms::ModelSigningFlags {
            keys: &self.oms_key,
            certificate_chains: &self.oms_certificate_chain,
            identities: &self.oms_identity,
            sigstore: self.oms_sigstore,
            issuer: self.oms_issuer.as_deref(),
            trust_root: self.oms_trust_root.as_deref(),
        })?;
        Ok(OmsOptions {
            extra,
            bundle: self.oms_bundle.clone(),
            ignore: self.oms_ignore.clone(),
            ignore_unsigned: self.oms_ignore_unsigned,
        })
    }
}

/// The library's model.sig request for the checkpoint given on the command line.
pub fn oms_request(
    args: &OmsArgs,
    policy: &Policy,
    checkpoint: &CheckpointArgs,
    own_files: &[&Path],
    now: i64,
) -> anyhow::Result<Option<OmsRequest>> {
    Ok(OmsRequest::for_checkpoint(
        &args.options()?,
        &policy.model_signing,
        &checkpoint.path,
        checkpoint.allow_symlinks,
        own_files,
        now,
    )?)
}

/// The checkpoint (and its attestation, when the path given was one) a path names: a path that
/// does not exist is said to be missing, and `DIR/weightgate.att` or `FILE.att` given instead
/// of the checkpoint is understood as the attestation beside it.
pub fn checkpoint_of(path: &Path) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("{}: no such file or folder", path.display())
        } else {
            anyhow::anyhow!("{}: {e}", path.display())
        }
    })?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !meta.is_file() || !name.ends_with(".att") {
        return Ok((path.to_path_buf(), None));
    }
    let beside = if name == weightgate_schemas::file_names::ATTESTATION_FILE_NAME {
        path.parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .map(Path::to_path_buf)
    } else {
        Some(path.with_file_name(&name[..name.len() - ".att".len()]))
    };
    match beside {
        Some(ck) if ck.exists() => Ok((ck, Some(path.to_path_buf()))),
        _ => anyhow::bail!(
            "{} is an attestation, and the checkpoint it belongs beside is not there: give the checkpoint and --attestation {}",
            path.display(),
            path.display()
        ),
    }
}

/// The checkpoint to verify and the attestation a path given as the checkpoint named: the path
/// given, or the cached snapshot `--hf` names.
fn checkpoint_args(args: &VerifyArgs) -> anyhow::Result<(CheckpointArgs, Option<PathBuf>)> {
    let mut named_attestation = None;
    let path = match (&args.path, &args.hf) {
        (Some(p), _) => {
            let (ck, att) = checkpoint_of(p)?;
            named_attestation = att;
            ck
        }
        (None, Some(spec)) => {
            let (repo_id, revision) = match spec.split_once('@') {
                Some((r, rev)) => (r, Some(rev)),
                None => (spec.as_str(), None),
            };
            let cache = hub_cache_dir(|k| std::env::var_os(k)).context(
                "--hf: cannot locate the Hugging Face cache: set HF_HUB_CACHE or HF_HOME (HOME is not set)",
            )?;
            find_snapshot(&cache, repo_id, revision).context("--hf")?
        }
        (None, None) => anyhow::bail!("give a CHECKPOINT path or --hf ORG/NAME[@REV]"),
    };
    let checkpoint = CheckpointArgs {
        path,
        allow_symlinks: args.allow_symlinks,
        ignore: args.ignore.clone(),
        read: args.read.clone(),
    };
    Ok((checkpoint, named_attestation))
}

/// What to say when the default attestation is not in the checkpoint: for a Hugging Face
/// download, the command that brings it (loaders such as transformers fetch only what they
/// load, never the attestation).
fn missing_attestation_hint(checkpoint: &Path, layout: Option<&HfDownload>) -> String {
    let att = weightgate_schemas::file_names::ATTESTATION_FILE_NAME;
    match layout {
        Some(HfDownload::CacheSnapshot { repo_id, commit }) => format!(
            "it is not there; the Hugging Face loaders fetch only the files they load: bring it into this snapshot with `hf download {repo_id} {att} --revision {commit}` (same HF_ENDPOINT and HF_HOME as the download), or pass --attestation FILE"
        ),
        Some(HfDownload::LocalDir) => format!(
            "it is not there: bring it with `hf download ORG/NAME {att} --local-dir {}` (the repository this folder was downloaded from), or pass --attestation FILE",
            checkpoint.display()
        ),
        None => "it is not there: pass --attestation FILE where the envelope is".into(),
    }
}

pub fn run(args: VerifyArgs) -> anyhow::Result<Exit> {
    let (checkpoint, named_attestation) = checkpoint_args(&args)?;
    refuse_hf_cache_repository(&checkpoint.path)?;
    let policy = match &args.policy {
        Some(p) => Policy::load(p)?,
        None => {
            let mut keys = Vec::new();
            for p in &args.trust {
                keys.push(TrustedKey::load(p)?);
            }
            Policy::trusting(keys)
        }
    };
    let policy = if args.provenance_only {
        policy.provenance_only()
    } else {
        policy
    };
    let layout = hf_download_layout(&checkpoint.path);
    let given_attestation = args.attestation.clone().or(named_attestation);
    let att_path = given_attestation
        .clone()
        .unwrap_or_else(|| default_attestation_path(&checkpoint.path));
    let attestation = read_attestation(&att_path).map_err(|e| {
        if given_attestation.is_none() && !att_path.exists() {
            anyhow::anyhow!(
                "{e} ({})",
                missing_attestation_hint(&checkpoint.path, layout.as_ref())
            )
        } else {
            e.into()
        }
    })?;
    let root = &checkpoint.path;
    let own_inside: Vec<String> = if root.is_dir() {
        std::iter::once(&att_path)
            .chain(&args.grant)
            .chain(&args.base_attestation)
            .filter_map(|p| relative_inside(root, p))
            .collect()
    } else {
        Vec::new()
    };
    let open = checkpoint.open_options(own_inside);
    let grants = args
        .grant
        .iter()
        .map(|g| read_grant(g))
        .collect::<Result<Vec<_>, _>>()?;
    let base_envelope = match &args.base_attestation {
        Some(p) => Some(read_input(p, InputKind::BaseAttestation)?),
        None => None,
    };
    let mut own_files: Vec<&Path> = vec![&att_path];
    own_files.extend(args.grant.iter().map(PathBuf::as_path));
    own_files.extend(args.base_attestation.iter().map(PathBuf::as_path));
    let at = args.now.unwrap_or_else(now);
    let oms = oms_request(&args.oms, &policy, &checkpoint, &own_files, at)?;
    let req = VerifyRequest {
        envelope: attestation.bytes(),
        subject: SubjectSource::OnDisk {
            checkpoint: root,
            open: open.clone(),
            full: args.full,
            threads: args.run.threads,
            oms,
            scope: if layout.is_some() && !args.complete {
                SubjectScope::Downloaded
            } else {
                SubjectScope::Whole
            },
        },
        policy: &policy,
        context: Context {
            now: at,
            // Unknown destinations are judged (and refused where they matter), as the gate does.
            destination: args
                .destination
                .as_deref()
                .map(|d| normalise_destination(d).to_string()),
        },
        grants,
        base_envelope,
    };
    // The bar's length from file sizes alone: no header is parsed before the signatures are
    // checked (a hostile checkpoint's headers cost memory and time; verify reads them once).
    let total = discover(root, &open).map_or(0, |files| {
        files
            .iter()
            .filter_map(|f| std::fs::metadata(&f.fs_path).ok())
            .map(|m| m.len())
            .sum()
    });
    let bar = Bar::new(total, args.run.quiet());
    let decision = verify(&req, &|n| bar.inc(n));
    bar.finish();
    let decision = decision?;
    attestation.check_unchanged()?;
    if args.run.json() {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        print_decision(&root.display().to_string(), &decision, &policy);
    }
    Ok(if decision.allowed {
        Exit::Ok
    } else {
        Exit::Denied
    })
}

pub fn print_decision(what: &str, d: &Decision, policy: &Policy) {
    for line in render::report(what, d, &policy.name) {
        say!("{line}");
    }
}
