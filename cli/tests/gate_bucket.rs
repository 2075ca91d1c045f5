//! Gates over a real S3-compatible bucket (SeaweedFS on loopback, nothing mocked), through the
//! `weightgate` binary and the unchanged `huggingface_hub` client: two instances over one
//! bucket, one proxying and one redirecting to presigned URLs; a revocation in the bucket's
//! policy object reaching both; an object overwritten behind the gates' backs; a volume server
//! killed mid-download.

use crate::common;
use crate::support::seaweed;
use crate::support::serve;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{copy_dir, python, td, testdata};
use seaweed::{ACCESS_KEY, BUCKET, Role, SECRET_KEY, Seaweed};
use serve::Server;
use sha2::Digest as _;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// PUTs `bytes` at `key` with curl's own SigV4 signing (a client independent of ours).
fn put_object(sw: &Seaweed, dir: &Path, key: &str, bytes: &[u8]) {
    let file = dir.join("put-body");
    std::fs::write(&file, bytes).unwrap();
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .arg("-T")
        .arg(&file)
        .arg(format!("{}/{BUCKET}/{key}", sw.endpoint()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "200", "PUT {key}");
}

/// curl with SigV4 signing on `key` of the bucket; its stdout.
fn signed_curl(sw: &Seaweed, args: &[&str], key: &str) -> String {
    let o = Command::new("curl")
        .args(["-s", "--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .args(args)
        .arg(format!("{}/{BUCKET}/{key}", sw.endpoint()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The tiny checkpoint plus `weights.bin` of `mib` MiB, attested by the test lab and admitted
/// into `s3://BUCKET/PREFIX` as `lab/model`. Returns the checkpoint and a policy trusting the
/// lab (its text, too).
fn admitted(sw: &Seaweed, dir: &Path, prefix: &str, mib: usize) -> (PathBuf, PathBuf, String) {
    let ck = dir.join("model");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let data: Vec<u8> = (0..(mib << 20) as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(ck.join("weights.bin"), &data).unwrap();
    let run = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(Command::new(env!("CARGO_BIN_EXE_weightgate")).args([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--quiet",
    ]));
    let policy = dir.join("policy.toml");
    let text = format!(
        "[policy]\nname = \"p\"\n[[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n",
        td("keys/test-lab.pub")
    );
    std::fs::write(&policy, &text).unwrap();
    run(sw
        .command(env!("CARGO_BIN_EXE_weightgate"))
        .args(["admit", ck.to_str().unwrap(), "--repo", "lab/model"])
        .args(["--store", &sw.url(prefix), "--policy"])
        .arg(&policy)
        .arg("--quiet"));
    (ck, policy, text)
}

/// `weightgate serve` over a bucket on a free port, with an audit log.
fn serve(sw: &Seaweed, store: &str, policy: &Path, audit: &Path, extra: &[&str]) -> Server {
    let mut cmd = sw.command(env!("CARGO_BIN_EXE_weightgate"));
    cmd.args(["serve", "--store", store, "--policy"])
        .arg(policy)
        .arg("--audit-log")
        .arg(audit)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra);
    Server::spawn(cmd)
}

/// curl: (status, lower-cased headers) of a request to `server` with extra curl arguments.
fn head(server: &Server, path: &str, args: &[&str]) -> (u16, Vec<(String, String)>) {
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-"])
        .args(args)
        .arg(format!("{}{path}", server.url()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn two_gates_over_one_bucket_proxy_redirect_revoke_and_refuse_a_replaced_object() {
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let (ck, policy, policy_text) = admitted(&sw, dir.path(), "fleet", 6);
    let store = sw.url("fleet");
    let poll = ["--policy-poll", "1"];
    // Clients on loopback get the copying relay by default; a remote client gets the splice,
    // forced here so both relays serve the real client.
    let proxy = serve(&sw, &store, &policy, &dir.path().join("a.log"), &poll);
    let spliced = serve(
        &sw,
        &store,
        &policy,
        &dir.path().join("c.log"),
        &["--proxy-relay", "splice"],
    );
    let redirect = serve(
        &sw,
        &store,
        &policy,
        &dir.path().join("b.log"),
        &["--policy-poll", "1", "--download", "redirect"],
    );

    // The unchanged client through both modes gets the admitted bytes.
    for (mode, server) in [
        ("proxy", &proxy),
        ("proxy", &spliced),
        ("redirect", &redirect),
    ] {
        let o = Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf/gate_bucket_client.py"))
            .arg(mode)
            .arg(&ck)
            .env("HF_ENDPOINT", server.url())
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{mode}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // Proxy: Range passed through, HEAD answered from the object's metadata.
    let weights = std::fs::read(ck.join("weights.bin")).unwrap();
    let size = weights.len();
    let path = "/lab/model/resolve/main/weights.bin";
    let (s, h) = head(&proxy, path, &["-H", "Range: bytes=100-199"]);
    assert_eq!(s, 206, "{h:?}");
    assert_eq!(
        header(&h, "content-range"),
        Some(&*format!("bytes 100-199/{size}"))
    );
    for server in [&proxy, &spliced] {
        let o = Command::new("curl")
            .args(["-s", "-H", "Range: bytes=100-199"])
            .arg(format!("{}{path}", server.url()))
            .output()
            .unwrap();
        assert_eq!(o.stdout, weights[100..200]);
    }
    let (s, _) = head(&proxy, path, &["-H", &format!("Range: bytes={size}-")]);
    assert_eq!(s, 416);
    let (s, h) = head(&proxy, path, &["-I"]);
    assert_eq!(s, 200, "{h:?}");
    assert_eq!(header(&h, "content-length"), Some(&*size.to_string()));

    // Redirect: a 302 to a presigned URL of the bucket, carrying what the client needs.
    let sha = sha256_hex(&weights);
    let (s, h) = head(&redirect, path, &["-I"]);
    assert_eq!(s, 302, "{h:?}");
    let location = header(&h, "location").unwrap();
    assert!(
        location.starts_with(&sw.endpoint()) && location.contains("X-Amz-Signature="),
        "{location}"
    );
    assert_eq!(header(&h, "x-linked-etag"), Some(&*format!("\"{sha}\"")));
    assert_eq!(header(&h, "x-linked-size"), Some(&*size.to_string()));
    assert_eq!(header(&h, "x-repo-commit").map(str::len), Some(40));

    // An object replaced behind the gates' backs (same size, other bytes) is refused. The
    // storage itself refuses a GET with `If-Match` on the admitted ETag, which the proxy sends
    // so that a replacement between its check and its GET is caught too.
    let key = format!("fleet/blobs/{sha}");
    let admitted_etag = signed_curl(&sw, &["-I"], &key)
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .starts_with("etag:")
                .then(|| l[5..].trim().to_string())
        })
        .unwrap();
    let mut altered = weights.clone();
    altered[7] ^= 1;
    put_object(&sw, dir.path(), &key, &altered);
    let status = signed_curl(
        &sw,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("If-Match: {admitted_etag}"),
        ],
        &key,
    );
    assert_eq!(status, "412", "the storage ignores If-Match");
    let (s, h) = head(&proxy, path, &[]);
    assert_eq!(s, 451, "{h:?}");
    assert!(proxy.log_has("no longer matches what was admitted"));
    let (s, _) = head(&redirect, path, &["-I"]);
    assert_eq!(
        s, 451,
        "redirect mode must not redirect to a replaced object"
    );

    // A revocation written once, in the bucket, reaches both instances; refusals never
    // redirect.
    let env = weightgate_schemas::Envelope::decode_strict(
        &std::fs::read(ck.join("weightgate.att")).unwrap(),
    )
    .unwrap();
    let id = sha256_hex(&env.payload);
    let config = "/lab/model/resolve/main/config.json";
    assert_eq!(head(&proxy, config, &[]).0, 200);
    assert_eq!(head(&redirect, config, &["-I"]).0, 302);
    put_object(
        &sw,
        dir.path(),
        "fleet/policy.toml",
        format!("{policy_text}\n[revoked]\nattestations = [\"{id}\"]\n").as_bytes(),
    );
    let written = Instant::now();
    let mut applied = [None, None];
    while applied.iter().any(Option::is_none) && written.elapsed() < Duration::from_secs(15) {
        for (i, (server, args)) in [(&proxy, &[][..]), (&redirect, &["-I"][..])]
            .into_iter()
            .enumerate()
        {
            if applied[i].is_none() {
                let (s, h) = head(server, config, args);
                if s == 451 {
                    assert!(header(&h, "location").is_none());
                    assert!(
                        header(&h, "x-error-message")
                            .is_some_and(|m| m.contains("attestation.revoked")),
                        "{h:?}"
                    );
                    applied[i] = Some(written.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "revocation applied: proxy after {:?}, redirect after {:?}",
        applied[0], applied[1]
    );
    assert!(
        applied.iter().all(Option::is_some),
        "revocation not applied everywhere: {applied:?}"
    );
    assert!(proxy.log_has("policy reloaded from the store"));

    // An invalid policy object is reported and changes nothing: the revocation stays in force.
    put_object(
        &sw,
        dir.path(),
        "fleet/policy.toml",
        b"[revoked\nattestations = 7\n",
    );
    assert!(proxy.log_has("policy NOT reloaded"));
    assert!(redirect.log_has("policy NOT reloaded"));
    assert_eq!(head(&proxy, config, &[]).0, 451);
    assert_eq!(head(&redirect, config, &["-I"]).0, 451);
}

#[test]
fn storage_faults_give_a_truncated_transfer_or_503_never_a_500() {
    let mut sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let (ck, policy, _) = admitted(&sw, dir.path(), "k", 48);
    let server = serve(&sw, &sw.url("k"), &policy, &dir.path().join("a.log"), &[]);
    let weights = std::fs::read(ck.join("weights.bin")).unwrap();

    let mut c = TcpStream::connect(&server.addr).unwrap();
    write!(
        c,
        "GET /lab/model/resolve/main/weights.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // The head and the first bytes, then the volume server dies while the client reads on.
    let mut got = vec![0u8; 64 << 10];
    let n = c.read(&mut got).unwrap();
    got.truncate(n);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    sw.kill(Role::Volume);
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    got.extend(rest);
    let start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &got[start..];
    eprintln!(
        "volume server killed: {} of {} body bytes arrived",
        body.len(),
        weights.len()
    );
    // Either cut short (the client sees a truncated transfer) or, if the gateway had it all
    // already, exactly the admitted bytes: never a wrong complete file.
    assert!(
        body.len() < weights.len() || body == &weights[..],
        "a complete-looking body of {} bytes that is not the admitted file",
        body.len()
    );

    // With the volume server gone, a download is 503 with Retry-After, never a 500.
    let (s, h) = head(&server, "/lab/model/resolve/main/weights.bin", &[]);
    assert_eq!(s, 503, "{h:?}");
    assert!(header(&h, "retry-after").is_some(), "{h:?}");
    assert_eq!(header(&h, "x-error-code"), Some("StoreUnavailable"));

    // The S3 endpoint itself unreachable: records cannot be read either, still 503.
    sw.kill(Role::S3);
    std::thread::sleep(Duration::from_millis(1100)); // past the per-second record cache
    for path in [
        "/lab/model/resolve/main/config.json",
        "/api/models/lab/model/revision/main",
    ] {
        let (s, h) = head(&server, path, &[]);
        assert_eq!(s, 503, "{path}: {h:?}");
        assert!(header(&h, "retry-after").is_some(), "{h:?}");
    }
    assert_eq!(head(&server, "/healthz", &[]).0, 200);
}
