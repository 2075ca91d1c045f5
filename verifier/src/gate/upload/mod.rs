//! Uploads: the bytes a client sends before the commit that names them. This module is the
//! seam every way of receiving bytes feeds (the LFS PUT, a Xet file reconstructed from its
//! chunks, the small files of a commit) and the one a commit resolves its files through.
//!
//! Contract of the pending area:
//! - **Per namespace.** An object is received into the pending area of one namespace (the
//!   `ORG` of the repository it is uploaded for, which the token must be allowed to write).
//!   [`Uploads::has_object`] answers only for that namespace: for objects it has pending, and
//!   for blobs that the current revisions of its own repositories name. Whether another
//!   namespace holds some bytes is never revealed (no cross-tenant oracle), so the same bytes
//!   uploaded by two namespaces are received twice, and each proves it has them.
//! - **Hashed while received.** [`Uploads::put_object`] writes the body through the store's
//!   write side ([`Store::put_pending`]), hashing SHA-256 and BLAKE3 from the buffers it
//!   writes; the bytes are never read back to hash. The object is kept only if it is exactly
//!   the declared size and SHA-256; otherwise, or if the body fails or stalls past the idle
//!   timeout, nothing of it remains.
//! - **Invisible until a commit is admitted.** A pending object is served by no route. A
//!   commit adopts the pending objects its `lfsFile` lines name into its admission
//!   ([`crate::gate::store::Staging::adopt_pending`]): admitted, they become blobs; refused,
//!   they are released. Either way they are no longer pending. A commit refused before it
//!   takes them in (its attestation does not authenticate, say), one that lost its branch to
//!   another gate or one that met a storage error leaves them pending for a corrected retry;
//!   they still count against the cap and expire.
//! - **Bounded.** A file's size, and the bytes a namespace holds pending, are capped
//!   ([`UploadLimits`]); pending objects older than the pending lifetime count as absent and
//!   are removed by `store gc`. What a refused commit released but the store could not remove
//!   at once (a bucket's blobs, which another namespace's upload may share) still counts
//!   against the cap until `store gc` removes it, so refused pushes cannot fill the store
//!   between collections. The namespace's Xet xorbs and shards that no admitted revision
//!   needs count against the same cap ([`crate::gate::xet::staging`]).

pub mod commit_request;
pub mod routes;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use crate::gate::store::{
    AdmittedFile, ByteStream, ExpectedObject, PendingError, PendingObject, RevisionRecord, Store,
    StoreError, is_sha256_hex,
};
use crate::gate::xet::staging::{ShardMemory, held_bytes};

/// Caps on what uploads may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest file accepted.
    pub max_file_size: u64,
    /// Most files one commit may add, change or delete.
    pub max_commit_files: usize,
    /// Most bytes one namespace may hold that no admitted revision uses: received files not
    /// yet committed, and Xet objects ([`Uploads::staged_bytes`]).
    pub max_namespace_pending: u64,
    /// How long a received object waits for a commit.
    pub pending_lifetime: Duration,
    /// How long a receipt may wait for its next bytes.
    pub idle_timeout: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_file_size: 64 << 30,
            max_commit_files: 10_000,
            max_namespace_pending: 512 << 30,
            pending_lifetime: Duration::from_secs(24 * 3600),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why an upload was refused; nothing of it was kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Object(#[from] PendingError),
    #[error(
        "namespace {namespace} already holds {held} bytes of uploads no admitted revision uses \
         (received files, Xet xorbs and shards); {size} more would pass its staging cap of \
         {cap} bytes (`weightgate serve --max-staging-mib`): commit them, or wait until they \
         expire and `store gc` removes them"
    )]
    NamespaceFull {
        namespace: String,
        held: u64,
        size: u64,
        cap: u64,
    },
    #[error("`{0}` is not a SHA-256 (64 lowercase hex digits)")]
    BadOid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UploadError {
    /// The HTTP status that tells the uploader what to do.
    pub fn status(&self) -> StatusCode {
        match self {
            UploadError::Object(PendingError::OverFileCap { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::Object(PendingError::Idle(_)) => StatusCode::REQUEST_TIMEOUT,
            UploadError::Object(PendingError::Store(e)) | UploadError::Store(e) => store_status(e),
            UploadError::Object(_) | UploadError::BadOid(_) => StatusCode::BAD_REQUEST,
            UploadError::NamespaceFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

/// 503 for a backend that could not be asked, 400 for a bad name, 500 otherwise.
pub(crate) fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::BadName(_) => StatusCode::BAD_REQUEST,
        StoreError::Io { error, .. } if error.raw_os_error() == Some(libc::ENOSPC) => {
            StatusCode::INSUFFICIENT_STORAGE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a client is told of a store error met while the gate tried to do `failed` ("write
/// the revision's record"): the status ([`store_status`]) and a message naming the operation
/// and the kind of fault, never a path or key (they would show the host's layout or another
/// tenant's objects). The error itself goes to the gate's log under an id the message gives.
/// An unreachable backend (503) and a full disk (507) keep their short answers.
pub(crate) fn store_failure(e: &StoreError, failed: &str) -> (StatusCode, String) {
    let status = store_status(e);
    let message = match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            "the object storage did not answer; try again later".to_string()
        }
        StatusCode::INSUFFICIENT_STORAGE => "the store is full; try again later".to_string(),
        StatusCode::BAD_REQUEST => e.to_string(),
        _ => {
            let (fault, at) = match e {
                StoreError::Io { error, path } => (
                    error.kind().to_string(),
                    stored_part(&path.to_string_lossy()),
                ),
                StoreError::NotFound { location, .. } => ("missing".into(), stored_part(location)),
                StoreError::Corrupt { location, .. } => {
                    ("does not read as it should".into(), stored_part(location))
                }
                StoreError::BlobChanged { .. } => ("changed after admission".into(), "a blob"),
                StoreError::Config(_) => ("not set up for it".into(), "the store"),
                _ => ("an internal error".into(), "the store"),
            };
            let mut id = [0u8; 8];
            // Without randomness the id is zeros: the log still has the error, by time.
            let _ = getrandom::fill(&mut id);
            let id = hex::encode(id);
            tracing::error!(error_id = %id, failed, error = %e, "store error");
            return (
                status,
                format!(
                    "the store could not {failed} ({at}: {fault}); the gate's log has the \
                     details under error id {id}"
                ),
            );
        }
    };
    tracing::error!(failed, error = %e, "store error");
    (status, message)
}

/// Which part of the store a path or key is in, by the store's layout (docs/gate.md): the
/// kind of thing, never its name.
fn stored_part(location: &str) -> &'static str {
    const PARTS: [(&str, &str); 13] = [
        ("refs", "a ref"),
        ("revisions", "a revision record"),
        ("blobs", "a blob"),
        ("attestations", "an attestation"),
        ("grants", "a grant"),
        ("signatures", "a signature file"),
        ("uploads", "the upload area"),
        ("pending", "the upload area"),
        ("xet", "the Xet objects"),
        ("tmp", "the staging area"),
        ("tokens", "the write tokens"),
        ("upload-tickets", "the upload tickets"),
        ("xet-tokens", "the Xet access tokens"),
    ];
    // The innermost match names the kind: `repos/ORG/NAME/refs/main` is a ref.
    location
        .rsplit('/')
        .find_map(|dir| PARTS.iter().find(|(d, _)| *d == dir).map(|(_, what)| *what))
        .unwrap_or("the store")
}

/// Where the bytes of a committed file come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectSource {
    /// Received for this namespace and not yet committed.
    Pending(PendingObject),
    /// A blob a current revision of this namespace's repositories names (this record entry).
    Held(AdmittedFile),
    /// A small file whose bytes came in the commit itself.
    Inline(Vec<u8>),
}

impl ObjectSource {
    /// The file's size.
    pub fn size(&self) -> u64 {
        match self {
            ObjectSource::Pending(o) => o.size,
            ObjectSource::Held(f) => f.size,
            ObjectSource::Inline(b) => b.len() as u64,
        }
    }
}

/// The blobs a namespace's current revisions name, by SHA-256.
#[derive(Debug, Default)]
pub struct Holdings(HashMap<String, AdmittedFile>);

impl Holdings {
    pub fn get(&self, sha256: &str, size: u64) -> Option<&AdmittedFile> {
        self.0.get(sha256).filter(|f| f.size == size)
    }
}

/// The upload side of one store.
#[derive(Debug, Clone)]
pub struct Uploads {
    store: Arc<dyn Store>,
    limits: UploadLimits,
    shards: Arc<ShardMemory>,
}

impl Uploads {
    pub fn new(store: Arc<dyn Store>, limits: UploadLimits) -> Self {
        Uploads {
            store,
            limits,
            shards: Arc::default(),
        }
    }

    /// Bytes `namespace` holds against its staging cap: its pending area (received, being
    /// received, and a bucket's refused commits' blobs not yet collected) and its Xet objects
    /// no admitted revision needs ([`crate::gate::xet::staging`]).
    pub async fn staged_bytes(&self, namespace: &str) -> Result<u64, UploadError> {
        let holdings = self.holdings(namespace).await?;
        self.staged_bytes_beside(namespace, &holdings).await
    }

    async fn staged_bytes_beside(
        &self,
        namespace: &str,
        holdings: &Holdings,
    ) -> Result<u64, UploadError> {
        let pending = self.store.pending_bytes(namespace).await?;
        let admitted = holdings.0.keys().cloned().collect();
        let xet = held_bytes(self.store.as_ref(), &self.shards, namespace, &admitted).await?;
        Ok(pending.saturating_add(xet))
    }

    /// `Err(NamespaceFull)` if `size` more bytes would take `namespace` past its staging cap.
    /// Checked before each receipt, not reserved: receipts of one namespace running at once
    /// can pass it by what they hold between them, as they can across gates over one store.
    pub async fn check_room(&self, namespace: &str, size: u64) -> Result<(), UploadError> {
        let held = self.staged_bytes(namespace).await?;
        self.fits(namespace, held, size)
    }

    /// For a push of files of `sizes` (its preupload, before any byte): `Err(NamespaceFull)`
    /// if those `namespace` does not visibly hold (no admitted or pending file of the same
    /// size) cannot fit under its cap. That is the least the push needs (a Xet push also needs
    /// room for its xorbs), so only a push that cannot succeed is refused, with the cap named
    /// where the client shows it: `hf_xet` shows a CAS refusal only as its status.
    pub async fn check_room_for_push(
        &self,
        namespace: &str,
        sizes: impl IntoIterator<Item = u64>,
    ) -> Result<(), UploadError> {
        let holdings = self.holdings(namespace).await?;
        let mut held_sizes: std::collections::HashSet<u64> =
            holdings.0.values().map(|f| f.size).collect();
        held_sizes.extend(self.store.pending_sizes(namespace).await?);
        let needed = sizes
            .into_iter()
            .filter(|s| !held_sizes.contains(s))
            .fold(0u64, u64::saturating_add);
        if needed == 0 {
            return Ok(());
        }
        let held = self.staged_bytes_beside(namespace, &holdings).await?;
        self.fits(namespace, held, needed)
    }

    fn fits(&self, namespace: &str, held: u64, size: u64) -> Result<(), UploadError> {
        if held.saturating_add(size) > self.limits.max_namespace_pending {
            return Err(UploadError::NamespaceFull {
                namespace: namespace.to_string(),
                held,
                size,
                cap: self.limits.max_namespace_pending,
            });
        }
        Ok(())
    }

    pub fn limits(&self) -> &UploadLimits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Receives `body` as the object `expected_sha256` of `expected_size` bytes for
    /// `namespace` (see the module's contract).
    pub async fn put_object(
        &self,
        namespace: &str,
        expected_sha256: [u8; 32],
        expected_size: u64,
        body: ByteStream<'_>,
        now: i64,
    ) -> Result<PendingObject, UploadError> {
        if expected_size > self.limits.max_file_size {
            return Err(PendingError::OverFileCap {
                declared: expected_size,
                cap: self.limits.max_file_size,
            }
            .into());
        }
        self.check_room(namespace, expected_size).await?;
        let expected = ExpectedObject {
            sha256: expected_sha256,
            size: expected_size,
            max_size: self.limits.max_file_size,
            idle_timeout: self.limits.idle_timeout,
        };
        Ok(self
            .store
            .put_pending(namespace, &expected, body, now)
            .await?)
    }

    /// The pending object `sha256` of `namespace`, unless it expired.
    pub async fn pending(
        &self,
        namespace: &str,
        sha256: &str,
        now: i64,
    ) -> Result<Option<PendingObject>, UploadError> {
        if !is_sha256_hex(sha256) {
            return Err(UploadError::BadOid(sha256.to_string()));
        }
        let lifetime = self.limits.pending_lifetime.as_secs() as i64;
        Ok(self
            .store
            .pending_object(namespace, sha256)
            .await?
            .filter(|o| o.received_at.saturating_add(lifetime) > now))
    }

    /// The blobs the current revisions of `namespace`'s repositories name.
    pub async fn holdings(&self, namespace: &str) -> Result<Holdings, UploadError> {
        let mut held = HashMap::new();
        for repo in self.store.repos_in(namespace).await? {
            for r in current_records(self.store.as_ref(), &repo).await? {
                for f in r.files {
                    held.entry(f.sha256.clone()).or_insert(f);
                }
            }
        }
        Ok(Holdings(held))
    }

    /// True if `namespace` holds the object `sha256` of `size` bytes, pending or in a current
    /// revision of its repositories; never for bytes only another namespace holds.
    pub async fn has_object(
        &self,
        namespace: &str,
        sha256: &str,
        size: u64,
        holdings: &Holdings,
        now: i64,
    ) -> Result<bool, UploadError> {
        Ok(self
            .resolve(namespace, sha256, size, holdings, now)
            .await?
            .is_some())
    }

    /// Where the bytes of the object `sha256` of `size` bytes come from for a commit in
    /// `namespace`, if it holds them.
    pub async fn resolve(
        &self,
        namespace: &str,
        sha256: &str,
        size: u64,
        holdings: &Holdings,
        now: i64,
    ) -> Result<Option<ObjectSource>, UploadError> {
        if let Some(f) = holdings.get(sha256, size) {
            return Ok(Some(ObjectSource::Held(f.clone())));
        }
        Ok(self
            .pending(namespace, sha256, now)
            .await?
            .filter(|o| o.size == size)
            .map(ObjectSource::Pending))
    }
}

/// The records every ref of `repo` points at now.
pub(crate) async fn current_records(
    store: &dyn Store,
    repo: &str,
) -> Result<Vec<RevisionRecord>, StoreError> {
    let mut records: Vec<RevisionRecord> = Vec::new();
    for (_, revision) in store.refs(repo).await? {
        if records.iter().any(|r| r.revision == revision) {
            continue;
        }
        if let Some(r) = store.manifest(repo, &revision).await? {
            records.push(r);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests;
