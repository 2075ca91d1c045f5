//! Strict safetensors header reading: only the 8-byte length and the JSON header are read.
//!
//! On top of the `safetensors` crate's own checks (run as a cross-check) this refuses what the
//! crate lets through: leading whitespace, duplicate tensor names or metadata keys, unknown
//! fields in a tensor entry, headers over [`MAX_HEADER_LEN`], and it names the tensor at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;

use safetensors::Dtype;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::error::CheckpointError;

/// Largest JSON header accepted: the limit `huggingface_hub` applies
/// (`SAFETENSORS_MAX_HEADER_LENGTH`), a quarter of the Rust crate's 100 MB.
pub(crate) const MAX_HEADER_LEN: u64 = 25_000_000;

/// One tensor as the header places it in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Byte range relative to the start of the data section.
    pub data_offsets: [u64; 2],
    #[serde(skip)]
    pub parameters: u64,
}

/// A checked safetensors header.
#[derive(Debug, Clone, Serialize)]
pub struct SafetensorsHeader {
    /// Length of the JSON header in bytes (the value of the first 8 bytes).
    pub header_len: u64,
    /// Tensors in data order.
    pub tensors: Vec<TensorEntry>,
    /// The `__metadata__` string map.
    pub metadata: BTreeMap<String, String>,
}

impl SafetensorsHeader {
    /// Where tensor data begins in the file.
    pub fn data_start(&self) -> u64 {
        8 + self.header_len
    }

    /// Element count over all tensors.
    pub fn parameters(&self) -> u64 {
        self.tensors.iter().map(|t| t.parameters).sum()
    }

    /// Reads and checks the header of the file `rel_path` (named in errors), of length `file_len`.
    pub fn read(file: &File, file_len: u64, rel_path: &str) -> Result<Self, CheckpointError> {
        let fail = |problem: String| CheckpointError::header(rel_path, problem);
        let mut len_bytes = [0u8; 8];
        if file_len >= 8 {
            file.read_exact_at(&mut len_bytes, 0)
                .map_err(|e| fail(format!("reading header length: {e}")))?;
        }
        let header_len = checked_header_len(len_bytes, file_len, rel_path)?;
        let mut header = vec![0u8; header_len];
        file.read_exact_at(&mut header, 8)
            .map_err(|e| fail(format!("reading header: {e}")))?;
        Self::parse(&header, file_len, rel_path)
    }

    /// Checks the header of a whole safetensors file image held in memory, exactly as
    /// [`SafetensorsHeader::read`] checks a file.
    pub fn from_file_bytes(file: &[u8], rel_path: &str) -> Result<Self, CheckpointError> {
        let file_len = file.len() as u64;
        let len_bytes = file
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .unwrap_or_default();
        let header_len = checked_header_len(len_bytes, file_len, rel_path)?;
        Self::parse(&file[8..8 + header_len], file_len, rel_path)
    }

    /// The header length a file of `file_len` bytes declares in its first 8 bytes, checked
    /// against the cap and the file's length: how much to read before [`Self::parse`].
    pub fn declared_len(
        len_bytes: [u8; 8],
        file_len: u64,
        rel_path: &str,
    ) -> Result<usize, CheckpointError> {
        checked_header_len(len_bytes, file_len, rel_path)
    }

    /// Checks header bytes (without the 8-byte length prefix) for a file of `file_len` bytes.
    pub fn parse(header: &[u8], file_len: u64, rel_path: &str) -> Result<Self, CheckpointError> {
        let fail = |problem: String| CheckpointError::header(rel_path, problem);
        let header_len = header.len() as u64;
        match header.first() {
            Some(b'{') => {}
            Some(b) => {
                return Err(fail(format!(
                    "header must start with `{{`, found byte 0x{b:02x}"
                )));
            }
            None => return Err(fail("header is empty".into())),
        }
        let text = std::str::from_utf8(header)
            .map_err(|e| fail(format!("header is not valid UTF-8: {e}")))?;
        let raw: RawHeader =
            serde_json::from_str(text).map_err(|e| fail(format!("header JSON: {e}")))?;

        let mut tensors = Vec::with_capacity(raw.tensors.len());
        for (name, t) in raw.tensors {
            let dtype = parse_dtype(&t.dtype)
                .ok_or_else(|| fail(format!("tensor `{name}`: unknown dtype `{}`", t.dtype)))?;
            let [start, end] = t.data_offsets;
            if end < start {
                return Err(fail(format!(
                    "tensor `{name}`: data_offsets [{start}, {end}] end before they start"
                )));
            }
            let parameters = t
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| fail(format!("tensor `{name}`: shape {:?} overflows", t.shape)))?;
            let bits = parameters
                .checked_mul(dtype.bitsize() as u64)
                .ok_or_else(|| fail(format!("tensor `{name}`: shape {:?} overflows", t.shape)))?;
            if bits % 8 != 0 {
                return Err(fail(format!(
                    "tensor `{name}`: {parameters} x {} bits is not a whole number of bytes",
                    dtype.bitsize()
                )));
            }
            if end - start != bits / 8 {
                return Err(fail(format!(
                    "tensor `{name}`: shape {:?} x {} needs {} bytes but data_offsets [{start}, {end}] span {}",
                    t.shape,
                    t.dtype,
                    bits / 8,
                    end - start
                )));
            }
            tensors.push(TensorEntry {
                name,
                dtype: t.dtype,
                shape: t.shape,
                data_offsets: t.data_offsets,
                parameters,
            });
        }
        // Data order; a zero-length tensor sorts before the one that starts at the same offset.
        tensors.sort_by_key(|t| (t.data_offsets[0], t.data_offsets[1]));
        let mut expected_start = 0u64;
        let mut previous: Option<&str> = None;
        for t in &tensors {
            let start = t.data_offsets[0];
            if start != expected_start {
                let after = previous.map_or_else(
                    || "the data section starts at 0".to_string(),
                    |p| format!("tensor `{p}` ends at {expected_start}"),
                );
                let kind = if start > expected_start {
                    "gap"
                } else {
                    "overlap"
                };
                return Err(fail(format!(
                    "tensor `{}` starts at {start} but {after} ({kind})",
                    t.name
                )));
            }
            expected_start = t.data_offsets[1];
            previous = Some(&t.name);
        }
        let Some(data_len) = file_len.checked_sub(8 + header_len) else {
            return Err(fail(format!(
                "header length {header_len} runs past the end of the {file_len}-byte file"
            )));
        };
        if expected_start != data_len {
            return Err(fail(format!(
                "tensors cover {expected_start} data bytes but the file holds {data_len} after the header ({})",
                if expected_start > data_len {
                    "offsets out of range: file truncated?"
                } else {
                    "trailing bytes"
                }
            )));
        }
        // The crate's own validation as a second opinion; ours is stricter, so this should agree.
        // It costs about 1 KB per tensor, so only headers of real shard size get it: a hostile
        // header of 200k tiny tensors must not blow verify's memory budget.
        if header.len() <= SECOND_OPINION_MAX_LEN
            && let Err(e) = serde_json::from_slice::<safetensors::tensor::Metadata>(header)
        {
            return Err(fail(format!("safetensors crate refused the header: {e}")));
        }
        Ok(SafetensorsHeader {
            header_len,
            tensors,
            metadata: raw.metadata,
        })
    }
}

/// The JSON header's length from the file's first 8 bytes, checked against the cap and the
/// file's length (`file_len` under 8 means the length bytes are missing).
fn checked_header_len(
    len_bytes: [u8; 8],
    file_len: u64,
    rel_path: &str,
) -> Result<usize, CheckpointError> {
    let fail = |problem: String| CheckpointError::header(rel_path, problem);
    if file_len < 8 {
        return Err(fail(format!(
            "file is {file_len} bytes, too short for the 8-byte header length"
        )));
    }
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_LEN {
        return Err(fail(format!(
            "header length {header_len} exceeds the cap of {MAX_HEADER_LEN} bytes"
        )));
    }
    if header_len > file_len - 8 {
        return Err(fail(format!(
            "header length {header_len} runs past the end of the {file_len}-byte file"
        )));
    }
    Ok(header_len as usize)
}

/// Most tensors one file may hold. Real shards hold hundreds to a few thousand (a 91k-tensor
/// MoE model spreads them over 163 shards); the cap bounds the memory a hostile header costs.
pub(crate) const MAX_TENSORS_PER_FILE: usize = 131_072;

/// Largest header the safetensors crate re-checks (real shards' headers are tens to hundreds of KB).
const SECOND_OPINION_MAX_LEN: usize = 1 << 20;

fn parse_dtype(name: &str) -> Option<Dtype> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTensor {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// The header object, read with duplicate-key detection (serde_json keeps the last duplicate).
struct RawHeader {
    metadata: BTreeMap<String, String>,
    tensors: Vec<(String, RawTensor)>,
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tensors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
                let mut metadata = None;
                let mut tensors: Vec<(String, RawTensor)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "__metadata__" {
                        if metadata.is_some() {
                            return Err(de::Error::custom("duplicate `__metadata__`"));
                        }
                        metadata = Some(map.next_value::<UniqueStringMap>()?.0);
                    } else {
                        if tensors.len() == MAX_TENSORS_PER_FILE {
                            return Err(de::Error::custom(format_args!(
                                "more than {MAX_TENSORS_PER_FILE} tensors in one file"
                            )));
                        }
                        let tensor: RawTensor = map
                            .next_value()
                            .map_err(|e| de::Error::custom(format_args!("tensor `{key}`: {e}")))?;
                        tensors.push((key, tensor));
                    }
                }
                // Duplicates by sorting references, not by cloning every name into a set.
                let mut names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
                names.sort_unstable();
                if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                    return Err(de::Error::custom(format_args!(
                        "duplicate tensor name `{}`",
                        w[0]
                    )));
                }
                drop(names);
                Ok(RawHeader {
                    metadata: metadata.unwrap_or_default(),
                    tensors,
                })
            }
        }
        d.deserialize_map(HeaderVisitor)
    }
}

/// A JSON object of strings with duplicate keys refused.
pub(crate) struct UniqueStringMap(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for UniqueStringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = UniqueStringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`__metadata__` as a map of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueStringMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value().map_err(|e| {
                        de::Error::custom(format_args!("`__metadata__` key `{key}`: {e}"))
                    })?;
                    if out.insert(key.clone(), value).is_some() {
                        return Err(de::Error::custom(format_args!(
                            "duplicate `__metadata__` key `{key}`"
                        )));
                    }
                }
                Ok(UniqueStringMap(out))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

/// Builds a valid safetensors file image.
#[cfg(test)]
pub(crate) fn build_safetensors(tensors: &[(&str, &str, &[u64])], fill: u8) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut offset = 0u64;
    for (name, dtype, shape) in tensors {
        let bits = parse_dtype(dtype).map_or(8, |d| d.bitsize() as u64);
        let n: u64 = shape.iter().product::<u64>() * bits / 8;
        entries.push(format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + n
        ));
        offset += n;
    }
    let mut header = format!(
        "{{\"__metadata__\":{{\"format\":\"pt\"}},{}}}",
        entries.join(",")
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend((0..offset).map(|i| fill.wrapping_add(i as u8)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_file(bytes: &[u8]) -> Result<SafetensorsHeader, String> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        SafetensorsHeader::parse(&bytes[8..8 + n], bytes.len() as u64, "m.safetensors")
            .map_err(|e| e.to_string())
    }

    fn with_header(header: &str, data_len: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data_len));
        out
    }

    #[test]
    fn accepts_valid_and_counts_parameters() {
        let f = build_safetensors(
            &[
                ("a", "F32", &[2, 3]),
                ("b", "BF16", &[4]),
                ("s", "F4", &[2]),
            ],
            1,
        );
        let h = parse_file(&f).unwrap();
        assert_eq!(h.tensors.len(), 3);
        assert_eq!(h.parameters(), 6 + 4 + 2);
        assert_eq!(h.metadata.get("format").map(String::as_str), Some("pt"));
    }

    #[test]
    fn refuses_each_malformation_with_a_named_reason() {
        let cases: &[(&str, usize, &str)] = &[
            (
                r#" {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                1,
                "must start with `{`",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                2,
                "duplicate tensor name `a`",
            ),
            (
                r#"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#,
                1,
                "unknown dtype `Q7`",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                4,
                "needs 8 bytes",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#,
                3,
                "overlap",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#,
                5,
                "gap",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
                1,
                "out of range",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
                3,
                "trailing bytes",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":1}}"#,
                2,
                "unknown field `x`",
            ),
            (r#"{"__metadata__":{"k":1}}"#, 0, "`__metadata__` key `k`"),
            (
                r#"{"__metadata__":{"k":"a","k":"b"}}"#,
                0,
                "duplicate `__metadata__` key `k`",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[4294967296,4294967296,16],"data_offsets":[0,2]}}"#,
                2,
                "overflows",
            ),
            (
                r#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
                2,
                "whole number of bytes",
            ),
            (r#"{"a":"#, 0, "header JSON"),
            (r#"[]"#, 0, "must start with `{`"),
        ];
        for (header, data_len, want) in cases {
            let err = parse_file(&with_header(header, *data_len)).unwrap_err();
            assert!(err.contains(want), "{header}: got `{err}`, want `{want}`");
            assert!(err.starts_with("m.safetensors: "), "{err}");
        }
    }

    #[test]
    fn trailing_spaces_pad_the_header() {
        let h = with_header(
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}   "#,
            1,
        );
        parse_file(&h).unwrap();
    }
}
