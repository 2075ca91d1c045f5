//! 32-byte digests: CBOR byte strings of exactly 32 bytes, lowercase hex for people.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A SHA-256 or BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Digest(out))
    }
}

impl From<[u8; 32]> for Digest {
    fn from(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 32-byte digest")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Digest, E> {
                <[u8; 32]>::try_from(v).map(Digest).map_err(|_| {
                    E::custom(format_args!("digest of {} bytes, expected 32", v.len()))
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Digest, E> {
                Digest::from_hex(v).ok_or_else(|| E::custom("expected 64 lowercase hex digits"))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::{CborError, from_slice_strict, to_vec};

    #[test]
    fn hex_is_lowercase_and_exactly_64_digits() {
        let d = Digest([0xab; 32]);
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(d.to_string(), "ab".repeat(32));
        for bad in [
            "AB".repeat(32),
            "ab".repeat(31),
            "ab".repeat(33),
            "zz".repeat(32),
            String::new(),
        ] {
            assert_eq!(Digest::from_hex(&bad), None, "{bad}");
        }
    }

    #[test]
    fn cbor_is_a_32_byte_string_and_json_is_hex() {
        let d = Digest([1; 32]);
        let enc = to_vec(&d).unwrap();
        assert_eq!(&enc[..2], [0x58, 0x20]);
        assert_eq!(from_slice_strict::<Digest>(&enc, 100).unwrap(), d);
        assert_eq!(
            serde_json::to_value(d).unwrap(),
            serde_json::json!("01".repeat(32))
        );
        assert_eq!(
            serde_json::from_value::<Digest>(serde_json::json!("01".repeat(32))).unwrap(),
            d
        );
        for len in [0usize, 31, 33, 64] {
            let enc = to_vec(&crate::cbor::tests_support::Bytes(vec![1; len])).unwrap();
            match from_slice_strict::<Digest>(&enc, 100) {
                Err(CborError::Schema { message, .. }) => {
                    assert!(
                        message.contains(&format!("{len} bytes, expected 32")),
                        "{message}"
                    )
                }
                other => panic!("{len}: {other:?}"),
            }
        }
        // Hex text where bytes belong, and an array of 32 ints, are refused.
        assert!(from_slice_strict::<Digest>(&to_vec(&d.to_hex()).unwrap(), 100).is_err());
        assert!(from_slice_strict::<Digest>(&to_vec(&[1u8; 32]).unwrap(), 100).is_err());
    }
}
