//! The stages every verification runs, in order: authenticate (envelope bytes to a statement
//! signed by enough trusted, unrevoked keys), bind (statement to bytes on disk, or to the facts
//! recorded at admission), judge (policy, regimes, lineage and grants to a decision).

pub mod bind;
mod lineage;
mod signature;

pub use bind::{DigestMode, SubjectProblem, SubjectReport, check_subject};
pub(crate) use lineage::check as check_lineage;
pub use signature::{SignatureFinding, TrustedKey, check_signatures, distinct_valid_keys};
