//! Which Xet objects `store gc` keeps, for any store: a namespace's shards and xorbs are live
//! while a file they describe is live, i.e. its SHA-256 is named by a published revision of
//! that namespace or held by one of its pending uploads. A live shard keeps every xorb it
//! names (its files' terms and its xorb section), so a client whose shard cache still lists
//! them can refer to them in its next upload. Everything else is garbage once older than the
//! grace period; an upload that is told an object is already stored refreshes its age
//! ([`super::Store::put_xet_object`]), so gc does not remove it under that upload.

use std::collections::BTreeSet;

use crate::gate::xet::shard;

/// The live Xet objects of one namespace, by hash (64 hex digits).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LiveXet {
    pub shards: BTreeSet<String>,
    /// Xorbs; a xorb's chunk index lives and dies with it.
    pub xorbs: BTreeSet<String>,
}

/// What a stored shard names, as far as liveness goes: the SHA-256 (hex) of each file it
/// describes, and every xorb it names (its files' terms and its xorb section).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShardRefs {
    pub files: BTreeSet<String>,
    pub xorbs: BTreeSet<String>,
}

impl ShardRefs {
    /// The references of the stored shard `bytes`; `Err` if it does not parse.
    pub fn of(bytes: &[u8]) -> Result<ShardRefs, String> {
        let parsed = shard::parse(bytes).map_err(|e| e.to_string())?;
        let terms = parsed
            .files
            .iter()
            .flat_map(|f| f.terms.iter().map(|t| t.xorb));
        Ok(ShardRefs {
            files: parsed
                .files
                .iter()
                .filter_map(|f| f.sha256)
                .map(hex::encode)
                .collect(),
            xorbs: parsed
                .xorbs
                .iter()
                .map(|x| x.hash)
                .chain(terms)
                .map(|x| x.to_hex())
                .collect(),
        })
    }
}

/// The live objects among `shards` (each its hash and references), given the SHA-256 (hex)
/// of every live file of the namespace.
pub fn live_of<'a>(
    shards: impl IntoIterator<Item = (&'a str, &'a ShardRefs)>,
    live_files: &BTreeSet<String>,
) -> LiveXet {
    let mut live = LiveXet::default();
    for (hash, refs) in shards {
        if refs.files.is_disjoint(live_files) {
            continue;
        }
        live.shards.insert(hash.to_string());
        live.xorbs.extend(refs.xorbs.iter().cloned());
    }
    live
}

/// The live objects among `shards` (each its hash and bytes), given the SHA-256 (hex) of every
/// live file of the namespace. `Err((hash, why))` for a stored shard that does not parse: it
/// may name live xorbs, so nothing may be collected.
pub fn live_xet<'a>(
    shards: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    live_files: &BTreeSet<String>,
) -> Result<LiveXet, (String, String)> {
    let refs = shards
        .into_iter()
        .map(|(hash, bytes)| {
            Ok((
                hash,
                ShardRefs::of(bytes).map_err(|e| (hash.to_string(), e))?,
            ))
        })
        .collect::<Result<Vec<_>, (String, String)>>()?;
    Ok(live_of(refs.iter().map(|(h, r)| (*h, r)), live_files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::xet::hash::XetHash;
    use crate::gate::xet::shard::{FileInfo, Term, XorbInfo};

    fn file(hash: u8, sha: u8, xorb: u8) -> FileInfo {
        FileInfo {
            hash: XetHash([hash; 32]),
            terms: vec![Term {
                xorb: XetHash([xorb; 32]),
                start: 0,
                end: 1,
                len: 10,
                verification: Some(XetHash([0; 32])),
            }],
            sha256: Some([sha; 32]),
        }
    }

    #[test]
    fn a_shard_lives_while_a_file_it_describes_is_live_and_keeps_its_xorbs() {
        let xorb = |b: u8| XorbInfo {
            hash: XetHash([b; 32]),
            chunks: vec![(XetHash([b; 32]), 10)],
        };
        let kept = shard::build(&[file(1, 0xaa, 7), file(2, 0xbb, 8)], &[xorb(9)]);
        let dropped = shard::build(&[file(3, 0xcc, 5)], &[xorb(5)]);
        let live_files = BTreeSet::from([hex::encode([0xbb; 32])]);
        let live = live_xet(
            [
                ("01".repeat(32).as_str(), &kept[..]),
                (&"02".repeat(32), &dropped[..]),
            ],
            &live_files,
        )
        .unwrap();
        assert_eq!(live.shards, BTreeSet::from(["01".repeat(32)]));
        let want: BTreeSet<String> = [7u8, 8, 9].iter().map(|b| hex::encode([*b; 32])).collect();
        assert_eq!(live.xorbs, want);
        // A shard that does not parse stops the collection.
        let err = live_xet([("03".repeat(32).as_str(), &b"junk"[..])], &live_files).unwrap_err();
        assert_eq!(err.0, "03".repeat(32));
    }
}
