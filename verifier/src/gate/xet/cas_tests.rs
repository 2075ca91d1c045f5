//! The CAS routes through the router, over a folder store: what reaches the upload sink, and
//! what is refused with which message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;

use super::cas::{FileSink, Refusal, WriteAuthority, XetCas, router};
use super::hash::{XetHash, file_hash, range_hash};
use super::reconstruct::FileBody;
use super::shard::{self, FileInfo, Term, XorbInfo};
use super::xorb;
use crate::gate::store::FolderStore;

/// Hub tokens `hub-<org>` write `<org>/*`.
struct OrgTokens;

#[async_trait::async_trait]
impl WriteAuthority for OrgTokens {
    async fn authorize_write(&self, headers: &HeaderMap, repo: &str) -> Result<String, Response> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer hub-"));
        match token {
            Some(org) if repo.starts_with(&format!("{org}/")) => Ok(org.to_string()),
            Some(_) => Err(StatusCode::FORBIDDEN.into_response()),
            None => Err(StatusCode::UNAUTHORIZED.into_response()),
        }
    }
}

/// Files received whole, by namespace and SHA-256, checked like the upload area checks them.
#[derive(Default)]
struct Received(Mutex<HashMap<(String, [u8; 32]), Vec<u8>>>);

#[async_trait::async_trait]
impl FileSink for Received {
    async fn has_file(&self, ns: &str, sha: &[u8; 32], _: u64, _: i64) -> Result<bool, Refusal> {
        Ok(self.0.lock().unwrap().contains_key(&(ns.to_string(), *sha)))
    }

    async fn put_file(
        &self,
        ns: &str,
        sha256: [u8; 32],
        size: u64,
        mut body: FileBody,
        _: i64,
    ) -> Result<(), Refusal> {
        let mut bytes = Vec::new();
        while let Some(part) = body.next().await {
            let part = part.map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            bytes.extend_from_slice(&part);
        }
        if bytes.len() as u64 != size || <[u8; 32]>::from(Sha256::digest(&bytes)) != sha256 {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "the SHA-256 does not match",
            ));
        }
        self.0
            .lock()
            .unwrap()
            .insert((ns.to_string(), sha256), bytes);
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    app: axum::Router,
    received: Arc<Received>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FolderStore::open(dir.path()).unwrap());
    let received = Arc::new(Received::default());
    let cas = Arc::new(XetCas::new(store, received.clone(), Arc::new(OrgTokens)));
    Fixture {
        _dir: dir,
        app: router(cas),
        received,
    }
}

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: &str,
    body: Vec<u8>,
) -> (StatusCode, String, HeaderMap) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "gate.test")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        String::from_utf8_lossy(&bytes).into_owned(),
        headers,
    )
}

/// An access token for `org/m`.
async fn access_token(app: &axum::Router, org: &str) -> String {
    let uri = format!("/api/models/{org}/m/xet-write-token/main");
    let (status, body, headers) =
        call(app, Method::GET, &uri, &format!("hub-{org}"), Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["casUrl"], "http://gate.test/xet-cas");
    assert_eq!(headers["x-xet-cas-url"], "http://gate.test/xet-cas");
    let token = json["accessToken"].as_str().unwrap().to_string();
    assert_eq!(headers["x-xet-access-token"].to_str().unwrap(), token);
    token
}

/// A file of two chunks in one xorb, and the shard describing both.
fn upload_of(data: &[&[u8]]) -> (Vec<u8>, XetHash, Vec<u8>, Vec<u8>) {
    let body = xorb::build_uncompressed(data);
    let (chunks, hash) = xorb::parse(&body).unwrap();
    let leaves: Vec<_> = chunks.iter().map(|c| (c.hash, u64::from(c.len))).collect();
    let bytes = data.concat();
    let file = FileInfo {
        hash: file_hash(&leaves),
        terms: vec![Term {
            xorb: hash,
            start: 0,
            end: chunks.len() as u32,
            len: bytes.len() as u32,
            verification: Some(range_hash(chunks.iter().map(|c| c.hash))),
        }],
        sha256: Some(Sha256::digest(&bytes).into()),
    };
    let info = XorbInfo {
        hash,
        chunks: chunks.iter().map(|c| (c.hash, c.len)).collect(),
    };
    (body, hash, shard::build(&[file], &[info]), bytes)
}

#[tokio::test]
async fn a_file_is_reconstructed_from_checked_xorbs_into_its_namespace() {
    let f = fixture();
    let token = access_token(&f.app, "lab-a").await;
    let (xorb, hash, shard, bytes) = upload_of(&[b"first chunk ", b"second chunk"]);
    let uri = format!("/xet-cas/v1/xorbs/default/{hash}");
    let (status, body, _) = call(&f.app, Method::POST, &uri, &token, xorb.clone()).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"was_inserted":true}"#)
    );
    let (_, body, _) = call(&f.app, Method::POST, &uri, &token, xorb).await;
    assert_eq!(body, r#"{"was_inserted":false}"#);
    assert_eq!(
        call(&f.app, Method::HEAD, &uri, &token, vec![]).await.0,
        StatusCode::OK
    );

    let (status, body, _) = call(&f.app, Method::POST, "/xet-cas/v1/shards", &token, shard).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"result":1}"#));
    let got = f.received.0.lock().unwrap();
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(got.get(&("lab-a".to_string(), sha)), Some(&bytes));
}

#[tokio::test]
async fn a_tampered_xorb_a_bad_shard_and_a_missing_token_are_refused() {
    let f = fixture();
    let token = access_token(&f.app, "lab-a").await;
    let (mut xorb, hash, shard, _) = upload_of(&[b"first chunk ", b"second chunk"]);
    *xorb.last_mut().unwrap() ^= 1;
    let uri = format!("/xet-cas/v1/xorbs/default/{hash}");
    let (status, body, headers) = call(&f.app, Method::POST, &uri, &token, xorb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(&format!("not the {hash} it was uploaded as")),
        "{body}"
    );
    assert!(
        headers["x-error-message"]
            .to_str()
            .unwrap()
            .contains("xorb hash is")
    );
    assert_eq!(
        call(&f.app, Method::HEAD, &uri, &token, vec![]).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, body, _) = call(&f.app, Method::POST, "/xet-cas/v1/shards", &token, shard).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(&format!("names xorb {hash}, which was never uploaded")),
        "{body}"
    );
    let (status, body, _) = call(
        &f.app,
        Method::POST,
        "/xet-cas/v1/shards",
        &token,
        b"junk".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("header tag"), "{body}");
    assert!(f.received.0.lock().unwrap().is_empty());

    for (t, want) in [
        ("", "no `Authorization: Bearer`"),
        ("xet_00", "not one this gate issued"),
    ] {
        let (status, body, _) = call(&f.app, Method::POST, "/xet-cas/v1/shards", t, vec![]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains(want), "{body}");
    }
    let (status, _, _) = call(
        &f.app,
        Method::GET,
        "/api/models/lab-b/m/xet-write-token/main",
        "hub-lab-a",
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = call(
        &f.app,
        Method::POST,
        "/xet-cas/v1/xorbs/default/nothex",
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not a Xet hash"), "{body}");
}

#[tokio::test]
async fn another_namespace_learns_nothing_of_a_tenants_xorbs() {
    let f = fixture();
    let a = access_token(&f.app, "lab-a").await;
    let b = access_token(&f.app, "lab-b").await;
    let (xorb, hash, shard, _) = upload_of(&[b"lab a's secret chunk"]);
    let uri = format!("/xet-cas/v1/xorbs/default/{hash}");
    assert_eq!(
        call(&f.app, Method::POST, &uri, &a, xorb).await.0,
        StatusCode::OK
    );

    // The dedupe query answers the same whoever holds the chunk; HEAD and shards see only
    // the caller's namespace.
    let chunk = format!("/xet-cas/v1/chunks/default/{hash}");
    assert_eq!(
        call(&f.app, Method::GET, &chunk, &a, vec![]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&f.app, Method::GET, &chunk, &b, vec![]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&f.app, Method::HEAD, &uri, &b, vec![]).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body, _) = call(&f.app, Method::POST, "/xet-cas/v1/shards", &b, shard).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("never uploaded"), "{body}");
    assert!(f.received.0.lock().unwrap().is_empty());
}
