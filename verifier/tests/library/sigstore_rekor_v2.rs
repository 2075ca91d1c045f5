//! A real Rekor v2 keyless bundle (sigstore-python's `a.dsse.staging-rekor-v2.txt`, signed on
//! Sigstore's staging instance, testdata/sigstore-public/sigstore-python/): a DSSE envelope
//! logged as a `hashedrekord` 0.0.2 entry with an inclusion proof and checkpoint and no signed
//! entry timestamp, its time proven by an RFC 3161 timestamp. It is a plain artifact, not a
//! model, so the keyless check is called directly, against the staging trusted root.

use serde_json::{Value, json};
use weightgate_schemas::oms::{OmsMaterial, decode_bundle};
use weightgate_verifier::reason::ReasonCode;
use weightgate_verifier::sigstore_keyless::{KeylessError, KeylessSigner, verify_keyless};
use weightgate_verifier::trust::{SigstoreIdentity, SigstoreRoot, SigstoreTrust};

use crate::support::read;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn bundle() -> Value {
    serde_json::from_slice(&read(
        "sigstore-public/sigstore-python/a.dsse.staging-rekor-v2.txt.sigstore.json",
    ))
    .unwrap()
}

fn staging_root() -> Value {
    serde_json::from_slice(&read(
        "sigstore-public/sigstore-python/staging_trusted_root.json",
    ))
    .unwrap()
}

fn check(bundle: &Value, root: &Value, identity: &str) -> Result<KeylessSigner, KeylessError> {
    let decoded = decode_bundle(bundle.to_string().as_bytes()).unwrap();
    let OmsMaterial::Sigstore(material) = &decoded.material else {
        panic!("not a keyless bundle");
    };
    let trust = SigstoreTrust {
        root: SigstoreRoot::parse(&root.to_string(), "staging root").unwrap(),
        identities: vec![SigstoreIdentity {
            identity: identity.into(),
            issuer: ISSUER.into(),
        }],
    };
    verify_keyless(
        material,
        &decoded.payload_type,
        &decoded.payload,
        &decoded.signature,
        &[trust],
    )
}

fn refused(result: Result<KeylessSigner, KeylessError>) -> (ReasonCode, String) {
    match result {
        Err(KeylessError::Refused(code, message)) => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_rekor_v2_bundle_is_proven_by_its_inclusion_proof_and_rfc3161_timestamp() {
    let root = staging_root();
    let signer = check(&bundle(), &root, IDENTITY).unwrap();
    assert!(
        signer
            .logged
            .contains("inclusion proof to the checkpoint of log2025-alpha3.rekor.sigstage.dev"),
        "{}",
        signer.logged
    );
    assert!(!signer.logged.contains("signed entry timestamp"));
    assert_eq!(signer.times.len(), 1, "{:?}", signer.times);
    assert!(
        signer.times[0].starts_with("RFC 3161 timestamp 2026-05-13T19:23:33Z by sigstore-tsa"),
        "{:?}",
        signer.times
    );
    // Another identity.
    let (code, _) = refused(check(&bundle(), &root, "https://github.com/mallory"));
    assert_eq!(code, ReasonCode::OmsSigstoreIdentity);

    // A timestamp whose signature bytes were altered proves no time.
    let mut b = bundle();
    let ts = &mut b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"];
    let mut text = ts.as_str().unwrap().to_string();
    let at = text.len() - 12;
    let flipped = if &text[at..at + 1] == "A" { "B" } else { "A" };
    text.replace_range(at..at + 1, flipped);
    *ts = json!(text);
    let (code, message) = refused(check(&b, &root, IDENTITY));
    assert_eq!(code, ReasonCode::OmsSigstoreTimestamp, "{message}");
    assert!(message.contains("proves no signing time"), "{message}");

    // A root without timestamp authorities cannot check the timestamp.
    let mut no_tsa = root.clone();
    no_tsa["timestampAuthorities"] = json!([]);
    let (code, _) = refused(check(&bundle(), &no_tsa, IDENTITY));
    assert_eq!(code, ReasonCode::OmsSigstoreTimestamp);

    // A root without the Fulcio CAs.
    let mut no_ca = root.clone();
    no_ca["certificateAuthorities"] = json!([]);
    let (code, _) = refused(check(&bundle(), &no_ca, IDENTITY));
    assert_eq!(code, ReasonCode::OmsCertificateUntrusted);

    // The public-good root does not list the staging log.
    let public_good: Value = serde_json::from_str(include_str!(
        "../../src/trust/sigstore_public_good_root.json"
    ))
    .unwrap();
    let (code, _) = refused(check(&bundle(), &public_good, IDENTITY));
    assert!(
        matches!(
            code,
            ReasonCode::OmsSigstoreTlog | ReasonCode::OmsSigstoreTimestamp
        ),
        "{code:?}"
    );

    // A swapped audit path, another body, a checkpoint signature altered or missing.
    let entry = |edit: &dyn Fn(&mut Value)| {
        let mut b = bundle();
        edit(&mut b["verificationMaterial"]["tlogEntries"][0]);
        refused(check(&b, &root, IDENTITY))
    };
    let (code, _) = entry(&|e| {
        let h = e["inclusionProof"]["hashes"][1].clone();
        e["inclusionProof"]["hashes"][0] = h;
    });
    assert_eq!(code, ReasonCode::OmsSigstoreInclusionProof);
    let (code, _) = entry(&|e| {
        e["inclusionProof"]["hashes"].as_array_mut().unwrap().pop();
    });
    assert_eq!(code, ReasonCode::OmsSigstoreInclusionProof);
    let (code, _) = entry(&|e| e["canonicalizedBody"] = json!("e30="));
    assert_eq!(code, ReasonCode::OmsSigstoreInclusionProof);
    let checkpoint = bundle()["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        ["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .to_string();
    let log_line = checkpoint
        .lines()
        .find(|l| l.starts_with("\u{2014} log2025-alpha3"))
        .unwrap()
        .to_string();
    let mut altered = log_line.clone();
    let at = altered.len() - 8;
    let flipped = if &altered[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    altered.replace_range(at..at + 1, flipped);
    for replacement in [altered, String::new()] {
        let text = checkpoint.replace(
            &format!("{log_line}\n"),
            &if replacement.is_empty() {
                String::new()
            } else {
                format!("{replacement}\n")
            },
        );
        let (code, message) =
            entry(&|e| e["inclusionProof"]["checkpoint"]["envelope"] = json!(text));
        assert_eq!(code, ReasonCode::OmsSigstoreCheckpoint, "{message}");
    }
    // A checkpoint for another tree size.
    let other_size = checkpoint.replacen("\n4026479\n", "\n4026480\n", 1);
    let (code, _) = entry(&|e| e["inclusionProof"]["checkpoint"]["envelope"] = json!(other_size));
    assert_eq!(code, ReasonCode::OmsSigstoreCheckpoint);
    // Rekor v2 never issues a signed entry timestamp; one claimed is refused.
    let (code, _) = entry(&|e| {
        e["inclusionPromise"] = json!({"signedEntryTimestamp": "MEUCIQ=="});
    });
    assert_eq!(code, ReasonCode::OmsSigstoreTlog);
}
