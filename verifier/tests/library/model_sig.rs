//! OpenSSF `model.sig` bundles written by model_signing 0.2.0 and 0.3.1 (testdata/oms-v0.2 and
//! oms-v0.3.1, over testdata/oms-v0.2/model), checked with the library's own request builder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weightgate_verifier::model_sig::{OmsOptions, OmsReport, OmsRequest, check_oms};
use weightgate_verifier::stages::SubjectScope;
use weightgate_verifier::trust::{ModelSigningKey, ModelSigningTrust};

use crate::support::{at, copy_dir, policy, testdata};

/// Checks `bundle` over `model` with the public key `key` (a file of testdata/oms-v0.2/keys).
fn check(model: &Path, bundle: PathBuf, key: &str) -> OmsReport {
    let options = OmsOptions {
        extra: ModelSigningTrust {
            keys: vec![ModelSigningKey::load(&testdata("oms-v0.2/keys").join(key)).expect("key")],
            ..ModelSigningTrust::default()
        },
        bundle: Some(bundle),
        ..OmsOptions::default()
    };
    let no_model_keys = policy("[policy]\nname = \"oms\"\n");
    let now = at("2030-01-01T00:00:00Z");
    let req = OmsRequest::for_checkpoint(
        &options,
        &no_model_keys.model_signing,
        model,
        false,
        &[],
        now,
    )
    .expect("request")
    .expect("a key was given");
    check_oms(
        &req,
        model,
        &BTreeMap::new(),
        SubjectScope::Whole,
        1,
        &|_| {},
    )
    .expect("the model folder is readable")
}

fn codes(r: &OmsReport) -> Vec<&'static str> {
    r.problems.iter().map(|(c, _)| c.as_str()).collect()
}

fn model_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    copy_dir(&testdata("oms-v0.2/model"), &model);
    (dir, model)
}

#[test]
fn bundles_of_both_releases_verify_with_the_same_root() {
    let model = testdata("oms-v0.2/model");
    let v02 = check(&model, testdata("oms-v0.2/key-p256.sig"), "p256.pub");
    assert_eq!(codes(&v02), Vec::<&str>::new(), "{:?}", v02.checks);
    assert_eq!(v02.files, 5);
    for (sig, key) in [
        ("key-p256.sig", "p256.pub"),
        ("key-p384.sig", "p384.pub"),
        ("key-p521.sig", "p521.pub"),
    ] {
        let r = check(&model, testdata("oms-v0.3.1").join(sig), key);
        assert_eq!(codes(&r), Vec::<&str>::new(), "{sig}: {:?}", r.checks);
        assert_eq!(r.root, v02.root, "{sig}");
    }
}

#[test]
fn a_bundle_checked_with_another_key_is_a_key_mismatch() {
    let r = check(
        &testdata("oms-v0.2/model"),
        testdata("oms-v0.3.1/key-p384.sig"),
        "p256.pub",
    );
    assert_eq!(codes(&r), ["oms.key_mismatch"]);
}

#[test]
fn a_changed_or_missing_file_is_found() {
    let (_dir, model) = model_copy();
    let weights = model.join("weights.bin");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[0] ^= 0x80;
    std::fs::write(&weights, &bytes).unwrap();
    let r = check(&model, testdata("oms-v0.3.1/key-p256.sig"), "p256.pub");
    assert_eq!(codes(&r), ["oms.digest_mismatch"]);
    std::fs::remove_file(&weights).unwrap();
    let r = check(&model, testdata("oms-v0.3.1/key-p256.sig"), "p256.pub");
    assert_eq!(codes(&r), ["oms.missing_file"]);
}

#[test]
fn a_bad_model_sig_is_malformed_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(testdata("oms-v0.3.1/key-p256.sig")).unwrap();
    let mut altered_signature = String::from_utf8(good.clone()).unwrap();
    // The signature is base64 inside the JSON: changing a character near its end (inside the
    // DER integer s, before any padding) keeps the bundle well-formed and the signature wrong.
    let value = altered_signature.find("\"sig\": \"").expect("a sig field") + 8;
    let at = value + altered_signature[value..].find('"').unwrap() - 6;
    let c = altered_signature.as_bytes()[at];
    altered_signature.replace_range(at..at + 1, if c == b'A' { "B" } else { "A" });
    for (name, bytes, want) in [
        ("empty", Vec::new(), "oms.malformed"),
        ("not json", b"model.sig".to_vec(), "oms.malformed"),
        (
            "cut short",
            good[..good.len() / 2].to_vec(),
            "oms.malformed",
        ),
        (
            "a number for its media type",
            b"{\"mediaType\": 1}".to_vec(),
            "oms.malformed",
        ),
        (
            "another media type",
            b"{\"mediaType\": \"application/json\"}".to_vec(),
            "oms.media_type",
        ),
        (
            "signature altered",
            altered_signature.into_bytes(),
            "oms.signature_invalid",
        ),
    ] {
        let bundle = dir.path().join(format!("{}.sig", name.replace(' ', "_")));
        std::fs::write(&bundle, bytes).unwrap();
        let r = check(&testdata("oms-v0.2/model"), bundle, "p256.pub");
        assert_eq!(
            codes(&r).first().copied(),
            Some(want),
            "{name}: {:?}",
            r.checks
        );
    }
}
