//! Xet uploads with the unchanged `huggingface_hub` 2.4 + `hf_xet` 1.8 against `weightgate
//! serve` over a folder store: admitted and downloaded byte-identical, a second upload sends
//! no xorb, and tampered xorbs, bad shards and cross-namespace probes are refused
//! (cli/tests/hf/xet_upload.py).

use std::path::Path;
use std::process::Command;

use crate::common::{self, attested_tiny, policy_trusting, python};
use crate::support::serve::Server;

fn token(store: &Path, name: &str, org: &str) -> String {
    common::write_token(store, name, &[org])
}

#[test]
fn hf_upload_through_xet_is_admitted_and_the_cas_refuses_what_is_wrong() {
    let tiny = attested_tiny();
    let store = tiny.path("store");
    let policy = policy_trusting(tiny.dir.path(), &["test-lab"], "");
    let token_a = token(&store, "lab-a-release", "lab-a");
    let token_b = token(&store, "lab-b-release", "lab-b");
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
    let server = Server::spawn(cmd);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hf/xet_upload.py");
    let out = Command::new(python())
        .arg(script)
        .arg(server.url())
        .arg(&tiny.model)
        .arg(&store)
        .env("HF_TOKEN_A", &token_a)
        .env("HF_TOKEN_B", &token_b)
        .env("HF_HOME", tiny.path("hf-home"))
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_HUB_DISABLE_XET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("ok: ").count(), 7, "{stdout}");
    // Two shards were accepted (one per upload; the replayed and broken ones were refused).
    // Every xorb was received once: the second upload (same shards, the client's shard cache
    // kept) sent none, or one would have come again (`inserted=false`).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let count = |what: &str| {
        let log = server.log_lines();
        log.iter().filter(|l| l.contains(what)).count()
    };
    while count("xet: shard received") < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = server.log_lines();
    assert_eq!(count("xet: shard received"), 2, "{log:#?}");
    let stored = std::fs::read_dir(store.join("xet/lab-a/xorbs"))
        .unwrap()
        .count();
    assert!(stored >= 1);
    assert_eq!(count("xet: xorb received"), stored, "{log:#?}");
    assert_eq!(count("inserted=false"), 0, "{log:#?}");
}
