//! The store in a real S3-compatible bucket (SeaweedFS on loopback, nothing mocked), through
//! the `weightgate` binary: admission in one pass, refusals and kills that leave nothing
//! visible, `store gc`, and bad store URLs, credentials, buckets and objects. Objects are
//! inspected with curl's own SigV4 signing, an S3 client independent of ours.

use crate::common;
use crate::support::seaweed;
use crate::support::serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{attest_as_lab, copy_dir, policy_trusting, revision_of, testdata};
use seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};
use serve::Server;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn weightgate(sw: Option<&Seaweed>, args: &[&str]) -> Out {
    let mut c = match sw {
        Some(sw) => sw.command(env!("CARGO_BIN_EXE_weightgate")),
        None => Command::new(env!("CARGO_BIN_EXE_weightgate")),
    };
    let o = c.args(args).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

/// One S3 request signed by curl: (status, body).
fn s3(sw: &Seaweed, method: &str, path_and_query: &str, body: Option<&Path>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-g", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")]);
    if let Some(b) = body {
        c.arg("-T").arg(b);
    }
    let o = c
        .arg(format!("{}/{BUCKET}{path_and_query}", sw.endpoint()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Every key under `prefix/`, sorted.
fn keys(sw: &Seaweed, prefix: &str) -> Vec<String> {
    // SigV4 signs the query as sent: the `/` of the prefix must be encoded.
    let query = format!("?list-type=2&prefix={}%2F", prefix.replace('/', "%2F"));
    let (code, body) = s3(sw, "GET", &query, None);
    assert_eq!(code, 200, "{body}");
    let mut out: Vec<String> = body
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// Unfinished multipart uploads in the bucket (S3 ListMultipartUploads).
fn multipart_uploads(sw: &Seaweed) -> usize {
    multipart_upload_ids(sw).len()
}

/// The ids of the bucket's unfinished multipart uploads.
fn multipart_upload_ids(sw: &Seaweed) -> Vec<String> {
    let (code, body) = s3(sw, "GET", "?uploads=", None);
    assert_eq!(code, 200, "{body}");
    body.split("<UploadId>")
        .skip(1)
        .filter_map(|rest| rest.split("</UploadId>").next())
        .map(str::to_string)
        .collect()
}

fn put_object(sw: &Seaweed, dir: &Path, key: &str, bytes: &[u8]) {
    let file = dir.join("put-body");
    std::fs::write(&file, bytes).unwrap();
    let (code, body) = s3(sw, "PUT", &format!("/{key}"), Some(&file));
    assert_eq!(code, 200, "PUT {key}: {body}");
}

fn get_object(sw: &Seaweed, key: &str) -> Vec<u8> {
    let o = Command::new("curl")
        .args(["-s", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .arg(format!("{}/{BUCKET}/{key}", sw.endpoint()))
        .output()
        .unwrap();
    assert!(o.status.success(), "GET {key}");
    o.stdout
}

/// A checkpoint (the tiny one plus `weights.bin` of `weights_mib` MiB) attested by the test
/// lab, and a policy trusting that lab.
fn attested_checkpoint(dir: &Path, weights_mib: usize) -> (PathBuf, PathBuf) {
    let ck = dir.join("model");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let mut data = Vec::with_capacity(weights_mib << 20);
    for i in 0..weights_mib {
        data.extend(block.iter().map(|b| b ^ i as u8));
    }
    std::fs::write(ck.join("weights.bin"), &data).unwrap();
    attest_as_lab(&ck);
    let policy = policy_trusting(dir, &["test-lab"], "");
    (ck, policy)
}

fn admit(sw: &Seaweed, ck: &Path, policy: &Path, store: &str) -> Out {
    weightgate(
        Some(sw),
        &[
            "admit",
            ck.to_str().unwrap(),
            "--repo",
            "lab/model",
            "--store",
            store,
            "--policy",
            policy.to_str().unwrap(),
            "--quiet",
        ],
    )
}

/// `weightgate serve` over a bucket, on a free port, with an audit log.
fn serve(sw: &Seaweed, store: &str, policy: &Path, audit: &Path) -> Server {
    let mut cmd = sw.command(env!("CARGO_BIN_EXE_weightgate"));
    cmd.args(["serve", "--store", store, "--policy"])
        .arg(policy)
        .arg("--audit-log")
        .arg(audit)
        .args(["--listen", "127.0.0.1:0"]);
    Server::spawn(cmd)
}

/// curl: status and body of a GET to `server`.
fn get(server: &Server, path: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("{}{path}", server.url()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn admission_into_a_bucket_is_served_refusals_leave_nothing_and_gc_keeps_what_is_named() {
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let (ck, policy) = attested_checkpoint(dir.path(), 40);

    // Admitted in one pass: every file is a blob named by its SHA-256, byte for byte.
    let r = admit(&sw, &ck, &policy, &sw.url("p1"));
    assert_eq!(r.code, 0, "{}{}\n{}", r.stdout, r.stderr, sw.logs());
    let revision = revision_of(&r.stdout);
    let stored = keys(&sw, "p1");
    assert!(
        stored.contains(&"p1/repos/lab/model/refs/main".to_string()),
        "{stored:?}"
    );
    assert!(
        stored.contains(&format!("p1/repos/lab/model/revisions/{revision}.json")),
        "{stored:?}"
    );
    assert!(
        !stored.iter().any(|k| k.starts_with("p1/uploads/")),
        "{stored:?}"
    );
    for name in [
        "config.json",
        "weights.bin",
        "model-00001-of-00002.safetensors",
    ] {
        let bytes = std::fs::read(ck.join(name)).unwrap();
        let sha = sha2_hex(&bytes);
        assert_eq!(get_object(&sw, &format!("p1/blobs/{sha}")), bytes, "{name}");
    }
    let record: serde_json::Value = serde_json::from_slice(&get_object(
        &sw,
        &format!("p1/repos/lab/model/revisions/{revision}.json"),
    ))
    .unwrap();
    assert!(
        record["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["object_etag"].as_str().is_some_and(|e| !e.is_empty())),
        "{record}"
    );
    assert_eq!(multipart_uploads(&sw), 0);

    // The gate reads it back from the bucket and decides.
    let audit = dir.path().join("audit.log");
    let server = serve(&sw, &sw.url("p1"), &policy, &audit);
    let (code, body) = get(&server, "/api/models/lab/model/revision/main");
    assert_eq!(code, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["sha"], revision.as_str());
    assert_eq!(info["siblings"].as_array().unwrap().len(), 6, "{info}");
    let (code, body) = get(
        &server,
        &format!("/v1/decision/lab/model/{}", &revision[..7]),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"allowed\":true"), "{body}");
    // The model pages list the bucket's repositories (`Store::repos` over its listings).
    let o = Command::new("curl")
        .args(["-s", "-H", "Accept: text/html"])
        .arg(format!("{}/", server.url()))
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        page.contains("<a href=\"/lab/model\">lab/model</a>"),
        "{page}"
    );
    let (code, _) = get(&server, "/api/models/lab/nothing/revision/main");
    assert_eq!(code, 404);
    drop(server);

    // Admitting the same checkpoint again reuses the blobs (read back and hashed first).
    let r = admit(&sw, &ck, &policy, &sw.url("p1"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(keys(&sw, "p1"), stored);

    // A file changed after attestation (same size): hashed while uploaded, refused, and the
    // uploads aborted: nothing appears under the prefix, no upload is left unfinished.
    let mut w = std::fs::read(ck.join("weights.bin")).unwrap();
    w[12345] ^= 1;
    std::fs::write(ck.join("weights.bin"), &w).unwrap();
    let r = admit(&sw, &ck, &policy, &sw.url("p2"));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("weights.bin"), "{}", r.stdout);
    assert_eq!(keys(&sw, "p2"), Vec::<String>::new());
    assert_eq!(multipart_uploads(&sw), 0);

    // gc: an unreferenced blob goes once past the grace period; what a record names stays.
    let junk = format!("p1/blobs/{}", "ab".repeat(32));
    put_object(&sw, dir.path(), &junk, b"left over");
    let r = weightgate(
        Some(&sw),
        &["store", "gc", "--store", &sw.url("p1"), "--grace", "1h"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("0 removed") && r.stdout.contains("1 unreferenced kept"),
        "{}",
        r.stdout
    );
    let r = weightgate(
        Some(&sw),
        &["store", "gc", "--store", &sw.url("p1"), "--grace", "0s"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("removed {}", &junk[3..])),
        "{}",
        r.stdout
    );
    assert_eq!(keys(&sw, "p1"), stored);

    // Bad objects are errors that name the object, never a panic or a decision.
    // A blob shorter than admitted: the gate refuses it, a new admission will not reuse it.
    w[12345] ^= 1;
    std::fs::write(ck.join("weights.bin"), &w).unwrap();
    let cfg_sha = sha2_hex(&std::fs::read(ck.join("config.json")).unwrap());
    put_object(&sw, dir.path(), &format!("p1/blobs/{cfg_sha}"), b"{}");
    let r = admit(&sw, &ck, &policy, &sw.url("p1"));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("p1/blobs/{cfg_sha}")) && r.stderr.contains("altered"),
        "{}",
        r.stderr
    );
    let server = serve(&sw, &sw.url("p1"), &policy, &audit);
    let (code, body) = get(&server, "/lab/model/resolve/main/config.json");
    assert_eq!(code, 451, "{body}");
    assert!(server.log_has("no longer matches"));
    // A ref over its size cap, and a revision record that is not JSON.
    put_object(
        &sw,
        dir.path(),
        "p1/repos/lab/model/refs/main",
        &[b'a'; 1000],
    );
    let (code, _) = get(&server, "/api/models/lab/model/revision/main");
    assert_eq!(code, 500);
    assert!(server.log_has("p1/repos/lab/model/refs/main: 1000 bytes, over the limit"));
    let record_key = format!("p1/repos/lab/model/revisions/{revision}.json");
    put_object(&sw, dir.path(), &record_key, b"{ not json");
    let (code, _) = get(
        &server,
        &format!("/api/models/lab/model/revision/{revision}"),
    );
    assert_eq!(code, 500);
    assert!(server.log_has(&format!("{record_key}: key must be a string")));
    // gc refuses to collect anything while a record cannot be read.
    let r = weightgate(
        Some(&sw),
        &["store", "gc", "--store", &sw.url("p1"), "--grace", "0s"],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains(&record_key) && r.stderr.contains("nothing was removed"),
        "{}",
        r.stderr
    );
    assert_eq!(keys(&sw, "p1").len(), stored.len());

    // A bucket that does not exist is named as such.
    let r = admit(&sw, &ck, &policy, "s3://no-such-bucket/x");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("the bucket `no-such-bucket` does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_killed_admission_leaves_no_revision_and_a_rerun_and_gc_complete_it() {
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let (ck, policy) = attested_checkpoint(dir.path(), 160);
    let store = sw.url("k");
    let mut child = sw
        .command(env!("CARGO_BIN_EXE_weightgate"))
        .args([
            "admit",
            ck.to_str().unwrap(),
            "--repo",
            "lab/model",
            "--store",
            &store,
        ])
        .arg("--policy")
        .arg(&policy)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once its uploads are under way (the list of uploads is written first).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !keys(&sw, "k").iter().any(|k| k.starts_with("k/uploads/")) {
        assert!(Instant::now() < deadline, "no upload started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "admission ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        child.try_wait().unwrap().is_none(),
        "admission ended before it was killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = keys(&sw, "k");
    assert!(!left.iter().any(|k| k.contains("/repos/")), "{left:?}");
    assert!(!left.iter().any(|k| k.contains("/blobs/")), "{left:?}");
    assert!(
        multipart_uploads(&sw) >= 1,
        "the killed upload is not pending"
    );

    // A rerun completes the admission.
    let r = admit(&sw, &ck, &policy, &store);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let revision = revision_of(&r.stdout);
    assert!(keys(&sw, "k").contains(&format!("k/repos/lab/model/revisions/{revision}.json")));

    // gc aborts what the killed admission left unfinished and removes its list.
    let listed: Vec<String> = keys(&sw, "k")
        .iter()
        .filter(|k| k.starts_with("k/uploads/") && k.ends_with(".json"))
        .flat_map(|k| {
            let list: serde_json::Value = serde_json::from_slice(&get_object(&sw, k)).unwrap();
            list["uploads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["upload_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let r = weightgate(
        Some(&sw),
        &["store", "gc", "--store", &store, "--grace", "0s"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains(" 0 unfinished upload"), "{}", r.stdout);
    // Every upload the killed admission listed is aborted. One it started and was killed
    // before listing (the id exists only once S3 answers) is left to the bucket's lifecycle
    // rule (docs/gate.md, store gc).
    let remaining = multipart_upload_ids(&sw);
    let stray: Vec<_> = remaining
        .iter()
        .filter(|id| listed.iter().any(|l| l == *id))
        .collect();
    assert!(stray.is_empty(), "listed uploads not aborted: {stray:?}");
    let after = keys(&sw, "k");
    assert!(
        !after.iter().any(|k| k.starts_with("k/uploads/")),
        "{after:?}"
    );
    let weights = std::fs::read(ck.join("weights.bin")).unwrap();
    assert_eq!(
        get_object(&sw, &format!("k/blobs/{}", sha2_hex(&weights))).len(),
        weights.len()
    );
}

#[test]
fn bad_store_urls_and_missing_credentials_are_named_before_anything_is_read() {
    let run = |env: &[(&str, &str)], store: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_weightgate"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .envs(env.iter().copied())
            .args(["store", "gc", "--store", store])
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let creds = [
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_ALLOW_HTTP", "true"),
        // Nothing listens on port 1.
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
    ];
    for (store, want) in [
        ("s3://Models/x", "bucket name must be"),
        ("s3://ab", "bucket name must be"),
        ("s3://models/../x", "prefix component `..`"),
        ("s3://key:secret@models/x", "credentials come from AWS_*"),
        ("gs://models/x", "unsupported scheme `gs://`"),
        ("", "the store location is empty"),
    ] {
        let (code, err) = run(&creds, store);
        assert_eq!(code, 2, "{store}: {err}");
        assert!(err.contains(want), "{store}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, err) = run(&[("AWS_ACCESS_KEY_ID", "k")], "s3://models/x");
    assert_eq!(code, 2);
    assert!(
        err.contains("no credentials: set AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    let (code, err) = run(&[], "s3://models/x");
    assert_eq!(code, 2);
    assert!(
        err.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    // Storage that does not answer: an error naming the store.
    let (code, err) = run(&creds, "s3://models/x");
    assert_eq!(code, 2);
    assert!(err.contains("s3://models/x: object storage:"), "{err}");
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_new_revision_uploads_only_what_changed_and_a_replaced_object_is_never_reused() {
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let (ck, policy) = attested_checkpoint(dir.path(), 8);
    let store = sw.url("re");
    let r = admit(&sw, &ck, &policy, &store);
    assert_eq!(r.code, 0, "{}{}\n{}", r.stdout, r.stderr, sw.logs());
    let first = revision_of(&r.stdout);
    let blobs = |sw: &Seaweed| {
        keys(sw, "re")
            .into_iter()
            .filter(|k| k.starts_with("re/blobs/"))
            .count()
    };
    assert_eq!(blobs(&sw), 5);

    // One file changes: only it is uploaded; the other four are taken from the bucket by their
    // recorded ETags, without being read.
    let mut weights = std::fs::read(ck.join("weights.bin")).unwrap();
    weights[12345] ^= 1;
    std::fs::write(ck.join("weights.bin"), &weights).unwrap();
    attest_as_lab(&ck);
    let r = admit(&sw, &ck, &policy, &store);
    assert_eq!(r.code, 0, "{}{}\n{}", r.stdout, r.stderr, sw.logs());
    assert!(r.stdout.contains("4 already stored)"), "{}", r.stdout);
    let second = revision_of(&r.stdout);
    assert_ne!(first, second);
    assert_eq!(blobs(&sw), 6);
    assert_eq!(multipart_uploads(&sw), 0);
    let audit = dir.path().join("audit.log");
    {
        let server = serve(&sw, &store, &policy, &audit);
        let (code, body) = get(&server, "/lab/model/resolve/main/config.json");
        assert_eq!(code, 200);
        assert_eq!(
            body.as_bytes(),
            std::fs::read(ck.join("config.json")).unwrap()
        );
    }

    // An object replaced behind the gate's back (a new ETag, other bytes) is read back,
    // found altered, and stops the next admission: nothing is published.
    let config = std::fs::read(ck.join("config.json")).unwrap();
    let key = format!("re/blobs/{}", sha2_hex(&config));
    let mut forged = config.clone();
    forged[1] ^= 1;
    put_object(&sw, dir.path(), &key, &forged);
    weights[54321] ^= 1;
    std::fs::write(ck.join("weights.bin"), &weights).unwrap();
    attest_as_lab(&ck);
    let r = admit(&sw, &ck, &policy, &store);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("altered after admission"), "{}", r.stderr);
    assert_eq!(
        get_object(&sw, "re/repos/lab/model/refs/main"),
        format!("{second}\n").into_bytes()
    );
    assert_eq!(multipart_uploads(&sw), 0);
}
