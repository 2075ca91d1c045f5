//! Shards as clients upload them (Xet Protocol Specification 1.1, "Shard format"): a header,
//! the file info section (per file: its hash, its terms, a verification entry per term and the
//! metadata extension with its SHA-256), the CAS info section (per xorb: its chunks' hashes and
//! lengths), each section closed by an all-ones bookend. A footer with lookup tables may follow
//! and is ignored: everything is checked against the xorbs themselves.

use super::hash::{XetHash, file_hash, range_hash};
use super::xorb::ChunkEntry;

const HEADER_TAG: [u8; 32] = [
    b'H', b'F', b'R', b'e', b'p', b'o', b'M', b'e', b't', b'a', b'D', b'a', b't', b'a', 0, 85, 105,
    103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169,
];
const HEADER_VERSION: u64 = 2;
const HEADER_LEN: usize = 48;
/// Every entry of both sections is 48 bytes.
const ENTRY_LEN: usize = 48;
const FLAG_VERIFICATION: u32 = 1 << 31;
const FLAG_METADATA_EXT: u32 = 1 << 30;

/// Largest shard accepted.
pub const MAX_SHARD_LEN: usize = 64 * 1024 * 1024;
/// Most files one shard may describe (each is reconstructed into the upload area; a commit
/// takes at most as many by default).
pub const MAX_SHARD_FILES: usize = 10_000;

/// One term of a file: chunks `start..end` of a xorb, `len` bytes uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub xorb: XetHash,
    pub start: u32,
    pub end: u32,
    pub len: u32,
    pub verification: Option<XetHash>,
}

/// One file a shard describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub hash: XetHash,
    pub terms: Vec<Term>,
    /// The file's SHA-256 (plain byte order) from the metadata extension.
    pub sha256: Option<[u8; 32]>,
}

impl FileInfo {
    pub fn size(&self) -> u64 {
        self.terms.iter().map(|t| u64::from(t.len)).sum()
    }
}

/// One xorb a shard describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorbInfo {
    pub hash: XetHash,
    pub chunks: Vec<(XetHash, u32)>,
}

/// A parsed upload shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub files: Vec<FileInfo>,
    pub xorbs: Vec<XorbInfo>,
}

/// What is wrong with a shard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("shard is {0} bytes, more than the {MAX_SHARD_LEN} accepted")]
    TooLarge(usize),
    #[error("not a shard: {0}")]
    Malformed(String),
    #[error("file {file}: {why}")]
    File { file: XetHash, why: String },
    #[error("xorb {xorb}: {why}")]
    Xorb { xorb: XetHash, why: String },
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn entry(&mut self, what: &str) -> Result<&'a [u8], ShardError> {
        let e = self
            .bytes
            .get(self.at..self.at + ENTRY_LEN)
            .ok_or_else(|| {
                ShardError::Malformed(format!("ends at byte {} inside {what}", self.bytes.len()))
            })?;
        self.at += ENTRY_LEN;
        Ok(e)
    }
}

fn hash_at(e: &[u8]) -> XetHash {
    XetHash(e[..32].try_into().expect("32 bytes"))
}

fn u32_at(e: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(e[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses a shard body (structure only; [`Shard::check`] checks it against the xorbs).
pub fn parse(bytes: &[u8]) -> Result<Shard, ShardError> {
    if bytes.len() > MAX_SHARD_LEN {
        return Err(ShardError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER_LEN || bytes[..32] != HEADER_TAG {
        return Err(ShardError::Malformed(
            "the header tag is missing (expected `HFRepoMetaData`)".into(),
        ));
    }
    let version = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
    if version != HEADER_VERSION {
        return Err(ShardError::Malformed(format!(
            "header version {version}, expected {HEADER_VERSION}"
        )));
    }
    let mut r = Reader {
        bytes,
        at: HEADER_LEN,
    };
    let mut files = Vec::new();
    loop {
        let e = r.entry("the file info section")?;
        let hash = hash_at(e);
        if hash == XetHash::BOOKEND {
            break;
        }
        if files.len() == MAX_SHARD_FILES {
            return Err(ShardError::Malformed(format!(
                "describes more than {MAX_SHARD_FILES} files"
            )));
        }
        let flags = u32_at(e, 32);
        let n = u32_at(e, 36) as usize;
        let bad = |why: String| ShardError::File { file: hash, why };
        if flags & !(FLAG_VERIFICATION | FLAG_METADATA_EXT) != 0 {
            return Err(bad(format!("unknown flags {flags:#010x}")));
        }
        // Each term takes at least one entry: a count past the bytes left is a lie.
        if n > (bytes.len() - r.at) / ENTRY_LEN {
            return Err(bad(format!(
                "declares {n} terms, more than the shard holds"
            )));
        }
        let mut terms = Vec::with_capacity(n);
        for _ in 0..n {
            let t = r.entry("a file's terms")?;
            let term = Term {
                xorb: hash_at(t),
                len: u32_at(t, 36),
                start: u32_at(t, 40),
                end: u32_at(t, 44),
                verification: None,
            };
            if term.start >= term.end {
                return Err(bad(format!(
                    "a term of xorb {} names chunks {}..{}, an empty range",
                    term.xorb, term.start, term.end
                )));
            }
            terms.push(term);
        }
        if flags & FLAG_VERIFICATION != 0 {
            for term in &mut terms {
                term.verification = Some(hash_at(r.entry("a file's verification entries")?));
            }
        }
        let sha256 = if flags & FLAG_METADATA_EXT != 0 {
            // Stored like every hash here: four little-endian u64 words.
            let stored = hash_at(r.entry("a file's metadata extension")?);
            let mut plain = [0u8; 32];
            hex::decode_to_slice(stored.to_hex(), &mut plain).expect("64 hex digits");
            Some(plain)
        } else {
            None
        };
        files.push(FileInfo {
            hash,
            terms,
            sha256,
        });
    }
    let mut xorbs = Vec::new();
    loop {
        let e = r.entry("the CAS info section")?;
        let hash = hash_at(e);
        if hash == XetHash::BOOKEND {
            break;
        }
        let n = u32_at(e, 36) as usize;
        if n > (bytes.len() - r.at) / ENTRY_LEN {
            return Err(ShardError::Xorb {
                xorb: hash,
                why: format!("declares {n} chunks, more than the shard holds"),
            });
        }
        let mut chunks = Vec::with_capacity(n);
        for _ in 0..n {
            let c = r.entry("a xorb's chunks")?;
            chunks.push((hash_at(c), u32_at(c, 36)));
        }
        xorbs.push(XorbInfo { hash, chunks });
    }
    Ok(Shard { files, xorbs })
}

impl Shard {
    /// Checks every file and xorb the shard names against the xorbs `chunks_of` finds (the
    /// chunks of a stored xorb, `None` if there is no such xorb): each term's chunks exist and
    /// sum to its length, its verification hash matches, each file's hash is the hash of its
    /// chunks, and each xorb described has exactly the chunks stored.
    pub fn check(
        &self,
        mut chunks_of: impl FnMut(&XetHash) -> Option<Vec<ChunkEntry>>,
    ) -> Result<(), ShardError> {
        let mut cache = std::collections::HashMap::new();
        let mut lookup = |xorb: &XetHash| -> Option<Vec<ChunkEntry>> {
            cache
                .entry(*xorb)
                .or_insert_with(|| chunks_of(xorb))
                .clone()
        };
        for file in &self.files {
            let bad = |why: String| ShardError::File {
                file: file.hash,
                why,
            };
            let mut leaves = Vec::new();
            for term in &file.terms {
                let chunks = lookup(&term.xorb).ok_or_else(|| {
                    bad(format!(
                        "names xorb {}, which was never uploaded",
                        term.xorb
                    ))
                })?;
                let range = chunks
                    .get(term.start as usize..term.end as usize)
                    .ok_or_else(|| {
                        bad(format!(
                            "names chunks {}..{} of xorb {}, which has {}",
                            term.start,
                            term.end,
                            term.xorb,
                            chunks.len()
                        ))
                    })?;
                let len: u64 = range.iter().map(|c| u64::from(c.len)).sum();
                if len != u64::from(term.len) {
                    return Err(bad(format!(
                        "says chunks {}..{} of xorb {} are {} bytes, they are {len}",
                        term.start, term.end, term.xorb, term.len
                    )));
                }
                if let Some(claimed) = term.verification
                    && range_hash(range.iter().map(|c| c.hash)) != claimed
                {
                    return Err(bad(format!(
                        "the verification hash of chunks {}..{} of xorb {} does not match",
                        term.start, term.end, term.xorb
                    )));
                }
                leaves.extend(range.iter().map(|c| (c.hash, u64::from(c.len))));
            }
            let actual = file_hash(&leaves);
            if actual != file.hash {
                return Err(bad(format!("its chunks hash to {actual}")));
            }
        }
        for xorb in &self.xorbs {
            let stored = lookup(&xorb.hash).ok_or_else(|| ShardError::Xorb {
                xorb: xorb.hash,
                why: "was never uploaded".into(),
            })?;
            let same = stored.len() == xorb.chunks.len()
                && stored
                    .iter()
                    .zip(&xorb.chunks)
                    .all(|(s, (hash, len))| s.hash == *hash && s.len == *len);
            if !same {
                return Err(ShardError::Xorb {
                    xorb: xorb.hash,
                    why: "the shard lists chunks the xorb does not have".into(),
                });
            }
        }
        Ok(())
    }
}

/// Builds an upload shard in the layout hf_xet sends (no footer): the shard the CAS keeps of
/// an upload, with only the files it rebuilt.
pub fn build(files: &[FileInfo], xorbs: &[XorbInfo]) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, hash: &XetHash, words: [u32; 4]) {
        out.extend_from_slice(&hash.0);
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    let mut out = HEADER_TAG.to_vec();
    out.extend_from_slice(&HEADER_VERSION.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    for f in files {
        let verification = f.terms.iter().all(|t| t.verification.is_some());
        let flags = if verification { FLAG_VERIFICATION } else { 0 }
            | if f.sha256.is_some() {
                FLAG_METADATA_EXT
            } else {
                0
            };
        entry(&mut out, &f.hash, [flags, f.terms.len() as u32, 0, 0]);
        for t in &f.terms {
            entry(&mut out, &t.xorb, [0, t.len, t.start, t.end]);
        }
        if verification {
            for v in f.terms.iter().filter_map(|t| t.verification) {
                entry(&mut out, &v, [0; 4]);
            }
        }
        if let Some(sha) = f.sha256 {
            // Stored like every hash here: four little-endian u64 words.
            let stored = XetHash::from_hex(&hex::encode(sha)).expect("64 hex digits");
            entry(&mut out, &stored, [0; 4]);
        }
    }
    entry(&mut out, &XetHash::BOOKEND, [0; 4]);
    for x in xorbs {
        let total: u32 = x.chunks.iter().map(|c| c.1).sum();
        entry(&mut out, &x.hash, [0, x.chunks.len() as u32, total, 0]);
        let mut at = 0;
        for (hash, len) in &x.chunks {
            entry(&mut out, hash, [at, *len, 0, 0]);
            at += len;
        }
    }
    entry(&mut out, &XetHash::BOOKEND, [0; 4]);
    out
}
