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
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use weightgate_attest::hashing::CheckpointDigests;
use weightgate_attest::io::{Replace, write_atomically};
use weightgate_schemas::file_names::{ATTESTATION_FILE_NAME, OMS_SIGNATURE_FILE_NAME};

use super::{
    AdmittedFile, MAX_RECORD_LEN, MAX_REF_LEN, RevisionRecord, SignatureFile, StoreError,
    check_ref, check_repo_id, hex, io_at as io, is_revision_id, is_short_revision_id,
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

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join("repos").join(repo)
    }

    /// The ref names of `repo` with the revision each points at, sorted by name.
    pub fn refs(&self, repo: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_repo_id(repo).map_err(|e| StoreError::Invalid(e.0))?;
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

    /// The admitted revision whose id starts with `prefix` (at least 7 hex digits), if exactly
    /// one does: commit ids may be shortened as git shortens them.
    fn revision_by_prefix(&self, repo: &str, prefix: &str) -> Result<Option<String>, StoreError> {
        let dir = self.repo_dir(repo).join("revisions");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::Io { path: dir, error }),
        };
        let mut found = None;
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if is_revision_id(id) && id.starts_with(prefix) {
                if found.is_some() {
                    return Ok(None); // ambiguous
                }
                found = Some(id.to_string());
            }
        }
        Ok(found)
    }

    /// Path of a stored signature file.
    pub fn signature_path(&self, sha256: &str) -> PathBuf {
        self.root.join("signatures").join(sha256)
    }

    /// Resolves a ref name, a revision id or a unique prefix of one (7 or more lowercase hex
    /// digits; a ref of that name wins) to an admitted manifest; `Ok(None)` if unknown.
    pub fn manifest(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        check_repo_id(repo).map_err(|e| StoreError::Invalid(e.0))?;
        let id = if is_revision_id(revision) {
            revision.to_string()
        } else {
            if check_ref(revision).is_err() {
                return Ok(None);
            }
            let ref_path = self.repo_dir(repo).join("refs").join(revision);
            match weightgate_attest::io::read_capped_to_string(&ref_path, MAX_REF_LEN) {
                Ok(s) => s.trim().to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match is_short_revision_id(revision) {
                        true => match self.revision_by_prefix(repo, revision)? {
                            Some(id) => id,
                            None => return Ok(None),
                        },
                        false => return Ok(None),
                    }
                }
                Err(e) => {
                    return Err(StoreError::Io {
                        path: ref_path,
                        error: e,
                    });
                }
            }
        };
        if !is_revision_id(&id) {
            return Err(StoreError::Invalid(format!(
                "{repo}: ref `{revision}` holds `{id}`, not a revision id"
            )));
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
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))
    }

    /// True if any revision of `repo` was admitted.
    pub fn has_repo(&self, repo: &str) -> bool {
        check_repo_id(repo).is_ok() && self.repo_dir(repo).join("revisions").is_dir()
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

    /// Checks that a blob is still what was admitted (size, mtime, read-only); the reason if not.
    pub fn blob_problem(&self, f: &AdmittedFile) -> Option<String> {
        let p = self.blob_path(&f.sha256);
        match fs::symlink_metadata(&p) {
            Err(e) => Some(format!("blob {} for {}: {e}", f.sha256, f.path)),
            Ok(m) if !m.is_file() => Some(format!(
                "blob {} for {} is not a regular file",
                f.sha256, f.path
            )),
            Ok(m) if m.len() != f.size => Some(format!(
                "blob {} for {} is {} bytes, admitted {}",
                f.sha256,
                f.path,
                m.len(),
                f.size
            )),
            Ok(m) if (m.mtime(), m.mtime_nsec()) != (f.blob_mtime, f.blob_mtime_nsec) => {
                Some(format!(
                    "blob {} for {} was modified after admission",
                    f.sha256, f.path
                ))
            }
            Ok(m) if m.permissions().mode() & 0o222 != 0 => {
                Some(format!("blob {} for {} became writable", f.sha256, f.path))
            }
            Ok(_) => None,
        }
    }

    /// Publishes a staged, judged admission: each staged file becomes the blob named by its
    /// SHA-256 (an existing blob of that name is kept once re-hashed), then the envelope and grants, then the
    /// revision record, and last the ref, each written atomically; a revision is visible only
    /// once everything it names is in place.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn publish(
        &self,
        repo: &str,
        ref_name: &str,
        staging: &Path,
        digests: &CheckpointDigests,
        envelope: &[u8],
        payload_sha256: &str,
        grants: &[Vec<u8>],
        header_parameters: u64,
        model_sig: Option<&[u8]>,
        now: i64,
    ) -> Result<RevisionRecord, StoreError> {
        let revision = payload_sha256[..40].to_string();
        let blobs = self.root.join("blobs");
        let mut files = Vec::with_capacity(digests.files.len());
        for f in &digests.files {
            let (Some(sha), Some(b3)) = (f.sha256, f.blake3) else {
                return Err(StoreError::Invalid(format!("{}: not hashed", f.path)));
            };
            let sha = hex(&sha);
            let dest = self.blob_path(&sha);
            if dest.exists() {
                // Shared with an earlier admission: reused only if it still is what its name
                // says, never blessed again after being altered.
                self.check_existing_blob(&sha)?;
            } else {
                let staged = staging.join(&f.path);
                fs::rename(&staged, &dest).map_err(io(&dest))?;
            }
            let meta = fs::metadata(&dest).map_err(io(&dest))?;
            files.push(AdmittedFile {
                path: f.path.clone(),
                size: f.size,
                sha256: sha,
                blake3: hex(&b3),
                blob_mtime: meta.mtime(),
                blob_mtime_nsec: meta.mtime_nsec(),
                object_etag: None,
            });
        }
        File::open(&blobs)
            .and_then(|d| d.sync_all())
            .map_err(io(&blobs))?;
        let attestation = self.put_content_addressed(
            "attestations",
            "att",
            envelope,
            weightgate_schemas::MAX_ENVELOPE_LEN as u64,
        )?;
        let mut grant_ids = Vec::new();
        for g in grants {
            grant_ids.push(self.put_content_addressed(
                "grants",
                "grant",
                g,
                weightgate_schemas::MAX_GRANT_LEN as u64,
            )?);
        }
        let mut signature_files = Vec::new();
        for (path, bytes) in [
            (ATTESTATION_FILE_NAME, Some(envelope)),
            (OMS_SIGNATURE_FILE_NAME, model_sig),
        ] {
            let Some(bytes) = bytes else { continue };
            let sha256 = hex(&Sha256::digest(bytes));
            let p = self.signature_path(&sha256);
            write_atomically(&p, bytes, 0o444, Replace::Allowed).map_err(io(&p))?;
            signature_files.push(SignatureFile {
                path: path.to_string(),
                size: bytes.len() as u64,
                sha256,
            });
        }
        let record = RevisionRecord {
            repo: repo.to_string(),
            revision: revision.clone(),
            admitted_at: now,
            attestation,
            grants: grant_ids,
            header_parameters,
            model_sig: model_sig.is_some(),
            signature_files,
            files,
        };
        let dir = self.repo_dir(repo);
        for d in ["revisions", "refs"] {
            fs::create_dir_all(dir.join(d)).map_err(io(&dir.join(d)))?;
        }
        let mpath = dir.join("revisions").join(format!("{revision}.json"));
        let json =
            serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Invalid(e.to_string()))?;
        write_atomically(&mpath, &json, 0o644, Replace::Allowed).map_err(io(&mpath))?;
        let rpath = dir.join("refs").join(ref_name);
        write_atomically(
            &rpath,
            format!("{revision}\n").as_bytes(),
            0o644,
            Replace::Allowed,
        )
        .map_err(io(&rpath))?;
        Ok(record)
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
        let id = hex(&Sha256::digest(bytes));
        let path = self.root.join(dir).join(format!("{id}.{ext}"));
        if let Ok(existing) = weightgate_attest::io::read_capped(&path, cap)
            && hex(&Sha256::digest(&existing)) == id
        {
            return Ok(id);
        }
        write_atomically(&path, bytes, 0o444, Replace::Allowed).map_err(io(&path))?;
        Ok(id)
    }

    /// An existing blob is re-hashed before another admission reuses it: an altered blob is
    /// never blessed again by a new manifest recording its new size and mtime.
    pub fn check_existing_blob(&self, want: &str) -> Result<(), StoreError> {
        let path = self.blob_path(want);
        let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
        let altered = |why: String| {
            StoreError::Invalid(format!(
                "{}: {why}; the blob was altered after admission: remove it (and re-admit the \
                 revisions that use it) before admitting anything that shares it",
                path.display()
            ))
        };
        if !meta.is_file() {
            return Err(altered("not a regular file".into()));
        }
        if meta.permissions().mode() & 0o222 != 0 {
            return Err(altered("writable".into()));
        }
        let mut input = File::open(&path).map_err(io(&path))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = input.read(&mut buf).map_err(io(&path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let got = hex(&h.finalize());
        if got != want {
            return Err(altered(format!("its SHA-256 is now {got}")));
        }
        Ok(())
    }
}
