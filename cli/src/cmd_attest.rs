//! `weightgate attest CHECKPOINT --key KEY --claims claims.toml`: sign a release.

use std::path::PathBuf;

use clap::Args;

use crate::Exit;
use crate::checkpoint_args::CheckpointArgs;
use crate::progress::Bar;
use crate::run_args::RunArgs;
use crate::signing_key::{TokenArgs, open_signer};
use crate::time_arg::parse_time;
use weightgate_attest::hashing::{HashOptions, work_bytes};
use weightgate_attest::reading::Checkpoint;
use weightgate_attest::signing::{AttestRequest, OmsSigning, SigningPurpose, attest};

#[derive(Args, Debug)]
pub struct AttestArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// Ed25519 private key: a PKCS#8 PEM file (`weightgate keygen`) or a key in a PKCS#11
    /// token, `pkcs11:token=...;object=...` (RFC 7512).
    #[arg(long, env = "WEIGHTGATE_KEY", hide_env_values = true)]
    pub key: PathBuf,
    /// Claims about compute, entity and references (TOML; see docs/claims.example.toml).
    #[arg(long)]
    pub claims: PathBuf,
    /// Where to write the envelope (default CHECKPOINT/weightgate.att, or FILE.att).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Record a BLAKE3 digest of every tensor too.
    #[arg(long)]
    pub per_tensor: bool,
    /// Time of signing (RFC 3339 or Unix seconds); default now. For reproducible envelopes.
    #[arg(long, value_parser = parse_time)]
    pub issued_at: Option<i64>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Also write an OpenSSF model-signing bundle signed with this ECDSA P-256/P-384/P-521
    /// key (PKCS#8 or SEC1 PEM; `weightgate keygen --type p256`), or a `pkcs11:` URI.
    #[arg(long, value_name = "KEY")]
    pub oms_key: Option<PathBuf>,
    /// Where to write the bundle (default CHECKPOINT/model.sig, or FILE.sig).
    #[arg(long, value_name = "PATH", requires = "oms_key")]
    pub oms_out: Option<PathBuf>,
    /// Leave this relative path out of both the attestation and model.sig (recorded in the
    /// bundle's `ignore_paths` so `model_signing verify` leaves it out too); repeatable.
    #[arg(long, value_name = "PATH", requires = "oms_key")]
    pub oms_ignore: Vec<String>,
    #[command(flatten)]
    pub token: TokenArgs,
}

pub fn run(args: AttestArgs) -> anyhow::Result<Exit> {
    let issued_at = args.issued_at.unwrap_or_else(crate::time_arg::now);
    let req = AttestRequest {
        checkpoint: args.checkpoint.path.clone(),
        open: args
            .checkpoint
            .open_options(args.oms_ignore.iter().cloned()),
        claims: args.claims,
        key: open_signer(&args.key, SigningPurpose::Envelope, &args.token)?,
        out: args.out,
        per_tensor: args.per_tensor,
        threads: args.run.threads,
        issued_at,
        oms: match args.oms_key {
            Some(key) => Some(OmsSigning {
                key: open_signer(&key, SigningPurpose::ModelSignature, &args.token)?,
                out: args.oms_out,
            }),
            None => None,
        },
    };
    // Size the bar from a header-only pass; the real run re-reads headers (cheap).
    let total = Checkpoint::open(&req.checkpoint, &req.open)
        .map(|ck| work_bytes(&ck, &HashOptions::default()))
        .unwrap_or(0);
    let bar = Bar::new(total, args.run.quiet());
    let outcome = attest(&req, &|n| bar.inc(n));
    bar.finish();
    let outcome = outcome?;
    if args.run.json() {
        let doc = serde_json::json!({
            "model": outcome.statement.model.name,
            "files": outcome.statement.subject.files.len(),
            "root_sha256": outcome.statement.subject.root_sha256.to_hex(),
            "attestation": outcome.path.display().to_string(),
            "attestation_bytes": outcome.envelope_len,
            "key_id": outcome.key_id,
            "model_sig": outcome.oms.as_ref().map(|o| serde_json::json!({
                "path": o.path.display().to_string(),
                "bytes": o.bundle_len,
                "curve": o.curve,
                "key_hint": o.key_hint,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Ok);
    }
    println!(
        "attested {} ({}, root sha256:{}) -> {} ({} bytes, key {})",
        outcome.statement.model.name,
        crate::count(outcome.statement.subject.files.len(), "file"),
        outcome.statement.subject.root_sha256.to_hex(),
        outcome.path.display(),
        outcome.envelope_len,
        outcome.key_id
    );
    if let Some(o) = &outcome.oms {
        println!(
            "signed model.sig (OpenSSF model signing, ECDSA {}) -> {} ({} bytes, key hint {})",
            o.curve,
            o.path.display(),
            o.bundle_len,
            o.key_hint
        );
    }
    Ok(Exit::Ok)
}
