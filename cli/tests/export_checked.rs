//! `weightgate export` checks what it exports: the envelope is authenticated first (or the
//! export says it is `--unverified`), and the BOM names its subject with a serial number and the
//! Hugging Face package URL, validated by cyclonedx-python-lib.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{python, run, td};

/// Validates `bom` with check_bom.py and returns what the library read.
fn checked_bom(bom: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cyclonedx/check_bom.py");
    let out = Command::new(python())
        .arg(script)
        .arg(bom)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn export_authenticates_first_and_names_the_release() {
    let dir = tempfile::tempdir().unwrap();
    let bad = td("envelopes/fail_bad_signature.att");
    let good = td("envelopes/golden_tiny.att");
    let lab = td("keys/test-lab.pub");

    for format in ["cyclonedx", "intoto"] {
        // Nothing to check against: refused, naming the ways out.
        let r = run(["export", "--format", format, &good]);
        assert_eq!(r.code, 2, "{}", r.stdout);
        assert!(
            r.stderr.contains("--trust") && r.stderr.contains("--unverified"),
            "{}",
            r.stderr
        );
        // A bad signature: not exported, with the reason code.
        let r = run(["export", "--format", format, &bad, "--trust", &lab]);
        assert_eq!(r.code, 2, "{}", r.stdout);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(
            r.stderr.contains("does not authenticate") && r.stderr.contains("signature"),
            "{}",
            r.stderr
        );
        // A key that did not sign it: refused the same way.
        let r = run([
            "export",
            "--format",
            format,
            &good,
            "--trust",
            &td("keys/test-other.pub"),
        ]);
        assert_eq!(r.code, 2, "{}", r.stdout);
    }

    // --unverified: exported, and the output says it was not checked.
    let unverified = dir.path().join("unverified.cdx.json");
    let r = run([
        "export",
        "--format",
        "cyclonedx",
        &bad,
        "--unverified",
        "--out",
        unverified.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("UNVERIFIED"), "{}", r.stderr);
    let v = checked_bom(&unverified);
    assert_eq!(
        v["properties"]["weightgate:attestation:authenticated"],
        "false"
    );
    assert!(
        v["references"][0]["comment"]
            .as_str()
            .unwrap()
            .contains("NOT authenticated"),
        "{v}"
    );

    // Authenticated, with the Hub release: serial number and package URL.
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let bom = dir.path().join("bom.cdx.json");
    let r = run([
        "export",
        "--format",
        "cyclonedx",
        &good,
        "--trust",
        &lab,
        "--hf",
        &format!("lab/tiny@{commit}"),
        "--out",
        bom.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = checked_bom(&bom);
    assert_eq!(v["purl"], format!("pkg:huggingface/lab/tiny@{commit}"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bom).unwrap()).unwrap();
    let serial = doc["serialNumber"].as_str().unwrap();
    assert_eq!(
        serial,
        format!("urn:uuid:{}", v["serial_number"].as_str().unwrap())
    );
    assert_eq!(
        v["properties"]["weightgate:attestation:authenticated"],
        "true"
    );
    let r = run([
        "export",
        "--format",
        "cyclonedx",
        &good,
        "--trust",
        &lab,
        "--hf",
        "lab/tiny@main",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("40-hex commit"), "{}", r.stderr);
}
