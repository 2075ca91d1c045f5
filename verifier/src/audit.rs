//! The audit log: one JSON line per decision, appended by one writer thread and fsync'd in
//! small batches. Each line is a single `write(2)` on an `O_APPEND` file, so a crash (even
//! `kill -9`) leaves only whole lines.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};

use serde::Serialize;

/// One decision.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub time: i64,
    pub repo: String,
    pub revision: String,
    pub path: String,
    pub destination: Option<String>,
    pub decision: &'static str,
    pub reasons: Vec<&'static str>,
    pub status: u16,
    pub bytes: u64,
}

/// Where records go; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: Sender<AuditRecord>,
}

/// Lines written before an fsync at the latest.
const BATCH: usize = 64;

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
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

fn writer(mut file: std::fs::File, rx: Receiver<AuditRecord>) {
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        while pending.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => pending.push(r),
                Err(_) => break,
            }
        }
        for r in pending {
            if let Ok(mut line) = serde_json::to_vec(&r) {
                line.push(b'\n');
                let _ = file.write_all(&line);
            }
        }
        let _ = file.sync_data();
    }
}
