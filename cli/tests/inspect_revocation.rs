//! `inspect --json` shows the payload hash a policy's `[revoked] attestations` names, and
//! revoking by it denies; `manpage` writes no page for the hidden old `export-intoto` name.

use crate::common;

use std::fs;

use common::{attested_tiny, policy_trusting, run};

#[test]
fn the_payload_hash_inspect_shows_revokes_the_attestation() {
    let t = attested_tiny();
    let att = t.model.join("weightgate.att");
    let r = run(["inspect", "--json", att.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let payload = doc["payload_sha256"].as_str().unwrap().to_string();
    assert_eq!(payload.len(), 64, "{doc}");

    let policy = policy_trusting(t.dir.path(), &["test-lab"], "");
    let r = run([
        "verify",
        t.model.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    fs::write(
        &policy,
        format!(
            "{}[revoked]\nattestations = [\"{payload}\"]\n",
            fs::read_to_string(&policy).unwrap()
        ),
    )
    .unwrap();
    let r = run([
        "verify",
        t.model.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("attestation.revoked"), "{}", r.stdout);

    let shown = run(["inspect", att.to_str().unwrap()]);
    assert!(
        shown.stdout.contains(&format!("payload sha256 {payload}")),
        "{}",
        shown.stdout
    );
    assert!(!shown.stdout.contains("SixNd"), "{}", shown.stdout);
}

#[test]
fn manpage_skips_hidden_commands() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(["manpage", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dir.path().join("weightgate-export.1").is_file());
    assert!(!dir.path().join("weightgate-export-intoto.1").exists());
}
