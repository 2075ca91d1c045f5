//! Reading model checkpoints strictly, hashing them fast, and signing attestations.
//!
//! The modules follow the data flow: [`reading`] turns a path into a [`reading::Checkpoint`]
//! (safe relative paths, strict safetensors headers, shard indexes); [`hashing`] computes
//! SHA-256 and BLAKE3 of every file (through memory maps when the file is in the page cache,
//! streamed from the disk otherwise) and the OpenSSF model-signing root;
//! [`signing`] (feature `signing`, on by default) turns claims and digests into signed
//! envelopes and `model.sig` bundles. [`keys`] holds what verifying needs of keys: public keys
//! and key ids. Nothing here prints or exits.

// Libraries report through return values and `tracing`; printing and exiting are the program's.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]
// Memory maps, O_DIRECT buffers, mincore and SIGBUS handling need `unsafe`: each block says why
// it holds.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod hashing;
pub mod io;
pub mod keys;
pub mod reading;
#[cfg(feature = "signing")]
pub mod signing;
pub mod toml_error;
pub mod toml_time;
