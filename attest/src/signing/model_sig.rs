//! Writing `model.sig`, the OpenSSF model-signing bundle, from digests `attest` already has.

use weightgate_schemas::oms::{IN_TOTO_PAYLOAD_TYPE, OmsManifest, OmsResource, encode_bundle};
use weightgate_schemas::pae;

use weightgate_schemas::file_names::{DEFAULT_IGNORES, HF_LOCAL_DIR_METADATA};

use super::private_keys::EcSigningKey;
use crate::hashing::CheckpointDigests;
use crate::reading::Checkpoint;

/// The OMS manifest of a hashed checkpoint: one SHA-256 resource per file in path-component
/// order (`.` for a single-file model), and every path left out recorded so `model_signing
/// verify` leaves it out too. `None` when a SHA-256 digest is missing.
pub fn oms_manifest(
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
            sha256: f.sha256?,
        });
    }
    let mut ignore_paths: Vec<String> = DEFAULT_IGNORES
        .iter()
        .map(|s| s.to_string())
        .chain(ignored.iter().cloned())
        .collect();
    // Left out by discovery too; named only where it exists, so bundles of ordinary folders
    // stay as they were.
    if !checkpoint.single_file && checkpoint.root.join(HF_LOCAL_DIR_METADATA).is_dir() {
        ignore_paths.push(HF_LOCAL_DIR_METADATA.to_string());
    }
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
