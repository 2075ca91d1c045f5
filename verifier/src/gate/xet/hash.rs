//! Xet hashes (Xet Protocol Specification 1.1, "Hashing"): keyed BLAKE3 over chunk bytes, the
//! merkle tree of variable fan-out that gives xorb and file hashes, and the verification hash
//! of a file's chunk range.

use std::fmt;

/// BLAKE3 key of a chunk hash (the spec's `DATA_KEY`).
const CHUNK_KEY: [u8; 32] = [
    102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16,
    155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
];

/// BLAKE3 key of an internal merkle node (the spec's `INTERNAL_NODE_KEY`).
const INTERNAL_NODE_KEY: [u8; 32] = [
    1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230, 93, 221, 83, 111, 55,
    199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
];

/// BLAKE3 key of a shard's verification entry (range hash of a term's chunks).
const VERIFICATION_KEY: [u8; 32] = [
    127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243, 164, 205, 38, 213,
    181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
];

/// A Xet hash: 32 bytes as they appear in xorbs and shards.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct XetHash(pub [u8; 32]);

impl XetHash {
    /// The all-ones hash that closes a shard section.
    pub const BOOKEND: XetHash = XetHash([0xff; 32]);

    /// The spec's string form: each 8-byte group read as a little-endian u64 and printed as
    /// 16 hex digits (so not the plain hex of the bytes).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for group in self.0.chunks_exact(8) {
            let v = u64::from_le_bytes(group.try_into().expect("8 bytes"));
            s.push_str(&format!("{v:016x}"));
        }
        s
    }

    /// Parses the string form of [`XetHash::to_hex`]: exactly 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<XetHash> {
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, group) in out.chunks_exact_mut(8).enumerate() {
            let v = u64::from_str_radix(&s[i * 16..i * 16 + 16], 16).ok()?;
            group.copy_from_slice(&v.to_le_bytes());
        }
        Some(XetHash(out))
    }

    /// The last 8 bytes as a little-endian u64: what the tree's cut rule takes modulo.
    fn tail_u64(&self) -> u64 {
        u64::from_le_bytes(self.0[24..32].try_into().expect("8 bytes"))
    }
}

impl fmt::Debug for XetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for XetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The hash of one chunk's (uncompressed) bytes.
pub fn chunk_hash(bytes: &[u8]) -> XetHash {
    XetHash(*blake3::keyed_hash(&CHUNK_KEY, bytes).as_bytes())
}

/// Mean fan-out of the merkle tree: a group of children ends at a hash divisible by it.
const MEAN_BRANCHING: u64 = 4;
/// Largest group of children (2 × mean + 1).
const MAX_GROUP: usize = 2 * MEAN_BRANCHING as usize + 1;

/// The node over `children` (hash, byte length): keyed BLAKE3 over one
/// `"{hash} : {length}\n"` line per child.
fn merged(children: &[(XetHash, u64)]) -> (XetHash, u64) {
    let mut text = String::with_capacity(children.len() * 88);
    let mut total = 0u64;
    for (hash, len) in children {
        text.push_str(&hash.to_hex());
        text.push_str(" : ");
        text.push_str(&len.to_string());
        text.push('\n');
        total += len;
    }
    let node = blake3::keyed_hash(&INTERNAL_NODE_KEY, text.as_bytes());
    (XetHash(*node.as_bytes()), total)
}

/// How many of `level`'s leading nodes form the next group: at least 2, at most
/// [`MAX_GROUP`], ending at the first node from the third on whose hash is divisible by the
/// mean fan-out.
fn next_cut(level: &[(XetHash, u64)]) -> usize {
    if level.len() <= 2 {
        return level.len();
    }
    let end = MAX_GROUP.min(level.len());
    (2..end)
        .find(|&i| level[i].0.tail_u64().is_multiple_of(MEAN_BRANCHING))
        .map_or(end, |i| i + 1)
}

/// The root of the merkle tree over `leaves` (chunk hash, chunk length); the zero hash for none.
fn merkle_root(leaves: &[(XetHash, u64)]) -> XetHash {
    if leaves.is_empty() {
        return XetHash::default();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / 2 + 1);
        let mut rest = &level[..];
        while !rest.is_empty() {
            let cut = next_cut(rest);
            next.push(merged(&rest[..cut]));
            rest = &rest[cut..];
        }
        level = next;
    }
    level[0].0
}

/// A xorb's hash: the merkle root over its chunks.
pub fn xorb_hash(chunks: &[(XetHash, u64)]) -> XetHash {
    merkle_root(chunks)
}

/// A file's hash: the merkle root over all its chunks, keyed once more with the zero salt.
pub fn file_hash(chunks: &[(XetHash, u64)]) -> XetHash {
    if chunks.is_empty() {
        return XetHash::default();
    }
    let root = merkle_root(chunks);
    XetHash(*blake3::keyed_hash(&[0; 32], &root.0).as_bytes())
}

/// The verification hash of a run of chunk hashes (a shard's verification entry).
pub fn range_hash(chunks: impl IntoIterator<Item = XetHash>) -> XetHash {
    let mut hasher = blake3::Hasher::new_keyed(&VERIFICATION_KEY);
    for chunk in chunks {
        hasher.update(&chunk.0);
    }
    XetHash(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_form_reverses_each_eight_byte_group() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xba;
        bytes[7] = 0x9e;
        let h = XetHash(bytes);
        assert!(h.to_hex().starts_with("9e000000000000ba"), "{h}");
        assert_eq!(XetHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(XetHash::from_hex(&"A".repeat(64)), None);
        assert_eq!(XetHash::from_hex("00"), None);
    }

    #[test]
    fn one_leaf_is_its_own_root_and_an_empty_file_hashes_to_zero() {
        let leaf = (chunk_hash(b"x"), 1);
        assert_eq!(xorb_hash(&[leaf]), leaf.0);
        assert_eq!(file_hash(&[]), XetHash::default());
        assert_ne!(file_hash(&[leaf]), leaf.0);
    }

    #[test]
    fn groups_are_two_to_nine_nodes() {
        let level: Vec<_> = (0..40u32)
            .map(|i| (chunk_hash(&i.to_le_bytes()), 1))
            .collect();
        let mut rest = &level[..];
        while !rest.is_empty() {
            let cut = next_cut(rest);
            assert!(cut >= 2.min(rest.len()) && cut <= MAX_GROUP);
            rest = &rest[cut..];
        }
    }
}
