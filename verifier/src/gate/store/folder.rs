//! The admitted store in a local folder (the default):
//!
//! ```text
//! STORE/blobs/<sha256>                        read-only file contents
//! STORE/attestations/<sha256>.att             envelopes, named by the SHA-256 of their bytes
//! STORE/grants/<sha256>.grant                 countersigned references, likewise
//! STORE/repos/<org>/<name>/revisions/<id>.json   what was admitted (40-hex revision id)
//! STORE/repos/<org>/<name>/refs/<ref>         a revision id, e.g. refs/main
//! STORE/tmp/                                  copies in progress (never read)
//! ```
//! Each step writes a temp file, fsyncs and renames; the ref is written last, so an interrupted
//! admission leaves nothing that a reader can reach.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use weightgate_attest::hashing::Progress;
use weightgate_attest::io::{Replace, write_atomically};

use super::folder_staging::FolderStaging;
use super::{
    AdmittedFile, BlobIdentity, BlobState, ByteRange, ByteSource, ByteStream, ExpectedObject,
    GcReport, Hashes, MAX_META_LEN, MAX_RECORD_LEN, MAX_REF_LEN, MetaKind, OpenRefusal,
    PendingError, PendingObject, RevisionRecord, Staging, Store, StoreError, StoredObject,
    check_meta_id, check_ref, check_repo_id, io_at as io, is_revision_id, is_sha256_hex,
};

/// A store folder.
#[derive(Debug, Clone)]
pub struct FolderStore {
    pub root: PathBuf,
}

impl FolderStore {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        for d in [
            "blobs",
            "attestations",
            "grants",
            "signatures",
            "repos",
            "tmp",
        ] {
            fs::create_dir_all(root.join(d)).map_err(io(&root.join(d)))?;
        }
        Ok(FolderStore {
            root: root.to_path_buf(),
        })
    }

    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(sha256)
    }

    /// `STORE/blob-ids/<sha256>`: the identity a blob had when it was placed or last hashed
    /// whole, so a later admission of the same bytes need not read them to trust them.
    fn placed_identity_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blob-ids").join(sha256)
    }

    /// The identity noted for blob `sha256`, if any (and readable).
    pub(super) fn placed_identity(&self, sha256: &str) -> Option<BlobIdentity> {
        let text =
            weightgate_attest::io::read_capped(&self.placed_identity_path(sha256), 256).ok()?;
        let n: Vec<i64> = std::str::from_utf8(&text)
            .ok()?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        match n[..] {
            [inode, cs, cn, ms, mn] => Some(BlobIdentity::File {
                mtime: (ms, mn),
                ctime: Some((cs, cn)),
                inode: Some(u64::try_from(inode).ok()?),
            }),
            _ => None,
        }
    }

    /// Notes `identity` for blob `sha256`, whose bytes were just checked. A note that cannot
    /// be written only costs a later admission of the same bytes a read.
    pub(super) fn note_placed(&self, sha256: &str, identity: &BlobIdentity) {
        let BlobIdentity::File {
            mtime: (ms, mn),
            ctime: Some((cs, cn)),
            inode: Some(inode),
        } = identity
        else {
            return;
        };
        let path = self.placed_identity_path(sha256);
        let line = format!("{inode} {cs} {cn} {ms} {mn}\n");
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| write_atomically(&path, line.as_bytes(), 0o644, Replace::Allowed));
        if let Err(e) = written {
            tracing::warn!(blob = sha256, error = %e, "cannot note a placed blob's identity");
        }
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join("repos").join(repo)
    }

    /// The ref names of `repo` with the revision each points at, sorted by name.
    pub fn refs(&self, repo: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_repo_id(repo)?;
        let dir = self.repo_dir(repo).join("refs");
        let mut refs = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(refs),
            Err(error) => return Err(StoreError::Io { path: dir, error }),
        };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if check_ref(&name).is_err() {
                continue; // a writer's temp file, or not ours
            }
            let text = weightgate_attest::io::read_capped_to_string(&e.path(), MAX_REF_LEN)
                .map_err(io(&e.path()))?;
            let id = text.trim();
            if is_revision_id(id) {
                refs.push((name, id.to_string()));
            }
        }
        refs.sort();
        Ok(refs)
    }

    /// The ids of every admitted revision of `repo`, sorted.
    pub fn revision_ids(&self, repo: &str) -> Result<Vec<String>, StoreError> {
        check_repo_id(repo)?;
        let dir = self.repo_dir(repo).join("revisions");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(StoreError::Io { path: dir, error }),
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let id = name.to_str()?.strip_suffix(".json")?;
                is_revision_id(id).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Holds `STORE/gc.lock` shared (an admission) or exclusive (`store gc`) until dropped:
    /// gc never runs beside an admission that may reuse what gc would remove.
    pub(super) fn lock(&self, exclusive: bool) -> Result<File, StoreError> {
        use std::os::fd::AsRawFd;
        let path = self.root.join("gc.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        loop {
            // SAFETY: flock on a descriptor we own; it lives as long as the returned file.
            if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
                return Ok(f);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io(&path)(e));
            }
        }
    }

    pub(super) fn lock_for_gc(&self) -> Result<File, StoreError> {
        self.lock(true)
    }

    /// Path of a stored signature file.
    pub fn signature_path(&self, sha256: &str) -> PathBuf {
        self.root.join("signatures").join(sha256)
    }

    /// Resolves a ref name or a revision id to an admitted manifest; `Ok(None)` if unknown.
    pub fn manifest(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        check_repo_id(repo)?;
        let id = if is_revision_id(revision) {
            revision.to_string()
        } else {
            if check_ref(revision).is_err() {
                return Ok(None);
            }
            let ref_path = self.repo_dir(repo).join("refs").join(revision);
            match weightgate_attest::io::read_capped_to_string(&ref_path, MAX_REF_LEN) {
                Ok(s) => s.trim().to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    return Err(StoreError::Io {
                        path: ref_path,
                        error: e,
                    });
                }
            }
        };
        if !is_revision_id(&id) {
            return Err(StoreError::Corrupt {
                location: format!("{repo}: ref `{revision}`"),
                why: format!("holds `{id}`, not a revision id"),
            });
        }
        let path = self
            .repo_dir(repo)
            .join("revisions")
            .join(format!("{id}.json"));
        let text = match weightgate_attest::io::read_capped(&path, MAX_RECORD_LEN) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io { path, error: e }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                location: path.display().to_string(),
                why: e.to_string(),
            })
    }

    /// True if any revision of `repo` was admitted.
    pub fn has_repo(&self, repo: &str) -> bool {
        check_repo_id(repo).is_ok() && self.repo_dir(repo).join("revisions").is_dir()
    }

    /// Every repository with an admitted revision, sorted; entries that are not valid
    /// `ORG/NAME` folders are skipped.
    pub fn repos(&self) -> Result<Vec<String>, StoreError> {
        let root = self.root.join("repos");
        let names = |dir: &Path| -> Result<Vec<String>, StoreError> {
            match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .map(|e| {
                        Ok(e.map_err(io(dir))?
                            .file_name()
                            .to_string_lossy()
                            .into_owned())
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(io(dir)(e)),
            }
        };
        let mut repos = Vec::new();
        for org in names(&root)? {
            for name in names(&root.join(&org))? {
                let repo = format!("{org}/{name}");
                if self.has_repo(&repo) {
                    repos.push(repo);
                }
            }
        }
        repos.sort();
        Ok(repos)
    }

    pub fn attestation(&self, m: &RevisionRecord) -> Result<Vec<u8>, StoreError> {
        let p = self
            .root
            .join("attestations")
            .join(format!("{}.att", m.attestation));
        weightgate_attest::io::read_capped(&p, weightgate_schemas::MAX_ENVELOPE_LEN as u64)
            .map_err(io(&p))
    }

    pub fn grants(&self, m: &RevisionRecord) -> Result<Vec<Vec<u8>>, StoreError> {
        m.grants
            .iter()
            .map(|g| {
                let p = self.root.join("grants").join(format!("{g}.grant"));
                weightgate_attest::io::read_capped(&p, weightgate_schemas::MAX_GRANT_LEN as u64)
                    .map_err(io(&p))
            })
            .collect()
    }

    /// The blob `sha256` as it is now (not following a symbolic link); `None` if absent.
    pub fn blob_state(&self, sha256: &str) -> Result<Option<BlobState>, StoreError> {
        let p = self.blob_path(sha256);
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&p)(e)),
        };
        Ok(Some(state_of(&meta)))
    }

    /// Checks that a blob is still what was admitted (size, identity, read-only); the reason
    /// if not. An unreadable blob is a problem too: it cannot be served.
    pub fn blob_problem(&self, f: &AdmittedFile) -> Option<String> {
        if !super::is_sha256_hex(&f.sha256) {
            return super::blob_problem(f, None);
        }
        match self.blob_state(&f.sha256) {
            Ok(now) => super::blob_problem(f, now.as_ref()),
            Err(e) => Some(format!("blob {} for {}: {e}", f.sha256, f.path)),
        }
    }
}

/// A blob file's state from its metadata.
pub(super) fn state_of(meta: &fs::Metadata) -> BlobState {
    BlobState {
        size: meta.len(),
        identity: BlobIdentity::of_file(meta),
        defect: if !meta.is_file() {
            Some("is not a regular file")
        } else if meta.permissions().mode() & 0o222 != 0 {
            Some("became writable")
        } else {
            None
        },
    }
}

impl FolderStore {
    /// Stores `bytes` as `DIR/<sha256>.EXT` and returns the digest. Nothing another admission
    /// stored is ever replaced by different bytes: an existing file is kept when it hashes to
    /// its name, and rewritten (with these, identical-by-digest bytes) only when it was
    /// damaged.
    pub fn put_content_addressed(
        &self,
        dir: &str,
        ext: &str,
        bytes: &[u8],
        cap: u64,
    ) -> Result<String, StoreError> {
        let id = hex::encode(Sha256::digest(bytes));
        let path = self.root.join(dir).join(format!("{id}.{ext}"));
        if let Ok(existing) = weightgate_attest::io::read_capped(&path, cap)
            && hex::encode(Sha256::digest(&existing)) == id
        {
            return Ok(id);
        }
        write_atomically(&path, bytes, 0o444, Replace::Allowed).map_err(io(&path))?;
        Ok(id)
    }

    /// Both digests of the stored blob `sha256`, read back in full, and its state, which must
    /// not change while it is read.
    pub fn rehash_blob(
        &self,
        sha256: &str,
        progress: Progress,
    ) -> Result<(Hashes, BlobState), StoreError> {
        let path = self.blob_path(sha256);
        let mut input = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(io(&path))?;
        let before = state_of(&input.metadata().map_err(io(&path))?);
        let mut sha = Sha256::new();
        let mut b3 = blake3::Hasher::new();
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let n = input.read(&mut buf).map_err(io(&path))?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            b3.update(&buf[..n]);
            progress(n as u64);
        }
        let after = state_of(&input.metadata().map_err(io(&path))?);
        if after != before {
            return Err(StoreError::BlobChanged {
                location: path.display().to_string(),
                why: "it changed while it was read".into(),
            });
        }
        Ok((
            Hashes {
                sha256: sha.finalize().into(),
                blake3: b3.finalize().into(),
            },
            after,
        ))
    }

    /// `len` bytes of the blob `sha256` from `start`.
    pub fn read_blob(&self, sha256: &str, start: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(sha256);
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= 1 << 30)
            .ok_or_else(|| StoreError::Corrupt {
                location: path.display().to_string(),
                why: format!("{len} bytes asked at once"),
            })?;
        let file = File::open(&path).map_err(io(&path))?;
        let mut out = vec![0u8; len];
        file.read_exact_at(&mut out, start).map_err(io(&path))?;
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Store for FolderStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn manifest(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        FolderStore::manifest(self, repo, revision)
    }

    async fn refs(&self, repo: &str) -> Result<Vec<(String, String)>, StoreError> {
        FolderStore::refs(self, repo)
    }

    async fn revision_ids(&self, repo: &str) -> Result<Vec<String>, StoreError> {
        FolderStore::revision_ids(self, repo)
    }

    async fn has_repo(&self, repo: &str) -> Result<bool, StoreError> {
        Ok(FolderStore::has_repo(self, repo))
    }

    async fn repos(&self) -> Result<Vec<String>, StoreError> {
        FolderStore::repos(self)
    }

    async fn attestation(&self, m: &RevisionRecord) -> Result<Vec<u8>, StoreError> {
        FolderStore::attestation(self, m)
    }

    async fn grants(&self, m: &RevisionRecord) -> Result<Vec<Vec<u8>>, StoreError> {
        FolderStore::grants(self, m)
    }

    async fn blob_state(&self, sha256: &str) -> Result<Option<BlobState>, StoreError> {
        FolderStore::blob_state(self, sha256)
    }

    async fn read_blob(&self, sha256: &str, start: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        FolderStore::read_blob(self, sha256, start, len)
    }

    async fn rehash_blob(
        &self,
        sha256: &str,
        progress: Progress<'_>,
    ) -> Result<(Hashes, BlobState), StoreError> {
        crate::gate::blocking(|| FolderStore::rehash_blob(self, sha256, progress))
    }

    async fn open(
        &self,
        object: StoredObject<'_>,
        _range: ByteRange,
    ) -> Result<ByteSource, OpenRefusal> {
        let path = match object {
            StoredObject::Blob(f) => self.blob_path(&f.sha256),
            StoredObject::Signature(s) => self.signature_path(&s.sha256),
        };
        let file = File::open(&path).map_err(|e| OpenRefusal::Unavailable(io(&path)(e)))?;
        // The identity recorded at admission (inode, ctime, mtime, size, read-only), checked on
        // the handle that is served: a blob renamed over the original after the path was
        // checked is refused, whatever its size and mtime.
        if let StoredObject::Blob(f) = object {
            let meta = file
                .metadata()
                .map_err(|e| OpenRefusal::Unavailable(io(&path)(e)))?;
            if let Some(problem) = super::blob_problem(f, Some(&state_of(&meta))) {
                return Err(OpenRefusal::Changed(problem));
            }
        }
        Ok(ByteSource::File(file))
    }

    async fn begin(&self, _now: i64) -> Result<Box<dyn Staging + '_>, StoreError> {
        Ok(Box::new(FolderStaging::create(self)?))
    }

    async fn gc(&self, grace: std::time::Duration) -> Result<GcReport, StoreError> {
        let mut report = crate::gate::blocking(|| FolderStore::gc(self, grace))?;
        report.abandoned += super::gc::expire_records(self).await?;
        Ok(report)
    }

    async fn put_pending(
        &self,
        namespace: &str,
        expected: &ExpectedObject,
        body: ByteStream<'_>,
        now: i64,
    ) -> Result<PendingObject, PendingError> {
        self.put_pending_now(namespace, expected, body, now).await
    }

    async fn pending_object(
        &self,
        namespace: &str,
        sha256: &str,
    ) -> Result<Option<PendingObject>, StoreError> {
        crate::gate::blocking(|| self.pending_object_now(namespace, sha256))
    }

    async fn pending_bytes(&self, namespace: &str) -> Result<u64, StoreError> {
        crate::gate::blocking(|| self.pending_bytes_now(namespace))
    }

    async fn pending_sizes(&self, namespace: &str) -> Result<Vec<u64>, StoreError> {
        crate::gate::blocking(|| self.pending_sizes_now(namespace))
    }

    async fn meta(&self, kind: MetaKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_meta_id(id)?;
        let path = self.root.join(kind.dir()).join(format!("{id}.json"));
        match weightgate_attest::io::read_capped(&path, MAX_META_LEN) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    async fn put_meta(&self, kind: MetaKind, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_meta_id(id)?;
        let dir = self.root.join(kind.dir());
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("{id}.json"));
        write_atomically(&path, bytes, 0o600, Replace::Allowed).map_err(io(&path))
    }

    async fn remove_meta(&self, kind: MetaKind, id: &str) -> Result<bool, StoreError> {
        check_meta_id(id)?;
        let path = self.root.join(kind.dir()).join(format!("{id}.json"));
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }

    async fn meta_ids(&self, kind: MetaKind) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join(kind.dir());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                is_sha256_hex(id).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn repos_in(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        let dir = self
            .pending_dir(namespace)
            .map(|_| self.root.join("repos").join(namespace))?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut repos: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(|n| format!("{namespace}/{n}")))
            .filter(|r| check_repo_id(r).is_ok())
            .collect();
        repos.sort();
        Ok(repos)
    }

    fn default_audit_log(&self) -> Option<PathBuf> {
        Some(self.root.join("audit.log"))
    }

    fn shared_policy_location(&self) -> Option<String> {
        None
    }

    async fn shared_policy(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    async fn put_xet_object(
        &self,
        namespace: &str,
        kind: super::XetObjectKind,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        crate::gate::blocking(|| self.put_xet_object_now(namespace, kind, hash, bytes))
    }

    async fn xet_object(
        &self,
        namespace: &str,
        kind: super::XetObjectKind,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        crate::gate::blocking(|| self.xet_object_now(namespace, kind, hash))
    }

    async fn read_xet_object(
        &self,
        namespace: &str,
        kind: super::XetObjectKind,
        hash: &str,
        into: &mut super::AlignedBuf,
    ) -> Result<bool, StoreError> {
        crate::gate::blocking(|| self.read_xet_object_now(namespace, kind, hash, into))
    }

    async fn xet_objects(
        &self,
        namespace: &str,
    ) -> Result<Vec<super::StoredXetObject>, StoreError> {
        crate::gate::blocking(|| self.xet_objects_now(namespace))
    }
}
