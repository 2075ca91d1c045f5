//! The one place files are memory-mapped.
//!
//! Mapping a file that another process truncates can raise SIGBUS and one that it rewrites can
//! yield bytes that never existed together on disk. We record the file's identity, size,
//! modification and status-change times before mapping and compare them after hashing (through the open handle and
//! through the path), so a file that changed gives [`CheckpointError::ChangedWhileHashing`]
//! instead of a wrong digest. A file shrunk under its mapping would raise SIGBUS on the next
//! read past its new end; [`super::sigbus`] catches that, reads zeros instead, and the check
//! after hashing reports the truncation.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use crate::reading::CheckpointError;

/// What must stay the same while a file is hashed.
type Stamp = crate::reading::FileIdentity;

/// A read-only mapping of a whole file, with the stamp it had when mapped.
pub struct MappedFile {
    rel_path: String,
    fs_path: PathBuf,
    file: File,
    /// Declared before `map` so it is released before the mapping goes away.
    watch: Option<super::sigbus::Watch>,
    map: Option<Mmap>,
    stamp: Stamp,
}

impl MappedFile {
    /// Whether `mincore` shows this file's page cache to this process: since Linux 5.0 only for
    /// files the caller owns or may write (or as root), to close a side channel.
    pub(crate) fn residency_visible(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let owner = self.file.metadata().map(|m| m.uid()).ok();
        if euid == 0 || owner == Some(euid) {
            return true;
        }
        let Ok(path) = std::ffi::CString::new(self.fs_path.as_os_str().as_encoded_bytes()) else {
            return false;
        };
        // SAFETY: a valid NUL-terminated path; access only reads it.
        unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
    }

    /// Maps `fs_path`, which must still have the `expected_size` its header was checked at.
    pub fn open(
        fs_path: &Path,
        rel_path: &str,
        expected_size: u64,
    ) -> Result<Self, CheckpointError> {
        let file = File::open(fs_path).map_err(|e| CheckpointError::io(fs_path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| CheckpointError::io(fs_path, e))?;
        let stamp = Stamp::of(&meta);
        if stamp.size != expected_size {
            return Err(CheckpointError::ChangedWhileHashing {
                path: rel_path.to_string(),
                what: format!("size was {expected_size} bytes, now {}", stamp.size),
            });
        }
        let map = if stamp.size == 0 {
            None // mmap(2) refuses zero-length mappings
        } else {
            // SAFETY: read-only private mapping. As for every mmap (see blake3's `io.rs`), a
            // concurrent writer breaks the "&[u8] does not change" promise; we accept that because
            // the bytes only feed hash functions, and `check_unchanged` turns such a change into
            // an error. Truncation by another process is caught by the SIGBUS watch.
            let map = unsafe { MmapOptions::new().map(&file) }
                .map_err(|e| CheckpointError::io(fs_path, e))?;
            Some(map)
        };
        let watch = map
            .as_ref()
            .map(|m| super::sigbus::watch(m.as_ptr(), m.len()));
        Ok(MappedFile {
            rel_path: rel_path.to_string(),
            fs_path: fs_path.to_path_buf(),
            file,
            watch,
            map,
            stamp,
        })
    }

    /// The open handle the mapping was made from (read from it to avoid page faults).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Fails unless the mapped file is the one `expected` describes (the file a header was
    /// checked in): a same-size file renamed over it in between has another inode.
    pub(crate) fn check_is(
        &self,
        expected: Option<&crate::reading::FileIdentity>,
    ) -> Result<(), CheckpointError> {
        let Some(e) = expected else {
            return Ok(());
        };
        if self.stamp != *e {
            return Err(CheckpointError::ChangedWhileHashing {
                path: self.rel_path.clone(),
                what: "it is no longer the file whose header was checked (replaced or modified)"
                    .into(),
            });
        }
        Ok(())
    }

    /// Fails if the file's size, modification time or identity changed since it was mapped.
    pub fn check_unchanged(&self) -> Result<(), CheckpointError> {
        let now_open = self
            .file
            .metadata()
            .map_err(|e| CheckpointError::io(&self.fs_path, e))?;
        let changed = |what: String| CheckpointError::ChangedWhileHashing {
            path: self.rel_path.clone(),
            what,
        };
        if self.watch.as_ref().is_some_and(|w| w.truncated()) {
            return Err(changed(
                "truncated while mapped; bytes past the new end read as zeros".into(),
            ));
        }
        let before = self.stamp;
        let after = Stamp::of(&now_open);
        if after.size != before.size {
            return Err(changed(format!(
                "size went from {} to {} bytes",
                before.size, after.size
            )));
        }
        if (after.mtime, after.mtime_nsec) != (before.mtime, before.mtime_nsec) {
            return Err(changed("modification time changed".into()));
        }
        match fs::metadata(&self.fs_path) {
            Ok(m) if Stamp::of(&m) == before => Ok(()),
            Ok(_) => Err(changed(
                "the path now names a different or modified file".into(),
            )),
            Err(e) => Err(changed(format!("the path can no longer be read: {e}"))),
        }
    }
}

/// Asks the CPU to start loading the cache lines of `data[at..at + len]` (clamped).
#[inline(always)]
pub(crate) fn prefetch(data: &[u8], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let end = data.len().min(at.saturating_add(len));
        let mut i = at;
        while i < end {
            // SAFETY: `i < data.len()`, so the pointer is inside the slice; prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(data.as_ptr().add(i).cast()) };
            i += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (data, at, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_that_grows_or_is_replaced_while_mapped_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, vec![7u8; 4096]).unwrap();
        let m = MappedFile::open(&p, "w.bin", 4096).unwrap();
        m.check_unchanged().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        let err = m.check_unchanged().unwrap_err().to_string();
        assert!(
            err.contains(
                "w.bin: file changed while it was being hashed (size went from 4096 to 4100"
            ),
            "{err}"
        );

        std::fs::write(&p, vec![7u8; 4096]).unwrap();
        let m = MappedFile::open(&p, "w.bin", 4096).unwrap();
        std::fs::write(dir.path().join("new.bin"), vec![8u8; 4096]).unwrap();
        std::fs::rename(dir.path().join("new.bin"), &p).unwrap();
        let err = m.check_unchanged().unwrap_err().to_string();
        assert!(err.contains("different or modified file"), "{err}");
    }

    #[test]
    fn size_must_match_the_checked_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, vec![7u8; 10]).unwrap();
        let err = MappedFile::open(&p, "w.bin", 12).err().unwrap().to_string();
        assert!(err.contains("size was 12 bytes, now 10"), "{err}");
        std::fs::write(&p, b"").unwrap();
        assert!(MappedFile::open(&p, "w.bin", 0).unwrap().bytes().is_empty());
    }
}
