//! `model.sig` checked on a partial download (`hf download ORG/NAME FILE...`, what a loader
//! fetches plus the attestation and `model.sig`): signed files never downloaded are listed as
//! not downloaded, as for the attestation, and fail only with `--complete`; the shards the index
//! names must be there. `model_signing verify` has no such mode: it refuses the partial folder.

use crate::hf_cache::{venv_bin, verify};
use crate::hf_loaded::{client, output_of, serve_signed_tiny};

use std::fs;
use std::path::Path;
use std::process::Command;

/// What `from_pretrained` loads for the sharded tiny model, with the two signatures.
const SUBSET: &[&str] = &[
    "config.json",
    "model.safetensors.index.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "weightgate.att",
    "model.sig",
];

fn verify_with_model_sig(hf_home: &Path, ec_pub: &Path, target: &[&str]) -> crate::common::Run {
    let mut args = target.to_vec();
    args.extend(["--oms-key", ec_pub.to_str().unwrap()]);
    verify(hf_home, &args)
}

#[test]
fn a_partial_download_checks_model_sig_for_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (_ck, server) = serve_signed_tiny(dir.path());
    let hf_home = dir.path().join("hf-home");
    let local = dir.path().join("local");
    let ec_pub = dir.path().join("ec.pub");
    for layout in [vec![], vec!["--local-dir", local.to_str().unwrap()]] {
        let mut hf = client(&venv_bin("hf"), &server.url(), &hf_home);
        hf.args(["download", "lab/tiny"]).args(SUBSET).args(layout);
        output_of(hf);
    }
    drop(server);
    assert!(!local.join("README.md").exists());

    for target in [vec!["--hf", "lab/tiny"], vec![local.to_str().unwrap()]] {
        let r = verify_with_model_sig(&hf_home, &ec_pub, &target);
        assert_eq!(r.code, 0, "{target:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("1 signed file not downloaded")
                && r.stdout.contains("1 file not downloaded, so not checked")
                && r.stdout.contains("README.md"),
            "{target:?}: {}",
            r.stdout
        );
        let mut complete = target.clone();
        complete.push("--complete");
        let r = verify_with_model_sig(&hf_home, &ec_pub, &complete);
        assert_eq!(r.code, 1, "{target:?}: {}", r.stdout);
        assert!(
            r.stdout.contains("oms.missing_file") && r.stdout.contains("subject.missing_file"),
            "{target:?}: {}",
            r.stdout
        );
    }
    let r = verify_with_model_sig(&hf_home, &ec_pub, &["--hf", "lab/tiny", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        json["facts"]["not_downloaded"],
        serde_json::json!(["README.md"])
    );

    // model_signing verifies a model as signed, whole: the partial folder is refused.
    let out = Command::new(venv_bin("python"))
        .args(["-m", "model_signing", "verify", "key"])
        .arg(&local)
        .arg("--signature")
        .arg(local.join("model.sig"))
        .arg("--public_key")
        .arg(&ec_pub)
        .arg("--ignore-paths")
        .arg(local.join(".cache/huggingface"))
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("README.md"), "{said}");

    // A shard the present index names, absent: model.sig fails too, not only the attestation.
    fs::remove_file(local.join("model-00002-of-00002.safetensors")).unwrap();
    let r = verify_with_model_sig(&hf_home, &ec_pub, &[local.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("oms.missing_file")
                && l.contains("model-00002-of-00002.safetensors")),
        "{}",
        r.stdout
    );
}
