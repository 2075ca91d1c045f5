//! The folder store's write side. Each source file is read once into private buffers, hashed
//! (SHA-256 and BLAKE3) from them and written from them into a private staging folder under
//! `STORE/tmp/` (`attest::hashing::copy_and_hash`), so the bytes hashed are the bytes stored.
//! Committing renames each staged file to the blob named by its SHA-256, then writes the
//! envelope, grants and signature files, the revision record, and the ref last, each atomically:
//! a revision is visible only once everything it names is in place.

use std::collections::HashSet;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::Digest as _;
use weightgate_attest::hashing::{FileCopy, Progress, copy_and_hash};
use weightgate_attest::io::{Replace, write_atomically};
use weightgate_attest::reading::FileIdentity;

use super::folder::state_of;
use super::{
    AdmittedFile, BlobIdentity, BlobSource, FolderStore, Hashes, PendingObject, Publication,
    RefPrecondition, RevisionRecord, SourceFile, StagedFile, Staging, StoreError, io_at as io,
    ref_as_expected,
};

/// Files copied per call of `copy_and_hash`: each holds two descriptors until it is synced.
const FILES_PER_BATCH: usize = 256;

/// A private folder under `STORE/tmp/`, removed when dropped (after committing, its files have
/// been renamed away). Left-overs of killed admissions are removed by the next one.
pub(super) struct FolderStaging<'a> {
    store: &'a FolderStore,
    dir: PathBuf,
    /// `gc.lock` held shared until the admission ends: no `store gc` runs meanwhile.
    _no_gc: File,
    /// Pending objects taken in, with their namespace and staged path: put back if the commit
    /// fails in the store or loses its branch.
    adopted: Vec<(String, PendingObject, PathBuf)>,
}

impl<'a> FolderStaging<'a> {
    pub(super) fn create(store: &'a FolderStore) -> Result<Self, StoreError> {
        let no_gc = crate::gate::blocking(|| store.lock(false))?;
        let tmp = store.root.join("tmp");
        remove_dead_stagings(&tmp);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = tmp.join(format!("admit-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(FolderStaging {
            store,
            dir,
            _no_gc: no_gc,
            adopted: Vec::new(),
        })
    }

    fn put_files_now(
        &self,
        files: &[SourceFile],
        progress: Progress,
    ) -> Result<Vec<StagedFile>, StoreError> {
        let mut out = Vec::with_capacity(files.len());
        // In batches, so a checkpoint of thousands of files holds a bounded number of
        // descriptors.
        for batch in files.chunks(FILES_PER_BATCH) {
            let staged = batch
                .iter()
                .map(|f| {
                    OpenCopy::open(
                        &f.fs_path,
                        f.identity.as_ref(),
                        self.dir.join(&f.path),
                        f.size,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let copies: Vec<FileCopy> = batch
                .iter()
                .zip(&staged)
                .map(|(f, s)| s.copy(&f.path))
                .collect();
            let copied = copy_and_hash(&copies, progress)?;
            drop(copies);
            for ((f, s), digests) in batch.iter().zip(staged).zip(copied.files) {
                let (Some(sha256), Some(blake3)) = (digests.sha256, digests.blake3) else {
                    return Err(StoreError::source_changed(&f.fs_path));
                };
                let head = s.finish(f.head_len)?;
                out.push(StagedFile {
                    hashes: Hashes { sha256, blake3 },
                    head,
                });
            }
        }
        sync_dir_tree(&self.dir)?;
        Ok(out)
    }

    /// Puts back into the pending area what this admission took in and did not place as a
    /// blob (best effort: one that cannot go back expires as if refused).
    fn return_adopted(&self) {
        for (namespace, object, staged) in &self.adopted {
            if let Err(e) = self.store.return_pending_now(namespace, object, staged) {
                tracing::warn!(namespace, sha256 = %object.sha256, error = %e,
                    "a pending object taken in by a failed commit cannot be put back");
            }
        }
    }

    fn commit_now(&self, p: Publication) -> Result<RevisionRecord, StoreError> {
        let store = self.store;
        // Held from the check of the ref to its move: two gates over this folder cannot both
        // move a branch from the same head. Taken before any blob is placed, so a commit that
        // lost its branch leaves every pending object it took in where it can go back.
        let _ref_lock = match &p.ref_was {
            RefPrecondition::Any => None,
            expected => Some(self.ref_lock_checked(p.repo, p.ref_name, expected)?),
        };
        let blobs = store.root.join("blobs");
        let mut files = Vec::with_capacity(p.files.len());
        // Blobs this commit renamed into place: a second file with the same bytes shares it.
        let mut placed = HashSet::new();
        for f in &p.files {
            let sha = hex::encode(f.hashes.sha256);
            let dest = store.blob_path(&sha);
            let identity = match &f.blob {
                BlobSource::Staged { staged_path } if !placed.contains(&sha) => {
                    let staged = self.dir.join(staged_path);
                    self.place(&staged, &dest, &sha)?
                }
                BlobSource::Staged { .. } => current_identity(&dest)?,
                BlobSource::Stored(found) => {
                    let now = current_identity(&dest)?;
                    if &now != found {
                        return Err(StoreError::BlobChanged {
                            location: dest.display().to_string(),
                            why: "it changed while the admission was judged".into(),
                        });
                    }
                    now
                }
            };
            placed.insert(sha.clone());
            files.push(AdmittedFile {
                path: f.path.clone(),
                size: f.size,
                sha256: sha,
                blake3: hex::encode(f.hashes.blake3),
                blob: identity,
            });
        }
        File::open(&blobs)
            .and_then(|d| d.sync_all())
            .map_err(io(&blobs))?;
        let attestation = store.put_content_addressed(
            "attestations",
            "att",
            p.envelope,
            weightgate_schemas::MAX_ENVELOPE_LEN as u64,
        )?;
        let mut grant_ids = Vec::new();
        for g in p.grants {
            grant_ids.push(store.put_content_addressed(
                "grants",
                "grant",
                g,
                weightgate_schemas::MAX_GRANT_LEN as u64,
            )?);
        }
        let mut signature_files = Vec::new();
        for (file, bytes) in p.signature_files() {
            let path = store.signature_path(&file.sha256);
            write_atomically(&path, bytes, 0o444, Replace::Allowed).map_err(io(&path))?;
            signature_files.push(file);
        }
        let record = p.record(files, attestation, grant_ids, signature_files);
        let dir = store.root.join("repos").join(p.repo);
        for d in ["revisions", "refs"] {
            fs::create_dir_all(dir.join(d)).map_err(io(&dir.join(d)))?;
        }
        let mpath = dir.join("revisions").join(format!("{}.json", p.revision));
        let json = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Corrupt {
            location: mpath.display().to_string(),
            why: e.to_string(),
        })?;
        write_atomically(&mpath, &json, 0o644, Replace::Allowed).map_err(io(&mpath))?;
        let rpath = dir.join("refs").join(p.ref_name);
        write_atomically(
            &rpath,
            format!("{}\n", p.revision).as_bytes(),
            0o644,
            Replace::Allowed,
        )
        .map_err(io(&rpath))?;
        Ok(record)
    }

    /// Locks `repo`'s ref `ref_name` (`STORE/locks/`, flock) and checks it is as `expected`.
    fn ref_lock_checked(
        &self,
        repo: &str,
        ref_name: &str,
        expected: &RefPrecondition,
    ) -> Result<File, StoreError> {
        use std::os::fd::AsRawFd;
        let locks = self.store.root.join("locks");
        fs::create_dir_all(&locks).map_err(io(&locks))?;
        let name = hex::encode(sha2::Sha256::digest(format!("{repo}\n{ref_name}")));
        let path = locks.join(format!("ref-{name}.lock"));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        // SAFETY: flock on a descriptor we own; released when the file is dropped.
        while unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io(&path)(e));
            }
        }
        let rpath = self
            .store
            .root
            .join("repos")
            .join(repo)
            .join("refs")
            .join(ref_name);
        let now = match weightgate_attest::io::read_capped(&rpath, super::MAX_REF_LEN) {
            Ok(b) => Some(String::from_utf8_lossy(&b).trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&rpath)(e)),
        };
        ref_as_expected(repo, ref_name, expected, now.as_deref())?;
        Ok(lock)
    }

    /// Renames a staged file to its blob name. A blob of that name stored meanwhile (another
    /// admission of the same bytes) is kept, once hashed again: an altered blob is never
    /// blessed by a new record.
    /// A blob whose identity is still the one noted when it was placed (or last hashed) is
    /// not read again: the same proof a record's identity gives a reused blob.
    fn place(&self, staged: &Path, dest: &Path, sha: &str) -> Result<BlobIdentity, StoreError> {
        match fs::symlink_metadata(dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::rename(staged, dest).map_err(io(dest))?;
                let identity = current_identity(dest)?;
                self.store.note_placed(sha, &identity);
                Ok(identity)
            }
            Err(e) => Err(io(dest)(e)),
            Ok(_) => {
                let now = current_identity(dest)?;
                if self
                    .store
                    .placed_identity(sha)
                    .is_some_and(|noted| noted.proves_unchanged(&now))
                {
                    return Ok(now);
                }
                let (hashes, state) = self.store.rehash_blob(sha, &|_| {})?;
                if hex::encode(hashes.sha256) != sha || state.defect.is_some() {
                    return Err(StoreError::BlobChanged {
                        location: dest.display().to_string(),
                        why: format!(
                            "its SHA-256 is now {}{}",
                            hex::encode(hashes.sha256),
                            state
                                .defect
                                .map(|d| format!(" and it {d}"))
                                .unwrap_or_default()
                        ),
                    });
                }
                self.store.note_placed(sha, &state.identity);
                Ok(state.identity)
            }
        }
    }
}

/// A blob's identity now; a blob that is no longer a read-only regular file is refused.
fn current_identity(path: &Path) -> Result<BlobIdentity, StoreError> {
    let state = state_of(&fs::symlink_metadata(path).map_err(io(path))?);
    match state.defect {
        Some(defect) => Err(StoreError::BlobChanged {
            location: path.display().to_string(),
            why: format!("it {defect}"),
        }),
        None => Ok(state.identity),
    }
}

#[async_trait::async_trait]
impl Staging for FolderStaging<'_> {
    async fn put_files(
        &mut self,
        files: &[SourceFile],
        progress: Progress<'_>,
    ) -> Result<Vec<StagedFile>, StoreError> {
        crate::gate::blocking(|| self.put_files_now(files, progress))
    }

    async fn commit(
        self: Box<Self>,
        publication: Publication<'_>,
    ) -> Result<RevisionRecord, StoreError> {
        crate::gate::blocking(|| {
            let committed = self.commit_now(publication);
            if committed.is_err() {
                self.return_adopted();
            }
            committed
        })
    }

    async fn adopt_pending(
        &mut self,
        namespace: &str,
        object: &PendingObject,
        staged_path: &str,
        head_len: usize,
    ) -> Result<StagedFile, StoreError> {
        let dest = self.dir.join(staged_path);
        let staged = crate::gate::blocking(|| {
            self.store
                .adopt_pending_now(namespace, object, &dest, head_len)
        })?;
        self.adopted
            .push((namespace.to_string(), object.clone(), dest));
        Ok(staged)
    }

    async fn put_bytes(&mut self, staged_path: &str, bytes: &[u8]) -> Result<Hashes, StoreError> {
        let dest = self.dir.join(staged_path);
        crate::gate::blocking(|| {
            let hashes = Hashes {
                sha256: sha2::Sha256::digest(bytes).into(),
                blake3: blake3::hash(bytes).into(),
            };
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&dest)
                .map_err(io(&dest))?;
            std::io::Write::write_all(&mut out, bytes)
                .and_then(|()| out.set_permissions(fs::Permissions::from_mode(0o444)))
                .and_then(|()| out.sync_all())
                .map_err(io(&dest))?;
            Ok(hashes)
        })
    }

    async fn abort(self: Box<Self>) {
        drop(self);
    }
}

impl Drop for FolderStaging<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes `admit-PID-*` folders whose process no longer runs.
fn remove_dead_stagings(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("admit-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// One file being staged: its source, opened and measured before the copy, and its
/// destination in the staging area, created 0444.
struct OpenCopy {
    src: PathBuf,
    input: File,
    before: FileIdentity,
    dest: PathBuf,
    out: File,
    size: u64,
}

impl OpenCopy {
    /// Opens the source, which must be the regular file found when the checkpoint was read
    /// (`expected`: the same device, inode, size and times) with the attested size, and
    /// creates the destination. The open follows no symbolic link in the last component and
    /// does not wait on a FIFO; comparing with `expected` catches a path swapped since.
    fn open(
        src: &Path,
        expected: Option<&FileIdentity>,
        dest: PathBuf,
        size: u64,
    ) -> Result<Self, StoreError> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let input = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(src)
            .map_err(|e| match e.raw_os_error() {
                // A symbolic link where the checkpoint had a regular file.
                Some(libc::ELOOP) => StoreError::source_changed(src),
                _ => io(src)(e),
            })?;
        let meta = input.metadata().map_err(io(src))?;
        let before = FileIdentity::of(&meta);
        if !meta.is_file() || before.size != size || expected.is_some_and(|e| *e != before) {
            return Err(StoreError::source_changed(src));
        }
        let out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&dest)
            .map_err(io(&dest))?;
        Ok(OpenCopy {
            src: src.to_path_buf(),
            input,
            before,
            dest,
            out,
            size,
        })
    }

    fn copy<'a>(&'a self, path: &'a str) -> FileCopy<'a> {
        FileCopy {
            path,
            source: &self.input,
            dest_path: &self.dest,
            dest: &self.out,
            size: self.size,
        }
    }

    /// After the copy: refuses a source written to meanwhile (its size, modification or
    /// status-change time moved; its owner can set the first two back, not the third), makes
    /// the staged file read-only and durable, and reads back its first `head_len` bytes.
    fn finish(self, head_len: usize) -> Result<Vec<u8>, StoreError> {
        let after = self.input.metadata().map_err(io(&self.src))?;
        if FileIdentity::of(&after) != self.before {
            return Err(StoreError::source_changed(&self.src));
        }
        // The umask may have narrowed the creation mode; blobs are served read-only to everyone.
        self.out
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io(&self.dest))?;
        self.out.sync_all().map_err(io(&self.dest))?;
        let mut head = vec![0u8; head_len.min(self.size as usize)];
        File::open(&self.dest)
            .and_then(|f| f.read_exact_at(&mut head, 0))
            .map_err(io(&self.dest))?;
        Ok(head)
    }
}

/// fsyncs every folder of the staged tree, so renamed blobs survive a crash.
fn sync_dir_tree(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    for e in fs::read_dir(dir).map_err(io(dir))?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            sync_dir_tree(&e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    /// Admits `bytes` as the one file of `repo` through a fresh staging.
    fn admit_bytes(store: &FolderStore, repo: &str, bytes: &[u8]) -> Result<(), StoreError> {
        use crate::gate::store::{RefPrecondition, Staging as _};
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut staging = Box::new(FolderStaging::create(store)?);
            let sha = hex::encode(sha2::Sha256::digest(bytes));
            let hashes = staging.put_bytes(&sha, bytes).await?;
            let publication = Publication::one_staged_file(
                repo,
                RefPrecondition::Any,
                bytes.len() as u64,
                hashes,
                &sha,
            );
            staging.commit(publication).await.map(drop)
        })
    }

    #[test]
    fn a_placed_blob_notes_its_identity_and_an_altered_one_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(dir.path()).unwrap();
        let bytes = b"the same bytes, admitted under two organisations".to_vec();
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        admit_bytes(&store, "lab-a/m", &bytes).unwrap();
        let blob = store.blob_path(&sha);
        let noted = store.placed_identity(&sha).expect("noted at placement");
        assert!(noted.proves_unchanged(&current_identity(&blob).unwrap()));
        // Unchanged: the second organisation's admission keeps the same blob.
        admit_bytes(&store, "lab-b/m", &bytes).unwrap();
        assert!(noted.proves_unchanged(&current_identity(&blob).unwrap()));
        // Altered behind the store's back (same size): the noted identity no longer proves
        // anything, the blob is read again and refused.
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
        let mut altered = bytes.clone();
        altered[0] ^= 1;
        fs::write(&blob, &altered).unwrap();
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o444)).unwrap();
        let e = admit_bytes(&store, "lab-c/m", &bytes).unwrap_err();
        assert!(matches!(e, StoreError::BlobChanged { .. }), "{e}");
        // A note outlives its blob only until gc.
        fs::remove_file(&blob).unwrap();
        store.gc(std::time::Duration::ZERO).unwrap();
        assert!(store.placed_identity(&sha).is_none());
        assert!(!dir.path().join("blob-ids").join(&sha).exists());
    }

    fn source(dir: &Path, len: usize) -> PathBuf {
        let p = dir.join("src.bin");
        fs::write(&p, (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
        p
    }

    fn stage(f: &OpenCopy) -> Result<(), weightgate_attest::reading::CheckpointError> {
        copy_and_hash(&[f.copy("src.bin")], &|_| {}).map(|_| ())
    }

    #[test]
    fn a_staged_file_is_the_source_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let len = (5 << 20) + 5000;
        let src = source(dir.path(), len);
        let f = OpenCopy::open(&src, None, dir.path().join("a/b/dest.bin"), len as u64).unwrap();
        stage(&f).unwrap();
        let dest = f.dest.clone();
        f.finish(0).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), fs::read(&src).unwrap());
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o444
        );
    }

    #[test]
    fn a_source_that_grows_shrinks_or_is_rewritten_during_the_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let len = 3 * 4096;
        type Change = fn(&Path);
        let cases: [(&str, Change); 4] = [
            ("grows", |p| {
                fs::OpenOptions::new()
                    .append(true)
                    .open(p)
                    .unwrap()
                    .write_all(b"more")
                    .unwrap()
            }),
            ("shrinks", |p| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(4096)
                    .unwrap()
            }),
            ("is rewritten in place", |p| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .write_all(b"other")
                    .unwrap()
            }),
            ("is rewritten with its modification time set back", |p| {
                let mtime = fs::metadata(p).unwrap().modified().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
                let w = fs::OpenOptions::new().write(true).open(p).unwrap();
                w.write_all_at(b"evil", 100).unwrap();
                w.set_modified(mtime).unwrap();
            }),
        ];
        for (what, change) in cases {
            let src = source(dir.path(), len);
            let dest = dir.path().join(format!("dest-{}", what.len()));
            let f = OpenCopy::open(&src, None, dest, len as u64).unwrap();
            change(&src);
            // A shrunken source fails the copy itself; the others are caught after it.
            let err = match stage(&f) {
                Err(e) => e.to_string(),
                Ok(()) => f.finish(0).unwrap_err().to_string(),
            };
            assert!(err.contains("changed while"), "{what}: {err}");
        }
    }

    #[test]
    fn a_path_swapped_since_the_checkpoint_was_read_is_refused_before_copying() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), 100);
        let found = FileIdentity::of(&fs::metadata(&src).unwrap());
        // Another file of the same size, then a symbolic link, where the checkpoint had `src`.
        let other = dir.path().join("other.bin");
        fs::write(&other, [7u8; 100]).unwrap();
        fs::rename(&other, &src).unwrap();
        let err = OpenCopy::open(&src, Some(&found), dir.path().join("d1"), 100).err();
        assert!(err.unwrap().to_string().contains("changed while"));
        fs::remove_file(&src).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &src).unwrap();
        let err = OpenCopy::open(&src, None, dir.path().join("d2"), 100).err();
        assert!(err.unwrap().to_string().contains("changed while"));
    }

    #[test]
    fn a_source_of_another_size_than_attested_is_refused_before_copying() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), 100);
        let dest = dir.path().join("dest.bin");
        let err = OpenCopy::open(&src, None, dest.clone(), 101).err().unwrap();
        assert!(err.to_string().contains("changed while"), "{err}");
        assert!(!dest.exists());
    }
}
