//! The gate (feature `gate`): the admitted store, the Hugging Face-compatible server that answers
//! 451 for what the policy refuses, and the audit log. A library user who only verifies builds
//! none of it and no HTTP stack.

pub mod admit;
#[cfg(feature = "bucket")]
pub mod admit_bucket;
pub mod audit;
pub mod blob_body;
#[cfg(feature = "bucket")]
pub mod bucket_download;
pub mod server;
pub mod store;
