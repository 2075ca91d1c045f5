//! A namespace's Xet staging: the bytes of its xorbs, chunk indexes and shards that no admitted
//! revision of the namespace needs. They count against the namespace's staging cap beside its
//! pending uploads ([`crate::gate::upload::Uploads::staged_bytes`]).
//!
//! "Needed" is `store gc`'s liveness rule ([`crate::gate::store::xet_gc`]) with the files of the
//! namespace's current revisions as the live files: a stored shard describing such a file, and
//! every xorb (with its chunk index) that shard names. Everything else counts, whoever else
//! holds the same bytes (each namespace stores its own), until a commit admits a file it
//! describes or `store gc` removes it. The count is taken from the store each time (a listing
//! and the stored shards), so it survives a restart and every gate over a bucket sees the same;
//! what a shard names is remembered per shard, which never changes once stored.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::gate::store::xet_gc::{ShardRefs, live_of};
use crate::gate::store::{Store, StoreError, XetObjectKind};

/// Hashes (of files and xorbs, about 90 bytes each) remembered at once, about 45 MiB; past
/// this the memory starts over.
const REMEMBERED_HASHES: usize = 1 << 19;

/// What each stored shard names, by namespace and shard hash.
#[derive(Debug, Default)]
pub struct ShardMemory(Mutex<Remembered>);

#[derive(Debug, Default)]
struct Remembered {
    shards: HashMap<(String, String), Arc<ShardRefs>>,
    hashes: usize,
}

impl ShardMemory {
    fn get(&self, namespace: &str, hash: &str) -> Option<Arc<ShardRefs>> {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.to_string(), hash.to_string());
        known.shards.get(&key).cloned()
    }

    fn keep(&self, namespace: &str, hash: &str, refs: Arc<ShardRefs>) {
        let size = refs.files.len() + refs.xorbs.len();
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.hashes + size > REMEMBERED_HASHES {
            *known = Remembered::default();
        }
        if size <= REMEMBERED_HASHES {
            known.hashes += size;
            let key = (namespace.to_string(), hash.to_string());
            known.shards.insert(key, refs);
        }
    }
}

/// Bytes of `namespace`'s Xet objects that no file in `admitted` (the SHA-256, hex, of every
/// file its current revisions name) needs.
pub async fn held_bytes(
    store: &dyn Store,
    memory: &ShardMemory,
    namespace: &str,
    admitted: &BTreeSet<String>,
) -> Result<u64, StoreError> {
    let objects = store.xet_objects(namespace).await?;
    let mut shards = Vec::new();
    if !admitted.is_empty() {
        for (kind, hash) in objects.iter().filter_map(|o| o.name.as_ref()) {
            if *kind != XetObjectKind::Shard {
                continue;
            }
            if let Some(refs) = memory.get(namespace, hash) {
                shards.push((hash.as_str(), refs));
                continue;
            }
            let Some(bytes) = store.xet_object(namespace, *kind, hash).await? else {
                continue; // removed since listed
            };
            match crate::gate::bulk::run(move || ShardRefs::of(&bytes)).await {
                Ok(Ok(refs)) => {
                    let refs = Arc::new(refs);
                    memory.keep(namespace, hash, refs.clone());
                    shards.push((hash.as_str(), refs));
                }
                // Unreadable, it frees nothing: its bytes and the xorbs only it names count.
                Ok(Err(why)) => {
                    tracing::warn!(namespace, shard = %hash, why, "stored Xet shard does not parse")
                }
                Err(lost) => {
                    return Err(StoreError::Corrupt {
                        location: format!("Xet shard {hash} of {namespace}"),
                        why: lost.to_string(),
                    });
                }
            }
        }
    }
    let live = live_of(shards.iter().map(|(h, r)| (*h, r.as_ref())), admitted);
    Ok(objects
        .iter()
        .filter(|o| match &o.name {
            Some((XetObjectKind::Shard, hash)) => !live.shards.contains(hash),
            Some((_, hash)) => !live.xorbs.contains(hash),
            None => true,
        })
        .map(|o| o.size)
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::store::FolderStore;
    use crate::gate::xet::hash::XetHash;
    use crate::gate::xet::shard::{self, FileInfo, Term, XorbInfo};

    fn file(sha: u8, xorb: u8) -> FileInfo {
        FileInfo {
            hash: XetHash([sha; 32]),
            terms: vec![Term {
                xorb: XetHash([xorb; 32]),
                start: 0,
                end: 1,
                len: 10,
                verification: None,
            }],
            sha256: Some([sha; 32]),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn what_no_admitted_file_needs_counts_once_whoever_else_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(dir.path()).unwrap();
        let memory = ShardMemory::default();
        let put = |ns: &'static str, kind, hash: String, len: usize| {
            let store = &store;
            async move {
                store
                    .put_xet_object(ns, kind, &hash, &vec![7u8; len])
                    .await
                    .unwrap()
            }
        };
        let xorb = |b: u8| XetHash([b; 32]).to_hex();
        put("a", XetObjectKind::Xorb, xorb(1), 1000).await;
        put("a", XetObjectKind::XorbIndex, xorb(1), 40).await;
        put("a", XetObjectKind::Xorb, xorb(2), 500).await;
        // The same xorb in another namespace counts there, not here.
        put("b", XetObjectKind::Xorb, xorb(2), 500).await;
        let one = shard::build(
            &[file(0xaa, 1)],
            &[XorbInfo {
                hash: XetHash([1; 32]),
                chunks: vec![(XetHash([9; 32]), 10)],
            }],
        );
        let one_id = XetHash(*blake3::hash(&one).as_bytes()).to_hex();
        store
            .put_xet_object("a", XetObjectKind::Shard, &one_id, &one)
            .await
            .unwrap();
        let none = BTreeSet::new();
        let all = 1000 + 40 + 500 + one.len() as u64;
        assert_eq!(held_bytes(&store, &memory, "a", &none).await.unwrap(), all);
        assert_eq!(held_bytes(&store, &memory, "b", &none).await.unwrap(), 500);
        // Sent again: stored once, counted once.
        assert!(!put("a", XetObjectKind::Xorb, xorb(2), 500).await);
        assert_eq!(held_bytes(&store, &memory, "a", &none).await.unwrap(), all);
        // Once a revision names the shard's file, the shard and its xorb (and index) are free.
        let admitted = BTreeSet::from([hex::encode([0xaa; 32])]);
        assert_eq!(
            held_bytes(&store, &memory, "a", &admitted).await.unwrap(),
            500
        );
        // Another namespace's admitted file frees nothing here.
        assert_eq!(
            held_bytes(&store, &memory, "b", &admitted).await.unwrap(),
            500
        );
        // A killed write's temporary file counts until gc removes it.
        std::fs::write(dir.path().join("xet/a/xorbs/.tmp-1"), [0u8; 3]).unwrap();
        assert_eq!(
            held_bytes(&store, &memory, "a", &admitted).await.unwrap(),
            503
        );
    }
}
