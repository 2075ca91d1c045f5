//! Admission into a bucket store (feature `bucket`), in one pass over the source: each attested
//! file is read once, in parts; every part goes to the SHA-256 and BLAKE3 hashers and, as a
//! part of an S3 multipart upload to `blobs/<attested sha256>`, to the bucket, several parts in
//! flight while the next is read. The safetensors headers are checked against the bytes read.
//! Then the same bind and judge stages as `verify` run on those digests. Only an admission that
//! passes completes its uploads (a multipart upload is invisible until completed), then writes
//! the envelope, grants and signature files, then the revision record, and the ref last. A
//! refused or failed admission aborts its uploads: nothing appears.
//!
//! Uploads in progress are listed in `uploads/<admission>.json` (written before each upload
//! starts), so `weightgate store gc` can abort those a killed admission left behind.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use weightgate_attest::hashing::{CheckpointDigests, FileDigests, Progress, root_digest};
use weightgate_attest::reading::{Checkpoint, CheckpointFile, FileIdentity};
use weightgate_schemas::file_names::{ATTESTATION_FILE_NAME, OMS_SIGNATURE_FILE_NAME};

use super::admit::{Admission, AdmitRequest, bind_and_judge, blocks_admission, same_file_set};
use super::store::{
    AdmittedFile, BucketStore, RevisionRecord, SignatureFile, StoreError, check_ref, check_repo_id,
    hex,
};
use crate::decision::Decision;
use crate::stages::{SubjectSource, authenticate};

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

/// One attested file after its single read.
struct Streamed {
    sha256: [u8; 32],
    blake3: [u8; 32],
    /// The multipart upload holding its bytes, or `None` when an identical blob was already
    /// stored (checked by reading it back).
    upload: Option<(String, Vec<PartId>)>,
}

/// Admits a checkpoint into a bucket if every check but the per-request regimes passes.
/// Runs on a multi-threaded tokio runtime (the judge stage runs in `block_in_place`).
pub async fn admit_into_bucket(
    store: &BucketStore,
    req: &AdmitRequest<'_>,
    progress: Progress<'_>,
) -> Result<Admission, StoreError> {
    check_repo_id(req.repo).map_err(|e| StoreError::Invalid(e.0))?;
    check_ref(req.ref_name).map_err(|e| StoreError::Invalid(e.0))?;
    let mut d = Decision::new(req.now);
    let Some(auth) = authenticate(req.envelope, req.policy, req.now, &mut d) else {
        return Ok(Admission::Refused(d));
    };
    let st = auth.statement();

    // Names and sizes first: a mismatch is judged in place, without uploading anything.
    let source = Checkpoint::open(req.checkpoint, &req.open).ok();
    let Some(source) = source.filter(|s| same_file_set(st, s)) else {
        let subject = SubjectSource::OnDisk {
            checkpoint: req.checkpoint,
            open: req.open.clone(),
            full: true,
            threads: 0,
            oms: req.oms.clone(),
        };
        tokio::task::block_in_place(|| bind_and_judge(&auth, &subject, req, &mut d, progress))?;
        return Ok(Admission::Refused(d));
    };

    let mut pending = Pending::new(store, req.now);
    let result = stream_all(store, st, &source, &mut pending, progress).await;
    let streamed = match result {
        Ok(s) => s,
        Err(e) => {
            pending.abort_all().await;
            return Err(e);
        }
    };
    let digests = CheckpointDigests {
        files: st
            .subject
            .files
            .iter()
            .zip(&streamed)
            .map(|(entry, s)| FileDigests {
                path: entry.path.clone(),
                size: entry.size,
                sha256: Some(s.sha256),
                blake3: Some(s.blake3),
                tensors: None,
            })
            .collect(),
        root_sha256: Some(root_digest(streamed.iter().map(|s| &s.sha256))),
    };
    let subject = SubjectSource::Streamed {
        checkpoint: &source,
        digests: &digests,
        oms_root: req.checkpoint,
        oms: req.oms.clone(),
    };
    let judged =
        tokio::task::block_in_place(|| bind_and_judge(&auth, &subject, req, &mut d, &|_| {}));
    let bound = match judged {
        Ok(b) => b,
        Err(e) => {
            pending.abort_all().await;
            return Err(e);
        }
    };
    if d.reasons.iter().any(|r| blocks_admission(r.code)) {
        pending.abort_all().await;
        return Ok(Admission::Refused(d));
    }
    let header_parameters = bound.header_parameters().unwrap_or(0);
    match publish(store, req, &auth, &digests, streamed, header_parameters).await {
        Ok(record) => {
            pending.finish().await;
            Ok(Admission::Admitted {
                record,
                decision: d,
            })
        }
        Err(e) => {
            pending.abort_all().await;
            Err(e)
        }
    }
}

/// Reads, hashes and uploads every attested file in statement order.
async fn stream_all(
    store: &BucketStore,
    st: &weightgate_schemas::Statement,
    source: &Checkpoint,
    pending: &mut Pending<'_>,
    progress: Progress<'_>,
) -> Result<Vec<Streamed>, StoreError> {
    let mut out = Vec::with_capacity(st.subject.files.len());
    for entry in &st.subject.files {
        let file = source
            .file(&entry.path)
            .ok_or_else(|| StoreError::Invalid(format!("{}: attested but missing", entry.path)))?;
        let want = hex(&entry.sha256.0);
        let key = store.blob_key(&want);
        // A blob another admission stored is reused once read back and found intact: it is
        // never overwritten (revisions sharing it keep their ETag) nor blessed when altered.
        let existing = store.blob_meta(&want).await?;
        let upload = match existing {
            Some(_) => None,
            None => {
                let id = store
                    .client()
                    .create_multipart(&key)
                    .await
                    .map_err(|e| store.storage(&key, e))?;
                pending.add(key.clone(), id.clone()).await?;
                Some(id)
            }
        };
        let s = stream_file(store, file, &key, upload, progress).await?;
        if existing.is_some() {
            check_existing_blob(store, &want, entry.size).await?;
        }
        out.push(s);
    }
    Ok(out)
}

/// One read of `file`: each part hashed (SHA-256 on the reading thread, BLAKE3 on its own)
/// and, with `upload`, sent as a part of that multipart upload, several in flight.
async fn stream_file(
    store: &BucketStore,
    file: &CheckpointFile,
    key: &Key,
    upload: Option<String>,
    progress: Progress<'_>,
) -> Result<Streamed, StoreError> {
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
        let Some(id) = &upload else { continue };
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
        let (s3, key, id) = (s3.clone(), key.clone(), id.clone());
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
    let read = tokio::task::block_in_place(|| reader.join())
        .map_err(|_| StoreError::Invalid(format!("{}: the reading thread failed", file.path)))?;
    // An upload that failed stopped the reader early: its error is the one to report.
    if let Some(e) = failure {
        return Err(e);
    }
    let (sha256, blake3) = read?;
    Ok(Streamed {
        sha256,
        blake3,
        upload: upload.map(|id| (id, parts)),
    })
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

/// SHA-256 and BLAKE3 of one file.
type FileHashes = ([u8; 32], [u8; 32]);

/// The reading thread: the file in `PART`-sized reads, each hashed and passed on; the header
/// is checked against the bytes read and the file against the identity it was opened with.
fn spawn_reader(
    file: CheckpointFile,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> std::thread::JoinHandle<Result<FileHashes, StoreError>> {
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
        let header_len = file
            .header
            .as_ref()
            .map_or(0, |h| 8 + h.header_len as usize);
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
        if let Some(h) = &file.header {
            let now = weightgate_attest::reading::SafetensorsHeader::parse(
                head.get(8..).unwrap_or_default(),
                file.size,
                &file.path,
            )
            .map_err(|_| changed())?;
            if (now.header_len, &now.tensors, &now.metadata)
                != (h.header_len, &h.tensors, &h.metadata)
            {
                return Err(changed());
            }
        }
        Ok((sha.finalize().into(), blake3))
    })
}

/// An existing blob is read back and hashed before another admission reuses it.
async fn check_existing_blob(store: &BucketStore, want: &str, size: u64) -> Result<(), StoreError> {
    use futures::TryStreamExt as _;
    let key = store.blob_key(want);
    let altered = |why: String| {
        StoreError::Invalid(format!(
            "s3://{}/{key}: {why}; the blob was altered after admission: remove it (and \
             re-admit the revisions that use it) before admitting anything that shares it",
            store.bucket()
        ))
    };
    let got = store
        .client()
        .get(&key)
        .await
        .map_err(|e| store.storage(&key, e))?;
    if got.meta.size != size {
        return Err(altered(format!("{} bytes, attested {size}", got.meta.size)));
    }
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| store.storage(&key, e))?
    {
        n += chunk.len() as u64;
        if n > size {
            return Err(altered(format!("longer than the attested {size} bytes")));
        }
        h.update(&chunk);
    }
    let got = hex(&h.finalize());
    if n != size || got != want {
        return Err(altered(format!("its SHA-256 is now {got} ({n} bytes)")));
    }
    Ok(())
}

/// Completes the uploads, then writes what names them, the revision record, and the ref last.
async fn publish(
    store: &BucketStore,
    req: &AdmitRequest<'_>,
    auth: &crate::stages::Authenticated,
    digests: &CheckpointDigests,
    streamed: Vec<Streamed>,
    header_parameters: u64,
) -> Result<RevisionRecord, StoreError> {
    let mut files = Vec::with_capacity(streamed.len());
    for (f, s) in digests.files.iter().zip(streamed) {
        let sha = hex(&s.sha256);
        let key = store.blob_key(&sha);
        let etag = match s.upload {
            Some((id, parts)) => {
                store
                    .client()
                    .complete_multipart(&key, &id, parts)
                    .await
                    .map_err(|e| store.storage(&key, e))?
                    .e_tag
            }
            None => None,
        };
        // The ETag as a reader sees it (HEAD), so the server compares like with like.
        let meta = store.blob_meta(&sha).await?.ok_or_else(|| {
            StoreError::Invalid(format!(
                "s3://{}/{key}: missing after upload",
                store.bucket()
            ))
        })?;
        if meta.size != f.size {
            return Err(StoreError::Invalid(format!(
                "s3://{}/{key}: {} bytes after upload, admitted {}",
                store.bucket(),
                meta.size,
                f.size
            )));
        }
        files.push(AdmittedFile {
            path: f.path.clone(),
            size: f.size,
            sha256: sha,
            blake3: f.blake3.map(|b| hex(&b)).unwrap_or_default(),
            blob_mtime: 0,
            blob_mtime_nsec: 0,
            object_etag: meta.e_tag.or(etag),
        });
    }
    let attestation = put_content_addressed(
        store,
        &store.attestation_key(&hex(&Sha256::digest(req.envelope))),
        req.envelope,
    )
    .await?;
    let mut grant_ids = Vec::new();
    for g in &req.grants {
        let id = hex(&Sha256::digest(g));
        put_content_addressed(store, &store.grant_key(&id), g).await?;
        grant_ids.push(id);
    }
    let model_sig = req.oms.as_ref().map(|o| o.bundle.as_slice());
    let mut signature_files = Vec::new();
    for (path, bytes) in [
        (ATTESTATION_FILE_NAME, Some(req.envelope)),
        (OMS_SIGNATURE_FILE_NAME, model_sig),
    ] {
        let Some(bytes) = bytes else { continue };
        let sha256 = hex(&Sha256::digest(bytes));
        put_content_addressed(store, &store.signature_key(&sha256), bytes).await?;
        signature_files.push(SignatureFile {
            path: path.to_string(),
            size: bytes.len() as u64,
            sha256,
        });
    }
    let revision = auth.payload_sha256()[..40].to_string();
    let record = RevisionRecord {
        repo: req.repo.to_string(),
        revision: revision.clone(),
        admitted_at: req.now,
        attestation,
        grants: grant_ids,
        header_parameters,
        model_sig: model_sig.is_some(),
        signature_files,
        files,
    };
    let json =
        serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let rkey = store.revision_key(req.repo, &revision);
    store
        .client()
        .put(&rkey, PutPayload::from(json))
        .await
        .map_err(|e| store.storage(&rkey, e))?;
    let refkey = store.ref_key(req.repo, req.ref_name);
    store
        .client()
        .put(
            &refkey,
            PutPayload::from(format!("{revision}\n").into_bytes()),
        )
        .await
        .map_err(|e| store.storage(&refkey, e))?;
    Ok(record)
}

/// Stores `bytes` at `key` (named by their SHA-256) unless an object there already holds them;
/// returns the digest.
async fn put_content_addressed(
    store: &BucketStore,
    key: &Key,
    bytes: &[u8],
) -> Result<String, StoreError> {
    let id = hex(&Sha256::digest(bytes));
    if let Ok(Some(existing)) = store.read_capped(key, bytes.len() as u64).await
        && hex(&Sha256::digest(&existing)) == id
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
        let json =
            serde_json::to_vec(&self.list).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.store
            .client()
            .put(&self.key, PutPayload::from(json))
            .await
            .map_err(|e| self.store.storage(&self.key, e))?;
        Ok(())
    }

    /// Aborts every upload (best effort: what fails here is left for `store gc`).
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
