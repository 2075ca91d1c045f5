//! The admitted store: content-addressed blobs that were verified while being written, and
//! per-repository records of what was admitted. Serving reads only from here, so the bytes
//! served are the bytes verified.
//!
//! A store is anything that implements [`Store`]: the read side the gate serves from (resolve a
//! ref, the record, attestation and grants, a blob's state, a blob opened as a [`ByteSource`])
//! and the write side admission publishes through ([`Store::begin`] gives a [`Staging`]: put
//! while hashing, then commit or abort). Two implementations, one layout: a local folder
//! ([`FolderStore`]) and, with the `bucket` feature, an S3-compatible bucket (`BucketStore`,
//! `s3://BUCKET/PREFIX`). [`open`] is the one place that picks between them; a new backend
//! is a new file implementing both traits.

mod direct_file;
mod error;
pub mod folder;
mod folder_pending;
mod folder_staging;
mod folder_xet;
pub mod gc;
mod names;
mod received;
mod record;
pub mod xet_gc;

#[cfg(feature = "bucket")]
pub mod bucket;
#[cfg(feature = "bucket")]
mod bucket_download;
#[cfg(feature = "bucket")]
mod bucket_pending;
#[cfg(feature = "bucket")]
mod bucket_staging;
#[cfg(feature = "bucket")]
mod bucket_xet;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weightgate_attest::hashing::Progress;
use weightgate_attest::reading::FileIdentity;

pub use direct_file::AlignedBuf;
pub use error::StoreError;
pub(crate) use error::io_at;
pub use folder::FolderStore;
pub use gc::GcReport;
pub use names::{InvalidName, check_ref, check_repo_id};
pub(crate) use names::{is_revision_id, is_sha256_hex, is_short_revision_id};
pub use record::{AdmittedFile, BlobIdentity, RevisionRecord, SignatureFile};

#[cfg(feature = "bucket")]
pub use bucket::BucketStore;

/// Largest revision record read (a record lists every file with two digests: ~300 bytes each,
/// so this is well over 10,000 files).
pub const MAX_RECORD_LEN: u64 = 16 << 20;
/// Largest ref read (a 40-hex revision id and a newline).
pub const MAX_REF_LEN: u64 = 256;

/// How allowed downloads leave the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownloadMode {
    /// The gate sends the bytes itself (default).
    #[default]
    Through,
    /// The gate answers 302 to a presigned URL of the object valid for `expiry`, as the Hub
    /// does (stores whose objects have URLs of their own).
    Redirect { expiry: Duration },
}

/// How to open a store, beside its location.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub downloads: DownloadMode,
}

/// Opens `location`: `s3://BUCKET[/PREFIX]` for a bucket (endpoint, region and credentials from
/// the standard `AWS_*` environment variables; the bucket must exist), anything without a
/// scheme for a local folder (created if missing).
pub async fn open(location: &str, options: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if location.starts_with("s3://") {
        #[cfg(feature = "bucket")]
        return Ok(Arc::new(BucketStore::open(location, options).await?));
        #[cfg(not(feature = "bucket"))]
        return Err(StoreError::Config(format!(
            "{location}: this build has no object-storage support (the `bucket` feature)"
        )));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        return Err(StoreError::Config(format!(
            "store `{location}`: unsupported scheme `{scheme}://`; give a folder path or \
             s3://BUCKET/PREFIX"
        )));
    }
    if location.is_empty() {
        return Err(StoreError::Config(
            "the store location is empty; give a folder path or s3://BUCKET/PREFIX".into(),
        ));
    }
    if options.downloads != DownloadMode::Through {
        return Err(StoreError::Config(format!(
            "{location}: downloads by redirect need a bucket store (s3://BUCKET/PREFIX); a \
             folder store serves its files itself"
        )));
    }
    Ok(Arc::new(FolderStore::open(std::path::Path::new(location))?))
}

/// A stored blob as it is now, for comparison with what a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobState {
    pub size: u64,
    pub identity: BlobIdentity,
    /// Something wrong with it whatever the record says (not a regular file, writable).
    pub defect: Option<&'static str>,
}

/// Something a revision serves: an attested file's blob or a signature file.
#[derive(Debug, Clone, Copy)]
pub enum StoredObject<'a> {
    Blob(&'a AdmittedFile),
    Signature(&'a SignatureFile),
}

impl StoredObject<'_> {
    pub fn sha256(&self) -> &str {
        match self {
            StoredObject::Blob(f) => &f.sha256,
            StoredObject::Signature(s) => &s.sha256,
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            StoredObject::Blob(f) => f.size,
            StoredObject::Signature(s) => s.size,
        }
    }
}

/// The bytes of a download, after the decision, as the store can best provide them.
pub enum ByteSource {
    /// A local file: the listener sends the asked range from it (with `sendfile` where it can).
    File(std::fs::File),
    /// Exactly the asked bytes, streamed (an empty body for `HEAD`).
    Stream(axum::body::Body),
    /// Exactly the asked bytes, still in the socket of the storage's response (spliced to the
    /// client on a zero-copy connection).
    Socket(super::upstream_body::UpstreamBody),
    /// The client fetches the bytes itself from this URL.
    Redirect(String),
}

/// Why a stored object is not served.
#[derive(Debug)]
pub enum OpenRefusal {
    /// It is no longer the one admitted: refused, never served.
    Changed(String),
    /// The store could not be asked.
    Unavailable(StoreError),
}

/// The range of a download: `len` bytes from `start`; `head` when no body is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
    pub head: bool,
}

/// The admitted store. Read methods are async so a remote backend never blocks the runtime;
/// the write side runs its CPU-bound copying through [`crate::gate::blocking`].
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the store is, for messages: the folder path or the `s3://` URL.
    fn location(&self) -> String;

    /// Resolves a ref name or a revision id to an admitted record; `Ok(None)` if unknown.
    /// Shortened ids are the gate's to resolve, from [`Store::revision_ids`].
    async fn manifest(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<Option<RevisionRecord>, StoreError>;

    /// The ref names of `repo` with the revision each points at, sorted by name.
    async fn refs(&self, repo: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// The ids of every admitted revision of `repo`, sorted (one listing of the store).
    async fn revision_ids(&self, repo: &str) -> Result<Vec<String>, StoreError>;

    /// True if any revision of `repo` was admitted.
    async fn has_repo(&self, repo: &str) -> Result<bool, StoreError>;

    /// Every repository with an admitted revision (`ORG/NAME`), sorted.
    async fn repos(&self) -> Result<Vec<String>, StoreError>;

    /// The envelope a revision was admitted with (capped at the envelope limit).
    async fn attestation(&self, m: &RevisionRecord) -> Result<Vec<u8>, StoreError>;

    /// The grants a revision was admitted with (each capped at the grant limit).
    async fn grants(&self, m: &RevisionRecord) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The blob named `sha256` as it is now; `Ok(None)` if there is none.
    async fn blob_state(&self, sha256: &str) -> Result<Option<BlobState>, StoreError>;

    /// `len` bytes of the blob `sha256` from `start` (a safetensors header), read whole.
    async fn read_blob(&self, sha256: &str, start: u64, len: u64) -> Result<Vec<u8>, StoreError>;

    /// Both digests (SHA-256, BLAKE3) of the stored blob `sha256` read back in full, and its
    /// state, unchanged while it was read; for a blob whose record cannot prove it unchanged.
    async fn rehash_blob(
        &self,
        sha256: &str,
        progress: Progress<'_>,
    ) -> Result<(Hashes, BlobState), StoreError>;

    /// A served object's bytes, checked against its record by the backend where it can.
    async fn open(
        &self,
        object: StoredObject<'_>,
        range: ByteRange,
    ) -> Result<ByteSource, OpenRefusal>;

    /// Starts writing an admission: nothing it stages is visible until [`Staging::commit`].
    async fn begin(&self, now: i64) -> Result<Box<dyn Staging + '_>, StoreError>;

    /// Receives an uploaded object into `namespace`'s pending area, hashing (SHA-256, BLAKE3)
    /// the bytes as they arrive and are written; kept only if they are `expected`. The
    /// contract is in [`crate::gate::upload`].
    async fn put_pending(
        &self,
        namespace: &str,
        expected: &ExpectedObject,
        body: ByteStream<'_>,
        now: i64,
    ) -> Result<PendingObject, PendingError> {
        let _ = (expected, body, now);
        Err(PendingError::Store(uploads_unsupported(self, namespace)))
    }

    /// The pending object `sha256` of `namespace`, if one was received and not yet adopted or
    /// expired.
    async fn pending_object(
        &self,
        namespace: &str,
        sha256: &str,
    ) -> Result<Option<PendingObject>, StoreError> {
        let _ = sha256;
        Err(uploads_unsupported(self, namespace))
    }

    /// Bytes held in `namespace`'s pending area (received and being received).
    async fn pending_bytes(&self, namespace: &str) -> Result<u64, StoreError> {
        Err(uploads_unsupported(self, namespace))
    }

    /// The size of each object pending in `namespace` (received whole, not yet adopted).
    async fn pending_sizes(&self, namespace: &str) -> Result<Vec<u64>, StoreError> {
        Err(uploads_unsupported(self, namespace))
    }

    /// The repository ids under `namespace` (`ORG`) that have any ref.
    async fn repos_in(&self, namespace: &str) -> Result<Vec<String>, StoreError>;

    /// The small record `id` of `kind` (at most [`MAX_META_LEN`] bytes); `Ok(None)` if absent.
    /// Kept in the store so every gate over it sees the same ones.
    async fn meta(&self, kind: MetaKind, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes the record `id` of `kind`, replacing it.
    async fn put_meta(&self, kind: MetaKind, id: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// Removes the record `id` of `kind`; `Ok(false)` if there was none.
    async fn remove_meta(&self, kind: MetaKind, id: &str) -> Result<bool, StoreError>;

    /// The ids of every record of `kind`.
    async fn meta_ids(&self, kind: MetaKind) -> Result<Vec<String>, StoreError>;

    /// Removes what no revision record names once older than `grace`, and what killed
    /// admissions left behind.
    async fn gc(&self, grace: Duration) -> Result<GcReport, StoreError>;

    /// The audit log's place when none is given: beside a local store, none for a remote one.
    fn default_audit_log(&self) -> Option<PathBuf>;

    /// Where a policy shared by every gate over this store lives, for stores that several
    /// gates share (`None`: this store is local to one machine).
    fn shared_policy_location(&self) -> Option<String>;

    /// The shared policy's bytes if it exists (see [`Store::shared_policy_location`]).
    async fn shared_policy(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps a checked Xet object of `namespace` under its hash (64 hex digits, Xet string
    /// form); `Ok(false)` if one was already there (it is kept: same hash, same checked bytes),
    /// and then its age is refreshed: the caller relies on it now, so `store gc` keeps it for
    /// another grace period ([`xet_gc`]).
    async fn put_xet_object(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let _ = (kind, hash, bytes);
        Err(xet_unsupported(&self.location(), namespace))
    }

    /// The Xet object `hash` of `namespace`, whole; `Ok(None)` if it has none of that hash.
    async fn xet_object(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (kind, hash);
        Err(xet_unsupported(&self.location(), namespace))
    }

    /// Reads the Xet object `hash` of `namespace` into `into`, replacing what it held;
    /// `Ok(false)` if it has none of that hash. For a buffer reused from object to object (a
    /// store whose objects are files reads them around the page cache).
    async fn read_xet_object(
        &self,
        namespace: &str,
        kind: XetObjectKind,
        hash: &str,
        into: &mut AlignedBuf,
    ) -> Result<bool, StoreError> {
        into.clear();
        let Some(bytes) = self.xet_object(namespace, kind, hash).await? else {
            return Ok(false);
        };
        into.extend_from_slice(&bytes);
        Ok(true)
    }

    /// Every Xet object `namespace` holds, with its size: what counts against its staging cap
    /// unless an admitted revision needs it ([`crate::gate::xet::staging`]).
    async fn xet_objects(&self, namespace: &str) -> Result<Vec<StoredXetObject>, StoreError> {
        // A store that keeps no Xet objects holds none.
        let _ = namespace;
        Ok(Vec::new())
    }

    /// Checks that a blob is still what was admitted: `Ok(Some(reason))` if it changed or is
    /// gone, `Err` if the storage could not be asked.
    async fn blob_problem(&self, f: &AdmittedFile) -> Result<Option<String>, StoreError> {
        if !is_sha256_hex(&f.sha256) {
            return Ok(blob_problem(f, None));
        }
        Ok(blob_problem(f, self.blob_state(&f.sha256).await?.as_ref()))
    }
}

/// What a Xet object is: a xorb (chunks) or a shard (files as terms over xorbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XetObjectKind {
    Xorb,
    /// The chunk index of a checked xorb (hash, length, offset of each chunk).
    XorbIndex,
    Shard,
}

impl XetObjectKind {
    pub const ALL: [XetObjectKind; 3] = [
        XetObjectKind::Xorb,
        XetObjectKind::XorbIndex,
        XetObjectKind::Shard,
    ];

    /// The kind stored in the folder (or key prefix) `dir`.
    pub fn of_dir(dir: &str) -> Option<XetObjectKind> {
        XetObjectKind::ALL.into_iter().find(|k| k.dir() == dir)
    }

    /// Its folder (or key prefix) under the namespace's `xet/` area.
    pub fn dir(self) -> &'static str {
        match self {
            XetObjectKind::Xorb => "xorbs",
            XetObjectKind::XorbIndex => "xorb-indexes",
            XetObjectKind::Shard => "shards",
        }
    }
}

/// A stored Xet object as [`Store::xet_objects`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredXetObject {
    /// Its kind and hash (64 hex digits); `None` for anything else in a kind's folder (a
    /// killed write's temporary file), which still takes space until `store gc` removes it.
    pub name: Option<(XetObjectKind, String)>,
    pub size: u64,
}

/// Largest small record ([`Store::meta`]).
pub const MAX_META_LEN: u64 = 64 << 10;

/// Kinds of small records the gate keeps in its store, each in its own folder or prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKind {
    /// Write tokens, by the SHA-256 of the token.
    Tokens,
    /// LFS upload tickets (the URL a client PUTs an object to), by the SHA-256 of the ticket.
    UploadTickets,
    /// Xet CAS access tokens, by the SHA-256 of the token.
    XetTokens,
}

impl MetaKind {
    pub fn dir(self) -> &'static str {
        match self {
            MetaKind::Tokens => "tokens",
            MetaKind::UploadTickets => "upload-tickets",
            MetaKind::XetTokens => "xet-tokens",
        }
    }

    /// Kinds whose records carry an `expires_at` (Unix seconds): `store gc` removes them once
    /// expired.
    pub const EXPIRING: [MetaKind; 2] = [MetaKind::UploadTickets, MetaKind::XetTokens];
}

/// The expiry every expiring record carries, whatever else it holds.
#[derive(serde::Deserialize)]
pub(crate) struct Expiring {
    pub expires_at: i64,
}

/// The `xet/<namespace>/<kind>/<hash>` name of a Xet object, once namespace and hash are
/// checked (a namespace is one `ORG` component; a hash is 64 lowercase hex digits).
pub(crate) fn xet_object_name(
    namespace: &str,
    kind: XetObjectKind,
    hash: &str,
) -> Result<String, StoreError> {
    check_repo_id(&format!("{namespace}/x")).map_err(|e| StoreError::BadName(e.to_string()))?;
    if !is_sha256_hex(hash) {
        return Err(StoreError::BadName(format!(
            "Xet object name `{hash}` is not 64 lowercase hex digits"
        )));
    }
    Ok(format!("xet/{namespace}/{}/{hash}", kind.dir()))
}

fn xet_unsupported(location: &str, namespace: &str) -> StoreError {
    StoreError::Config(format!(
        "{location}: this store keeps no Xet objects (namespace {namespace})"
    ))
}

/// Record ids are SHA-256 hex: nothing else becomes a path or key.
pub(crate) fn check_meta_id(id: &str) -> Result<(), StoreError> {
    if is_sha256_hex(id) {
        Ok(())
    } else {
        Err(StoreError::BadName(format!(
            "`{id}` is not a record id (64 hex digits)"
        )))
    }
}

fn uploads_unsupported(store: &(impl Store + ?Sized), namespace: &str) -> StoreError {
    StoreError::Config(format!(
        "{}: this store does not receive uploads (namespace {namespace})",
        store.location()
    ))
}

/// The bytes of an upload as they arrive; an `Err` is the connection failing.
pub type ByteStream<'a> = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Send + 'a>,
>;

/// What an uploader said an object is: received bytes of another size or digest are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedObject {
    pub sha256: [u8; 32],
    pub size: u64,
    /// Refuse the object if it is larger than this (a file-size cap).
    pub max_size: u64,
    /// Abandon the receipt when no byte arrives for this long.
    pub idle_timeout: Duration,
}

/// An object received whole and checked, waiting in its namespace's pending area for a commit
/// to name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingObject {
    /// Lowercase hex, as blobs are named.
    pub sha256: String,
    pub blake3: String,
    pub size: u64,
    /// Bytes a safetensors header takes at its start (the 8-byte length and the JSON it
    /// declares), 0 if its first bytes do not declare one that fits.
    pub header_len: u64,
    /// When it was received (seconds since the epoch); expires after the pending lifetime.
    pub received_at: i64,
}

impl PendingObject {
    pub fn hashes(&self) -> Option<Hashes> {
        let decode = |h: &str| <[u8; 32]>::try_from(hex::decode(h).ok()?).ok();
        Some(Hashes {
            sha256: decode(&self.sha256)?,
            blake3: decode(&self.blake3)?,
        })
    }
}

/// Why a received object was not kept. Nothing of it stays in the store.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    #[error("the object is {got} bytes or more, declared {declared}")]
    TooLong { declared: u64, got: u64 },
    #[error("the object ended after {got} bytes, declared {declared}")]
    TooShort { declared: u64, got: u64 },
    #[error("the object is declared {declared} bytes, over the {cap}-byte cap on a file")]
    OverFileCap { declared: u64, cap: u64 },
    #[error("the received bytes have SHA-256 {got}, declared {declared}")]
    DigestMismatch { declared: String, got: String },
    #[error("no bytes arrived for {0:?}: the upload was abandoned")]
    Idle(Duration),
    #[error("the upload connection failed: {0}")]
    Connection(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the blob of `f`, found as `now`, is no longer what was admitted; `None` if it still is.
pub fn blob_problem(f: &AdmittedFile, now: Option<&BlobState>) -> Option<String> {
    let blob = format!("blob {} for {}", f.sha256, f.path);
    if !is_sha256_hex(&f.sha256) {
        return Some(format!("{blob}: the record names no SHA-256"));
    }
    match now {
        None => Some(format!("{blob} is missing")),
        Some(BlobState {
            defect: Some(defect),
            ..
        }) => Some(format!("{blob} {defect}")),
        Some(now) if now.size != f.size => {
            Some(format!("{blob} is {} bytes, admitted {}", now.size, f.size))
        }
        Some(now) => f
            .blob
            .change(&now.identity)
            .map(|why| format!("{blob} {why}")),
    }
}

/// SHA-256 and BLAKE3 of one file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashes {
    pub sha256: [u8; 32],
    pub blake3: [u8; 32],
}

/// A local file to stage: read once, hashed while written.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its attested path (the staged name; for errors).
    pub path: String,
    pub fs_path: PathBuf,
    /// The attested SHA-256: where a store that writes in place puts the bytes (they are
    /// hashed anyway, and bytes of another digest are refused before anything is published).
    pub sha256: [u8; 32],
    /// The attested size: a source of another size is refused.
    pub size: u64,
    /// The file found when the checkpoint was read: a different one at that path is refused.
    pub identity: Option<FileIdentity>,
    /// How many of its first bytes to hand back (its safetensors header), from what was staged.
    pub head_len: usize,
}

/// A staged file: its digests and its first bytes, both of the bytes stored.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub hashes: Hashes,
    pub head: Vec<u8>,
}

/// What the ref must point at for a publication to move it: a commit judged against the
/// branch's head wins only if no other commit moved the branch meanwhile, in this gate or in
/// another over the same store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefPrecondition {
    /// Whatever it points at (`weightgate admit`: the operator's word is final).
    Any,
    /// The ref must not exist yet.
    Absent,
    /// The ref must still point at this revision id.
    At(String),
}

/// `Err(RefMoved)` unless the ref `repo@ref_name`, found at `now`, is as `expected`.
pub(crate) fn ref_as_expected(
    repo: &str,
    ref_name: &str,
    expected: &RefPrecondition,
    now: Option<&str>,
) -> Result<(), StoreError> {
    let holds = match (expected, now) {
        (RefPrecondition::Any, _) | (RefPrecondition::Absent, None) => true,
        (RefPrecondition::At(want), Some(now)) => want == now,
        _ => false,
    };
    if holds {
        return Ok(());
    }
    Err(StoreError::RefMoved {
        repo: repo.to_string(),
        ref_name: ref_name.to_string(),
        judged_against: match expected {
            RefPrecondition::At(r) => r.clone(),
            _ => "no commit".into(),
        },
        now: now.unwrap_or("no commit").to_string(),
    })
}

/// A judged admission to make visible.
pub struct Publication<'a> {
    pub repo: &'a str,
    pub ref_name: &'a str,
    /// Refused with [`StoreError::RefMoved`], nothing published, unless the ref is as this says.
    pub ref_was: RefPrecondition,
    /// The 40-hex revision id.
    pub revision: String,
    pub now: i64,
    pub envelope: &'a [u8],
    pub grants: &'a [Vec<u8>],
    pub model_sig: Option<&'a [u8]>,
    pub header_parameters: u64,
    pub files: Vec<PublishedFile>,
}

impl Publication<'_> {
    /// A publication of one file, `model.bin`, staged under `staged_path` (tests).
    #[cfg(test)]
    pub(crate) fn one_staged_file<'a>(
        repo: &'a str,
        ref_was: RefPrecondition,
        size: u64,
        hashes: Hashes,
        staged_path: &str,
    ) -> Publication<'a> {
        Publication {
            repo,
            ref_name: "main",
            ref_was,
            revision: "3".repeat(40),
            now: 1,
            envelope: b"{}",
            grants: &[],
            model_sig: None,
            header_parameters: 0,
            files: vec![PublishedFile {
                path: "model.bin".into(),
                size,
                hashes,
                blob: BlobSource::Staged {
                    staged_path: staged_path.to_string(),
                },
            }],
        }
    }

    /// The signature files served with the revision (`weightgate.att`, and `model.sig` when one
    /// was checked), each with its bytes.
    pub(crate) fn signature_files(&self) -> Vec<(SignatureFile, &[u8])> {
        use sha2::Digest as _;
        use weightgate_schemas::file_names::{ATTESTATION_FILE_NAME, OMS_SIGNATURE_FILE_NAME};
        [
            (ATTESTATION_FILE_NAME, Some(self.envelope)),
            (OMS_SIGNATURE_FILE_NAME, self.model_sig),
        ]
        .into_iter()
        .filter_map(|(path, bytes)| {
            let bytes = bytes?;
            let file = SignatureFile {
                path: path.to_string(),
                size: bytes.len() as u64,
                sha256: hex::encode(sha2::Sha256::digest(bytes)),
            };
            Some((file, bytes))
        })
        .collect()
    }

    /// The revision record of this publication, once its blobs (`files`), envelope
    /// (`attestation`), grants and signature files are stored.
    pub(crate) fn record(
        &self,
        files: Vec<AdmittedFile>,
        attestation: String,
        grants: Vec<String>,
        signature_files: Vec<SignatureFile>,
    ) -> RevisionRecord {
        RevisionRecord {
            repo: self.repo.to_string(),
            revision: self.revision.clone(),
            admitted_at: self.now,
            attestation,
            grants,
            header_parameters: self.header_parameters,
            model_sig: self.model_sig.is_some(),
            signature_files,
            files,
        }
    }
}

/// One attested file of a publication.
pub struct PublishedFile {
    pub path: String,
    pub size: u64,
    pub hashes: Hashes,
    /// Whether the blob was staged by this admission or is reused.
    pub blob: BlobSource,
}

/// Where a published file's blob comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// Staged by this admission from the file of this attested path.
    Staged { staged_path: String },
    /// Already stored, and as it was when this admission found it (its identity then); the
    /// commit refuses it if it changed since.
    Stored(BlobIdentity),
}

/// An admission being written. Dropping it without [`Staging::commit`] must leave nothing a
/// reader can reach; [`Staging::abort`] also cleans up at once.
#[async_trait::async_trait]
pub trait Staging: Send {
    /// Copies `files` into the staging area, reading each once and hashing the bytes written.
    async fn put_files(
        &mut self,
        files: &[SourceFile],
        progress: Progress<'_>,
    ) -> Result<Vec<StagedFile>, StoreError>;

    /// Makes the admission visible: blobs, then envelope, grants and signature files, then the
    /// revision record, and the ref last.
    async fn commit(
        self: Box<Self>,
        publication: Publication<'_>,
    ) -> Result<RevisionRecord, StoreError>;

    /// Takes the pending object `object` of `namespace` into this admission under
    /// `staged_path`, as if [`Staging::put_files`] had written it (its bytes were hashed when
    /// received; they are not read again, except its first `head_len`). A commit publishes
    /// it; an abort releases it, and it is no longer pending either way. A commit that loses
    /// its branch to another ([`StoreError::RefMoved`]) or fails in the store leaves it
    /// pending, so the client's retry finds it (a folder store: unless the failure came after
    /// its bytes were placed as a blob, which `store gc` then collects).
    async fn adopt_pending(
        &mut self,
        namespace: &str,
        object: &PendingObject,
        staged_path: &str,
        head_len: usize,
    ) -> Result<StagedFile, StoreError> {
        let _ = (object, staged_path, head_len);
        Err(StoreError::Config(format!(
            "this store does not receive uploads (namespace {namespace})"
        )))
    }

    /// Stages `bytes` (a small file that came whole in a request) under `staged_path`, hashing
    /// them as they are written.
    async fn put_bytes(&mut self, staged_path: &str, bytes: &[u8]) -> Result<Hashes, StoreError>;

    /// Discards everything staged.
    async fn abort(self: Box<Self>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_locations_are_checked() {
        for bad in ["", "ftp://x/y", "gs://bucket"] {
            let e = open(bad, StoreOptions::default())
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("folder path or s3://"), "{bad}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let redirect = StoreOptions {
            downloads: DownloadMode::Redirect {
                expiry: Duration::from_secs(60),
            },
        };
        let e = open(dir.path().to_str().unwrap(), redirect)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("need a bucket store"), "{e}");
    }
}
