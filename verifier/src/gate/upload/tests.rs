use super::*;
use crate::gate::store::FolderStore;
use axum::body::Bytes;
use sha2::{Digest as _, Sha256};

fn body(parts: Vec<Result<Bytes, std::io::Error>>) -> ByteStream<'static> {
    Box::pin(futures::stream::iter(parts))
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn setup() -> (tempfile::TempDir, Uploads) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FolderStore::open(dir.path()).unwrap());
    (dir, Uploads::new(store, UploadLimits::default()))
}

/// Everything under STORE/uploads, receipts included.
fn pending_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for ns in std::fs::read_dir(dir.join("uploads"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(ns.path()).unwrap().flatten() {
            out.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_is_hashed_while_received_and_held_only_by_its_namespace() {
    let (dir, up) = setup();
    let data = bytes((5 << 20) + 17);
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let parts = data
        .chunks(65536)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let got = up
        .put_object("lab-a", sha, data.len() as u64, body(parts), 100)
        .await
        .unwrap();
    assert_eq!(got.sha256, hex::encode(sha));
    assert_eq!(got.blake3, blake3::hash(&data).to_hex().to_string());
    assert_eq!(got.size, data.len() as u64);
    let name = hex::encode(sha);
    assert_eq!(
        std::fs::read(dir.path().join("uploads/lab-a").join(&name)).unwrap(),
        data
    );
    let none = Holdings::default();
    let size = data.len() as u64;
    assert!(
        up.has_object("lab-a", &name, size, &none, 101)
            .await
            .unwrap()
    );
    // Another namespace, another size, or after the pending lifetime: absent.
    assert!(
        !up.has_object("lab-b", &name, size, &none, 101)
            .await
            .unwrap()
    );
    assert!(
        !up.has_object("lab-a", &name, size + 1, &none, 101)
            .await
            .unwrap()
    );
    let later = 100 + UploadLimits::default().pending_lifetime.as_secs() as i64;
    assert!(
        !up.has_object("lab-a", &name, size, &none, later)
            .await
            .unwrap()
    );
    // Not a blob: nothing serves it before a commit.
    assert!(up.store().blob_state(&name).await.unwrap().is_none());
}

#[tokio::test]
async fn a_lying_size_a_wrong_digest_or_a_failed_body_leaves_nothing() {
    let (dir, up) = setup();
    let data = bytes(1000);
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let whole = || vec![Ok(Bytes::from(data.clone()))];
    type Parts = Vec<Result<Bytes, std::io::Error>>;
    let cases: Vec<(&str, u64, [u8; 32], Parts)> = vec![
        ("is 1000 bytes or more, declared 999", 999, sha, whole()),
        ("ended after 1000 bytes, declared 1001", 1001, sha, whole()),
        ("have SHA-256", 1000, [7; 32], whole()),
        (
            "connection failed",
            1000,
            sha,
            vec![
                Ok(Bytes::from(data[..500].to_vec())),
                Err(std::io::Error::other("reset by peer")),
            ],
        ),
    ];
    for (want, size, oid, parts) in cases {
        let e = up
            .put_object("lab-a", oid, size, body(parts), 1)
            .await
            .unwrap_err();
        assert!(e.to_string().contains(want), "{want}: {e}");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{want}");
        assert_eq!(pending_files(dir.path()), Vec::<String>::new(), "{want}");
    }
}

#[tokio::test]
async fn the_file_and_namespace_caps_refuse_before_any_byte_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FolderStore::open(dir.path()).unwrap());
    let limits = UploadLimits {
        max_file_size: 1500,
        max_namespace_pending: 2500,
        ..UploadLimits::default()
    };
    let up = Uploads::new(store, limits);
    let data = bytes(1000);
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let e = up
        .put_object("lab-a", sha, 1501, body(vec![]), 1)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    let one = |d: &[u8]| body(vec![Ok(Bytes::copy_from_slice(d))]);
    up.put_object("lab-a", sha, 1000, one(&data), 1)
        .await
        .unwrap();
    let other = bytes(1400);
    let sha2: [u8; 32] = Sha256::digest(&other).into();
    let e = up
        .put_object("lab-a", sha2, 1400, one(&other), 1)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::INSUFFICIENT_STORAGE, "{e}");
    // Another namespace has its own space.
    up.put_object("lab-b", sha2, 1400, one(&other), 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_idle_upload_is_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FolderStore::open(dir.path()).unwrap());
    let limits = UploadLimits {
        idle_timeout: Duration::from_millis(50),
        ..UploadLimits::default()
    };
    let up = Uploads::new(store, limits);
    let stalled: ByteStream = Box::pin(futures::stream::pending());
    let e = up
        .put_object("lab-a", [1; 32], 10, stalled, 1)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::REQUEST_TIMEOUT, "{e}");
    assert_eq!(pending_files(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn an_adopted_object_is_no_longer_pending_and_an_abort_releases_it() {
    let (dir, up) = setup();
    let data = bytes(3000);
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let name = hex::encode(sha);
    let obj = up
        .put_object(
            "lab-a",
            sha,
            3000,
            body(vec![Ok(Bytes::from(data.clone()))]),
            1,
        )
        .await
        .unwrap();
    let mut staging = up.store().begin(1).await.unwrap();
    let staged = staging
        .adopt_pending("lab-a", &obj, "sub/model.bin", 10)
        .await
        .unwrap();
    assert_eq!(staged.hashes.sha256, sha);
    assert_eq!(staged.head, data[..10]);
    assert!(up.pending("lab-a", &name, 2).await.unwrap().is_none());
    // A second commit naming it finds nothing to adopt.
    let mut other = up.store().begin(1).await.unwrap();
    let e = other
        .adopt_pending("lab-a", &obj, "model.bin", 0)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("taken by another commit"), "{e}");
    staging.abort().await;
    other.abort().await;
    assert!(up.store().blob_state(&name).await.unwrap().is_none());
    assert_eq!(pending_files(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn a_commit_that_lost_its_branch_puts_what_it_took_in_back_into_pending() {
    use crate::gate::store::{Publication, RefPrecondition};
    let (dir, up) = setup();
    let data = bytes(3000);
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let name = hex::encode(sha);
    let one = body(vec![Ok(Bytes::from(data.clone()))]);
    let obj = up.put_object("lab-a", sha, 3000, one, 1).await.unwrap();
    let mut staging = up.store().begin(1).await.unwrap();
    let staged = staging
        .adopt_pending("lab-a", &obj, &name, 0)
        .await
        .unwrap();
    // The branch is expected at a revision it is not at (another commit moved it).
    let moved = RefPrecondition::At("1".repeat(40));
    let publication =
        Publication::one_staged_file("lab-a/model", moved, 3000, staged.hashes, &name);
    let e = staging.commit(publication).await.unwrap_err();
    assert!(matches!(e, StoreError::RefMoved { .. }), "{e}");
    assert!(up.store().blob_state(&name).await.unwrap().is_none());
    // Pending again, with its bytes: the client's corrected retry needs no new upload.
    let back = up
        .pending("lab-a", &name, 2)
        .await
        .unwrap()
        .expect("pending");
    assert_eq!(back.size, 3000);
    let file = dir.path().join("uploads/lab-a").join(&name);
    assert_eq!(std::fs::read(file).unwrap(), data);
}

#[tokio::test]
async fn store_gc_removes_expired_uploads_and_dead_receipts() {
    let (dir, up) = setup();
    let data = bytes(100);
    let sha: [u8; 32] = Sha256::digest(&data).into();
    // Received long ago (seconds since the epoch).
    up.put_object("lab-a", sha, 100, body(vec![Ok(Bytes::from(data))]), 1)
        .await
        .unwrap();
    // A receipt of a gate that is gone.
    std::fs::write(dir.path().join("uploads/lab-a/.recv-999999999-1-0"), b"x").unwrap();
    let report = up.store().gc(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.abandoned, 2);
    assert_eq!(pending_files(dir.path()), Vec::<String>::new());
}

#[test]
fn a_store_error_names_the_operation_and_the_part_never_the_path() {
    let io = StoreError::Io {
        path: "/srv/secret-host/store/repos/other-lab/model/revisions/.tmp-1".into(),
        error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    };
    let (status, message) = store_failure(&io, "write the revision's record");
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        message.starts_with(
            "the store could not write the revision's record (a revision record: permission \
             denied); the gate's log has the details under error id "
        ),
        "{message}"
    );
    assert!(
        !message.contains("srv") && !message.contains("other-lab"),
        "{message}"
    );
    let corrupt = StoreError::Corrupt {
        location: "s3://bucket/prefix/repos/other-lab/m/refs/main".into(),
        why: "not a revision id".into(),
    };
    let (_, message) = store_failure(&corrupt, "read the repository's refs");
    assert!(
        message.contains("(a ref: does not read as it should)") && !message.contains("bucket"),
        "{message}"
    );
    // Two answers, two ids.
    let (_, again) = store_failure(&io, "write the revision's record");
    assert_ne!(message, again);
    // 503 and 507 keep their answers; a bad name is the client's and says which.
    let unavailable = StoreError::Unavailable {
        key: "prefix/refs".into(),
        message: "timed out".into(),
    };
    assert_eq!(
        store_failure(&unavailable, "x"),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the object storage did not answer; try again later".to_string()
        )
    );
    let full = StoreError::Io {
        path: "/srv/store/uploads/lab/.recv-1".into(),
        error: std::io::Error::from_raw_os_error(libc::ENOSPC),
    };
    assert_eq!(
        store_failure(&full, "x"),
        (
            StatusCode::INSUFFICIENT_STORAGE,
            "the store is full; try again later".to_string()
        )
    );
    let (status, message) = store_failure(&StoreError::BadName("`a b` is not a repo".into()), "x");
    assert_eq!(
        (status, message.as_str()),
        (StatusCode::BAD_REQUEST, "`a b` is not a repo")
    );
}
