//! Writing files so that a reader sees either the old whole file or the new whole file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// How the final name may be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Replace an existing file whole (rename over it).
    Allowed,
    /// Fail with `AlreadyExists` if the name is taken (for keys: never overwrite).
    Never,
}

/// Writes `bytes` to `path` with permission `mode`: temp file in the same folder, fsync,
/// rename (or link, for [`Replace::Never`]), fsync of the folder. An interruption at any point
/// leaves at most a stray `.NAME.tmp-*` file, never a partial `path`.
pub fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    replace: Replace,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    if replace == Replace::Never && fs::symlink_metadata(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists; refusing to overwrite it",
                path.display()
            ),
        ));
    }
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        unique_suffix()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        match replace {
            Replace::Allowed => fs::rename(&tmp, path)?,
            Replace::Never => {
                // link(2) fails if the name exists, unlike rename(2): no overwrite race.
                fs::hard_link(&tmp, path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        std::io::Error::new(
                            e.kind(),
                            format!(
                                "{} already exists; refusing to overwrite it",
                                path.display()
                            ),
                        )
                    } else {
                        e
                    }
                })?;
                fs::remove_file(&tmp)?;
            }
        }
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    nanos ^ (COUNTER.fetch_add(1, Ordering::Relaxed) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_and_never_overwrites_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.att");
        write_atomically(&p, b"one", 0o644, Replace::Allowed).unwrap();
        write_atomically(&p, b"two", 0o644, Replace::Allowed).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let err = write_atomically(&p, b"three", 0o600, Replace::Never).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let k = dir.path().join("k.key");
        write_atomically(&k, b"secret", 0o600, Replace::Never).unwrap();
        assert_eq!(
            fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .collect();
        assert!(leftovers.is_empty());
    }
}
