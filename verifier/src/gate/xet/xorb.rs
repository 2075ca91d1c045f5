//! Xorbs (Xet Protocol Specification 1.1, "Xorb format"): a run of chunks, each an 8-byte
//! header (version, compressed length, compression scheme, uncompressed length; lengths 3-byte
//! little-endian) and its compressed bytes, optionally followed by the `XETBLOB` footer, which
//! is ignored: every chunk hash and the xorb hash are computed here from the bytes.

use std::io::Read as _;

use super::hash::{XetHash, chunk_hash, xorb_hash};

/// Largest uncompressed chunk (twice the 64 KiB target chunk size).
pub const MAX_CHUNK_LEN: usize = 128 * 1024;
/// Largest xorb body accepted (the spec's 64 MiB of chunk data, plus headers and footer).
pub const MAX_XORB_LEN: usize = 64 * 1024 * 1024 + 8 * 1024 * 1024;
/// Most chunks in one xorb.
pub const MAX_XORB_CHUNKS: usize = 8 * 1024;

const HEADER_LEN: usize = 8;
const FOOTER_IDENT: &[u8; 7] = b"XETBLOB";

/// One chunk of a parsed xorb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    pub hash: XetHash,
    /// Uncompressed length.
    pub len: u32,
    /// Where its header starts in the xorb body.
    pub offset: u32,
}

/// What is wrong with a xorb.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XorbError {
    #[error("xorb is {0} bytes, more than the {MAX_XORB_LEN} accepted")]
    TooLarge(usize),
    #[error("xorb has no chunks")]
    Empty,
    #[error("xorb has more than {MAX_XORB_CHUNKS} chunks")]
    TooManyChunks,
    #[error("chunk {index} at byte {offset}: {why}")]
    BadChunk {
        index: usize,
        offset: usize,
        why: String,
    },
    #[error("xorb hash is {actual}, not the {claimed} it was uploaded as")]
    HashMismatch { claimed: XetHash, actual: XetHash },
}

/// The chunks of `body`, each decompressed and hashed, and the xorb hash over them.
pub fn parse(body: &[u8]) -> Result<(Vec<ChunkEntry>, XetHash), XorbError> {
    if body.len() > MAX_XORB_LEN {
        return Err(XorbError::TooLarge(body.len()));
    }
    let mut chunks = Vec::new();
    let mut offset = 0usize;
    // One buffer for every chunk's bytes (and one for a byte-grouped chunk's groups).
    let mut data = Vec::with_capacity(MAX_CHUNK_LEN);
    let mut scratch = Vec::new();
    while offset < body.len() {
        if body[offset..].starts_with(FOOTER_IDENT) {
            break;
        }
        if chunks.len() == MAX_XORB_CHUNKS {
            return Err(XorbError::TooManyChunks);
        }
        let bad = |why: String| XorbError::BadChunk {
            index: chunks.len(),
            offset,
            why,
        };
        let (bytes, next) = chunk_bytes(body, offset, &mut data, &mut scratch).map_err(bad)?;
        chunks.push(ChunkEntry {
            hash: chunk_hash(bytes),
            len: bytes.len() as u32,
            offset: offset as u32,
        });
        offset = next;
    }
    if chunks.is_empty() {
        return Err(XorbError::Empty);
    }
    let leaves: Vec<_> = chunks.iter().map(|c| (c.hash, u64::from(c.len))).collect();
    let hash = xorb_hash(&leaves);
    Ok((chunks, hash))
}

/// Parses `body` and checks its hash is `claimed`.
pub fn parse_claimed(body: &[u8], claimed: XetHash) -> Result<Vec<ChunkEntry>, XorbError> {
    let (chunks, actual) = parse(body)?;
    if actual != claimed {
        return Err(XorbError::HashMismatch { claimed, actual });
    }
    Ok(chunks)
}

/// Appends to `out` the uncompressed bytes of the chunk whose header starts at `offset`
/// (`scratch` holds a byte-grouped chunk's groups); returns where the next chunk starts.
pub fn decode_chunk_into(
    body: &[u8],
    offset: usize,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<usize, String> {
    let chunk = stored_chunk(body, offset)?;
    decode_stored(&chunk, out, scratch)?;
    Ok(chunk.next)
}

/// The uncompressed bytes of the chunk whose header starts at `offset`, and where the next
/// chunk starts: borrowed from `body` if the chunk is stored uncompressed (nothing copied),
/// else decoded into `data` (emptied first).
pub fn chunk_bytes<'a>(
    body: &'a [u8],
    offset: usize,
    data: &'a mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(&'a [u8], usize), String> {
    let chunk = stored_chunk(body, offset)?;
    if chunk.scheme == 0 {
        return Ok((chunk.stored, chunk.next));
    }
    data.clear();
    decode_stored(&chunk, data, scratch)?;
    Ok((data, chunk.next))
}

/// A chunk as the xorb stores it, its header checked.
struct StoredChunk<'a> {
    scheme: u8,
    stored: &'a [u8],
    len: usize,
    next: usize,
}

fn stored_chunk(body: &[u8], offset: usize) -> Result<StoredChunk<'_>, String> {
    let header = body
        .get(offset..offset + HEADER_LEN)
        .ok_or("truncated chunk header")?;
    let version = header[0];
    let stored_len = u32::from_le_bytes([header[1], header[2], header[3], 0]) as usize;
    let scheme = header[4];
    let len = u32::from_le_bytes([header[5], header[6], header[7], 0]) as usize;
    if version != 0 {
        return Err(format!("chunk header version {version}, only 0 is defined"));
    }
    if len == 0 || len > MAX_CHUNK_LEN {
        return Err(format!(
            "uncompressed length {len}, must be 1 to {MAX_CHUNK_LEN}"
        ));
    }
    let start = offset + HEADER_LEN;
    let stored = body
        .get(start..start + stored_len)
        .ok_or_else(|| format!("declares {stored_len} bytes, the xorb ends first"))?;
    match scheme {
        0 if stored_len != len => Err(format!(
            "uncompressed chunk of {stored_len} bytes declares {len}"
        )),
        0..=2 => Ok(StoredChunk {
            scheme,
            stored,
            len,
            next: start + stored_len,
        }),
        other => Err(format!("compression scheme {other} is not defined")),
    }
}

/// Appends the uncompressed bytes of `chunk` to `out`.
fn decode_stored(
    chunk: &StoredChunk<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    let (stored, len) = (chunk.stored, chunk.len);
    match chunk.scheme {
        0 => out.extend_from_slice(stored),
        1 => lz4_frame(stored, len, out)?,
        _ => {
            scratch.clear();
            lz4_frame(stored, len, scratch)?;
            bg4_regroup(scratch, out);
        }
    }
    Ok(())
}

/// Appends to `out` one LZ4 frame that must hold exactly `len` bytes (read no further: a
/// frame that inflates past what its header declared is refused, not buffered).
fn lz4_frame(stored: &[u8], len: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let before = out.len();
    out.reserve(len + 1);
    lz4_flex::frame::FrameDecoder::new(stored)
        .take(len as u64 + 1)
        .read_to_end(out)
        .map_err(|e| format!("LZ4 frame: {e}"))?;
    let got = out.len() - before;
    if got != len {
        out.truncate(before);
        return Err(format!(
            "decompresses to {}{} bytes, its header declares {len}",
            got.min(len),
            if got > len { "+" } else { "" }
        ));
    }
    Ok(())
}

/// Undoes byte grouping, appending to `out`: the input is four groups (byte 0, 1, 2, 3 of
/// every 4-byte word, the first `len % 4` groups one byte longer); the output interleaves
/// them again.
fn bg4_regroup(grouped: &[u8], out: &mut Vec<u8>) {
    let n = grouped.len();
    let (split, rem) = (n / 4, n % 4);
    let mut starts = [0usize; 4];
    for g in 1..4 {
        starts[g] = starts[g - 1] + split + usize::from(g - 1 < rem);
    }
    let from = out.len();
    out.resize(from + n, 0);
    for (i, byte) in out[from..].iter_mut().enumerate() {
        *byte = grouped[starts[i % 4] + i / 4];
    }
}

/// Bytes of one chunk in a stored chunk index: hash, length, offset.
const INDEX_ENTRY_LEN: usize = 40;

/// The chunk index kept beside a checked xorb, so that a shard is checked without decoding
/// the xorbs it names again.
pub fn encode_index(chunks: &[ChunkEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunks.len() * INDEX_ENTRY_LEN);
    for c in chunks {
        out.extend_from_slice(&c.hash.0);
        out.extend_from_slice(&c.len.to_le_bytes());
        out.extend_from_slice(&c.offset.to_le_bytes());
    }
    out
}

/// Reads back [`encode_index`]; `None` if the bytes are not an index.
pub fn decode_index(bytes: &[u8]) -> Option<Vec<ChunkEntry>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(INDEX_ENTRY_LEN) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INDEX_ENTRY_LEN)
            .map(|e| ChunkEntry {
                hash: XetHash(e[..32].try_into().expect("32 bytes")),
                len: u32::from_le_bytes(e[32..36].try_into().expect("4 bytes")),
                offset: u32::from_le_bytes(e[36..40].try_into().expect("4 bytes")),
            })
            .collect(),
    )
}

/// Builds a xorb body from chunks stored uncompressed (tests and fixtures).
#[cfg(test)]
pub fn build_uncompressed(chunks: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in chunks {
        let len = (chunk.len() as u32).to_le_bytes();
        body.extend_from_slice(&[0, len[0], len[1], len[2], 0, len[0], len[1], len[2]]);
        body.extend_from_slice(chunk);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lz4(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn chunk_with(scheme: u8, stored: &[u8], len: usize) -> Vec<u8> {
        let s = (stored.len() as u32).to_le_bytes();
        let l = (len as u32).to_le_bytes();
        let mut v = vec![0, s[0], s[1], s[2], scheme, l[0], l[1], l[2]];
        v.extend_from_slice(stored);
        v
    }

    #[test]
    fn the_three_schemes_decode_to_the_same_hashes() {
        let data: Vec<u8> = (0..10_003u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut grouped = Vec::new();
        for g in 0..4 {
            grouped.extend(data.iter().skip(g).step_by(4));
        }
        let plain = build_uncompressed(&[&data]);
        let (c0, h0) = parse(&plain).unwrap();
        let (c1, h1) = parse(&chunk_with(1, &lz4(&data), data.len())).unwrap();
        let (c2, h2) = parse(&chunk_with(2, &lz4(&grouped), data.len())).unwrap();
        assert_eq!(c0[0].hash, chunk_hash(&data));
        assert_eq!((c0[0].hash, h0), (c1[0].hash, h1));
        assert_eq!((c0[0].hash, h0), (c2[0].hash, h2));
    }

    #[test]
    fn bad_xorbs_name_what_is_wrong() {
        let good = build_uncompressed(&[b"abc", b"defg"]);
        let (_, hash) = parse(&good).unwrap();
        assert!(parse_claimed(&good, hash).is_ok());
        let mut tampered = good.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let e = parse_claimed(&tampered, hash).unwrap_err().to_string();
        assert!(
            e.contains("xorb hash is") && e.contains(&hash.to_hex()),
            "{e}"
        );

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "no chunks"),
            (good[..5].to_vec(), "truncated chunk header"),
            (good[..10].to_vec(), "the xorb ends first"),
            (chunk_with(7, b"abc", 3), "scheme 7"),
            (chunk_with(0, b"abc", 4), "declares 4"),
            (chunk_with(1, &lz4(b"abcdef"), 3), "decompresses to 3+"),
            (chunk_with(1, &lz4(b"ab"), 3), "decompresses to 2 bytes"),
            (chunk_with(1, b"not lz4 at all", 3), "LZ4 frame"),
            (chunk_with(0, b"", 0), "uncompressed length 0"),
            (
                {
                    let mut v = good.clone();
                    v[0] = 1;
                    v
                },
                "version 1",
            ),
        ];
        for (body, want) in cases {
            let e = parse(&body).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn an_index_reads_back() {
        let (chunks, _) = parse(&build_uncompressed(&[b"abc", b"defg"])).unwrap();
        assert_eq!(decode_index(&encode_index(&chunks)), Some(chunks));
        assert_eq!(decode_index(b"short"), None);
    }

    #[test]
    fn a_footer_is_ignored() {
        let mut body = build_uncompressed(&[b"abc"]);
        let (_, hash) = parse(&body).unwrap();
        body.extend_from_slice(b"XETBLOB\x01whatever follows");
        assert_eq!(parse(&body).unwrap().1, hash);
    }
}
