//! Writing `model.sig`, the OpenSSF model-signing bundle, from digests `attest` already has.

use std::path::{Path, PathBuf};

use weightgate_schemas::oms::{IN_TOTO_PAYLOAD_TYPE, OmsManifest, OmsResource, encode_bundle};
use weightgate_schemas::pae;

use crate::checkpoint::Checkpoint;
use crate::discover::DEFAULT_IGNORES;
use crate::ec_keys::EcSigningKey;
use crate::hash::Manifest;

/// Name of the bundle inside a checkpoint folder, as `model_signing` names it.
pub const OMS_SIGNATURE_FILE_NAME: &str = "model.sig";

/// `DIR/model.sig` for a folder, `FILE.sig` beside a single file.
pub fn default_oms_signature_path(checkpoint: &Path) -> PathBuf {
    crate::attest::output_beside(checkpoint, OMS_SIGNATURE_FILE_NAME, ".sig")
}

/// The OMS manifest of a hashed checkpoint: one SHA-256 resource per file in path-component
/// order (`.` for a single-file model), and every path left out recorded so `model_signing
/// verify` leaves it out too. `None` when a SHA-256 digest is missing.
pub fn oms_manifest(
    checkpoint: &Checkpoint,
    manifest: &Manifest,
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
            sha256: f.sha256?,
        });
    }
    let mut ignore_paths: Vec<String> = DEFAULT_IGNORES
        .iter()
        .map(|s| s.to_string())
        .chain(ignored.iter().cloned())
        .collect();
    ignore_paths.sort();
    ignore_paths.dedup();
    let subject_name = checkpoint
        .root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    Some(OmsManifest {
        subject_name,
        resources,
        ignore_paths,
        allow_symlinks: false,
    })
}

/// The bundle bytes: the statement signed over DSSE PAE with ECDSA, DER, plus the key hint.
pub fn sign_oms_bundle(manifest: &OmsManifest, key: &EcSigningKey) -> Vec<u8> {
    let payload = manifest.statement_json();
    let signature = key.sign_der(&pae(IN_TOTO_PAYLOAD_TYPE, &payload));
    encode_bundle(&payload, &signature, &key.verifying_key().hint())
}
