//! The Hub API: the Hugging Face-compatible read routes over the admitted store and the shape
//! of their answers, as `huggingface_hub` expects them. Every request is judged by the gate's
//! decision part ([`super::decision`]); a refusal is HTTP 451 with `X-Error-Code: GatedRepo`,
//! which `huggingface_hub` raises as `GatedRepoError` with the reason.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use weightgate_attest::reading::check_relative_path;
use weightgate_schemas::country::{UNKNOWN_DESTINATION, normalise_destination};

use super::audit::{AuditFailure, AuditRecord};
use super::blob_body::{RangeRequest, blob_response, parse_range};
use super::decision::{DecideError, Gate, LookupError, Verdict};
use super::disclosure::{self, Disclosure};
use super::listing::{Entry, Found};
use super::store::{
    ByteRange, ByteSource, OpenRefusal, RevisionRecord, StoreError, StoredObject, check_repo_id,
};
use super::zero_copy::ZeroCopy;
use crate::reason::ReasonCode;

pub(crate) fn hub_error(
    status: StatusCode,
    code: &str,
    message: &str,
    commit: Option<&str>,
) -> Response {
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
pub(crate) fn header_safe(message: &str) -> Option<HeaderValue> {
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
        Some(r) => (header_safe(&r.message), r.body.clone()),
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

/// The record for a request, or the Hub's answer when there is none.
// Responses are what handlers return anyway; boxing them would only add a step.
#[allow(clippy::result_large_err)]
async fn find_record(g: &Gate, repo: &str, rev: &str) -> Result<Arc<RevisionRecord>, Response> {
    g.record(repo, rev).await.map_err(|e| match e {
        LookupError::RepoNotFound => repo_not_found(repo),
        LookupError::RevisionNotFound => hub_error(
            StatusCode::NOT_FOUND,
            "RevisionNotFound",
            &format!("Invalid rev id: {rev}"),
            None,
        ),
        LookupError::Store(e) => {
            tracing::error!(repo, revision = rev, "cannot read the revision");
            store_error(&e)
        }
    })
}

/// The destination a request declares, by the header the policy names. Absent, or present but
/// not a country (`XX`, `T1`, non-ASCII...), is an unknown destination: the regimes refuse it
/// wherever an embargo, a regime's scope or a reference depends on the destination. Without a
/// header in the policy, requests name no destination.
pub(super) fn destination(g: &Gate, headers: &HeaderMap) -> Option<String> {
    let name = g.policy().destination_header.clone()?;
    let normal = match headers.get(name.as_str()) {
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map_or(UNKNOWN_DESTINATION, |v| normalise_destination(v)),
        None => UNKNOWN_DESTINATION,
    };
    Some(normal.to_string())
}

/// What this request may see of a revision ([`disclosure`]): decided as a download would be,
/// for its destination and now.
// Responses are what handlers return anyway; boxing them would only add a step.
#[allow(clippy::result_large_err)]
async fn disclosure_for(
    g: &Shared,
    m: &Arc<RevisionRecord>,
    headers: &HeaderMap,
) -> Result<Disclosure, Response> {
    match g.decide_cached(m.clone(), destination(g, headers)).await {
        Ok(d) => Ok(Disclosure::of(&d.decision)),
        Err(e) => Err(decide_error(&m.repo, &m.revision, &e)),
    }
}

/// A decision that could not be made: the store's answer (503 when it did not answer), never
/// a verdict.
fn decide_error(repo: &str, revision: &str, e: &DecideError) -> Response {
    tracing::error!(repo, revision, error = %e, "cannot decide");
    match e {
        DecideError::Store(e) => store_error(e),
        _ => hub_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "StoreError",
            "store error",
            None,
        ),
    }
}

/// Rendered on the blocking pool: a listing of thousands of files is CPU work.
async fn json_off_runtime(
    g: &Shared,
    work: impl FnOnce() -> serde_json::Value + Send + 'static,
) -> Response {
    match g.off_runtime(move || work().to_string()).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => decide_error("", "", &e),
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
    let m = match find_record(g, repo, rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    // `gated` tells the truth for this request: false when the revision would be served to it.
    let shown = match disclosure_for(g, &m, headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let listing = match g.listing(&m).await {
        Ok(l) => l,
        Err(e) => return decide_error(repo, &m.revision, &e),
    };
    let repo = repo.to_string();
    json_off_runtime(g, move || {
        let siblings: Vec<_> = listing
            .entries
            .iter()
            .map(|e| match shown {
                Disclosure::Full => json!({
                    "rfilename": e.path, "size": e.size,
                    "lfs": { "sha256": e.sha256, "size": e.size, "pointerSize": 134 },
                }),
                Disclosure::NamesAndSizes => json!({ "rfilename": e.path, "size": e.size }),
            })
            .collect();
        json!({
            "id": repo, "modelId": repo, "sha": m.revision, "siblings": siblings,
            "gated": if shown == Disclosure::Full { json!(false) } else { json!("manual") },
            "private": false, "disabled": false,
            "lastModified": iso_time(m.admitted_at),
        })
    })
    .await
}

/// A file as `list_repo_tree` and `get_paths_info` show it. The tree `oid` is a git blob id on
/// the Hub; every file here is served as LFS, so clients use `lfs.oid`: we give a stable
/// 40-hex value derived from the SHA-256 when it may be shown, zeros otherwise.
fn file_json(e: &Entry, shown: Disclosure) -> serde_json::Value {
    match shown {
        Disclosure::Full => json!({
            "type": "file", "path": e.path, "size": e.size,
            "oid": e.sha256[..40.min(e.sha256.len())],
            "lfs": { "oid": e.sha256, "size": e.size, "pointerSize": 134 },
        }),
        Disclosure::NamesAndSizes => json!({
            "type": "file", "path": e.path, "size": e.size, "oid": ZERO_OID,
        }),
    }
}

const ZERO_OID: &str = "0000000000000000000000000000000000000000";

fn dir_json(path: &str) -> serde_json::Value {
    json!({ "type": "directory", "path": path, "oid": ZERO_OID })
}

fn iso_time(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map_or_else(|_| "1970-01-01T00:00:00Z".into(), |t| t.to_string())
}

async fn tree(
    State(g): State<Shared>,
    headers: HeaderMap,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match find_record(&g, &repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let shown = match disclosure_for(&g, &m, &headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let listing = match g.listing(&m).await {
        Ok(l) => l,
        Err(e) => return decide_error(&repo, &m.revision, &e),
    };
    json_off_runtime(&g, move || {
        let dirs = listing.directories.iter().map(|d| dir_json(d));
        let files = listing.entries.iter().map(|e| file_json(e, shown));
        serde_json::Value::Array(dirs.chain(files).collect())
    })
    .await
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
/// The attestation's digest is named only where the revision would be served.
async fn commits(
    State(g): State<Shared>,
    headers: HeaderMap,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match find_record(&g, &repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let title = match disclosure_for(&g, &m, &headers).await {
        Ok(Disclosure::Full) => format!("Admitted by weightgate (attestation {})", m.attestation),
        Ok(Disclosure::NamesAndSizes) => "Admitted by weightgate".to_string(),
        Err(r) => return r,
    };
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

/// Most paths one `paths-info` request may ask about. `huggingface_hub` asks in batches of
/// at most 1,000 (500 when it commits, 1,000 for buckets), which the Hub answers; more is
/// refused with 400 naming the cap.
pub const MAX_PATHS_INFO_PATHS: usize = 1000;

/// `get_paths_info`: the entries for the paths asked (a form `paths=a&paths=b`, or JSON
/// `{"paths": [...]}`); paths that do not exist are left out, as the Hub does.
async fn paths_info(
    State(g): State<Shared>,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
    req: Request,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match find_record(&g, &repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let headers = req.headers().clone();
    let json_body = headers
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
    let shown = match disclosure_for(&g, &m, &headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let listing = match g.listing(&m).await {
        Ok(l) => l,
        Err(e) => return decide_error(&repo, &m.revision, &e),
    };
    let answer = g
        .off_runtime(move || -> Result<String, String> {
            let asked = asked_paths(&body, json_body)?;
            let out: Vec<_> = asked
                .iter()
                .filter_map(|p| match listing.find(p)? {
                    Found::File(e) => Some(file_json(e, shown)),
                    Found::Directory => Some(dir_json(p.trim_end_matches('/'))),
                })
                .collect();
            Ok(serde_json::Value::Array(out).to_string())
        })
        .await;
    match answer {
        Ok(Ok(body)) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Ok(Err(message)) => hub_error(StatusCode::BAD_REQUEST, "BadRequest", &message, None),
        Err(e) => decide_error(&repo, &m.revision, &e),
    }
}

/// The paths a `paths-info` body asks about, at most [`MAX_PATHS_INFO_PATHS`].
fn asked_paths(body: &[u8], json_body: bool) -> Result<Vec<String>, String> {
    let asked: Option<Vec<String>> = if json_body {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("paths")?
                    .as_array()?
                    .iter()
                    .map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
    } else {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .map(|pairs| {
                pairs
                    .into_iter()
                    .filter(|(k, _)| k == "paths" || k == "paths[]")
                    .map(|(_, v)| v)
                    .collect()
            })
    };
    match asked {
        None => Err("expected paths=... in the body".into()),
        Some(a) if a.len() > MAX_PATHS_INFO_PATHS => Err(format!(
            "{} paths asked; at most {MAX_PATHS_INFO_PATHS} per request",
            a.len()
        )),
        Some(a) => Ok(a),
    }
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
        StoreError::Unavailable { .. } => storage_unavailable(),
        e if e.is_missing() => {
            tracing::error!(
                error = %e,
                "STORE INCOMPLETE: an object a published revision names is missing; re-admit \
                 the revision"
            );
            let mut r = hub_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "StoreIncomplete",
                "a stored object of this revision is missing; try again later",
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        _ => hub_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "StoreError",
            "store error",
            None,
        ),
    }
}

/// The audit log is closed: the gate is shutting down.
fn shutting_down() -> Response {
    let mut r = hub_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ShuttingDown",
        "the gate is shutting down; try again",
        None,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
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

async fn decision(
    State(g): State<Shared>,
    headers: HeaderMap,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    let repo = format!("{org}/{name}");
    let m = match find_record(&g, &repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    match g.decide_cached(m.clone(), destination(&g, &headers)).await {
        Ok(d) => axum::Json(disclosure::public_decision(&d.decision)).into_response(),
        Err(e) => decide_error(&repo, &m.revision, &e),
    }
}

async fn resolve(
    State(g): State<Shared>,
    UrlPath((org, name, rev, path)): UrlPath<(String, String, String, String)>,
    req: Request,
) -> Response {
    let repo = format!("{org}/{name}");
    let destination = destination(&g, req.headers());
    let record = |status: u16,
                  decision: &'static str,
                  reasons: Vec<ReasonCode>,
                  bytes: u64,
                  revision: &str| AuditRecord {
        time: g.now(),
        repo: repo.clone(),
        revision: revision.to_string(),
        path: path.clone(),
        destination: destination.clone(),
        decision,
        reasons,
        status,
        bytes,
        token: None,
    };
    // A request that is not served is recorded without waiting: if the writer is behind, the
    // audit log counts it (no bytes went out). False once the log is closed for shutdown.
    let audit = |status: u16,
                 decision: &'static str,
                 reasons: Vec<ReasonCode>,
                 bytes: u64,
                 revision: &str| {
        !matches!(
            g.audit
                .record(record(status, decision, reasons, bytes, revision)),
            Err(AuditFailure::Closed)
        )
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
    let m = match find_record(&g, &repo, &rev).await {
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
        // A refusal that can be neither recorded nor counted is not made (shutting down).
        if !audit(451, "deny", d.decision.codes(), 0, &m.revision) {
            return shutting_down();
        }
        return refusal(&d, &m.revision);
    }
    // The weights, or a signature file served beside them.
    let file = m.files.iter().find(|f| f.path == path);
    let object = match (file, m.signature_files.iter().find(|f| f.path == path)) {
        (Some(f), _) => StoredObject::Blob(f),
        (None, Some(s)) => StoredObject::Signature(s),
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
            // Gone (a gc, an operator): the store is incomplete, nothing was altered.
            Ok(Some(_)) if matches!(g.store.blob_state(&f.sha256).await, Ok(None)) => {
                let r = store_error(&StoreError::NotFound {
                    location: format!("blob {} for {}", f.sha256, f.path),
                    why: "named by a published revision",
                });
                audit(r.status().as_u16(), "error", vec![], 0, &m.revision);
                return r;
            }
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
    let (sha256, size) = (object.sha256().to_string(), object.size());
    let head = req.method() == Method::HEAD;
    let (status, start, len) = match parse_range(req.headers(), size) {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeRequest::Unsatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, 0, 0),
    };
    let (mut resp, bytes) = if status == StatusCode::RANGE_NOT_SATISFIABLE {
        let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        (r, 0)
    } else {
        let range = ByteRange { start, len, head };
        match g.store.open(object, range).await {
            Ok(ByteSource::File(f)) => {
                let zero_copy = req.extensions().get::<ZeroCopy>().cloned();
                blob_response(f, size, req.headers(), head, zero_copy)
            }
            Ok(ByteSource::Stream(body)) => (
                super::blob_body::bytes_response(body, status, start, len, size),
                if head { 0 } else { len },
            ),
            Ok(ByteSource::Socket(upstream)) => {
                let zero_copy = req.extensions().get::<ZeroCopy>().cloned();
                let body = upstream.into_body(zero_copy);
                (
                    super::blob_body::bytes_response(body, status, start, len, size),
                    len,
                )
            }
            Ok(ByteSource::Redirect(url)) => {
                let mut r = StatusCode::FOUND.into_response();
                if let Ok(v) = HeaderValue::from_str(&url) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                (r, size)
            }
            Err(OpenRefusal::Changed(problem)) => return refuse_changed(&problem),
            Err(OpenRefusal::Unavailable(e)) => {
                tracing::error!(repo, revision = %m.revision, path, error = %e, "cannot read from the store");
                let r = store_error(&e);
                audit(r.status().as_u16(), "error", vec![], 0, &m.revision);
                return r;
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
pub fn router(gate: Arc<Gate>) -> Router {
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
        // Pages for browsers on the URLs the Hub shows them at; every other request there
        // answers as before (super::pages).
        .merge(super::pages::routes(gate.clone()))
        .with_state(gate)
}
