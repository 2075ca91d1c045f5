//! The CAS routes `hf_xet` uploads through, and the `xet-write-token` route that hands it the
//! CAS URL and an access token (Xet Protocol Specification 1.1, "CAS API" and
//! "Authentication"; observed with hf_xet 1.8 in docs/gate.md):
//!
//! - `GET /api/models/{org}/{name}/xet-write-token/{rev}`: the Hub token must allow writing the
//!   repository; answers `X-Xet-Cas-Url`, `X-Xet-Access-Token`, `X-Xet-Token-Expiration` and
//!   the same as JSON (`casUrl`, `accessToken`, `exp`), which hf_xet reads.
//! - `GET {cas}/v1/chunks/default/{hash}` (global dedupe): always 404. Answering from any
//!   other namespace's uploads would tell one tenant whether another's bytes exist; the
//!   client's own shard cache still deduplicates what it uploaded before.
//! - `POST {cas}/v1/xorb-grants/default/{hash}` and `POST {cas}/v2/shards`: 404, so the client
//!   uses the direct routes below, as it does against a CAS without them.
//! - `POST {cas}/v1/xorbs/default/{hash}`: every chunk decoded and hashed, the xorb hash
//!   checked, then stored in the token's namespace if it fits the namespace's staging cap
//!   ([`super::staging`]); `HEAD` tells whether that namespace has it.
//! - `POST {cas}/v1/shards`: the shard checked against the namespace's xorbs, each file it
//!   describes that the namespace does not hold reconstructed into the upload area under its
//!   SHA-256, then a shard of those files stored.
//!
//! The CAS URL is `{the gate's URL}/xet-cas`; every CAS route needs an access token, which
//! reaches only its namespace's xorbs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::access::{AccessTokens, Grant, TokenRefusal};
use super::buffers::{Lease, XorbBuffers};
use super::hash::XetHash;
use super::reconstruct::{FileBody, changed_chunk, file_body};
use super::shard::{self, MAX_SHARD_LEN};
use super::xorb::{self, ChunkEntry, MAX_XORB_LEN};
use crate::gate::store::{Store, StoreError, XetObjectKind};

/// Where the CAS routes live under the gate's URL.
pub const CAS_PATH: &str = "/xet-cas";

/// Who may write a repository: the Hub token check of the write routes.
#[async_trait::async_trait]
pub trait WriteAuthority: Send + Sync {
    /// The namespace (`ORG`) a request with `headers` may write `repo` in, or the answer
    /// refusing it (401 without a valid token, 403 outside the token's namespaces).
    async fn authorize_write(
        &self,
        headers: &HeaderMap,
        peer: Option<std::net::IpAddr>,
        repo: &str,
    ) -> Result<String, Response>;
}

/// Where reconstructed files go: the upload area a commit resolves its `lfsFile` lines from.
#[async_trait::async_trait]
pub trait FileSink: Send + Sync {
    /// True if `namespace` already holds the file `sha256` of `size` bytes for a commit.
    async fn has_file(
        &self,
        namespace: &str,
        sha256: &[u8; 32],
        size: u64,
        now: i64,
    ) -> Result<bool, Refusal>;

    /// Refuses (507, naming the cap) if `size` more bytes would take `namespace` past its
    /// staging cap.
    async fn check_room(&self, namespace: &str, size: u64) -> Result<(), Refusal>;

    /// Receives `body` as the file `sha256` of `size` bytes for `namespace`, hashing it as
    /// it is written; kept only if the bytes are that size and digest (and fit the cap).
    async fn put_file(
        &self,
        namespace: &str,
        sha256: [u8; 32],
        size: u64,
        body: FileBody,
        now: i64,
    ) -> Result<(), Refusal>;
}

/// A CAS request refused: the status and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }

    /// The refusal naming the shard's file it concerns.
    fn for_file(self, file: &shard::FileInfo, sha256: &[u8; 32]) -> Refusal {
        Refusal {
            status: self.status,
            message: format!(
                "file {} (SHA-256 {}): {}",
                file.hash,
                hex::encode(sha256),
                self.message
            ),
        }
    }
}

/// The refusal of a store error met while trying to do `failed`: its status, and a message
/// naming the operation, never a path ([`crate::gate::upload::store_failure`]).
pub(crate) fn store_refusal(failed: &'static str) -> impl FnOnce(StoreError) -> Refusal {
    move |e| {
        let (status, message) = crate::gate::upload::store_failure(&e, failed);
        Refusal::new(status, message)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        store_refusal("read or write the namespace's Xet objects")(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // The Hub's error shape: `huggingface_hub` prints `X-Error-Message`; hf_xet the body.
        let mut response =
            (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if let Ok(v) = HeaderValue::from_str(&self.message.replace(['\r', '\n'], " ")) {
            response.headers_mut().insert("x-error-message", v);
        }
        response
    }
}

/// The Xet CAS of one store.
pub struct XetCas {
    store: Arc<dyn Store>,
    files: Arc<dyn FileSink>,
    authority: Arc<dyn WriteAuthority>,
    tokens: AccessTokens,
    buffers: XorbBuffers,
    clock: fn() -> i64,
}

impl std::fmt::Debug for XetCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XetCas")
            .field("store", &self.store.location())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl XetCas {
    pub fn new(
        store: Arc<dyn Store>,
        files: Arc<dyn FileSink>,
        authority: Arc<dyn WriteAuthority>,
    ) -> XetCas {
        XetCas {
            store: store.clone(),
            files,
            authority,
            tokens: AccessTokens::new(store.clone()),
            // Two buffers per bulk thread stay: a xorb parsed on each and the next received
            // behind it (hf_xet 1.8 sends up to 4 at once here: 2 cores).
            buffers: XorbBuffers::new(2 * crate::gate::bulk::threads()),
            clock: unix_now,
        }
    }

    async fn grant(&self, headers: &HeaderMap) -> Result<Grant, Refusal> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.tokens
            .check(authorization, (self.clock)())
            .await
            .map_err(|e| match e {
                TokenRefusal::Store(e) => Refusal::new(
                    crate::gate::upload::store_status(&e),
                    "the Xet access tokens cannot be read now; try again later".to_string(),
                ),
                e => Refusal::new(StatusCode::UNAUTHORIZED, e.to_string()),
            })
    }

    /// Checks and stores a xorb for the token's namespace; `Ok(false)` if it already had it.
    /// A xorb new to the namespace must fit its staging cap; one it already holds costs
    /// nothing more (whoever else holds the same bytes: each namespace stores its own).
    /// A xorb is checked even then: bytes that are not what they claim are refused, not
    /// silently dropped; and both its objects are put again, which refreshes their age, so
    /// `store gc` does not remove what this upload's shard is about to name.
    pub(crate) async fn put_xorb(
        &self,
        namespace: &str,
        claimed: XetHash,
        body: Lease,
    ) -> Result<bool, Refusal> {
        let hex = claimed.to_hex();
        let held = self
            .store
            .xet_object(namespace, XetObjectKind::XorbIndex, &hex)
            .await
            .map_err(store_refusal("read the namespace's xorbs"))?
            .is_some();
        let (body, chunks) = crate::gate::bulk::run(move || {
            let chunks = xorb::parse_claimed(&body, claimed);
            (body, chunks)
        })
        .await
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let chunks = chunks.map_err(|e| Refusal::bad(format!("xorb {claimed}: {e}")))?;
        let index = xorb::encode_index(&chunks);
        if !held {
            self.files
                .check_room(namespace, (body.len() + index.len()) as u64)
                .await?;
        }
        // The xorb first, its index last: an index means its xorb is there and was checked.
        self.store
            .put_xet_object(namespace, XetObjectKind::Xorb, &hex, &body)
            .await
            .map_err(store_refusal("store the xorb"))?;
        self.store
            .put_xet_object(namespace, XetObjectKind::XorbIndex, &hex, &index)
            .await
            .map_err(store_refusal("store the xorb's chunk index"))
    }

    async fn chunk_index(
        &self,
        namespace: &str,
        xorb: &XetHash,
    ) -> Result<Option<Vec<ChunkEntry>>, Refusal> {
        let hex = xorb.to_hex();
        let Some(bytes) = self
            .store
            .xet_object(namespace, XetObjectKind::XorbIndex, &hex)
            .await?
        else {
            return Ok(None);
        };
        xorb::decode_index(&bytes).map(Some).ok_or_else(|| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the stored chunk index of xorb {xorb} is damaged"),
            )
        })
    }

    /// Reconstructs `file`, whose SHA-256 the shard declares as `sha256`, into the upload
    /// area. If the upload area refuses the bytes themselves, a stored xorb that changed since
    /// its upload is named (the gate's error, 500) before a SHA-256 the shard declared wrongly
    /// (the client's, 400).
    async fn rebuild_file(
        &self,
        namespace: &str,
        file: &shard::FileInfo,
        sha256: [u8; 32],
        indexes: Arc<HashMap<XetHash, Vec<ChunkEntry>>>,
        now: i64,
    ) -> Result<(), Refusal> {
        let size = file.size();
        let body = file_body(
            self.store.clone(),
            namespace,
            file,
            indexes.clone(),
            &self.buffers,
        );
        let Err(refused) = self
            .files
            .put_file(namespace, sha256, size, body, now)
            .await
        else {
            return Ok(());
        };
        // A cap, a timeout or an unreachable store refused the file, not its bytes.
        let bytes_refused = matches!(
            refused.status,
            StatusCode::BAD_REQUEST | StatusCode::INTERNAL_SERVER_ERROR
        );
        if !bytes_refused {
            return Err(refused.for_file(file, &sha256));
        }
        let changed = changed_chunk(&*self.store, namespace, file, indexes, &self.buffers);
        let refused = match changed.await {
            Ok(Some(changed)) => Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reconstruction: {changed}"),
            ),
            Ok(None) => refused,
            Err(e) => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        Err(refused.for_file(file, &sha256))
    }

    /// Checks a shard against the namespace's xorbs, reconstructs each file it describes that
    /// the namespace does not hold yet into the upload area, then keeps a shard of the files
    /// it reconstructed (and the xorbs their terms name). `Ok(false)` if that shard was
    /// already stored, or there was none to keep.
    ///
    /// Only reconstructed files are kept: for a file already held, nothing checked that the
    /// shard's SHA-256 is the one of its chunks, and a kept shard is what makes its xorbs
    /// count as needed (for the staging cap and for `store gc`) once a revision names that
    /// SHA-256.
    pub async fn put_shard(&self, namespace: &str, body: &[u8]) -> Result<bool, Refusal> {
        let parsed = shard::parse(body).map_err(|e| Refusal::bad(format!("shard: {e}")))?;
        let mut indexes = HashMap::new();
        let mut named: Vec<XetHash> = parsed.xorbs.iter().map(|x| x.hash).collect();
        for file in &parsed.files {
            named.extend(file.terms.iter().map(|t| t.xorb));
        }
        for xorb in named {
            if !indexes.contains_key(&xorb)
                && let Some(index) = self.chunk_index(namespace, &xorb).await?
            {
                // Put again to refresh its age: gc keeps it while the files are rebuilt.
                self.store
                    .put_xet_object(
                        namespace,
                        XetObjectKind::XorbIndex,
                        &xorb.to_hex(),
                        &xorb::encode_index(&index),
                    )
                    .await
                    .map_err(store_refusal("refresh a xorb's chunk index"))?;
                indexes.insert(xorb, index);
            }
        }
        parsed
            .check(|x| indexes.get(x).cloned())
            .map_err(|e| Refusal::bad(format!("shard: {e}")))?;
        // Each SHA-256 once: two rebuilds of one file at once would race for its one place.
        let now = (self.clock)();
        let mut unique = Vec::with_capacity(parsed.files.len());
        let mut seen = std::collections::HashSet::new();
        for file in &parsed.files {
            let sha256 = file.sha256.ok_or_else(|| {
                Refusal::bad(format!(
                    "shard: file {} has no SHA-256 (metadata extension); a commit names files \
                     by SHA-256",
                    file.hash
                ))
            })?;
            if seen.insert(sha256) {
                unique.push((file, sha256));
            }
        }
        use futures::StreamExt as _;
        // The files the namespace does not hold yet, in the shard's order.
        let lookups: Vec<_> = unique
            .iter()
            .map(|(file, sha256)| self.files.has_file(namespace, sha256, file.size(), now))
            .collect();
        let held: Vec<Result<bool, Refusal>> = futures::stream::iter(lookups)
            .buffered(crate::gate::bulk::threads())
            .collect()
            .await;
        let mut files = Vec::with_capacity(unique.len());
        for (file, held) in unique.into_iter().zip(held) {
            if !held? {
                files.push(file);
            }
        }
        if files.is_empty() {
            return Ok(false);
        }
        let kept = shard::build(
            &files.iter().map(|(f, _)| (*f).clone()).collect::<Vec<_>>(),
            &kept_xorbs(&parsed, files.iter().map(|(f, _)| *f)),
        );
        // The shard first: a full namespace refuses before any file is rebuilt.
        self.files.check_room(namespace, kept.len() as u64).await?;
        let indexes = Arc::new(indexes);
        // One file per core at once: the client waits for this answer before its commit.
        let rebuilds: Vec<_> = files
            .into_iter()
            .map(|(file, sha256)| self.rebuild_file(namespace, file, sha256, indexes.clone(), now))
            .collect();
        // One file per bulk thread, so hashing one file's bytes does not wait for another's.
        let mut rebuilt =
            futures::stream::iter(rebuilds).buffer_unordered(crate::gate::bulk::threads());
        while let Some(done) = rebuilt.next().await {
            done?;
        }
        let shard_id = XetHash(*blake3::hash(&kept).as_bytes()).to_hex();
        self.store
            .put_xet_object(namespace, XetObjectKind::Shard, &shard_id, &kept)
            .await
            .map_err(store_refusal("store the shard"))
    }
}

/// The shard's xorb-section entries for the xorbs `files`' terms name.
fn kept_xorbs<'a>(
    parsed: &shard::Shard,
    files: impl Iterator<Item = &'a shard::FileInfo>,
) -> Vec<shard::XorbInfo> {
    let used: std::collections::HashSet<XetHash> =
        files.flat_map(|f| f.terms.iter().map(|t| t.xorb)).collect();
    parsed
        .xorbs
        .iter()
        .filter(|x| used.contains(&x.hash))
        .cloned()
        .collect()
}

/// The CAS URL of a request's gate: its `Host`, over `https` when a proxy says so.
fn cas_url(headers: &HeaderMap) -> Result<String, Refusal> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()) && !h.contains('/'))
        .ok_or_else(|| Refusal::bad("the request has no usable Host header"))?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}{CAS_PATH}"))
}

async fn write_token(
    State(cas): State<Arc<XetCas>>,
    UrlPath((org, name, _rev)): UrlPath<(String, String, String)>,
    request: Request,
) -> Response {
    let repo = format!("{org}/{name}");
    let peer = request
        .extensions()
        .get::<crate::gate::listener::PeerAddr>()
        .map(|p| p.0.ip());
    let headers = request.headers();
    let namespace = match cas.authority.authorize_write(headers, peer, &repo).await {
        Ok(ns) => ns,
        Err(refused) => return refused,
    };
    let url = match cas_url(headers) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let (token, grant) = match cas.tokens.issue(&namespace, &repo, (cas.clock)()).await {
        Ok(t) => t,
        Err(why) => return Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    };
    let body = json!({ "casUrl": url, "accessToken": token, "exp": grant.expires_at });
    let mut response = axum::Json(body).into_response();
    let h = response.headers_mut();
    for (name, value) in [
        ("x-xet-cas-url", url),
        ("x-xet-access-token", token),
        ("x-xet-token-expiration", grant.expires_at.to_string()),
    ] {
        h.insert(name, HeaderValue::from_str(&value).expect("ASCII"));
    }
    response
}

fn xorb_key(prefix: &str, hash: &str) -> Result<XetHash, Refusal> {
    if prefix != "default" {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no xorb prefix `{prefix}` (only `default`)"),
        ));
    }
    XetHash::from_hex(hash).ok_or_else(|| {
        Refusal::bad(format!(
            "`{hash}` is not a Xet hash (64 lowercase hex digits)"
        ))
    })
}

/// How long a xorb or shard body may wait for its next bytes before the upload is abandoned.
const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The whole body into `into`, at most `cap` bytes, each part arriving within
/// [`BODY_IDLE_TIMEOUT`]. Each part is copied as it arrives, while it is in the cache, and
/// hyper's buffer released at once (hyper then reads into the same memory again).
async fn read_body(
    request: Request,
    cap: usize,
    what: &str,
    into: &mut Lease,
) -> Result<(), Refusal> {
    use futures::StreamExt as _;
    let too_large = |len: u64| {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} of {len} bytes or more, more than the {cap} accepted"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared
        && len > cap as u64
    {
        return Err(too_large(len));
    }
    // Address space for the declared length, so the buffer does not move as it grows; its
    // pages are touched only by bytes that arrive.
    into.clear();
    into.reserve(declared.unwrap_or(0) as usize);
    let mut len = 0usize;
    let mut stream = request.into_body().into_data_stream();
    loop {
        let part = tokio::time::timeout(BODY_IDLE_TIMEOUT, stream.next())
            .await
            .map_err(|_| {
                Refusal::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("{what}: no bytes for {BODY_IDLE_TIMEOUT:?}; the upload was abandoned"),
                )
            })?;
        match part {
            None => break,
            Some(Err(e)) => {
                return Err(Refusal::bad(format!(
                    "{what}: the body could not be read whole ({e})"
                )));
            }
            Some(Ok(bytes)) => {
                if len + bytes.len() > cap {
                    return Err(too_large((len + bytes.len()) as u64));
                }
                len += bytes.len();
                into.extend_from_slice(&bytes);
            }
        }
    }
    Ok(())
}

async fn post_xorb(
    State(cas): State<Arc<XetCas>>,
    UrlPath((prefix, hash)): UrlPath<(String, String)>,
    request: Request,
) -> Result<Response, Refusal> {
    let grant = cas.grant(request.headers()).await?;
    let claimed = xorb_key(&prefix, &hash)?;
    let mut body = cas.buffers.take();
    read_body(request, MAX_XORB_LEN, "xorb", &mut body).await?;
    let bytes = body.len();
    let inserted = cas.put_xorb(&grant.namespace, claimed, body).await?;
    tracing::info!(namespace = %grant.namespace, xorb = %claimed, bytes, inserted, "xet: xorb received");
    Ok(axum::Json(json!({ "was_inserted": inserted })).into_response())
}

async fn head_xorb(
    State(cas): State<Arc<XetCas>>,
    UrlPath((prefix, hash)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, Refusal> {
    let grant = cas.grant(&headers).await?;
    let xorb = xorb_key(&prefix, &hash)?;
    Ok(match cas.chunk_index(&grant.namespace, &xorb).await? {
        Some(_) => StatusCode::OK,
        None => StatusCode::NOT_FOUND,
    })
}

async fn post_shard(State(cas): State<Arc<XetCas>>, request: Request) -> Result<Response, Refusal> {
    let grant = cas.grant(request.headers()).await?;
    let mut body = cas.buffers.take();
    read_body(request, MAX_SHARD_LEN, "shard", &mut body).await?;
    let stored = cas.put_shard(&grant.namespace, &body[..]).await?;
    tracing::info!(namespace = %grant.namespace, bytes = body.len(), "xet: shard received");
    // 1: "sync performed", 0: "exists" (the client treats both as success).
    Ok(axum::Json(json!({ "result": u8::from(stored) })).into_response())
}

/// Routes the client should find absent (it falls back), after the token check. The body is
/// read first (up to a shard's size, for at most [`DRAIN_LIMIT`]): answered while still
/// sending one, `hf_xet` meets a broken pipe instead of the 404 and retries the v2 shard
/// route after a back-off of up to several seconds before it falls back to v1.
async fn absent(State(cas): State<Arc<XetCas>>, request: Request) -> Result<Response, Refusal> {
    use futures::StreamExt as _;
    cas.grant(request.headers()).await?;
    let mut body = request.into_body().into_data_stream();
    let drain = async {
        let mut read = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > MAX_SHARD_LEN {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_LIMIT, drain).await;
    Ok((StatusCode::NOT_FOUND, Body::empty()).into_response())
}

/// Longest an absent route reads a body it discards.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The write-token route and the CAS routes, to merge into the gate's router.
pub fn router(cas: Arc<XetCas>) -> Router {
    let v1 = Router::new()
        .route("/v1/chunks/{prefix}/{hash}", get(absent))
        .route("/v1/xorb-grants/{prefix}/{hash}", post(absent))
        .route("/v1/xorbs/{prefix}/{hash}", post(post_xorb).head(head_xorb))
        .route("/v1/shards", post(post_shard))
        .route("/v2/shards", post(absent));
    Router::new()
        .route(
            "/api/models/{org}/{name}/xet-write-token/{rev}",
            get(write_token),
        )
        .nest(CAS_PATH, v1)
        .with_state(cas)
}
