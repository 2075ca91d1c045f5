//! `store gc` over a bucket (a real SeaweedFS) after uploads with the unchanged `hf upload`
//! (Xet, the default path): a refused upload's xorbs, shards and blobs count against the
//! namespace's staging cap until gc removes them (507 before, accepted after); gc keeps the
//! Xet objects of the published revision and those an upload relied on within the grace
//! period (it re-sent objects already stored, which refreshes their age), and removes the rest.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::common::{self, bearer_request, copy_dir, http_get, python, testdata};
use crate::support::seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};
use crate::support::serve::Server;

const PREFIX: &str = "upload-gc";

/// The keys under `PREFIX/under`, relative to `PREFIX/`, listed with curl's own SigV4 signing.
fn keys(sw: &Seaweed, under: &str) -> BTreeSet<String> {
    let o = Command::new("curl")
        .args(["-s", "--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .arg(format!(
            "{}/{BUCKET}?list-type=2&prefix={}",
            sw.endpoint(),
            format!("{PREFIX}/{under}").replace('/', "%2F")
        ))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(listing.contains("<ListBucketResult"), "{listing}");
    assert!(!listing.contains("<IsTruncated>true"), "{listing}");
    listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(|k| {
            k.strip_prefix(&format!("{PREFIX}/"))
                .unwrap_or(k)
                .to_string()
        })
        .collect()
}

/// The namespace `lab`'s Xet objects (refresh markers apart).
fn xet_objects(sw: &Seaweed) -> BTreeSet<String> {
    keys(sw, "xet/lab/")
        .into_iter()
        .filter(|k| !k.starts_with("xet/lab/refreshed/"))
        .collect()
}

/// Uploads `data` over the LFS batch API and its PUT: the PUT's status and answer.
fn lfs_put(addr: &str, token: &str, repo: &str, data: &[u8]) -> (u16, String) {
    let oid = hex::encode(sha2::Sha256::digest(data));
    let batch = format!(
        r#"{{"operation":"upload","transfers":["basic"],"objects":[{{"oid":"{oid}","size":{}}}]}}"#,
        data.len()
    );
    let (status, text) = bearer_request(
        addr,
        "POST",
        &format!("/{repo}.git/info/lfs/objects/batch"),
        token,
        batch.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let href = text.split("\"href\":\"").nth(1).expect("an upload action");
    let path = &href[href.find("/api/").unwrap()..href.find('"').unwrap()];
    bearer_request(addr, "PUT", path, "", data)
}

fn gc(sw: &Seaweed, grace: &str) -> String {
    let o = sw
        .command(env!("CARGO_BIN_EXE_weightgate"))
        .args(["store", "gc", "--store", &sw.url(PREFIX), "--grace", grace])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn bucket_gc_collects_refused_uploads_xet_objects_which_count_against_the_cap_until_then() {
    let started = Instant::now();
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    copy_dir(&testdata().join("checkpoints/tiny"), &p("good"));
    common::attest_as_lab(&p("good"));
    // Other bytes in the first shard, and no second one (nor index), under the good attestation:
    // authenticated, then refused once the commit has taken the uploaded file in (it is not
    // the attested one). One large file, so hf_xet packs the same xorb and shard every time.
    copy_dir(&p("good"), &p("tampered"));
    for gone in [
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ] {
        std::fs::remove_file(p("tampered").join(gone)).unwrap();
    }
    let shard = p("tampered/model-00001-of-00002.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let url = sw.url(PREFIX);
    let policy = common::policy_trusting(dir.path(), &["test-lab"], "");
    let token = sw
        .command(env!("CARGO_BIN_EXE_weightgate"))
        .args(["token", "create", "--store", &url, "--name", "lab-ci"])
        .args(["--write", "lab"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let mut cmd = sw.command(env!("CARGO_BIN_EXE_weightgate"));
    cmd.args(["serve", "--store", &url, "--listen", "127.0.0.1:0"])
        .arg("--policy")
        .arg(&policy)
        .arg("--audit-log")
        .arg(p("audit.log"))
        // 1 MiB: one upload of exactly the cap fits only while nothing else is held.
        .args(["--max-staging-mib", "1"]);
    let server = Server::spawn(cmd);
    // Each upload from its own client cache: a fresh client sends every xorb.
    let hf_upload = |folder: &str, repo: &str, home: &str| -> Output {
        Command::new(python().parent().unwrap().join("hf"))
            .args(["upload", repo, p(folder).to_str().unwrap(), "."])
            .env("HF_ENDPOINT", server.url())
            .env("HF_TOKEN", &token)
            .env("HF_HOME", p(home))
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env_remove("HF_HUB_DISABLE_XET")
            .output()
            .unwrap()
    };
    let full: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();

    let refused = hf_upload("tampered", "lab/refused", "client-refused");
    let refused_at = Instant::now();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("403 Forbidden"),
        "{stderr}"
    );
    let of_refused = xet_objects(&sw);
    assert!(
        of_refused.iter().any(|k| k.contains("/xorbs/"))
            && of_refused.iter().any(|k| k.contains("/shards/")),
        "{of_refused:?}"
    );
    // The refused commit's reconstructed file: no longer pending, still counted.
    let refused_records = keys(&sw, "pending/lab/refused/");
    assert_eq!(refused_records.len(), 1, "{:?}", keys(&sw, "pending/"));
    let good = hf_upload("good", "lab/tiny", "client-good");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let of_good: BTreeSet<String> = xet_objects(&sw).difference(&of_refused).cloned().collect();
    assert!(
        of_good.iter().any(|k| k.contains("/shards/")),
        "{of_good:?}"
    );
    // Admitted: nothing of it is held against the cap.
    let held = keys(&sw, "pending/");
    assert!(
        held.iter().all(|k| k.starts_with("pending/lab/refused/")),
        "{held:?}"
    );

    let (status, text) = lfs_put(&server.addr, &token, "lab/later", &full);
    assert_eq!(status, 507, "{text}");
    assert!(
        text.contains("already holds") && text.contains("cap of 1048576"),
        "{text}"
    );

    // The same refused bytes again from a fresh client: it sends the xorbs already stored,
    // which refreshes their age (through their chunk indexes), so a gc whose grace period the
    // first upload is past but the second is not keeps them.
    let wait = Duration::from_secs(3).saturating_sub(refused_at.elapsed());
    std::thread::sleep(wait);
    let again_started = Instant::now();
    let again = hf_upload("tampered", "lab/refused", "client-refused-again");
    assert!(!again.status.success());
    let refreshed: BTreeSet<String> = keys(&sw, "xet/lab/refreshed/")
        .iter()
        .map(|k| k.replace("xet/lab/refreshed/", "xet/lab/"))
        .collect();
    assert!(
        of_refused
            .iter()
            .filter(|k| !k.contains("/shards/"))
            .all(|k| refreshed.contains(k)),
        "{:?}",
        keys(&sw, "xet/lab/")
    );
    let grace = refused_at.elapsed().as_secs();
    assert!(
        grace > again_started.elapsed().as_secs() + 1,
        "the second upload took too long to tell the ages apart"
    );
    let out = gc(&sw, &format!("{grace}s"));
    let kept = xet_objects(&sw);
    assert!(
        kept.is_superset(&(&of_good | &of_refused)),
        "{out}\n{kept:?}"
    );

    // Past every grace period: what no revision or pending upload names goes, with the
    // refused commit's blobs and records; the published revision's objects stay.
    let out = gc(&sw, "0");
    assert_eq!(xet_objects(&sw), of_good, "{out}");
    assert!(
        keys(&sw, "pending/").is_empty(),
        "{out}\n{:?}",
        keys(&sw, "pending/")
    );
    assert!(keys(&sw, "xet/lab/refreshed/").is_empty(), "{out}");
    for name in ["config.json", "model-00001-of-00002.safetensors"] {
        let (status, body) = http_get(&server.addr, &format!("/lab/tiny/resolve/main/{name}"), &[]);
        assert_eq!(status, 200, "{name}");
        assert_eq!(body, std::fs::read(p("good").join(name)).unwrap(), "{name}");
    }
    // The namespace's cap is free again.
    let (status, text) = lfs_put(&server.addr, &token, "lab/later", &full);
    assert_eq!(status, 200, "{text}");
    eprintln!("bucket upload gc test: {:?}", started.elapsed());
}
