//! Reading model checkpoints strictly and hashing them fast.
//!
//! A [`Checkpoint`] is a directory (or one file) turned into a sorted list of files with safe
//! relative paths, each safetensors header checked strictly and each shard index checked against
//! the shards. [`hash_checkpoint`] computes SHA-256 and BLAKE3 of every file through memory maps
//! and the OpenSSF model-signing root digest. Nothing here prints or exits.

mod checkpoint;
mod discover;
mod error;
mod hash;
mod mapped_file;
mod path_rules;
mod safetensors_header;
mod shard_index;

pub use checkpoint::{Checkpoint, CheckpointFile, FileKind, ParameterCount};
pub use discover::{DEFAULT_IGNORES, OpenOptions};
pub use error::CheckpointError;
pub use hash::{
    Algorithms, FileDigests, HashOptions, Manifest, Progress, TensorDigest, hash_checkpoint,
    root_digest, work_bytes,
};
pub use path_rules::{check_relative_path, component_order};
pub use safetensors_header::{MAX_HEADER_LEN, SafetensorsHeader, TensorEntry, build_safetensors};
pub use shard_index::{MAX_INDEX_LEN, ShardIndex};
