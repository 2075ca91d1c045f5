//! Uploads to gates over a real S3-compatible bucket (SeaweedFS on loopback): the unchanged
//! `huggingface_hub` client over LFS and Xet through two gates over one bucket, their commits
//! racing on one branch (cli/tests/hf/bucket_upload.py); then a client that disconnects
//! mid-upload and the bucket stopped mid-commit, each leaving nothing visible.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use crate::common::{self, bearer_request, copy_dir, python, td, testdata};
use crate::support::seaweed::{ACCESS_KEY, BUCKET, Role, SECRET_KEY, Seaweed};
use crate::support::serve::Server;

const PREFIX: &str = "uploads";

/// The keys of the bucket under `prefix`, listed with curl's own SigV4 signing.
fn keys(sw: &Seaweed, prefix: &str) -> String {
    let o = Command::new("curl")
        .args(["-s", "--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .arg(format!(
            "{}/{BUCKET}?list-type=2&prefix={}",
            sw.endpoint(),
            format!("{PREFIX}/{prefix}").replace('/', "%2F")
        ))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(listing.contains("<ListBucketResult"), "{listing}");
    listing
}

fn run_ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn attest(dir: &Path, out: &Path, issued_at: i64) {
    run_ok(Command::new(env!("CARGO_BIN_EXE_weightgate")).args([
        "attest",
        dir.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--out",
        out.to_str().unwrap(),
        "--issued-at",
        &issued_at.to_string(),
        "--quiet",
    ]));
}

#[test]
fn uploads_to_gates_over_one_bucket() {
    let started = Instant::now();
    let mut sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    let good = p("good");
    copy_dir(&testdata().join("checkpoints/tiny"), &good);
    attest(&good, &good.join("weightgate.att"), 1_767_225_600);
    std::fs::create_dir_all(p("envelopes")).unwrap();
    for i in 0..10 {
        attest(
            &good,
            &p(&format!("envelopes/race-{i:02}.att")),
            1_767_225_601 + i,
        );
    }
    eprintln!("phase: cluster and envelopes {:?}", started.elapsed());
    let policy = common::policy_trusting(dir.path(), &["test-lab"], "");
    let url = sw.url(PREFIX);
    let token = run_ok(sw.command(env!("CARGO_BIN_EXE_weightgate")).args([
        "token", "create", "--store", &url, "--name", "lab-ci", "--write", "lab",
    ]))
    .trim()
    .to_string();
    let gate = |audit: &str| {
        let mut cmd = sw.command(env!("CARGO_BIN_EXE_weightgate"));
        cmd.args(["serve", "--store", &url, "--listen", "127.0.0.1:0"])
            .arg("--policy")
            .arg(&policy)
            .arg("--audit-log")
            .arg(p(audit))
            .args(["--upload-idle-timeout", "2"]);
        Server::spawn(cmd)
    };
    let (a, b) = (gate("audit-a.log"), gate("audit-b.log"));

    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf/bucket_upload.py"))
        .args([a.url(), b.url()])
        .args([
            &good,
            &p("envelopes"),
            &p("work"),
            &p("audit-a.log"),
            &p("audit-b.log"),
        ])
        .env("HF_TOKEN_LAB", &token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("PASS ").count(), 6, "{stdout}");
    // Nothing is left pending: every upload was adopted by its commit.
    let pending = keys(&sw, "pending/");
    assert!(!pending.contains("<Key>"), "{pending}");

    eprintln!("phase: client script {:?}\n{stdout}", started.elapsed());
    // A client that disconnects mid-upload: the multipart upload is aborted, nothing appears.
    let data: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let oid = hex::encode(sha2::Sha256::digest(&data));
    let batch = format!(
        r#"{{"operation":"upload","transfers":["basic"],"objects":[{{"oid":"{oid}","size":{}}}]}}"#,
        data.len()
    );
    let (status, text) = bearer_request(
        &a.addr,
        "POST",
        "/lab/cut.git/info/lfs/objects/batch",
        &token,
        batch.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let href = text.split("\"href\":\"").nth(1).unwrap();
    let path = &href[href.find("/api/").unwrap()..href.find('"').unwrap()];
    let mut s = TcpStream::connect(&a.addr).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(&data[..17 << 20]).unwrap();
    if !wait(|| keys(&sw, "pending/lab/receiving/").contains("<Key>")) {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut answer = vec![0; 4096];
        let n = s.read(&mut answer).unwrap_or(0);
        panic!(
            "no receipt while receiving: {}\n{}\n{:#?}",
            String::from_utf8_lossy(&answer[..n]),
            keys(&sw, "pending/"),
            a.log_lines()
        );
    }
    drop(s);
    assert!(
        wait(|| !keys(&sw, "pending/lab/").contains("<Key>")),
        "{}",
        keys(&sw, "pending/")
    );
    assert!(!keys(&sw, &format!("blobs/{oid}")).contains("<Key>"));

    eprintln!("phase: disconnect {:?}", started.elapsed());

    // An upload never committed: pending (its blob complete, named by nothing) until `store gc`
    // past the grace period removes both.
    let small = b"never committed\n".repeat(64);
    let oid = hex::encode(sha2::Sha256::digest(&small));
    let batch = format!(
        r#"{{"operation":"upload","transfers":["basic"],"objects":[{{"oid":"{oid}","size":{}}}]}}"#,
        small.len()
    );
    let (_, text) = bearer_request(
        &b.addr,
        "POST",
        "/lab/later.git/info/lfs/objects/batch",
        &token,
        batch.as_bytes(),
    );
    let href = text.split("\"href\":\"").nth(1).unwrap();
    let path = &href[href.find("/api/").unwrap()..href.find('"').unwrap()];
    let (status, text) = bearer_request(&b.addr, "PUT", path, "", &small);
    assert_eq!(status, 200, "{text}");
    assert!(keys(&sw, &format!("pending/lab/{oid}.json")).contains("<Key>"));
    assert!(keys(&sw, &format!("blobs/{oid}")).contains("<Key>"));
    let gc = run_ok(
        sw.command(env!("CARGO_BIN_EXE_weightgate"))
            .args(["store", "gc", "--store", &url, "--grace", "0"]),
    );
    assert!(gc.contains(&format!("removed blobs/{oid}")), "{gc}");
    assert!(!keys(&sw, "pending/").contains("<Key>"));
    // The bucket stopped mid-commit: the commit fails, no ref moves, nothing is published.
    let many = p("many");
    copy_dir(&good, &many);
    std::fs::remove_file(many.join("weightgate.att")).unwrap();
    for i in 0..300 {
        std::fs::write(
            many.join(format!("extra-{i:03}.txt")),
            format!("file {i}\n"),
        )
        .unwrap();
    }
    attest(&many, &many.join("weightgate.att"), 1_767_225_700);
    let mut body =
        String::from("{\"key\":\"header\",\"value\":{\"summary\":\"many small files\"}}\n");
    for e in std::fs::read_dir(&many).unwrap() {
        let e = e.unwrap();
        let content =
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(e.path()).unwrap());
        body.push_str(&format!(
            "{{\"key\":\"file\",\"value\":{{\"path\":\"{}\",\"encoding\":\"base64\",\"content\":\"{content}\"}}}}\n",
            e.file_name().to_str().unwrap()
        ));
    }
    let addr = a.addr.clone();
    let token2 = token.clone();
    let commit = std::thread::spawn(move || {
        let t = Instant::now();
        let r = bearer_request(
            &addr,
            "POST",
            "/api/models/lab/many/commit/main",
            &token2,
            body.as_bytes(),
        );
        (r, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(700));
    sw.kill(Role::S3);
    let ((status, text), took) = commit.join().unwrap();
    assert!(
        status >= 500,
        "the commit finished before the bucket stopped ({took:?}): {status} {text}"
    );
    eprintln!(
        "phase: commit failed after {took:?}, at {:?}",
        started.elapsed()
    );
    sw.spawn(Role::S3);
    assert!(
        wait(|| common::http_get(&b.addr, "/api/models/lab/tiny/revision/main", &[]).0 == 200),
        "the gate did not recover"
    );
    let (status, _) = common::http_get(&b.addr, "/api/models/lab/many/revision/main", &[]);
    assert_eq!(status, 404);
    let repo = keys(&sw, "repos/lab/many/");
    assert!(!repo.contains("<Key>"), "{repo}");
    eprintln!("bucket uploads test: {:?}", started.elapsed());
}

/// Polls `check` for up to 15 s.
fn wait(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
