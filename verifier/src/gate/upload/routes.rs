//! The Hub's write routes, as `huggingface_hub` calls them on its LFS path: whoami, repository
//! creation, preupload, the LFS batch API with its PUT and verify, and the commit. Every route
//! needs a write token (`Authorization: Bearer`) for the repository's namespace, except the
//! PUT, which the client sends without headers: its URL carries a one-use ticket the batch
//! answer created for that token, namespace and object.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::commit_request::{CommitLine, parse_commit};
use super::tokens::{self, TokenRecord};
use super::{UploadError, Uploads, store_failure};
use crate::gate::admission::{Admission, CommitRequest, CommittedFile, admit_commit, namespace_of};
use crate::gate::audit::AuditRecord;
use crate::gate::decision::Gate;
use crate::gate::hub_api::{header_safe, hub_error};
use crate::gate::listener::PeerAddr;
use crate::gate::store::{
    ByteStream, MetaKind, RefPrecondition, StoreError, check_ref, check_repo_id, is_revision_id,
};
use crate::gate::upload::ObjectSource;
use weightgate_schemas::file_names::{ATTESTATION_FILE_NAME, OMS_SIGNATURE_FILE_NAME};

/// Failed authentications from one address within [`FAILURE_WINDOW`] before it is refused.
const MAX_FAILURES: u32 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long an LFS upload URL stays valid.
const TICKET_LIFETIME: i64 = 3600;
/// Largest commit body (NDJSON; small files travel in it, base64).
const MAX_COMMIT_BODY: usize = 128 << 20;
/// Largest file sent inside a commit rather than through LFS (the preupload answer says which).
const MAX_REGULAR_FILE: u64 = 10 << 20;
/// How long reading a commit body may take.
const COMMIT_BODY_TIMEOUT: Duration = Duration::from_secs(300);
/// Suffixes the Hub's default `.gitattributes` stores with LFS, whatever their size.
const LFS_SUFFIXES: &[&str] = &[
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".h5",
    ".onnx",
    ".msgpack",
    ".npz",
    ".npy",
    ".pkl",
    ".tar",
    ".gz",
    ".zip",
    ".zst",
];

/// The write side of the Hub API.
pub struct UploadApi {
    gate: Arc<Gate>,
    uploads: Uploads,
    failures: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
    /// One commit at a time per branch of a repository in this process.
    branches: Mutex<HashMap<(String, String), BranchLock>>,
}

/// Held while a commit to one branch is judged and published.
type BranchLock = Arc<tokio::sync::Mutex<()>>;

type Api = Arc<UploadApi>;

/// The write routes, over the gate's store, with `uploads`' limits.
pub fn router(gate: Arc<Gate>, uploads: Uploads) -> Router {
    routes(UploadApi::new(gate, uploads))
}

impl UploadApi {
    pub fn new(gate: Arc<Gate>, uploads: Uploads) -> Arc<Self> {
        Arc::new(UploadApi {
            gate,
            uploads,
            failures: Mutex::new(HashMap::new()),
            branches: Mutex::new(HashMap::new()),
        })
    }
}

/// The write routes of `api` (which the Xet CAS shares for its token check).
pub fn routes(api: Arc<UploadApi>) -> Router {
    Router::new()
        .route("/api/whoami-v2", get(whoami))
        .route("/api/repos/create", post(create_repo))
        .route("/api/models/{org}/{name}/preupload/{rev}", post(preupload))
        .route("/{org}/{name}/info/lfs/objects/batch", post(lfs_batch))
        .route("/{org}/{name}/info/lfs/objects/verify", post(lfs_verify))
        .route("/api/uploads/lfs/{ticket}", put(lfs_put))
        .route("/api/models/{org}/{name}/commit/{rev}", post(commit))
        .with_state(api)
}

/// Who is writing: the token's record, and the failure answer otherwise.
pub(crate) struct Writer {
    token: TokenRecord,
}

impl UploadApi {
    fn now(&self) -> i64 {
        self.gate.now()
    }

    /// The token presented, or the answer: 401 without a valid one, 429 after repeated
    /// failures from the same address.
    #[allow(clippy::result_large_err)]
    async fn writer(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<Writer, Response> {
        if self.failing(peer) {
            let mut r = hub_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyFailures",
                "too many failed authentications from this address; wait a minute",
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return Err(r);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(presented) = presented.filter(|t| !t.is_empty()) else {
            return Err(unauthorized(
                "a write token is required (Authorization: Bearer)",
            ));
        };
        match tokens::lookup(self.gate.store.as_ref(), presented).await {
            Ok(Some(token)) => Ok(Writer { token }),
            Ok(None) => {
                self.failed(peer);
                Err(unauthorized("Invalid credentials in Authorization header"))
            }
            Err(e) => Err(store_answer(&e, "look up the write token")),
        }
    }

    fn failing(&self, peer: Option<IpAddr>) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .get(&peer)
            .is_some_and(|(since, n)| since.elapsed() < FAILURE_WINDOW && *n >= MAX_FAILURES)
    }

    fn failed(&self, peer: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        let entry = failures.entry(peer).or_insert((Instant::now(), 0));
        entry.1 += 1;
    }

    /// The writer, allowed to write `repo`: 403 outside its namespaces.
    #[allow(clippy::result_large_err)]
    pub(crate) async fn writer_for(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        repo: &str,
    ) -> Result<Writer, Response> {
        if let Err(e) = check_repo_id(repo) {
            return Err(hub_error(StatusCode::BAD_REQUEST, "BadRequest", &e.0, None));
        }
        let w = self.writer(headers, peer).await?;
        if !w.token.may_write(repo) {
            return Err(hub_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!(
                    "token `{}` may not write {repo} (it writes {})",
                    w.token.name,
                    w.token.write.join(", ")
                ),
                None,
            ));
        }
        Ok(w)
    }

    fn branch_lock(&self, repo: &str, branch: &str) -> BranchLock {
        let mut locks = self.branches.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks
            .entry((repo.to_string(), branch.to_string()))
            .or_default()
            .clone()
    }
}

fn unauthorized(message: &str) -> Response {
    hub_error(StatusCode::UNAUTHORIZED, "Unauthorized", message, None)
}

fn bad_request(message: &str) -> Response {
    hub_error(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

/// The answer to a store error met while trying to do `failed` (see [`store_failure`]).
fn store_answer(e: &StoreError, failed: &str) -> Response {
    let (status, message) = store_failure(e, failed);
    match status {
        StatusCode::BAD_REQUEST => bad_request(&message),
        _ => hub_error(status, "StoreError", &message, None),
    }
}

fn upload_answer(e: &UploadError, failed: &str) -> Response {
    match e {
        UploadError::Store(s) | UploadError::Object(super::PendingError::Store(s)) => {
            store_answer(s, failed)
        }
        _ => hub_error(e.status(), "UploadRefused", &e.to_string(), None),
    }
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<PeerAddr>().map(|p| p.0.ip())
}

/// The URL clients reach this gate at, from the request.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes() == b"https");
    format!("{}://{host}", if https { "https" } else { "http" })
}

async fn json_body<T: for<'de> Deserialize<'de>>(req: Request, cap: usize) -> Result<T, Response> {
    let bytes = axum::body::to_bytes(req.into_body(), cap)
        .await
        .map_err(|e| bad_request(&format!("request body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| bad_request(&format!("request body: {e}")))
}

fn audit(api: &UploadApi, repo: &str, revision: &str, what: &str, token: &str, status: u16) {
    let record = AuditRecord {
        time: api.now(),
        repo: repo.to_string(),
        revision: revision.to_string(),
        path: what.to_string(),
        destination: None,
        decision: "write",
        reasons: Vec::new(),
        status,
        bytes: 0,
        token: Some(token.to_string()),
    };
    if let Err(e) = api.gate.audit.record(record) {
        tracing::error!(repo, error = %e, "upload: audit record lost");
    }
}

async fn whoami(State(api): State<Api>, req: Request) -> Response {
    let w = match api.writer(req.headers(), peer(&req)).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let orgs: Vec<_> = w
        .token
        .orgs()
        .into_iter()
        .map(|o| json!({"type": "org", "name": o, "fullname": o, "roleInOrg": "write"}))
        .collect();
    axum::Json(json!({
        "type": "user",
        "id": tokens::token_id(&w.token.name)[..24],
        "name": w.token.name,
        "fullname": w.token.name,
        "isPro": false,
        "orgs": orgs,
        "auth": {
            "type": "access_token",
            "accessToken": {
                "displayName": w.token.name,
                "role": "fineGrained",
                "fineGrained": {
                    "scoped": w.token.write.iter().map(|s| json!({
                        "entity": {"type": if s.contains('/') {"model"} else {"org"}, "name": s},
                        "permissions": ["repo.content.read", "repo.write"],
                    })).collect::<Vec<_>>(),
                },
                "createdAt": jiff::Timestamp::from_second(w.token.created_at)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            },
        },
    }))
    .into_response()
}

#[derive(Deserialize)]
struct CreateRepo {
    name: String,
    organization: Option<String>,
    #[serde(rename = "type")]
    repo_type: Option<String>,
}

/// Creating a repository records nothing: it appears with its first admitted commit. The
/// answer says where it will be, or 403 outside the token's namespaces.
async fn create_repo(State(api): State<Api>, req: Request) -> Response {
    let headers = req.headers().clone();
    let peer = peer(&req);
    let body: CreateRepo = match json_body(req, 64 << 10).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.repo_type.as_deref().is_some_and(|t| t != "model") {
        return bad_request("this gate holds model repositories only");
    }
    let repo = match &body.organization {
        Some(org) => format!("{org}/{}", body.name),
        None => body.name.clone(),
    };
    if let Err(r) = api.writer_for(&headers, peer, &repo).await {
        return r;
    }
    axum::Json(json!({ "url": format!("{}/{repo}", base_url(&headers)), "name": repo }))
        .into_response()
}

#[derive(Deserialize)]
struct Preupload {
    files: Vec<PreuploadFile>,
}

#[derive(Deserialize)]
struct PreuploadFile {
    path: String,
    size: u64,
}

async fn preupload(
    State(api): State<Api>,
    UrlPath((org, name, _rev)): UrlPath<(String, String, String)>,
    req: Request,
) -> Response {
    let repo = format!("{org}/{name}");
    let headers = req.headers().clone();
    if let Err(r) = api.writer_for(&headers, peer(&req), &repo).await {
        return r;
    }
    let body: Preupload = match json_body(req, 16 << 20).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.files.len() > api.uploads.limits().max_commit_files {
        return too_many_files(body.files.len(), api.uploads.limits().max_commit_files);
    }
    let mut files = Vec::with_capacity(body.files.len());
    let mut uploaded = Vec::new();
    for f in body.files {
        if let Err(e) = weightgate_attest::reading::check_relative_path(&f.path) {
            return bad_request(&format!("{}: {e}", f.path));
        }
        let lfs = f.size > MAX_REGULAR_FILE || LFS_SUFFIXES.iter().any(|s| f.path.ends_with(s));
        let lfs = lfs && f.size > 0;
        if lfs {
            uploaded.push(f.size);
        }
        files.push(json!({
            "path": f.path,
            "uploadMode": if lfs { "lfs" } else { "regular" },
            "shouldIgnore": false,
        }));
    }
    // A push that cannot fit is refused here, where `huggingface_hub` prints the reason.
    if let Err(e) = api
        .uploads
        .check_room_for_push(namespace_of(&repo), uploaded)
        .await
    {
        return upload_answer(&e, "count the namespace's staged bytes");
    }
    axum::Json(json!({ "files": files, "commitOid": null })).into_response()
}

fn too_many_files(n: usize, cap: usize) -> Response {
    hub_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "TooManyFiles",
        &format!("{n} files in one commit; this gate takes at most {cap}"),
        None,
    )
}

#[derive(Deserialize)]
struct BatchRequest {
    operation: String,
    #[serde(default)]
    transfers: Vec<String>,
    objects: Vec<BatchObject>,
}

#[derive(Deserialize, Serialize, Clone)]
struct BatchObject {
    oid: String,
    size: u64,
}

/// An LFS upload URL: the object it takes, for whom, until when.
#[derive(Serialize, Deserialize)]
struct Ticket {
    repo: String,
    oid: String,
    size: u64,
    token: String,
    expires_at: i64,
}

fn lfs_json(status: StatusCode, value: serde_json::Value) -> Response {
    let mut r = (status, value.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.git-lfs+json"),
    );
    r
}

/// The repository of an LFS route (`ORG/NAME.git`).
fn lfs_repo(org: &str, name: &str) -> Option<String> {
    name.strip_suffix(".git").map(|n| format!("{org}/{n}"))
}

async fn lfs_batch(
    State(api): State<Api>,
    UrlPath((org, name)): UrlPath<(String, String)>,
    req: Request,
) -> Response {
    let Some(repo) = lfs_repo(&org, &name) else {
        return bad_request("LFS routes are /ORG/NAME.git/info/lfs/...");
    };
    let headers = req.headers().clone();
    let w = match api.writer_for(&headers, peer(&req), &repo).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let body: BatchRequest = match json_body(req, 16 << 20).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.operation != "upload" {
        return bad_request("this gate's LFS API takes uploads; download through /resolve/");
    }
    if !body.transfers.is_empty() && !body.transfers.iter().any(|t| t == "basic") {
        return bad_request("this gate offers the `basic` LFS transfer only");
    }
    let limits = *api.uploads.limits();
    if body.objects.len() > limits.max_commit_files {
        return too_many_files(body.objects.len(), limits.max_commit_files);
    }
    let namespace = namespace_of(&repo);
    let now = api.now();
    let holdings = match api.uploads.holdings(namespace).await {
        Ok(h) => h,
        Err(e) => return upload_answer(&e, "read the namespace's revisions"),
    };
    let base = base_url(&headers);
    let mut objects = Vec::with_capacity(body.objects.len());
    for o in body.objects {
        let error = |code: u16, message: String| json!({"oid": o.oid, "size": o.size, "error": {"code": code, "message": message}});
        if !crate::gate::store::is_sha256_hex(&o.oid) {
            objects.push(error(422, format!("`{}` is not a SHA-256 oid", o.oid)));
            continue;
        }
        if o.size > limits.max_file_size {
            let cap = limits.max_file_size;
            objects.push(error(
                413,
                format!("{} bytes; the cap on a file is {cap}", o.size),
            ));
            continue;
        }
        match api
            .uploads
            .has_object(namespace, &o.oid, o.size, &holdings, now)
            .await
        {
            Ok(true) => {
                objects.push(json!({"oid": o.oid, "size": o.size}));
                continue;
            }
            Ok(false) => {}
            Err(e) => return upload_answer(&e, "look up the namespace's uploads"),
        }
        let mut secret = [0u8; 32];
        if getrandom::fill(&mut secret).is_err() {
            return hub_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Random",
                "no randomness",
                None,
            );
        }
        let ticket = hex::encode(secret);
        let record = Ticket {
            repo: repo.clone(),
            oid: o.oid.clone(),
            size: o.size,
            token: w.token.name.clone(),
            expires_at: now + TICKET_LIFETIME,
        };
        let id = hex::encode(Sha256::digest(ticket.as_bytes()));
        let json = serde_json::to_vec(&record).unwrap_or_default();
        if let Err(e) = api
            .gate
            .store
            .put_meta(MetaKind::UploadTickets, &id, &json)
            .await
        {
            return store_answer(&e, "keep the upload ticket");
        }
        objects.push(json!({
            "oid": o.oid,
            "size": o.size,
            "authenticated": true,
            "actions": {
                "upload": {
                    "href": format!("{base}/api/uploads/lfs/{ticket}"),
                    "expires_in": TICKET_LIFETIME,
                },
                "verify": {
                    "href": format!("{base}/{repo}.git/info/lfs/objects/verify"),
                    "expires_in": TICKET_LIFETIME,
                },
            },
        }));
    }
    lfs_json(
        StatusCode::OK,
        json!({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}),
    )
}

/// The bytes of one object, to the URL its batch answer gave.
async fn lfs_put(
    State(api): State<Api>,
    UrlPath(ticket): UrlPath<String>,
    req: Request,
) -> Response {
    let now = api.now();
    let id = hex::encode(Sha256::digest(ticket.as_bytes()));
    let store = api.gate.store.clone();
    let record = match store.meta(MetaKind::UploadTickets, &id).await {
        Ok(Some(b)) => serde_json::from_slice::<Ticket>(&b).ok(),
        Ok(None) => None,
        Err(e) => return store_answer(&e, "read the upload ticket"),
    };
    let Some(t) = record.filter(|t| t.expires_at > now) else {
        return hub_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this upload URL is unknown or expired; ask the LFS batch API again",
            None,
        );
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len != t.size
    {
        return bad_request(&format!(
            "object {}: Content-Length {len}, the batch request declared {}",
            t.oid, t.size
        ));
    }
    let Ok(oid) = <[u8; 32]>::try_from(hex::decode(&t.oid).unwrap_or_default()) else {
        return bad_request("the ticket names no SHA-256");
    };
    let body: ByteStream = Box::pin(
        req.into_body()
            .into_data_stream()
            .map_err(std::io::Error::other),
    );
    let namespace = namespace_of(&t.repo).to_string();
    match api
        .uploads
        .put_object(&namespace, oid, t.size, body, now)
        .await
    {
        Ok(_) => {
            let _ = store.remove_meta(MetaKind::UploadTickets, &id).await;
            audit(&api, &t.repo, "", &format!("lfs:{}", t.oid), &t.token, 200);
            StatusCode::OK.into_response()
        }
        Err(e) => {
            let message = format!("object {}: {e}", t.oid);
            audit(&api, &t.repo, "", &message, &t.token, e.status().as_u16());
            match e {
                UploadError::Store(_) | UploadError::Object(super::PendingError::Store(_)) => {
                    upload_answer(&e, "receive the object")
                }
                _ => hub_error(e.status(), "UploadRefused", &message, None),
            }
        }
    }
}

async fn lfs_verify(
    State(api): State<Api>,
    UrlPath((org, name)): UrlPath<(String, String)>,
    req: Request,
) -> Response {
    let Some(repo) = lfs_repo(&org, &name) else {
        return bad_request("LFS routes are /ORG/NAME.git/info/lfs/...");
    };
    let headers = req.headers().clone();
    if let Err(r) = api.writer_for(&headers, peer(&req), &repo).await {
        return r;
    }
    let o: BatchObject = match json_body(req, 64 << 10).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let namespace = namespace_of(&repo);
    let holdings = match api.uploads.holdings(namespace).await {
        Ok(h) => h,
        Err(e) => return upload_answer(&e, "read the namespace's revisions"),
    };
    match api
        .uploads
        .has_object(namespace, &o.oid, o.size, &holdings, api.now())
        .await
    {
        Ok(true) => lfs_json(StatusCode::OK, json!({"oid": o.oid, "size": o.size})),
        Ok(false) => hub_error(
            StatusCode::NOT_FOUND,
            "ObjectNotFound",
            &format!("object {} of {} bytes was not received", o.oid, o.size),
            None,
        ),
        Err(e) => upload_answer(&e, "look up the namespace's uploads"),
    }
}

/// The commit: the resulting revision is judged like `weightgate admit`; admitted, it is
/// published and the client gets its id; refused, nothing is visible and the answer (403,
/// `X-Error-Code: CommitRefused`) carries the reason codes.
async fn commit(
    State(api): State<Api>,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
    req: Request,
) -> Response {
    let repo = format!("{org}/{name}");
    let headers = req.headers().clone();
    let w = match api.writer_for(&headers, peer(&req), &repo).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if req.uri().query().is_some_and(|q| q.contains("create_pr=1")) {
        return bad_request("this gate takes commits to branches, not pull requests");
    }
    if is_revision_id(&rev) || check_ref(&rev).is_err() {
        return bad_request(&format!("`{rev}` is not a branch name to commit to"));
    }
    let body = match tokio::time::timeout(
        COMMIT_BODY_TIMEOUT,
        axum::body::to_bytes(req.into_body(), MAX_COMMIT_BODY),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return hub_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BadRequest",
                &format!("commit body: {e} (at most {MAX_COMMIT_BODY} bytes)"),
                None,
            );
        }
        Err(_) => return hub_error(StatusCode::REQUEST_TIMEOUT, "Timeout", "commit body", None),
    };
    let parsed = match parse_commit(&body, api.uploads.limits().max_commit_files) {
        Ok(p) => p,
        Err(e) => return bad_request(&format!("commit: {e}")),
    };
    let lock = api.branch_lock(&repo, &rev);
    let _held = lock.lock().await;
    // A commit without `parentCommit` applies to whatever the branch is at: one that lost the
    // branch to another gate's commit is judged again on the new head. With one, the client
    // named the head it expects, and a moved branch is its conflict.
    let names_parent = parsed.iter().any(|l| {
        matches!(
            l,
            CommitLine::Header {
                parent_commit: Some(_)
            }
        )
    });
    let mut attempt = 1;
    let answer = loop {
        match judge_commit(&api, &repo, &rev, &w, parsed.clone(), &headers).await {
            Err(Judged::LostBranch(moved)) if !names_parent && attempt < COMMIT_ATTEMPTS => {
                tracing::info!(repo, branch = rev, attempt, why = %moved, "commit lost its branch; judging it again");
                attempt += 1;
            }
            Err(Judged::LostBranch(moved)) => break Err(branch_moved(&moved)),
            Err(Judged::Answer(r)) => break Err(r),
            Ok(ok) => break Ok(ok),
        }
    };
    let (status, what) = match &answer {
        Ok((_, revision)) => (200, revision.clone()),
        Err(r) => (r.status().as_u16(), String::new()),
    };
    audit(
        &api,
        &repo,
        &what,
        &format!("commit:{rev}"),
        &w.token.name,
        status,
    );
    match answer {
        Ok((r, _)) => r,
        Err(r) => r,
    }
}

/// How many times a commit without `parentCommit` is judged when other commits keep winning its
/// branch.
const COMMIT_ATTEMPTS: u32 = 3;

/// A commit not published: the answer to give, or the branch moved under it.
enum Judged {
    Answer(Response),
    LostBranch(StoreError),
}

impl From<Response> for Judged {
    fn from(r: Response) -> Self {
        Judged::Answer(r)
    }
}

/// The Hub's answer to a stale parent: 412, which `huggingface_hub` raises as an HTTP error
/// naming the conflict.
fn branch_moved(why: &dyn std::fmt::Display) -> Response {
    hub_error(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        &format!("A commit has happened since. Please refresh and try again. ({why})"),
        None,
    )
}

async fn judge_commit(
    api: &UploadApi,
    repo: &str,
    branch: &str,
    w: &Writer,
    lines: Vec<CommitLine>,
    headers: &HeaderMap,
) -> Result<(Response, String), Judged> {
    let store = api.gate.store.clone();
    let now = api.now();
    let namespace = namespace_of(repo);
    let current = match store.refs(repo).await {
        Ok(refs) => refs.into_iter().find(|(n, _)| n == branch).map(|(_, r)| r),
        Err(e) => return Err(store_answer(&e, "read the repository's refs").into()),
    };
    let parent = match &current {
        Some(rev) => match store.manifest(repo, rev).await {
            Ok(m) => m,
            Err(e) => return Err(store_answer(&e, "read the parent revision's record").into()),
        },
        None => None,
    };
    // The resulting file set: the parent's, then each line in order.
    let mut files: std::collections::BTreeMap<String, ObjectSource> = parent
        .iter()
        .flat_map(|p| &p.files)
        .map(|f| (f.path.clone(), ObjectSource::Held(f.clone())))
        .collect();
    let mut envelope = match &parent {
        Some(p) => match store.attestation(p).await {
            Ok(e) => Some(e),
            Err(e) => {
                return Err(store_answer(&e, "read the parent revision's attestation").into());
            }
        },
        None => None,
    };
    let holdings = match api.uploads.holdings(namespace).await {
        Ok(h) => h,
        Err(e) => return Err(upload_answer(&e, "read the namespace's revisions").into()),
    };
    for line in lines {
        match line {
            CommitLine::Header { parent_commit } => {
                if let Some(pc) = parent_commit
                    && current
                        .as_deref()
                        .is_none_or(|c| !c.starts_with(&pc) || pc.len() < 7)
                {
                    return Err(branch_moved(&format!(
                        "parentCommit {pc}, {branch} is at {}",
                        current.as_deref().unwrap_or("no commit")
                    ))
                    .into());
                }
            }
            CommitLine::DeletedFile { path } => {
                if path == ATTESTATION_FILE_NAME {
                    envelope = None;
                } else if files.remove(&path).is_none() {
                    return Err(bad_request(&format!(
                        "deletedFile {path}: not in {repo}@{branch}"
                    ))
                    .into());
                }
            }
            CommitLine::DeletedFolder { path } => {
                let prefix = format!("{}/", path.trim_end_matches('/'));
                files.retain(|p, _| !p.starts_with(&prefix));
            }
            CommitLine::File { path, content } => {
                if path == ATTESTATION_FILE_NAME {
                    envelope = Some(content);
                    continue;
                }
                refuse_signature_upload(&path).map_err(Judged::Answer)?;
                files.insert(path, ObjectSource::Inline(content));
            }
            CommitLine::LfsFile { path, oid, size } => {
                if path == ATTESTATION_FILE_NAME {
                    return Err(bad_request(&format!(
                        "{ATTESTATION_FILE_NAME} must be sent in the commit (uploadMode regular)"
                    ))
                    .into());
                }
                refuse_signature_upload(&path).map_err(Judged::Answer)?;
                let size = match size {
                    Some(s) => s,
                    None => match holdings.0.get(&oid) {
                        Some(f) => f.size,
                        None => 0,
                    },
                };
                match api
                    .uploads
                    .resolve(namespace, &oid, size, &holdings, now)
                    .await
                {
                    Ok(Some(src)) => files.insert(path, src),
                    Ok(None) => {
                        return Err(bad_request(&format!(
                            "lfsFile {path}: the bytes of {oid} ({size} bytes) never arrived \
                             (upload them through the LFS batch API first)"
                        ))
                        .into());
                    }
                    Err(e) => {
                        return Err(upload_answer(&e, "look up the namespace's uploads").into());
                    }
                };
            }
        }
    }
    let Some(envelope) = envelope else {
        return Err(Judged::Answer(hub_error(
            StatusCode::FORBIDDEN,
            "CommitRefused",
            &format!(
                "the revision has no {ATTESTATION_FILE_NAME}: every revision must carry an \
                 attestation covering exactly its files"
            ),
            None,
        )));
    };
    let committed: Vec<CommittedFile> = files
        .into_iter()
        .map(|(path, source)| CommittedFile {
            size: source.size(),
            path,
            source,
        })
        .collect();
    let policy = api.gate.policy();
    let req = CommitRequest {
        repo,
        ref_name: branch,
        ref_was: match current {
            Some(rev) => RefPrecondition::At(rev),
            None => RefPrecondition::Absent,
        },
        files: committed,
        envelope: &envelope,
        policy: &policy,
        now,
    };
    match admit_commit(store.as_ref(), &req).await {
        Ok(Admission::Admitted { record, .. }) => {
            tracing::info!(repo, revision = %record.revision, token = %w.token.name, "commit admitted");
            let url = format!("{}/{repo}/commit/{}", base_url(headers), record.revision);
            let body = json!({
                "success": true,
                "commitOid": record.revision,
                "commitUrl": url,
                "commitMessage": "",
                "hookOutput": "",
                "pullRequestUrl": null,
            });
            Ok((axum::Json(body).into_response(), record.revision))
        }
        Ok(Admission::Refused(d)) => {
            let message = format!(
                "weightgate refused the commit to {repo}@{branch}: {}",
                crate::render::refusal(&d)
            );
            let body = json!({ "error": message, "decision": d }).to_string();
            let mut r = (StatusCode::FORBIDDEN, body).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert("x-error-code", HeaderValue::from_static("CommitRefused"));
            if let Some(v) = header_safe(&message) {
                h.insert("x-error-message", v);
            }
            Err(r.into())
        }
        Err(StoreError::Source(e)) => Err(hub_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BadFile",
            &e.to_string(),
            None,
        )
        .into()),
        Err(e @ StoreError::RefMoved { .. }) => Err(Judged::LostBranch(e)),
        Err(StoreError::NotFound { location, why }) => Err(hub_error(
            StatusCode::CONFLICT,
            "Conflict",
            &format!("{location}: {why}; upload it again"),
            None,
        )
        .into()),
        Err(e) => Err(store_answer(&e, "stage and publish the revision").into()),
    }
}

/// `model.sig` beside an upload is not checked by the commit route yet: refused rather than
/// published unchecked.
#[allow(clippy::result_large_err)]
fn refuse_signature_upload(path: &str) -> Result<(), Response> {
    if path == OMS_SIGNATURE_FILE_NAME {
        return Err(hub_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unsupported",
            &format!(
                "{OMS_SIGNATURE_FILE_NAME}: this gate does not take model signatures by upload; admit with `weightgate admit --oms-*`"
            ),
            None,
        ));
    }
    Ok(())
}
