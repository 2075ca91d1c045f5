//! The audit log: one JSON line per decision, appended by one writer thread and fsync'd in
//! small batches. A batch of whole lines goes out in one `write(2)` on an `O_APPEND` file; a
//! write cut short by `kill -9` or a power loss can leave a torn last line, so opening the log
//! first truncates it back to its last newline: the log holds only whole lines.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};

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
}

/// Where records go; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: Sender<AuditRecord>,
}

/// Lines written before an fsync at the latest.
const BATCH: usize = 512;
/// Pause after each fsync so that, under load, one wake-up writes many lines; it bounds how
/// long a decision waits to reach the disk.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        drop_torn_tail(&file)?;
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || writer(file, rx))?;
        Ok(AuditLog { tx })
    }

    pub fn record(&self, r: AuditRecord) {
        // The writer only stops when every sender is gone.
        let _ = self.tx.send(r);
    }
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

fn writer(mut file: File, rx: Receiver<AuditRecord>) {
    let mut lines = Vec::with_capacity(BATCH * 200);
    while let Ok(first) = rx.recv() {
        lines.clear();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(r) = next.take() {
            let start = lines.len();
            match serde_json::to_writer(&mut lines, &r) {
                Ok(()) => lines.push(b'\n'),
                Err(_) => lines.truncate(start),
            }
            count += 1;
            if count < BATCH {
                next = rx.try_recv().ok();
            }
        }
        // The server keeps answering; an operator must see that records are being lost.
        if let Err(e) = file.write_all(&lines).and_then(|()| file.sync_data()) {
            tracing::error!(error = %e, records = count, "cannot write the audit log");
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
            });
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
