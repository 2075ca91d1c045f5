//! The first stage: envelope, signatures, key validity and revocation. Nothing is read from
//! the checkpoint until it passes.

use crate::support::{Judged, codes, policy, policy_trusting, read, testdata};

const LAB_KEYID: &str = "95a606307a602a77bbcffa454967dcc77dc6a5a8b4ee3afee777dba5f58a75a3";

#[test]
fn the_golden_envelope_signed_by_a_trusted_key_is_allowed() {
    let d = Judged::tiny().verify(
        &read("envelopes/golden_tiny.att"),
        &policy_trusting(&["test-lab"], ""),
    );
    assert!(d.allowed, "{:?}", d.reasons);
    assert_eq!(d.facts.signers, [LAB_KEYID]);
    assert_eq!(d.facts.model.as_deref(), Some("tiny-lm"));
}

#[test]
fn a_signature_by_a_key_the_policy_does_not_trust_is_refused_before_any_byte_is_hashed() {
    let d = Judged::tiny().verify(
        &read("envelopes/golden_tiny.att"),
        &policy_trusting(&["test-other"], ""),
    );
    assert!(!d.allowed);
    assert_eq!(codes(&d), ["signature.untrusted_key", "signature.too_few"]);
    assert_eq!(d.facts.bytes_hashed, 0);
    assert_eq!(d.facts.model, None, "the statement is not read");
}

#[test]
fn fewer_trusted_signatures_than_the_policy_needs_are_refused() {
    let both = policy_trusting(&["test-lab", "test-auditor"], "min_signatures = 2");
    let d = Judged::tiny().verify(&read("envelopes/golden_tiny.att"), &both);
    assert_eq!(codes(&d), ["signature.too_few"]);
    assert_eq!(d.facts.bytes_hashed, 0);
}

#[test]
fn every_failing_envelope_vector_is_refused_with_its_recorded_code() {
    let lab = policy_trusting(&["test-lab"], "");
    let mut checked = 0;
    for entry in std::fs::read_dir(testdata("envelopes")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.starts_with("fail_") && name.ends_with(".att")) {
            continue;
        }
        let want = std::fs::read_to_string(path.with_extension("code")).unwrap();
        let d = Judged::tiny().verify(&std::fs::read(&path).unwrap(), &lab);
        assert!(!d.allowed, "{name} allowed");
        assert_eq!(
            codes(&d).first().copied(),
            Some(want.trim()),
            "{name}: {:?}",
            d.reasons
        );
        assert_eq!(
            d.facts.bytes_hashed, 0,
            "{name}: hashed before authentication"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fail_* vectors found");
}

#[test]
fn a_revoked_key_is_refused_even_when_trusted() {
    let p = policy_trusting(
        &["test-lab"],
        &format!("[revoked]\nkeys = [\"{LAB_KEYID}\"]"),
    );
    let d = Judged::tiny().verify(&read("envelopes/golden_tiny.att"), &p);
    assert!(
        codes(&d).contains(&"signature.revoked_key"),
        "{:?}",
        d.reasons
    );
    assert!(!d.allowed);
}

#[test]
fn a_key_trusted_only_until_before_the_signature_is_refused() {
    let p = policy(
        "[policy]\nname = \"t\"\n[[trusted_key]]\nname = \"lab\"\npath = \"../keys/test-lab.pub\"\nvalid_until = 2026-06-01\n",
    );
    let d = Judged::tiny().verify(&read("envelopes/golden_tiny.att"), &p);
    assert!(
        codes(&d).contains(&"signature.key_expired"),
        "{:?}",
        d.reasons
    );
    assert!(!d.allowed);
}
