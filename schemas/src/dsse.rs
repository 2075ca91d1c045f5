//! DSSE v1 in CBOR: the envelope and the pre-authentication encoding signatures cover.

use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};

/// Payload type of a weightgate attestation (a [`crate::Statement`]).
pub const ATTESTATION_PAYLOAD_TYPE: &str = "application/vnd.weightgate.attestation.v1+cbor";
/// Payload type of a [`crate::Grant`]: a reference countersigned by its issuer.
pub const GRANT_PAYLOAD_TYPE: &str = "application/vnd.weightgate.grant.v1+cbor";
/// Largest envelope accepted (a statement with per-tensor digests of a 100k-tensor model fits).
pub const MAX_ENVELOPE_LEN: usize = 17 << 20;

/// `PAE(type, body)` = `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// One signature. `keyid` is an unauthenticated hint (lowercase hex SHA-256 of the signer's SPKI
/// DER); verifiers try the trusted key it names and never trust it by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    #[serde(with = "cbor::bytes")]
    pub sig: Vec<u8>,
    pub keyid: String,
}

/// A DSSE envelope as a CBOR map. Field order is RFC 8949 core-deterministic key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(with = "cbor::bytes")]
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        cbor::to_vec(self)
    }

    /// Strict decode; signatures are not checked here.
    pub fn decode_strict(bytes: &[u8]) -> Result<Self, CborError> {
        cbor::from_slice_strict(bytes, MAX_ENVELOPE_LEN)
    }

    /// The bytes a signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelope_round_trips_strictly() {
        let e = Envelope {
            payload: vec![1, 2, 3],
            signatures: vec![Signature {
                sig: vec![9; 64],
                keyid: "ab".repeat(32),
            }],
            payload_type: ATTESTATION_PAYLOAD_TYPE.into(),
        };
        let bytes = e.encode();
        assert_eq!(bytes[0], 0xa3);
        assert_eq!(Envelope::decode_strict(&bytes).unwrap(), e);
    }
}
