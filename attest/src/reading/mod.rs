//! Reading a checkpoint strictly: which files it has (discovery and path rules), each safetensors
//! header and shard index checked, before any byte is hashed.

mod checkpoint;
mod discover;
mod error;
mod hf_cache;
mod ignore_paths;
mod output_paths;
mod path_rules;
mod safetensors_header;
mod shard_index;

pub use checkpoint::{Checkpoint, CheckpointFile, FileIdentity, FileKind, ParameterCount};
pub use discover::{FoundFile, OpenOptions, ReadPath, discover, refuse_hf_cache_repository};
pub use error::CheckpointError;
pub use hf_cache::{HfCacheError, HfDownload, find_snapshot, hf_download_layout, hub_cache_dir};
pub use ignore_paths::resolve_ignore_paths;
pub use output_paths::{default_attestation_path, default_oms_signature_path, relative_inside};
pub use path_rules::{UnsafePath, check_relative_path, component_order};
#[cfg(test)]
pub(crate) use safetensors_header::build_safetensors;
pub use safetensors_header::{SafetensorsHeader, TensorEntry};
pub use shard_index::ShardIndex;
