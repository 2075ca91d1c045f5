//! `weightgate admit CHECKPOINT --repo ORG/NAME --store DIR|s3://BUCKET/PREFIX --policy FILE`:
//! copy into the content-addressed store that `serve` serves from, verifying in the same pass.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use crate::Exit;
use crate::checkpoint_args::CheckpointArgs;
use crate::progress::Bar;
use crate::terminal::say;
use crate::time_arg::now;
use weightgate_attest::reading::{Checkpoint, default_attestation_path, relative_inside};
use weightgate_verifier::gate::admission::{Admission, AdmitRequest, admit, blocks_admission};
use weightgate_verifier::gate::store::{self, StoreOptions, check_ref, check_repo_id};
use weightgate_verifier::inputs::{InputKind, read_grant, read_input};
use weightgate_verifier::policy::Policy;

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
    /// The store: a folder (created if missing), or s3://BUCKET/PREFIX (endpoint, region and
    /// credentials from the AWS_* environment variables; the bucket must exist).
    #[arg(long, value_name = "DIR|URL")]
    pub store: String,
    /// Policy file (TOML; see docs/policy.md) the checkpoint must pass; regimes are judged again
    /// on every request, so only they may refuse it now and still let it in.
    #[arg(long)]
    pub policy: PathBuf,
    /// The envelope (default CHECKPOINT/weightgate.att, or FILE.att beside a single file).
    #[arg(long)]
    pub attestation: Option<PathBuf>,
    /// Countersigned references to keep with it; repeatable.
    #[arg(long, value_name = "FILE")]
    pub grant: Vec<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: AdmitArgs) -> anyhow::Result<Exit> {
    check_repo_id(&args.repo)?;
    check_ref(&args.revision)?;
    let policy = Policy::load(&args.policy)?;
    let att = args
        .attestation
        .clone()
        .unwrap_or_else(|| default_attestation_path(&args.checkpoint.path));
    let envelope = read_input(&att, InputKind::Attestation)?;
    let grants = args
        .grant
        .iter()
        .map(|g| read_grant(g))
        .collect::<Result<Vec<_>, _>>()?;
    // weightgate's own files inside the checkpoint are not part of it, wherever they are.
    let root = &args.checkpoint.path;
    let own = std::iter::once(&att)
        .chain(&args.grant)
        .filter_map(|p| relative_inside(root, p));
    let open = args.checkpoint.open_options(own);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(store::open(&args.store, StoreOptions::default()))?;
    let oms = crate::cmd_verify::oms_request(
        &crate::cmd_verify::OmsArgs::default(),
        &policy,
        &args.checkpoint,
        &[&att],
        now(),
    )?;
    let req = AdmitRequest {
        repo: &args.repo,
        ref_name: &args.revision,
        checkpoint: &args.checkpoint.path,
        open,
        envelope: &envelope,
        grants,
        policy: &policy,
        oms,
        now: now(),
    };
    // Sized for a terminal only: nothing is read for it otherwise.
    let bytes = if args.quiet || !std::io::stderr().is_terminal() {
        0
    } else {
        Checkpoint::open(&args.checkpoint.path, &req.open).map_or(0, |ck| ck.total_bytes())
    };
    let bar = Bar::new(bytes, args.quiet);
    let admission = rt.block_on(admit(store.as_ref(), &req, &|n| bar.inc(n)));
    bar.finish();
    match admission? {
        Admission::Refused(decision) => {
            crate::cmd_verify::print_decision(
                &args.checkpoint.path.display().to_string(),
                &decision,
                &policy,
            );
            let blocking = decision
                .reasons
                .iter()
                .filter(|r| blocks_admission(r.code))
                .count();
            eprintln!("weightgate: not admitted: {blocking} check(s) failed");
            Ok(Exit::Denied)
        }
        Admission::Admitted {
            record,
            decision,
            reused_files,
            rehashed_files,
        } => {
            let reused = match (reused_files, rehashed_files) {
                (0, _) => String::new(),
                (n, 0) => format!(", {n} already stored"),
                (n, r) => format!(", {n} already stored ({r} of them hashed again)"),
            };
            say!(
                "admitted {} as {}@{} (revision {}, {}{reused}){}",
                args.checkpoint.path.display(),
                args.repo,
                args.revision,
                record.revision,
                crate::count(record.files.len(), "file"),
                if decision.allowed {
                    String::new()
                } else {
                    "; regimes currently refuse it for some requests".into()
                }
            );
            Ok(Exit::Ok)
        }
    }
}
