//! The gate server's request paths and Range headers: the path rules it applies, then a
//! GET with the fuzzed Range on a real file through the same tower-http service it uses.
//! Never a panic or a 5xx; a 206 carries exactly the bytes its Content-Range names.
#![no_main]
use std::sync::OnceLock;

use axum::body::Body;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use weightgate_verifier::store::{check_ref, check_repo_id};

struct Fixture {
    rt: tokio::runtime::Runtime,
    file: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let file = std::env::temp_dir().join(format!("wg-fuzz-{}.bin", std::process::id()));
        std::fs::write(&file, (0..10_000u32).map(|i| i as u8).collect::<Vec<_>>()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture { rt, file }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, range) = text.split_once('\n').unwrap_or((text, ""));
    let _ = weightgate_attest::check_relative_path(path);
    let _ = check_repo_id(path);
    let _ = check_ref(path);
    let f = fixture();
    let Ok(req) = axum::http::Request::get("/x")
        .header("range", range)
        .body(Body::empty())
    else {
        return;
    };
    let resp = f.rt.block_on(ServeFile::new(&f.file).oneshot(req)).unwrap();
    let status = resp.status().as_u16();
    assert!(
        matches!(status, 200 | 206 | 416),
        "status {status} for Range {range:?}"
    );
    if status == 206
        && let Some(cr) = resp
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
        && let Some((a, b)) = cr
            .strip_prefix("bytes ")
            .and_then(|r| r.split_once('/'))
            .and_then(|(span, _)| span.split_once('-'))
    {
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        let len: u64 = resp.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, b - a + 1);
    }
});
