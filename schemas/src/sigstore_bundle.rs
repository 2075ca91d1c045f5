//! The Sigstore bundle v0.3 JSON (protobuf-specs `Bundle` in its JSON mapping) as serde
//! structures: a bundle is checked against this shape while it is parsed, so a hostile file
//! never becomes a JSON tree; fields no verifier reads are skipped without being kept.
//! Protobuf JSON allows `null` for any field and 64-bit integers as strings, so both are read.

use serde::{Deserialize, Deserializer};

/// Most elements read from any list of a bundle (certificates, log entries, signatures): a
/// real bundle has one to four; a longer list is refused while it is read, before its
/// elements cost memory.
pub const MAX_LIST: usize = 16;

/// A list of at most `N` elements, refused at element `N + 1`.
fn at_most<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    struct AtMost<T, const N: usize>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for AtMost<T, N> {
        type Value = Option<Vec<T>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of at most {N} elements")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<T>()? {
                if out.len() == N {
                    return Err(serde::de::Error::custom(format!(
                        "a list of more than {N} elements"
                    )));
                }
                out.push(item);
            }
            Ok(Some(out))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(self)
        }
    }
    d.deserialize_option(AtMost::<T, N>(std::marker::PhantomData))
}

/// The top level.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawBundle {
    pub media_type: Option<String>,
    pub verification_material: Option<RawMaterial>,
    pub dsse_envelope: Option<RawDsse>,
    /// Only noticed, to name a message-signature bundle as such.
    pub message_signature: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawMaterial {
    pub public_key: Option<RawPublicKey>,
    pub x509_certificate_chain: Option<RawChain>,
    pub certificate: Option<RawCertificate>,
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_LIST>")]
    pub tlog_entries: Option<Vec<TlogEntry>>,
    pub timestamp_verification_data: Option<RawTimestampData>,
}

/// `timestampVerificationData`: RFC 3161 timestamps over the signature.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawTimestampData {
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_LIST>")]
    pub rfc3161_timestamps: Option<Vec<RawTimestamp>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawTimestamp {
    /// Base64 of a DER `TimeStampResp` (RFC 3161 2.4.2).
    pub signed_timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawPublicKey {
    pub hint: Option<String>,
    pub raw_bytes: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawChain {
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_LIST>")]
    pub certificates: Option<Vec<RawCertificate>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawCertificate {
    pub raw_bytes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawDsse {
    pub payload: Option<String>,
    pub payload_type: Option<String>,
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_LIST>")]
    pub signatures: Option<Vec<RawSignature>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawSignature {
    pub sig: Option<String>,
}

/// A transparency-log entry (`TransparencyLogEntry`), as the bundle carries it: base64 and
/// decimal strings undecoded; the Sigstore verifier decodes what it checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlogEntry {
    #[serde(deserialize_with = "int_or_string")]
    pub log_index: Option<String>,
    pub log_id: Option<LogId>,
    pub kind_version: Option<KindVersion>,
    #[serde(deserialize_with = "int_or_string")]
    pub integrated_time: Option<String>,
    pub inclusion_promise: Option<InclusionPromise>,
    pub inclusion_proof: Option<InclusionProof>,
    /// Base64 of the canonical Rekor entry body.
    pub canonicalized_body: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogId {
    /// Base64 of the SHA-256 of the log's public key (DER).
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KindVersion {
    pub kind: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InclusionPromise {
    /// Base64 of the log's signature over the entry (the signed entry timestamp).
    pub signed_entry_timestamp: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InclusionProof {
    #[serde(deserialize_with = "int_or_string")]
    pub log_index: Option<String>,
    /// Base64 of the tree's root hash.
    pub root_hash: Option<String>,
    #[serde(deserialize_with = "int_or_string")]
    pub tree_size: Option<String>,
    /// Base64 of each sibling hash, leaf to root (64 cover a tree of 2^64 entries).
    #[serde(deserialize_with = "at_most::<_, _, 64>")]
    pub hashes: Option<Vec<String>>,
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    /// The signed note text.
    pub envelope: Option<String>,
}

/// A protobuf int64 in JSON: a decimal string, or a number. A visitor, not an untagged enum:
/// that would buffer whatever stands there (say a huge array) as a tree first.
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct IntOrString;
    impl<'de> serde::de::Visitor<'de> for IntOrString {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer or a decimal string")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(IntOrString)
        }
    }
    d.deserialize_option(IntOrString)
}

/// Only the `predicateType` of an in-toto statement; every other member is skipped unkept.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PredicateTypeOnly {
    pub predicate_type: Option<String>,
}
