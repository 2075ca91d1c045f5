//! The gate server: Hugging Face-compatible routes over the admitted store. Every request
//! re-evaluates the policy (time, revocation, destination) from the admitted facts, without
//! hashing; a refusal is HTTP 451 with `X-Error-Code: GatedRepo`, which `huggingface_hub`
//! raises as `GatedRepoError` with the reason.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower::ServiceExt;
use weightgate_attest::reading::check_relative_path;
use weightgate_schemas::country::{UNKNOWN_DESTINATION, normalise_destination};

use super::audit::{AuditLog, AuditRecord};
use super::blob_body::{ZeroCopy, ZeroCopyStream, blob_response};
use super::store::{RevisionRecord, Store, StoreError, check_repo_id};
use crate::decision::Decision;
use crate::policy::Context;
use crate::policy::{Policy, PolicyError};
use crate::reason::ReasonCode;
use crate::stages::{AdmittedFacts, SubjectSource};
use crate::verify::{VerifyError, VerifyRequest, verify};

/// Why a decision could not be made for an admitted revision (the store, not the request).
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The blocking task that decides did not finish (a panic, or the runtime shutting down).
    #[error("the decision task failed: {0}")]
    Task(String),
}

/// Shared server state.
pub struct Gate {
    pub store: Store,
    pub policy_path: PathBuf,
    pub policy: RwLock<Arc<Policy>>,
    pub audit: AuditLog,
    /// Decisions by (repo, revision, destination) for the current second and policy
    /// generation. Every time-dependent check works in whole seconds, so within one second the
    /// same inputs give the same decision; a reload starts a new generation at once. The repo
    /// is part of the key: one attestation admitted by two tenants carries each tenant's own
    /// grants, so it may be allowed for one and refused for the other.
    cache: Mutex<DecisionCache>,
    /// Decisions computed at once (each decodes and checks a whole attestation, off the async
    /// runtime): bounds CPU and memory when many distinct requests miss the cache.
    deciding: tokio::sync::Semaphore,
    /// Refusal records lost since the last report, and the second of that report.
    audit_lost: std::sync::atomic::AtomicU64,
    audit_lost_reported: std::sync::atomic::AtomicI64,
    /// How allowed downloads leave a bucket store (proxy by default; none for a folder).
    #[cfg(feature = "bucket")]
    bucket_downloads: Option<super::bucket_download::BucketDownloads>,
}

/// A decision with its refusal already rendered, so a cached refusal costs no serialization.
pub struct Verdict {
    pub decision: Decision,
    refusal: Option<RenderedRefusal>,
}

struct RenderedRefusal {
    message: Option<HeaderValue>,
    body: axum::body::Bytes,
}

impl Verdict {
    fn new(decision: Decision) -> Self {
        let refusal = (!decision.allowed).then(|| {
            let message = crate::render::refusal(&decision);
            RenderedRefusal {
                message: header_safe(&message),
                body: json!({ "error": message, "decision": decision })
                    .to_string()
                    .into(),
            }
        });
        Verdict { decision, refusal }
    }
}

/// (repo, revision, destination); the policy generation and the second are the cache's own.
type DecisionKey = (String, String, Option<String>);

#[derive(Default)]
struct DecisionCache {
    second: i64,
    generation: u64,
    decisions: HashMap<DecisionKey, Arc<Verdict>>,
    /// Manifests by (repo, revision as asked), same lifetime: a new admission shows within 1 s.
    manifests: HashMap<(String, String), Arc<RevisionRecord>>,
}

impl Gate {
    pub fn new(store: Store, policy_path: PathBuf, policy: Policy, audit: AuditLog) -> Self {
        Gate {
            policy_path,
            policy: RwLock::new(Arc::new(policy)),
            audit,
            cache: Mutex::new(DecisionCache::default()),
            deciding: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            audit_lost: Default::default(),
            audit_lost_reported: Default::default(),
            // Proxy unless told otherwise; the client reads the same AWS_* settings the store
            // was opened with, so it fails only where the store did not.
            #[cfg(feature = "bucket")]
            bucket_downloads: match &store {
                Store::Bucket(b) => super::bucket_download::BucketDownloads::new(
                    b,
                    super::bucket_download::DownloadMode::Proxy,
                )
                .ok(),
                Store::Folder(_) => None,
            },
            store,
        }
    }

    /// Sets how allowed downloads leave a bucket store; an error for a folder store, which
    /// serves its files itself.
    #[cfg(feature = "bucket")]
    pub fn with_download_mode(
        mut self,
        mode: super::bucket_download::DownloadMode,
    ) -> Result<Self, StoreError> {
        match &self.store {
            Store::Bucket(b) => {
                self.bucket_downloads =
                    Some(super::bucket_download::BucketDownloads::new(b, mode)?);
                Ok(self)
            }
            Store::Folder(_) => Err(StoreError::Invalid(format!(
                "{}: downloads in {mode:?} mode need a bucket store (s3://BUCKET/PREFIX); a \
                 folder store serves its files itself",
                self.store.location()
            ))),
        }
    }

    /// Re-reads the policy file; the old policy stays if the new one is invalid. The caller
    /// decides when (the CLI does on SIGHUP) and reports the outcome.
    pub fn reload(&self) -> Result<(), PolicyError> {
        let p = Policy::load(&self.policy_path)?;
        self.install(p);
        Ok(())
    }

    /// Applies a policy given as text (`source` names it in errors; key paths in it are read
    /// beside the policy file), as [`Gate::reload`] does: the old policy stays if the new one
    /// is invalid, and cached decisions of the old one are dropped.
    pub fn apply_policy_text(&self, text: &[u8], source: &str) -> Result<(), PolicyError> {
        let text = std::str::from_utf8(text).map_err(|_| PolicyError {
            source_name: source.to_string(),
            line: None,
            key: String::new(),
            problem: "not UTF-8 text".into(),
        })?;
        let base = self
            .policy_path
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let p = Policy::parse(text, source, base)?;
        self.install(p);
        Ok(())
    }

    fn install(&self, p: Policy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.generation += 1;
        c.decisions.clear();
        c.manifests.clear();
    }

    /// The manifest for `repo` at `rev` through the per-second cache.
    #[allow(clippy::result_large_err)]
    async fn manifest_cached(
        &self,
        repo: &str,
        rev: &str,
    ) -> Result<Arc<RevisionRecord>, Response> {
        let second = now();
        let key = (repo.to_string(), rev.to_string());
        {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.second == second
                && let Some(m) = c.manifests.get(&key)
            {
                return Ok(m.clone());
            }
        }
        let m = Arc::new(lookup(self, repo, rev).await?);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.second == second && c.manifests.len() < 10_000 {
            c.manifests.insert(key, m.clone());
        }
        Ok(m)
    }

    /// [`Gate::decide`] through the per-second cache, on the blocking pool.
    pub async fn decide_cached(
        self: &Arc<Self>,
        m: Arc<RevisionRecord>,
        destination: Option<String>,
    ) -> Result<Arc<Verdict>, DecideError> {
        let second = now();
        let key = (m.repo.clone(), m.revision.clone(), destination.clone());
        let generation = {
            let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.second != second {
                c.second = second;
                c.decisions.clear();
                c.manifests.clear();
            }
            if let Some(d) = c.decisions.get(&key) {
                return Ok(d.clone());
            }
            c.generation
        };
        let _permit = self
            .deciding
            .acquire()
            .await
            .map_err(|e| DecideError::Task(e.to_string()))?;
        let envelope = self.store.attestation(&m).await?;
        let grants = self.store.grants(&m).await?;
        let gate = self.clone();
        let d =
            tokio::task::spawn_blocking(move || gate.decide(&m, &envelope, grants, destination))
                .await
                .map_err(|e| DecideError::Task(e.to_string()))??;
        let d = Arc::new(Verdict::new(d));
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.second == second && c.generation == generation && c.decisions.len() < 10_000 {
            c.decisions.insert(key, d.clone());
        }
        Ok(d)
    }

    fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The decision for an admitted revision, now, for `destination`, from the envelope and
    /// grants it was admitted with (read from the store by the caller).
    pub fn decide(
        &self,
        m: &RevisionRecord,
        envelope: &[u8],
        grants: Vec<Vec<u8>>,
        destination: Option<String>,
    ) -> Result<Decision, DecideError> {
        let policy = self.policy();
        let req = VerifyRequest {
            envelope,
            subject: SubjectSource::Admitted(AdmittedFacts {
                header_parameters: m.header_parameters,
                model_sig_checked: m.model_sig,
            }),
            policy: &policy,
            context: Context {
                now: now(),
                destination,
            },
            grants,
            base_envelope: None,
        };
        Ok(verify(&req, &|_| {})?)
    }

    /// Reports a refusal record the audit writer could not take, at most once a second with
    /// the count since the last report.
    fn audit_lost(&self, e: super::audit::AuditFailure) {
        use std::sync::atomic::Ordering;
        let lost = self.audit_lost.fetch_add(1, Ordering::Relaxed) + 1;
        let second = now();
        if self.audit_lost_reported.swap(second, Ordering::Relaxed) != second {
            self.audit_lost.fetch_sub(lost, Ordering::Relaxed);
            tracing::error!(lost, error = %e, "AUDIT LOG FAILING: refusal records lost");
        }
    }

    fn destination(&self, headers: &HeaderMap) -> Option<String> {
        let name = self.policy().destination_header.clone()?;
        // Present but not a country (`XX`, `T1`, non-ASCII...) is an unknown destination, not
        // an absent one: the regimes refuse it wherever it matters.
        let v = headers.get(name.as_str())?;
        let normal = std::str::from_utf8(v.as_bytes())
            .map_or(UNKNOWN_DESTINATION, |v| normalise_destination(v));
        Some(normal.to_string())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An error the way the Hub answers it: status, `X-Error-Code`, `X-Error-Message`, JSON body.
fn hub_error(status: StatusCode, code: &str, message: &str, commit: Option<&str>) -> Response {
    let body = json!({ "error": message }).to_string();
    hub_response(status, code, header_safe(message), body.into(), commit)
}

fn hub_response(
    status: StatusCode,
    code: &str,
    message: Option<HeaderValue>,
    body: axum::body::Bytes,
    commit: Option<&str>,
) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-error-code",
        HeaderValue::from_str(code).unwrap_or(HeaderValue::from_static("Error")),
    );
    if let Some(v) = message {
        h.insert("x-error-message", v);
    }
    if let Some(c) = commit.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("x-repo-commit", c);
    }
    r
}

/// Header values must be visible ASCII; reasons are ours, but stay safe.
fn header_safe(message: &str) -> Option<HeaderValue> {
    let clean: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(1000)
        .collect();
    HeaderValue::from_str(&clean).ok()
}

fn refusal(v: &Verdict, commit: &str) -> Response {
    let (message, body) = match &v.refusal {
        Some(r) => (r.message.clone(), r.body.clone()),
        None => (None, axum::body::Bytes::new()),
    };
    hub_response(
        StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
        "GatedRepo",
        message,
        body,
        Some(commit),
    )
}

type Shared = Arc<Gate>;

async fn healthz() -> &'static str {
    "ok\n"
}

// Responses are what handlers return anyway; boxing them would only add a step.
#[allow(clippy::result_large_err)]
async fn lookup(gate: &Gate, repo: &str, rev: &str) -> Result<RevisionRecord, Response> {
    if check_repo_id(repo).is_err() {
        return Err(repo_not_found(repo));
    }
    match gate.store.has_repo(repo).await {
        Ok(true) => {}
        Ok(false) => return Err(repo_not_found(repo)),
        Err(e) => return Err(store_error(&e)),
    }
    match gate.store.manifest(repo, rev).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(hub_error(
            StatusCode::NOT_FOUND,
            "RevisionNotFound",
            &format!("Invalid rev id: {rev}"),
            None,
        )),
        Err(e) => {
            tracing::error!(repo, revision = rev, "cannot read the revision");
            Err(store_error(&e))
        }
    }
}

async fn revision_info(
    State(g): State<Shared>,
    headers: HeaderMap,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    info(&g, &headers, &format!("{org}/{name}"), &rev).await
}

async fn model_info(
    State(g): State<Shared>,
    headers: HeaderMap,
    UrlPath((org, name)): UrlPath<(String, String)>,
) -> Response {
    info(&g, &headers, &format!("{org}/{name}"), "main").await
}

async fn info(g: &Shared, headers: &HeaderMap, repo: &str, rev: &str) -> Response {
    let m = match g.manifest_cached(repo, rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    // `gated` tells the truth for this request: false when the revision would be served to it.
    // Decided through the cache, off the async runtime, like a download.
    let gated = match g.decide_cached(m.clone(), g.destination(headers)).await {
        Ok(d) if d.decision.allowed => json!(false),
        _ => json!("manual"),
    };
    let siblings: Vec<_> = entries(&m)
        .into_iter()
        .map(|e| {
            json!({
                "rfilename": e.path, "size": e.size,
                "lfs": { "sha256": e.sha256, "size": e.size, "pointerSize": 134 },
            })
        })
        .collect();
    axum::Json(json!({
        "id": repo, "modelId": repo, "sha": m.revision, "siblings": siblings,
        "gated": gated, "private": false, "disabled": false,
        "lastModified": iso_time(m.admitted_at),
    }))
    .into_response()
}

/// One file of a revision as listed: the attested files, then the signature files.
struct Entry<'a> {
    path: &'a str,
    size: u64,
    sha256: &'a str,
}

fn entries(m: &RevisionRecord) -> Vec<Entry<'_>> {
    let files = m.files.iter().map(|f| Entry {
        path: &f.path,
        size: f.size,
        sha256: &f.sha256,
    });
    let signatures = m.signature_files.iter().map(|f| Entry {
        path: &f.path,
        size: f.size,
        sha256: &f.sha256,
    });
    files.chain(signatures).collect()
}

fn file_json(e: &Entry) -> serde_json::Value {
    json!({
        "type": "file", "path": e.path, "size": e.size, "oid": git_blob_id_placeholder(e.sha256),
        "lfs": { "oid": e.sha256, "size": e.size, "pointerSize": 134 },
    })
}

fn dir_json(path: &str) -> serde_json::Value {
    json!({ "type": "directory", "path": path, "oid": "0000000000000000000000000000000000000000" })
}

/// Every folder that holds a listed file.
fn directories<'a>(entries: &[Entry<'a>]) -> std::collections::BTreeSet<&'a str> {
    let mut dirs = std::collections::BTreeSet::new();
    for e in entries {
        let mut end = e.path.len();
        while let Some(i) = e.path[..end].rfind('/') {
            dirs.insert(&e.path[..i]);
            end = i;
        }
    }
    dirs
}

fn iso_time(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map_or_else(|_| "1970-01-01T00:00:00Z".into(), |t| t.to_string())
}

async fn tree(
    State(g): State<Shared>,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match g.manifest_cached(&repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let files = entries(&m);
    let mut listing: Vec<_> = directories(&files).into_iter().map(dir_json).collect();
    listing.extend(files.iter().map(file_json));
    axum::Json(listing).into_response()
}

/// `list_repo_refs`: every ref is a branch; there are no tags, conversions or pull requests.
async fn refs(
    State(g): State<Shared>,
    UrlPath((org, name)): UrlPath<(String, String)>,
) -> Response {
    let repo = format!("{org}/{name}");
    if check_repo_id(&repo).is_err() {
        return repo_not_found(&repo);
    }
    match g.store.has_repo(&repo).await {
        Ok(true) => {}
        Ok(false) => return repo_not_found(&repo),
        Err(e) => return store_error(&e),
    }
    match g.store.refs(&repo).await {
        Ok(refs) => {
            let branches: Vec<_> = refs
                .iter()
                .map(|(name, id)| json!({ "name": name, "ref": format!("refs/heads/{name}"), "targetCommit": id }))
                .collect();
            axum::Json(
                json!({ "branches": branches, "tags": [], "converts": [], "pullRequests": [] }),
            )
            .into_response()
        }
        Err(e) => store_error(&e),
    }
}

/// `list_repo_commits`: an admitted revision has no parents here, so its history is itself.
async fn commits(
    State(g): State<Shared>,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match lookup(&g, &repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let title = format!("Admitted by weightgate (attestation {})", m.attestation);
    axum::Json(json!([{
        "id": m.revision,
        "title": title,
        "message": "",
        "authors": [{ "user": "weightgate" }],
        "date": iso_time(m.admitted_at),
    }]))
    .into_response()
}

/// Largest `paths-info` request body read.
const MAX_PATHS_INFO_BODY: usize = 1 << 20;

/// `get_paths_info`: the entries for the paths asked (a form `paths=a&paths=b`, or JSON
/// `{"paths": [...]}`); paths that do not exist are left out, as the Hub does.
async fn paths_info(
    State(g): State<Shared>,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
    req: Request,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match lookup(&g, &repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_PATHS_INFO_BODY).await else {
        return hub_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BadRequest",
            "request body too large",
            None,
        );
    };
    let asked: Option<Vec<String>> = if json_body {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("paths")?
                    .as_array()?
                    .iter()
                    .map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
    } else {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .map(|pairs| {
                pairs
                    .into_iter()
                    .filter(|(k, _)| k == "paths" || k == "paths[]")
                    .map(|(_, v)| v)
                    .collect()
            })
    };
    let Some(asked) = asked else {
        return hub_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "expected paths=... in the body",
            None,
        );
    };
    let files = entries(&m);
    let dirs = directories(&files);
    let mut out = Vec::new();
    for p in &asked {
        let p = p.trim_end_matches('/');
        if let Some(e) = files.iter().find(|e| e.path == p) {
            out.push(file_json(e));
        } else if dirs.contains(p) {
            out.push(dir_json(p));
        }
    }
    axum::Json(out).into_response()
}

fn repo_not_found(repo: &str) -> Response {
    hub_error(
        StatusCode::NOT_FOUND,
        "RepoNotFound",
        &format!("Repository {repo} not found"),
        None,
    )
}

fn store_error(e: &StoreError) -> Response {
    tracing::error!(error = %e, "cannot read the store");
    match e {
        StoreError::Storage { .. } => storage_unavailable(),
        _ => hub_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "StoreError",
            "store error",
            None,
        ),
    }
}

/// Object storage unreachable or too slow: try again later (never a 500, never a decision).
fn storage_unavailable() -> Response {
    let mut r = hub_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "StoreUnavailable",
        "the object storage did not answer; try again later",
        None,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// The tree `oid` is a git blob id on the Hub; every file here is served as LFS, so clients
/// use `lfs.oid`. We give a stable 40-hex value derived from the SHA-256.
fn git_blob_id_placeholder(sha256: &str) -> String {
    sha256[..40.min(sha256.len())].to_string()
}

async fn decision(
    State(g): State<Shared>,
    headers: HeaderMap,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match g.manifest_cached(&repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    match g.decide_cached(m, g.destination(&headers)).await {
        Ok(d) => axum::Json(&d.decision).into_response(),
        Err(e) => {
            tracing::error!(repo, revision = rev, error = %e, "cannot decide");
            hub_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "StoreError",
                "store error",
                None,
            )
        }
    }
}

async fn resolve(
    State(g): State<Shared>,
    UrlPath((org, name, rev, path)): UrlPath<(String, String, String, String)>,
    req: Request,
) -> Response {
    let repo = format!("{org}/{name}");
    let destination = g.destination(req.headers());
    let record = |status: u16,
                  decision: &'static str,
                  reasons: Vec<ReasonCode>,
                  bytes: u64,
                  revision: &str| AuditRecord {
        time: now(),
        repo: repo.clone(),
        revision: revision.to_string(),
        path: path.clone(),
        destination: destination.clone(),
        decision,
        reasons,
        status,
        bytes,
    };
    // A request that is not served is recorded without waiting: if the writer is behind, the
    // loss is counted and reported, and no bytes went out.
    let audit = |status: u16,
                 decision: &'static str,
                 reasons: Vec<ReasonCode>,
                 bytes: u64,
                 revision: &str| {
        if let Err(e) = g
            .audit
            .record(record(status, decision, reasons, bytes, revision))
        {
            g.audit_lost(e);
        }
    };
    if path.len() > 1024 || check_relative_path(&path).is_err() {
        audit(400, "invalid", vec![], 0, &rev);
        return hub_error(
            StatusCode::BAD_REQUEST,
            "InvalidPath",
            "invalid file path",
            None,
        );
    }
    let m = match g.manifest_cached(&repo, &rev).await {
        Ok(m) => m,
        Err(r) => {
            audit(r.status().as_u16(), "not-found", vec![], 0, &rev);
            return r;
        }
    };
    // The decision comes first: a refused revision answers 451 on every path, also on paths
    // it does not contain, so clients that probe optional files report the refusal.
    let d = match g.decide_cached(m.clone(), destination.clone()).await {
        Ok(d) => d,
        Err(DecideError::Store(e)) => {
            tracing::error!(repo, revision = %m.revision, "cannot decide");
            let r = store_error(&e);
            audit(r.status().as_u16(), "error", vec![], 0, &m.revision);
            return r;
        }
        Err(e) => {
            tracing::error!(repo, revision = %m.revision, error = %e, "cannot decide");
            audit(500, "error", vec![], 0, &m.revision);
            return hub_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "StoreError",
                "store error",
                None,
            );
        }
    };
    if !d.decision.allowed {
        audit(451, "deny", d.decision.codes(), 0, &m.revision);
        return refusal(&d, &m.revision);
    }
    // The weights, or a signature file served beside them.
    let file = m.files.iter().find(|f| f.path == path);
    let (is_blob, sha256, size) = match (file, m.signature_files.iter().find(|f| f.path == path)) {
        (Some(f), _) => (true, f.sha256.clone(), f.size),
        (None, Some(s)) => (false, s.sha256.clone(), s.size),
        (None, None) => {
            audit(404, "not-found", vec![], 0, &m.revision);
            return hub_error(
                StatusCode::NOT_FOUND,
                "EntryNotFound",
                &format!("{path} does not exist on \"{rev}\""),
                Some(&m.revision),
            );
        }
    };
    let problem = match file {
        Some(f) => match g.store.blob_problem(f).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(repo, revision = %m.revision, path, "cannot check a stored blob");
                let r = store_error(&e);
                audit(r.status().as_u16(), "error", vec![], 0, &m.revision);
                return r;
            }
        },
        None => None,
    };
    // A stored blob that no longer matches its record: refused and logged, never served.
    let refuse_changed = |problem: &str| {
        tracing::warn!(
            repo,
            revision = %m.revision,
            path,
            problem = %problem,
            "refused: the stored file no longer matches what was admitted"
        );
        audit(
            451,
            "deny",
            vec![ReasonCode::StoreBlobChanged],
            0,
            &m.revision,
        );
        hub_error(
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            "GatedRepo",
            "the stored file no longer matches what was admitted",
            Some(&m.revision),
        )
    };
    if let Some(problem) = problem {
        return refuse_changed(&problem);
    }
    let is_head = req.method() == Method::HEAD;
    let (mut resp, bytes) = match &g.store {
        Store::Folder(f) => {
            let blob = if is_blob {
                f.blob_path(&sha256)
            } else {
                f.signature_path(&sha256)
            };
            let file = match std::fs::File::open(&blob) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(blob = %sha256, error = %e, "cannot read a stored blob");
                    return hub_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "StoreError",
                        "store error",
                        None,
                    );
                }
            };
            let zero_copy = req.extensions().get::<ZeroCopy>().cloned();
            blob_response(file, size, req.headers(), is_head, zero_copy)
        }
        #[cfg(feature = "bucket")]
        Store::Bucket(b) => {
            use super::bucket_download::DownloadRefusal;
            let key = if is_blob {
                b.blob_key(&sha256)
            } else {
                b.signature_key(&sha256)
            };
            let Some(downloads) = &g.bucket_downloads else {
                tracing::error!("no client for downloads from the bucket");
                return hub_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "StoreError",
                    "store error",
                    None,
                );
            };
            let etag = file.and_then(|f| f.object_etag.as_deref());
            match downloads
                .respond(&key, etag, size, req.headers(), is_head)
                .await
            {
                Ok(r) => r,
                Err(DownloadRefusal::Changed(problem)) => return refuse_changed(&problem),
                Err(DownloadRefusal::Unavailable(e)) => {
                    tracing::error!(repo, revision = %m.revision, path, "cannot download from the store");
                    let r = store_error(&e);
                    audit(r.status().as_u16(), "error", vec![], 0, &m.revision);
                    return r;
                }
            }
        }
    };
    let status = resp.status();
    let h = resp.headers_mut();
    let etag = format!("\"{sha256}\"");
    for (k, v) in [
        ("x-repo-commit", m.revision.clone()),
        ("x-linked-etag", etag.clone()),
        ("etag", etag),
        ("x-linked-size", size.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(k), v);
        }
    }
    // What is served is recorded first: no record on disk, no bytes (the blob is closed
    // unread when `resp` is dropped).
    if let Err(e) = g
        .audit
        .record_durably(record(status.as_u16(), "allow", vec![], bytes, &m.revision))
        .await
    {
        tracing::error!(
            repo,
            revision = %m.revision,
            path = %super::audit::bounded(&path),
            error = %e,
            "AUDIT LOG FAILING: download refused with 503"
        );
        return hub_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "AuditUnavailable",
            "the download cannot be recorded in the audit log; try again later",
            Some(&m.revision),
        );
    }
    resp
}

/// The router, for tests and `serve`.
pub fn router(gate: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/models/{org}/{name}", get(model_info))
        .route(
            "/api/models/{org}/{name}/revision/{rev}",
            get(revision_info),
        )
        .route("/api/models/{org}/{name}/tree/{rev}", get(tree))
        .route("/api/models/{org}/{name}/refs", get(refs))
        .route("/api/models/{org}/{name}/commits/{rev}", get(commits))
        .route(
            "/api/models/{org}/{name}/paths-info/{rev}",
            axum::routing::post(paths_info),
        )
        .route("/v1/decision/{org}/{name}/{rev}", get(decision))
        .route(
            "/{org}/{name}/resolve/{rev}/{*path}",
            get(resolve).head(resolve),
        )
        .with_state(gate)
}

/// Connection limits against slow or hostile clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send its whole request head within this time, counted from the moment
    /// the connection opens or the previous response ends: so it is also the first-byte and
    /// the keep-alive idle timeout.
    pub header_read_timeout: Duration,
    /// Largest request head (request line plus headers) accepted.
    pub max_header_bytes: usize,
    /// A write to the client that makes no progress for this long ends the connection.
    pub write_timeout: Duration,
    /// Connections open at once. Each holds a socket and, while downloading, one blob: the
    /// server also keeps this under half the process's open-file limit.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            write_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Descriptors kept free for the listener, the audit log, the store and the runtime.
const RESERVED_FILES: u64 = 64;

/// The connection cap actually used: the configured one, but never so many that sockets plus
/// one open blob each would exceed the open-file limit (then `accept` would fail instead).
pub fn effective_max_connections(configured: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    let by_files = (files.saturating_sub(RESERVED_FILES) / 2).max(1);
    configured
        .min(usize::try_from(by_files).unwrap_or(usize::MAX))
        .max(1)
}

/// The open connections, oldest first, with whether each is serving a request. When the cap
/// is reached, the oldest connection that is not serving anything (silent, sending its head
/// slowly, or idle between requests) is closed to make room: a flood of silent sockets cannot
/// keep a real client out, it only shortens its own connections' lives.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: std::collections::BTreeMap<u64, (Arc<ConnectionState>, tokio::task::AbortHandle)>,
}

#[derive(Default)]
struct ConnectionState {
    /// Requests being answered, responses bodies included.
    busy: std::sync::atomic::AtomicUsize,
}

/// Marks its connection busy while alive: created when a request arrives, dropped when the
/// response body has been written (or abandoned).
struct Busy(Arc<ConnectionState>);

impl Busy {
    fn new(state: Arc<ConnectionState>) -> Self {
        state.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(state)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A response body that keeps its connection marked busy until it is finished.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl axum::body::HttpBody for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Connections {
    /// Closes the oldest connection that is serving nothing; false if every one is busy.
    fn evict_oldest_idle(&mut self) -> bool {
        let victim = self.open.iter().find_map(|(id, (state, _))| {
            (state.busy.load(std::sync::atomic::Ordering::SeqCst) == 0).then_some(*id)
        });
        match victim.and_then(|id| self.open.remove(&id)) {
            Some((_, task)) => {
                task.abort();
                true
            }
            None => false,
        }
    }
}

/// Serves on `listener` until the process is stopped. Policy reloads are the caller's
/// ([`Gate::reload`]); this library installs no signal handler.
///
/// HTTP/1.1 only: cleartext HTTP/2 would need its own limits (streams, windows, preface
/// timeout) and `huggingface_hub` speaks HTTP/1.1; a client that sends the HTTP/2 preface gets
/// an HTTP/1 error and its connection closed.
pub async fn serve(
    gate: Shared,
    listener: tokio::net::TcpListener,
    limits: Limits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};

    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "listening");
    let max_connections = effective_max_connections(limits.max_connections);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let connections = Arc::new(Mutex::new(Connections::default()));
    let app = router(gate).layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(30),
    ));
    loop {
        // A slot before accepting: when all are taken, make room by closing the oldest idle
        // connection; when every connection is busy, wait (new clients queue in the backlog).
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                connections
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .evict_oldest_idle();
                match slots.clone().acquire_owned().await {
                    Ok(s) => s,
                    Err(_) => return Ok(()),
                }
            }
        };
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "cannot accept a connection; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // File bodies go from the page cache to the socket with sendfile(2) (blob_body.rs);
        // the write timeout wraps it, so a client that stops reading is cut off all the same.
        let (stream, zero_copy) = ZeroCopyStream::new(stream);
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_timeout));
        let state = Arc::new(ConnectionState::default());
        let request_state = state.clone();
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
                let busy = Busy::new(request_state.clone());
                let app = app.clone();
                let mut req = req;
                req.extensions_mut().insert(zero_copy.clone());
                async move {
                    let resp = app.oneshot(req.map(Body::new)).await?;
                    Ok::<_, std::convert::Infallible>(
                        resp.map(|inner| Body::new(BusyBody { inner, _busy: busy })),
                    )
                }
            });
        let registry = connections.clone();
        let mut open = connections.lock().unwrap_or_else(|e| e.into_inner());
        let id = open.next_id;
        open.next_id += 1;
        let task = tokio::spawn(async move {
            let _slot = slot;
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes)
                .max_header_size(limits.max_header_bytes)
                .serve_connection(TokioIo::new(Box::pin(stream)), service)
                .await;
            registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .open
                .remove(&id);
        });
        open.open.insert(id, (state, task.abort_handle()));
    }
}
