//! Reading model checkpoints strictly and hashing them fast.
//!
//! A [`Checkpoint`] is a directory (or one file) turned into a sorted list of files with safe
//! relative paths, each safetensors header checked strictly and each shard index checked against
//! the shards. [`hash_checkpoint`] computes SHA-256 and BLAKE3 of every file through memory maps
//! and the OpenSSF model-signing root digest. Nothing here prints or exits.

mod atomic_file;
mod attest;
mod bounded_read;
mod checkpoint;
mod claims;
mod discover;
mod ec_keys;
mod error;
mod hash;
mod keys;
mod mapped_file;
pub use mapped_file::MappedFile;
mod oms_sign;
mod path_rules;
mod safetensors_header;
mod sha256_x2;
mod shard_index;
mod sigbus;
mod sign;

pub use atomic_file::{Replace, write_atomically};
pub use attest::{
    ATTESTATION_FILE_NAME, AttestError, AttestOutcome, AttestRequest, OmsOutcome, OmsSigning,
    attest, default_attestation_path, relative_inside,
};
pub use bounded_read::{MAX_CONFIG_FILE_LEN, MAX_KEY_FILE_LEN, read_capped, read_capped_to_string};
pub use checkpoint::{Checkpoint, CheckpointFile, FileKind, ParameterCount};
pub use claims::{Claims, ClaimsError, toml_time};
pub use discover::{DEFAULT_IGNORES, GIT_IGNORES, OpenOptions};
pub use ec_keys::{EcCurve, EcSignatureError, EcSigningKey, EcVerifyingKey, write_ec_key_pair};
pub use error::CheckpointError;
pub use hash::{
    Algorithms, FileDigests, HashOptions, Manifest, Progress, TensorDigest, hash_checkpoint,
    root_digest, work_bytes,
};
pub use keys::{
    KeyError, generate_signing_key, key_id, load_signing_key, load_verifying_key,
    parse_signing_key, parse_verifying_key, signing_key_pem, verifying_key_pem, write_key_pair,
};
pub use oms_sign::{
    OMS_SIGNATURE_FILE_NAME, default_oms_signature_path, oms_manifest, sign_oms_bundle,
};
pub use path_rules::{check_relative_path, component_order};
pub use safetensors_header::{MAX_HEADER_LEN, SafetensorsHeader, TensorEntry, build_safetensors};
pub use shard_index::{MAX_INDEX_LEN, ShardIndex};
pub use sign::{cosign, sign_envelope};
