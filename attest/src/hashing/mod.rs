//! Hashing a checkpoint's bytes: each file mapped once (with a guard that turns a file truncated
//! under its mapping into an error), SHA-256 and BLAKE3 from the same mapping, files scheduled
//! over the cores by the engine, two SHA-256 streams interleaved on one core. Files that are not
//! in the page cache are streamed from the disk instead, reads kept in flight ahead of both
//! hashers (`stream_hash`). Files being copied (admission) are read once into private buffers,
//! hashed there and written from there (`while_copied`).

mod aligned;
mod engine;
mod mapped_file;
mod oms;
mod sha256;
mod sha256_x2;
mod sigbus;
mod stream_hash;
mod while_copied;

pub use engine::{
    Algorithms, CheckpointDigests, FileDigests, HashOptions, TensorBlake3, hash_checkpoint,
    root_digest, work_bytes,
};
pub use mapped_file::MappedFile;
pub use oms::{OmsSerialization, oms_resources};
pub use sha256::Progress;
pub use while_copied::{FileCopy, copy_and_hash};
