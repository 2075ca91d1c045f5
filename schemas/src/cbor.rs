//! Strict CBOR (RFC 8949) through ciborium: the only module that touches the encoding.
//!
//! Strict decoding = size cap, recursion limit, no trailing bytes, then re-encode and require the
//! same bytes. The last rule refuses every non-canonical form at once: non-shortest integers,
//! indefinite lengths, duplicate or reordered map keys, explicit nulls for absent fields, and
//! (with `deny_unknown_fields`) unknown fields.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Nesting depth accepted; our deepest type nests six levels.
pub const RECURSION_LIMIT: usize = 32;

/// Why bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("{len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("nested deeper than {RECURSION_LIMIT} levels")]
    TooDeep,
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the CBOR item")]
    TrailingBytes(usize),
    #[error(
        "not in canonical form (non-shortest integer, indefinite length, duplicate or misordered key, or explicit null)"
    )]
    NonCanonical,
}

/// Encodes a value. Our types hold no floats, maps with non-string keys or I/O, so encoding
/// into a `Vec` cannot fail; a failure would be a bug, reported as an empty vector never signed.
pub fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    match ciborium::ser::into_writer(value, &mut out) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// Decodes `bytes` strictly (see the module docs).
pub fn from_slice_strict<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, CborError> {
    if bytes.len() > max_len {
        return Err(CborError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let mut reader = bytes;
    let value: T = ciborium::de::from_reader_with_recursion_limit(&mut reader, RECURSION_LIMIT)
        .map_err(|e| match e {
            ciborium::de::Error::RecursionLimitExceeded => CborError::TooDeep,
            ciborium::de::Error::Io(e) => CborError::Malformed(format!("truncated: {e:?}")),
            ciborium::de::Error::Syntax(at) => {
                CborError::Malformed(format!("syntax error at byte {at}"))
            }
            ciborium::de::Error::Semantic(at, msg) => match at {
                Some(at) => CborError::Malformed(format!("{msg} (at byte {at})")),
                None => CborError::Malformed(msg),
            },
        })?;
    if !reader.is_empty() {
        return Err(CborError::TrailingBytes(reader.len()));
    }
    if to_vec(&value) != bytes {
        return Err(CborError::NonCanonical);
    }
    Ok(value)
}

/// Serde helpers for byte strings (CBOR major type 2, not an array of integers).
pub(crate) mod bytes {
    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(v))
        } else {
            s.serialize_bytes(v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                hex::decode(v).map_err(|_| E::custom("expected hex"))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            // ciborium's `deserialize_bytes` only takes strings that fit its 4 KiB scratch buffer;
            // `byte_buf` reads any length, bounded by the input we were given.
            d.deserialize_byte_buf(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: u64,
        bb: u128,
    }

    #[test]
    fn round_trips_and_refuses_non_canonical_forms() {
        let v = T {
            a: 1,
            bb: 10u128.pow(26),
        };
        let bytes = to_vec(&v);
        assert_eq!(from_slice_strict::<T>(&bytes, 1000).unwrap(), v);
        // 10^26 is a tag-2 bignum.
        assert!(bytes.windows(2).any(|w| w == [0xc2, 0x4b]));

        let small = to_vec(&T { a: 1, bb: 2 });
        assert_eq!(small, [0xa2, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02]);
        let cases: &[(&[u8], CborError)] = &[
            // `a: 1` as a one-byte-argument integer (0x18 0x01).
            (
                &[0xa2, 0x61, b'a', 0x18, 0x01, 0x62, b'b', b'b', 0x02],
                CborError::NonCanonical,
            ),
            // indefinite-length map
            (
                &[0xbf, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02, 0xff],
                CborError::NonCanonical,
            ),
            // reordered keys
            (
                &[0xa2, 0x62, b'b', b'b', 0x02, 0x61, b'a', 0x01],
                CborError::NonCanonical,
            ),
            // trailing byte
            (
                &[0xa2, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02, 0x00],
                CborError::TrailingBytes(1),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                from_slice_strict::<T>(bytes, 1000).unwrap_err(),
                *want,
                "{bytes:02x?}"
            );
        }
        // duplicate key
        let dup = [
            0xa3, 0x61, b'a', 0x01, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02,
        ];
        assert!(
            matches!(from_slice_strict::<T>(&dup, 1000), Err(CborError::Malformed(m)) if m.contains("duplicate"))
        );
        // unknown field
        let unknown = [
            0xa3, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02, 0x61, b'c', 0x01,
        ];
        assert!(
            matches!(from_slice_strict::<T>(&unknown, 1000), Err(CborError::Malformed(m)) if m.contains("unknown field"))
        );
        assert_eq!(
            from_slice_strict::<T>(&small, 4).unwrap_err(),
            CborError::TooLarge { len: 8, max: 4 }
        );
        assert!(matches!(
            from_slice_strict::<T>(&small[..5], 100),
            Err(CborError::Malformed(_))
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut deep = vec![0x81u8; 100_000];
        deep.push(0x00);
        assert_eq!(
            from_slice_strict::<ciborium::Value>(&deep, 1 << 20).unwrap_err(),
            CborError::TooDeep
        );
    }
}
