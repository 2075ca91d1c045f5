//! Admission: each attested file is read once into private buffers, hashed (SHA-256 and
//! BLAKE3) from them and written from them into the store's private staging area, so the bytes
//! judged are the bytes stored. The staged copy's headers are parsed once, when it is judged
//! through the same stages as `verify`; only then is it published.
//!
//! Authentication runs first, so a statement without enough trusted signatures costs nothing
//! to refuse. The file set (names and sizes) is compared before any byte is copied; on a
//! mismatch the checkpoint is verified in place instead, which names every problem as
//! `verify --full` does.

use std::fs::{self, File};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use weightgate_attest::hashing::{
    CheckpointDigests, FileCopy, Progress, copy_and_hash, root_digest,
};
use weightgate_attest::reading::{Checkpoint, CheckpointError, FileIdentity, OpenOptions};
use weightgate_schemas::Statement;

use super::store::{
    FolderStore, RevisionRecord, StoreError, check_ref, check_repo_id, io_at as io,
};
use crate::decision::Decision;
use crate::model_sig::OmsRequest;
use crate::policy::{Context, Policy};
use crate::reason::ReasonCode;
use crate::stages::{Authenticated, Bound, SubjectSource, authenticate, bind, judge};

/// What to admit, and under which policy.
pub struct AdmitRequest<'a> {
    /// Repository id to serve it as, `ORG/NAME`.
    pub repo: &'a str,
    /// Ref name to point at the new revision.
    pub ref_name: &'a str,
    pub checkpoint: &'a Path,
    pub open: OpenOptions,
    pub envelope: &'a [u8],
    pub grants: Vec<Vec<u8>>,
    pub policy: &'a Policy,
    /// An OpenSSF model-signing bundle to check beside the attestation.
    pub oms: Option<OmsRequest>,
    pub now: i64,
}

/// What admission decided.
#[derive(Debug)]
pub enum Admission {
    /// Published. The decision may still deny for some requests: regimes depend on the
    /// destination and date of each download, so the gate judges them per request.
    Admitted {
        record: RevisionRecord,
        decision: Decision,
    },
    /// Nothing was published; the decision says why.
    Refused(Decision),
}

/// Which failed checks keep a release out of the store. Regime results depend on the
/// destination and date of each request, so they are judged when serving, not here.
pub fn blocks_admission(code: ReasonCode) -> bool {
    code.family() != crate::reason::Family::Regime
}

/// Admits a checkpoint into `store` if every check but the per-request regimes passes.
pub fn admit(
    store: &FolderStore,
    req: &AdmitRequest,
    progress: Progress,
) -> Result<Admission, StoreError> {
    check_repo_id(req.repo).map_err(|e| StoreError::Invalid(e.0))?;
    check_ref(req.ref_name).map_err(|e| StoreError::Invalid(e.0))?;
    let mut d = Decision::new(req.now);
    let Some(auth) = authenticate(req.envelope, req.policy, req.now, &mut d) else {
        return Ok(Admission::Refused(d));
    };
    let st = auth.statement();

    // Names and sizes first: a mismatch is judged in place, without copying anything.
    let source = Checkpoint::open(req.checkpoint, &req.open).ok();
    let Some(source) = source.filter(|s| same_file_set(st, s)) else {
        let subject = SubjectSource::OnDisk {
            checkpoint: req.checkpoint,
            open: req.open.clone(),
            full: true,
            threads: 0,
            oms: req.oms.clone(),
        };
        bind_and_judge(&auth, &subject, req, &mut d, progress)?;
        return Ok(Admission::Refused(d));
    };

    let staging = Staging::create(store)?;
    // Each file is read once into private buffers, hashed from them and written from them to
    // the staging area (`attest::hashing::copy_and_hash`): the bytes hashed are the bytes stored.
    // In batches, so a checkpoint of thousands of files holds a bounded number of descriptors.
    let mut files = Vec::with_capacity(st.subject.files.len());
    for batch in st.subject.files.chunks(FILES_PER_BATCH) {
        let staged = batch
            .iter()
            .map(|entry| {
                let src = source.file(&entry.path).ok_or_else(|| {
                    StoreError::Invalid(format!("{}: attested but missing", entry.path))
                })?;
                StagedFile::open(
                    &src.fs_path,
                    src.identity.as_ref(),
                    staging.dir.join(&entry.path),
                    entry.size,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let copies: Vec<FileCopy> = batch
            .iter()
            .zip(&staged)
            .map(|(entry, f)| f.copy(&entry.path))
            .collect();
        let copied = copy_and_hash(&copies, progress)?;
        drop(copies);
        for f in staged {
            f.finish()?;
        }
        files.extend(copied.files);
    }
    let root_sha256 = Some(root_digest(files.iter().filter_map(|f| f.sha256.as_ref())));
    let digests = CheckpointDigests { files, root_sha256 };
    sync_dir_tree(&staging.dir)?;

    let subject = SubjectSource::Staged {
        root: &staging.dir,
        digests: &digests,
        oms_root: req.checkpoint,
        oms: req.oms.clone(),
    };
    let bound = bind_and_judge(&auth, &subject, req, &mut d, &|_| {})?;
    if d.reasons.iter().any(|r| blocks_admission(r.code)) {
        return Ok(Admission::Refused(d));
    }
    let header_parameters = bound.header_parameters().unwrap_or(0);
    let record = store.publish(
        req.repo,
        req.ref_name,
        &staging.dir,
        &digests,
        req.envelope,
        auth.payload_sha256(),
        &req.grants,
        header_parameters,
        req.oms.as_ref().map(|o| o.bundle.as_slice()),
        req.now,
    )?;
    Ok(Admission::Admitted {
        record,
        decision: d,
    })
}

/// The bind and judge stages into `d`. Regimes are judged without a destination: admission
/// only needs to know which non-regime checks fail.
pub(crate) fn bind_and_judge(
    auth: &Authenticated,
    subject: &SubjectSource,
    req: &AdmitRequest,
    d: &mut Decision,
    progress: Progress,
) -> Result<Bound, StoreError> {
    let bound = bind(auth, subject, req.policy, d, progress)
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let context = Context {
        now: req.now,
        destination: None,
    };
    judge(auth, &bound, req.policy, &context, &req.grants, None, d);
    Ok(bound)
}

/// True when the checkpoint holds exactly the attested paths with the attested sizes.
pub(crate) fn same_file_set(st: &Statement, source: &Checkpoint) -> bool {
    st.subject.files.len() == source.files.len()
        && st
            .subject
            .files
            .iter()
            .all(|f| source.file(&f.path).is_some_and(|s| s.size == f.size))
}

/// A private folder under `STORE/tmp/`, removed when dropped (after publishing, its files have
/// been renamed away). Left-overs of killed admissions are removed by the next one.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn create(store: &FolderStore) -> Result<Self, StoreError> {
        let tmp = store.root.join("tmp");
        remove_dead_stagings(&tmp);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = tmp.join(format!("admit-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Staging { dir })
    }
}

impl Drop for Staging {
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

/// A staged copy that could not be hashed (it shrank under its mapping) is refused like a
/// source that changed.
impl From<CheckpointError> for StoreError {
    fn from(e: CheckpointError) -> Self {
        StoreError::Invalid(e.to_string())
    }
}

/// Files copied per call of `copy_and_hash`: each holds two descriptors until it is synced.
const FILES_PER_BATCH: usize = 256;

/// One attested file being staged: its source, opened and measured before the copy, and its
/// destination in the staging area, created 0444.
struct StagedFile {
    src: PathBuf,
    input: File,
    before: FileIdentity,
    dest: PathBuf,
    out: File,
    size: u64,
}

impl StagedFile {
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
        Ok(StagedFile {
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
    /// status-change time moved; its owner can set the first two back, not the third), then
    /// makes the staged file read-only and durable.
    fn finish(self) -> Result<(), StoreError> {
        let after = self.input.metadata().map_err(io(&self.src))?;
        if FileIdentity::of(&after) != self.before {
            return Err(StoreError::source_changed(&self.src));
        }
        // The umask may have narrowed the creation mode; blobs are served read-only to everyone.
        self.out
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io(&self.dest))?;
        self.out.sync_all().map_err(io(&self.dest))
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

    fn source(dir: &Path, len: usize) -> PathBuf {
        let p = dir.join("src.bin");
        fs::write(&p, (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
        p
    }

    fn stage(f: &StagedFile) -> Result<(), CheckpointError> {
        copy_and_hash(&[f.copy("src.bin")], &|_| {}).map(|_| ())
    }

    #[test]
    fn a_staged_file_is_the_source_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let len = (5 << 20) + 5000;
        let src = source(dir.path(), len);
        let f = StagedFile::open(&src, None, dir.path().join("a/b/dest.bin"), len as u64).unwrap();
        stage(&f).unwrap();
        let dest = f.dest.clone();
        f.finish().unwrap();
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
            let f = StagedFile::open(&src, None, dest, len as u64).unwrap();
            change(&src);
            // A shrunken source fails the copy itself; the others are caught after it.
            let err = match stage(&f) {
                Err(e) => e.to_string(),
                Ok(()) => f.finish().unwrap_err().to_string(),
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
        let err = StagedFile::open(&src, Some(&found), dir.path().join("d1"), 100).err();
        assert!(err.unwrap().to_string().contains("changed while"));
        fs::remove_file(&src).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &src).unwrap();
        let err = StagedFile::open(&src, None, dir.path().join("d2"), 100).err();
        assert!(err.unwrap().to_string().contains("changed while"));
    }

    #[test]
    fn a_source_of_another_size_than_attested_is_refused_before_copying() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), 100);
        let dest = dir.path().join("dest.bin");
        let err = StagedFile::open(&src, None, dest.clone(), 101)
            .err()
            .unwrap();
        assert!(err.to_string().contains("changed while"), "{err}");
        assert!(!dest.exists());
    }
}
