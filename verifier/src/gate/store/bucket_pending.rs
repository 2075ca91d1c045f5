//! The bucket store's pending area. An uploaded object streams as an S3 multipart upload
//! straight to its blob key `blobs/<sha256>`, each part sent from the buffers it arrived in and
//! hashed (SHA-256, BLAKE3) from them on the bulk pool while it uploads, several parts in flight; the upload is completed (the object
//! appears, whole) only when the size and SHA-256 are the declared ones, and aborted otherwise
//! or when the client goes away. So a commit that adopts it copies nothing.
//!
//! ```text
//! PREFIX/pending/<namespace>/<sha256>.json            a received object: BucketPending
//! PREFIX/pending/<namespace>/receiving/<id>.json      a receipt in progress: Receiving
//! PREFIX/pending/<namespace>/refused/<sha256>.json    a refused commit's object: BucketPending
//! ```
//!
//! A blob is served only through a revision record, so a completed blob no record names is
//! visible to nobody; `store gc` keeps the blobs of pending objects younger than its grace
//! period and removes the rest, with expired pending records and receipts a killed gate left.
//! A refused commit cannot delete the blobs it adopted (another namespace's upload of the same
//! bytes may have adopted the same object, and a bucket has no lock to tell), so it moves their
//! records to `refused/`: no longer pending (no commit resolves them), but still counted against
//! the namespace's cap until `store gc` has removed the blob or found a revision naming it.
//! A blob that already exists (a revision of any namespace, or an earlier upload) is never
//! overwritten, which would change the ETag its records pin: the new upload is aborted and the
//! existing object is read back and hashed once, so nothing altered is ever adopted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use futures::StreamExt as _;
use object_store::multipart::{MultipartStore as _, PartId};
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};

use crate::gate::bulk;

use super::received::ReceivedDigest;
use super::{
    BlobIdentity, BucketStore, ByteStream, ExpectedObject, PendingError, PendingObject, Store as _,
    StoreError, is_sha256_hex,
};

/// Bytes per multipart part (S3's minimum is 5 MiB for all but the last).
const PART: usize = 16 << 20;
/// Parts uploading at once per receipt.
const PARTS_IN_FLIGHT: usize = 4;
/// Largest pending record read.
const MAX_PENDING_RECORD: u64 = 4096;
/// Where a refused commit's objects are recorded under the namespace's pending area.
const REFUSED: &str = "refused";

/// A received object and the blob it was completed as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct BucketPending {
    pub object: PendingObject,
    /// The blob's ETag as a reader saw it once the object was complete and checked.
    pub etag: Option<String>,
}

/// A receipt in progress: counted against its namespace's cap, aborted by `store gc` if its
/// gate died.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Receiving {
    pub key: String,
    pub upload_id: String,
    pub size: u64,
    pub started_at: i64,
}

impl BucketStore {
    fn pending_dir(&self, namespace: &str) -> Result<String, StoreError> {
        super::folder_pending::check_namespace(namespace)?;
        Ok(format!("pending/{namespace}"))
    }

    fn pending_key(&self, namespace: &str, sha256: &str) -> Result<Key, StoreError> {
        Ok(self.key(&format!("{}/{sha256}.json", self.pending_dir(namespace)?)))
    }

    pub(super) async fn put_pending_now(
        &self,
        namespace: &str,
        expected: &ExpectedObject,
        mut body: ByteStream<'_>,
        now: i64,
    ) -> Result<PendingObject, PendingError> {
        if expected.size > expected.max_size {
            return Err(PendingError::OverFileCap {
                declared: expected.size,
                cap: expected.max_size,
            });
        }
        let dir = self.pending_dir(namespace)?;
        let sha_hex = hex::encode(expected.sha256);
        let key = self.blob_key(&sha_hex);
        let mut receipt = Receipt::start(self, &dir, key, expected.size, now).await?;
        // hyper's buffers, gathered without a copy into the next part.
        let mut part: Vec<Bytes> = Vec::new();
        let mut gathered = 0usize;
        loop {
            let chunk = match tokio::time::timeout(expected.idle_timeout, body.next()).await {
                Err(_) => return Err(PendingError::Idle(expected.idle_timeout)),
                Ok(None) => None,
                Ok(Some(Err(e))) => return Err(PendingError::Connection(e)),
                Ok(Some(Ok(c))) => Some(c),
            };
            let ended = chunk.is_none();
            if let Some(mut c) = chunk {
                let got = receipt.sent + (gathered + c.len()) as u64;
                if got > expected.size {
                    return Err(PendingError::TooLong {
                        declared: expected.size,
                        got,
                    });
                }
                // Every part but the last is exactly PART bytes (S3 wants equal-sized parts).
                while gathered + c.len() >= PART {
                    part.push(c.split_to(PART - gathered));
                    gathered = 0;
                    receipt.send(std::mem::take(&mut part)).await?;
                }
                if !c.is_empty() {
                    gathered += c.len();
                    part.push(c);
                }
            }
            if ended {
                if gathered > 0 || receipt.parts_sent == 0 {
                    receipt.send(std::mem::take(&mut part)).await?;
                }
                break;
            }
        }
        if receipt.sent != expected.size {
            return Err(PendingError::TooShort {
                declared: expected.size,
                got: receipt.sent,
            });
        }
        receipt.keep(expected, now).await
    }

    /// The pending record of `sha256` in `namespace`, if any.
    pub(super) async fn pending_record(
        &self,
        namespace: &str,
        sha256: &str,
    ) -> Result<Option<BucketPending>, StoreError> {
        if !is_sha256_hex(sha256) {
            return Ok(None);
        }
        let key = self.pending_key(namespace, sha256)?;
        let Some(bytes) = self.read_capped(&key, MAX_PENDING_RECORD).await? else {
            return Ok(None);
        };
        let record: BucketPending =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                location: format!("s3://{}/{key}", self.bucket()),
                why: e.to_string(),
            })?;
        Ok((record.object.sha256 == sha256).then_some(record))
    }

    pub(super) async fn pending_object_now(
        &self,
        namespace: &str,
        sha256: &str,
    ) -> Result<Option<PendingObject>, StoreError> {
        let Some(record) = self.pending_record(namespace, sha256).await? else {
            return Ok(None);
        };
        // Its blob must still be there, of the recorded size.
        match self.blob_state(sha256).await? {
            Some(s) if s.size == record.object.size => Ok(Some(record.object)),
            _ => Ok(None),
        }
    }

    pub(super) async fn pending_bytes_now(&self, namespace: &str) -> Result<u64, StoreError> {
        let dir = self.pending_dir(namespace)?;
        let mut total = 0u64;
        for meta in self.list(&dir).await? {
            let Some(bytes) = self.read_capped(&meta.location, MAX_PENDING_RECORD).await? else {
                continue; // taken or finished since listed
            };
            let size = if meta.location.as_ref().contains("/receiving/") {
                serde_json::from_slice::<Receiving>(&bytes).map(|r| r.size)
            } else {
                serde_json::from_slice::<BucketPending>(&bytes).map(|r| r.object.size)
            };
            total = total.saturating_add(size.unwrap_or(0));
        }
        Ok(total)
    }

    pub(super) async fn pending_sizes_now(&self, namespace: &str) -> Result<Vec<u64>, StoreError> {
        let dir = self.pending_dir(namespace)?;
        let mut sizes = Vec::new();
        for meta in self.list(&dir).await? {
            // Received objects only: `pending/<ns>/<sha256>.json`, not receipts or refusals.
            let received = self
                .relative(&meta.location)
                .strip_prefix(&format!("{dir}/"))
                .is_some_and(|name| !name.contains('/'));
            if !received {
                continue;
            }
            let Some(bytes) = self.read_capped(&meta.location, MAX_PENDING_RECORD).await? else {
                continue; // taken since listed
            };
            if let Ok(r) = serde_json::from_slice::<BucketPending>(&bytes) {
                sizes.push(r.object.size);
            }
        }
        Ok(sizes)
    }

    /// Removes the pending record of `sha256` in `namespace`, adopted by a published commit;
    /// its blob stays for the revision that names it.
    pub(super) async fn release_pending(&self, namespace: &str, sha256: &str) {
        let Ok(key) = self.pending_key(namespace, sha256) else {
            return;
        };
        if let Err(e) = self.client().delete(&key).await {
            tracing::warn!(key = %key, error = %e, "cannot remove a pending record; it expires");
        }
    }

    /// Moves the pending record of `sha256` in `namespace`, adopted by a refused commit, to
    /// `refused/`: the object is no longer pending, and its blob counts against the
    /// namespace's cap until `store gc` settles it. Written before the pending record goes, so
    /// the bytes are counted throughout.
    pub(super) async fn refuse_pending(&self, namespace: &str, sha256: &str) {
        let (Ok(key), Ok(dir)) = (
            self.pending_key(namespace, sha256),
            self.pending_dir(namespace),
        ) else {
            return;
        };
        let refused = self.key(&format!("{dir}/{REFUSED}/{sha256}.json"));
        let moved = match self.read_capped(&key, MAX_PENDING_RECORD).await {
            Ok(Some(bytes)) => self
                .client()
                .put(&refused, PutPayload::from(bytes))
                .await
                .map_err(|e| self.storage(&refused, e)),
            Ok(None) => return, // taken by another commit
            Err(e) => Err(e),
        };
        if let Err(e) = moved {
            // Left pending: it still counts, and expires with the pending lifetime.
            tracing::warn!(key = %key, error = %e, "cannot move a refused commit's pending record");
            return;
        }
        self.release_pending(namespace, sha256).await;
    }

    /// The blob of a pending object as a commit adopts it: still there, of its size, and the
    /// bytes received (by ETag, or read back and hashed if the ETag changed).
    pub(super) async fn adopt_blob(
        &self,
        namespace: &str,
        object: &PendingObject,
    ) -> Result<BlobIdentity, StoreError> {
        let gone = || StoreError::NotFound {
            location: format!("{namespace}/{}", object.sha256),
            why: "the pending object was taken by another commit or expired",
        };
        let record = self
            .pending_record(namespace, &object.sha256)
            .await?
            .ok_or_else(gone)?;
        let state = self.blob_state(&object.sha256).await?.ok_or_else(gone)?;
        let location = format!("s3://{}/{}", self.bucket(), self.blob_key(&object.sha256));
        if state.size != object.size {
            return Err(StoreError::BlobChanged {
                location,
                why: format!("{} bytes, received {}", state.size, object.size),
            });
        }
        if state.identity == (BlobIdentity::Object { etag: record.etag }) {
            return Ok(state.identity);
        }
        // Completed again by a concurrent upload of the same bytes, or altered: hash it.
        let (hashes, state) = self.rehash_blob(&object.sha256, &|_| {}).await?;
        if hex::encode(hashes.sha256) != object.sha256 {
            return Err(StoreError::BlobChanged {
                location,
                why: format!("its SHA-256 is now {}", hex::encode(hashes.sha256)),
            });
        }
        Ok(state.identity)
    }
}

/// Where the hashes of a receipt are: here, or on the bulk pool with the last part sent.
enum Hasher {
    Here(Box<ReceivedDigest>),
    Away(bulk::Pending<Box<ReceivedDigest>>),
    /// Lost with a job that panicked.
    Gone,
}

/// One object being received: its multipart upload (aborted when dropped unless kept), its
/// `receiving/` record, the parts in flight and the hashes of what was sent.
struct Receipt<'a> {
    store: &'a BucketStore,
    key: Key,
    upload_id: String,
    marker: Key,
    hasher: Hasher,
    /// Bytes handed to [`Receipt::send`].
    sent: u64,
    parts_sent: usize,
    in_flight: VecDeque<tokio::task::JoinHandle<object_store::Result<PartId>>>,
    parts: Vec<PartId>,
    finished: bool,
}

impl<'a> Receipt<'a> {
    async fn start(
        store: &'a BucketStore,
        dir: &str,
        key: Key,
        size: u64,
        now: i64,
    ) -> Result<Receipt<'a>, StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let marker = store.key(&format!(
            "{dir}/receiving/{nanos}-{}-{n}.json",
            std::process::id()
        ));
        let upload_id = store
            .client()
            .create_multipart(&key)
            .await
            .map_err(|e| store.storage(&key, e))?;
        let receiving = Receiving {
            key: key.to_string(),
            upload_id: upload_id.clone(),
            size,
            started_at: now,
        };
        let receipt = Receipt {
            store,
            key,
            upload_id,
            marker,
            hasher: Hasher::Here(Box::new(ReceivedDigest::new())),
            sent: 0,
            parts_sent: 0,
            in_flight: VecDeque::new(),
            parts: Vec::new(),
            finished: false,
        };
        let json = serde_json::to_vec(&receiving).expect("serialisable");
        store
            .client()
            .put(&receipt.marker, PutPayload::from(json))
            .await
            .map_err(|e| store.storage(&receipt.marker, e))?;
        Ok(receipt)
    }

    /// Sends `part` (the buffers it arrived in) as the next part of the upload, hashing it
    /// on the bulk pool meanwhile; waits for the previous part's hashing, and for the oldest
    /// part in flight when too many are.
    async fn send(&mut self, part: Vec<Bytes>) -> Result<(), StoreError> {
        let payload: PutPayload = part.iter().cloned().collect();
        self.sent += payload.content_length() as u64;
        let mut digest = self.digest().await?;
        self.hasher = Hasher::Away(bulk::submit(move || {
            for bytes in &part {
                digest.update(bytes);
            }
            digest
        }));
        if self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.join_oldest().await?;
        }
        let (s3, key, id, idx) = (
            self.store.client().clone(),
            self.key.clone(),
            self.upload_id.clone(),
            self.parts_sent,
        );
        self.in_flight.push_back(tokio::spawn(async move {
            s3.put_part(&key, &id, idx, payload).await
        }));
        self.parts_sent += 1;
        Ok(())
    }

    /// The hashes of every part sent, once the last one is hashed.
    async fn digest(&mut self) -> Result<Box<ReceivedDigest>, StoreError> {
        match std::mem::replace(&mut self.hasher, Hasher::Gone) {
            Hasher::Here(d) => Ok(d),
            Hasher::Away(pending) => pending.await.map_err(|e| StoreError::Io {
                path: format!("s3://{}/{}", self.store.bucket(), self.key).into(),
                error: std::io::Error::other(e),
            }),
            Hasher::Gone => Err(StoreError::Io {
                path: format!("s3://{}/{}", self.store.bucket(), self.key).into(),
                error: std::io::Error::other(bulk::JobLost),
            }),
        }
    }

    async fn join_oldest(&mut self) -> Result<(), StoreError> {
        let Some(task) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let part = task
            .await
            .unwrap_or_else(|e| {
                Err(object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e),
                })
            })
            .map_err(|e| self.store.storage(&self.key, e))?;
        self.parts.push(part);
        Ok(())
    }

    /// Checks the digest, completes the upload (or keeps the blob already there), and records
    /// the object as pending.
    async fn keep(
        mut self,
        expected: &ExpectedObject,
        now: i64,
    ) -> Result<PendingObject, PendingError> {
        while !self.in_flight.is_empty() {
            self.join_oldest().await?;
        }
        let object = self.digest().await?.finish(expected, now)?;
        let store = self.store;
        let name = object.sha256.clone();
        let existing = store.blob_state(&name).await?;
        let etag = match existing {
            // Never overwritten: its ETag may be pinned by a revision record. The received
            // bytes are the declared ones; the stored ones are hashed before they are adopted.
            Some(state) => {
                self.abort().await;
                match state.identity {
                    BlobIdentity::Object { etag } => etag,
                    BlobIdentity::File { .. } => None,
                }
            }
            None => {
                let parts = std::mem::take(&mut self.parts);
                store
                    .client()
                    .complete_multipart(&self.key, &self.upload_id, parts)
                    .await
                    .map_err(|e| store.storage(&self.key, e))?;
                self.finished = true;
                // The ETag as a reader sees it (HEAD), as commits compare it.
                match store.blob_state(&name).await? {
                    Some(s) if s.size == expected.size => match s.identity {
                        BlobIdentity::Object { etag } => etag,
                        BlobIdentity::File { .. } => None,
                    },
                    _ => {
                        return Err(StoreError::NotFound {
                            location: format!("s3://{}/{}", store.bucket(), self.key),
                            why: "just after the upload completed",
                        }
                        .into());
                    }
                }
            }
        };
        let record = BucketPending {
            object: object.clone(),
            etag,
        };
        let dir = store.pending_dir_of(&self.marker);
        let key = store.key(&format!("{dir}/{name}.json"));
        store
            .client()
            .put(
                &key,
                PutPayload::from(serde_json::to_vec(&record).expect("serialisable")),
            )
            .await
            .map_err(|e| store.storage(&key, e))?;
        self.finished = true;
        let _ = store.client().delete(&self.marker).await;
        // Received again after a refusal: counted once, as pending.
        let refused = store.key(&format!("{dir}/{REFUSED}/{name}.json"));
        let _ = store.client().delete(&refused).await;
        Ok(object)
    }

    /// Aborts the upload and removes the receipt's record.
    async fn abort(&mut self) {
        self.finished = true;
        for task in self.in_flight.drain(..) {
            task.abort();
        }
        let s3 = self.store.client();
        if let Err(e) = s3.abort_multipart(&self.key, &self.upload_id).await {
            tracing::warn!(key = %self.key, error = %e, "cannot abort an upload; `store gc` will");
            return; // the marker stays, for gc
        }
        let _ = s3.delete(&self.marker).await;
    }
}

impl Drop for Receipt<'_> {
    /// A receipt that ended without being kept (refused, disconnected, idle, or its request
    /// dropped): its upload is aborted in the background; what that misses, gc aborts.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        for task in self.in_flight.drain(..) {
            task.abort();
        }
        let (s3, key, id, marker) = (
            self.store.client().clone(),
            self.key.clone(),
            self.upload_id.clone(),
            self.marker.clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if s3.abort_multipart(&key, &id).await.is_ok() {
                    let _ = s3.delete(&marker).await;
                }
            });
        }
    }
}

impl BucketStore {
    /// `pending/<namespace>` of a key under it.
    fn pending_dir_of(&self, marker: &Key) -> String {
        let prefix = match self.prefix_str() {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let rel = marker
            .as_ref()
            .strip_prefix(&prefix)
            .unwrap_or(marker.as_ref());
        rel.split('/').take(2).collect::<Vec<_>>().join("/")
    }

    /// For `store gc`: removes pending records received at or before `expired_before` and
    /// aborts receipts started then (a gate that died mid-upload). Returns the objects the
    /// remaining pending records name, the refused commits' records (left for gc to settle
    /// once it knows what became of their blobs), and how many were removed.
    pub(super) async fn expire_pending(
        &self,
        expired_before: i64,
    ) -> Result<PendingSweep, StoreError> {
        let mut sweep = PendingSweep::default();
        for meta in self.list("pending").await? {
            let Some(bytes) = self.read_capped(&meta.location, MAX_PENDING_RECORD).await? else {
                continue;
            };
            let location = &meta.location;
            let rel = self.relative(location);
            let parts: Vec<&str> = rel.split('/').collect();
            match parts.as_slice() {
                ["pending", _, "receiving", _] => {
                    let r = serde_json::from_slice::<Receiving>(&bytes).ok();
                    if r.as_ref().is_some_and(|r| r.started_at > expired_before) {
                        continue;
                    }
                    if let Some(r) = r {
                        let key = Key::from(r.key.as_str());
                        match self.client().abort_multipart(&key, &r.upload_id).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                            Err(e) => return Err(self.storage(&key, e)),
                        }
                    }
                }
                ["pending", _, REFUSED, _] => {
                    match serde_json::from_slice::<BucketPending>(&bytes) {
                        Ok(r) => sweep.refused.push((location.clone(), r.object.sha256)),
                        // Unreadable: it counts for nothing useful; removed.
                        Err(_) => {
                            self.client()
                                .delete(location)
                                .await
                                .map_err(|e| self.storage(location, e))?;
                        }
                    }
                    continue;
                }
                ["pending", namespace, _] => {
                    let r = serde_json::from_slice::<BucketPending>(&bytes).ok();
                    if let Some(r) = r.filter(|r| r.object.received_at > expired_before) {
                        sweep
                            .live
                            .push((namespace.to_string(), r.object.sha256.clone()));
                        continue;
                    }
                }
                _ => continue, // not written by the store
            }
            self.client()
                .delete(location)
                .await
                .map_err(|e| self.storage(location, e))?;
            sweep.removed += 1;
        }
        Ok(sweep)
    }
}

/// What [`BucketStore::expire_pending`] found.
#[derive(Debug, Default)]
pub(super) struct PendingSweep {
    /// (namespace, SHA-256) of every pending object that stays.
    pub live: Vec<(String, String)>,
    /// The key and SHA-256 of every refused commit's record.
    pub refused: Vec<(Key, String)>,
    /// Records removed and receipts aborted.
    pub removed: usize,
}
