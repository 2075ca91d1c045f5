//! The bucket store's Xet objects: `PREFIX/xet/<namespace>/{xorbs,xorb-indexes,shards}/<hash>`,
//! each checked before it is put (a single PUT: visible whole or not at all), never replaced.
//!
//! S3 cannot change an object's LastModified without rewriting it (a copy onto itself is
//! refused unless its metadata changes), so putting an object already stored refreshes its
//! age with an empty marker, `xet/<namespace>/refreshed/<kind>/<hash>`: `store gc` takes an
//! object's age from the later of its own LastModified and its marker's
//! ([`super::xet_gc`] has the liveness rule).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStoreExt as _, PutPayload};

use super::folder_xet::MAX_XET_OBJECT_LEN;
use super::{
    BucketStore, GcReport, StoreError, StoredXetObject, XetObjectKind, is_sha256_hex,
    xet_object_name,
};

/// The folder of refresh markers under a namespace's `xet/` area.
const REFRESHED: &str = "refreshed";

impl BucketStore {
    pub(super) async fn put_xet_object_now(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let key = self.key(&xet_object_name(namespace, kind, hash)?);
        match self.client().head(&key).await {
            Ok(_) => {
                // The caller relies on it now: gc keeps it for another grace period.
                let marker = self.refreshed_key(namespace, kind, hash);
                self.client()
                    .put(&marker, PutPayload::new())
                    .await
                    .map_err(|e| self.storage(&marker, e))?;
                return Ok(false);
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.storage(&key, e)),
        }
        self.client()
            .put(&key, PutPayload::from(bytes.to_vec()))
            .await
            .map_err(|e| self.storage(&key, e))?;
        Ok(true)
    }

    pub(super) async fn xet_object_now(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(&xet_object_name(namespace, kind, hash)?);
        self.read_capped(&key, MAX_XET_OBJECT_LEN).await
    }

    pub(super) async fn xet_objects_now(
        &self,
        namespace: &str,
    ) -> Result<Vec<StoredXetObject>, StoreError> {
        super::folder_pending::check_namespace(namespace)?;
        let mut out = Vec::new();
        for meta in self.list(&format!("xet/{namespace}")).await? {
            let name = self.relative(&meta.location);
            // Objects only: `xet/<ns>/<kind>/<name>`; refresh markers are empty and elsewhere.
            let Some((kind, hash)) = name
                .strip_prefix(&format!("xet/{namespace}/"))
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(dir, hash)| Some((XetObjectKind::of_dir(dir)?, hash)))
            else {
                continue;
            };
            out.push(StoredXetObject {
                name: is_sha256_hex(hash).then(|| (kind, hash.to_string())),
                size: meta.size,
            });
        }
        Ok(out)
    }

    fn refreshed_key(&self, namespace: &str, kind: XetObjectKind, hash: &str) -> Key {
        self.key(&format!(
            "xet/{namespace}/{REFRESHED}/{}/{hash}",
            kind.dir()
        ))
    }

    /// For `store gc`: the Xet objects to remove, in removal order (a xorb's chunk index
    /// before the xorb: an index means its xorb is there; markers after their objects).
    /// `listed` is the store's listing, `live_files` the SHA-256 of every file each
    /// namespace's revisions and pending uploads name. Every shard is read before anything is
    /// removed: one that cannot be read stops the collection.
    pub(super) async fn xet_garbage(
        &self,
        listed: &[ObjectMeta],
        live_files: &BTreeMap<String, BTreeSet<String>>,
        grace: Duration,
        now: SystemTime,
        report: &mut GcReport,
    ) -> Result<Vec<XetGarbage>, StoreError> {
        use XetObjectKind as K;
        let listing = XetListing::of(self, listed);
        let empty = BTreeSet::new();
        let mut garbage = Vec::new();
        for (namespace, ns) in &listing.0 {
            let mut shards = Vec::new();
            for hash in ns.hashes(&[K::Shard]) {
                let key = self.key(&xet_object_name(namespace, K::Shard, &hash)?);
                let cap = crate::gate::xet::shard::MAX_SHARD_LEN as u64;
                let Some(bytes) = self.read_capped(&key, cap).await? else {
                    continue; // removed since listed
                };
                shards.push((hash, bytes));
            }
            let live = super::xet_gc::live_xet(
                shards.iter().map(|(h, b)| (h.as_str(), b.as_slice())),
                live_files.get(namespace).unwrap_or(&empty),
            )
            .map_err(|(hash, why)| StoreError::Corrupt {
                location: format!(
                    "s3://{}/{}",
                    self.bucket(),
                    self.key(&format!("xet/{namespace}/{}/{hash}", K::Shard.dir()))
                ),
                why: format!(
                    "{why}; nothing was removed (a shard that cannot be read may name xorbs \
                     that must stay)"
                ),
            })?;
            let mut collect = |kinds: &[K], hash: &str| -> Result<(), StoreError> {
                if !kinds.iter().all(|k| ns.older_than(*k, hash, grace, now)) {
                    report.kept_recent += 1;
                    return Ok(());
                }
                for kind in kinds.iter().filter(|k| ns.has(**k, hash)) {
                    garbage.push(XetGarbage {
                        object: Some(self.key(&xet_object_name(namespace, *kind, hash)?)),
                        marker: self.refreshed_key(namespace, *kind, hash),
                        grace,
                    });
                }
                Ok(())
            };
            for (hash, _) in shards.iter().filter(|(h, _)| !live.shards.contains(h)) {
                collect(&[K::Shard], hash)?;
            }
            for hash in ns.hashes(&[K::Xorb, K::XorbIndex]) {
                if !live.xorbs.contains(&hash) {
                    collect(&[K::XorbIndex, K::Xorb], &hash)?;
                }
            }
            // Markers past the grace period no longer matter (the object's own age decides,
            // and it is older still); younger ones go with their object. A young marker whose
            // object was not listed stays: the listing may have missed a new object.
            for ((kind, hash), modified) in &ns.refreshed {
                if super::gc::older_than(*modified, grace, now) {
                    garbage.push(XetGarbage {
                        object: None,
                        marker: self.key(&format!("xet/{namespace}/{REFRESHED}/{kind}/{hash}")),
                        grace,
                    });
                }
            }
        }
        Ok(garbage)
    }

    /// Removes one Xet object found garbage, unless an upload refreshed it since the store was
    /// listed (its marker is now younger than the grace period), then its marker. Returns the
    /// store-relative name of the object removed.
    pub(super) async fn remove_xet_garbage(
        &self,
        g: &XetGarbage,
    ) -> Result<Option<String>, StoreError> {
        let ignore_absent = |key: &Key, r: object_store::Result<()>| match r {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.storage(key, e)),
        };
        let Some(object) = &g.object else {
            ignore_absent(&g.marker, self.client().delete(&g.marker).await)?;
            return Ok(None);
        };
        match self.client().head(&g.marker).await {
            Ok(m) => {
                let refreshed = SystemTime::from(m.last_modified);
                if !super::gc::older_than(refreshed, g.grace, SystemTime::now()) {
                    return Ok(None);
                }
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.storage(&g.marker, e)),
        }
        ignore_absent(object, self.client().delete(object).await)?;
        ignore_absent(&g.marker, self.client().delete(&g.marker).await)?;
        Ok(Some(self.relative(object)))
    }

    /// The store-relative name of `key`.
    pub(super) fn relative(&self, key: &Key) -> String {
        match self.prefix_str() {
            "" => key.to_string(),
            p => key
                .as_ref()
                .strip_prefix(&format!("{p}/"))
                .unwrap_or(key.as_ref())
                .to_string(),
        }
    }
}

/// A Xet object (or a lone refresh marker) `store gc` removes.
#[derive(Debug)]
pub(super) struct XetGarbage {
    /// None for a marker whose object is gone or which no longer matters.
    object: Option<Key>,
    marker: Key,
    grace: Duration,
}

/// The listed Xet objects and refresh markers of one namespace, by (kind folder, hash).
#[derive(Default)]
struct NamespaceXet {
    objects: BTreeMap<(String, String), SystemTime>,
    refreshed: BTreeMap<(String, String), SystemTime>,
}

impl NamespaceXet {
    fn has(&self, kind: XetObjectKind, hash: &str) -> bool {
        self.objects
            .contains_key(&(kind.dir().to_string(), hash.to_string()))
    }

    /// The hashes of the objects of these kinds.
    fn hashes(&self, kinds: &[XetObjectKind]) -> BTreeSet<String> {
        self.objects
            .keys()
            .filter(|(k, _)| kinds.iter().any(|kind| kind.dir() == k))
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// True if the object (absent counts as old) and its refresh marker are both older than
    /// the grace period.
    fn older_than(
        &self,
        kind: XetObjectKind,
        hash: &str,
        grace: Duration,
        now: SystemTime,
    ) -> bool {
        let at = (kind.dir().to_string(), hash.to_string());
        [self.objects.get(&at), self.refreshed.get(&at)]
            .into_iter()
            .flatten()
            .all(|t| super::gc::older_than(*t, grace, now))
    }
}

/// Every namespace's Xet objects in a listing of the store.
struct XetListing(BTreeMap<String, NamespaceXet>);

impl XetListing {
    fn of(store: &BucketStore, listed: &[ObjectMeta]) -> Self {
        let mut out: BTreeMap<String, NamespaceXet> = BTreeMap::new();
        for meta in listed {
            let name = store.relative(&meta.location);
            let modified = SystemTime::from(meta.last_modified);
            let parts: Vec<&str> = name.split('/').collect();
            let (namespace, slot, kind, hash) = match parts.as_slice() {
                ["xet", ns, REFRESHED, kind, hash] => (ns, true, kind, hash),
                ["xet", ns, kind, hash] => (ns, false, kind, hash),
                _ => continue,
            };
            // Only objects named as the store writes them; anything else is not collected.
            let known = [
                XetObjectKind::Xorb,
                XetObjectKind::XorbIndex,
                XetObjectKind::Shard,
            ]
            .iter()
            .any(|k| k.dir() == *kind);
            if !known || !is_sha256_hex(hash) {
                continue;
            }
            let ns = out.entry(namespace.to_string()).or_default();
            let at = (kind.to_string(), hash.to_string());
            match slot {
                true => ns.refreshed.insert(at, modified),
                false => ns.objects.insert(at, modified),
            };
        }
        XetListing(out)
    }
}
