//! A signed statement that lists one file twice (exactly, as case twins or as NFC/NFD twins)
//! is refused when decoded: by `verify` (even with `--full`), `admit` and `inspect`, and
//! `attest` will not sign one. The gate therefore never holds two entries for one path.

use crate::common;

use std::fs;
use std::path::Path;

use common::{attested_tiny, policy_trusting, run, td, testdata};
use weightgate_attest::signing::{Ed25519FileSigner, sign_envelope};
use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Digest, Envelope, Statement};

/// Re-signs `st` with the trusted lab key, the root recomputed from its entries so that only
/// the duplicate is wrong.
fn resign(ck: &Path, mut st: Statement) {
    st.subject.root_sha256 = Digest(weightgate_attest::hashing::root_digest(
        st.subject.files.iter().map(|f| &f.sha256.0),
    ));
    let key = Ed25519FileSigner::load(&testdata().join("keys/test-lab.key")).unwrap();
    let env = sign_envelope(ATTESTATION_PAYLOAD_TYPE, st.encode(), &key).unwrap();
    fs::write(ck.join("weightgate.att"), env.encode()).unwrap();
}

#[test]
fn duplicate_and_equivalent_paths_are_refused_everywhere() {
    let tiny = attested_tiny();
    let (dir, ck) = (&tiny.dir, &tiny.model);
    let golden = fs::read(ck.join("weightgate.att")).unwrap();
    let st = Statement::decode_strict(&Envelope::decode_strict(&golden).unwrap().payload).unwrap();
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    let victim = st
        .subject
        .files
        .iter()
        .position(|f| f.path == "config.json")
        .unwrap();

    let mut cases = Vec::new();
    // The attack: another model's refused file first, the real one last, same path.
    let mut exact = st.clone();
    let mut planted = exact.subject.files[victim].clone();
    planted.sha256 = Digest([0x5a; 32]);
    planted.blake3 = Digest([0xa5; 32]);
    planted.size += 1000;
    exact.subject.files.insert(victim, planted);
    cases.push(("exact duplicate", exact));
    let mut case = st.clone();
    let mut twin = case.subject.files[victim].clone();
    twin.path = "Config.json".into();
    case.subject.files.insert(victim, twin);
    cases.push(("case twin", case));
    let mut unicode = st.clone();
    for name in ["caf\u{e9}.json", "cafe\u{301}.json"] {
        let mut twin = unicode.subject.files[victim].clone();
        twin.path = name.into();
        unicode.subject.files.push(twin);
    }
    cases.push(("NFC/NFD twin", unicode));
    // Full case folding, not lower-casing: `ſ` folds to `s`, final `ς` to `σ`.
    for (what, a, b) in [
        (
            "long-s twin",
            "model.safetensors",
            "model.\u{17f}afetensors",
        ),
        ("final-sigma twin", "README\u{3c3}.md", "README\u{3c2}.md"),
    ] {
        let mut folded = st.clone();
        for name in [a, b] {
            let mut twin = folded.subject.files[victim].clone();
            twin.path = name.into();
            folded.subject.files.push(twin);
        }
        cases.push((what, folded));
    }

    for (what, bad) in cases {
        resign(ck, bad);
        for full in [false, true] {
            let mut args = vec![
                "verify".to_string(),
                ck.to_str().unwrap().into(),
                "--policy".into(),
                policy.to_str().unwrap().into(),
                "--json".into(),
            ];
            if full {
                args.push("--full".into());
            }
            let r = run(&args);
            assert_eq!(r.code, 1, "{what}: {}{}", r.stdout, r.stderr);
            let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            let codes = v["reasons"].to_string();
            assert!(codes.contains("statement.malformed"), "{what}: {codes}");
            assert!(codes.contains("name the same file"), "{what}: {codes}");
        }
        let store = dir.path().join("store");
        let r = run([
            "admit",
            ck.to_str().unwrap(),
            "--repo",
            "evil/model",
            "--store",
            store.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 1, "{what}: admitted: {}{}", r.stdout, r.stderr);
        assert!(!store.join("repos/evil/model").exists(), "{what}");
        let r = run(["inspect", ck.join("weightgate.att").to_str().unwrap()]);
        assert_eq!(r.code, 2, "{what}");
        assert!(
            r.stderr.contains("name the same file"),
            "{what}: {}",
            r.stderr
        );
    }

    // `attest` does not sign a checkpoint holding NFC/NFD or case-folding twins (distinct
    // files on Linux).
    fs::remove_file(ck.join("weightgate.att")).unwrap();
    for (a, b) in [
        ("caf\u{e9}.txt", "cafe\u{301}.txt"),
        ("w.safetensors.txt", "w.\u{17f}afetensors.txt"),
        ("README\u{3c3}.md", "README\u{3c2}.md"),
    ] {
        fs::write(ck.join(a), b"one").unwrap();
        fs::write(ck.join(b), b"two").unwrap();
        let r = run([
            "attest",
            ck.to_str().unwrap(),
            "--key",
            &td("keys/test-lab.key"),
            "--claims",
            &td("claims/tiny-below.toml"),
            "--quiet",
        ]);
        assert_eq!(r.code, 2, "{a} + {b}: {}", r.stderr);
        assert!(r.stderr.contains("name the same file"), "{}", r.stderr);
        assert!(!ck.join("weightgate.att").exists());
        fs::remove_file(ck.join(a)).unwrap();
        fs::remove_file(ck.join(b)).unwrap();
    }
}
