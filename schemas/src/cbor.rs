//! Strict CBOR (RFC 8949) through ciborium: the only module that touches the encoding.
//!
//! Strict decoding = size cap, recursion limit, no trailing bytes, then re-encode and require the
//! same bytes. The last rule refuses every non-canonical form at once: non-shortest integers and
//! lengths, indefinite lengths, bignums that fit a plain integer, tags, duplicate or misordered
//! map keys, explicit `null`/`undefined` for absent fields, and (with `deny_unknown_fields`)
//! unknown fields. It relies on `T` being a fixed struct: decoding into a generic value such as
//! `ciborium::Value` keeps duplicate keys and so re-encodes them unchanged.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Nesting depth accepted; our deepest type nests six levels.
pub const RECURSION_LIMIT: usize = 32;

/// Why bytes were refused (or, for [`CborError::Unencodable`], could not be produced).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("input is {len} bytes, over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("malformed CBOR: input ends inside an item")]
    Truncated,
    #[error("malformed CBOR: not well-formed at byte {offset}")]
    Malformed { offset: usize },
    /// Well-formed CBOR of the wrong shape: wrong type, missing, unknown or duplicate field,
    /// digest of the wrong length.
    #[error("malformed CBOR: {message}{}", at(*.offset))]
    Schema {
        offset: Option<usize>,
        message: String,
    },
    #[error("{count} trailing bytes after the CBOR item")]
    TrailingBytes { count: usize },
    #[error(
        "not in canonical form from byte {offset} (non-shortest integer or length, indefinite \
         length, tag, misordered key, or null)"
    )]
    NonCanonical { offset: usize },
    #[error("cannot encode: {0}")]
    Unencodable(String),
}

fn at(offset: Option<usize>) -> String {
    offset
        .map(|o| format!(" (item at byte {o})"))
        .unwrap_or_default()
}

/// Encodes a value. Never fails for this crate's types (no floats, maps or unknown lengths).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|e| CborError::Unencodable(e.to_string()))?;
    Ok(out)
}

/// Decodes `bytes` strictly (see the module docs).
pub fn from_slice_strict<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, CborError> {
    let mut reader = bytes;
    let value: T = decode(&mut reader, max_len)?;
    if !reader.is_empty() {
        return Err(CborError::TrailingBytes {
            count: reader.len(),
        });
    }
    // Re-encode into a comparison, not a buffer: a 33 MiB envelope must not cost 33 MiB more.
    let mut compare = CompareWriter {
        expected: bytes,
        written: 0,
        first_difference: None,
    };
    ciborium::ser::into_writer(&value, &mut compare)
        .map_err(|e| CborError::Unencodable(e.to_string()))?;
    let offset = compare
        .first_difference
        .or((compare.written != bytes.len()).then(|| compare.written.min(bytes.len())));
    match offset {
        Some(offset) => Err(CborError::NonCanonical { offset }),
        None => Ok(value),
    }
}

/// A writer that compares what is written with `expected` and remembers the first difference.
struct CompareWriter<'a> {
    expected: &'a [u8],
    written: usize,
    first_difference: Option<usize>,
}

impl std::io::Write for CompareWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.first_difference.is_none() {
            let rest = self.expected.get(self.written..).unwrap_or(&[]);
            let same = buf.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if same < buf.len() {
                self.first_difference = Some(self.written + same);
            }
        }
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes with the size cap and recursion limit only, ignoring trailing bytes and encoding
/// form. For diagnostics (e.g. reading a schema version out of bytes that failed strict decoding);
/// never for accepting data.
pub(crate) fn from_slice_lenient<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Option<T> {
    decode(&mut &bytes[..], max_len).ok()
}

fn decode<T: DeserializeOwned>(reader: &mut &[u8], max_len: usize) -> Result<T, CborError> {
    if reader.len() > max_len {
        return Err(CborError::TooLarge {
            len: reader.len(),
            max: max_len,
        });
    }
    ciborium::de::from_reader_with_recursion_limit(reader, RECURSION_LIMIT).map_err(|e| match e {
        ciborium::de::Error::RecursionLimitExceeded => CborError::TooDeep {
            limit: RECURSION_LIMIT,
        },
        ciborium::de::Error::Io(_) => CborError::Truncated,
        ciborium::de::Error::Syntax(offset) => CborError::Malformed { offset },
        ciborium::de::Error::Semantic(offset, message) => CborError::Schema { offset, message },
    })
}

/// Serde helper for DSSE byte fields (payload, signature): a CBOR byte string (major type 2, not
/// an array of integers); base64 in human-readable formats, as in the DSSE JSON envelope.
pub(crate) mod bytes {
    use base64::Engine;
    use base64::engine::{
        DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose,
    };
    use serde::{Deserializer, Serializer, de};

    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    // DSSE: verifiers MUST accept standard and URL-safe base64.
    const STANDARD_IN: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE_IN: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&general_purpose::STANDARD.encode(v))
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
                STANDARD_IN
                    .decode(v)
                    .or_else(|_| URL_SAFE_IN.decode(v))
                    .map_err(|_| E::custom("expected base64"))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            // `byte_buf`, not `bytes`: ciborium serves `bytes` only up to its 4 KiB scratch buffer.
            d.deserialize_byte_buf(V)
        }
    }
}

/// A byte string with the DSSE serde helper, for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    pub struct Bytes(#[serde(with = "super::bytes")] pub Vec<u8>);
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

    fn strict(bytes: &[u8]) -> Result<T, CborError> {
        from_slice_strict::<T>(bytes, 1000)
    }

    #[test]
    fn ciborium_is_not_human_readable() {
        struct Probe;
        impl Serialize for Probe {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let human = s.is_human_readable();
                s.serialize_bool(human)
            }
        }
        assert_eq!(to_vec(&Probe).unwrap(), [0xf4]); // false
        assert_eq!(serde_json::to_string(&Probe).unwrap(), "true");
    }

    #[test]
    fn u128_is_a_plain_int_up_to_u64_and_a_bignum_above() {
        assert_eq!(
            to_vec(&u128::from(u64::MAX)).unwrap(),
            [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        let mut big = vec![0xc2, 0x49, 0x01];
        big.extend([0; 8]);
        assert_eq!(to_vec(&(u128::from(u64::MAX) + 1)).unwrap(), big);
        // 10^26 = 0x52b7d2dcc80cd2e4000000: tag 2, 11-byte string.
        let e26 = 10u128.pow(26);
        let bytes = to_vec(&e26).unwrap();
        assert_eq!(bytes, hex::decode("c24b52b7d2dcc80cd2e4000000").unwrap());
        assert_eq!(from_slice_strict::<u128>(&bytes, 100).unwrap(), e26);
        for v in [
            0,
            23,
            24,
            255,
            256,
            1 << 32,
            u128::from(u64::MAX),
            u128::MAX,
        ] {
            assert_eq!(
                from_slice_strict::<u128>(&to_vec(&v).unwrap(), 100).unwrap(),
                v
            );
        }
        // A bignum that fits u64, or has a leading zero, is not canonical.
        assert_eq!(
            from_slice_strict::<u128>(&[0xc2, 0x41, 0x05], 100).unwrap_err(),
            CborError::NonCanonical { offset: 0 }
        );
        let padded = hex::decode("c24c0052b7d2dcc80cd2e4000000").unwrap();
        assert_eq!(
            from_slice_strict::<u128>(&padded, 100).unwrap_err(),
            CborError::NonCanonical { offset: 1 }
        );
        // 17 bytes does not fit.
        let mut huge = vec![0xc2, 0x51];
        huge.extend([1; 17]);
        assert!(matches!(
            from_slice_strict::<u128>(&huge, 100),
            Err(CborError::Schema { .. })
        ));
    }

    #[test]
    fn refuses_each_non_canonical_form() {
        let v = T { a: 1, bb: 2 };
        let canonical = to_vec(&v).unwrap();
        assert_eq!(canonical, [0xa2, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02]);
        assert_eq!(strict(&canonical).unwrap(), v);
        let cases: &[(&str, &[u8], CborError)] = &[
            (
                "non-shortest int",
                &[0xa2, 0x61, b'a', 0x18, 0x01, 0x62, b'b', b'b', 0x02],
                CborError::NonCanonical { offset: 3 },
            ),
            (
                "non-shortest map length",
                &[0xb8, 0x02, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02],
                CborError::NonCanonical { offset: 0 },
            ),
            (
                "non-shortest key length",
                &[0xa2, 0x78, 0x01, b'a', 0x01, 0x62, b'b', b'b', 0x02],
                CborError::NonCanonical { offset: 1 },
            ),
            (
                "indefinite map",
                &[0xbf, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02, 0xff],
                CborError::NonCanonical { offset: 0 },
            ),
            (
                "reordered keys",
                &[0xa2, 0x62, b'b', b'b', 0x02, 0x61, b'a', 0x01],
                CborError::NonCanonical { offset: 1 },
            ),
            (
                "tagged int",
                &[0xa2, 0x61, b'a', 0xc1, 0x01, 0x62, b'b', b'b', 0x02],
                CborError::NonCanonical { offset: 3 },
            ),
            (
                "self-describe tag",
                &[
                    0xd9, 0xd9, 0xf7, 0xa2, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02,
                ],
                CborError::NonCanonical { offset: 0 },
            ),
            (
                "trailing byte",
                &[0xa2, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02, 0x00],
                CborError::TrailingBytes { count: 1 },
            ),
            (
                "truncated",
                &[0xa2, 0x61, b'a', 0x01, 0x62, b'b'],
                CborError::Truncated,
            ),
            (
                "reserved additional info",
                &[0xa2, 0x61, b'a', 0x1c],
                CborError::Malformed { offset: 3 },
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(strict(bytes).unwrap_err(), *want, "{name}");
        }
        let schema = |bytes: &[u8], needle: &str| match strict(bytes) {
            Err(CborError::Schema { message, .. }) => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("{other:?}"),
        };
        schema(
            &[
                0xa3, 0x61, b'a', 0x01, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02,
            ],
            "duplicate field",
        );
        schema(
            &[
                0xa3, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0x02, 0x61, b'c', 0x01,
            ],
            "unknown field",
        );
        schema(&[0xa1, 0x61, b'a', 0x01], "missing field");
        schema(&[0x82, 0x01, 0x02], "expected map");
        // ciborium reads field names only as definite-length strings.
        schema(
            &[0xa2, 0x7f, 0x61, b'a', 0xff, 0x01, 0x62, b'b', b'b', 0x02],
            "expected str or bytes",
        );
        schema(
            &[0xa2, 0x61, b'a', 0x20, 0x62, b'b', b'b', 0x02],
            "negative",
        );
    }

    #[test]
    fn size_cap_applies_before_parsing() {
        let bytes = to_vec(&T { a: 1, bb: 2 }).unwrap();
        assert_eq!(
            from_slice_strict::<T>(&bytes, 8).unwrap(),
            T { a: 1, bb: 2 }
        );
        assert_eq!(
            from_slice_strict::<T>(&bytes, 7).unwrap_err(),
            CborError::TooLarge { len: 8, max: 7 }
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for head in [0x81u8, 0xc6] {
            // 10^5 nested one-element arrays, or 10^5 nested tags.
            let mut deep = vec![head; 100_000];
            deep.push(0x00);
            assert_eq!(
                from_slice_strict::<ciborium::Value>(&deep, 1 << 20).unwrap_err(),
                CborError::TooDeep {
                    limit: RECURSION_LIMIT
                }
            );
        }
        let mut deep = vec![0x81u8; 100_000];
        deep.push(0x00);
        assert!(from_slice_strict::<T>(&deep, 1 << 20).is_err());
        assert!(from_slice_strict::<Vec<ciborium::Value>>(&deep, 1 << 20).is_err());
    }

    #[test]
    fn byte_fields_are_byte_strings_of_any_length() {
        use tests_support::Bytes as B;
        for len in [0usize, 1, 23, 24, 4096, 4097, 100_000] {
            let v = B(vec![7; len]);
            let enc = to_vec(&v).unwrap();
            assert_eq!(enc[0] >> 5, 2, "major type 2");
            assert_eq!(from_slice_strict::<B>(&enc, 1 << 20).unwrap(), v);
        }
        // Indefinite-length byte string: decodes, then refused as non-canonical.
        assert_eq!(
            from_slice_strict::<B>(&[0x5f, 0x41, 0x07, 0x41, 0x07, 0xff], 100).unwrap_err(),
            CborError::NonCanonical { offset: 0 }
        );
        // An array of small ints is not a byte string.
        assert!(from_slice_strict::<B>(&[0x82, 0x07, 0x07], 100).is_err());
        assert_eq!(
            serde_json::to_string(&B(b"hi?".to_vec())).unwrap(),
            r#""aGk/""#
        );
        assert_eq!(
            serde_json::from_str::<B>(r#""aGk_""#).unwrap(),
            B(b"hi?".to_vec())
        );
        assert_eq!(
            serde_json::from_str::<B>(r#""aGk""#).unwrap(),
            B(b"hi".to_vec())
        );
    }
}
