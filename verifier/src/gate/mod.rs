//! The gate (feature `gate`): the admitted store, admission into it, and the server by job: the
//! decision part (verdicts, cache, clock), the Hugging Face-compatible Hub API that answers 451
//! for what the policy refuses, the listener, and the audit log. A library user who
//! only verifies builds none of it and no HTTP stack.

pub mod admission;
pub mod audit;
pub mod blob_body;
pub mod bulk;
pub mod decision;
pub mod disclosure;
pub mod hub_api;
pub mod listener;
pub mod listing;
pub mod pages;
pub mod store;
pub mod upload;
pub mod upstream_body;
pub mod xet;
pub mod zero_copy;

/// Runs CPU- or disk-bound work from async code: in `block_in_place` on a multi-threaded
/// runtime, so other tasks move to other workers; inline on a current-thread runtime, which
/// has no other worker to give them to (and where `block_in_place` would panic).
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
