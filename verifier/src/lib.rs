//! Verification of weightgate attestations against checkpoints and a policy.
//!
//! [`verify`] runs every check in the order docs/verify.md describes and returns a [`Decision`]
//! (allow or deny, stable reason codes, the facts read). [`Policy`] holds trusted keys,
//! revocations and regimes; regime presets are data (`presets.toml`). This crate never holds
//! private keys, prints or exits.

pub mod audit;
mod decision;
mod lineage;
mod oms;
mod policy;
pub mod reason;
mod regime;
pub mod server;
mod signature;
pub mod store;
mod subject;
mod verify;

pub use decision::{Check, Decision, Facts, Outcome, Reason, RegimeFact};
pub use oms::{OmsReport, OmsRequest, check_oms};
pub use policy::{
    Factor, Issuer, ModelSigningKey, Policy, PolicyError, VerifyDigest, presets, toml_time,
};
pub use regime::{Comparator, Context, Regime, RegimeOutcome, VerifiedGrant, evaluate};
pub use signature::{SignatureFinding, TrustedKey, check_signatures, distinct_valid_keys};
pub use subject::{DigestMode, SubjectProblem, SubjectReport, check_subject};
pub use verify::{VerifyError, VerifyRequest, verify};
