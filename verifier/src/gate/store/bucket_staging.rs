//! The bucket store's write side, in one pass over each source file: it is read once, in
//! parts; every part goes to the SHA-256 and BLAKE3 hashers and, as a part of an S3 multipart
//! upload to `blobs/<attested sha256>`, to the bucket, several parts in flight while the next is
//! read. A multipart upload is invisible until completed: committing completes the uploads (or,
//! where a blob of the same digest was stored meanwhile, aborts them and reuses the blob once
//! its bytes are read back and found to be the admitted ones, never overwriting it), then
//! writes the envelope, grants and signature files, then the revision record, and the ref last.
//! Aborting aborts the uploads: nothing appears.
//!
//! Uploads in progress are listed in `uploads/<admission>.json` (written before each upload
//! starts), so `weightgate store gc` can abort those a killed admission left behind.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{ObjectStore as _, ObjectStoreExt as _, PutMode, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use weightgate_attest::hashing::Progress;
use weightgate_attest::reading::FileIdentity;

use super::{
    AdmittedFile, BlobIdentity, BlobSource, BucketStore, Hashes, PendingObject, Publication,
    RefPrecondition, RevisionRecord, SourceFile, StagedFile, Staging, Store as _, StoreError,
    ref_as_expected,
};

/// Bytes per part: over S3's 5 MiB minimum, few enough parts for a 10 GB shard (S3 allows
/// 10,000), large enough to keep each request's overhead small.
const PART: usize = 16 << 20;
/// Parts uploading at once per file (memory: this many parts, plus two being read and hashed).
const PARTS_IN_FLIGHT: usize = 6;

/// Uploads in progress, listed for `store gc` (`uploads/<admission>.json`).
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingUploads {
    pub started_at: i64,
    pub uploads: Vec<PendingUpload>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingUpload {
    /// The object key, relative to the bucket (prefix included).
    pub key: String,
    pub upload_id: String,
}

/// An admission into a bucket: the multipart uploads it started, by staged path, and the
/// pending uploads it adopted.
pub(super) struct BucketStaging<'a> {
    store: &'a BucketStore,
    pending: Pending<'a>,
    uploads: HashMap<String, (Key, String, Vec<PartId>)>,
    adopted: HashMap<String, Adopted>,
}

/// A pending upload taken into an admission: its blob is already complete under its final
/// name, as it was when adopted.
struct Adopted {
    namespace: String,
    sha256: String,
    identity: BlobIdentity,
}

impl<'a> BucketStaging<'a> {
    pub(super) fn new(store: &'a BucketStore, now: i64) -> Self {
        BucketStaging {
            store,
            pending: Pending::new(store, now),
            uploads: HashMap::new(),
            adopted: HashMap::new(),
        }
    }

    async fn put_file(
        &mut self,
        file: &SourceFile,
        progress: Progress<'_>,
    ) -> Result<StagedFile, StoreError> {
        let store = self.store;
        let key = store.blob_key(&hex::encode(file.sha256));
        let id = store
            .client()
            .create_multipart(&key)
            .await
            .map_err(|e| store.storage(&key, e))?;
        self.pending.add(key.clone(), id.clone()).await?;
        let (staged, parts) = stream_file(store, file, &key, &id, progress).await?;
        self.uploads.insert(file.path.clone(), (key, id, parts));
        Ok(staged)
    }

    async fn commit_now(&mut self, p: Publication<'_>) -> Result<RevisionRecord, StoreError> {
        let store = self.store;
        let mut files = Vec::with_capacity(p.files.len());
        for f in &p.files {
            let sha = hex::encode(f.hashes.sha256);
            let key = store.blob_key(&sha);
            let adopted = match &f.blob {
                BlobSource::Staged { staged_path } => self.adopted.get(staged_path),
                BlobSource::Stored(_) => None,
            };
            let mut existing = None;
            let etag = match &f.blob {
                BlobSource::Staged { .. } if adopted.is_some() => None,
                BlobSource::Staged { staged_path } => match self.uploads.remove(staged_path) {
                    Some((key, id, parts)) => match store.blob_state(&sha).await? {
                        // Stored since the plan (a concurrent upload or admission, or a small
                        // file another revision holds): never overwritten, as records pin its
                        // ETag. Our upload is dropped and the stored bytes are reused.
                        Some(_) => {
                            store
                                .client()
                                .abort_multipart(&key, &id)
                                .await
                                .map_err(|e| store.storage(&key, e))?;
                            existing = Some(existing_blob(store, &sha, f.size, f.hashes).await?);
                            None
                        }
                        None => {
                            store
                                .client()
                                .complete_multipart(&key, &id, parts)
                                .await
                                .map_err(|e| store.storage(&key, e))?
                                .e_tag
                        }
                    },
                    // A second file with the same bytes: its upload was completed above.
                    None => None,
                },
                BlobSource::Stored(_) => None,
            };
            // The ETag as a reader sees it (HEAD), so the server compares like with like.
            let now = store
                .blob_state(&sha)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    location: format!("s3://{}/{key}", store.bucket()),
                    why: "after upload",
                })?;
            if now.size != f.size {
                return Err(StoreError::BlobChanged {
                    location: format!("s3://{}/{key}", store.bucket()),
                    why: format!("{} bytes after upload, admitted {}", now.size, f.size),
                });
            }
            let found = match (&f.blob, adopted) {
                (BlobSource::Stored(found), _) => Some(found),
                (_, Some(a)) => Some(&a.identity),
                _ => existing.as_ref(),
            };
            let identity = match (found, now.identity) {
                (Some(found), now) if &now != found => {
                    return Err(StoreError::BlobChanged {
                        location: format!("s3://{}/{key}", store.bucket()),
                        why: "it was replaced while the admission was judged".into(),
                    });
                }
                (_, BlobIdentity::Object { etag: None }) => BlobIdentity::Object { etag },
                (_, now) => now,
            };
            files.push(AdmittedFile {
                path: f.path.clone(),
                size: f.size,
                sha256: sha,
                blake3: hex::encode(f.hashes.blake3),
                blob: identity,
            });
        }
        let attestation = put_content_addressed(
            store,
            &store.attestation_key(&hex::encode(Sha256::digest(p.envelope))),
            p.envelope,
        )
        .await?;
        let mut grant_ids = Vec::new();
        for g in p.grants {
            let id = hex::encode(Sha256::digest(g));
            put_content_addressed(store, &store.grant_key(&id), g).await?;
            grant_ids.push(id);
        }
        let mut signature_files = Vec::new();
        for (file, bytes) in p.signature_files() {
            put_content_addressed(store, &store.signature_key(&file.sha256), bytes).await?;
            signature_files.push(file);
        }
        let record = p.record(files, attestation, grant_ids, signature_files);
        let rkey = store.revision_key(p.repo, &p.revision);
        let json = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Corrupt {
            location: rkey.to_string(),
            why: e.to_string(),
        })?;
        // A commit creates its record only if absent (the same revision id is the same signed
        // payload), so a lost race removes only a record it created.
        let mode = match p.ref_was {
            RefPrecondition::Any => PutMode::Overwrite,
            _ => PutMode::Create,
        };
        let created = match store
            .client()
            .put_opts(&rkey, PutPayload::from(json), mode.into())
            .await
        {
            Ok(_) => true,
            Err(object_store::Error::AlreadyExists { .. }) => false,
            Err(e) => return Err(store.storage(&rkey, e)),
        };
        if let Err(e) = move_ref(store, &p).await {
            if let StoreError::RefMoved { now, .. } = &e
                && created
                && *now != p.revision
                && let Err(e) = store.client().delete(&rkey).await
            {
                tracing::warn!(key = %rkey, error = %e, "cannot remove the record of a commit that lost its branch");
            }
            return Err(e);
        }
        // A `store gc` that listed the store before this record existed deletes what it found
        // unreferenced only after listing the records again (gc.rs); what it removed between
        // our checks above and this record shows here, and the admission is not reported done.
        // Every object the record names: blobs, and the reused envelope, grants and signatures.
        let named = record
            .files
            .iter()
            .map(|f| store.blob_key(&f.sha256))
            .chain([store.attestation_key(&record.attestation)])
            .chain(record.grants.iter().map(|g| store.grant_key(g)))
            .chain(
                record
                    .signature_files
                    .iter()
                    .map(|s| store.signature_key(&s.sha256)),
            );
        for key in named {
            match store.client().head(&key).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(StoreError::NotFound {
                        location: format!("s3://{}/{key}", store.bucket()),
                        why: "removed by a concurrent `store gc` after the revision was \
                              published; admit it again",
                    });
                }
                Err(e) => return Err(store.storage(&key, e)),
            }
        }
        Ok(record)
    }
}

#[async_trait::async_trait]
impl Staging for BucketStaging<'_> {
    async fn put_files(
        &mut self,
        files: &[SourceFile],
        progress: Progress<'_>,
    ) -> Result<Vec<StagedFile>, StoreError> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            out.push(self.put_file(f, progress).await?);
        }
        Ok(out)
    }

    async fn commit(
        mut self: Box<Self>,
        publication: Publication<'_>,
    ) -> Result<RevisionRecord, StoreError> {
        match self.commit_now(publication).await {
            Ok(record) => {
                self.pending.finish().await;
                for a in self.adopted.values() {
                    self.store.release_pending(&a.namespace, &a.sha256).await;
                }
                Ok(record)
            }
            Err(e) => {
                self.pending.abort_all().await;
                Err(e)
            }
        }
    }

    async fn put_bytes(&mut self, staged_path: &str, bytes: &[u8]) -> Result<Hashes, StoreError> {
        let store = self.store;
        let hashes = Hashes {
            sha256: Sha256::digest(bytes).into(),
            blake3: blake3::hash(bytes).into(),
        };
        let key = store.blob_key(&hex::encode(hashes.sha256));
        let id = store
            .client()
            .create_multipart(&key)
            .await
            .map_err(|e| store.storage(&key, e))?;
        self.pending.add(key.clone(), id.clone()).await?;
        let part = store
            .client()
            .put_part(&key, &id, 0, PutPayload::from(bytes.to_vec()))
            .await
            .map_err(|e| store.storage(&key, e))?;
        self.uploads
            .insert(staged_path.to_string(), (key, id, vec![part]));
        Ok(hashes)
    }

    async fn adopt_pending(
        &mut self,
        namespace: &str,
        object: &PendingObject,
        staged_path: &str,
        head_len: usize,
    ) -> Result<StagedFile, StoreError> {
        let store = self.store;
        let hashes = object.hashes().ok_or_else(|| StoreError::Corrupt {
            location: format!("{namespace}/{}", object.sha256),
            why: "not a pending object's digests".into(),
        })?;
        let identity = store.adopt_blob(namespace, object).await?;
        let len = (head_len as u64).min(object.size);
        let head = match len {
            0 => Vec::new(),
            len => store.read_blob(&object.sha256, 0, len).await?,
        };
        self.adopted.insert(
            staged_path.to_string(),
            Adopted {
                namespace: namespace.to_string(),
                sha256: object.sha256.clone(),
                identity,
            },
        );
        Ok(StagedFile { hashes, head })
    }

    async fn abort(self: Box<Self>) {
        self.pending.abort_all().await;
        // Refused: no longer pending, but their blobs count until `store gc` settles them.
        for a in self.adopted.values() {
            self.store.refuse_pending(&a.namespace, &a.sha256).await;
        }
    }
}

/// Moves the ref of `p` to its revision, on the condition `p.ref_was` (a conditional PUT:
/// `If-None-Match: *` or `If-Match` on the ETag read with the ref), so that of two gates racing
/// on one branch exactly one moves it.
async fn move_ref(store: &BucketStore, p: &Publication<'_>) -> Result<(), StoreError> {
    let key = store.ref_key(p.repo, p.ref_name);
    let payload = PutPayload::from(format!("{}\n", p.revision).into_bytes());
    let current = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
    let mode = match &p.ref_was {
        RefPrecondition::Any => PutMode::Overwrite,
        RefPrecondition::Absent => PutMode::Create,
        RefPrecondition::At(_) => {
            let got = match store.client().get(&key).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => {
                    return ref_as_expected(p.repo, p.ref_name, &p.ref_was, None);
                }
                Err(e) => return Err(store.storage(&key, e)),
            };
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got.bytes().await.map_err(|e| store.storage(&key, e))?;
            ref_as_expected(p.repo, p.ref_name, &p.ref_was, Some(&current(&bytes)))?;
            PutMode::Update(version)
        }
    };
    match store.client().put_opts(&key, payload, mode.into()).await {
        Ok(_) => Ok(()),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => {
            let now = store.read_capped(&key, super::MAX_REF_LEN).await?;
            let now = now.map(|b| current(&b));
            ref_as_expected(p.repo, p.ref_name, &p.ref_was, now.as_deref())?;
            // Moved and moved back between our read and our write: still another commit's.
            Err(StoreError::RefMoved {
                repo: p.repo.to_string(),
                ref_name: p.ref_name.to_string(),
                judged_against: match &p.ref_was {
                    RefPrecondition::At(r) => r.clone(),
                    _ => "no commit".into(),
                },
                now: now.unwrap_or_else(|| "no commit".into()),
            })
        }
        Err(e) => Err(store.storage(&key, e)),
    }
}

/// One read of `file`: each part hashed (SHA-256 on the reading thread, BLAKE3 on its own)
/// and sent as a part of multipart upload `upload`, several in flight.
async fn stream_file(
    store: &BucketStore,
    file: &SourceFile,
    key: &Key,
    upload: &str,
    progress: Progress<'_>,
) -> Result<(StagedFile, Vec<PartId>), StoreError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    let reader = spawn_reader(file.clone(), tx);
    let s3: Arc<AmazonS3> = store.client().clone();
    let mut in_flight: VecDeque<tokio::task::JoinHandle<object_store::Result<PartId>>> =
        VecDeque::new();
    let mut parts = Vec::new();
    let mut part_idx = 0;
    let mut failure = None;
    while let Some(chunk) = rx.recv().await {
        progress(chunk.len() as u64);
        let id = upload;
        if in_flight.len() >= PARTS_IN_FLIGHT
            && let Some(first) = in_flight.pop_front()
        {
            match joined(first.await) {
                Ok(p) => parts.push(p),
                Err(e) => {
                    failure = Some(store.storage(key, e));
                    break;
                }
            }
        }
        let (s3, key, id) = (s3.clone(), key.clone(), id.to_string());
        let idx = part_idx;
        in_flight.push_back(tokio::spawn(async move {
            s3.put_part(&key, &id, idx, PutPayload::from(chunk)).await
        }));
        part_idx += 1;
    }
    // Closing the channel stops the reader at its next part.
    drop(rx);
    for task in in_flight {
        match joined(task.await) {
            Ok(p) => parts.push(p),
            Err(e) => {
                failure.get_or_insert(store.storage(key, e));
            }
        }
    }
    let read = crate::gate::blocking(|| reader.join())
        .map_err(|_| StoreError::source_changed(&file.fs_path))?;
    // An upload that failed stopped the reader early: its error is the one to report.
    if let Some(e) = failure {
        return Err(e);
    }
    let staged = read?;
    Ok((staged, parts))
}

fn joined(
    r: Result<object_store::Result<PartId>, tokio::task::JoinError>,
) -> object_store::Result<PartId> {
    r.unwrap_or_else(|e| {
        Err(object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        })
    })
}

/// The reading thread: the file in `PART`-sized reads, each hashed and passed on, its first
/// `head_len` bytes kept; the file is checked against the identity it was opened with.
fn spawn_reader(
    file: SourceFile,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> std::thread::JoinHandle<Result<StagedFile, StoreError>> {
    std::thread::spawn(move || {
        let changed = || StoreError::source_changed(&file.fs_path);
        let io = |error| StoreError::Io {
            path: file.fs_path.clone(),
            error,
        };
        let mut input = File::open(&file.fs_path).map_err(io)?;
        let before = FileIdentity::of(&input.metadata().map_err(io)?);
        if before.size != file.size || file.identity.is_some_and(|id| id != before) {
            return Err(changed());
        }
        let (b3_tx, b3_rx) = std::sync::mpsc::sync_channel::<Bytes>(2);
        let b3 = std::thread::spawn(move || {
            let mut h = blake3::Hasher::new();
            for chunk in b3_rx {
                h.update(&chunk);
            }
            <[u8; 32]>::from(h.finalize())
        });
        let header_len = file.head_len.min(file.size as usize);
        let mut head = Vec::with_capacity(header_len.min(PART));
        let mut sha = Sha256::new();
        let mut total = 0u64;
        let mut first = true;
        loop {
            let mut buf = vec![0u8; PART];
            let mut n = 0;
            while n < PART {
                let got = input.read(&mut buf[n..]).map_err(io)?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if n == 0 && !first {
                break;
            }
            first = false;
            buf.truncate(n);
            let chunk = Bytes::from(buf);
            sha.update(&chunk);
            if head.len() < header_len {
                let take = (header_len - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            total += n as u64;
            let _ = b3_tx.send(chunk.clone());
            if tx.blocking_send(chunk).is_err() {
                break; // the uploader gave up; its error is reported
            }
            if n < PART {
                break;
            }
        }
        drop(b3_tx);
        let blake3 = b3.join().map_err(|_| changed())?;
        let after = FileIdentity::of(&input.metadata().map_err(io)?);
        if total != file.size || after != before {
            return Err(changed());
        }
        Ok(StagedFile {
            hashes: Hashes {
                sha256: sha.finalize().into(),
                blake3,
            },
            head,
        })
    })
}

/// The identity of the stored blob `sha256` once its bytes, read back, are the admitted ones
/// (`hashes`, `size`): a blob that holds anything else is never adopted.
async fn existing_blob(
    store: &BucketStore,
    sha256: &str,
    size: u64,
    hashes: Hashes,
) -> Result<BlobIdentity, StoreError> {
    let (got, state) = store.rehash_blob(sha256, &|_| {}).await?;
    let location = format!("s3://{}/{}", store.bucket(), store.blob_key(sha256));
    if got != hashes {
        return Err(StoreError::BlobChanged {
            location,
            why: format!("its SHA-256 is {}", hex::encode(got.sha256)),
        });
    }
    if state.size != size {
        return Err(StoreError::BlobChanged {
            location,
            why: format!("{} bytes, admitted {size}", state.size),
        });
    }
    Ok(state.identity)
}

/// Stores `bytes` at `key` (named by their SHA-256) unless an object there already holds them;
/// returns the digest.
async fn put_content_addressed(
    store: &BucketStore,
    key: &Key,
    bytes: &[u8],
) -> Result<String, StoreError> {
    let id = hex::encode(Sha256::digest(bytes));
    if let Ok(Some(existing)) = store.read_capped(key, bytes.len() as u64).await
        && hex::encode(Sha256::digest(&existing)) == id
    {
        return Ok(id);
    }
    store
        .client()
        .put(key, PutPayload::from(bytes.to_vec()))
        .await
        .map_err(|e| store.storage(key, e))?;
    Ok(id)
}

/// The uploads this admission started, listed in the bucket for `store gc`.
struct Pending<'a> {
    store: &'a BucketStore,
    key: Key,
    list: PendingUploads,
}

impl<'a> Pending<'a> {
    fn new(store: &'a BucketStore, now: i64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{now}-{}-{nanos}", std::process::id());
        Pending {
            store,
            key: store.key(&format!("uploads/{name}.json")),
            list: PendingUploads {
                started_at: now,
                uploads: Vec::new(),
            },
        }
    }

    /// Records an upload before any part of it is sent.
    async fn add(&mut self, key: Key, upload_id: String) -> Result<(), StoreError> {
        self.list.uploads.push(PendingUpload {
            key: key.to_string(),
            upload_id,
        });
        let json = serde_json::to_vec(&self.list).map_err(|e| StoreError::Corrupt {
            location: self.key.to_string(),
            why: e.to_string(),
        })?;
        self.store
            .client()
            .put(&self.key, PutPayload::from(json))
            .await
            .map_err(|e| self.store.storage(&self.key, e))?;
        Ok(())
    }

    /// Aborts every upload (best effort: what fails here is left for `store gc`, which finds
    /// them in the list). The first failure stops it: a bucket that stopped answering would
    /// otherwise hold the client for every upload's retries.
    async fn abort_all(&self) {
        let mut all_aborted = true;
        for u in &self.list.uploads {
            let key = Key::from(u.key.as_str());
            if let Err(e) = self
                .store
                .client()
                .abort_multipart(&key, &u.upload_id)
                .await
            {
                tracing::warn!(key = %key, error = %e, "cannot abort an upload; `store gc` will");
                all_aborted = false;
                break;
            }
        }
        if all_aborted {
            self.finish().await;
        }
    }

    /// The uploads are completed or aborted: the list goes.
    async fn finish(&self) {
        if self.list.uploads.is_empty() {
            return;
        }
        if let Err(e) = self.store.client().delete(&self.key).await {
            tracing::warn!(key = %self.key, error = %e, "cannot remove the list of uploads; `store gc` will");
        }
    }
}
