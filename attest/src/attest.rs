//! The lab's release step: check claims, hash, build the statement, sign, write atomically.

use std::path::{Path, PathBuf};

use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement};

use crate::atomic_file::{Replace, write_atomically};
use crate::checkpoint::Checkpoint;
use crate::claims::{Claims, ClaimsError};
use crate::discover::OpenOptions;
use crate::error::CheckpointError;
use crate::hash::{Algorithms, HashOptions, Progress, hash_checkpoint};
use crate::keys::{KeyError, key_id, load_signing_key};
use crate::sign::sign_envelope;

/// Name of the attestation inside a checkpoint folder.
pub const ATTESTATION_FILE_NAME: &str = "weightgate.att";

/// What `attest` needs.
#[derive(Debug, Clone)]
pub struct AttestRequest {
    pub checkpoint: PathBuf,
    pub open: OpenOptions,
    pub claims: PathBuf,
    pub key: PathBuf,
    /// Where to write; default [`default_attestation_path`].
    pub out: Option<PathBuf>,
    pub per_tensor: bool,
    pub threads: usize,
    /// Unix seconds recorded as `issued_at`.
    pub issued_at: i64,
}

/// What `attest` did.
#[derive(Debug, Clone)]
pub struct AttestOutcome {
    pub path: PathBuf,
    pub statement: Statement,
    pub envelope: Envelope,
    pub envelope_len: usize,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("{0}")]
    Invalid(String),
    #[error("{}: cannot write the attestation: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// `DIR/weightgate.att` for a folder, `FILE.att` beside a single file.
pub fn default_attestation_path(checkpoint: &Path) -> PathBuf {
    if checkpoint.is_dir() {
        checkpoint.join(ATTESTATION_FILE_NAME)
    } else {
        let mut p = checkpoint.as_os_str().to_owned();
        p.push(".att");
        PathBuf::from(p)
    }
}

/// Runs the whole release step. Claims and key are checked before any byte is hashed.
pub fn attest(req: &AttestRequest, progress: Progress) -> Result<AttestOutcome, AttestError> {
    let out = req
        .out
        .clone()
        .unwrap_or_else(|| default_attestation_path(&req.checkpoint));
    let mut open = req.open.clone();
    // An --out inside the checkpoint must not attest itself.
    if req.checkpoint.is_dir()
        && let (Ok(root), Some(parent)) = (req.checkpoint.canonicalize(), out.parent())
        && let Ok(parent) = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        }
        .canonicalize()
        && let Ok(rel) = parent.strip_prefix(&root)
        && let Some(name) = out.file_name().and_then(|n| n.to_str())
    {
        let rel = rel.join(name);
        if let Some(rel) = rel.to_str() {
            open.ignore.push(rel.to_string());
        }
    }
    let checkpoint = Checkpoint::open(&req.checkpoint, &open)?;
    let claims = Claims::load(&req.claims, &checkpoint.parameters())?;
    claims
        .check_times(req.issued_at)
        .map_err(AttestError::Invalid)?;
    let key = load_signing_key(&req.key)?;

    let opts = HashOptions {
        algorithms: Algorithms::Both,
        per_tensor: req.per_tensor,
        threads: req.threads,
    };
    let manifest = hash_checkpoint(&checkpoint, &opts, progress)?;
    let statement = claims.statement(&manifest, req.issued_at).ok_or_else(|| {
        AttestError::Invalid("internal: a digest is missing from the manifest".into())
    })?;
    let envelope = sign_envelope(ATTESTATION_PAYLOAD_TYPE, statement.encode(), &key);
    let bytes = envelope.encode();
    write_atomically(&out, &bytes, 0o644, Replace::Allowed).map_err(|error| {
        AttestError::Write {
            path: out.clone(),
            error,
        }
    })?;
    Ok(AttestOutcome {
        path: out,
        statement,
        envelope_len: bytes.len(),
        envelope,
        key_id: key_id(&key.verifying_key()),
    })
}
