//! The weightgate wire format.
//!
//! A lab's [`Statement`] (model, subject digests, training compute, responsible entity,
//! references) is encoded as canonical CBOR and signed inside a DSSE-shaped [`Envelope`]
//! (also CBOR). Decoding is strict everywhere: anything that would not re-encode to the same
//! bytes is refused. `weightgate.cddl` beside this crate is the normative schema.
//! This crate does no I/O and no hashing.

pub mod cbor;
pub mod country;
mod digest;
mod dsse;
pub mod json_view;
pub mod lei;
mod ops;
mod statement;

pub use cbor::CborError;
pub use digest::Digest;
pub use dsse::{
    ATTESTATION_PAYLOAD_TYPE, Envelope, GRANT_PAYLOAD_TYPE, MAX_ENVELOPE_LEN, Signature, pae,
};
pub use ops::{Ops, OpsParseError};
pub use statement::{
    BaseModel, Components, Compute, Entity, EstimationInputs, EstimationMethod, FileEntry, Grant,
    MAX_STATEMENT_LEN, Model, Reference, ReferenceKind, SCHEMA_VERSION, Statement, StatementError,
    Subject, TensorDigest,
};
