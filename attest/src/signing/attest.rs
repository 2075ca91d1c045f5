//! The lab's release step: check claims, hash, build the statement, sign, write atomically.

use std::path::PathBuf;

use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement};

use super::claims::{Claims, ClaimsError};
use super::envelope::sign_envelope;
use super::model_sig::{oms_manifest, sign_oms_bundle};
use super::signer::{SignError, Signer, SigningPurpose, ecdsa_public_key};
use crate::hashing::{Algorithms, HashOptions, Progress, hash_checkpoint};
use crate::io::{Replace, write_atomically};
use crate::keys::KeyError;
use crate::reading::{
    Checkpoint, CheckpointError, OpenOptions, default_attestation_path, default_oms_signature_path,
    relative_inside,
};

/// What `attest` needs.
#[derive(Debug)]
pub struct AttestRequest {
    pub checkpoint: PathBuf,
    pub open: OpenOptions,
    pub claims: PathBuf,
    /// Signs the attestation: an Ed25519 signer.
    pub key: Box<dyn Signer>,
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
#[derive(Debug)]
pub struct OmsSigning {
    /// An ECDSA P-256/P-384/P-521 signer.
    pub key: Box<dyn Signer>,
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
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("{0}")]
    Invalid(String),
    #[error("{}: cannot write {what}: {error}", path.display())]
    Write {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Runs the whole release step. Claims and signers are checked before any byte is hashed.
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
    SigningPurpose::Envelope.check(&*req.key)?;
    let oms_public = match &req.oms {
        Some(o) => Some(ecdsa_public_key(&*o.key, SigningPurpose::ModelSignature)?),
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
    // Both signatures before either file: a signer that fails leaves nothing half-written.
    let envelope = sign_envelope(ATTESTATION_PAYLOAD_TYPE, statement.encode(), &*req.key)?;
    let oms_bundle = match (&req.oms, oms_public, oms_out) {
        (Some(signing), Some(public), Some(path)) => {
            let m = oms_manifest(&checkpoint, &manifest, &open.ignore).ok_or_else(|| {
                AttestError::Invalid(
                    "internal: a SHA-256 digest is missing from the manifest".into(),
                )
            })?;
            Some((sign_oms_bundle(&m, &*signing.key)?, m, public, path))
        }
        _ => None,
    };
    let bytes = envelope.encode();
    write_atomically(&out, &bytes, 0o644, Replace::Allowed).map_err(|error| {
        AttestError::Write {
            what: "the attestation",
            path: out.clone(),
            error,
        }
    })?;
    let mut oms = None;
    if let Some((bundle, m, public, oms_out)) = oms_bundle {
        write_atomically(&oms_out, &bundle, 0o644, Replace::Allowed).map_err(|error| {
            AttestError::Write {
                what: "the model signature",
                path: oms_out.clone(),
                error,
            }
        })?;
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
        key_id: req.key.key_id(),
        oms,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::keys::EcCurve;
    use crate::signing::signer::test_signers::{Fault, Faulty, assert_token_removed};
    use crate::signing::{EcdsaFileSigner, Ed25519FileSigner};

    fn testdata(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(p)
    }

    /// The tiny checkpoint copied into `dir`.
    fn tiny(dir: &Path) -> PathBuf {
        let ck = dir.join("tiny");
        std::fs::create_dir(&ck).unwrap();
        for entry in std::fs::read_dir(testdata("checkpoints/tiny")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), ck.join(entry.file_name())).unwrap();
        }
        ck
    }

    fn request(ck: &Path, key: Box<dyn Signer>, oms: Option<Box<dyn Signer>>) -> AttestRequest {
        AttestRequest {
            checkpoint: ck.to_path_buf(),
            open: OpenOptions::default(),
            claims: testdata("claims/tiny-below.toml"),
            key,
            out: None,
            per_tensor: false,
            threads: 1,
            // 2026-11-01T00:00:00Z, as the golden envelope was signed.
            issued_at: 1_793_491_200,
            oms: oms.map(|key| OmsSigning { key, out: None }),
        }
    }

    fn lab() -> Box<dyn Signer> {
        Box::new(Ed25519FileSigner::load(&testdata("keys/test-lab.key")).unwrap())
    }

    #[test]
    fn the_golden_attestation_comes_from_a_signer() {
        let dir = tempfile::tempdir().unwrap();
        let ck = tiny(dir.path());
        let p256 = EcdsaFileSigner::generate(EcCurve::P256);
        let hint = crate::keys::EcVerifyingKey::from_spki_der(p256.public_key_der(), "p")
            .unwrap()
            .hint();
        let outcome = attest(&request(&ck, lab(), Some(Box::new(p256))), &|_| {}).unwrap();
        let golden = std::fs::read(testdata("envelopes/golden_tiny.att")).unwrap();
        assert_eq!(std::fs::read(ck.join("weightgate.att")).unwrap(), golden);
        assert_eq!(outcome.key_id, lab().key_id());
        let oms = outcome.oms.unwrap();
        assert_eq!((oms.curve, oms.key_hint), ("P-256", hint));
        assert!(ck.join("model.sig").is_file());
    }

    #[test]
    fn a_failing_signer_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let ck = tiny(dir.path());
        let failing_lab = Faulty {
            inner: lab(),
            fault: Fault::Fails,
        };
        let unwrap_sign = |r: Result<AttestOutcome, AttestError>| match r {
            Err(AttestError::Sign(e)) => Err::<(), _>(e),
            other => panic!("{other:?}"),
        };
        let r = attest(&request(&ck, Box::new(failing_lab), None), &|_| {});
        assert_token_removed(unwrap_sign(r));
        let failing_oms = Faulty {
            inner: EcdsaFileSigner::generate(EcCurve::P384),
            fault: Fault::Fails,
        };
        let r = attest(&request(&ck, lab(), Some(Box::new(failing_oms))), &|_| {});
        assert_token_removed(unwrap_sign(r));
        assert!(!ck.join("weightgate.att").exists());
        assert!(!ck.join("model.sig").exists());
    }

    #[test]
    fn signers_of_the_wrong_algorithm_are_refused_before_hashing() {
        let dir = tempfile::tempdir().unwrap();
        let ck = tiny(dir.path());
        let hashed = AtomicU64::new(0);
        let progress = |n| {
            hashed.fetch_add(n, Ordering::Relaxed);
        };
        let p256 = || Box::new(EcdsaFileSigner::generate(EcCurve::P256));
        for req in [request(&ck, p256(), None), request(&ck, lab(), Some(lab()))] {
            match attest(&req, &progress) {
                Err(AttestError::Sign(SignError::WrongAlgorithm { .. })) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(hashed.load(Ordering::Relaxed), 0);
        assert!(!ck.join("weightgate.att").exists());
    }
}
