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
use crate::gate::store::{FolderStore, Store};
use crate::gate::upload::{UploadLimits, Uploads};

/// Hub tokens `hub-<org>` write `<org>/*`.
struct OrgTokens;

#[async_trait::async_trait]
impl WriteAuthority for OrgTokens {
    async fn authorize_write(
        &self,
        headers: &HeaderMap,
        _: Option<std::net::IpAddr>,
        repo: &str,
    ) -> Result<String, Response> {
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

/// Files received whole, by namespace and SHA-256, checked like the upload area checks them,
/// and the largest part a file body gave.
#[derive(Default)]
struct Received(Mutex<HashMap<NamespacedFile, Vec<u8>>>, Mutex<usize>);

/// A namespace and a SHA-256.
type NamespacedFile = (String, [u8; 32]);

#[async_trait::async_trait]
impl FileSink for Received {
    async fn check_room(&self, _: &str, _: u64) -> Result<(), Refusal> {
        Ok(())
    }

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
            let mut largest = self.1.lock().unwrap();
            *largest = (*largest).max(part.len());
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
    uploads: Uploads,
}

/// The CAS over a folder store, its files going to `received`, or to the store's real upload
/// area with `real_uploads`.
fn fixture_with(real_uploads: bool) -> Fixture {
    fixture_of(real_uploads, UploadLimits::default())
}

fn fixture_of(real_uploads: bool, limits: UploadLimits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FolderStore::open(dir.path()).unwrap());
    let received = Arc::new(Received::default());
    let uploads = Uploads::new(store.clone(), limits);
    let sink: Arc<dyn FileSink> = if real_uploads {
        Arc::new(uploads.clone())
    } else {
        received.clone()
    };
    let cas = Arc::new(XetCas::new(store, sink, Arc::new(OrgTokens)));
    Fixture {
        _dir: dir,
        app: router(cas),
        received,
        uploads,
    }
}

fn fixture() -> Fixture {
    fixture_with(false)
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

/// A file of 80 chunks of 128 KiB (10 MiB, one xorb) then chunks 5..40 again: two terms, the
/// first decoded in three pieces.
fn large_upload() -> (Vec<u8>, XetHash, Vec<u8>, Vec<u8>) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<Vec<u8>> = (0..80)
        .map(|_| {
            (0..xorb::MAX_CHUNK_LEN)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect();
    let parts: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let body = xorb::build_uncompressed(&parts);
    let (chunks, hash) = xorb::parse(&body).unwrap();
    let mut leaves = Vec::new();
    let mut terms = Vec::new();
    let mut bytes = Vec::new();
    for (start, end) in [(0usize, 80usize), (5, 40)] {
        let range = &chunks[start..end];
        leaves.extend(range.iter().map(|c| (c.hash, u64::from(c.len))));
        let len: usize = data[start..end].iter().map(Vec::len).sum();
        bytes.extend(data[start..end].concat());
        terms.push(Term {
            xorb: hash,
            start: start as u32,
            end: end as u32,
            len: len as u32,
            verification: Some(range_hash(range.iter().map(|c| c.hash))),
        });
    }
    let file = FileInfo {
        hash: file_hash(&leaves),
        terms,
        sha256: Some(Sha256::digest(&bytes).into()),
    };
    let info = XorbInfo {
        hash,
        chunks: chunks.iter().map(|c| (c.hash, c.len)).collect(),
    };
    (body, hash, shard::build(&[file], &[info]), bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_reconstructed_in_bounded_pieces_into_the_upload_area() {
    let (xorb, hash, shard, bytes) = large_upload();
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    for real_uploads in [false, true] {
        let f = fixture_with(real_uploads);
        let token = access_token(&f.app, "lab-a").await;
        let uri = format!("/xet-cas/v1/xorbs/default/{hash}");
        let (status, body, _) = call(&f.app, Method::POST, &uri, &token, xorb.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body, _) = call(
            &f.app,
            Method::POST,
            "/xet-cas/v1/shards",
            &token,
            shard.clone(),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"result":1}"#));
        if real_uploads {
            let now = jiff::Timestamp::now().as_second();
            let pending = f.uploads.pending("lab-a", &hex::encode(sha), now).await;
            let pending = pending.unwrap().unwrap();
            assert_eq!(pending.size, bytes.len() as u64);
            assert_eq!(pending.blake3, blake3::hash(&bytes).to_hex().as_str());
            let stored = f._dir.path().join("uploads/lab-a").join(hex::encode(sha));
            assert!(std::fs::read(stored).unwrap() == bytes);
        } else {
            assert!(f.received.0.lock().unwrap()[&("lab-a".to_string(), sha)] == bytes);
            assert_eq!(*f.received.1.lock().unwrap(), 4 << 20);
        }
    }
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
    let oversized = Request::builder()
        .method(Method::POST)
        .uri(format!("/xet-cas/v1/xorbs/default/{hash}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-length", "100000000")
        .body(Body::empty())
        .unwrap();
    let response = f.app.clone().oneshot(oversized).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
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

/// Three files, each in a xorb of its own, and one shard describing all three.
struct ThreeFiles {
    xorbs: Vec<(XetHash, Vec<u8>)>,
    files: Vec<FileInfo>,
    infos: Vec<XorbInfo>,
    contents: Vec<Vec<u8>>,
}

fn three_files() -> ThreeFiles {
    let (mut xorbs, mut files, mut infos, mut contents) = (vec![], vec![], vec![], vec![]);
    for i in 0..3u8 {
        let first = vec![i; 1000 + usize::from(i)];
        let second = format!("file {i}, second chunk").into_bytes();
        let (body, hash, shard, bytes) = upload_of(&[&first, &second]);
        let parsed = shard::parse(&shard).unwrap();
        xorbs.push((hash, body));
        files.extend(parsed.files);
        infos.extend(parsed.xorbs);
        contents.push(bytes);
    }
    ThreeFiles {
        xorbs,
        files,
        infos,
        contents,
    }
}

/// What the upload area holds for `lab-a` under the SHA-256 of `bytes`.
async fn pending_in(f: &Fixture, bytes: &[u8]) -> Option<u64> {
    let sha = hex::encode(Sha256::digest(bytes));
    let now = jiff::Timestamp::now().as_second();
    let pending = f.uploads.pending("lab-a", &sha, now).await.unwrap();
    pending.map(|p| p.size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shards_files_are_rebuilt_together_and_a_xorb_changed_on_disk_yields_no_file() {
    let ThreeFiles {
        xorbs,
        files,
        infos,
        contents,
    } = three_files();
    let f = fixture_with(true);
    let token = access_token(&f.app, "lab-a").await;
    for (hash, body) in &xorbs {
        let uri = format!("/xet-cas/v1/xorbs/default/{hash}");
        let (status, body, _) = call(&f.app, Method::POST, &uri, &token, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let post_shard = |files: &[FileInfo]| {
        let shard = shard::build(files, &infos);
        let app = f.app.clone();
        let token = token.clone();
        async move { call(&app, Method::POST, "/xet-cas/v1/shards", &token, shard).await }
    };

    // A SHA-256 the shard declares wrongly is the client's error, and keeps nothing.
    let mut lying = files.clone();
    lying[1].sha256.as_mut().unwrap()[0] ^= 1;
    let (status, body, _) = post_shard(&lying[1..=1]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("SHA-256") && body.contains("declared"),
        "{body}"
    );
    assert_eq!(pending_in(&f, &contents[1]).await, None);

    // Stored xorbs replaced after their upload: the same length with other bytes, a body
    // that no longer decodes, none at all. Each file is refused as the gate's error and
    // nothing of it reaches the upload area.
    let stored = |i: usize| {
        let name = crate::gate::store::xet_object_name(
            "lab-a",
            crate::gate::store::XetObjectKind::Xorb,
            &xorbs[i].0.to_hex(),
        );
        f._dir.path().join(name.unwrap())
    };
    let mut other = xorbs[0].1.clone();
    other[100] ^= 1;
    std::fs::remove_file(stored(0)).unwrap();
    std::fs::write(stored(0), &other).unwrap();
    std::fs::remove_file(stored(1)).unwrap();
    std::fs::write(stored(1), &xorbs[1].1[..20]).unwrap();
    std::fs::remove_file(stored(2)).unwrap();
    for (i, want) in [
        (0, "chunk 0 no longer has the hash it was stored with"),
        (1, "the stored xorb changed since it was checked"),
        (2, "is no longer stored"),
    ] {
        let (status, body, _) = post_shard(&files[i..=i]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(
            body.contains(want) && body.contains(&xorbs[i].0.to_hex()),
            "{want}: {body}"
        );
        assert_eq!(pending_in(&f, &contents[i]).await, None);
    }

    // Put back, the three files are rebuilt from one shard (at once), each byte-identical.
    for (i, (_, body)) in xorbs.iter().enumerate() {
        let _ = std::fs::remove_file(stored(i));
        std::fs::write(stored(i), body).unwrap();
    }
    let (status, body, _) = post_shard(&files).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"result":1}"#));
    for bytes in &contents {
        assert_eq!(pending_in(&f, bytes).await, Some(bytes.len() as u64));
        let sha = hex::encode(Sha256::digest(bytes));
        let kept = std::fs::read(f._dir.path().join("uploads/lab-a").join(sha)).unwrap();
        assert!(&kept == bytes);
    }
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

/// The unchanged hf_xet client (the pinned venv's, as `.ci/run` installs it) uploading through
/// the write-token route to the CAS over TCP: files reconstructed byte-identical, and a second
/// upload of the same files sends no xorb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hf_xet_client_uploads_and_a_second_upload_sends_no_xorb() {
    let f = fixture_with(true);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let app = f.app.clone().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let log = log.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("{} {}", request.method(), request.uri().path()));
                next.run(request).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // A float32 tensor (byte-grouped by the client), incompressible bytes, and text (LZ4).
    let work = tempfile::tempdir().unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let floats: Vec<u8> = (0..150_000)
        .flat_map(|_| (((next() % 2000) as f32 - 1000.0) / 40_000.0).to_le_bytes())
        .collect();
    let noise: Vec<u8> = (0..400_000).map(|_| next() as u8).collect();
    let text: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("line {i} of a tokenizer-like file\n").into_bytes())
        .collect();
    let mut paths = Vec::new();
    for (name, bytes) in [("w.bin", &floats), ("n.bin", &noise), ("t.txt", &text)] {
        let p = work.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        paths.push(p.to_str().unwrap().to_string());
    }
    let script = r#"
import sys
from hf_xet import XetSession
url, files = sys.argv[1], sys.argv[2:]
with XetSession().new_upload_commit(token_refresh_url=url,
        token_refresh_headers={"authorization": "Bearer hub-lab-a"},
        custom_headers={}, progress_callback=None) as commit:
    handles = [commit.start_upload_file(f, sha256="compute") for f in files]
for h in handles:
    print(h.result().xet_info.sha256)
"#;
    let url = format!("http://127.0.0.1:{port}/api/models/lab-a/m/xet-write-token/main");
    let hf_home = work.path().join("hf-home");
    let python = std::env::var_os("WEIGHTGATE_PYTHON").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python"),
        std::path::PathBuf::from,
    );
    let upload = move || {
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(&url)
            .args(&paths)
            .env("HF_HOME", &hf_home)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run .ci/run to install the venv)",
                    python.display()
                )
            });
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let printed = tokio::task::spawn_blocking(upload.clone()).await.unwrap();
    let xorb_posts = |seen: &[String]| {
        seen.iter()
            .filter(|s| s.starts_with("POST /xet-cas/v1/xorbs/"))
            .count()
    };
    assert!(xorb_posts(&seen.lock().unwrap()) >= 1);
    // Each file waits in lab-a's upload area under its SHA-256, its bytes the original's.
    let now = jiff::Timestamp::now().as_second();
    for (bytes, sha) in [&floats, &noise, &text].into_iter().zip(printed.lines()) {
        assert_eq!(hex::encode(Sha256::digest(bytes)), sha);
        let pending = f.uploads.pending("lab-a", sha, now).await.unwrap().unwrap();
        assert_eq!(pending.size, bytes.len() as u64);
        assert_eq!(pending.blake3, blake3::hash(bytes).to_hex().as_str());
        let stored = f._dir.path().join("uploads/lab-a").join(sha);
        assert_eq!(&std::fs::read(stored).unwrap(), bytes);
        assert!(
            f.uploads
                .pending("lab-b", sha, now)
                .await
                .unwrap()
                .is_none()
        );
    }
    // The client compressed with each scheme: byte-grouped LZ4 (the floats), LZ4 (the text)
    // and none (the noise).
    let mut schemes = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(f._dir.path().join("xet/lab-a/xorbs")).unwrap() {
        let body = std::fs::read(e.unwrap().path()).unwrap();
        let mut at = 0;
        while at + 8 <= body.len() {
            schemes.insert(body[at + 4]);
            at += 8 + u32::from_le_bytes([body[at + 1], body[at + 2], body[at + 3], 0]) as usize;
        }
    }
    assert_eq!(schemes.into_iter().collect::<Vec<_>>(), [0, 1, 2]);
    seen.lock().unwrap().clear();
    tokio::task::spawn_blocking(upload).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(xorb_posts(&seen), 0, "{seen:?}");
    assert!(
        seen.iter().any(|s| s == "POST /xet-cas/v1/shards"),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xorbs_and_shards_count_against_the_namespace_staging_cap() {
    let (xorb, hash, shard, bytes) = upload_of(&[b"first chunk ", b"second chunk"]);
    let index_len = 2 * 40;
    // Room for the xorb and its index, then not for the shard and the file besides.
    let cap = (xorb.len() + index_len) as u64;
    let f = fixture_of(
        true,
        UploadLimits {
            max_namespace_pending: cap,
            ..UploadLimits::default()
        },
    );
    let token = access_token(&f.app, "lab-a").await;
    let uri = format!("/xet-cas/v1/xorbs/default/{hash}");
    let (status, body, _) = call(&f.app, Method::POST, &uri, &token, xorb.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(f.uploads.staged_bytes("lab-a").await.unwrap(), cap);
    // Sent again: already held, so it fits whatever the cap.
    let (status, body, _) = call(&f.app, Method::POST, &uri, &token, xorb.clone()).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"was_inserted":false}"#)
    );
    assert_eq!(f.uploads.staged_bytes("lab-a").await.unwrap(), cap);
    // A shard that would rebuild a file: over the cap, 507 naming it, and no file.
    let (status, body, headers) =
        call(&f.app, Method::POST, "/xet-cas/v1/shards", &token, shard).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    let want =
        format!("namespace lab-a already holds {cap} bytes of uploads no admitted revision uses");
    assert!(
        body.contains(&want) && body.contains(&format!("staging cap of {cap} bytes")),
        "{body}"
    );
    assert!(
        headers["x-error-message"]
            .to_str()
            .unwrap()
            .contains("--max-staging-mib")
    );
    assert_eq!(pending_in(&f, &bytes).await, None);
    // Another namespace holds nothing, and learns nothing: the same xorb is new there.
    let other = access_token(&f.app, "lab-b").await;
    assert_eq!(f.uploads.staged_bytes("lab-b").await.unwrap(), 0);
    let (status, body, _) = call(&f.app, Method::POST, &uri, &other, xorb.clone()).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"was_inserted":true}"#)
    );
    // A further xorb of lab-a's does not fit.
    let (xorb2, hash2, _, _) = upload_of(&[b"another chunk"]);
    let uri2 = format!("/xet-cas/v1/xorbs/default/{hash2}");
    let (status, body, _) = call(&f.app, Method::POST, &uri2, &token, xorb2).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(
        call(&f.app, Method::HEAD, &uri2, &token, vec![]).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_kept_shard_describes_only_the_files_it_rebuilt() {
    let f = fixture();
    let token = access_token(&f.app, "lab-a").await;
    let (xorb_a, hash_a, shard_a, _) = upload_of(&[b"file a, first ", b"file a, second"]);
    let (xorb_b, hash_b, shard_b, bytes_b) = upload_of(&[b"file b alone"]);
    for (xorb, hash) in [(xorb_a, hash_a), (xorb_b, hash_b)] {
        let uri = format!("/xet-cas/v1/xorbs/default/{hash}");
        assert_eq!(
            call(&f.app, Method::POST, &uri, &token, xorb).await.0,
            StatusCode::OK
        );
    }
    let (status, body, _) = call(
        &f.app,
        Method::POST,
        "/xet-cas/v1/shards",
        &token,
        shard_a.clone(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"result":1}"#));
    // Sent again, it rebuilds nothing and keeps nothing.
    let (_, body, _) = call(
        &f.app,
        Method::POST,
        "/xet-cas/v1/shards",
        &token,
        shard_a.clone(),
    )
    .await;
    assert_eq!(body, r#"{"result":0}"#);

    // One shard of both: only b is rebuilt, and only b's entry and xorb are kept (a's entry
    // was never checked against its SHA-256 this time).
    let (a, b) = (
        shard::parse(&shard_a).unwrap(),
        shard::parse(&shard_b).unwrap(),
    );
    let both = shard::build(
        &[a.files[0].clone(), b.files[0].clone()],
        &[a.xorbs[0].clone(), b.xorbs[0].clone()],
    );
    let (status, body, _) = call(&f.app, Method::POST, "/xet-cas/v1/shards", &token, both).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"result":1}"#));
    let sha_b: [u8; 32] = Sha256::digest(&bytes_b).into();
    assert_eq!(
        f.received
            .0
            .lock()
            .unwrap()
            .get(&("lab-a".to_string(), sha_b)),
        Some(&bytes_b)
    );
    let kept = shard::build(&b.files, &b.xorbs);
    let id = XetHash(*blake3::hash(&kept).as_bytes()).to_hex();
    let stored = f
        .uploads
        .store()
        .xet_object("lab-a", crate::gate::store::XetObjectKind::Shard, &id)
        .await
        .unwrap();
    assert_eq!(stored, Some(kept));
    let shards = f.uploads.store().xet_objects("lab-a").await.unwrap();
    let kinds: Vec<_> = shards
        .iter()
        .filter(|o| matches!(o.name, Some((crate::gate::store::XetObjectKind::Shard, _))))
        .collect();
    assert_eq!(kinds.len(), 2, "{shards:?}");
}
