//! The third stage: compute, time, regimes and grants, on one below-threshold and one
//! above-threshold vector (testdata/verifier/generate.sh writes the latter and its grant).

use crate::support::{Judged, codes, policy, read, regime_result};

const EU: &str = "eu-ai-act-gpai";
const CA: &str = "us-ca-sb53";
const NY: &str = "us-ny-raise";
const BIS: &str = "us-bis-ai-diffusion-2025";

/// Every preset regime in force, the BIS rule simulated with a countersigned licence required.
fn every_regime() -> weightgate_verifier::policy::Policy {
    policy(&format!(
        "[policy]\nname = \"all\"\nregimes = [\"{EU}\", \"{CA}\", \"{NY}\", \"{BIS}\"]\n\
         [[trusted_key]]\nname = \"lab\"\npath = \"../keys/test-lab.pub\"\n\
         [[issuer]]\nname = \"issuer\"\nauthority = \"US BIS\"\npath = \"../keys/test-issuer.pub\"\n\
         [regime.\"{BIS}\"]\nassume_in_force = true\nrequire_grant = true\n"
    ))
}

fn above() -> Vec<u8> {
    read("verifier/tiny_above.att")
}

fn grant() -> Vec<u8> {
    read("verifier/tiny_above_D1234567.grant")
}

#[test]
fn below_every_threshold_each_regime_says_so() {
    let mut j = Judged::tiny();
    j.now = "2027-06-01T00:00:00Z";
    j.destination = Some("DE");
    let d = j.verify(&read("envelopes/golden_tiny.att"), &every_regime());
    assert!(d.allowed, "{:?}", d.reasons);
    for id in [EU, CA, NY] {
        assert_eq!(regime_result(&d, id), "below-threshold", "{id}");
    }
    // Published weights are outside the BIS rule whatever their compute.
    assert_eq!(regime_result(&d, BIS), "skipped");
}

#[test]
fn above_every_threshold_the_references_carry_it() {
    let mut j = Judged::tiny();
    j.now = "2027-06-01T00:00:00Z";
    j.destination = Some("DE");
    let d = j.verify(&above(), &every_regime());
    assert!(d.allowed, "{:?}", d.reasons);
    for id in [EU, CA, NY] {
        assert_eq!(regime_result(&d, id), "reference-ok", "{id}");
    }
    j.destination = Some("BR");
    j.grants = vec![grant()];
    let d = j.verify(&above(), &every_regime());
    assert!(d.allowed, "{:?}", d.reasons);
    assert_eq!(regime_result(&d, BIS), "reference-ok");
}

#[test]
fn above_the_threshold_a_regime_without_its_reference_denies() {
    let mut j = Judged::tiny();
    j.now = "2027-06-01T00:00:00Z";
    j.destination = Some("BR");
    let d = j.verify(&above(), &every_regime());
    assert_eq!(codes(&d), ["regime.grant_missing"]);
    assert_eq!(regime_result(&d, BIS), "denied");
}

#[test]
fn a_grant_whose_licence_has_expired_denies() {
    let mut j = Judged::tiny();
    j.now = "2028-06-01T00:00:00Z";
    j.destination = Some("BR");
    j.grants = vec![grant()];
    let d = j.verify(&above(), &every_regime());
    assert_eq!(codes(&d), ["regime.reference_expired"]);
    assert_eq!(regime_result(&d, BIS), "denied");
}

#[test]
fn a_grant_from_an_issuer_the_policy_does_not_trust_counts_for_nothing() {
    let mut j = Judged::tiny();
    j.now = "2027-06-01T00:00:00Z";
    j.destination = Some("BR");
    j.grants = vec![grant()];
    let other_issuer = policy(&format!(
        "[policy]\nname = \"other\"\nregimes = [\"{BIS}\"]\n\
         [[trusted_key]]\nname = \"lab\"\npath = \"../keys/test-lab.pub\"\n\
         [[issuer]]\nname = \"someone else\"\nauthority = \"US BIS\"\npath = \"../keys/test-other.pub\"\n\
         [regime.\"{BIS}\"]\nassume_in_force = true\nrequire_grant = true\n"
    ));
    let d = j.verify(&above(), &other_issuer);
    assert_eq!(codes(&d), ["grant.invalid", "regime.grant_missing"]);
}

#[test]
fn an_attestation_issued_after_now_is_refused() {
    let mut j = Judged::tiny();
    j.now = "2026-10-01T00:00:00Z";
    let lab = policy(
        "[policy]\nname = \"t\"\n[[trusted_key]]\nname = \"lab\"\npath = \"../keys/test-lab.pub\"\n",
    );
    let d = j.verify(&read("envelopes/golden_tiny.att"), &lab);
    assert_eq!(codes(&d), ["time.issued_in_future"]);
}
