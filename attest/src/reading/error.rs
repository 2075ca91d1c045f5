//! Errors for reading and hashing checkpoints. Every variant names the file it is about.

use std::path::PathBuf;

/// What went wrong reading, checking or hashing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    // The I/O error is shown inline, not as a source, so it is not printed twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: unsafe path: {problem}")]
    UnsafePath { path: String, problem: String },
    #[error("{path}: symbolic link refused ({problem})")]
    Symlink { path: String, problem: String },
    #[error("{path}: not a regular file")]
    NotRegularFile { path: String },
    #[error("{path}: invalid safetensors header: {problem}")]
    Header { path: String, problem: String },
    #[error("{path}: invalid safetensors index: {problem}")]
    Index { path: String, problem: String },
    #[error("ignore path {path}: {problem}")]
    IgnorePath { path: String, problem: String },
    #[error(
        "{}: a Hugging Face cache repository folder, not a snapshot: pass one of its snapshots: {}",
        path.display(),
        if snapshots.is_empty() { "none cached".to_string() } else { snapshots.join(", ") }
    )]
    HfCacheRepository {
        path: PathBuf,
        snapshots: Vec<String>,
    },
    #[error("{}: empty checkpoint: no files to attest", path.display())]
    Empty { path: PathBuf },
    #[error(
        "{path}: file changed while it was being hashed ({what}); hash again when it is stable"
    )]
    ChangedWhileHashing { path: String, what: String },
    /// A fault of this program, not of its input (a worker thread panicked).
    #[error("internal error: {what} (a bug in weightgate; please report it)")]
    Internal { what: String },
}

impl CheckpointError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CheckpointError::Io {
            path: path.into(),
            error: source,
        }
    }
    pub(crate) fn header(path: &str, problem: impl Into<String>) -> Self {
        CheckpointError::Header {
            path: path.to_string(),
            problem: problem.into(),
        }
    }
    pub(crate) fn index(path: &str, problem: impl Into<String>) -> Self {
        CheckpointError::Index {
            path: path.to_string(),
            problem: problem.into(),
        }
    }
}
