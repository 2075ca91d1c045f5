//! A namespace's staging cap (`serve --max-staging-mib`) counts its Xet xorbs and shards that
//! no admitted revision uses, beside its pending files, in both stores, with the unchanged
//! `hf upload` (Xet, the default path): a push that cannot fit is refused at its preupload with
//! the cap named in what the client prints, and nothing becomes visible; `store gc` (folder)
//! or an admitted commit (bucket) frees the space, and the next push goes through. A xorb past
//! the cap gets 507 naming it (raw HTTP: `hf_xet` shows only the status).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use crate::common::{self, bearer_request, copy_dir, http_get, python, run, testdata};
use crate::support::seaweed::Seaweed;
use crate::support::serve::Server;

const CAP: u64 = 1 << 20;
/// The refused push: random bytes, so its xorb is as large as its file (both count).
const NOISE: usize = 512_000;
/// The attested pushes' large file: too large to fit beside the noise (or beside another
/// such push not yet admitted), small enough alone.
const EXTRA: usize = 700 * 1024;

/// The tiny checkpoint plus `extra.bin` (`EXTRA + seed` bytes of a pattern seeded by `seed`),
/// attested as the test lab, at `dir`. Each seed gives another size: the preupload's estimate
/// takes a file of a size the namespace holds as held.
fn attested_with_extra(dir: &Path, seed: u8) {
    copy_dir(&testdata().join("checkpoints/tiny"), dir);
    let extra: Vec<u8> = (0..EXTRA + usize::from(seed))
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul((i / 4096) as u8))
        .collect();
    std::fs::write(dir.join("extra.bin"), extra).unwrap();
    common::attest_as_lab(dir);
}

/// A folder of `NOISE` random bytes and no attestation: its commit is refused.
fn noise(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // xorshift: bytes no compression shrinks.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..NOISE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(dir.join("noise.bin"), bytes).unwrap();
}

/// `hf upload FOLDER REPO` against `server` from its own client cache `home`.
fn hf_upload(server: &Server, token: &str, folder: &Path, repo: &str, home: &Path) -> Output {
    Command::new(python().parent().unwrap().join("hf"))
        .args(["upload", repo, folder.to_str().unwrap(), "."])
        .env("HF_ENDPOINT", server.url())
        .env("HF_TOKEN", token)
        .env("HF_HOME", home)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_HUB_DISABLE_XET")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the client printed for a push refused at its preupload: the status and the cap.
fn assert_refused_naming_the_cap(o: &Output) {
    let err = stderr(o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("507 Insufficient Storage")
            && err.contains("/preupload/main")
            && err.contains(&format!("staging cap of {CAP} bytes"))
            && err.contains("--max-staging-mib"),
        "{err}"
    );
}

#[test]
fn a_folder_namespace_full_of_xet_objects_refuses_a_push_naming_its_cap_until_gc() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    noise(&p("noise"));
    attested_with_extra(&p("good"), 1);
    let store = p("store");
    let token = common::write_token(&store, "lab-ci", &["lab", "other"]);
    let policy = common::policy_trusting(dir.path(), &["test-lab"], "");
    let mut cmd = common::bin();
    cmd.args(["serve", "--store", store.to_str().unwrap()])
        .args(["--policy", policy.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--max-staging-mib", "1"]);
    let server = Server::spawn(cmd);

    // Refused at the commit (no attestation): its xorb stays, and its file pending, counted.
    let refused = hf_upload(&server, &token, &p("noise"), "lab/noise", &p("home-1"));
    assert!(
        stderr(&refused).contains("403 Forbidden"),
        "{}",
        stderr(&refused)
    );

    // Raw: a further xorb does not fit, 507 naming the cap, and is not kept.
    let xorb = std::fs::read(testdata().join("xet/client-xorb.bin")).unwrap();
    let (chunks, hash) = weightgate_verifier::gate::xet::xorb::parse(&xorb).unwrap();
    let xorb_path = format!("/xet-cas/v1/xorbs/default/{}", hash.to_hex());
    let cas_token = |repo: &str| {
        let (status, text) = bearer_request(
            &server.addr,
            "GET",
            &format!("/api/models/{repo}/xet-write-token/main"),
            &token,
            b"",
        );
        assert_eq!(status, 200, "{text}");
        let json = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["accessToken"].as_str().unwrap().to_string()
    };
    let lab = cas_token("lab/raw");
    let (status, text) = bearer_request(&server.addr, "POST", &xorb_path, &lab, &xorb);
    assert_eq!(status, 507, "{text}");
    assert!(
        text.to_lowercase()
            .contains("x-error-message: namespace lab already holds "),
        "{text}"
    );
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(
        error.starts_with("namespace lab already holds ")
            && error.contains(&format!(
                "; {} more would pass its staging cap of {CAP} bytes (`weightgate serve \
                 --max-staging-mib`)",
                // The xorb and its chunk index (40 bytes a chunk).
                xorb.len() + 40 * chunks.len()
            )),
        "{error}"
    );
    let (status, _) = bearer_request(&server.addr, "HEAD", &xorb_path, &lab, b"");
    assert_eq!(status, 404);
    // Another namespace is not full, and learns nothing of lab's xorbs: it stores its own.
    let other = cas_token("other/raw");
    let (status, text) = bearer_request(&server.addr, "POST", &xorb_path, &other, &xorb);
    assert!(
        status == 200 && text.contains(r#"{"was_inserted":true}"#),
        "{text}"
    );

    // The unchanged client: refused at its preupload, the cap named; nothing visible.
    let full = hf_upload(&server, &token, &p("good"), "lab/tiny", &p("home-2"));
    assert_refused_naming_the_cap(&full);
    let (status, _) = http_get(&server.addr, "/lab/tiny/resolve/main/config.json", &[]);
    assert_eq!(status, 404);

    // gc removes what expired and no revision uses: the push goes through.
    let gc = run([
        "store",
        "gc",
        "--store",
        store.to_str().unwrap(),
        "--grace",
        "0",
    ]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    let pushed = hf_upload(&server, &token, &p("good"), "lab/tiny", &p("home-2"));
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let (status, body) = http_get(&server.addr, "/lab/tiny/resolve/main/extra.bin", &[]);
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(p("good/extra.bin")).unwrap());
    eprintln!("folder staging cap test: {:?}", started.elapsed());
}

#[test]
fn a_bucket_namespace_is_freed_by_an_admitted_commit_and_counted_by_every_gate() {
    let started = Instant::now();
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    attested_with_extra(&p("first"), 1);
    attested_with_extra(&p("second"), 2);
    attested_with_extra(&p("third"), 3);
    noise(&p("noise"));
    let url = sw.url("staging-cap");
    let policy = common::policy_trusting(dir.path(), &["test-lab"], "");
    let token = sw
        .command(env!("CARGO_BIN_EXE_weightgate"))
        .args(["token", "create", "--store", &url, "--name", "lab-ci"])
        .args(["--write", "lab"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let gate = |log: &str| {
        let mut cmd = sw.command(env!("CARGO_BIN_EXE_weightgate"));
        cmd.args(["serve", "--store", &url, "--listen", "127.0.0.1:0"])
            .arg("--policy")
            .arg(&policy)
            .arg("--audit-log")
            .arg(p(log))
            .args(["--max-staging-mib", "1"]);
        Server::spawn(cmd)
    };
    let server = gate("audit-1.log");

    // Two pushes that do not fit together: the second goes through only because the first
    // commit, admitted, no longer holds anything against the cap.
    let first = hf_upload(&server, &token, &p("first"), "lab/first", &p("home-1"));
    assert!(first.status.success(), "{}", stderr(&first));
    let second = hf_upload(&server, &token, &p("second"), "lab/second", &p("home-2"));
    assert!(second.status.success(), "{}", stderr(&second));
    // Refused at the commit: its xorb and its file stay counted.
    let refused = hf_upload(&server, &token, &p("noise"), "lab/noise", &p("home-3"));
    assert!(
        stderr(&refused).contains("403 Forbidden"),
        "{}",
        stderr(&refused)
    );

    // Another gate over the same bucket (or this one restarted) counts the same.
    let other = gate("audit-2.log");
    let full = hf_upload(&other, &token, &p("third"), "lab/third", &p("home-4"));
    assert_refused_naming_the_cap(&full);
    let (status, _) = http_get(&other.addr, "/lab/third/resolve/main/config.json", &[]);
    assert_eq!(status, 404);
    for repo in ["first", "second"] {
        let (status, body) = http_get(
            &other.addr,
            &format!("/lab/{repo}/resolve/main/extra.bin"),
            &[],
        );
        assert_eq!(status, 200, "{repo}");
        assert_eq!(body, std::fs::read(p(repo).join("extra.bin")).unwrap());
    }
    eprintln!("bucket staging cap test: {:?}", started.elapsed());
}
