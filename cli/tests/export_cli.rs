//! `weightgate export`: the CycloneDX 1.6 ML-BOM validated against the official schema by
//! cyclonedx-python-lib (installed by `.ci/run` into `.ci/venv`, never skipped), and the
//! in-toto form under its new and old names.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, run, td, testdata};
use sha2::Digest as _;
use weightgate_schemas::{Envelope, Statement};

fn python() -> PathBuf {
    let p = match std::env::var_os("WEIGHTGATE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python"),
    };
    assert!(
        p.exists(),
        "{} missing: run .ci/run, which installs the pinned cyclonedx-python-lib there (this test is never skipped)",
        p.display()
    );
    p
}

/// A derived model above the thresholds: four references, a base model, hardware estimate.
fn attest_derived(dir: &Path) -> PathBuf {
    let ck = dir.join("frontier");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    let claims = fs::read_to_string(testdata().join("claims/tiny-above.toml"))
        .unwrap()
        .replace("total = \"3e26\"", "total = \"3.1e26\"")
        .replace("[entity]", &format!(
            "[compute.base_model]\nname = \"base-lm\"\nroot_sha256 = \"{}\"\nattestation_sha256 = \"{}\"\nops = \"1e25\"\n\n[entity]",
            "ab".repeat(32),
            "cd".repeat(32)
        ))
        .replace("number = \"TR-2026-01\"", "number = \"https://example.invalid/tr/2026-01\"");
    let claims_path = dir.join("claims.toml");
    fs::write(&claims_path, claims).unwrap();
    let r = run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        claims_path.to_str().unwrap(),
        "--issued-at",
        "2026-11-01T00:00:00Z",
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    ck.join("weightgate.att")
}

#[test]
fn cyclonedx_ml_bom_is_valid_and_carries_the_attested_facts() {
    let dir = tempfile::tempdir().unwrap();
    let att = attest_derived(dir.path());
    let bytes = fs::read(&att).unwrap();
    let st = Statement::decode_strict(&Envelope::decode_strict(&bytes).unwrap().payload).unwrap();
    let bom = dir.path().join("bom.cdx.json");
    let r = run([
        "export",
        "--format",
        "cyclonedx",
        att.to_str().unwrap(),
        "--out",
        bom.to_str().unwrap(),
        "--trust",
        &td("keys/test-lab.pub"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Deterministic: standard output holds the same document.
    let again = run([
        "export",
        "--format",
        "cyclonedx",
        att.to_str().unwrap(),
        "--trust",
        &td("keys/test-lab.pub"),
    ]);
    assert_eq!(again.stdout, fs::read_to_string(&bom).unwrap());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cyclonedx/check_bom.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&bom)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "machine-learning-model");
    assert_eq!(v["name"], "tiny-frontier");
    assert_eq!(v["version"], "2.0.0");
    assert_eq!(v["manufacturer"], "Weightgate Test Lab Ltd");
    assert_eq!(v["supplier"], "Weightgate Test Lab Ltd");
    assert_eq!(v["country"], "US");
    assert_eq!(v["contact"][0], "lab@example.invalid");
    assert_eq!(v["timestamp"], "2026-11-01T00:00:00+00:00");
    assert_eq!(v["tools"][0], "weightgate");
    assert_eq!(
        v["files"].as_object().unwrap().len(),
        st.subject.files.len()
    );
    for f in &st.subject.files {
        assert_eq!(v["files"][&f.path]["SHA-256"], f.sha256.to_hex());
        assert_eq!(v["files"][&f.path]["BLAKE3"], f.blake3.to_hex());
    }
    let p = &v["properties"];
    assert_eq!(
        p["weightgate:subject:root_sha256"],
        st.subject.root_sha256.to_hex()
    );
    assert_eq!(p["weightgate:entity:lei"], "549300WGTGATETEST087");
    let c = &v["compute"];
    assert_eq!(
        c["weightgate:compute:total_operations"],
        "310000000000000000000000000"
    );
    assert_eq!(c["weightgate:compute:method"], "hardware");
    assert_eq!(
        c["weightgate:compute:base_model_operations"],
        "10000000000000000000000000"
    );
    assert_eq!(c["weightgate:compute:inputs:accelerator"], "H100-SXM");
    assert_eq!(v["ancestors"][0]["name"], "base-lm");
    assert_eq!(
        v["ancestors"][0]["properties"]["weightgate:subject:root_sha256"],
        "ab".repeat(32)
    );
    assert_eq!(
        v["ancestors"][0]["properties"]["weightgate:attestation:sha256"],
        "cd".repeat(32)
    );
    let refs = v["references"].as_array().unwrap();
    assert_eq!(refs.len(), 5, "{refs:?}");
    let find = |url: &str| {
        refs.iter()
            .find(|r| r["url"] == url)
            .unwrap_or_else(|| panic!("{url} not in {refs:?}"))
    };
    let a = find("weightgate.att");
    assert_eq!(a["type"], "attestation");
    assert_eq!(
        a["hashes"]["SHA-256"],
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    let l = find("urn:weightgate:reference:export-licence:US%20BIS:D1234567");
    assert_eq!(l["type"], "other");
    assert!(
        l["comment"]
            .as_str()
            .unwrap()
            .contains("until 2027-12-31T00:00:00Z; destinations DE, FR, JP"),
        "{l}"
    );
    assert_eq!(
        find("https://example.invalid/tr/2026-01")["type"],
        "documentation"
    );
    find(
        "urn:weightgate:reference:notification:European%20Commission%20AI%20Office:AIO-GPAI-2026-0042",
    );
}

#[test]
fn intoto_under_both_names_and_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let att = attest_derived(dir.path());
    let a = att.to_str().unwrap();
    let new = run([
        "export",
        "--format",
        "intoto",
        a,
        "--key",
        &td("keys/test-lab.key"),
        "--trust",
        &td("keys/test-lab.pub"),
    ]);
    let old = run([
        "export-intoto",
        a,
        "--key",
        &td("keys/test-lab.key"),
        "--unverified",
    ]);
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert_eq!(new.stdout, old.stdout);
    assert!(new.stdout.ends_with("}\n") && new.stdout.lines().count() == 1);

    let r = run([
        "export",
        "--format",
        "cyclonedx",
        a,
        "--key",
        &td("keys/test-lab.key"),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("--key signs the in-toto DSSE envelope only"),
        "{}",
        r.stderr
    );
    let r = run(["export", "--format", "spdx", a]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid value 'spdx'"), "{}", r.stderr);
    let r = run([
        "export",
        "--format",
        "cyclonedx",
        &td("envelopes/fail_trailing_bytes.att"),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not a weightgate envelope"),
        "{}",
        r.stderr
    );
    let r = run(["export", "--format", "cyclonedx", &td("keys/test-lab.pub")]);
    assert_eq!(r.code, 2);
}
