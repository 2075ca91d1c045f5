//! `weightgate push CHECKPOINT --repo ORG/NAME --endpoint URL`: uploads an attested checkpoint
//! to a Hub the way `huggingface_hub` does on its LFS path (preupload, the LFS batch API, a PUT
//! per object the Hub lacks, verify, then one NDJSON commit), with the token in `HF_TOKEN`. A
//! gate judges the commit; its refusal is printed with the reason codes and exits 1.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::Args;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use weightgate_attest::hashing::{Algorithms, HashOptions, hash_checkpoint};
use weightgate_attest::reading::{Checkpoint, OpenOptions};
use weightgate_schemas::file_names::ATTESTATION_FILE_NAME;

use crate::Exit;
use crate::terminal::{say, say_err};

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The checkpoint folder, with its `weightgate.att` (run `weightgate attest` first).
    pub checkpoint: PathBuf,
    /// The repository to push to, ORG/NAME.
    #[arg(long)]
    pub repo: String,
    /// The Hub (or gate) to push to, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "HF_ENDPOINT")]
    pub endpoint: String,
    /// The branch to commit to.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// The commit message.
    #[arg(long, default_value = "Upload with weightgate push")]
    pub message: String,
}

/// One file to push: its path in the repository, where it is, its size and SHA-256.
struct PushFile {
    path: String,
    fs_path: PathBuf,
    size: u64,
    sha256: String,
}

pub fn run(args: PushArgs) -> anyhow::Result<Exit> {
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .context("HF_TOKEN is not set: give the write token the Hub issued")?;
    let files = files_of(&args.checkpoint)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(push(&args, &token, &files))
}

/// The attested files and the attestation, with their SHA-256.
fn files_of(root: &Path) -> anyhow::Result<Vec<PushFile>> {
    let att = root.join(ATTESTATION_FILE_NAME);
    let att_bytes = std::fs::read(&att)
        .with_context(|| format!("{}: run `weightgate attest` first", att.display()))?;
    let checkpoint = Checkpoint::open(root, &OpenOptions::default())?;
    let opts = HashOptions {
        algorithms: Algorithms::Sha256Only,
        ..HashOptions::default()
    };
    let digests = hash_checkpoint(&checkpoint, &opts, &|_| {})?;
    let mut out: Vec<PushFile> = checkpoint
        .files
        .iter()
        .zip(&digests.files)
        .map(|(f, d)| PushFile {
            path: f.path.clone(),
            fs_path: f.fs_path.clone(),
            size: f.size,
            sha256: d.sha256.map(hex::encode).unwrap_or_default(),
        })
        .collect();
    out.push(PushFile {
        path: ATTESTATION_FILE_NAME.to_string(),
        fs_path: att,
        size: att_bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&att_bytes)),
    });
    Ok(out)
}

async fn push(args: &PushArgs, token: &str, files: &[PushFile]) -> anyhow::Result<Exit> {
    let endpoint = args.endpoint.trim_end_matches('/');
    let repo = &args.repo;
    let client = reqwest::Client::builder()
        .user_agent(concat!("weightgate/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let auth = format!("Bearer {token}");
    let (org, name) = repo.split_once('/').context("--repo must be ORG/NAME")?;

    let created = client
        .post(format!("{endpoint}/api/repos/create"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(json!({"name": name, "organization": org, "type": "model"}).to_string())
        .send()
        .await?;
    if !created.status().is_success() && created.status().as_u16() != 409 {
        return refused("creating the repository", created).await;
    }

    let preupload = client
        .post(format!(
            "{endpoint}/api/models/{repo}/preupload/{}",
            args.revision
        ))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(
            json!({"files": files.iter().map(|f| json!({
            "path": f.path, "size": f.size, "sample": "",
        })).collect::<Vec<_>>()})
            .to_string(),
        )
        .send()
        .await?;
    if !preupload.status().is_success() {
        return refused("preupload", preupload).await;
    }
    let modes: Value = serde_json::from_str(&preupload.text().await?)?;
    let lfs = |path: &str| {
        modes["files"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["path"] == path && f["uploadMode"] == "lfs")
    };

    let large: Vec<&PushFile> = files.iter().filter(|f| lfs(&f.path)).collect();
    let mut sent = 0u64;
    if !large.is_empty() {
        let batch = client
            .post(format!("{endpoint}/{repo}.git/info/lfs/objects/batch"))
            .header("authorization", &auth)
            .header("accept", "application/vnd.git-lfs+json")
            .header("content-type", "application/json")
        .body(json!({
                "operation": "upload",
                "transfers": ["basic"],
                "hash_algo": "sha256",
                "ref": {"name": args.revision},
                "objects": large.iter().map(|f| json!({"oid": f.sha256, "size": f.size})).collect::<Vec<_>>(),
            }).to_string())
            .send()
            .await?;
        if !batch.status().is_success() {
            return refused("the LFS batch request", batch).await;
        }
        let answer: Value = serde_json::from_str(&batch.text().await?)?;
        for obj in answer["objects"].as_array().into_iter().flatten() {
            if let Some(e) = obj.get("error") {
                bail!("object {}: {}", obj["oid"], e["message"]);
            }
            let Some(upload) = obj["actions"]["upload"]["href"].as_str() else {
                continue; // the Hub holds it already
            };
            let f = large
                .iter()
                .find(|f| obj["oid"] == f.sha256.as_str())
                .context("the LFS batch answer names an object not asked for")?;
            let body = tokio::fs::File::open(&f.fs_path)
                .await
                .with_context(|| f.fs_path.display().to_string())?;
            let put = client
                .put(upload)
                .header("content-length", f.size)
                .body(reqwest::Body::from(body))
                .send()
                .await?;
            if !put.status().is_success() {
                return refused(&format!("uploading {}", f.path), put).await;
            }
            sent += f.size;
            if let Some(verify) = obj["actions"]["verify"]["href"].as_str() {
                let v = client
                    .post(verify)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(json!({"oid": f.sha256, "size": f.size}).to_string())
                    .send()
                    .await?;
                if !v.status().is_success() {
                    return refused(&format!("verifying {}", f.path), v).await;
                }
            }
        }
    }

    let mut ndjson =
        json!({"key": "header", "value": {"summary": args.message, "description": ""}}).to_string();
    for f in files {
        ndjson.push('\n');
        let line = if lfs(&f.path) {
            json!({"key": "lfsFile", "value": {"path": f.path, "algo": "sha256", "oid": f.sha256, "size": f.size}})
        } else {
            let bytes =
                std::fs::read(&f.fs_path).with_context(|| f.fs_path.display().to_string())?;
            json!({"key": "file", "value": {
                "path": f.path,
                "content": base64::engine::general_purpose::STANDARD.encode(bytes),
                "encoding": "base64",
            }})
        };
        ndjson.push_str(&line.to_string());
    }
    ndjson.push('\n');
    let commit = client
        .post(format!(
            "{endpoint}/api/models/{repo}/commit/{}",
            args.revision
        ))
        .header("authorization", &auth)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await?;
    if !commit.status().is_success() {
        return refused("the commit", commit).await;
    }
    let done: Value = serde_json::from_str(&commit.text().await?)?;
    say!(
        "pushed {} ({} files, {} bytes uploaded): {}",
        repo,
        files.len(),
        sent,
        done["commitUrl"].as_str().unwrap_or_default()
    );
    Ok(Exit::Ok)
}

/// Prints what the Hub said about a failed step: a refusal (403 with the reason codes) exits
/// 1, anything else is an error.
async fn refused(step: &str, r: reqwest::Response) -> anyhow::Result<Exit> {
    let status = r.status();
    let header = r
        .headers()
        .get("x-error-message")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r.text().await.unwrap_or_default();
    let message = header
        .or_else(|| {
            serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
        })
        .unwrap_or(body);
    if status.as_u16() == 403 {
        say_err!("{step}: {status}: {message}");
        return Ok(Exit::Denied);
    }
    bail!("{step}: {status}: {message}")
}
