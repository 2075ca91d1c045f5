//! The folder store's pending area: `STORE/uploads/<namespace>/<sha256>` (the bytes, 0444) and
//! `<sha256>.json` (its [`PendingObject`]), one folder per namespace. An object is received
//! into `.recv-*` beside them, hashed (SHA-256, BLAKE3) from the buffers it is written from
//! around the page cache ([`DirectFile`]), made durable, and renamed to its digest only when its size and SHA-256 are the declared
//! ones. Its description is written first: an object counts as pending only while both exist,
//! and a description without bytes just expires.
//! A receipt cut off (disconnect, idle, refusal) removes its `.recv-*` file; one a killed gate
//! left behind is removed by `store gc` with expired objects.

use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;
use weightgate_attest::io::{Replace, write_atomically};

use crate::gate::bulk;

use super::direct_file::{ALIGN, AlignedBuf, DirectFile};
use super::received::ReceivedDigest;
use super::{
    ByteStream, ExpectedObject, FolderStore, PendingError, PendingObject, StagedFile, StoreError,
    check_repo_id, io_at as io, is_sha256_hex,
};

/// Bytes gathered before they are hashed and written in one job on the bulk pool (a multiple
/// of [`ALIGN`]).
const WRITE_BATCH: usize = 4 << 20;
/// A batch buffer's first size: a batch and the chunk that fills it (hyper's are far
/// smaller; a larger chunk grows the buffer).
const BATCH_CAPACITY: usize = WRITE_BATCH + (1 << 20);
/// Prefix of a file still being received.
pub(super) const RECEIVING: &str = ".recv-";

impl FolderStore {
    /// The pending folder of `namespace`, once the name is checked.
    pub(super) fn pending_dir(&self, namespace: &str) -> Result<PathBuf, StoreError> {
        check_namespace(namespace)?;
        Ok(self.root.join("uploads").join(namespace))
    }

    pub(super) async fn put_pending_now(
        &self,
        namespace: &str,
        expected: &ExpectedObject,
        body: ByteStream<'_>,
        now: i64,
    ) -> Result<PendingObject, PendingError> {
        if expected.size > expected.max_size {
            return Err(PendingError::OverFileCap {
                declared: expected.size,
                cap: expected.max_size,
            });
        }
        let dir = self.pending_dir(namespace)?;
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let receipt = receive(body, expected, Receipt::create(&dir)?).await?;
        if receipt.digest.len() != expected.size {
            return Err(PendingError::TooShort {
                declared: expected.size,
                got: receipt.digest.len(),
            });
        }
        crate::gate::blocking(|| (*receipt).keep(&dir, expected, now))
    }

    pub(super) fn pending_object_now(
        &self,
        namespace: &str,
        sha256: &str,
    ) -> Result<Option<PendingObject>, StoreError> {
        if !is_sha256_hex(sha256) {
            return Ok(None);
        }
        let dir = self.pending_dir(namespace)?;
        let meta = dir.join(format!("{sha256}.json"));
        let bytes = match weightgate_attest::io::read_capped(&meta, 4096) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&meta)(e)),
        };
        let object: PendingObject =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                location: meta.display().to_string(),
                why: e.to_string(),
            })?;
        // The bytes must still be the ones received: read-only, of the recorded size.
        let data = dir.join(sha256);
        match fs::symlink_metadata(&data) {
            Ok(m) if m.is_file() && m.len() == object.size && object.sha256 == sha256 => {
                Ok(Some(object))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&data)(e)),
        }
    }

    pub(super) fn pending_bytes_now(&self, namespace: &str) -> Result<u64, StoreError> {
        let dir = self.pending_dir(namespace)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(&dir)(e)),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum())
    }

    pub(super) fn pending_sizes_now(&self, namespace: &str) -> Result<Vec<u64>, StoreError> {
        let dir = self.pending_dir(namespace)?;
        let mut sizes = Vec::new();
        for sha256 in pending_digests(&dir)? {
            // Gone since listed (adopted, or removed by gc): no longer pending.
            if let Ok(meta) = fs::symlink_metadata(dir.join(sha256)) {
                sizes.push(meta.len());
            }
        }
        Ok(sizes)
    }

    /// Moves the pending object into the staging folder `dir` as `staged_path` and reads its
    /// first `head_len` bytes; its description goes, so it is no longer pending.
    pub(super) fn adopt_pending_now(
        &self,
        namespace: &str,
        object: &PendingObject,
        dest: &Path,
        head_len: usize,
    ) -> Result<StagedFile, StoreError> {
        let hashes = object.hashes().ok_or_else(|| StoreError::Corrupt {
            location: format!("{namespace}/{}", object.sha256),
            why: "not a pending object's digests".into(),
        })?;
        let dir = self.pending_dir(namespace)?;
        let data = dir.join(&object.sha256);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::rename(&data, dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound {
                location: data.display().to_string(),
                why: "the pending object was taken by another commit or expired",
            },
            _ => io(&data)(e),
        })?;
        let _ = fs::remove_file(dir.join(format!("{}.json", object.sha256)));
        let file = File::open(dest).map_err(io(dest))?;
        if file.metadata().map_err(io(dest))?.len() != object.size {
            return Err(StoreError::BlobChanged {
                location: dest.display().to_string(),
                why: "its size changed while it was pending".into(),
            });
        }
        let mut head = vec![0u8; head_len.min(object.size as usize)];
        file.read_exact_at(&mut head, 0).map_err(io(dest))?;
        Ok(StagedFile { hashes, head })
    }
}

impl FolderStore {
    /// Puts `object`, taken in by a commit that then failed, back into `namespace`'s pending
    /// area from `staged`, its description written again. Nothing if it is no longer staged
    /// (placed as a blob) or the namespace has those bytes pending again.
    pub(super) fn return_pending_now(
        &self,
        namespace: &str,
        object: &PendingObject,
        staged: &Path,
    ) -> Result<(), StoreError> {
        let dir = self.pending_dir(namespace)?;
        let data = dir.join(&object.sha256);
        if fs::symlink_metadata(&data).is_ok() || fs::symlink_metadata(staged).is_err() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let meta = dir.join(format!("{}.json", object.sha256));
        let json = serde_json::to_vec(object).map_err(|e| StoreError::Corrupt {
            location: meta.display().to_string(),
            why: e.to_string(),
        })?;
        // The description first, as at receipt: without its bytes it only expires.
        write_atomically(&meta, &json, 0o644, Replace::Allowed).map_err(io(&meta))?;
        fs::rename(staged, &data).map_err(io(&data))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    }
}

/// Where the receipt is while an object is received.
enum Writer {
    Here(Box<Receipt>),
    /// On the bulk pool with a batch; it comes back when the batch is written.
    Away(bulk::Pending<Result<Box<Receipt>, StoreError>>),
    /// Lost with a batch whose write failed (its file removed as it was dropped).
    Gone,
}

impl Writer {
    async fn back(self, path: &Path) -> Result<Box<Receipt>, PendingError> {
        match self {
            Writer::Here(r) => Ok(r),
            Writer::Away(pending) => Ok(pending.await.map_err(|e| lost(path, e))??),
            Writer::Gone => Err(lost(path, bulk::JobLost).into()),
        }
    }
}

fn lost(path: &Path, e: bulk::JobLost) -> StoreError {
    io(path)(std::io::Error::other(e))
}

/// Reads `body` into `receipt` in batches of about [`WRITE_BATCH`] bytes, each hashed and
/// written on the bulk pool while the next is read from the connection. Every batch but the
/// last is a whole number of [`ALIGN`] blocks, so it is written direct: the bytes past the
/// last whole block start the next batch. Returns once the
/// last batch is written, also on failure: a refused receipt's file is gone when the client
/// hears of it.
async fn receive(
    mut body: ByteStream<'_>,
    expected: &ExpectedObject,
    receipt: Receipt,
) -> Result<Box<Receipt>, PendingError> {
    let path = receipt.path.clone();
    let mut writer = Writer::Here(Box::new(receipt));
    let mut batch = AlignedBuf::with_capacity(BATCH_CAPACITY);
    let mut received = 0u64;
    let outcome = loop {
        let chunk = match tokio::time::timeout(expected.idle_timeout, body.next()).await {
            Err(_) => break Err(PendingError::Idle(expected.idle_timeout)),
            Ok(None) => None,
            Ok(Some(Err(e))) => break Err(PendingError::Connection(e)),
            Ok(Some(Ok(c))) => Some(c),
        };
        let ended = chunk.is_none();
        if let Some(c) = chunk {
            received += c.len() as u64;
            if received > expected.size {
                break Err(PendingError::TooLong {
                    declared: expected.size,
                    got: received,
                });
            }
            // Copied while it is in the cache, and hyper's buffer released at once: hyper
            // then reads into the same memory again instead of fresh pages (page faults,
            // zeroing) for every chunk a batch would hold.
            batch.extend_from_slice(&c);
        }
        if batch.len() >= WRITE_BATCH || (ended && !batch.is_empty()) {
            let mut receipt = match std::mem::replace(&mut writer, Writer::Gone)
                .back(&path)
                .await
            {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            // The buffer of the batch written before is the next one's, starting with this
            // one's bytes past its last whole block.
            let mut next = std::mem::replace(&mut receipt.spare, AlignedBuf::with_capacity(0));
            let whole = if ended {
                batch.len()
            } else {
                batch.len() / ALIGN * ALIGN
            };
            next.extend_from_slice(&batch[whole..]);
            batch.truncate(whole);
            let full = std::mem::replace(&mut batch, next);
            writer = Writer::Away(bulk::submit(move || {
                receipt.write(full)?;
                Ok(receipt)
            }));
        }
        if ended {
            break Ok(());
        }
    };
    let receipt = writer.back(&path).await;
    outcome?;
    receipt
}

/// A namespace names a folder: one component, as the first part of a repository id.
pub(super) fn check_namespace(namespace: &str) -> Result<(), StoreError> {
    check_repo_id(&format!("{namespace}/x")).map_err(|_| {
        StoreError::BadName(format!(
            "namespace `{namespace}` is not a valid organisation name ([A-Za-z0-9._-], max 96)"
        ))
    })
}

/// One object being received: its `.recv-*` file (removed when dropped unless kept) and the
/// hashes of what was written to it.
struct Receipt {
    path: PathBuf,
    file: DirectFile,
    digest: ReceivedDigest,
    /// The buffer of the last batch written, emptied, for the next.
    spare: AlignedBuf,
    kept: bool,
}

impl Receipt {
    fn create(dir: &Path) -> Result<Self, StoreError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Two receipts of one object may run at once in one process.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{RECEIVING}{}-{nanos}-{n}", std::process::id()));
        let file = DirectFile::create_new(&path, 0o600).map_err(io(&path))?;
        Ok(Receipt {
            path,
            file,
            digest: ReceivedDigest::new(),
            spare: AlignedBuf::with_capacity(BATCH_CAPACITY),
            kept: false,
        })
    }

    /// Hashes `batch` and appends it, at once on two threads; keeps its buffer for the next
    /// batch.
    fn write(&mut self, mut batch: AlignedBuf) -> Result<(), StoreError> {
        let (file, digest) = (&mut self.file, &mut self.digest);
        let (written, ()) = bulk::both(|| file.append(&batch), || digest.update(&batch));
        written.map_err(io(&self.path))?;
        batch.clear();
        self.spare = batch;
        Ok(())
    }

    /// Checks the digest, makes the bytes durable and read-only, and names them by it.
    fn keep(
        mut self,
        dir: &Path,
        expected: &ExpectedObject,
        now: i64,
    ) -> Result<PendingObject, PendingError> {
        let object = self.digest.finish(expected, now)?;
        let file = self.file.file();
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .and_then(|()| file.sync_all())
            .map_err(io(&self.path))?;
        let name = object.sha256.clone();
        let meta = dir.join(format!("{name}.json"));
        let json = serde_json::to_vec(&object).map_err(|e| StoreError::Corrupt {
            location: meta.display().to_string(),
            why: e.to_string(),
        })?;
        write_atomically(&meta, &json, 0o644, Replace::Allowed).map_err(io(&meta))?;
        let data = dir.join(&name);
        fs::rename(&self.path, &data).map_err(io(&data))?;
        self.kept = true;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(object)
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The SHA-256 (hex) of every object pending in the namespace folder `dir`: its description and
/// its bytes both there.
pub(super) fn pending_digests(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    Ok(entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
            (is_sha256_hex(&name) && dir.join(&name).exists()).then_some(name)
        })
        .collect())
}

/// Removes pending objects received at or before `expired_before` (seconds) and receipts of
/// gates no longer running; returns how many were removed.
pub(super) fn expire_pending(uploads: &Path, expired_before: i64) -> Result<usize, StoreError> {
    let mut removed = 0;
    let Ok(namespaces) = fs::read_dir(uploads) else {
        return Ok(0);
    };
    for ns in namespaces.flatten() {
        let Ok(entries) = fs::read_dir(ns.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if let Some(rest) = name.strip_prefix(RECEIVING) {
                let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
                let running = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                if !running && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
                continue;
            }
            let Some(sha) = name.strip_suffix(".json") else {
                continue;
            };
            let received_at = weightgate_attest::io::read_capped(&path, 4096)
                .ok()
                .and_then(|b| serde_json::from_slice::<PendingObject>(&b).ok())
                .map(|o| o.received_at);
            if received_at.is_none_or(|t| t <= expired_before) {
                let _ = fs::remove_file(ns.path().join(sha));
                fs::remove_file(&path).map_err(io(&path))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
