//! `weightgate sign-oms` and `weightgate verify-oms`: OpenSSF model signing (OMS v1.0) on its
//! own, for models that no weightgate attestation accompanies.
//!
//! `verify-oms` exits 0 verified, 1 not verified (each failed check named), 2 usage or input
//! error (a file that cannot be read).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::Exit;
use crate::progress::Bar;
use crate::signing_key::{TokenArgs, open_signer};
use crate::time_arg::parse_time;
use weightgate_attest::hashing::OmsSerialization;
use weightgate_attest::io::read_capped;
use weightgate_attest::keys::load_certificates;
use weightgate_attest::reading::{
    Checkpoint, OpenOptions, default_oms_signature_path, relative_inside, resolve_ignore_paths,
};
use weightgate_attest::signing::{OmsCertificate, OmsSignRequest, SigningPurpose, sign_model};
use weightgate_schemas::oms::{DEFAULT_SHARD_SIZE, MAX_BUNDLE_LEN, OmsHashType, OmsMethod};
use weightgate_verifier::model_sig::{OmsRequest, check_oms};
use weightgate_verifier::stages::SubjectScope;
use weightgate_verifier::trust::{
    CertificateTrust, ModelSigningKey, ModelSigningTrust, SigstoreIdentity, SigstoreRoot,
    SigstoreTrust,
};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum HashTypeArg {
    Sha256,
    Blake2b,
    Blake3,
}

impl From<HashTypeArg> for OmsHashType {
    fn from(h: HashTypeArg) -> Self {
        match h {
            HashTypeArg::Sha256 => OmsHashType::Sha256,
            HashTypeArg::Blake2b => OmsHashType::Blake2b,
            HashTypeArg::Blake3 => OmsHashType::Blake3,
        }
    }
}

#[derive(Args, Debug)]
pub struct SignOmsArgs {
    /// Model folder or single file.
    pub model: PathBuf,
    /// ECDSA P-256/P-384/P-521 private key: PKCS#8 or SEC1 PEM (`weightgate keygen --type
    /// p256`), or a key in a PKCS#11 token, `pkcs11:token=...;object=...` (RFC 7512).
    #[arg(long, value_name = "KEY.pem|URI")]
    pub key: PathBuf,
    /// Where to write the bundle (default MODEL/model.sig, or FILE.sig). Left out of the
    /// signed files wherever it lies inside the model.
    #[arg(long, value_name = "PATH")]
    pub signature: Option<PathBuf>,
    /// Leave this path out: relative to the model, or absolute inside it; repeatable.
    /// Recorded (relative) in the bundle's `ignore_paths`.
    #[arg(long = "ignore-paths", alias = "ignore", value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// Hash byte ranges of `--shard-size` bytes independently (serialization `shards`):
    /// the fast way to sign one huge file.
    #[arg(long)]
    pub shards: bool,
    /// Shard size in bytes.
    #[arg(long, default_value_t = DEFAULT_SHARD_SIZE, requires = "shards",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_size: u64,
    /// File hash (OMS algorithm registry).
    #[arg(long, value_enum, default_value = "sha256")]
    pub hash_type: HashTypeArg,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Sign with the `certificate` method: the X.509 certificate (PEM) of `--key`.
    #[arg(long, value_name = "CERT.pem")]
    pub signing_certificate: Option<PathBuf>,
    /// Certificates above the signing certificate (PEM, leaf to root); repeatable.
    #[arg(long, value_name = "PEM", requires = "signing_certificate")]
    pub certificate_chain: Vec<PathBuf>,
    #[command(flatten)]
    pub token: TokenArgs,
}

pub fn run_sign(args: SignOmsArgs) -> anyhow::Result<Exit> {
    let req = OmsSignRequest {
        model: args.model.clone(),
        key: open_signer(&args.key, SigningPurpose::ModelSignature, &args.token)?,
        out: args.signature,
        ignore: args.ignore_paths,
        serialization: OmsSerialization {
            method: if args.shards {
                OmsMethod::Shards {
                    shard_size: args.shard_size,
                }
            } else {
                OmsMethod::Files
            },
            hash_type: args.hash_type.into(),
        },
        threads: args.threads,
        certificate: args.signing_certificate.map(|c| OmsCertificate {
            signing_certificate: c,
            chain: args.certificate_chain,
        }),
    };
    let total = model_bytes(&args.model);
    let bar = Bar::new(total, args.quiet);
    let outcome = sign_model(&req, &|n| bar.inc(n));
    bar.finish();
    let o = outcome?;
    emit(&format!(
        "signed {} ({} resources, root sha256:{}) -> {} ({} bytes, ECDSA {}, key hint {})",
        args.model.display(),
        o.resources,
        hex::encode(o.root),
        o.path.display(),
        o.bundle_len,
        o.curve,
        o.key_hint
    ));
    Ok(Exit::Ok)
}

/// Bytes under `model`, for sizing the progress bar (0 when unknown).
fn model_bytes(model: &std::path::Path) -> u64 {
    let open = OpenOptions {
        git_ignores_only: true,
        ..Default::default()
    };
    Checkpoint::open_files(model, &open).map_or(0, |c| c.total_bytes())
}

#[derive(Args, Debug)]
pub struct VerifyOmsArgs {
    /// Model folder or single file.
    pub model: PathBuf,
    /// The bundle (default MODEL/model.sig, or FILE.sig). Left out of the files checked
    /// wherever it lies inside the model.
    #[arg(long, value_name = "PATH")]
    pub signature: Option<PathBuf>,
    /// Trust this ECDSA P-256/P-384/P-521 public key (SPKI PEM); repeatable: any may have signed.
    #[arg(
        long,
        value_name = "PUB.pem",
        required_unless_present_any = ["certificate_chain", "sigstore"]
    )]
    pub key: Vec<PathBuf>,
    /// Trust anchors (PEM certificates) for the `certificate` method; repeatable.
    #[arg(long, value_name = "PEM")]
    pub certificate_chain: Vec<PathBuf>,
    /// Require the signing certificate to name this identity (an alternative name, or its
    /// common name when it has exactly one; with --sigstore, the Fulcio certificate's
    /// alternative name); repeatable: any one will do.
    #[arg(long, value_name = "NAME")]
    pub identity: Vec<String>,
    /// Verify a Sigstore keyless bundle offline: Fulcio chain, CT timestamp, Rekor entry (signed
    /// entry timestamp, inclusion proof and checkpoint) and RFC 3161 timestamps against the
    /// trusted root, the identity (--identity) and OIDC issuer (--issuer).
    #[arg(long, requires_all = ["identity", "issuer"], conflicts_with_all = ["key", "certificate_chain"])]
    pub sigstore: bool,
    /// The OIDC issuer that must have vouched for the --sigstore identity.
    #[arg(long, value_name = "URL", requires = "sigstore")]
    pub issuer: Option<String>,
    /// A Sigstore `TrustedRoot` (or `ClientTrustConfig`) JSON file in place of the public-good
    /// root the build carries.
    #[arg(long, value_name = "trusted_root.json", requires = "sigstore")]
    pub trust_root: Option<PathBuf>,
    /// Check certificate validity at this time (RFC 3339, a date or Unix seconds) instead of now.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<i64>,
    /// Leave this path out: relative to the model, or absolute inside it; repeatable.
    #[arg(long = "ignore-paths", alias = "ignore", value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// Files in the model that the bundle does not list are not an error (every listed file
    /// is still checked).
    #[arg(long, alias = "ignore_unsigned_files")]
    pub ignore_unsigned_files: bool,
    /// Follow symbolic links that stay inside the model (also when the bundle says so).
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Machine-readable result: every check by name (docs/verify.md).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// What the command line trusts for `model.sig`, whichever command it was given to.
pub struct ModelSigningFlags<'a> {
    pub keys: &'a [PathBuf],
    pub certificate_chains: &'a [PathBuf],
    pub identities: &'a [String],
    pub sigstore: bool,
    pub issuer: Option<&'a str>,
    pub trust_root: Option<&'a std::path::Path>,
}

/// The keys, certificate anchors and Sigstore identities the flags name: `--identity` applies
/// to the certificate anchors, or with `--sigstore` to the Fulcio certificate with `--issuer`.
pub fn model_signing_trust(f: &ModelSigningFlags) -> anyhow::Result<ModelSigningTrust> {
    let mut keys = Vec::new();
    for p in f.keys {
        keys.push(ModelSigningKey::load(p)?);
    }
    let mut anchors = Vec::new();
    for p in f.certificate_chains {
        anchors.extend(load_certificates(p)?);
    }
    if !f.identities.is_empty() && anchors.is_empty() && !f.sigstore {
        anyhow::bail!("an identity needs a certificate chain or a Sigstore keyless check");
    }
    let sigstore = if f.sigstore {
        let root = match f.trust_root {
            Some(p) => SigstoreRoot::load(p)?,
            None => SigstoreRoot::public_good(),
        };
        let issuer = f.issuer.unwrap_or_default().to_string();
        vec![SigstoreTrust {
            root,
            identities: f
                .identities
                .iter()
                .map(|identity| SigstoreIdentity {
                    identity: identity.clone(),
                    issuer: issuer.clone(),
                })
                .collect(),
        }]
    } else {
        Vec::new()
    };
    let certificates = if anchors.is_empty() {
        Vec::new()
    } else {
        vec![CertificateTrust {
            name: "--certificate-chain".into(),
            anchors,
            identities: f.identities.to_vec(),
        }]
    };
    Ok(ModelSigningTrust {
        keys,
        certificates,
        sigstore,
    })
}

pub fn run_verify(args: VerifyOmsArgs) -> anyhow::Result<Exit> {
    std::fs::symlink_metadata(&args.model)
        .with_context(|| format!("{}: cannot read the model", args.model.display()))?;
    let trust = model_signing_trust(&ModelSigningFlags {
        keys: &args.key,
        certificate_chains: &args.certificate_chain,
        identities: &args.identity,
        sigstore: args.sigstore,
        issuer: args.issuer.as_deref(),
        trust_root: args.trust_root.as_deref(),
    })?;
    let path = args
        .signature
        .clone()
        .unwrap_or_else(|| default_oms_signature_path(&args.model));
    let bundle = read_capped(&path, MAX_BUNDLE_LEN as u64)
        .with_context(|| format!("{}: cannot read the model signature", path.display()))?;
    let mut ignore = resolve_ignore_paths(&args.model, &args.ignore_paths)?;
    ignore.extend(relative_inside(&args.model, &path));
    let req = OmsRequest {
        bundle,
        trust,
        ignore,
        own_files: Vec::new(),
        ignore_unsigned: args.ignore_unsigned_files,
        allow_symlinks: args.allow_symlinks,
        now: args.now.unwrap_or_else(crate::time_arg::now),
    };
    let bar = Bar::new(model_bytes(&args.model), args.quiet || args.json);
    let report = check_oms(
        &req,
        &args.model,
        &BTreeMap::new(),
        SubjectScope::Whole,
        args.threads,
        &|n| bar.inc(n),
    );
    bar.finish();
    let report = report?;
    let verified = report.problems.is_empty();
    if args.json {
        let problems: Vec<_> = report
            .problems
            .iter()
            .map(|(code, message)| json!({ "code": code, "message": message }))
            .collect();
        let out = json!({
            "verified": verified,
            "model": args.model.display().to_string(),
            "signature": path.display().to_string(),
            "method": report.method,
            "serialization": report.serialization,
            "signer": report.signer,
            "root_sha256": report.root.map(hex::encode),
            "files": report.files,
            "checks": report.checks,
            "problems": problems,
            "notes": report.notes,
        });
        emit(&serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = format!(
            "{} {} against {}\n",
            if verified { "VERIFIED" } else { "NOT VERIFIED" },
            args.model.display(),
            path.display()
        );
        for c in &report.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            text.push_str(&format!("  {mark}  {:<10} {}\n", c.name, c.detail));
        }
        for (code, message) in &report.problems {
            text.push_str(&format!("  reason  {code}: {message}\n"));
        }
        for n in &report.notes {
            text.push_str(&format!("  note  {n}\n"));
        }
        emit(text.trim_end());
    }
    Ok(if verified { Exit::Ok } else { Exit::Denied })
}

/// Prints `text` and a newline; a closed pipe (`| head`) is not an error worth a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
