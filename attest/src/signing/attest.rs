//! The lab's release step: check claims, hash, build the statement, sign, write atomically.

use std::path::PathBuf;

use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement};

use super::claims::{Claims, ClaimsError};
use super::envelope::sign_envelope;
use super::model_sig::{oms_manifest, sign_oms_bundle};
use super::private_keys::{EcSigningKey, load_signing_key};
use crate::hashing::{Algorithms, HashOptions, Progress, hash_checkpoint};
use crate::io::{Replace, write_atomically};
use crate::keys::{KeyError, key_id};
use crate::reading::{
    Checkpoint, CheckpointError, OpenOptions, default_attestation_path, default_oms_signature_path,
    relative_inside,
};

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
    /// Also write an OpenSSF model-signing bundle (`model.sig`).
    pub oms: Option<OmsSigning>,
}

/// The OpenSSF model-signing bundle to write beside the attestation.
#[derive(Debug, Clone)]
pub struct OmsSigning {
    /// ECDSA P-256/P-384/P-521 private key (PKCS#8 or SEC1 PEM).
    pub key: PathBuf,
    /// Where to write; default [`default_oms_signature_path`].
    pub out: Option<PathBuf>,
}

/// What was written for OpenSSF model signing.
#[derive(Debug, Clone)]
pub struct OmsOutcome {
    pub path: PathBuf,
    pub bundle_len: usize,
    pub curve: &'static str,
    /// Hex SHA-256 of the public key PEM, as the bundle records it.
    pub key_hint: String,
    /// The statement's subject digest (SHA-256 over the resource digests).
    pub root: [u8; 32],
    /// Files or shards signed.
    pub resources: usize,
}

/// What `attest` did.
#[derive(Debug, Clone)]
pub struct AttestOutcome {
    pub path: PathBuf,
    pub statement: Statement,
    pub envelope: Envelope,
    pub envelope_len: usize,
    pub key_id: String,
    pub oms: Option<OmsOutcome>,
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
    #[error("{}: cannot write {what}: {error}", path.display())]
    Write {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Runs the whole release step. Claims and key are checked before any byte is hashed.
pub fn attest(req: &AttestRequest, progress: Progress) -> Result<AttestOutcome, AttestError> {
    let out = req
        .out
        .clone()
        .unwrap_or_else(|| default_attestation_path(&req.checkpoint));
    let mut open = req.open.clone();
    // Absolute ignore paths become relative (they are recorded in model.sig); outside is an error.
    open.ignore = crate::reading::resolve_ignore_paths(&req.checkpoint, &open.ignore)?;
    // Outputs inside the checkpoint are not part of it.
    open.ignore.extend(relative_inside(&req.checkpoint, &out));
    let oms_out = req.oms.as_ref().map(|o| {
        o.out
            .clone()
            .unwrap_or_else(|| default_oms_signature_path(&req.checkpoint))
    });
    if let Some(p) = &oms_out {
        open.ignore.extend(relative_inside(&req.checkpoint, p));
        if open.allow_symlinks {
            return Err(AttestError::Invalid(
                "OpenSSF model signing refuses symbolic links: drop --allow-symlinks (or copy the files) to write model.sig".into(),
            ));
        }
    }
    let checkpoint = Checkpoint::open(&req.checkpoint, &open)?;
    let claims = Claims::load(&req.claims, &checkpoint.parameters())?;
    claims
        .check_times(req.issued_at)
        .map_err(|e| AttestError::Invalid(e.to_string()))?;
    let key = load_signing_key(&req.key)?;
    let oms_key = match &req.oms {
        Some(o) => Some(EcSigningKey::load(&o.key)?),
        None => None,
    };

    let opts = HashOptions {
        algorithms: Algorithms::Both,
        per_tensor: req.per_tensor,
        threads: req.threads,
    };
    let manifest = hash_checkpoint(&checkpoint, &opts, progress)?;
    let statement = claims.statement(&manifest, req.issued_at).ok_or_else(|| {
        AttestError::Invalid("internal: a digest is missing from the manifest".into())
    })?;
    // Verifiers refuse over-long text fields (and tensor names come from the headers).
    statement
        .check_lengths()
        .map_err(|e| AttestError::Invalid(e.to_string()))?;
    // Two names for one file (case or Unicode twins) would be refused by every verifier.
    statement
        .subject
        .check_distinct_paths()
        .map_err(|e| AttestError::Invalid(e.to_string()))?;
    let envelope = sign_envelope(ATTESTATION_PAYLOAD_TYPE, statement.encode(), &key);
    let bytes = envelope.encode();
    write_atomically(&out, &bytes, 0o644, Replace::Allowed).map_err(|error| {
        AttestError::Write {
            what: "the attestation",
            path: out.clone(),
            error,
        }
    })?;
    let mut oms = None;
    if let (Some(oms_key), Some(oms_out)) = (oms_key, oms_out) {
        let m = oms_manifest(&checkpoint, &manifest, &open.ignore).ok_or_else(|| {
            AttestError::Invalid("internal: a SHA-256 digest is missing from the manifest".into())
        })?;
        let bundle = sign_oms_bundle(&m, &oms_key);
        write_atomically(&oms_out, &bundle, 0o644, Replace::Allowed).map_err(|error| {
            AttestError::Write {
                what: "the model signature",
                path: oms_out.clone(),
                error,
            }
        })?;
        let public = oms_key.verifying_key();
        oms = Some(OmsOutcome {
            path: oms_out,
            bundle_len: bundle.len(),
            curve: public.curve().name(),
            key_hint: public.hint(),
            root: m.root(),
            resources: m.resources.len(),
        });
    }
    Ok(AttestOutcome {
        path: out,
        statement,
        envelope_len: bytes.len(),
        envelope,
        key_id: key_id(&key.verifying_key()),
        oms,
    })
}
