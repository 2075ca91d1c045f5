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
    remove_stale_temps(&dir, &name.to_string_lossy());
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

/// Whether `file_name` is exactly a temp file name [`write_atomically`] makes for `target`
/// (`.TARGET.tmp-PID-N`, decimal numbers): anything else that merely looks like one is not ours.
pub(crate) fn is_temp_for(file_name: &str, target: &str) -> bool {
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    file_name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(target))
        .and_then(|r| r.strip_prefix(".tmp-"))
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(pid, n)| decimal(pid) && decimal(n))
}

/// Removes `.NAME.tmp-PID-*` files left by processes that no longer run (killed mid-write).
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let file_name = file_name.to_string_lossy();
        if !is_temp_for(&file_name, name) {
            continue;
        }
        let pid = file_name
            .rsplit_once(".tmp-")
            .and_then(|(_, rest)| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok());
        // kill(pid, 0) sends nothing; it fails with ESRCH when no such process exists.
        let dead = pid.is_some_and(|p| {
            p > 0
                && p != std::process::id() as i32
                // SAFETY: a plain syscall with no pointers; signal 0 is never delivered.
                && unsafe { libc::kill(p, 0) } == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        });
        if dead {
            let _ = fs::remove_file(e.path());
        }
    }
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

    #[test]
    fn temps_of_dead_writers_are_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        // PID 0x7fff_fff0 does not exist; our own PID does.
        let dead = dir.path().join(".out.att.tmp-2147483632-1");
        let live = dir
            .path()
            .join(format!(".out.att.tmp-{}-1", std::process::id()));
        let other = dir.path().join(".other.tmp-2147483632-1");
        for p in [&dead, &live, &other] {
            fs::write(p, b"partial").unwrap();
        }
        write_atomically(&dir.path().join("out.att"), b"x", 0o644, Replace::Allowed).unwrap();
        assert!(!dead.exists() && live.exists() && other.exists());
        assert!(is_temp_for(".weightgate.att.tmp-1-2", "weightgate.att"));
        assert!(!is_temp_for("weightgate.att", "weightgate.att"));
        assert!(!is_temp_for(".weightgate.attx.tmp-1", "weightgate.att"));
        assert!(!is_temp_for(".weightgate.att.tmp-", "weightgate.att"));
        assert!(!is_temp_for(".weightgate.att.tmp-evil", "weightgate.att"));
        assert!(!is_temp_for(".weightgate.att.tmp-1-2x", "weightgate.att"));
    }
}
