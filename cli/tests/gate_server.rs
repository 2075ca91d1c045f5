//! The gate server with the real Hugging Face client (`huggingface_hub`, installed by `.ci/run`
//! into `.ci/venv`), plus audit-log crash safety. Starts `weightgate serve` on 127.0.0.1 itself.

use crate::common;
use crate::support::serve;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{attest_as_lab, copy_dir, python, run, td, testdata};
use serve::Server;
use sha2::Digest as _;

fn start(store: &Path, policy: &Path) -> Server {
    start_with(store, policy, &[])
}

fn start_with(store: &Path, policy: &Path, extra: &[&str]) -> Server {
    start_cmd(common::bin(), store, policy, extra)
}

/// The server with its open-file limit lowered to `files` (through the shell's `ulimit`).
fn start_with_file_limit(store: &Path, policy: &Path, files: u32, extra: &[&str]) -> Server {
    let mut sh = Command::new("sh");
    sh.args([
        "-c",
        &format!("ulimit -n {files} && exec \"$0\" \"$@\""),
        env!("CARGO_BIN_EXE_weightgate"),
    ]);
    start_cmd(sh, store, policy, extra)
}

fn start_cmd(mut cmd: Command, store: &Path, policy: &Path, extra: &[&str]) -> Server {
    cmd.args([
        "serve",
        "--store",
        store.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .args(extra);
    Server::spawn(cmd)
}

const POLICY: &str = r#"
[policy]
name = "gate test"
regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]
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
}

impl Setup {
    fn new() -> Self {
        let s = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        let cks = s.path("checkpoints");
        let policy_text = POLICY.replace("KEYS", testdata().join("keys").to_str().unwrap());
        fs::write(s.path("policy.toml"), &policy_text).unwrap();
        let above = fs::read_to_string(testdata().join("claims/tiny-above.toml")).unwrap();
        fs::write(
            s.path("no-refs.toml"),
            above.split("[[reference]]").next().unwrap(),
        )
        .unwrap();
        for (name, claims) in [
            ("tiny", td("claims/tiny-below.toml")),
            (
                "frontier",
                s.path("no-refs.toml").to_str().unwrap().to_string(),
            ),
            ("licensed", td("claims/tiny-above.toml")),
        ] {
            let ck = cks.join(name);
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
        }
        let grant = s.path("licence.grant");
        let r = run([
            "grant",
            cks.join("licensed/weightgate.att").to_str().unwrap(),
            "--reference",
            "D1234567",
            "--key",
            &td("keys/test-issuer.key"),
            "--out",
            grant.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        // No request could be served lab/frontier under this policy, so admission would refuse
        // it: it is admitted as before the EU and California regimes took effect (the BIS rule alone
        // serves it in Tier 1 countries).
        fs::write(
            s.path("policy-before-regimes.toml"),
            policy_text.replace(
                r#"regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]"#,
                r#"regimes = ["us-bis-ai-diffusion-2025"]"#,
            ),
        )
        .unwrap();
        for name in ["tiny", "frontier", "licensed"] {
            let admit_policy = match name {
                "frontier" => "policy-before-regimes.toml",
                _ => "policy.toml",
            };
            let mut args = vec![
                "admit".to_string(),
                cks.join(name).to_str().unwrap().into(),
                "--repo".into(),
                format!("lab/{name}"),
                "--store".into(),
                s.path("store").to_str().unwrap().into(),
                "--policy".into(),
                s.path(admit_policy).to_str().unwrap().into(),
            ];
            if name == "licensed" {
                args.extend(["--grant".into(), grant.to_str().unwrap().into()]);
            }
            let r = run(&args);
            assert_eq!(r.code, 0, "admit {name}: {}{}", r.stdout, r.stderr);
        }
        // The same policy revoking the tiny model's attestation.
        let env = weightgate_schemas::Envelope::decode_strict(
            &fs::read(cks.join("tiny/weightgate.att")).unwrap(),
        )
        .unwrap();
        let id = hex::encode(sha2::Sha256::digest(&env.payload));
        fs::write(
            s.path("revoked.toml"),
            format!("{policy_text}\n[revoked]\nattestations = [\"{id}\"]\n"),
        )
        .unwrap();
        s
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

#[test]
fn huggingface_hub_downloads_what_is_allowed_and_gets_gated_repo_errors_otherwise() {
    let py = python();
    let s = Setup::new();
    let server = start(&s.path("store"), &s.path("policy.toml"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf/gate_client.py");
    let out = Command::new(py)
        .env("WEIGHTGATE_BIN", env!("CARGO_BIN_EXE_weightgate"))
        .env("WEIGHTGATE_TRUST", td("keys/test-lab.pub"))
        .arg(script)
        .args([
            format!("http://{}", server.addr),
            server.child.id().to_string(),
            s.path("policy.toml").to_str().unwrap().into(),
            s.path("revoked.toml").to_str().unwrap().into(),
            s.path("checkpoints").to_str().unwrap().into(),
            s.path("store").to_str().unwrap().into(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("ok: ").count(), 7, "{stdout}");
    // The CLI handled SIGHUP and said so; the altered blob was reported with its fields.
    let policy_field = format!("policy={}", s.path("policy.toml").display());
    server.wait_for_log(&["INFO", "policy reloaded", &policy_field]);
    server.wait_for_log(&[
        "WARN",
        "refused: the stored file no longer matches what was admitted",
        "repo=\"lab/licensed\"",
        "path=\"config.json\"",
    ]);
    drop(server);
    // Every decision was logged as a whole JSON line, refusals with their reason codes.
    let log = fs::read_to_string(s.path("store/audit.log")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records
            .iter()
            .any(|r| r["decision"] == "allow" && r["bytes"].as_u64() > Some(0))
    );
    assert!(
        records
            .iter()
            .any(|r| r["decision"] == "deny" && r["reasons"][0] == "regime.reference_missing")
    );
    assert!(
        records
            .iter()
            .any(|r| r["reasons"][0] == "attestation.revoked")
    );
    assert!(
        records
            .iter()
            .any(|r| r["destination"] == "BR" && r["status"] == 451)
    );
}

/// A SIGHUP with a broken policy file keeps the previous policy, says so, and keeps serving.
#[test]
fn sighup_with_an_invalid_policy_keeps_the_previous_one() {
    let s = Setup::new();
    let server = start(&s.path("store"), &s.path("policy.toml"));
    assert_eq!(
        get(&server.addr, "/lab/tiny/resolve/main/config.json"),
        Some(200)
    );
    fs::write(s.path("policy.toml"), "[policy\nname = ").unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = server.wait_for_log(&["WARN", "policy NOT reloaded, keeping the previous one"]);
    assert!(line.contains("error="), "{line}");
    assert_eq!(
        get(&server.addr, "/lab/tiny/resolve/main/config.json"),
        Some(200)
    );
    assert_eq!(
        get(&server.addr, "/lab/frontier/resolve/main/config.json"),
        Some(451)
    );
}

fn get(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn after_kill_9_under_load_the_audit_log_holds_only_whole_lines() {
    let s = Setup::new();
    let mut server = start(&s.path("store"), &s.path("policy.toml"));
    let addr = server.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (addr, stop, count) = (addr.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let path = if i % 2 == 0 {
                        "/lab/tiny/resolve/main/config.json"
                    } else {
                        "/lab/frontier/resolve/main/config.json"
                    };
                    if get(&addr, path).is_none() {
                        break;
                    }
                    n += 1;
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                n
            })
        })
        .collect();
    // Under load, whatever the machine's speed: kill once enough requests went through.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count.load(std::sync::atomic::Ordering::Relaxed) < 200
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SIGKILL mid-load.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(served > 50, "only {served} requests before the kill");
    let log = fs::read(s.path("store/audit.log")).unwrap();
    assert!(
        log.is_empty() || log.ends_with(b"\n"),
        "a partial last line"
    );
    let text = String::from_utf8(log).unwrap();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("torn line {line:?}: {e}"));
        assert!(v["status"] == 200 || v["status"] == 451, "{line}");
    }
    assert!(text.lines().count() > 10, "{} lines", text.lines().count());
}

#[test]
fn admission_is_validated_and_idempotent() {
    let s = Setup::new();
    let store = s.path("store");
    let ck = s.path("checkpoints/tiny");
    let before: Vec<_> = fs::read_dir(store.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let r = run([
        "admit",
        ck.to_str().unwrap(),
        "--repo",
        "lab/tiny",
        "--store",
        store.to_str().unwrap(),
        "--policy",
        s.path("policy.toml").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after: Vec<_> = fs::read_dir(store.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before.len(), after.len());
    for bad in ["../x", "lab", "lab/a/b", "lab/.x"] {
        let r = run([
            "admit",
            ck.to_str().unwrap(),
            "--repo",
            bad,
            "--store",
            store.to_str().unwrap(),
            "--policy",
            s.path("policy.toml").to_str().unwrap(),
        ]);
        assert_eq!(r.code, 2, "{bad}");
        assert!(r.stderr.contains("repository"), "{}", r.stderr);
    }
    // A tampered checkpoint is not admitted and leaves the store as it was, although the store
    // holds every attested blob (for another repository: the source must show it has the bytes).
    let mut bytes = fs::read(ck.join("config.json")).unwrap();
    bytes[3] ^= 1;
    fs::write(ck.join("config.json"), bytes).unwrap();
    let admit_other = |into: &std::path::Path| {
        run([
            "admit",
            ck.to_str().unwrap(),
            "--repo",
            "lab/other",
            "--store",
            into.to_str().unwrap(),
            "--policy",
            s.path("policy.toml").to_str().unwrap(),
        ])
    };
    let r = admit_other(&store);
    assert_eq!(r.code, 1, "{}", r.stdout);
    // Named as verify names it, and nothing is staged or left behind.
    assert!(r.stdout.contains("subject.digest_mismatch"), "{}", r.stdout);
    assert!(!store.join("repos/lab/other").exists());
    let now: Vec<_> = fs::read_dir(store.join("blobs")).unwrap().collect();
    assert_eq!(now.len(), after.len());
    assert_eq!(fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    // Into an empty store, the tampered file is found while it is copied.
    let fresh = s.path("fresh-store");
    let r = admit_other(&fresh);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("subject.digest_mismatch"), "{}", r.stdout);
    assert!(!fresh.join("repos/lab/other").exists());
    assert_eq!(fs::read_dir(fresh.join("blobs")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(fresh.join("tmp")).unwrap().count(), 0);
    // Without a trusted signature nothing is copied at all.
    let untrusting = s.path("untrusting.toml");
    fs::write(&untrusting, "[policy]\nname = \"nobody\"\n").unwrap();
    let r = run([
        "admit",
        ck.to_str().unwrap(),
        "--repo",
        "lab/unsigned",
        "--store",
        store.to_str().unwrap(),
        "--policy",
        untrusting.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("signature."), "{}", r.stdout);
    assert!(!r.stdout.contains("subject"), "{}", r.stdout);
    assert!(!store.join("repos/lab/unsigned").exists());
    assert_eq!(fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    // Blobs are read-only.
    for e in fs::read_dir(store.join("blobs")).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            e.unwrap().metadata().unwrap().permissions().mode() & 0o777,
            0o444
        );
    }
}

#[test]
fn slow_clients_are_cut_off_and_oversized_headers_refused() {
    let s = Setup::new();
    let server = start_with(
        &s.path("store"),
        &s.path("policy.toml"),
        &["--header-timeout", "0.5"],
    );
    // Ten clients that never finish their headers.
    let slow: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut c = TcpStream::connect(&server.addr).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            c
        })
        .collect();
    // The server keeps answering others meanwhile.
    assert_eq!(get(&server.addr, "/healthz"), Some(200));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for mut c in slow {
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = Vec::new();
        // Closed by the server (EOF or reset, possibly after a 408): never left hanging.
        if let Err(e) = c.read_to_end(&mut buf) {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "slow connection left open"
            );
        }
        let text = String::from_utf8_lossy(&buf);
        assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    let mut c = TcpStream::connect(&server.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let big = "x".repeat(100 * 1024);
    let _ = write!(
        c,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"
    );
    let mut buf = Vec::new();
    if let Err(e) = c.read_to_end(&mut buf) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "oversized request left open"
        );
    }
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert_eq!(get(&server.addr, "/healthz"), Some(200));
}

/// Admits `lab/big`: the tiny model plus `big.bin`, 64 MiB of sevens (far more than loopback
/// socket buffers hold). Returns the file's size.
fn admit_big_model(s: &Setup) -> usize {
    let ck = s.path("checkpoints/big");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let size: usize = 64 << 20;
    fs::write(ck.join("big.bin"), vec![7u8; size]).unwrap();
    attest_as_lab(&ck);
    let r = run([
        "admit",
        ck.to_str().unwrap(),
        "--repo",
        "lab/big",
        "--store",
        s.path("store").to_str().unwrap(),
        "--policy",
        s.path("policy.toml").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    size
}

#[test]
fn a_client_that_stops_reading_a_download_is_cut_off() {
    let s = Setup::new();
    let size = admit_big_model(&s);
    let server = start_with(
        &s.path("store"),
        &s.path("policy.toml"),
        &["--write-timeout", "1"],
    );
    let mut stalled = TcpStream::connect(&server.addr).unwrap();
    write!(
        stalled,
        "GET /lab/big/resolve/main/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = stalled.read(&mut head).unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..n])
    );
    // Stop reading long enough for the write timeout to fire; others are still served.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(get(&server.addr, "/healthz"), Some(200));
    // Draining now ends early: the server closed the connection part-way.
    stalled
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut received = n;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => received += k,
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "stalled connection left open"
                );
                break;
            }
        }
    }
    assert!(
        received < size,
        "the whole file arrived ({received} bytes): no write timeout"
    );
}

#[test]
fn a_blob_cut_short_during_a_download_ends_the_connection() {
    let s = Setup::new();
    let size = admit_big_model(&s);
    let server = start_with(&s.path("store"), &s.path("policy.toml"), &[]);
    let mut client = TcpStream::connect(&server.addr).unwrap();
    write!(
        client,
        "GET /lab/big/resolve/main/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = client.read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(&format!("content-length: {size}")), "{text}");
    // Behind the store's back, while the server waits for the client to read on: the blob
    // (the largest file in blobs/) shrinks to 1 MiB.
    let blob = fs::read_dir(s.path("store/blobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut perms = fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&blob, perms).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&blob)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    // The client reads on and sees the connection end before Content-Length bytes: a
    // truncated transfer, not a complete-looking file.
    let (closed, rest) = closed_within(&mut client, 20);
    assert!(closed, "connection left open after the blob was cut short");
    let body = n - text.find("\r\n\r\n").unwrap() - 4 + rest.len();
    assert!(body < size, "a complete-looking body of {body} bytes");
    // The server goes on, and the changed blob is refused from now on.
    assert_eq!(get(&server.addr, "/healthz"), Some(200));
    assert_eq!(
        get(&server.addr, "/lab/big/resolve/main/big.bin"),
        Some(451)
    );
}

/// Reads until the server closes the connection; false if it is still open after `secs`.
fn closed_within(c: &mut TcpStream, secs: u64) -> (bool, Vec<u8>) {
    c.set_read_timeout(Some(std::time::Duration::from_secs(secs)))
        .unwrap();
    let mut buf = Vec::new();
    match c.read_to_end(&mut buf) {
        Ok(_) => (true, buf),
        Err(e) => (
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            buf,
        ),
    }
}

#[test]
fn silent_slow_and_http2_clients_cannot_crowd_out_real_ones() {
    let s = Setup::new();
    // 160 open files allow (160 - 64) / 2 = 48 connections; the header timeout is long, so
    // only evicting idle connections (not waiting them out) lets real clients in.
    let server = start_with_file_limit(
        &s.path("store"),
        &s.path("policy.toml"),
        160,
        &["--header-timeout", "60"],
    );
    let addr = server.addr.clone();
    let mut held = Vec::new();
    // Silent sockets, far more than the cap and than the open-file limit.
    for _ in 0..300 {
        if let Ok(c) = TcpStream::connect(&addr) {
            held.push(c);
        }
    }
    // Half-open HTTP/2 prefaces and slowloris heads.
    for i in 0..40 {
        let Ok(mut c) = TcpStream::connect(&addr) else {
            continue;
        };
        let _ = if i % 2 == 0 {
            c.write_all(b"PRI * HTTP/2.0\r\n\r\nS")
        } else {
            c.write_all(b"GET /lab/tiny/resolve/main/config.json HTTP/1.1\r\nHost: x\r\nX-a: ")
        };
        held.push(c);
    }
    // Real clients are still answered, one after another.
    for _ in 0..5 {
        assert_eq!(get(&addr, "/healthz"), Some(200));
    }
    let py = python();
    let out = Command::new(py)
        .args([
            "-c",
            "import sys, os\n\
             os.environ.update(HF_ENDPOINT=sys.argv[1], HF_HUB_DISABLE_XET='1', HF_HUB_DISABLE_TELEMETRY='1', HF_HUB_DISABLE_IMPLICIT_TOKEN='1', HF_HUB_ETAG_TIMEOUT='10')\n\
             from huggingface_hub import hf_hub_download\n\
             import tempfile\n\
             with tempfile.TemporaryDirectory() as cache:\n\
             \x20   p = hf_hub_download('lab/tiny', 'model-00001-of-00002.safetensors', cache_dir=cache)\n\
             \x20   print(open(p, 'rb').read().hex())",
            &format!("http://{addr}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = fs::read(s.path("checkpoints/tiny/model-00001-of-00002.safetensors")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        hex::encode(want)
    );
    // The oldest silent sockets were closed to make room, not left holding descriptors.
    let (closed, _) = closed_within(&mut held[0], 5);
    assert!(closed, "the oldest silent connection is still open");
    // A complete HTTP/2 prior-knowledge preface gets an HTTP/1 error and is closed.
    let mut h2 = TcpStream::connect(&addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let (closed, reply) = closed_within(&mut h2, 10);
    assert!(closed, "an HTTP/2 connection was kept open");
    assert!(
        reply.is_empty() || reply.starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    drop(held);
    assert_eq!(get(&addr, "/healthz"), Some(200));
}

/// Sends one request and returns the status and the whole response (head and body).
fn request(addr: &str, head: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "{head}Connection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let status = String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, buf)
}

#[test]
fn a_download_that_cannot_be_recorded_is_refused_and_reported() {
    let s = Setup::new();
    let server = start_with(
        &s.path("store"),
        &s.path("policy.toml"),
        &["--audit-log", "/dev/full"],
    );
    let file = fs::read(s.path("checkpoints/tiny/model-00001-of-00002.safetensors")).unwrap();
    let (status, reply) = request(
        &server.addr,
        "GET /lab/tiny/resolve/main/model-00001-of-00002.safetensors HTTP/1.1\r\nHost: x\r\n",
    );
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&reply));
    // Not one byte of the file went out.
    assert!(
        !reply.windows(16).any(|w| file.windows(16).any(|f| f == w)),
        "file bytes in a 503"
    );
    // A refusal still answers (it serves nothing).
    let (status, _) = request(
        &server.addr,
        "GET /lab/frontier/resolve/main/config.json HTTP/1.1\r\nHost: x\r\n",
    );
    assert_eq!(status, 451);
    // Both are loud in the operational log: the refused download and the lost refusal record.
    server.wait_for_log(&["ERROR", "AUDIT LOG FAILING: download refused with 503"]);
    server.wait_for_log(&["ERROR", "cannot write the audit log"]);
}

#[test]
fn paths_info_bodies_that_are_too_large_or_malformed_are_refused() {
    let s = Setup::new();
    let server = start(&s.path("store"), &s.path("policy.toml"));
    let post = |content_type: &str, body: &[u8]| {
        let mut head = format!(
            "POST /api/models/lab/tiny/paths-info/main HTTP/1.1\r\nHost: x\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(b"Connection: close\r\n\r\n");
        head.extend_from_slice(body);
        let mut c = TcpStream::connect(&server.addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        c.write_all(&head).unwrap();
        let mut reply = Vec::new();
        let _ = c.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply).to_string();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    };
    // A well-formed request still answers, so the refusals below are about the body.
    let (status, text) = post(
        "application/x-www-form-urlencoded",
        b"paths=config.json&paths=missing.bin",
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"config.json\"") && !text.contains("missing.bin"));

    // Over the 1 MiB cap: 413, nothing parsed.
    let mut big = b"paths=".to_vec();
    big.resize((1 << 20) + 10, b'a');
    let (status, text) = post("application/x-www-form-urlencoded", &big);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("too large"), "{text}");

    // Malformed: not JSON, or JSON without a list of strings. (A form always decodes: bytes
    // that are not UTF-8 become U+FFFD, a path no revision holds, so the answer is `[]`.)
    for (content_type, body) in [
        ("application/json", &b"{\"paths\": [\"config.json\""[..]),
        ("application/json", b"{\"paths\": [1, 2]}"),
        ("application/json", b"{\"files\": [\"config.json\"]}"),
    ] {
        let (status, text) = post(content_type, body);
        assert_eq!(
            status,
            400,
            "{content_type} {}: {text}",
            String::from_utf8_lossy(body)
        );
        assert!(text.contains("expected paths="), "{text}");
    }
    let (status, text) = post("application/x-www-form-urlencoded", b"paths=%FF%FE");
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("[]"), "{text}");
    // The server is still up for everyone else.
    assert_eq!(get(&server.addr, "/healthz"), Some(200));
}
