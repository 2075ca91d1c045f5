//! Verification of weightgate attestations against checkpoints and a policy.
//!
//! [`verify`] runs the [`stages`] in the order docs/verify.md describes and returns a
//! [`Decision`] (allow or deny, stable reason codes, the facts read), made of typed
//! [`finding`]s that [`render`] alone turns into sentences. [`policy::Policy`] holds
//! trusted keys, revocations and regimes; regime presets are data (`policy/presets.toml`);
//! [`trust`] holds every kind of trusted key and certificate root, for both.
//! [`inputs`] reads attestations and grants within the format's caps. With the `gate` feature,
//! [`gate`] adds the admitted store, the HTTP gate and its audit log. This crate links no
//! private-key or signing code, and never prints, exits or handles signals.

// Libraries report through return values and `tracing`; printing and exiting are the program's.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]
// Only the gate calls the OS directly (sendfile, getrlimit); each block says why it holds.
#![cfg_attr(not(feature = "gate"), forbid(unsafe_code))]
#![deny(clippy::undocumented_unsafe_blocks)]

mod decision;
mod downloaded;
pub mod finding;
#[cfg(feature = "gate")]
pub mod gate;
pub mod inputs;
pub mod model_sig;
pub mod policy;
pub mod reason;
pub mod render;
pub mod sigstore_keyless;
pub mod stages;
pub mod trust;
mod verify;

pub use decision::{
    Check, CheckName, CheckOutcome, CheckResult, Decision, Facts, Reason, RegimeFact, RegimeResult,
};
pub use verify::{VerifyError, VerifyRequest, authenticate_envelope, verify};
