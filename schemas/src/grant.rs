//! A grant: an issuer's own signed statement that a reference covers a model.

use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::digest::Digest;
use crate::error::StatementError;
use crate::reference::Reference;

/// Largest grant accepted; a grant is a reference and a digest.
pub const MAX_GRANT_LEN: usize = 64 << 10;

/// Payload of a [`crate::GRANT_PAYLOAD_TYPE`] envelope, signed by the issuer (a licensing
/// authority, say): `reference` covers the model whose root digest is `root_sha256`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Unix seconds.
    pub issued_at: i64,
    pub reference: Reference,
    pub root_sha256: Digest,
}

impl Grant {
    /// Strict decode (see [`crate::cbor`]).
    pub fn decode_strict(bytes: &[u8]) -> Result<Self, StatementError> {
        Ok(cbor::from_slice_strict(bytes, MAX_GRANT_LEN)?)
    }

    /// Canonical CBOR.
    pub fn encode(&self) -> Vec<u8> {
        // Strings, integers, byte strings and arrays of known length always encode.
        cbor::to_vec(self).expect("a grant always encodes")
    }
}
