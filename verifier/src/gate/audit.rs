//! The audit log: one JSON line per decision, appended by one writer thread and fsync'd in
//! small batches. A batch of whole lines goes out in one `write(2)` on an `O_APPEND` file; a
//! write cut short by `kill -9` or a power loss can leave a torn last line, so opening the log
//! first truncates it back to its last newline: the log holds only whole lines.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::Serialize;

use crate::reason::ReasonCode;

/// One decision.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub time: i64,
    pub repo: String,
    pub revision: String,
    pub path: String,
    pub destination: Option<String>,
    pub decision: &'static str,
    pub reasons: Vec<ReasonCode>,
    pub status: u16,
    pub bytes: u64,
    /// The name of the write token that made the request (never the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Where records go; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<Entry>,
}

struct Entry {
    record: AuditRecord,
    /// Told whether the record reached the file (written and fsync'd).
    written: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// Why a record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFailure {
    /// The writer is behind by [`QUEUE`] records (a slow or stuck disk).
    Full,
    /// Writing or syncing the log failed (a full disk, `/dev/full`, an I/O error).
    Write,
}

impl std::fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuditFailure::Full => "the audit writer is behind (disk too slow)",
            AuditFailure::Write => "the audit log cannot be written",
        })
    }
}

/// Lines written before an fsync at the latest.
const BATCH: usize = 512;
/// Records waiting for the writer at most: memory stays bounded when the disk is slow.
pub const QUEUE: usize = 8192;
/// Longest text field kept in a record (repo, revision, path, destination): request fields
/// come from the client, so a line's size is bounded whatever the request.
pub const MAX_FIELD: usize = 512;
/// Pause after each fsync so that, under load, one wake-up writes many lines; it bounds how
/// long a decision waits to reach the disk.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// When the log is rotated: past `max_bytes`, `audit.log` becomes `audit.log.1` (and `.1`
/// becomes `.2`, ...), keeping `keep` old files.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 256 << 20,
            keep: 8,
        }
    }
}

/// `text` cut to at most [`MAX_FIELD`] bytes on a character boundary, saying how much was cut.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_FIELD {
        return text.to_string();
    }
    let mut end = MAX_FIELD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...[{} bytes cut]", &text[..end], text.len() - end)
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Self::open_rotating(path, Rotation::default())
    }

    pub fn open_rotating(path: &Path, rotation: Rotation) -> std::io::Result<Self> {
        let file = open_log(path)?;
        drop_torn_tail(&file)?;
        let (tx, rx) = sync_channel(QUEUE);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || writer(file, &path, rotation, rx))?;
        Ok(AuditLog { tx })
    }

    /// Queues a record without waiting for it; `Err` if the queue is full (the record is lost,
    /// and the caller says so in the operational log).
    pub fn record(&self, record: AuditRecord) -> Result<(), AuditFailure> {
        self.tx
            .try_send(Entry {
                record: bounded_record(record),
                written: None,
            })
            .map_err(|_| AuditFailure::Full)
    }

    /// Writes a record and waits until it is on disk: what is served must be recorded first.
    pub async fn record_durably(&self, record: AuditRecord) -> Result<(), AuditFailure> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.tx
            .try_send(Entry {
                record: bounded_record(record),
                written: Some(done),
            })
            .map_err(|_| AuditFailure::Full)?;
        match written.await {
            Ok(true) => Ok(()),
            _ => Err(AuditFailure::Write),
        }
    }
}

fn bounded_record(mut r: AuditRecord) -> AuditRecord {
    for field in [&mut r.repo, &mut r.revision, &mut r.path] {
        if field.len() > MAX_FIELD {
            *field = bounded(field);
        }
    }
    if let Some(d) = &mut r.destination
        && d.len() > MAX_FIELD
    {
        *d = bounded(d);
    }
    r
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
}

/// Shifts `path.1..keep-1` up by one and renames `path` to `path.1`.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let numbered = |i: u32| {
        let mut p = path.as_os_str().to_os_string();
        p.push(format!(".{i}"));
        std::path::PathBuf::from(p)
    };
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    for i in (1..keep).rev() {
        match std::fs::rename(numbered(i), numbered(i + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(1))
}

/// Truncates `file` after its last newline, removing a line a crash cut short.
fn drop_torn_tail(file: &File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut f = file;
    let mut pos = len;
    let mut buf = [0u8; 4096];
    while pos > 0 {
        let n = buf.len().min(pos as usize);
        pos -= n as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            let keep = pos + i as u64 + 1;
            if keep != len {
                file.set_len(keep)?;
                file.sync_data()?;
            }
            return Ok(());
        }
    }
    file.set_len(0)?;
    file.sync_data()
}

fn writer(mut file: File, path: &Path, rotation: Rotation, rx: Receiver<Entry>) {
    let mut lines = Vec::with_capacity(BATCH * 200);
    let mut waiting = Vec::with_capacity(BATCH);
    // Only regular files are rotated (not `/dev/full` or a pipe).
    let rotates = file.metadata().is_ok_and(|m| m.is_file());
    let mut size = file.metadata().map_or(0, |m| m.len());
    while let Ok(first) = rx.recv() {
        lines.clear();
        waiting.clear();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(e) = next.take() {
            let start = lines.len();
            match serde_json::to_writer(&mut lines, &e.record) {
                Ok(()) => lines.push(b'\n'),
                Err(_) => lines.truncate(start),
            }
            waiting.extend(e.written);
            count += 1;
            if count < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if rotates && size > 0 && size + lines.len() as u64 > rotation.max_bytes {
            // A failed rotation keeps appending to the current file rather than losing lines.
            if rotate(path, rotation.keep).is_ok()
                && let Ok(f) = open_log(path)
            {
                file = f;
                size = 0;
            }
        }
        // A pipe or `/dev/null` cannot be synced (EINVAL): the write itself is what counts.
        let written = file
            .write_all(&lines)
            .and_then(|()| match file.sync_data() {
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
                other => other,
            });
        let ok = match written {
            Ok(()) => true,
            Err(e) => {
                // The server keeps answering refusals; an operator must see records being lost.
                tracing::error!(error = %e, records = count, "cannot write the audit log");
                false
            }
        };
        if ok {
            size += lines.len() as u64;
        }
        for w in waiting.drain(..) {
            let _ = w.send(ok);
        }
        std::thread::sleep(GATHER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopened(content: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, content).unwrap();
        drop(AuditLog::open(&path).unwrap());
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn opening_drops_a_torn_last_line_and_keeps_whole_ones() {
        assert_eq!(
            reopened(b"{\"a\":1}\n{\"b\":2}\n{\"c\""),
            b"{\"a\":1}\n{\"b\":2}\n"
        );
        assert_eq!(reopened(b"{\"a\":1}\n"), b"{\"a\":1}\n");
        assert_eq!(reopened(b"no newline at all"), b"");
        assert_eq!(reopened(b""), b"");
        let mut long = b"{\"a\":1}\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 10_000));
        assert_eq!(reopened(&long), b"{\"a\":1}\n");
    }

    #[test]
    fn records_arrive_as_whole_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..1000u64 {
            log.record(AuditRecord {
                time: 1,
                repo: "lab/m".into(),
                revision: "r".into(),
                path: format!("f{i}"),
                destination: None,
                decision: "deny",
                reasons: vec![ReasonCode::TimeExpired],
                status: 451,
                bytes: i,
                token: None,
            })
            .unwrap();
        }
        drop(log);
        // The writer drains the channel, then exits; wait for all lines.
        for _ in 0..500 {
            if std::fs::read_to_string(&path).unwrap().lines().count() == 1000 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let bytes: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["bytes"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(bytes, (0..1000).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::*;

    fn record(path: String) -> AuditRecord {
        AuditRecord {
            time: 1,
            repo: "lab/m".into(),
            revision: "r".into(),
            path,
            destination: Some("\u{e9}".repeat(1000)),
            decision: "invalid",
            reasons: vec![],
            status: 400,
            bytes: 0,
            token: None,
        }
    }

    #[test]
    fn fields_are_bounded_and_the_log_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_rotating(
            &path,
            Rotation {
                max_bytes: 4096,
                keep: 2,
            },
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for _ in 0..40 {
            rt.block_on(log.record_durably(record("x".repeat(60_000))))
                .unwrap();
        }
        let mut total = 0;
        for name in ["audit.log", "audit.log.1", "audit.log.2"] {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            for line in text.lines() {
                assert!(
                    line.len() < 2 * MAX_FIELD + 3 * MAX_FIELD + 400,
                    "{}",
                    line.len()
                );
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(v["path"].as_str().unwrap().ends_with("bytes cut]"));
                total += 1;
            }
            assert!(text.len() <= 4096 + 2048, "{name}: {}", text.len());
        }
        assert!(!dir.path().join("audit.log.3").exists());
        assert!(
            total > 0 && total < 40,
            "old files beyond `keep` are removed"
        );
    }

    #[test]
    fn a_record_that_cannot_be_written_is_reported() {
        let log = AuditLog::open(Path::new("/dev/full")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(
            rt.block_on(log.record_durably(record("p".into()))),
            Err(AuditFailure::Write)
        );
    }
}
