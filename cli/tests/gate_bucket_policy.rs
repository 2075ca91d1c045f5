//! One policy source per instance: a gate that follows its bucket's `policy.toml`
//! (`--policy-poll`) re-reads the bucket on SIGHUP, never its local policy file, so a
//! revocation published through the bucket survives any interleaving of SIGHUPs and polls.
//! SeaweedFS on loopback, nothing mocked.

use crate::common;
use crate::support::seaweed;
use crate::support::serve;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{attested_tiny, http_get, td};
use seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};
use serve::Server;
use sha2::Digest as _;

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

fn hangup(server: &Server) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn sighup_and_bucket_polls_interleaved_never_lose_a_revocation() {
    let sw = Seaweed::start();
    let tiny = attested_tiny();
    let policy_text = format!(
        "[policy]\nname = \"p\"\n[[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n",
        td("keys/test-lab.pub")
    );
    let policy = tiny.path("policy.toml");
    std::fs::write(&policy, &policy_text).unwrap();
    let store = sw.url("hup");
    let o = sw
        .command(env!("CARGO_BIN_EXE_weightgate"))
        .args(["admit", tiny.model.to_str().unwrap(), "--repo", "lab/model"])
        .args(["--store", &store, "--policy"])
        .arg(&policy)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut cmd = sw.command(env!("CARGO_BIN_EXE_weightgate"));
    cmd.args(["serve", "--store", &store, "--policy"])
        .arg(&policy)
        .arg("--audit-log")
        .arg(tiny.path("audit.log"))
        .args(["--listen", "127.0.0.1:0", "--policy-poll", "1"]);
    let server = Server::spawn(cmd);
    let config = "/lab/model/resolve/main/config.json";
    assert_eq!(http_get(&server.addr, config, &[]).0, 200);

    // The revocation, published once, in the bucket.
    let env = weightgate_schemas::Envelope::decode_strict(
        &std::fs::read(tiny.model.join("weightgate.att")).unwrap(),
    )
    .unwrap();
    let id = hex::encode(sha2::Sha256::digest(&env.payload));
    put_object(
        &sw,
        tiny.dir.path(),
        "hup/policy.toml",
        format!("{policy_text}\n[revoked]\nattestations = [\"{id}\"]\n").as_bytes(),
    );
    let written = Instant::now();
    while http_get(&server.addr, config, &[]).0 != 451 {
        assert!(written.elapsed() < Duration::from_secs(15), "never applied");
        std::thread::sleep(Duration::from_millis(50));
    }

    // SIGHUPs between and during polls, with the local file (no revocation) touched too: the
    // revocation stays in force at every moment.
    std::fs::write(&policy, format!("{policy_text}# edited\n")).unwrap();
    let started = Instant::now();
    let mut hups = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        if hups < 8 {
            hangup(&server);
            hups += 1;
        }
        let (status, body) = http_get(&server.addr, config, &[]);
        assert_eq!(
            status,
            451,
            "after {hups} SIGHUPs: {}",
            String::from_utf8_lossy(&body)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGHUP read the bucket, never the file.
    server.wait_for_log(&[&format!(
        "policy reloaded policy=s3://{BUCKET}/hup/policy.toml"
    )]);
    assert!(!server.logged_now(&format!("policy={}", policy.display())));
}
