//! DSSE v1 (secure-systems-lab/dsse, protocol 1.0.2) in CBOR: the signed envelope and its PAE.
//!
//! Signatures cover `PAE(payloadType, payload)` over the exact payload bytes; verifiers check them
//! before decoding the payload and never re-encode what was signed. Signing lives in
//! `weightgate-attest`, verification in `weightgate-verifier`; this module holds the shapes only.

use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError};

/// `payloadType` of an envelope whose payload is a CBOR [`crate::Statement`].
pub const ATTESTATION_PAYLOAD_TYPE: &str = "application/vnd.weightgate.attestation.v1+cbor";
/// `payloadType` of an envelope whose payload is a CBOR [`crate::Grant`] signed by its issuer.
pub const GRANT_PAYLOAD_TYPE: &str = "application/vnd.weightgate.grant.v1+cbor";

/// Largest envelope accepted: the largest statement plus room for signatures.
pub const MAX_ENVELOPE_LEN: usize = crate::MAX_STATEMENT_LEN + (1 << 20);

/// DSSE pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in ASCII decimal. This, not the envelope, is what gets signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let head = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    );
    let mut out = Vec::with_capacity(head.len() + payload.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// A signed payload: `{"payload": bstr, "signatures": [...], "payloadType": tstr}`.
///
/// Fields are declared in RFC 8949 core-deterministic key order (shorter key first, then
/// bytewise), which is the order ciborium writes them in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(with = "cbor::bytes")]
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
}

/// One signature over the envelope's PAE.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Ed25519 signature (64 bytes in a valid envelope).
    #[serde(with = "cbor::bytes")]
    pub sig: Vec<u8>,
    /// Lowercase hex SHA-256 of the signer's SPKI DER. A hint for finding the key: never trusted.
    pub keyid: String,
}

impl Envelope {
    /// Strict decode (see [`crate::cbor`]). Neither the signatures nor the payload are looked
    /// at: a malformed signature is the verifier's finding, not a reason to refuse the others.
    pub fn decode_strict(bytes: &[u8]) -> Result<Self, CborError> {
        cbor::from_slice_strict(bytes, MAX_ENVELOPE_LEN)
    }

    /// Canonical CBOR.
    pub fn encode(&self) -> Vec<u8> {
        // Strings, byte strings and arrays of known length always encode.
        cbor::to_vec(self).expect("an envelope always encodes")
    }

    /// The bytes each signature covers: `PAE(payloadType, payload)`.
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
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        // Lengths are bytes, not characters.
        assert_eq!(pae("é", b"\x00"), "DSSEv1 2 é 1 \0".as_bytes());
    }

    fn envelope() -> Envelope {
        Envelope {
            payload: vec![0xa0],
            signatures: vec![Signature {
                sig: vec![1; 64],
                keyid: "ab".repeat(32),
            }],
            payload_type: ATTESTATION_PAYLOAD_TYPE.into(),
        }
    }

    #[test]
    fn round_trips() {
        let e = envelope();
        let bytes = e.encode();
        assert_eq!(&bytes[..9], b"\xa3\x67payload");
        assert_eq!(Envelope::decode_strict(&bytes).unwrap(), e);
        let unsigned = Envelope {
            signatures: vec![],
            ..envelope()
        };
        assert_eq!(
            Envelope::decode_strict(&unsigned.encode()).unwrap(),
            unsigned
        );
    }

    #[test]
    fn signature_contents_are_left_to_the_verifier() {
        let mut e = envelope();
        e.signatures[0].sig.pop();
        e.signatures[0].keyid = "not hex".into();
        assert_eq!(Envelope::decode_strict(&e.encode()).unwrap(), e);
        assert_eq!(e.signed_bytes(), pae(ATTESTATION_PAYLOAD_TYPE, &[0xa0]));
    }

    #[test]
    fn json_is_the_dsse_json_envelope() {
        let v = serde_json::to_value(envelope()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "payload": "oA==",
                "payloadType": ATTESTATION_PAYLOAD_TYPE,
                "signatures": [{"keyid": "ab".repeat(32), "sig": "AQEB".repeat(21) + "AQ=="}],
            })
        );
        assert_eq!(serde_json::from_value::<Envelope>(v).unwrap(), envelope());
    }
}
