//! The admitted store: content-addressed blobs that were verified while being copied in, and
//! per-repository manifests of what was admitted. Serving reads only from here, so the bytes
//! served are the bytes verified.
//!
//! Two backends with one layout: a local folder ([`FolderStore`], the default) and, with the
//! `bucket` feature, an S3-compatible bucket ([`BucketStore`], `s3://BUCKET/PREFIX`). The
//! server reads through [`Store`], whose read methods are async so a bucket never blocks the
//! runtime; the folder answers them synchronously as it always did.

pub mod folder;
pub mod gc;

#[cfg(feature = "bucket")]
pub mod bucket;

use serde::{Deserialize, Serialize};

#[cfg(feature = "bucket")]
pub use bucket::BucketStore;
pub use folder::FolderStore;

/// Largest revision record read (a record lists every file with two digests: ~250 bytes each,
/// so this is well over 10,000 files).
pub const MAX_RECORD_LEN: u64 = 16 << 20;
/// Largest ref read (a 40-hex revision id and a newline).
pub const MAX_REF_LEN: u64 = 256;

/// What was admitted for one revision of a repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevisionRecord {
    pub repo: String,
    pub revision: String,
    pub admitted_at: i64,
    /// SHA-256 of the whole envelope (file name under `attestations/`): two tenants admitting
    /// the same payload with different signatures each keep their own envelope. (Stores
    /// written before named it by the payload digest; those names still resolve.)
    pub attestation: String,
    pub grants: Vec<String>,
    pub header_parameters: u64,
    /// Whether a `model.sig` was checked at admission (records written before this field
    /// existed read as `false`, so a policy requiring one refuses them: fail closed).
    #[serde(default)]
    pub model_sig: bool,
    /// The attestation and the checked `model.sig`, served as files of the revision so a
    /// download carries what it was admitted with. Outside the attested file set by definition.
    #[serde(default)]
    pub signature_files: Vec<SignatureFile>,
    pub files: Vec<AdmittedFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdmittedFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
    /// The blob's modification time when admitted, to notice changes behind the store's back
    /// (folder store; 0 in a bucket, where the ETag below does that job).
    pub blob_mtime: i64,
    pub blob_mtime_nsec: i64,
    /// The object's ETag when admitted (bucket store): an object replaced behind the gate's
    /// back gets a new one. Absent in folder records, which stay byte-identical to before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_etag: Option<String>,
}

/// A signature file served beside the weights (`weightgate.att`, `model.sig`), stored under
/// `signatures/<sha256>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {error}", path.display())]
    Io {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{path}: SHA-256 while copying is {got}, attested {want}: the file changed after verification"
    )]
    CopyMismatch {
        path: String,
        got: String,
        want: String,
    },
    /// The object storage did not answer as it should (unreachable, timed out, refused the
    /// credentials, an error status): `key` is the object or prefix asked for. A server
    /// answers it with 503, never with a decision.
    #[error("{key}: object storage: {message}")]
    Storage { key: String, message: String },
}

impl StoreError {
    /// A source file that changed size, identity or bytes while it was being admitted.
    pub(crate) fn source_changed(path: &std::path::Path) -> Self {
        StoreError::Invalid(format!(
            "{}: the file changed while it was being admitted",
            path.display()
        ))
    }
}

/// `map_err` adapter: an I/O error on `path`.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// A repository id or ref name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

/// `org/name` as the Hub spells repository ids: two components of `[A-Za-z0-9._-]`, not
/// starting with `.` or `-`, at most 96 characters each.
pub fn check_repo_id(repo: &str) -> Result<(), InvalidName> {
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 {
        return Err(InvalidName(format!("repository `{repo}` must be ORG/NAME")));
    }
    for p in parts {
        if p.is_empty()
            || p.len() > 96
            || p.starts_with(['.', '-'])
            || p.contains("..")
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(InvalidName(format!(
                "repository `{repo}`: `{p}` is not a valid name ([A-Za-z0-9._-], max 96)"
            )));
        }
    }
    Ok(())
}

/// A ref name (`main`, `v1.0`): one component of `[A-Za-z0-9._-]`.
pub fn check_ref(name: &str) -> Result<(), InvalidName> {
    if name.is_empty()
        || name.len() > 128
        || name.starts_with(['.', '-'])
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(InvalidName(format!(
            "revision `{name}` is not a valid ref name ([A-Za-z0-9._-])"
        )));
    }
    Ok(())
}

pub(crate) fn is_revision_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 7 or more lowercase hex digits: a commit id shortened as git shortens them.
pub(crate) fn is_short_revision_id(s: &str) -> bool {
    s.len() >= 7
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The admitted store, whichever backend holds it.
#[derive(Debug, Clone)]
pub enum Store {
    Folder(FolderStore),
    #[cfg(feature = "bucket")]
    Bucket(BucketStore),
}

impl From<FolderStore> for Store {
    fn from(f: FolderStore) -> Self {
        Store::Folder(f)
    }
}

#[cfg(feature = "bucket")]
impl From<BucketStore> for Store {
    fn from(b: BucketStore) -> Self {
        Store::Bucket(b)
    }
}

impl Store {
    /// Opens `location`: `s3://BUCKET[/PREFIX]` for a bucket (endpoint, region and credentials
    /// from the standard `AWS_*` environment variables; the bucket must exist), anything
    /// without a scheme for a local folder (created if missing).
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        if location.starts_with("s3://") {
            #[cfg(feature = "bucket")]
            return Ok(Store::Bucket(BucketStore::open(location).await?));
            #[cfg(not(feature = "bucket"))]
            return Err(StoreError::Invalid(format!(
                "{location}: this build has no object-storage support (the `bucket` feature)"
            )));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(StoreError::Invalid(format!(
                "store `{location}`: unsupported scheme `{scheme}://`; give a folder path or \
                 s3://BUCKET/PREFIX"
            )));
        }
        if location.is_empty() {
            return Err(StoreError::Invalid(
                "the store location is empty; give a folder path or s3://BUCKET/PREFIX".into(),
            ));
        }
        Ok(Store::Folder(FolderStore::open(std::path::Path::new(
            location,
        ))?))
    }

    /// Where the store is, for messages: the folder path or the `s3://` URL.
    pub fn location(&self) -> String {
        match self {
            Store::Folder(f) => f.root.display().to_string(),
            #[cfg(feature = "bucket")]
            Store::Bucket(b) => b.url(),
        }
    }

    /// Resolves a ref name, a revision id or a unique prefix of one (7 or more lowercase hex
    /// digits; a ref of that name wins) to an admitted record; `Ok(None)` if unknown.
    pub async fn manifest(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        match self {
            Store::Folder(f) => f.manifest(repo, revision),
            #[cfg(feature = "bucket")]
            Store::Bucket(b) => b.manifest(repo, revision).await,
        }
    }

    /// The ref names of `repo` with the revision each points at, sorted by name.
    pub async fn refs(&self, repo: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Folder(f) => f.refs(repo),
            #[cfg(feature = "bucket")]
            Store::Bucket(b) => b.refs(repo).await,
        }
    }

    /// True if any revision of `repo` was admitted.
    pub async fn has_repo(&self, repo: &str) -> Result<bool, StoreError> {
        match self {
            Store::Folder(f) => Ok(f.has_repo(repo)),
            #[cfg(feature = "bucket")]
            Store::Bucket(b) => b.has_repo(repo).await,
        }
    }

    /// The envelope a revision was admitted with (capped at the envelope limit).
    pub async fn attestation(&self, m: &RevisionRecord) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Folder(f) => f.attestation(m),
            #[cfg(feature = "bucket")]
            Store::Bucket(b) => b.attestation(m).await,
        }
    }

    /// The grants a revision was admitted with (each capped at the grant limit).
    pub async fn grants(&self, m: &RevisionRecord) -> Result<Vec<Vec<u8>>, StoreError> {
        match self {
            Store::Folder(f) => f.grants(m),
            #[cfg(feature = "bucket")]
            Store::Bucket(b) => b.grants(m).await,
        }
    }

    /// Checks that a blob is still what was admitted: `Ok(Some(reason))` if it changed or is
    /// gone, `Err` if the storage could not be asked (a bucket unreachable).
    pub async fn blob_problem(&self, f: &AdmittedFile) -> Result<Option<String>, StoreError> {
        match self {
            Store::Folder(s) => Ok(s.blob_problem(f)),
            #[cfg(feature = "bucket")]
            Store::Bucket(b) => b.blob_problem(f).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_and_refs_are_validated() {
        for good in ["lab/tiny", "Org-1/model.v2_x"] {
            check_repo_id(good).unwrap();
        }
        for bad in [
            "lab",
            "lab/tiny/x",
            "../x",
            "lab/..",
            "lab/.hidden",
            "lab/a b",
            "lab/%2e",
            "/x",
            "lab/",
        ] {
            assert!(check_repo_id(bad).is_err(), "{bad}");
        }
        check_ref("main").unwrap();
        for bad in ["", "..", "refs/pr/1", ".x", "a b", "a\\b"] {
            assert!(check_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn folder_records_are_unchanged_by_the_etag_field() {
        let f = AdmittedFile {
            path: "a".into(),
            size: 1,
            sha256: "00".into(),
            blake3: "11".into(),
            blob_mtime: 2,
            blob_mtime_nsec: 3,
            object_etag: None,
        };
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("object_etag"), "{json}");
        assert_eq!(serde_json::from_str::<AdmittedFile>(&json).unwrap(), f);
    }

    #[tokio::test]
    async fn store_locations_are_checked() {
        for bad in ["", "ftp://x/y", "gs://bucket"] {
            let e = Store::open(bad).await.unwrap_err().to_string();
            assert!(e.contains("folder path or s3://"), "{bad}: {e}");
        }
    }
}
