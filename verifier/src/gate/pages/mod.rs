//! Model pages for people, server-rendered HTML with no script: `GET /` lists the repositories,
//! `GET /ORG/NAME` and `/ORG/NAME/tree/REV` show one revision with the decision for the
//! requester's destination and one the visitor picks. Only a request that asks for HTML gets a
//! page ([`negotiation`]); everything shown comes from the gate's cached decisions and the
//! once-decoded claims ([`facts`]), and a refused revision shows what its 451 shows.

mod compute_axis;
mod facts;
mod html;
mod negotiation;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequestParts, Path as UrlPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use weightgate_schemas::country::normalise_destination;

use super::decision::{DecideError, Gate, LookupError, Verdict};
use super::store::RevisionRecord;
use crate::policy::Policy;
use facts::{ClaimCache, ClaimError, ClaimFacts};
use negotiation::{not_a_page, page_response, wants_page};

/// The one stylesheet pages load (the Hub serves its own assets under `/front/`).
pub const STYLESHEET_PATH: &str = "/front/weightgate.css";
const STYLESHEET: &str = include_str!("weightgate.css");
/// The pages' icon (browsers ask for one; a missing icon is an error in their console).
pub const ICON_PATH: &str = "/front/weightgate.svg";
const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
                    <rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#1f3f73\"/>\
                    <path d=\"M4 8l3 3 5-6\" stroke=\"#fff\" stroke-width=\"2\" fill=\"none\"/></svg>";

/// Repositories listed on `/` at most.
const MAX_LISTED: usize = 500;
/// Refs listed on a revision page at most.
const MAX_REFS: usize = 100;
/// How long a base model's place in the store is remembered.
const BASE_LINK_SECONDS: i64 = 10;

/// A repository and one of its revision ids.
type Location = (String, String);

struct Pages {
    gate: Arc<Gate>,
    claims: ClaimCache,
    rendered: Mutex<RenderedPages>,
    /// Where the gate holds a base model, by its root digest: (when looked up, repo and revision).
    base_links: Mutex<HashMap<String, (i64, Option<Location>)>>,
}

/// Pages rendered in the current second, by everything they depend on in the request, with
/// the policy they were decided under: decisions are cached per second too, so within one
/// second and one policy a page is the same, and the same page asked a thousand times in that
/// second is rendered once.
#[derive(Default)]
struct RenderedPages {
    second: i64,
    pages: HashMap<String, (Arc<Policy>, axum::body::Bytes)>,
}

/// Pages kept per second at most.
const MAX_RENDERED: usize = 1024;

impl Pages {
    fn rendered(&self, key: &str) -> Option<axum::body::Bytes> {
        let now = self.gate.now();
        let policy = self.gate.policy();
        let r = lock(&self.rendered);
        match r.pages.get(key) {
            Some((p, body)) if r.second == now && Arc::ptr_eq(p, &policy) => Some(body.clone()),
            _ => None,
        }
    }

    /// Keeps `body`, rendered under `policy` during `second`, for the rest of that second.
    fn keep(&self, key: String, second: i64, policy: Arc<Policy>, body: axum::body::Bytes) {
        let mut r = lock(&self.rendered);
        if r.second != second {
            r.second = second;
            r.pages.clear();
        }
        if r.pages.len() < MAX_RENDERED {
            r.pages.insert(key, (policy, body));
        }
    }
}

/// The page routes, to merge into the gate's router.
pub fn routes<S>(gate: Arc<Gate>) -> Router<S> {
    let pages = Arc::new(Pages {
        gate,
        claims: ClaimCache::default(),
        rendered: Mutex::default(),
        base_links: Mutex::default(),
    });
    Router::new()
        .route("/", any(index))
        .route(STYLESHEET_PATH, get(|| asset(STYLESHEET, "text/css")))
        .route(ICON_PATH, get(|| asset(ICON, "image/svg+xml")))
        .route("/{org}/{name}", any(repo_page))
        .route("/{org}/{name}/tree/{rev}", any(revision_page))
        .with_state(pages)
}

/// A static asset of the pages.
async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// `?q=` (part of the name) and `?decision=allowed|refused` on `/`; `?destination=CC` on a
/// revision page.
#[derive(serde::Deserialize, Default)]
struct PageQuery {
    q: Option<String>,
    decision: Option<String>,
    destination: Option<String>,
}

/// The destination a request declares, as the Hub API reads it.
fn requester_destination(g: &Gate, headers: &HeaderMap) -> Option<String> {
    super::hub_api::destination(g, headers)
}

/// The destination the visitor picked, normalised as a header would be; none when empty.
fn picked_destination(q: &PageQuery) -> Option<String> {
    q.destination
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| normalise_destination(d).to_string())
}

/// A page request's parts, or the answer for a request that is not one: negotiation comes
/// before any extractor, so a non-browser request gets the empty 404 whatever its path or query.
#[allow(clippy::result_large_err)]
fn page_request(req: Request) -> Result<(Parts, PageQuery), Response> {
    if !wants_page(req.method(), req.headers()) {
        return Err(not_a_page());
    }
    let (parts, _) = req.into_parts();
    // An unreadable query is no filter, not an error.
    let query = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    Ok((parts, query))
}

/// The path's captures, or a page saying the URL is not a repository's.
async fn captures<T>(parts: &mut Parts, p: &Arc<Pages>) -> Result<T, Response>
where
    T: serde::de::DeserializeOwned + Send,
{
    UrlPath::<T>::from_request_parts(parts, p)
        .await
        .map(|UrlPath(t)| t)
        .map_err(|_| error_page(StatusCode::NOT_FOUND, "No such page on this gate."))
}

async fn index(State(p): State<Arc<Pages>>, req: Request) -> Response {
    let (parts, query) = match page_request(req) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let headers = &parts.headers;
    let g = &p.gate;
    let destination = requester_destination(g, headers);
    let key = format!("/\n{destination:?}\n{:?}\n{:?}", query.q, query.decision);
    if let Some(body) = p.rendered(&key) {
        return page_response(StatusCode::OK, body);
    }
    let (second, policy) = (g.now(), g.policy());
    let repos = match g.store.repos().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the repositories");
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "The store cannot be read.");
        }
    };
    let wanted = query.q.as_deref().map(str::trim).unwrap_or("");
    let needle = wanted.to_ascii_lowercase();
    let only = match query.decision.as_deref() {
        Some("allowed") => Some(true),
        Some("refused") => Some(false),
        _ => None,
    };
    let matching: Vec<String> = repos
        .into_iter()
        .filter(|r| r.to_ascii_lowercase().contains(&needle))
        .collect();
    let mut rows = Vec::new();
    for repo in matching.iter().take(MAX_LISTED) {
        let refs = match g.store.refs(repo).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(repo, error = %e, "cannot read the refs");
                continue;
            }
        };
        let Some((ref_name, _)) = refs
            .iter()
            .find(|(n, _)| n == "main")
            .or_else(|| refs.first())
        else {
            continue;
        };
        let Ok(m) = g.record(repo, ref_name).await else {
            continue;
        };
        let allowed = match g.decide_cached(m.clone(), destination.clone()).await {
            Ok(v) => Some(v.decision.allowed),
            Err(e) => {
                tracing::error!(repo, error = %e, "cannot decide");
                None
            }
        };
        if only.is_some() && only != allowed {
            continue;
        }
        rows.push(html::RepoRow {
            repo: repo.clone(),
            ref_name: ref_name.clone(),
            revision: m.revision.clone(),
            admitted_at: m.admitted_at,
            allowed,
        });
    }
    let view = html::IndexView {
        rows,
        more: matching.len().saturating_sub(MAX_LISTED),
        query: wanted,
        decision: query.decision.as_deref().unwrap_or(""),
        destination: destination.as_deref(),
    };
    let body = axum::body::Bytes::from(html::index(&view).into_string());
    p.keep(key, second, policy, body.clone());
    page_response(StatusCode::OK, body)
}

async fn repo_page(State(p): State<Arc<Pages>>, req: Request) -> Response {
    let (mut parts, query) = match page_request(req) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (org, name) = match captures::<(String, String)>(&mut parts, &p).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    revision(&p, &parts.headers, &format!("{org}/{name}"), "main", &query).await
}

async fn revision_page(State(p): State<Arc<Pages>>, req: Request) -> Response {
    let (mut parts, query) = match page_request(req) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (org, name, rev) = match captures::<(String, String, String)>(&mut parts, &p).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    revision(&p, &parts.headers, &format!("{org}/{name}"), &rev, &query).await
}

async fn revision(
    p: &Pages,
    headers: &HeaderMap,
    repo: &str,
    rev: &str,
    query: &PageQuery,
) -> Response {
    let g = &p.gate;
    let destination = requester_destination(g, headers);
    let picked = picked_destination(query);
    let origin = origin(headers);
    let key = format!("{repo}\n{rev}\n{destination:?}\n{picked:?}\n{origin}");
    if let Some(body) = p.rendered(&key) {
        return page_response(StatusCode::OK, body);
    }
    let (second, policy) = (g.now(), g.policy());
    let m = match g.record(repo, rev).await {
        Ok(m) => m,
        Err(LookupError::RepoNotFound) => {
            return error_page(StatusCode::NOT_FOUND, "No such repository on this gate.");
        }
        Err(LookupError::RevisionNotFound) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such revision of this repository.",
            );
        }
        Err(LookupError::Store(e)) => {
            tracing::error!(repo, revision = rev, error = %e, "cannot read the revision");
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "The store cannot be read.");
        }
    };
    let verdict = match decide(g, &m, destination.clone()).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let picked_verdict = match &picked {
        Some(d) if Some(d) != destination.as_ref() => match decide(g, &m, picked.clone()).await {
            Ok(v) => Some(v),
            Err(r) => return r,
        },
        Some(_) => Some(verdict.clone()),
        None => None,
    };
    // A refused revision's page shows what its 451 shows: the decision, and the file listing
    // the tree gives. The claims behind it (inputs, references, grants, lineage) only when
    // the revision would be served to this requester.
    let claims = if verdict.decision.allowed {
        match claims_of(p, &m).await {
            Ok(c) => Some(c),
            Err(r) => return r,
        }
    } else {
        None
    };
    let base_link = match claims
        .as_ref()
        .and_then(|c| c.statement.compute.components.base_model.as_ref())
    {
        Some(base) => {
            let envelope = base.attestation_sha256.as_ref().map(|d| d.to_hex());
            base_location(p, &base.root_sha256.to_hex(), envelope.as_deref()).await
        }
        None => None,
    };
    let mut revisions = Vec::new();
    match g.store.refs(repo).await {
        Ok(refs) => {
            for (name, id) in refs.into_iter().take(MAX_REFS) {
                let admitted_at = g.record(repo, &id).await.ok().map(|r| r.admitted_at);
                revisions.push(html::RefRow {
                    name,
                    revision: id,
                    admitted_at,
                });
            }
        }
        Err(e) => tracing::error!(repo, error = %e, "cannot read the refs"),
    }
    let view = html::RevisionView {
        repo,
        rev_asked: rev,
        record: &m,
        verdict: &verdict,
        destination: destination.as_deref(),
        destination_header: policy.destination_header.as_deref(),
        picked: picked.as_deref().zip(picked_verdict.as_deref()),
        claims: claims.as_deref(),
        base_link: base_link.as_ref(),
        revisions: &revisions,
        policy: &policy,
        origin,
    };
    let body = axum::body::Bytes::from(html::revision(&view).into_string());
    p.keep(key, second, policy, body.clone());
    page_response(StatusCode::OK, body)
}

/// The decision through the gate's cache, or the error page.
#[allow(clippy::result_large_err)]
async fn decide(
    g: &Arc<Gate>,
    m: &Arc<RevisionRecord>,
    destination: Option<String>,
) -> Result<Arc<Verdict>, Response> {
    g.decide_cached(m.clone(), destination).await.map_err(|e| {
        tracing::error!(repo = %m.repo, revision = %m.revision, error = %e, "cannot decide");
        match e {
            DecideError::Store(_) => {
                error_page(StatusCode::SERVICE_UNAVAILABLE, "The store cannot be read.")
            }
            _ => error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The decision could not be made.",
            ),
        }
    })
}

/// The claims of an allowed revision, decoded once.
#[allow(clippy::result_large_err)]
async fn claims_of(p: &Pages, m: &RevisionRecord) -> Result<Arc<ClaimFacts>, Response> {
    let store = &p.gate.store;
    p.claims
        .get(m, || async {
            Ok::<_, super::store::StoreError>((store.attestation(m).await?, store.grants(m).await?))
        })
        .await
        .map_err(|e| {
            match e {
                ClaimError::Load(e) => {
                    tracing::error!(repo = %m.repo, revision = %m.revision, error = %e, "cannot read the claims")
                }
                ClaimError::Unreadable(e) => {
                    tracing::error!(repo = %m.repo, revision = %m.revision, error = %e, "cannot read the claims")
                }
            }
            error_page(StatusCode::SERVICE_UNAVAILABLE, "The stored attestation cannot be read.")
        })
}

/// The repository and revision on this gate admitted with the base model's attestation
/// (`envelope`, its SHA-256) or, failing that, the first whose weights have the root digest
/// `root`, if any (remembered for [`BASE_LINK_SECONDS`]).
async fn base_location(p: &Pages, root: &str, envelope: Option<&str>) -> Option<Location> {
    let now = p.gate.now();
    let key = format!("{root}+{}", envelope.unwrap_or(""));
    if let Some((at, found)) = lock(&p.base_links).get(&key)
        && now - at < BASE_LINK_SECONDS
    {
        return found.clone();
    }
    let mut found = None;
    let mut same_root = None;
    'search: for repo in p
        .gate
        .store
        .repos()
        .await
        .ok()?
        .into_iter()
        .take(MAX_LISTED)
    {
        for (_, id) in p
            .gate
            .store
            .refs(&repo)
            .await
            .ok()?
            .into_iter()
            .take(MAX_REFS)
        {
            let Ok(m) = p.gate.record(&repo, &id).await else {
                continue;
            };
            if envelope == Some(m.attestation.as_str()) {
                found = Some((repo.clone(), m.revision.clone()));
                break 'search;
            }
            if same_root.is_none()
                && let Ok(c) = claims_of(p, &m).await
                && c.statement.subject.root_sha256.to_hex() == root
            {
                same_root = Some((repo.clone(), m.revision.clone()));
            }
        }
    }
    let found = found.or(same_root);
    let mut links = lock(&p.base_links);
    if links.len() >= 1024 {
        links.clear();
    }
    links.insert(key, (now, found.clone()));
    found
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `http://HOST` as the request names the gate, for the commands a reader copies; a `Host`
/// that is not a plain host and port gives a placeholder.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("GATE-HOST");
    let scheme = match headers.get("x-forwarded-proto").map(HeaderValue::as_bytes) {
        Some(b"https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn error_page(status: StatusCode, message: &str) -> Response {
    page_response(status, html::error(status, message).into_string())
}
