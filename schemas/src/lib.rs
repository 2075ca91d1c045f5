//! The weightgate wire format.
//!
//! A lab signs a [`Statement`] (the checkpoint's file digests, its training [`Compute`], the
//! responsible [`Entity`] and any licence or notification [`Reference`]s) into a DSSE
//! [`Envelope`]; an issuer such as a licensing authority signs a [`Grant`] the same way.
//! Everything on the wire is CBOR (RFC 8949), decoded strictly: a size cap, a nesting limit,
//! no trailing bytes, and the input must be exactly the canonical encoding of the decoded value
//! (see [`cbor`]). The normative schema is `weightgate.cddl` beside this crate.
//!
//! The crate does no I/O, no hashing and no signing, and never panics on input.
//!
//! ```
//! use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, pae};
//!
//! let envelope = Envelope {
//!     payload: b"\xa0".to_vec(),
//!     signatures: vec![],
//!     payload_type: ATTESTATION_PAYLOAD_TYPE.to_string(),
//! };
//! let bytes = envelope.encode();
//! assert_eq!(Envelope::decode_strict(&bytes)?, envelope);
//! // What a signer signs:
//! assert!(envelope.signed_bytes().starts_with(b"DSSEv1 46 application/vnd.weightgate."));
//! assert_eq!(envelope.signed_bytes(), pae(&envelope.payload_type, &envelope.payload));
//! # Ok::<(), weightgate_schemas::CborError>(())
//! ```

// Libraries report through return values and `tracing`; printing and exiting are the program's.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]
#![forbid(unsafe_code)]

pub mod accelerators;
pub mod cbor;
mod compute;
pub mod country;
pub mod cyclonedx;
mod digest;
mod dsse;
mod entity;
mod error;
pub mod estimate;
pub mod file_names;
mod grant;
pub mod intoto;
pub mod json_view;
pub mod lei;
pub mod oms;
mod ops;
mod reference;
pub mod sigstore_bundle;
mod statement;

pub use cbor::CborError;
pub use compute::{BaseModel, Components, Compute, EstimationInputs, EstimationMethod, Precision};
pub use digest::Digest;
pub use dsse::{
    ATTESTATION_PAYLOAD_TYPE, Envelope, GRANT_PAYLOAD_TYPE, MAX_ENVELOPE_LEN, Signature, pae,
};
pub use entity::{Entity, Revenue};
pub use error::StatementError;
pub use grant::{Grant, MAX_GRANT_LEN};
pub use ops::{Ops, OpsParseError};
pub use reference::{Reference, ReferenceKind};
pub use statement::{
    FileEntry, MAX_STATEMENT_LEN, Model, SCHEMA_VERSION, Statement, Subject, TensorDigest,
    equivalence_key,
};
