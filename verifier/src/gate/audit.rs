//! The audit log: one JSON line per decision, appended by one writer thread and fsync'd in
//! small batches. A batch of whole lines goes out in one `write(2)` on an `O_APPEND` file; a
//! write cut short by `kill -9` or a power loss can leave a torn last line, so opening the log
//! first truncates it back to its last newline: the log holds only whole lines.
//!
//! What it promises: a download is served only after its record is on disk; every other
//! record (refusals, invalid and unknown requests) is either written, or, when the writer is
//! behind, counted, and the exact count per repository, decision, status and reasons is
//! written into the log as a `dropped` line within about a second and when the log is
//! drained at shutdown. After [`AuditLog::drain`] nothing more is recorded or counted: the
//! caller answers 503 instead of deciding.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, RwLock};

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
    tx: SyncSender<Message>,
    dropped: Arc<Dropped>,
}

enum Message {
    Record(Entry),
    /// Write everything queued before it and the dropped counts, then stop recording.
    Drain(tokio::sync::oneshot::Sender<DrainReport>),
}

struct Entry {
    record: AuditRecord,
    /// Told whether the record reached the file (written and fsync'd).
    written: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// Records not queued, counted until the writer writes the counts.
#[derive(Default)]
struct Dropped {
    counts: Mutex<BTreeMap<DropKey, u64>>,
    /// Set once drained: nothing more is recorded or counted. Recorders hold it for reading
    /// while they queue or count, so once the writer has set it, nothing arrives unseen.
    closed: RwLock<bool>,
}

impl Dropped {
    fn count(&self, key: DropKey) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let key = if counts.len() >= MAX_DROP_KEYS && !counts.contains_key(&key) {
            DropKey {
                repo: "*".into(),
                ..key
            }
        } else {
            key
        };
        *counts.entry(key).or_default() += 1;
    }
}

impl DropKey {
    fn of(r: &AuditRecord) -> Self {
        DropKey {
            repo: r.repo.clone(),
            decision: r.decision,
            status: r.status,
            reasons: r.reasons.clone(),
        }
    }
}

/// What a `dropped` line counts. Repositories come from requests: past [`MAX_DROP_KEYS`]
/// distinct keys, the rest are counted under the repository `*`, so the total stays exact and
/// the memory bounded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DropKey {
    repo: String,
    decision: &'static str,
    status: u16,
    reasons: Vec<ReasonCode>,
}

const MAX_DROP_KEYS: usize = 1024;

/// One `dropped` line of the log.
#[derive(Serialize)]
struct DroppedLine<'a> {
    time: i64,
    dropped: u64,
    repo: &'a str,
    decision: &'static str,
    status: u16,
    reasons: &'a [ReasonCode],
}

/// What [`AuditLog::drain`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Records written since the log was opened.
    pub written: u64,
    /// Records dropped (and counted in the log) since the log was opened.
    pub dropped: u64,
}

/// Why a record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFailure {
    /// The writer is behind by [`QUEUE`] records (a slow or stuck disk).
    Full,
    /// Writing or syncing the log failed (a full disk, `/dev/full`, an I/O error).
    Write,
    /// The log was drained for shutdown: nothing is recorded any more.
    Closed,
}

impl std::fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuditFailure::Full => "the audit writer is behind (disk too slow)",
            AuditFailure::Write => "the audit log cannot be written",
            AuditFailure::Closed => "the audit log is closed (shutting down)",
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
/// How long dropped counts may wait before they are written.
const DROPPED_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
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
        let dropped = Arc::new(Dropped::default());
        let counts = dropped.clone();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || writer(file, &path, rotation, rx, &counts))?;
        Ok(AuditLog { tx, dropped })
    }

    /// Queues a record without waiting for it. `Err(Full)` when the writer is behind: the
    /// record is then counted, and the count written to the log (the caller may say so in the
    /// operational log too). `Err(Closed)` after [`AuditLog::drain`]: neither written nor
    /// counted, so the caller must not act on the decision (answer 503).
    pub fn record(&self, record: AuditRecord) -> Result<(), AuditFailure> {
        let closed = self
            .dropped
            .closed
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if *closed {
            return Err(AuditFailure::Closed);
        }
        let record = bounded_record(record);
        let key = DropKey::of(&record);
        match self.tx.try_send(Message::Record(Entry {
            record,
            written: None,
        })) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.dropped.count(key);
                Err(AuditFailure::Full)
            }
        }
    }

    /// Writes a record and waits until it is on disk: what is served must be recorded first.
    pub async fn record_durably(&self, record: AuditRecord) -> Result<(), AuditFailure> {
        let (done, written) = tokio::sync::oneshot::channel();
        {
            let closed = self
                .dropped
                .closed
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if *closed {
                return Err(AuditFailure::Closed);
            }
            self.tx
                .try_send(Message::Record(Entry {
                    record: bounded_record(record),
                    written: Some(done),
                }))
                .map_err(|_| AuditFailure::Full)?;
        }
        match written.await {
            Ok(true) => Ok(()),
            _ => Err(AuditFailure::Write),
        }
    }

    /// For shutdown: writes every queued record and the dropped counts, syncs, and stops
    /// recording (later records are refused with [`AuditFailure::Closed`]). Waits for the
    /// writer, however far behind it is.
    pub async fn drain(&self) -> DrainReport {
        let (done, report) = tokio::sync::oneshot::channel();
        let tx = self.tx.clone();
        // The queue may be full: wait for room off the async threads.
        let sent = tokio::task::spawn_blocking(move || tx.send(Message::Drain(done)).is_ok())
            .await
            .unwrap_or(false);
        if !sent {
            return DrainReport::default();
        }
        report.await.unwrap_or_default()
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

/// The log file, its rotation and what was written to it.
struct LogFile<'a> {
    file: File,
    path: &'a Path,
    rotation: Rotation,
    /// Only regular files are rotated (not `/dev/full` or a pipe).
    rotates: bool,
    size: u64,
}

impl LogFile<'_> {
    /// Appends whole lines and syncs them; false (and an operational log line) on failure.
    fn append(&mut self, lines: &[u8], records: usize) -> bool {
        if self.rotates && self.size > 0 && self.size + lines.len() as u64 > self.rotation.max_bytes
        {
            // A failed rotation keeps appending to the current file rather than losing lines.
            if rotate(self.path, self.rotation.keep).is_ok()
                && let Ok(f) = open_log(self.path)
            {
                self.file = f;
                self.size = 0;
            }
        }
        // A pipe or `/dev/null` cannot be synced (EINVAL): the write itself is what counts.
        let written = self
            .file
            .write_all(lines)
            .and_then(|()| match self.file.sync_data() {
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
                other => other,
            });
        match written {
            Ok(()) => {
                self.size += lines.len() as u64;
                true
            }
            Err(e) => {
                // The server keeps answering refusals; an operator must see records being lost.
                tracing::error!(error = %e, records, "cannot write the audit log");
                false
            }
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Writes the counts of dropped records as `dropped` lines (and says so in the operational
/// log). Returns how many records the lines count.
fn write_dropped(log: &mut LogFile, dropped: &Dropped) -> u64 {
    let counts = std::mem::take(&mut *dropped.counts.lock().unwrap_or_else(|e| e.into_inner()));
    if counts.is_empty() {
        return 0;
    }
    let time = now();
    let mut lines = Vec::new();
    let mut total = 0;
    for (key, &n) in &counts {
        total += n;
        let line = DroppedLine {
            time,
            dropped: n,
            repo: &key.repo,
            decision: key.decision,
            status: key.status,
            reasons: &key.reasons,
        };
        if serde_json::to_writer(&mut lines, &line).is_ok() {
            lines.push(b'\n');
        }
    }
    tracing::error!(
        lost = total,
        "AUDIT LOG FAILING: the audit writer is behind; records not written, counted in the log"
    );
    if !log.append(&lines, counts.len()) {
        // Not written: keep counting them, never lose a count.
        let mut now = dropped.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (k, n) in counts {
            *now.entry(k).or_default() += n;
        }
        return 0;
    }
    total
}

/// Serializes a batch of entries into `lines`, keeping who waits and what to count if the
/// write fails.
struct Batch {
    lines: Vec<u8>,
    waiting: Vec<tokio::sync::oneshot::Sender<bool>>,
    /// Records nobody waits for: counted as dropped if the write fails.
    unwaited: Vec<DropKey>,
    count: usize,
}

impl Batch {
    fn new() -> Self {
        Batch {
            lines: Vec::with_capacity(BATCH * 200),
            waiting: Vec::with_capacity(BATCH),
            unwaited: Vec::with_capacity(BATCH),
            count: 0,
        }
    }

    fn push(&mut self, e: Entry) {
        let start = self.lines.len();
        match serde_json::to_writer(&mut self.lines, &e.record) {
            Ok(()) => self.lines.push(b'\n'),
            Err(_) => self.lines.truncate(start),
        }
        match e.written {
            Some(w) => self.waiting.push(w),
            None => self.unwaited.push(DropKey::of(&e.record)),
        }
        self.count += 1;
    }

    /// Writes the batch; who waits is told, and records nobody waits for are counted as
    /// dropped if the write failed. Returns the records written.
    fn write(&mut self, log: &mut LogFile, dropped: &Dropped) -> u64 {
        let ok = self.count == 0 || log.append(&self.lines, self.count);
        for w in self.waiting.drain(..) {
            let _ = w.send(ok);
        }
        let written = if ok { self.count as u64 } else { 0 };
        for k in self.unwaited.drain(..) {
            if !ok {
                dropped.count(k);
            }
        }
        self.lines.clear();
        self.count = 0;
        written
    }
}

fn writer(file: File, path: &Path, rotation: Rotation, rx: Receiver<Message>, dropped: &Dropped) {
    let rotates = file.metadata().is_ok_and(|m| m.is_file());
    let size = file.metadata().map_or(0, |m| m.len());
    let mut log = LogFile {
        file,
        path,
        rotation,
        rotates,
        size,
    };
    let mut batch = Batch::new();
    let mut report = DrainReport::default();
    let mut counted_at = std::time::Instant::now();
    loop {
        let first = match rx.recv_timeout(DROPPED_EVERY) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                report.dropped += write_dropped(&mut log, dropped);
                counted_at = std::time::Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut next = Some(first);
        let mut drain = None;
        while let Some(m) = next.take() {
            match m {
                Message::Record(e) => batch.push(e),
                Message::Drain(done) => {
                    drain = Some(done);
                    break;
                }
            }
            if batch.count < BATCH {
                next = rx.try_recv().ok();
            }
        }
        report.written += batch.write(&mut log, dropped);
        if let Some(done) = drain {
            // Closed first: every recorder that got in before has queued or counted by now.
            *dropped.closed.write().unwrap_or_else(|e| e.into_inner()) = true;
            let mut later = Vec::new();
            while let Ok(m) = rx.try_recv() {
                match m {
                    Message::Record(e) => batch.push(e),
                    Message::Drain(d) => later.push(d),
                }
                if batch.count >= BATCH {
                    report.written += batch.write(&mut log, dropped);
                }
            }
            report.written += batch.write(&mut log, dropped);
            report.dropped += write_dropped(&mut log, dropped);
            for d in std::iter::once(done).chain(later) {
                let _ = d.send(report);
            }
            continue;
        }
        if counted_at.elapsed() >= DROPPED_EVERY {
            report.dropped += write_dropped(&mut log, dropped);
            counted_at = std::time::Instant::now();
        }
        std::thread::sleep(GATHER);
    }
    write_dropped(&mut log, dropped);
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
