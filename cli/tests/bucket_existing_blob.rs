//! An admission into a bucket whose blob of the same digest is already stored (here: put there
//! by another S3 client, as an operator's copy would be) reuses that blob instead of completing
//! its own multipart upload over it: the stored object is never replaced (its ETag, which
//! revision records pin, stays), and one that holds other bytes than its name says is never
//! adopted. Driven by `weightgate push`, whose small files are staged by the commit's admission.
//! Then a multi-part LFS upload, whose blob must hold exactly the bytes sent.

use std::path::Path;
use std::process::Command;

use sha2::Digest as _;

use crate::common::{self, copy_dir, testdata};
use crate::support::seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};
use crate::support::serve::Server;

const PREFIX: &str = "existing";

/// One signed S3 request with curl's own SigV4 signing: (status, headers and body).
fn s3(sw: &Seaweed, method: &str, key: &str, body: Option<&Path>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-i",
        "-X",
        method,
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
    ])
    .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")]);
    if method == "HEAD" {
        c.arg("-I");
    }
    if let Some(b) = body {
        // curl signs a body only by the digest it is given.
        let digest = hex::encode(sha2::Sha256::digest(std::fs::read(b).unwrap()));
        c.arg("-H")
            .arg(format!("x-amz-content-sha256: {digest}"))
            .arg("--data-binary")
            .arg(format!("@{}", b.display()));
    }
    let o = c
        .arg(format!("{}/{BUCKET}/{PREFIX}/{key}", sw.endpoint()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn etag(sw: &Seaweed, key: &str) -> String {
    let (status, text) = s3(sw, "HEAD", key, None);
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("etag")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no ETag in {text}"))
}

fn push(sw: &Seaweed, ck: &Path, repo: &str, url: &str, token: &str) -> std::process::Output {
    sw.command(env!("CARGO_BIN_EXE_weightgate"))
        .args([
            "push",
            ck.to_str().unwrap(),
            "--repo",
            repo,
            "--endpoint",
            url,
        ])
        .env("HF_TOKEN", token)
        .output()
        .unwrap()
}

#[test]
fn an_admission_reuses_a_stored_blob_of_its_digest_and_never_replaces_it() {
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let attest = common::bin()
        .args(["attest", ck.to_str().unwrap(), "--quiet", "--key"])
        .arg(common::td("keys/test-lab.key"))
        .arg("--claims")
        .arg(common::td("claims/tiny-below.toml"))
        .output()
        .unwrap();
    assert!(attest.status.success(), "{attest:?}");
    let config = std::fs::read(ck.join("config.json")).unwrap();
    let blob = format!("blobs/{}", hex::encode(sha2::Sha256::digest(&config)));

    // A blob named by config.json's SHA-256 that holds other bytes: never adopted, never
    // replaced, and the commit publishes nothing.
    let other = dir.path().join("other.json");
    std::fs::write(&other, b"{\"not\": \"the config\"}\n").unwrap();
    let (status, text) = s3(&sw, "PUT", &blob, Some(&other));
    assert_eq!(status, 200, "{text}");
    let altered = etag(&sw, &blob);

    let url = sw.url(PREFIX);
    let token = sw
        .command(env!("CARGO_BIN_EXE_weightgate"))
        .args(["token", "create", "--store", &url, "--name", "lab-ci"])
        .args(["--write", "lab"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let policy = common::policy_trusting(dir.path(), &["test-lab"], "");
    let mut cmd = sw.command(env!("CARGO_BIN_EXE_weightgate"));
    cmd.args(["serve", "--store", &url, "--listen", "127.0.0.1:0"])
        .arg("--policy")
        .arg(&policy)
        .arg("--audit-log")
        .arg(dir.path().join("audit.log"));
    let gate = Server::spawn(cmd);

    let refused = push(&sw, &ck, "lab/altered", &gate.url(), &token);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("500") && stderr.contains("the gate's log has the details under error id"),
        "{stderr}"
    );
    // The client hears what failed and an error id; the operator's log names the blob and
    // what it holds.
    gate.wait_for_log(&[&blob, "its SHA-256 is"]);
    assert_eq!(etag(&sw, &blob), altered, "the stored blob was replaced");
    let (status, _) = common::http_get(&gate.addr, "/api/models/lab/altered", &[]);
    assert_eq!(status, 404, "a refused commit published lab/altered");

    // The same bytes stored by another client (a single PUT, so an ETag no multipart upload of
    // ours would give): the commit is published over that very object.
    assert_eq!(s3(&sw, "PUT", &blob, Some(&ck.join("config.json"))).0, 200);
    let stored = etag(&sw, &blob);
    let pushed = push(&sw, &ck, "lab/reuse", &gate.url(), &token);
    assert!(pushed.status.success(), "{pushed:?}");
    assert_eq!(etag(&sw, &blob), stored, "the stored blob was replaced");
    let (status, body) = common::http_get(&gate.addr, "/lab/reuse/resolve/main/config.json", &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, config);

    // An LFS upload of two whole 16 MiB parts and a remainder, sent from the buffers they
    // arrived in: the completed blob holds exactly the bytes sent.
    let big = dir.path().join("big.bin");
    let data: Vec<u8> = (0..(33u32 << 20) + 12_345)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    let oid = hex::encode(sha2::Sha256::digest(&data));
    let batch = Command::new("curl")
        .args(["-sf", "-X", "POST", "-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(format!(
            r#"{{"operation":"upload","transfers":["basic"],"objects":[{{"oid":"{oid}","size":{}}}]}}"#,
            data.len()
        ))
        .arg(format!("{}/lab/big.git/info/lfs/objects/batch", gate.url()))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&batch.stdout).to_string();
    let href = answer
        .split("\"href\":\"")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .unwrap_or_else(|| panic!("no upload action: {answer}"));
    let put = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-T"])
        .arg(&big)
        .arg(href)
        .status()
        .unwrap();
    assert!(put.success());
    let stored = dir.path().join("stored.bin");
    let got = Command::new("curl")
        .args(["-sf", "--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}"), "-o"])
        .arg(&stored)
        .arg(format!("{}/{BUCKET}/{PREFIX}/blobs/{oid}", sw.endpoint()))
        .status()
        .unwrap();
    assert!(got.success());
    assert!(
        std::fs::read(&stored).unwrap() == data,
        "the blob differs from the bytes sent"
    );
}
