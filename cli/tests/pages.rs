//! The gate's model pages: content negotiation over plain HTTP (a request that does not ask
//! for HTML gets exactly the answer it got before pages existed), then every page kind in a real
//! Chromium (`tests/browser/pages.py`: Playwright with Debian's `chromium`, axe-core from npm,
//! both installed by `.ci/run`). One store, one server for the whole group.
//! `WEIGHTGATE_PAGES_SCREENSHOTS=docs/img` writes the screenshots docs/gate.md shows.

use crate::common;
use crate::support::serve::Server;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, http_get, python, run, td, testdata};
use sha2::Digest as _;

const POLICY: &str = r#"
[policy]
name = "pages test"
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

/// Markup, an attribute breakout and a right-to-left override, as a model name and entity.
const PAYLOAD: &str = "<script>alert(1)</script>\\\"onerror=alert(2) \u{202e}exe.txt";

/// The store the browser test expects: lab/tiny (allowed), lab/frontier (refused), lab/licensed
/// (export licence for DE, FR, JP), lab/derived (base: lab/tiny), evil/hostile.
fn admit_models(dir: &Path) -> (PathBuf, PathBuf) {
    let keys = testdata().join("keys");
    let policy = dir.join("policy.toml");
    fs::write(&policy, POLICY.replace("KEYS", keys.to_str().unwrap())).unwrap();
    let before_regimes = dir.join("policy-before-regimes.toml");
    fs::write(
        &before_regimes,
        POLICY.replace("KEYS", keys.to_str().unwrap()).replace(
            r#"regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]"#,
            r#"regimes = ["us-bis-ai-diffusion-2025"]"#,
        ),
    )
    .unwrap();
    let below = fs::read_to_string(testdata().join("claims/tiny-below.toml")).unwrap();
    let above = fs::read_to_string(testdata().join("claims/tiny-above.toml")).unwrap();
    let claims = dir.join("claims");
    let cks = dir.join("checkpoints");
    fs::create_dir_all(&claims).unwrap();
    fs::write(claims.join("tiny.toml"), &below).unwrap();
    fs::write(
        claims.join("frontier.toml"),
        above.split("[[reference]]").next().unwrap(),
    )
    .unwrap();
    fs::write(claims.join("licensed.toml"), &above).unwrap();
    fs::write(
        claims.join("hostile.toml"),
        below
            .replace("name = \"tiny-lm\"", &format!("name = \"{PAYLOAD}\""))
            .replace(
                "legal_name = \"Weightgate Test Lab Ltd\"",
                &format!("legal_name = \"{PAYLOAD} Ltd\""),
            ),
    )
    .unwrap();
    let attest = |name: &str| {
        let ck = cks.join(name);
        let r = run([
            "attest",
            ck.to_str().unwrap(),
            "--key",
            &td("keys/test-lab.key"),
            "--claims",
            claims.join(format!("{name}.toml")).to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(r.code, 0, "attest {name}: {}", r.stderr);
    };
    for name in ["tiny", "frontier", "licensed", "hostile", "derived"] {
        copy_dir(&testdata().join("checkpoints/tiny"), &cks.join(name));
    }
    let hostile = cks.join("hostile");
    fs::create_dir_all(hostile.join("<script>alert(3)<")).unwrap();
    for (i, file) in [
        "<script>alert(3)</script>.txt",
        "\"onerror=alert(4) x.txt",
        "<img src=x onerror=alert(5)>.txt",
        "\u{202e}txt.exe",
    ]
    .iter()
    .enumerate()
    {
        fs::write(hostile.join(file), i.to_string()).unwrap();
    }
    for name in ["tiny", "frontier", "licensed", "hostile"] {
        attest(name);
    }
    // Derived from lab/tiny, naming its attestation.
    let base_envelope = fs::read(cks.join("tiny/weightgate.att")).unwrap();
    let base = weightgate_schemas::Envelope::decode_strict(&base_envelope).unwrap();
    let base = weightgate_schemas::Statement::decode_strict(&base.payload).unwrap();
    fs::write(
        claims.join("derived.toml"),
        below
            .replace("name = \"tiny-lm\"", "name = \"tiny-lm-instruct\"")
            .replace("total = \"2.112e12\"", "total = \"4.224e12\"")
            + &format!(
                "\n[compute.base_model]\nname = \"tiny-lm\"\nroot_sha256 = \"{}\"\n\
                 attestation_sha256 = \"{}\"\nops = \"2.112e12\"\n",
                base.subject.root_sha256.to_hex(),
                hex::encode(sha2::Sha256::digest(&base_envelope))
            ),
    )
    .unwrap();
    attest("derived");
    let grant = dir.join("licence.grant");
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
    let store = dir.join("store");
    for (repo, name) in [
        ("lab/tiny", "tiny"),
        ("lab/frontier", "frontier"),
        ("lab/licensed", "licensed"),
        ("evil/hostile", "hostile"),
        ("lab/derived", "derived"),
    ] {
        // No request could be served lab/frontier under this policy, so admission would refuse
        // it: it is admitted as before the EU and California regimes took effect (the BIS rule alone
        // serves it in Tier 1 countries).
        let admit_policy = match name {
            "frontier" => &before_regimes,
            _ => &policy,
        };
        let mut args = vec![
            "admit".to_string(),
            cks.join(name).to_str().unwrap().into(),
            "--repo".into(),
            repo.into(),
            "--store".into(),
            store.to_str().unwrap().into(),
            "--policy".into(),
            admit_policy.to_str().unwrap().into(),
        ];
        if name == "licensed" {
            args.extend(["--grant".into(), grant.to_str().unwrap().into()]);
        }
        let r = run(&args);
        assert_eq!(r.code, 0, "admit {repo}: {}{}", r.stdout, r.stderr);
    }
    (store, policy)
}

fn serve(store: &Path, policy: &Path) -> Server {
    let mut cmd = common::bin();
    cmd.args([
        "serve",
        "--store",
        store.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    Server::spawn(cmd)
}

/// The response head and body of one request, raw.
fn raw_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, buf[end + 4..].to_vec())
}

#[test]
fn model_pages_answer_browsers_only_and_are_safe_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (store, policy) = admit_models(dir.path());
    let server = serve(&store, &policy);
    let addr = server.addr.as_str();

    // What the Hub client, curl and scripts send gets the empty 404 these URLs always gave,
    // whatever the query; HTML is only for a request that names it.
    for path in [
        "/",
        "/lab/tiny",
        "/lab/tiny/tree/main",
        "/lab/tiny?destination=%ZZ",
        "/nobody/nothing",
    ] {
        for accept in [None, Some("*/*"), Some("application/json")] {
            let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
            let (status, _, body) = raw_get(addr, path, &headers);
            assert_eq!((status, body.len()), (404, 0), "{path} with {accept:?}");
        }
        let (status, head, _) = raw_get(addr, path, &[("Accept", "text/html")]);
        let want = if path == "/nobody/nothing" { 404 } else { 200 };
        assert_eq!(status, want, "{path} as a page");
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
    }
    // The Hub API and downloads answer a browser as they answer the client.
    for path in [
        "/api/models/lab/tiny",
        "/api/models/lab/tiny/tree/main",
        "/lab/tiny/resolve/main/config.json",
    ] {
        let plain = http_get(addr, path, &[]);
        let browser = http_get(addr, path, &[("Accept", "text/html")]);
        assert_eq!(plain, browser, "{path}");
        assert_eq!(plain.0, 200, "{path}");
    }

    let axe = std::env::var_os("WEIGHTGATE_AXE_JS").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.ci/browser/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    assert!(
        axe.is_file(),
        "{}: axe-core is missing; .ci/run installs it (npm install --prefix .ci/browser axe-core)",
        axe.display()
    );
    let shots = std::env::var_os("WEIGHTGATE_PAGES_SCREENSHOTS")
        .map_or_else(|| dir.path().join("screenshots"), PathBuf::from);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/pages.py");
    let out = Command::new(python())
        .env("WEIGHTGATE_AXE_JS", &axe)
        .arg(script)
        .arg(server.url())
        .arg(&shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in [
        "index",
        "allowed",
        "refused",
        "derived",
        "hostile",
        "picked-destination",
    ] {
        assert!(shots.join(format!("pages-{kind}.png")).is_file(), "{kind}");
    }
}
