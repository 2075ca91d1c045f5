//! Real keyless `model.sig` bundles from Sigstore's public-good instance
//! (testdata/sigstore-public/, from sigstore/model-transparency) verified offline by
//! `verify-oms --sigstore` and by the reference `model_signing verify sigstore --trust_config`
//! with the same trust configuration: both must agree on every case (the right signer, a wrong
//! identity, a wrong issuer, a tampered file, a tampered Rekor entry, a tampered inclusion
//! proof, a trust root without the signing CA). The reference runs once, in one process,
//! through its own command-line entry point for every case.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, python, run, testdata};
use serde_json::{Value, json};

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";

/// Runs each argument list (JSON on stdin) through `model_signing`'s click entry point and
/// prints one line per case: `ok` or `refused`.
const REFERENCE: &str = r#"
import json, sys, logging
from model_signing._cli import main
logging.disable(logging.CRITICAL)
for args in json.load(sys.stdin):
    try:
        main.main(args=args, standalone_mode=False)
        ok = True
    except SystemExit as e:
        ok = e.code in (0, None)
    except Exception:
        ok = False
    print("ok" if ok else "refused", flush=True)
"#;

struct Case {
    name: String,
    model: PathBuf,
    signature: PathBuf,
    trust: PathBuf,
    identity: &'static str,
    issuer: &'static str,
    /// weightgate's reason code, or `None` for verified.
    expect: Option<&'static str>,
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn edit_bundle(from: &Path, to: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&fs::read(from).unwrap()).unwrap();
    edit(&mut v);
    fs::write(to, v.to_string()).unwrap();
}

#[test]
fn public_good_keyless_bundles_verify_offline_and_agree_with_model_signing() {
    let dir = tempfile::tempdir().unwrap();
    let public = testdata().join("sigstore-public");
    // The trust configuration both verifiers read: the public-good root weightgate carries,
    // in the `ClientTrustConfig` `model_signing --trust_config` takes, and one without the
    // Fulcio certificate authorities.
    let root: Value = serde_json::from_str(include_str!(
        "../../verifier/src/trust/sigstore_public_good_root.json"
    ))
    .unwrap();
    let signing: Value = serde_json::from_slice(
        &fs::read(public.join("sigstore-python/signing_config.v0.2.json")).unwrap(),
    )
    .unwrap();
    let config = |root: &Value| {
        json!({
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": root,
            "signingConfig": signing,
        })
    };
    let trust = dir.path().join("trust_config.json");
    fs::write(&trust, config(&root).to_string()).unwrap();
    let mut no_ca = root.clone();
    no_ca["certificateAuthorities"] = json!([]);
    let trust_no_ca = dir.path().join("trust_config_without_ca.json");
    fs::write(&trust_no_ca, config(&no_ca).to_string()).unwrap();

    let mut cases = Vec::new();
    for version in ["v0.3.1", "v1.0.0", "v1.0.1", "v1.1.0"] {
        let model = dir.path().join(version);
        copy_dir(
            &public.join(format!("model-transparency/{version}-sigstore")),
            &model,
        );
        let sig = dir.path().join(format!("{version}.sig"));
        fs::rename(model.join("model.sig"), &sig).unwrap();
        fs::write(model.join("ignore-me"), b"").unwrap();
        let case = |name: &str, signature: &Path, trust: &Path, identity, issuer, expect| Case {
            name: format!("{version} {name}"),
            model: model.clone(),
            signature: signature.to_path_buf(),
            trust: trust.to_path_buf(),
            identity,
            issuer,
            expect,
        };
        cases.push(case("signed", &sig, &trust, IDENTITY, ISSUER, None));
        // Every refusal on the oldest bundle and on the newest (which also has an RFC 3161
        // timestamp); the middle two differ from these only in their dates.
        if !matches!(version, "v0.3.1" | "v1.1.0") {
            continue;
        }
        cases.push(case(
            "wrong identity",
            &sig,
            &trust,
            "mallory@us.ibm.com",
            ISSUER,
            Some("oms.sigstore_identity"),
        ));
        cases.push(case(
            "wrong issuer",
            &sig,
            &trust,
            IDENTITY,
            "https://accounts.google.com",
            Some("oms.sigstore_issuer"),
        ));
        cases.push(case(
            "root without the CA",
            &sig,
            &trust_no_ca,
            IDENTITY,
            ISSUER,
            Some("oms.certificate_untrusted"),
        ));
        let later = dir.path().join(format!("{version}-later.sig"));
        edit_bundle(&sig, &later, |v| {
            let entry = &mut v["verificationMaterial"]["tlogEntries"][0];
            let t: i64 = entry["integratedTime"].as_str().unwrap().parse().unwrap();
            entry["integratedTime"] = json!((t + 1).to_string());
        });
        cases.push(case(
            "tampered Rekor entry",
            &later,
            &trust,
            IDENTITY,
            ISSUER,
            Some("oms.sigstore_tlog"),
        ));
        let proof = dir.path().join(format!("{version}-proof.sig"));
        edit_bundle(&sig, &proof, |v| {
            let hashes =
                &mut v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"];
            hashes[0] = hashes[1].clone();
        });
        cases.push(case(
            "tampered inclusion proof",
            &proof,
            &trust,
            IDENTITY,
            ISSUER,
            Some("oms.sigstore_inclusion_proof"),
        ));
        let tampered = dir.path().join(format!("{version}-tampered"));
        copy_dir(&model, &tampered);
        fs::write(tampered.join("signme-1"), b"tampered\n").unwrap();
        cases.push(Case {
            name: format!("{version} tampered file"),
            model: tampered,
            signature: sig.clone(),
            trust: trust.clone(),
            identity: IDENTITY,
            issuer: ISSUER,
            expect: Some("oms.digest_mismatch"),
        });
    }

    // weightgate, each case.
    for case in &cases {
        let r = run([
            "verify-oms",
            s(&case.model),
            "--signature",
            s(&case.signature),
            "--sigstore",
            "--identity",
            case.identity,
            "--issuer",
            case.issuer,
            "--trust-root",
            s(&case.trust),
            "--ignore-paths",
            "ignore-me",
            "--json",
        ]);
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}{}", case.name, r.stdout, r.stderr));
        let codes: Vec<&str> = v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        match case.expect {
            None => assert_eq!(
                (r.code, codes.as_slice()),
                (0, &[][..]),
                "{}: {v}",
                case.name
            ),
            Some(code) => assert_eq!(
                (r.code, codes.as_slice()),
                (1, &[code][..]),
                "{}: {v}",
                case.name
            ),
        }
        if case.expect.is_none() {
            let detail = v["checks"][1]["detail"].as_str().unwrap();
            assert!(
                detail.contains("signed entry timestamp; inclusion proof to the checkpoint of rekor.sigstore.dev"),
                "{}: {detail}",
                case.name
            );
            if case.name.starts_with("v1.1.0") {
                assert!(detail.contains("RFC 3161 timestamp"), "{detail}");
            }
        }
    }

    // model_signing, every case in one process.
    let args: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            [
                "verify",
                "sigstore",
                "--trust_config",
                s(&c.trust),
                "--identity",
                c.identity,
                "--identity_provider",
                c.issuer,
                "--ignore-paths",
                s(&c.model.join("ignore-me")),
                "--signature",
                s(&c.signature),
                s(&c.model),
            ]
            .iter()
            .map(|a| a.to_string())
            .collect()
        })
        .collect();
    let stdin = dir.path().join("cases.json");
    fs::write(&stdin, serde_json::to_string(&args).unwrap()).unwrap();
    let out = Command::new(python())
        .args(["-c", REFERENCE])
        .stdin(fs::File::open(&stdin).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| matches!(*l, "ok" | "refused"))
        .map(str::to_string)
        .collect();
    assert_eq!(verdicts.len(), cases.len(), "{verdicts:?}");
    for (case, verdict) in cases.iter().zip(&verdicts) {
        let expected = if case.expect.is_none() {
            "ok"
        } else {
            "refused"
        };
        assert_eq!(verdict, expected, "model_signing on {}", case.name);
    }
}
