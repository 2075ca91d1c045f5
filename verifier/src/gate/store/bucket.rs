//! The admitted store in an S3-compatible bucket (feature `bucket`), `s3://BUCKET/PREFIX`, with
//! the folder's layout under the prefix:
//!
//! ```text
//! PREFIX/blobs/<sha256>                          file contents
//! PREFIX/attestations/<sha256>.att               envelopes, named by the SHA-256 of their bytes
//! PREFIX/grants/<sha256>.grant                   countersigned references, likewise
//! PREFIX/signatures/<sha256>                     weightgate.att / model.sig served with a revision
//! PREFIX/repos/<org>/<name>/revisions/<id>.json  what was admitted (40-hex revision id)
//! PREFIX/repos/<org>/<name>/refs/<ref>           a revision id, e.g. refs/main
//! PREFIX/uploads/<id>.json                       multipart uploads in progress (for `store gc`)
//! PREFIX/pending/<org>/<sha256>.json             uploads received, not yet committed
//! PREFIX/pending/<org>/receiving/<id>.json       uploads being received
//! PREFIX/pending/<org>/refused/<sha256>.json     a refused commit's uploads, counted until gc
//! PREFIX/xet/<org>/{xorbs,xorb-indexes,shards}/  Xet objects uploaded to the CAS
//! PREFIX/xet/<org>/refreshed/<kind>/<hash>       when an upload last relied on a Xet object
//! PREFIX/{tokens,upload-tickets,xet-tokens}/     write tokens, LFS tickets, Xet tokens (hashed)
//! ```
//!
//! A single PUT is atomic and a multipart upload appears only when completed, so an object is
//! either absent or whole. Admission writes the revision record after everything it names and
//! the ref last: a revision is visible only once it is complete. A commit moves its branch with
//! a conditional PUT of the ref (`If-Match` on the ETag it read, `If-None-Match: *` for a new
//! branch), so of two gates racing on one branch exactly one wins (bucket_staging.rs).
//!
//! Endpoint, region and credentials come only from the standard `AWS_*` environment variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`); nothing secret is part of the URL.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt as _, RetryConfig};

use weightgate_attest::hashing::Progress;

use super::bucket_download::BucketDownloads;
use super::bucket_staging::BucketStaging;
use super::{
    BlobIdentity, BlobState, ByteRange, ByteSource, GcReport, Hashes, MAX_META_LEN, MAX_RECORD_LEN,
    MAX_REF_LEN, MetaKind, OpenRefusal, RevisionRecord, Staging, Store, StoreError, StoreOptions,
    StoredObject, check_meta_id, check_ref, check_repo_id, is_revision_id, is_sha256_hex,
};

/// A bucket store: the S3 client and where under the bucket the store lives.
#[derive(Debug, Clone)]
pub struct BucketStore {
    s3: Arc<AmazonS3>,
    bucket: String,
    /// Key prefix without a trailing `/`; empty for the bucket's root.
    prefix: String,
    /// The client for object bodies (set by [`BucketStore::open`]).
    downloads: Option<Arc<BucketDownloads>>,
}

/// Parses `s3://BUCKET[/PREFIX]`: a bucket name as S3 allows them (3 to 63 characters of
/// `[a-z0-9.-]`), and prefix components of `[A-Za-z0-9._-]` that are not `.` or `..`.
pub fn parse_url(url: &str) -> Result<(String, String), StoreError> {
    let bad = |why: &str| StoreError::BadName(format!("store URL `{url}`: {why}"));
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("expected s3://BUCKET/PREFIX"))?;
    if rest.contains(['?', '#', '@']) {
        return Err(bad(
            "no query, fragment or user part: credentials come from AWS_* environment variables",
        ));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.len() < 3
        || bucket.len() > 63
        || !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-".contains(&b))
        || bucket.starts_with(['.', '-'])
        || bucket.ends_with(['.', '-'])
    {
        return Err(bad(
            "the bucket name must be 3 to 63 characters of [a-z0-9.-], starting and ending with a letter or digit",
        ));
    }
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        for part in prefix.split('/') {
            if part.is_empty()
                || part == "."
                || part == ".."
                || part.len() > 255
                || !part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(bad(&format!(
                    "prefix component `{part}` is not [A-Za-z0-9._-] (and not `.` or `..`)"
                )));
            }
        }
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// Environment variables that carry credentials; at least a key pair must be set.
const CREDENTIAL_VARS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

impl BucketStore {
    /// Opens `s3://BUCKET/PREFIX` with the `AWS_*` environment, and checks that the bucket
    /// answers (it exists and the credentials may list it).
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let mut store = Self::connect(url)?;
        store.check_reachable().await?;
        store.downloads = Some(Arc::new(BucketDownloads::new(&store, options.downloads)?));
        Ok(store)
    }

    /// Builds the client without asking the bucket anything.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let (bucket, prefix) = parse_url(url)?;
        let missing: Vec<&str> = CREDENTIAL_VARS
            .iter()
            .copied()
            .filter(|v| std::env::var_os(v).is_none_or(|s| s.is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(StoreError::Config(format!(
                "{url}: no credentials: set {} (credentials come only from the AWS_* environment \
                 variables)",
                missing.join(" and ")
            )));
        }
        // Bounded: a store that does not answer fails a request in seconds (the server answers
        // 503), instead of object_store's default of retrying for three minutes.
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        };
        // Set as keys, not as a new ClientOptions, which would drop AWS_ALLOW_HTTP and the
        // other client settings from the environment.
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_retry(retry)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            )
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s")
            .build()
            .map_err(|e| StoreError::Config(format!("{url}: {e}")))?;
        Ok(BucketStore {
            s3: Arc::new(s3),
            bucket,
            prefix,
            downloads: None,
        })
    }

    /// Lists the prefix once: a missing bucket or refused credentials show here, by name,
    /// instead of as "nothing admitted" later.
    async fn check_reachable(&self) -> Result<(), StoreError> {
        let at = self.key("repos");
        match self.s3.list_with_delimiter(Some(&at)).await {
            Ok(_) => Ok(()),
            // S3 answers a missing bucket with 404 `NoSuchBucket`, which object_store reports
            // as NotFound or as a generic error carrying that code.
            Err(e)
                if matches!(e, object_store::Error::NotFound { .. })
                    || e.to_string().contains("NoSuchBucket") =>
            {
                Err(StoreError::Config(format!(
                    "{}: the bucket `{}` does not exist at {}",
                    self.url(),
                    self.bucket,
                    self.endpoint()
                )))
            }
            Err(e) => Err(StoreError::Unavailable {
                key: self.url(),
                message: e.to_string(),
            }),
        }
    }

    fn endpoint(&self) -> String {
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "AWS S3".into())
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn url(&self) -> String {
        match self.prefix.is_empty() {
            true => format!("s3://{}", self.bucket),
            false => format!("s3://{}/{}", self.bucket, self.prefix),
        }
    }

    /// The key prefix (no trailing `/`; empty for the bucket's root).
    pub fn prefix_str(&self) -> &str {
        &self.prefix
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client, to stream, sign or upload objects by their [`Key`].
    pub(super) fn client(&self) -> &Arc<AmazonS3> {
        &self.s3
    }

    /// The key of `rel` (a `/`-separated path of checked components) under the prefix.
    pub fn key(&self, rel: &str) -> Key {
        match self.prefix.is_empty() {
            true => Key::from(rel),
            false => Key::from(format!("{}/{rel}", self.prefix)),
        }
    }

    pub fn blob_key(&self, sha256: &str) -> Key {
        self.key(&format!("blobs/{sha256}"))
    }

    pub fn signature_key(&self, sha256: &str) -> Key {
        self.key(&format!("signatures/{sha256}"))
    }

    pub fn attestation_key(&self, sha256: &str) -> Key {
        self.key(&format!("attestations/{sha256}.att"))
    }

    pub fn grant_key(&self, sha256: &str) -> Key {
        self.key(&format!("grants/{sha256}.grant"))
    }

    pub fn revision_key(&self, repo: &str, revision: &str) -> Key {
        self.key(&format!("repos/{repo}/revisions/{revision}.json"))
    }

    pub fn ref_key(&self, repo: &str, ref_name: &str) -> Key {
        self.key(&format!("repos/{repo}/refs/{ref_name}"))
    }

    /// A storage error about `key`.
    pub(crate) fn storage(&self, key: &Key, e: object_store::Error) -> StoreError {
        StoreError::Unavailable {
            key: format!("s3://{}/{key}", self.bucket),
            message: e.to_string(),
        }
    }

    /// The whole object at `key` if it exists and holds at most `cap` bytes; `Ok(None)` if it
    /// does not exist. A larger object is an error naming it, read no further than the cap.
    pub async fn read_capped(&self, key: &Key, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let got = match self.s3.get(key).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.storage(key, e)),
        };
        let too_long = |size: u64| StoreError::Corrupt {
            location: format!("s3://{}/{key}", self.bucket),
            why: format!("{size} bytes, over the limit of {cap} for this kind of object"),
        };
        if got.meta.size > cap {
            return Err(too_long(got.meta.size));
        }
        let expected = got.meta.size;
        let mut stream = got.into_stream();
        let mut out = Vec::with_capacity(expected as usize);
        while let Some(chunk) = stream.try_next().await.map_err(|e| self.storage(key, e))? {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > cap {
                return Err(too_long(out.len() as u64));
            }
        }
        if out.len() as u64 != expected {
            return Err(StoreError::Unavailable {
                key: format!("s3://{}/{key}", self.bucket),
                message: format!("{} bytes read, the object is {expected}", out.len()),
            });
        }
        Ok(Some(out))
    }

    /// Like [`Self::read_capped`], but a missing object is an error naming it.
    async fn read_required(&self, key: &Key, cap: u64) -> Result<Vec<u8>, StoreError> {
        self.read_capped(key, cap)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                location: format!("s3://{}/{key}", self.bucket),
                why: "named by an admitted revision",
            })
    }

    /// Every object under `rel/` (recursively).
    pub(crate) async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let at = self.key(rel);
        self.s3
            .list(Some(&at))
            .try_collect()
            .await
            .map_err(|e| self.storage(&at, e))
    }

    /// The ref names of `repo` with the revision each points at, sorted by name.
    pub async fn refs(&self, repo: &str) -> Result<Vec<(String, String)>, StoreError> {
        check_repo_id(repo)?;
        let mut refs = Vec::new();
        for meta in self.list(&format!("repos/{repo}/refs")).await? {
            let Some(name) = meta.location.filename().map(str::to_string) else {
                continue;
            };
            if check_ref(&name).is_err() {
                continue;
            }
            let Some(text) = self.read_capped(&meta.location, MAX_REF_LEN).await? else {
                continue; // removed since listed
            };
            let text = String::from_utf8_lossy(&text);
            let id = text.trim();
            if is_revision_id(id) {
                refs.push((name, id.to_string()));
            }
        }
        refs.sort();
        Ok(refs)
    }

    /// The ids of every admitted revision of `repo`, sorted.
    pub async fn revision_ids(&self, repo: &str) -> Result<Vec<String>, StoreError> {
        check_repo_id(repo)?;
        let mut ids: Vec<String> = self
            .list(&format!("repos/{repo}/revisions"))
            .await?
            .into_iter()
            .filter_map(|meta| {
                let id = meta.location.filename()?.strip_suffix(".json")?;
                is_revision_id(id).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Resolves a ref name or a revision id to an admitted record.
    pub async fn manifest(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        check_repo_id(repo)?;
        let id = if is_revision_id(revision) {
            revision.to_string()
        } else {
            if check_ref(revision).is_err() {
                return Ok(None);
            }
            let ref_key = self.ref_key(repo, revision);
            match self.read_capped(&ref_key, MAX_REF_LEN).await? {
                Some(text) => String::from_utf8_lossy(&text).trim().to_string(),
                None => return Ok(None),
            }
        };
        if !is_revision_id(&id) {
            return Err(StoreError::Corrupt {
                location: format!("{repo}: ref `{revision}`"),
                why: format!("holds `{id}`, not a revision id"),
            });
        }
        let key = self.revision_key(repo, &id);
        let Some(bytes) = self.read_capped(&key, MAX_RECORD_LEN).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                location: format!("s3://{}/{key}", self.bucket),
                why: e.to_string(),
            })
    }

    /// True if any revision of `repo` was admitted.
    pub async fn has_repo(&self, repo: &str) -> Result<bool, StoreError> {
        if check_repo_id(repo).is_err() {
            return Ok(false);
        }
        let at = self.key(&format!("repos/{repo}/revisions"));
        let mut listing = self.s3.list(Some(&at));
        match listing.try_next().await {
            Ok(first) => Ok(first.is_some()),
            Err(e) => Err(self.storage(&at, e)),
        }
    }

    /// Every repository with an admitted revision, sorted: the folders two levels under
    /// `repos/` that hold a revision.
    pub async fn repos(&self) -> Result<Vec<String>, StoreError> {
        let root = self.key("repos");
        let folders = |at: Key| async move {
            self.s3
                .list_with_delimiter(Some(&at))
                .await
                .map(|l| l.common_prefixes)
                .map_err(|e| self.storage(&at, e))
        };
        let mut repos = Vec::new();
        for org in folders(root).await? {
            for name in folders(org.clone()).await? {
                let (Some(org), Some(name)) = (org.filename(), name.filename()) else {
                    continue;
                };
                let repo = format!("{org}/{name}");
                if self.has_repo(&repo).await? {
                    repos.push(repo);
                }
            }
        }
        repos.sort();
        Ok(repos)
    }

    pub async fn attestation(&self, m: &RevisionRecord) -> Result<Vec<u8>, StoreError> {
        let key = self.attestation_key(&m.attestation);
        self.read_required(&key, weightgate_schemas::MAX_ENVELOPE_LEN as u64)
            .await
    }

    pub async fn grants(&self, m: &RevisionRecord) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::with_capacity(m.grants.len());
        for g in &m.grants {
            let key = self.grant_key(g);
            out.push(
                self.read_required(&key, weightgate_schemas::MAX_GRANT_LEN as u64)
                    .await?,
            );
        }
        Ok(out)
    }

    /// The blob `sha256` as it is now (size, ETag); `None` if absent.
    pub async fn blob_state(&self, sha256: &str) -> Result<Option<BlobState>, StoreError> {
        let key = self.blob_key(sha256);
        match self.s3.head(&key).await {
            Ok(m) => Ok(Some(BlobState {
                size: m.size,
                identity: BlobIdentity::Object { etag: m.e_tag },
                defect: None,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage(&key, e)),
        }
    }
}

#[async_trait::async_trait]
impl Store for BucketStore {
    fn location(&self) -> String {
        self.url()
    }

    async fn manifest(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        BucketStore::manifest(self, repo, revision).await
    }

    async fn refs(&self, repo: &str) -> Result<Vec<(String, String)>, StoreError> {
        BucketStore::refs(self, repo).await
    }

    async fn revision_ids(&self, repo: &str) -> Result<Vec<String>, StoreError> {
        BucketStore::revision_ids(self, repo).await
    }

    async fn has_repo(&self, repo: &str) -> Result<bool, StoreError> {
        BucketStore::has_repo(self, repo).await
    }

    async fn repos(&self) -> Result<Vec<String>, StoreError> {
        BucketStore::repos(self).await
    }

    async fn attestation(&self, m: &RevisionRecord) -> Result<Vec<u8>, StoreError> {
        BucketStore::attestation(self, m).await
    }

    async fn grants(&self, m: &RevisionRecord) -> Result<Vec<Vec<u8>>, StoreError> {
        BucketStore::grants(self, m).await
    }

    async fn blob_state(&self, sha256: &str) -> Result<Option<BlobState>, StoreError> {
        BucketStore::blob_state(self, sha256).await
    }

    async fn read_blob(&self, sha256: &str, start: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let key = self.blob_key(sha256);
        let bytes = self
            .s3
            .get_range(&key, start..start + len)
            .await
            .map_err(|e| self.storage(&key, e))?;
        if bytes.len() as u64 != len {
            return Err(StoreError::Unavailable {
                key: format!("s3://{}/{key}", self.bucket),
                message: format!("{} bytes read of {len} asked", bytes.len()),
            });
        }
        Ok(bytes.to_vec())
    }

    async fn rehash_blob(
        &self,
        sha256: &str,
        progress: Progress<'_>,
    ) -> Result<(Hashes, BlobState), StoreError> {
        let key = self.blob_key(sha256);
        let got = self.s3.get(&key).await.map_err(|e| self.storage(&key, e))?;
        let state = BlobState {
            size: got.meta.size,
            identity: BlobIdentity::Object {
                etag: got.meta.e_tag.clone(),
            },
            defect: None,
        };
        let mut sha = <sha2::Sha256 as sha2::Digest>::new();
        let mut b3 = blake3::Hasher::new();
        let mut n = 0u64;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.try_next().await.map_err(|e| self.storage(&key, e))? {
            n += chunk.len() as u64;
            sha2::Digest::update(&mut sha, &chunk);
            b3.update(&chunk);
            progress(chunk.len() as u64);
        }
        if n != state.size {
            return Err(StoreError::Unavailable {
                key: format!("s3://{}/{key}", self.bucket),
                message: format!("{n} bytes read, the object is {}", state.size),
            });
        }
        let hashes = Hashes {
            sha256: sha2::Digest::finalize(sha).into(),
            blake3: b3.finalize().into(),
        };
        Ok((hashes, state))
    }

    async fn open(
        &self,
        object: StoredObject<'_>,
        range: ByteRange,
    ) -> Result<ByteSource, OpenRefusal> {
        let (key, etag) = match object {
            StoredObject::Blob(f) => (
                self.blob_key(&f.sha256),
                match &f.blob {
                    BlobIdentity::Object { etag } => etag.as_deref(),
                    BlobIdentity::File { .. } => None,
                },
            ),
            StoredObject::Signature(s) => (self.signature_key(&s.sha256), None),
        };
        let Some(downloads) = &self.downloads else {
            return Err(OpenRefusal::Unavailable(StoreError::Config(format!(
                "{}: opened without a client for downloads",
                self.url()
            ))));
        };
        downloads.open(&key, etag, object.size(), range).await
    }

    async fn begin(&self, now: i64) -> Result<Box<dyn Staging + '_>, StoreError> {
        Ok(Box::new(BucketStaging::new(self, now)))
    }

    async fn meta(&self, kind: MetaKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_meta_id(id)?;
        let key = self.key(&format!("{}/{id}.json", kind.dir()));
        self.read_capped(&key, MAX_META_LEN).await
    }

    async fn put_meta(&self, kind: MetaKind, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_meta_id(id)?;
        let key = self.key(&format!("{}/{id}.json", kind.dir()));
        self.s3
            .put(&key, object_store::PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| self.storage(&key, e))
    }

    async fn remove_meta(&self, kind: MetaKind, id: &str) -> Result<bool, StoreError> {
        check_meta_id(id)?;
        let key = self.key(&format!("{}/{id}.json", kind.dir()));
        let existed = self.read_capped(&key, MAX_META_LEN).await?.is_some();
        match self.s3.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(existed),
            Err(e) => Err(self.storage(&key, e)),
        }
    }

    async fn meta_ids(&self, kind: MetaKind) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self
            .list(kind.dir())
            .await?
            .into_iter()
            .filter_map(|m| {
                let id = m.location.filename()?.strip_suffix(".json")?.to_string();
                is_sha256_hex(&id).then_some(id)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn repos_in(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        check_repo_id(&format!("{namespace}/x"))?;
        let mut repos: Vec<String> = Vec::new();
        for meta in self.list(&format!("repos/{namespace}")).await? {
            // repos/ORG/NAME/refs/REF
            let parts: Vec<&str> = meta.location.as_ref().rsplit('/').take(4).collect();
            if let [_, "refs", name, org] = parts.as_slice()
                && *org == namespace
                && check_repo_id(&format!("{org}/{name}")).is_ok()
            {
                repos.push(format!("{org}/{name}"));
            }
        }
        repos.sort();
        repos.dedup();
        Ok(repos)
    }

    async fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        let mut report = BucketStore::gc(self, grace).await?;
        report.abandoned += super::gc::expire_records(self).await?;
        Ok(report)
    }

    fn default_audit_log(&self) -> Option<std::path::PathBuf> {
        None
    }

    fn shared_policy_location(&self) -> Option<String> {
        Some(format!("{}/{POLICY_OBJECT}", self.url()))
    }

    async fn shared_policy(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_capped(
            &self.key(POLICY_OBJECT),
            weightgate_attest::io::MAX_CONFIG_FILE_LEN,
        )
        .await
    }

    async fn put_pending(
        &self,
        namespace: &str,
        expected: &super::ExpectedObject,
        body: super::ByteStream<'_>,
        now: i64,
    ) -> Result<super::PendingObject, super::PendingError> {
        self.put_pending_now(namespace, expected, body, now).await
    }

    async fn pending_object(
        &self,
        namespace: &str,
        sha256: &str,
    ) -> Result<Option<super::PendingObject>, StoreError> {
        self.pending_object_now(namespace, sha256).await
    }

    async fn pending_bytes(&self, namespace: &str) -> Result<u64, StoreError> {
        self.pending_bytes_now(namespace).await
    }

    async fn pending_sizes(&self, namespace: &str) -> Result<Vec<u64>, StoreError> {
        self.pending_sizes_now(namespace).await
    }

    async fn put_xet_object(
        &self,
        namespace: &str,
        kind: super::XetObjectKind,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        self.put_xet_object_now(namespace, kind, hash, bytes).await
    }

    async fn xet_object(
        &self,
        namespace: &str,
        kind: super::XetObjectKind,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.xet_object_now(namespace, kind, hash).await
    }

    async fn xet_objects(
        &self,
        namespace: &str,
    ) -> Result<Vec<super::StoredXetObject>, StoreError> {
        self.xet_objects_now(namespace).await
    }
}

/// The object every gate over the bucket may poll for the policy, at the store's prefix.
const POLICY_OBJECT: &str = "policy.toml";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_parsed_strictly() {
        assert_eq!(
            parse_url("s3://models/gate/prod/").unwrap(),
            ("models".into(), "gate/prod".into())
        );
        assert_eq!(
            parse_url("s3://models").unwrap(),
            ("models".into(), "".into())
        );
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Models/x",
            "s3://models/../x",
            "s3://models/a//b",
            "s3://key:secret@models/x",
            "s3://models/x?region=eu",
            "s3://-models",
            "s3://models/a b",
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
