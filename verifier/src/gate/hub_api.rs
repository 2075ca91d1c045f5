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

use super::audit::AuditRecord;
use super::blob_body::{RangeRequest, ZeroCopy, blob_response, parse_range};
use super::decision::{DecideError, Gate, LookupError, Verdict};
use super::store::{
    ByteRange, ByteSource, OpenRefusal, RevisionRecord, StoreError, StoredObject, check_repo_id,
};
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

/// The destination a request declares, by the header the policy names. Present but not a
/// country (`XX`, `T1`, non-ASCII...) is an unknown destination, not an absent one: the
/// regimes refuse it wherever it matters.
fn destination(g: &Gate, headers: &HeaderMap) -> Option<String> {
    let name = g.policy().destination_header.clone()?;
    let v = headers.get(name.as_str())?;
    let normal =
        std::str::from_utf8(v.as_bytes()).map_or(UNKNOWN_DESTINATION, |v| normalise_destination(v));
    Some(normal.to_string())
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
    // Decided through the cache, off the async runtime, like a download.
    let gated = match g.decide_cached(m.clone(), destination(g, headers)).await {
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
    let m = match find_record(&g, &repo, &rev).await {
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
    let m = match find_record(&g, &repo, &rev).await {
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
    let m = match find_record(&g, &repo, &rev).await {
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
        StoreError::Unavailable { .. } => storage_unavailable(),
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
    let m = match find_record(&g, &repo, &rev).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    match g.decide_cached(m, destination(&g, &headers)).await {
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
        audit(451, "deny", d.decision.codes(), 0, &m.revision);
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
        .with_state(gate)
}
