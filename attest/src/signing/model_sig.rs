//! Writing `model.sig`, the OpenSSF model-signing bundle: from digests `attest` already has, or
//! on its own (`sign_model`) with any serialization the spec defines.

use std::path::PathBuf;

use weightgate_schemas::file_names::{DEFAULT_IGNORES, GIT_IGNORES, HF_LOCAL_DIR_METADATA};
use weightgate_schemas::oms::{
    IN_TOTO_PAYLOAD_TYPE, OmsHashType, OmsManifest, OmsMethod, OmsResource, OmsStatementFormat,
    encode_bundle, encode_certificate_bundle,
};
use weightgate_schemas::pae;

use super::attest::{AttestError, OmsOutcome};
use super::signer::{SignError, Signer, SigningPurpose, ecdsa_public_key, sign_for};
use crate::hashing::{CheckpointDigests, OmsSerialization, Progress, oms_resources};
use crate::io::{Replace, write_atomically};
use crate::keys::{EcVerifyingKey, certificate_key, load_certificates};
use crate::reading::{
    Checkpoint, OpenOptions, default_oms_signature_path, relative_inside, resolve_ignore_paths,
};

/// `defaults` and `ignored` (relative paths), sorted, without repeats.
fn recorded_ignores(defaults: &[&str], ignored: &[String]) -> Vec<String> {
    let mut out: Vec<String> = defaults
        .iter()
        .map(|s| s.to_string())
        .chain(ignored.iter().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The model folder's (or file's) own name: the statement's informational subject name.
fn subject_name(checkpoint: &Checkpoint) -> String {
    checkpoint
        .root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// The OMS manifest of a hashed checkpoint: one SHA-256 resource per file in path-component
/// order (`.` for a single-file model), and every path left out recorded so `model_signing
/// verify` leaves it out too. `None` when a SHA-256 digest is missing.
pub(crate) fn oms_manifest(
    checkpoint: &Checkpoint,
    manifest: &CheckpointDigests,
    ignored: &[String],
) -> Option<OmsManifest> {
    let mut resources = Vec::with_capacity(manifest.files.len());
    for f in &manifest.files {
        resources.push(OmsResource {
            name: if checkpoint.single_file {
                ".".to_string()
            } else {
                f.path.clone()
            },
            digest: f.sha256?.to_vec(),
        });
    }
    Some(OmsManifest {
        format: OmsStatementFormat::V1,
        subject_name: subject_name(checkpoint),
        method: OmsMethod::Files,
        hash_type: OmsHashType::Sha256,
        resources,
        ignore_paths: recorded_ignores(DEFAULT_IGNORES, &with_hf_metadata(checkpoint, ignored)),
        allow_symlinks: false,
    })
}

/// `ignored` plus `.cache/huggingface` where it exists: discovery leaves it out, so the bundle
/// names it for `model_signing verify`; only where it exists, so bundles of ordinary folders
/// stay as they were.
fn with_hf_metadata(checkpoint: &Checkpoint, ignored: &[String]) -> Vec<String> {
    let mut out = ignored.to_vec();
    if !checkpoint.single_file && checkpoint.root.join(HF_LOCAL_DIR_METADATA).is_dir() {
        out.push(HF_LOCAL_DIR_METADATA.to_string());
    }
    out
}

/// The bundle bytes: the statement signed over DSSE PAE with ECDSA, DER, plus the key hint.
pub(crate) fn sign_oms_bundle(
    manifest: &OmsManifest,
    signer: &dyn Signer,
) -> Result<Vec<u8>, SignError> {
    let public = ecdsa_public_key(signer, SigningPurpose::ModelSignature)?;
    let payload = manifest.statement_json();
    let signature = sign_statement(&payload, signer)?;
    Ok(encode_bundle(&payload, &signature, &public.hint()))
}

/// The bundle's signature: over the DSSE PAE of the statement.
fn sign_statement(payload: &[u8], signer: &dyn Signer) -> Result<Vec<u8>, SignError> {
    sign_for(
        signer,
        SigningPurpose::ModelSignature,
        &pae(IN_TOTO_PAYLOAD_TYPE, payload),
    )
}

/// Signing a model with OpenSSF model signing alone (no attestation).
#[derive(Debug)]
pub struct OmsSignRequest {
    /// Model folder or single file.
    pub model: PathBuf,
    /// An ECDSA P-256/P-384/P-521 signer.
    pub key: Box<dyn Signer>,
    /// Where to write; default [`default_oms_signature_path`].
    pub out: Option<PathBuf>,
    /// Paths to leave out: relative to the model, or absolute inside it.
    pub ignore: Vec<String>,
    pub serialization: OmsSerialization,
    pub threads: usize,
    /// Sign with the `certificate` method: the key's certificate and the chain above it.
    pub certificate: Option<OmsCertificate>,
}

/// PEM files for the `certificate` method.
#[derive(Debug, Clone)]
pub struct OmsCertificate {
    /// The signing certificate, whose public key is the signer's.
    pub signing_certificate: PathBuf,
    /// Further certificates (intermediates, root) in leaf-to-root order; each file may hold
    /// several.
    pub chain: Vec<PathBuf>,
}

/// Signs `req.model` as `model_signing sign key` does: every regular file except the git
/// paths, the bundle itself (wherever it lies inside the model) and the ignore paths, which
/// are recorded relative to the model. Symbolic links and an empty model are refused.
pub fn sign_model(req: &OmsSignRequest, progress: Progress) -> Result<OmsOutcome, AttestError> {
    let out = req
        .out
        .clone()
        .unwrap_or_else(|| default_oms_signature_path(&req.model));
    let mut ignore = resolve_ignore_paths(&req.model, &req.ignore)?;
    ignore.extend(relative_inside(&req.model, &out));
    let open = OpenOptions {
        allow_symlinks: false,
        ignore: ignore.clone(),
        git_ignores_only: true,
        ..Default::default()
    };
    let checkpoint = Checkpoint::open_files(&req.model, &open)?;
    let public = ecdsa_public_key(&*req.key, SigningPurpose::ModelSignature)?;
    let chain = match &req.certificate {
        Some(c) => Some(certificate_chain(c, &public)?),
        None => None,
    };
    let resources = oms_resources(&checkpoint, &req.serialization, req.threads, progress)?;
    if resources.is_empty() {
        return Err(AttestError::Invalid(format!(
            "{}: every file is empty, so shard serialization gives no resource to sign",
            req.model.display()
        )));
    }
    let manifest = OmsManifest {
        format: OmsStatementFormat::V1,
        subject_name: subject_name(&checkpoint),
        method: req.serialization.method,
        hash_type: req.serialization.hash_type,
        resources,
        ignore_paths: recorded_ignores(GIT_IGNORES, &ignore),
        allow_symlinks: false,
    };
    let bundle = match &chain {
        Some(chain) => {
            let payload = manifest.statement_json();
            let signature = sign_statement(&payload, &*req.key)?;
            encode_certificate_bundle(&payload, &signature, chain)
        }
        None => sign_oms_bundle(&manifest, &*req.key)?,
    };
    write_atomically(&out, &bundle, 0o644, Replace::Allowed).map_err(|error| {
        AttestError::Write {
            what: "the model signature",
            path: out.clone(),
            error,
        }
    })?;
    Ok(OmsOutcome {
        path: out,
        bundle_len: bundle.len(),
        curve: public.curve().name(),
        key_hint: public.hint(),
        root: manifest.root(),
        resources: manifest.resources.len(),
    })
}

/// The signing certificate then the chain, DER; the certificate must hold the signer's `public`
/// key.
fn certificate_chain(
    c: &OmsCertificate,
    public: &EcVerifyingKey,
) -> Result<Vec<Vec<u8>>, AttestError> {
    let leaf = load_certificates(&c.signing_certificate)?;
    if leaf.len() != 1 {
        return Err(AttestError::Invalid(format!(
            "{}: holds {} certificates; the signing certificate file must hold exactly one",
            c.signing_certificate.display(),
            leaf.len()
        )));
    }
    let name = c.signing_certificate.display().to_string();
    let cert_key = certificate_key(&leaf[0], &name)
        .map_err(|e| AttestError::Invalid(format!("{name}: {e}")))?;
    if &cert_key != public {
        return Err(AttestError::Invalid(format!(
            "{name}: the certificate's public key is not the private key's"
        )));
    }
    let mut out = leaf;
    for p in &c.chain {
        out.extend(load_certificates(p)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use weightgate_schemas::oms::{OmsMaterial, decode_bundle};

    use super::*;
    use crate::keys::EcCurve;
    use crate::signing::signer::test_signers::{Fault, Faulty, assert_token_removed};
    use crate::signing::{EcdsaFileSigner, Ed25519FileSigner, SignError};

    fn request(model: &Path, key: Box<dyn Signer>) -> OmsSignRequest {
        OmsSignRequest {
            model: model.to_path_buf(),
            key,
            out: None,
            ignore: Vec::new(),
            serialization: OmsSerialization::default(),
            threads: 1,
            certificate: None,
        }
    }

    fn model(dir: &Path) -> std::path::PathBuf {
        let m = dir.join("model");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(m.join("weights.bin"), b"weights").unwrap();
        m
    }

    #[test]
    fn the_bundle_is_signed_by_the_signer_and_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let signer = EcdsaFileSigner::generate(EcCurve::P521);
        let public = EcVerifyingKey::from_spki_der(signer.public_key_der(), "p").unwrap();
        let outcome = sign_model(&request(&m, Box::new(signer)), &|_| {}).unwrap();
        assert_eq!(outcome.key_hint, public.hint());
        let bundle = decode_bundle(&std::fs::read(m.join("model.sig")).unwrap()).unwrap();
        assert!(
            matches!(&bundle.material, OmsMaterial::PublicKey { hint: Some(h), .. } if *h == public.hint())
        );
        public
            .verify_der(
                &pae(IN_TOTO_PAYLOAD_TYPE, &bundle.payload),
                &bundle.signature,
            )
            .unwrap();
    }

    #[test]
    fn a_failing_or_wrong_signer_writes_no_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let failing = Faulty {
            inner: EcdsaFileSigner::generate(EcCurve::P256),
            fault: Fault::Fails,
        };
        match sign_model(&request(&m, Box::new(failing)), &|_| {}) {
            Err(AttestError::Sign(e)) => assert_token_removed::<()>(Err(e)),
            other => panic!("{other:?}"),
        }
        let ed25519 = Ed25519FileSigner::generate();
        match sign_model(&request(&m, Box::new(ed25519)), &|_| {}) {
            Err(AttestError::Sign(SignError::WrongAlgorithm { .. })) => {}
            other => panic!("{other:?}"),
        }
        assert!(!m.join("model.sig").exists());
    }
}
