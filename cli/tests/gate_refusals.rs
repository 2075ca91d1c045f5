//! The gate's last ways to say yes wrongly or to say too much, through `weightgate serve` on a
//! folder store: a request without the destination header the policy names; what a refused
//! revision shows on every route; `paths-info` capped and decided; shortened ids; a blob
//! renamed over the admitted one; objects of a published revision gone; refusal records at
//! shutdown.

use crate::common;
use crate::support::serve;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{copy_dir, revision_of, run, td, testdata};
use serve::Server;
use sha2::Digest as _;

/// Embargoes under the export regime; the licence of `licensed` covers DE, FR and JP, that of
/// `embargo` every destination.
const POLICY: &str = r#"
[policy]
name = "refusals"
regimes = ["us-bis-ai-diffusion-2025"]
destination_header = "CF-IPCountry"
[[trusted_key]]
name = "lab"
path = "KEYS/test-lab.pub"
[[issuer]]
name = "issuer"
authority = "US BIS"
path = "KEYS/test-issuer.pub"
[regime."us-bis-ai-diffusion-2025"]
assume_in_force = true
require_grant = true
"#;

struct Setup {
    dir: tempfile::TempDir,
    /// Revision ids by model name.
    revisions: Vec<(String, String)>,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        fs::write(
            p("policy.toml"),
            POLICY.replace("KEYS", testdata().join("keys").to_str().unwrap()),
        )
        .unwrap();
        let above = fs::read_to_string(testdata().join("claims/tiny-above.toml")).unwrap();
        let anywhere = above.replace("destinations = [\"DE\", \"FR\", \"JP\"]\n", "");
        assert_ne!(anywhere, above);
        fs::write(p("anywhere.toml"), anywhere).unwrap();
        fs::write(p("none.toml"), above.split("[[reference]]").next().unwrap()).unwrap();
        let mut revisions = Vec::new();
        for (name, claims) in [
            ("licensed", td("claims/tiny-above.toml")),
            ("embargo", p("anywhere.toml").to_str().unwrap().to_string()),
            ("frontier", p("none.toml").to_str().unwrap().to_string()),
        ] {
            let ck = p("checkpoints").join(name);
            copy_dir(&testdata().join("checkpoints/tiny"), &ck);
            let r = run([
                "attest",
                ck.to_str().unwrap(),
                "--key",
                &td("keys/test-lab.key"),
                "--claims",
                &claims,
                "--quiet",
            ]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            let grant = p(&format!("{name}.grant"));
            let r = run([
                "grant",
                ck.join("weightgate.att").to_str().unwrap(),
                "--reference",
                "D1234567",
                "--key",
                &td("keys/test-issuer.key"),
                "--out",
                grant.to_str().unwrap(),
            ]);
            let mut args = vec![
                "admit".to_string(),
                ck.to_str().unwrap().into(),
                "--repo".into(),
                format!("lab/{name}"),
                "--store".into(),
                p("store").to_str().unwrap().into(),
                "--policy".into(),
                p("policy.toml").to_str().unwrap().into(),
            ];
            if r.code == 0 {
                args.extend(["--grant".into(), grant.to_str().unwrap().into()]);
            }
            let r = run(&args);
            assert_eq!(r.code, 0, "admit {name}: {}{}", r.stdout, r.stderr);
            revisions.push((name.to_string(), revision_of(&r.stdout)));
        }
        Setup { dir, revisions }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn revision(&self, name: &str) -> &str {
        &self.revisions.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn serve(&self, audit: &Path) -> Server {
        let mut cmd = common::bin();
        cmd.args(["serve", "--store"])
            .arg(self.path("store"))
            .arg("--policy")
            .arg(self.path("policy.toml"))
            .arg("--audit-log")
            .arg(audit)
            .args(["--listen", "127.0.0.1:0"]);
        Server::spawn(cmd)
    }
}

/// Status, headers (lower-cased names) and body of one request.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, buf[end + 4..].to_vec())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn refused_revisions_show_names_and_sizes_only_and_requests_without_a_destination_are_unknown() {
    let s = Setup::new();
    let server = s.serve(&s.path("audit.log"));
    let addr = server.addr.as_str();
    let get = |path: &str, country: Option<&str>| {
        let h: Vec<(&str, &str)> = country.map(|c| ("CF-IPCountry", c)).into_iter().collect();
        request(addr, "GET", path, &h, b"")
    };
    let config = "/lab/embargo/resolve/main/config.json";
    let config_bytes = fs::read(testdata().join("checkpoints/tiny/config.json")).unwrap();

    // The embargo depends on the destination: DE is served, CN refused, and a request
    // without the header is an unknown destination, refused too.
    let (status, _, body) = get(config, Some("DE"));
    assert_eq!(status, 200);
    assert_eq!(body, config_bytes);
    for country in [Some("CN"), None, Some("XX")] {
        let (status, head, body) = get(config, country);
        assert_eq!(status, 451, "{country:?}: {head}");
        assert!(head.contains("x-error-code: gatedrepo"), "{head}");
        assert!(!body.windows(8).any(|w| config_bytes.starts_with(w)));
    }
    let (_, head, _) = get(config, None);
    assert!(head.contains("regime.destination_unknown"), "{head}");

    // What a refused revision shows: names and sizes, never a file's SHA-256 (nor the tree
    // oid made from it), the attestation's digest or a licence number; an allowed one shows
    // all of it.
    let secrets: Vec<String> = {
        let ck = s.path("checkpoints/licensed");
        let mut v: Vec<String> = fs::read_dir(&ck)
            .unwrap()
            .flatten()
            .map(|e| sha256_hex(&fs::read(e.path()).unwrap()))
            .collect();
        v.push(sha256_hex(&fs::read(ck.join("weightgate.att")).unwrap()));
        v.push("D1234567".into());
        v
    };
    let revision = s.revision("licensed");
    let routes = [
        ("GET", "/api/models/lab/licensed".to_string(), &b""[..]),
        (
            "GET",
            format!("/api/models/lab/licensed/revision/{}", &revision[..7]),
            b"",
        ),
        ("GET", "/api/models/lab/licensed/tree/main".into(), b""),
        ("GET", "/api/models/lab/licensed/commits/main".into(), b""),
        (
            "POST",
            "/api/models/lab/licensed/paths-info/main".into(),
            b"paths=config.json&paths=weightgate.att&paths=model.safetensors",
        ),
        ("GET", format!("/v1/decision/lab/licensed/{revision}"), b""),
        ("GET", "/lab/licensed/resolve/main/config.json".into(), b""),
    ];
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    for (country, refused) in [("BR", true), ("DE", false)] {
        let mut shown = String::new();
        for (method, path, body) in &routes {
            let mut h = vec![("CF-IPCountry", country)];
            h.extend(form);
            let (status, head, body) = request(addr, method, path, &h, body);
            let text = format!("{head}\n{}", String::from_utf8_lossy(&body));
            let expected = if path.contains("/resolve/") && refused {
                451
            } else {
                200
            };
            assert_eq!(status, expected, "{country} {path}: {text}");
            if refused {
                for secret in &secrets {
                    assert!(
                        !text.to_lowercase().contains(&secret.to_lowercase())
                            && !text.contains(&secret[..40.min(secret.len())]),
                        "{country} {path} shows {secret}: {text}"
                    );
                }
                if path.contains("/paths-info/") || path.ends_with("/tree/main") {
                    assert!(text.contains("\"config.json\""), "names stay: {text}");
                }
            }
            shown.push_str(&text);
        }
        if refused {
            assert!(shown.contains("regime.destination_not_covered"), "{shown}");
            assert!(shown.contains("(number withheld)"), "{shown}");
        } else {
            for secret in &secrets[..secrets.len() - 1] {
                assert!(
                    shown.contains(secret.as_str()),
                    "allowed: {secret} not shown"
                );
            }
        }
    }

    // paths-info: at most 1,000 paths per request, as huggingface_hub batches them.
    let mut many = String::new();
    for i in 0..1001 {
        many.push_str(&format!("paths=f{i}&"));
    }
    let (status, _, body) = request(
        addr,
        "POST",
        "/api/models/lab/licensed/paths-info/main",
        &form,
        many.as_bytes(),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("at most 1000"));
    // A shortened id resolves, an unknown one does not.
    let (status, _, _) = get(
        &format!("/v1/decision/lab/embargo/{}", &s.revision("embargo")[..9]),
        Some("DE"),
    );
    assert_eq!(status, 200);
    let (status, _, _) = get("/v1/decision/lab/embargo/0000000", Some("DE"));
    assert_eq!(status, 404);
}

#[test]
fn a_blob_renamed_over_the_admitted_one_and_missing_objects_are_never_served() {
    let s = Setup::new();
    let server = s.serve(&s.path("audit.log"));
    let addr = server.addr.as_str();
    let de = [("CF-IPCountry", "DE")];
    let config_bytes = fs::read(testdata().join("checkpoints/tiny/config.json")).unwrap();
    let blob = s.path("store/blobs").join(sha256_hex(&config_bytes));
    let path = "/lab/embargo/resolve/main/config.json";
    assert_eq!(request(addr, "GET", path, &de, b"").0, 200);

    // Same size, other bytes, renamed over the blob, read-only, its mtime set back.
    let mut other = config_bytes.clone();
    other[1] ^= 0x20;
    let staged = s.path("store/blobs/.replacement");
    fs::write(&staged, &other).unwrap();
    let mtime = fs::metadata(&blob).unwrap().modified().unwrap();
    fs::File::options()
        .write(true)
        .open(&staged)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let mut perms = fs::metadata(&staged).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&staged, perms).unwrap();
    fs::rename(&staged, &blob).unwrap();
    let (status, head, body) = request(addr, "GET", path, &de, b"");
    assert_eq!(status, 451, "{head}");
    assert!(!body.windows(other.len()).any(|w| w == other));
    assert!(server.log_has("no longer matches what was admitted"));

    // A blob gone from a published revision (a gc, an operator): 503 with a log line.
    fs::remove_file(&blob).unwrap();
    let (status, head, _) = request(addr, "GET", path, &de, b"");
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("x-error-code: storeincomplete"), "{head}");
    assert!(server.log_has("STORE INCOMPLETE"));
    // Its envelope gone: no decision can be made, 503, never a 500.
    let envelope = fs::read(s.path("checkpoints/frontier/weightgate.att")).unwrap();
    fs::remove_file(
        s.path("store/attestations")
            .join(format!("{}.att", sha256_hex(&envelope))),
    )
    .unwrap();
    for path in [
        "/lab/frontier/resolve/main/config.json",
        "/api/models/lab/frontier",
        "/api/models/lab/frontier/tree/main",
    ] {
        let (status, head, _) = request(addr, "GET", path, &de, b"");
        assert_eq!(status, 503, "{path}: {head}");
    }
}

/// Refusals over `connections` keep-alive connections; the number answered 451.
fn flood_refusals(addr: &str, path: &str, connections: usize, each: usize) -> usize {
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let addr = addr.to_string();
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
                let mut refused = 0;
                for _ in 0..each {
                    s.write_all(req.as_bytes()).unwrap();
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    refused += usize::from(line.contains(" 451 "));
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                }
                refused
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).sum()
}

#[test]
fn every_refusal_is_in_the_audit_log_or_counted_and_sigterm_drains_it() {
    let s = Setup::new();
    // A pipe nobody reads until shutdown: the writer stalls at once, the queue fills, and
    // what it cannot take must be counted.
    let fifo = s.path("audit.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut server = s.serve(&fifo);
    let refused = flood_refusals(
        &server.addr,
        "/lab/frontier/resolve/main/config.json",
        4,
        3000,
    );
    assert_eq!(refused, 12_000);
    let started = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Read the pipe to its end: EOF when the server has drained the log and exited.
    let mut text = String::new();
    fs::File::open(&fifo)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let (mut written, mut dropped) = (0u64, 0u64);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["dropped"].as_u64() {
            Some(n) => {
                assert_eq!(v["repo"], "lab/frontier", "{line}");
                assert_eq!(v["status"], 451, "{line}");
                // No destination header: an unknown destination, which the embargo refuses.
                assert_eq!(v["reasons"][0], "regime.destination_unknown", "{line}");
                dropped += n;
            }
            None => {
                assert_eq!(v["decision"], "deny", "{line}");
                written += 1;
            }
        }
    }
    assert!(dropped > 0, "the queue never filled: {written} written");
    assert_eq!(
        written + dropped,
        12_000,
        "{written} written, {dropped} counted"
    );
    assert!(server.log_has("audit log drained"));
}
