//! `weightgate admit CHECKPOINT --repo ORG/NAME --store DIR --policy FILE`: verify, then copy
//! into the content-addressed store that `serve` serves from.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::Exit;
use crate::checkpoint_args::CheckpointArgs;
use crate::time_arg::now;
use weightgate_attest::reading::default_attestation_path;
use weightgate_verifier::gate::store::{Store, check_ref, check_repo_id};
use weightgate_verifier::policy::{Context, Policy};
use weightgate_verifier::{VerifyRequest, verify};

#[derive(Args, Debug)]
pub struct AdmitArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// Repository id to serve it as, ORG/NAME.
    #[arg(long)]
    pub repo: String,
    /// Ref name to point at this revision.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// The store folder (created if missing).
    #[arg(long)]
    pub store: PathBuf,
    #[arg(long)]
    pub policy: PathBuf,
    #[arg(long)]
    pub attestation: Option<PathBuf>,
    /// Countersigned references to keep with it; repeatable.
    #[arg(long, value_name = "FILE")]
    pub grant: Vec<PathBuf>,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: AdmitArgs) -> anyhow::Result<Exit> {
    check_repo_id(&args.repo).map_err(anyhow::Error::msg)?;
    check_ref(&args.revision).map_err(anyhow::Error::msg)?;
    let policy = Policy::load(&args.policy)?;
    let att = args
        .attestation
        .clone()
        .unwrap_or_else(|| default_attestation_path(&args.checkpoint.path));
    let envelope =
        weightgate_attest::io::read_capped(&att, weightgate_schemas::MAX_ENVELOPE_LEN as u64)
            .with_context(|| format!("{}: cannot read the attestation", att.display()))?;
    let mut grants = Vec::new();
    for g in &args.grant {
        grants.push(
            weightgate_attest::io::read_capped(g, weightgate_schemas::MAX_GRANT_LEN as u64)
                .with_context(|| format!("{}: cannot read the grant", g.display()))?,
        );
    }
    let open = weightgate_attest::reading::OpenOptions {
        allow_symlinks: args.checkpoint.allow_symlinks,
        ignore: args.checkpoint.ignore.clone(),
        ..Default::default()
    };
    let t = now();
    // Admission re-hashes with SHA-256 (the store is addressed by it). Regime results depend on
    // the destination and the date of each request, so they are judged when serving.
    let req = VerifyRequest {
        envelope: &envelope,
        checkpoint: &args.checkpoint.path,
        open: open.clone(),
        policy: &policy,
        context: Context {
            now: t,
            destination: None,
        },
        full: true,
        grants: grants.clone(),
        base_envelope: None,
        threads: 0,
        admitted: None,
        oms: crate::cmd_verify::oms_request(
            &crate::cmd_verify::OmsArgs::default(),
            &policy,
            &args.checkpoint,
            &[&att],
        )?,
    };
    let decision = verify(&req, &|_| {})?;
    let blocking: Vec<_> = decision
        .reasons
        .iter()
        .filter(|r| !r.code.starts_with("regime."))
        .collect();
    if !blocking.is_empty() {
        crate::cmd_verify::print_decision(
            &args.checkpoint.path.display().to_string(),
            &decision,
            &policy,
        );
        eprintln!(
            "weightgate: not admitted: {} check(s) failed",
            blocking.len()
        );
        return Ok(Exit::Denied);
    }
    let store = Store::open(&args.store)?;
    let params = decision.facts.header_parameters.unwrap_or(0);
    let m = store.admit(
        &args.repo,
        &args.revision,
        &args.checkpoint.path,
        &open,
        &envelope,
        &grants,
        params,
        t,
    )?;
    println!(
        "admitted {} as {}@{} (revision {}, {} files){}",
        args.checkpoint.path.display(),
        args.repo,
        args.revision,
        m.revision,
        m.files.len(),
        if decision.allowed {
            String::new()
        } else {
            "; regimes currently refuse it for some requests".into()
        }
    );
    Ok(Exit::Ok)
}
