//! The stages every verification runs, in order, each returning a type that carries what it
//! established: [`authenticate`] (envelope bytes to an [`Authenticated`] statement signed by
//! enough trusted, unrevoked keys), [`bind`] (statement to bytes on disk, a staged copy, or the
//! facts recorded at admission: [`Bound`]), [`judge`] (policy, regimes, lineage and grants to a
//! decision).

mod authenticate;
mod bind;
mod judge;
mod lineage;
mod signature;

pub use authenticate::{Authenticated, authenticate, authenticate_grants};
pub use bind::{
    AdmittedFacts, Bound, DigestMode, SubjectReport, SubjectScope, SubjectSource, bind,
    check_subject,
};
pub use judge::judge;
pub use signature::{SignatureFinding, check_signatures, distinct_valid_keys};
