//! What can go wrong in a store, by what a caller does about it: a server answers 503 for an
//! unavailable backend and 451 for a changed blob, an admission names the source file that
//! changed, a bad name is the requester's mistake.

use std::path::{Path, PathBuf};

use weightgate_attest::reading::CheckpointError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A repository id, ref name or store location that is not one.
    #[error("{0}")]
    BadName(String),
    /// A source file changed size, identity or bytes while it was being admitted.
    #[error("{}: the file changed while it was being admitted", path.display())]
    SourceChanged { path: PathBuf },
    /// A stored blob is no longer what a revision record says: never served, never reused.
    #[error(
        "{location}: {why}; the blob was altered after admission: remove it (and re-admit the \
         revisions that use it) before admitting anything that shares it"
    )]
    BlobChanged { location: String, why: String },
    /// Something a record names is not in the store.
    #[error("{location}: missing ({why})")]
    NotFound { location: String, why: &'static str },
    /// The backend did not answer as it should (unreachable, timed out, refused the
    /// credentials, an error status): `key` is the object or prefix asked for. A server
    /// answers it with 503, never with a decision.
    #[error("{key}: object storage: {message}")]
    Unavailable { key: String, message: String },
    /// A stored record or object that does not read as what it should be.
    #[error("{location}: {why}")]
    Corrupt { location: String, why: String },
    /// The store cannot be opened or used as asked (location, credentials, options).
    #[error("{0}")]
    Config(String),
    /// The ref a commit was judged against moved before it was published (another commit won
    /// the branch): nothing of this one became visible.
    #[error("{repo}@{ref_name} is now at {now}, not at {judged_against}: another commit won")]
    RefMoved {
        repo: String,
        ref_name: String,
        judged_against: String,
        now: String,
    },
    /// The checkpoint being admitted cannot be read as a checkpoint.
    #[error(transparent)]
    Source(#[from] CheckpointError),
    #[error(
        "{path}: SHA-256 while copying is {got}, attested {want}: the file changed after verification"
    )]
    CopyMismatch {
        path: String,
        got: String,
        want: String,
    },
}

impl StoreError {
    pub(crate) fn source_changed(path: &Path) -> Self {
        StoreError::SourceChanged {
            path: path.to_path_buf(),
        }
    }

    /// True when something a record names is not in the store (removed behind the gate's back,
    /// or by a collection): the store is incomplete, nothing was altered.
    pub fn is_missing(&self) -> bool {
        match self {
            StoreError::NotFound { .. } => true,
            StoreError::Io { error, .. } => error.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// True for a backend that could not be asked: try again later, nothing was decided.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

impl From<super::InvalidName> for StoreError {
    fn from(e: super::InvalidName) -> Self {
        StoreError::BadName(e.0)
    }
}

/// `map_err` adapter: an I/O error on `path`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.to_path_buf(),
        error,
    }
}
