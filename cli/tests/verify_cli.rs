//! `verify` through the real binary: every check made to fail, with its reason code.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Run, copy_dir, run, td, testdata};
use sha2::Digest as _;
use weightgate_attest::signing::{Ed25519FileSigner, sign_envelope};
use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Ops, Statement};

const NOW: &str = "2026-11-20T00:00:00Z";

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    /// The tiny checkpoint attested by the test lab (per-tensor digests, issued 2026-11-01).
    fn new() -> Self {
        let c = Case {
            dir: tempfile::tempdir().unwrap(),
        };
        copy_dir(&testdata().join("checkpoints/tiny"), &c.ck());
        c.attest("claims/tiny-below.toml", &["--per-tensor"]);
        c
    }
    fn ck(&self) -> PathBuf {
        self.dir.path().join("tiny")
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
    fn att(&self) -> PathBuf {
        self.ck().join("weightgate.att")
    }
    fn attest(&self, claims: &str, extra: &[&str]) {
        let claims = if Path::new(claims).is_absolute() {
            claims.to_string()
        } else {
            td(claims)
        };
        let (ck, key) = (self.ck(), td("keys/test-lab.key"));
        let mut args = vec![
            "attest",
            ck.to_str().unwrap(),
            "--key",
            &key,
            "--claims",
            &claims,
            "--issued-at",
            "2026-11-01T00:00:00Z",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let r = run(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    fn write_policy(&self, body: &str) -> String {
        let keys = testdata().join("keys");
        let text = body.replace("KEYS", keys.to_str().unwrap());
        let p = self.path("policy.toml");
        fs::write(&p, text).unwrap();
        p
    }
    fn verify(&self, policy: &str, extra: &[&str]) -> (Run, serde_json::Value) {
        let ck = self.ck();
        let mut args = vec![
            "verify",
            ck.to_str().unwrap(),
            "--policy",
            policy,
            "--json",
            "--quiet",
        ];
        if !extra.contains(&"--now") {
            args.extend_from_slice(&["--now", NOW]);
        }
        args.extend_from_slice(extra);
        let r = run(&args);
        let v = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
        (r, v)
    }
    /// Re-signs the attestation's statement after `edit`, with the test lab key.
    fn resign(&self, edit: impl FnOnce(&mut Statement)) {
        let env = Envelope::decode_strict(&fs::read(self.att()).unwrap()).unwrap();
        let mut st = Statement::decode_strict(&env.payload).unwrap();
        edit(&mut st);
        let key = Ed25519FileSigner::load(&testdata().join("keys/test-lab.key")).unwrap();
        fs::write(
            self.att(),
            sign_envelope(ATTESTATION_PAYLOAD_TYPE, st.encode(), &key)
                .unwrap()
                .encode(),
        )
        .unwrap();
    }
}

const BASIC: &str = r#"
[policy]
name = "test"
[[trusted_key]]
name = "lab"
path = "KEYS/test-lab.pub"
"#;

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["reasons"].as_array().map_or(Vec::new(), |a| {
        a.iter()
            .map(|r| r["code"].as_str().unwrap().to_string())
            .collect()
    })
}

fn assert_denied(r: &Run, v: &serde_json::Value, code: &str) {
    assert_eq!(
        r.code, 1,
        "expected denial with {code}: {}{}",
        r.stdout, r.stderr
    );
    assert_eq!(v["allowed"], false);
    assert!(
        codes(v).iter().any(|c| c == code),
        "want {code}, got {:?}",
        codes(v)
    );
}

#[test]
fn an_untouched_checkpoint_is_allowed_and_the_report_lists_every_check() {
    let c = Case::new();
    let p = c.write_policy(BASIC);
    let (r, v) = c.verify(&p, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(v["allowed"], true);
    assert_eq!(v["facts"]["model"], "tiny-lm");
    assert_eq!(v["facts"]["digest"], "blake3");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "envelope",
        "signatures",
        "revocation",
        "statement",
        "subject",
        "compute",
        "time",
        "lineage",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let (r, v) = c.verify(&p, &["--full"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(v["facts"]["digest"], "sha256+blake3");
    // --trust and the human report.
    let r = run([
        "verify",
        c.ck().to_str().unwrap(),
        "--trust",
        &td("keys/test-lab.pub"),
        "--now",
        NOW,
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("ALLOWED") && r.stdout.contains("ok    subject"),
        "{}",
        r.stdout
    );
}

/// Streamed past the page cache (what cold files get), `attest` signs the same envelope and
/// `verify` reaches the same decisions as through the mappings.
#[test]
fn attest_and_verify_reading_streamed_agree_with_mapped() {
    let streamed = [("WEIGHTGATE_HASH_READ", "streamed")];
    let c = Case::new();
    let p = c.write_policy(BASIC);
    let mapped_envelope = fs::read(c.att()).unwrap();
    fs::remove_file(c.att()).unwrap();
    let (ck, key, claims) = (
        c.ck(),
        td("keys/test-lab.key"),
        td("claims/tiny-below.toml"),
    );
    let r = common::run_env(
        &streamed,
        [
            "attest",
            ck.to_str().unwrap(),
            "--key",
            &key,
            "--claims",
            &claims,
            "--issued-at",
            "2026-11-01T00:00:00Z",
            "--per-tensor",
            "--quiet",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fs::read(c.att()).unwrap(), mapped_envelope);
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            ck.to_str().unwrap(),
            "--policy",
            &p,
            "--json",
            "--quiet",
            "--now",
            NOW,
        ];
        args.extend_from_slice(extra);
        let r = common::run_env(&streamed, &args);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        (r, v)
    };
    for extra in [&[][..], &["--full"]] {
        let (r, v) = verify(extra);
        assert_eq!(r.code, 0, "{}", r.stdout);
        assert_eq!(v["allowed"], true);
    }
    let path = ck.join("model-00002-of-00002.safetensors");
    let mut bytes = fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header["lm_head.weight"]["data_offsets"][0]
        .as_u64()
        .unwrap() as usize;
    bytes[8 + n + start] ^= 1;
    fs::write(&path, bytes).unwrap();
    let (r, v) = verify(&["--full"]);
    assert_denied(&r, &v, "subject.tensor_mismatch");
    assert!(
        v["reasons"]
            .to_string()
            .contains("changed tensor(s): lm_head.weight"),
        "{v}"
    );
}

#[test]
fn a_flipped_byte_in_any_tensor_is_denied_naming_file_and_tensor() {
    let tensors = [
        ("model-00001-of-00002.safetensors", "model.embed.weight"),
        (
            "model-00001-of-00002.safetensors",
            "model.layers.0.attn.weight",
        ),
        (
            "model-00002-of-00002.safetensors",
            "model.layers.0.mlp.weight",
        ),
        ("model-00002-of-00002.safetensors", "lm_head.weight"),
    ];
    for (file, tensor) in tensors {
        let c = Case::new();
        let p = c.write_policy(BASIC);
        let path = c.ck().join(file);
        let mut bytes = fs::read(&path).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let start = header[tensor]["data_offsets"][0].as_u64().unwrap() as usize;
        bytes[8 + n + start + 1] ^= 0x80;
        fs::write(&path, bytes).unwrap();
        let (r, v) = c.verify(&p, &[]);
        assert_denied(&r, &v, "subject.digest_mismatch");
        assert_denied(&r, &v, "subject.tensor_mismatch");
        let msg = v["reasons"].to_string();
        assert!(
            msg.contains(file) && msg.contains(&format!("changed tensor(s): {tensor}")),
            "{msg}"
        );
    }
}

#[test]
fn file_set_changes_are_denied() {
    let shard1 = "model-00001-of-00002.safetensors";
    let shard2 = "model-00002-of-00002.safetensors";
    // Swapped shards: the index no longer matches the headers.
    let c = Case::new();
    let p = c.write_policy(BASIC);
    let (a, b) = (c.ck().join(shard1), c.ck().join(shard2));
    let tmp = c.ck().join("swap");
    fs::rename(&a, &tmp).unwrap();
    fs::rename(&b, &a).unwrap();
    fs::rename(&tmp, &b).unwrap();
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "subject.header_invalid");

    let c = Case::new();
    fs::write(c.ck().join("extra.txt"), b"hi").unwrap();
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "subject.extra_file");

    let c = Case::new();
    fs::remove_file(c.ck().join("config.json")).unwrap();
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "subject.missing_file");

    let c = Case::new();
    fs::rename(c.ck().join("config.json"), c.ck().join("config2.json")).unwrap();
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "subject.missing_file");
    assert_denied(&r, &v, "subject.extra_file");
    assert!(
        v["reasons"].to_string().contains("renamed?"),
        "{}",
        v["reasons"]
    );

    let c = Case::new();
    let mut bytes = fs::read(c.ck().join("config.json")).unwrap();
    bytes.push(b'\n');
    fs::write(c.ck().join("config.json"), bytes).unwrap();
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "subject.size_mismatch");
}

#[test]
fn another_models_attestation_is_denied() {
    let c = Case::new();
    let p = c.write_policy(BASIC);
    let other = c.dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::copy(
        testdata().join("checkpoints/single.safetensors"),
        other.join("model.safetensors"),
    )
    .unwrap();
    let r = run([
        "attest",
        other.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--issued-at",
        "2026-11-01T00:00:00Z",
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let other_att = other.join("weightgate.att");
    let (r, v) = c.verify(&p, &["--attestation", other_att.to_str().unwrap()]);
    assert_denied(&r, &v, "subject.missing_file");
    assert_denied(&r, &v, "subject.extra_file");
}

#[test]
fn signature_checks_fail_for_untrusted_revoked_expired_and_too_few_keys() {
    let c = Case::new();
    let r = run([
        "verify",
        c.ck().to_str().unwrap(),
        "--trust",
        &td("keys/test-other.pub"),
        "--now",
        NOW,
        "--json",
        "--quiet",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_denied(&r, &v, "signature.untrusted_key");
    assert_denied(&r, &v, "signature.too_few");

    let lab_id = "95a606307a602a77bbcffa454967dcc77dc6a5a8b4ee3afee777dba5f58a75a3";
    let p = c.write_policy(&format!("{BASIC}\n[revoked]\nkeys = [\"{lab_id}\"]\n"));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "signature.revoked_key");

    let p = c.write_policy(&BASIC.replace(
        "path = \"KEYS/test-lab.pub\"",
        "path = \"KEYS/test-lab.pub\"\nvalid_until = 2026-06-01",
    ));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "signature.key_expired");
    let p = c.write_policy(&BASIC.replace(
        "path = \"KEYS/test-lab.pub\"",
        "path = \"KEYS/test-lab.pub\"\nvalid_from = 2027-01-01",
    ));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "signature.key_not_yet_valid");

    let two =
        format!("{BASIC}\n[[trusted_key]]\nname = \"auditor\"\npath = \"KEYS/test-auditor.pub\"\n")
            .replace("name = \"test\"", "name = \"test\"\nmin_signatures = 2");
    let p = c.write_policy(&two);
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "signature.too_few");
    let r = run([
        "cosign",
        c.att().to_str().unwrap(),
        "--key",
        &td("keys/test-auditor.key"),
    ]);
    assert_eq!(r.code, 0);
    let (r, v) = c.verify(&p, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(v["facts"]["signers"].as_array().unwrap().len(), 2);

    // A signature from the right key over other bytes.
    let env_bytes = fs::read(testdata().join("envelopes/fail_bad_signature.att")).unwrap();
    fs::write(c.att(), env_bytes).unwrap();
    let (r, v) = c.verify(&c.write_policy(BASIC), &[]);
    assert_denied(&r, &v, "signature.invalid");
    fs::write(
        c.att(),
        fs::read(testdata().join("envelopes/fail_wrong_payload_type.att")).unwrap(),
    )
    .unwrap();
    let (r, v) = c.verify(&c.write_policy(BASIC), &[]);
    assert_denied(&r, &v, "envelope.wrong_payload_type");
    fs::write(
        c.att(),
        fs::read(testdata().join("envelopes/fail_non_shortest_length.att")).unwrap(),
    )
    .unwrap();
    let (r, v) = c.verify(&c.write_policy(BASIC), &[]);
    assert_denied(&r, &v, "envelope.malformed");
    fs::write(
        c.att(),
        fs::read(testdata().join("envelopes/fail_unknown_schema_version.att")).unwrap(),
    )
    .unwrap();
    let (r, v) = c.verify(&c.write_policy(BASIC), &[]);
    assert_denied(&r, &v, "statement.unknown_version");
}

#[test]
fn revoked_attestations_stay_revoked_when_cosigned() {
    let c = Case::new();
    let env = Envelope::decode_strict(&fs::read(c.att()).unwrap()).unwrap();
    let id = hex::encode(sha2::Sha256::digest(&env.payload));
    let p = c.write_policy(&format!("{BASIC}\n[revoked]\nattestations = [\"{id}\"]\n"));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "attestation.revoked");
    run([
        "cosign",
        c.att().to_str().unwrap(),
        "--key",
        &td("keys/test-auditor.key"),
    ]);
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "attestation.revoked");
}

#[test]
fn time_checks() {
    let c = Case::new();
    let p = c.write_policy(BASIC);
    let (r, v) = c.verify(&p, &["--now", "2026-10-01T00:00:00Z"]);
    assert_denied(&r, &v, "time.issued_in_future");
    let claims = fs::read_to_string(testdata().join("claims/tiny-below.toml")).unwrap()
        + "\n[attestation]\nexpires = 2026-12-01\n";
    fs::write(c.path("c.toml"), claims).unwrap();
    c.attest(&c.path("c.toml"), &[]);
    let (r, _) = c.verify(&p, &[]);
    assert_eq!(r.code, 0);
    let (r, v) = c.verify(&p, &["--now", "2027-01-01T00:00:00Z"]);
    assert_denied(&r, &v, "time.expired");
}

#[test]
fn compute_lies_are_denied() {
    let c = Case::new();
    let p = c.write_policy(BASIC);
    c.resign(|st| st.compute.total = Ops(st.compute.total.0 + 1));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "compute.total_mismatch");

    let c = Case::new();
    c.resign(|st| st.compute.inputs.params_total = Some(353));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "subject.parameter_mismatch");

    let c = Case::new();
    c.resign(|st| st.compute.inputs.params_active = Some(1_000_000));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "compute.active_exceeds_total");

    // 6 x 352 x 1e15 = 2.1e18 operations, claimed 2.1e12: inconsistent with its own inputs.
    // attest refuses to sign it; verify refuses it (signed anyway) with the same message.
    let c = Case::new();
    let claims = fs::read_to_string(testdata().join("claims/tiny-below.toml"))
        .unwrap()
        .replace("tokens = \"1e9\"", "tokens = \"1e15\"");
    fs::write(c.path("c.toml"), claims).unwrap();
    let r = run([
        "attest",
        c.ck().to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &c.path("c.toml"),
        "--quiet",
    ]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let message = "claimed 2.112e12 operations, but its own inputs give 6 x 352 active parameters x 1e15 tokens = 2.112e18 (6nd); a claim may be at most 30 % below its own estimate";
    assert!(
        r.stderr.contains(&format!(
            "compute.total: compute.inconsistent_inputs: {message}"
        )),
        "{}",
        r.stderr
    );
    c.resign(|st| st.compute.inputs.tokens = Some(Ops(10u128.pow(15))));
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "compute.inconsistent_inputs");
    assert_eq!(v["reasons"][0]["message"], message);

    let c = Case::new();
    c.resign(|st| st.subject.root_sha256.0[0] ^= 1);
    let (r, v) = c.verify(&p, &[]);
    assert_denied(&r, &v, "subject.root_mismatch");
}

const LICENSED: &str = r#"
[policy]
name = "licensed"
regimes = ["eu-ai-act-gpai", "us-ca-sb53", "us-bis-ai-diffusion-2025"]
[[trusted_key]]
name = "lab"
path = "KEYS/test-lab.pub"
[[issuer]]
name = "issuer"
authority = "US BIS"
path = "KEYS/test-issuer.pub"
[regime."us-bis-ai-diffusion-2025"]
assume_in_force = true
require_grant = true
# Judge the licence even for Tier 1 destinations (the preset's AIA exception is tested in regimes.rs).
exception_destinations = []
"#;

#[test]
fn above_threshold_needs_valid_countersigned_references() {
    let c = Case::new();
    let p = c.write_policy(LICENSED);
    let no_refs = fs::read_to_string(testdata().join("claims/tiny-above.toml")).unwrap();
    let no_refs = no_refs.split("[[reference]]").next().unwrap().to_string();
    fs::write(c.path("norefs.toml"), no_refs).unwrap();
    c.attest(&c.path("norefs.toml"), &[]);
    let (r, v) = c.verify(&p, &["--destination", "DE"]);
    assert_denied(&r, &v, "regime.reference_missing");

    c.attest("claims/tiny-above.toml", &[]);
    let grant = c.path("licence.grant");
    let r = run([
        "grant",
        c.att().to_str().unwrap(),
        "--reference",
        "D1234567",
        "--key",
        &td("keys/test-issuer.key"),
        "--out",
        &grant,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (r, v) = c.verify(&p, &["--destination", "DE"]);
    assert_denied(&r, &v, "regime.grant_missing");
    let (r, v) = c.verify(&p, &["--destination", "DE", "--grant", &grant]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(v["facts"]["regimes"][2]["result"], "reference-ok");
    let (r, v) = c.verify(&p, &["--destination", "BR", "--grant", &grant]);
    assert_denied(&r, &v, "regime.destination_not_covered");
    let (r, v) = c.verify(&p, &["--destination", "CN", "--grant", &grant]);
    assert_denied(&r, &v, "regime.destination_embargoed");
    let (r, v) = c.verify(&p, &["--grant", &grant]);
    assert_denied(&r, &v, "regime.destination_required");
    // One normalisation: case and surrounding spaces do not matter, anything that is not an
    // assigned ISO 3166-1 alpha-2 code is an unknown destination, refused with its own code
    // (the EU regime is not skipped, the licence does not cover it, the embargo may apply).
    let (r, v) = c.verify(&p, &["--destination", " de ", "--grant", &grant]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(v["facts"]["destination"], "DE");
    for unknown in [
        "XX", "T1", "EU", "DEU", "ZZ", "D E", "", "Germany", "D\u{c9}",
    ] {
        let (r, v) = c.verify(&p, &["--destination", unknown, "--grant", &grant]);
        assert_denied(&r, &v, "regime.destination_unknown");
        assert_eq!(v["facts"]["destination"], "unknown", "{unknown:?}");
    }
    // The licence runs until 2027-12-31.
    let (r, v) = c.verify(
        &p,
        &[
            "--destination",
            "DE",
            "--grant",
            &grant,
            "--now",
            "2028-02-01T00:00:00Z",
        ],
    );
    assert_denied(&r, &v, "regime.reference_expired");

    // A countersignature by a key that is not the issuer's.
    let forged = c.path("forged.grant");
    run([
        "grant",
        c.att().to_str().unwrap(),
        "--reference",
        "D1234567",
        "--key",
        &td("keys/test-other.key"),
        "--out",
        &forged,
    ]);
    let (r, v) = c.verify(&p, &["--destination", "DE", "--grant", &forged]);
    assert_denied(&r, &v, "grant.invalid");
    assert_denied(&r, &v, "regime.grant_missing");

    // Authority not accepted by the policy.
    let strict = c.write_policy(&format!(
        "{LICENSED}\n[regime.\"eu-ai-act-gpai\"]\naccepted_authorities = [\"Some Other Office\"]\n"
    ));
    let (r, v) = c.verify(&strict, &["--destination", "DE", "--grant", &grant]);
    assert_denied(&r, &v, "regime.authority_not_accepted");
    // One grant withdrawn (by its payload digest), the issuer's key still trusted.
    let grant_env = Envelope::decode_strict(&fs::read(&grant).unwrap()).unwrap();
    let revoked = c.write_policy(&format!(
        "{LICENSED}\n[revoked]\ngrants = [\"{}\"]\n",
        hex::encode(sha2::Sha256::digest(&grant_env.payload))
    ));
    let (r, v) = c.verify(&revoked, &["--destination", "DE", "--grant", &grant]);
    assert_denied(&r, &v, "grant.revoked");
    assert_denied(&r, &v, "regime.grant_missing");
}

#[test]
fn a_derived_model_counts_its_base_and_checks_the_base_envelope() {
    let c = Case::new();
    let p = c.write_policy(BASIC);
    let golden = testdata().join("envelopes/golden_tiny.att");
    let golden_bytes = fs::read(&golden).unwrap();
    let golden_st =
        Statement::decode_strict(&Envelope::decode_strict(&golden_bytes).unwrap().payload).unwrap();
    let claims = fs::read_to_string(testdata().join("claims/tiny-below.toml"))
        .unwrap()
        .replace("total = \"2.112e12\"", "total = \"4.224e12\"")
        + &format!(
            "\n[compute.base_model]\nname = \"tiny-lm\"\nroot_sha256 = \"{}\"\nattestation_sha256 = \"{}\"\nops = \"2.112e12\"\n",
            golden_st.subject.root_sha256.to_hex(),
            hex::encode(sha2::Sha256::digest(&golden_bytes))
        );
    fs::write(c.path("derived.toml"), claims).unwrap();
    c.attest(&c.path("derived.toml"), &[]);
    let (r, v) = c.verify(&p, &["--base-attestation", golden.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        v["facts"]["regimes"][0]["notes"]
            .to_string()
            .contains("so the modifier becomes the provider"),
        "{}",
        v["facts"]["regimes"]
    );
    let other = testdata().join("envelopes/fail_payload_altered.att");
    let (r, v) = c.verify(&p, &["--base-attestation", other.to_str().unwrap()]);
    assert_denied(&r, &v, "lineage.base_mismatch");
    assert_denied(&r, &v, "lineage.base_invalid");
    // A revoked base attestation does not count as the base's attestation.
    let payload = Envelope::decode_strict(&golden_bytes).unwrap().payload;
    let revoked = c.write_policy(&format!(
        "[policy]\nname = \"t\"\nrequire_base_attestation = true\n[[trusted_key]]\nname = \"lab\"\npath = \"KEYS/test-lab.pub\"\n[revoked]\nattestations = [\"{}\"]\n",
        hex::encode(sha2::Sha256::digest(&payload))
    ));
    let (r, v) = c.verify(&revoked, &["--base-attestation", golden.to_str().unwrap()]);
    assert_denied(&r, &v, "lineage.base_invalid");
    assert!(r.stdout.contains("is revoked"), "{}", r.stdout);
}

#[test]
fn input_errors_exit_2_with_the_key_and_line() {
    let c = Case::new();
    let bad = c.write_policy("[policy]\nname = \"x\"\nregimes = [\"eu-ai-act\"]\n");
    let (r, _) = c.verify(&bad, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("policy.toml:3: policy.regimes: unknown regime `eu-ai-act`"),
        "{}",
        r.stderr
    );
    let bad = c.write_policy("[policy]\nname = \"x\"\nmin_signature = 2\n");
    let (r, _) = c.verify(&bad, &[]);
    assert!(
        r.stderr
            .contains("policy.toml:3: TOML: unknown field `min_signature`"),
        "{}",
        r.stderr
    );
    let bad = c.write_policy("[policy]\nname = \"x\"\ncompute_margin = \"0.5\"\n");
    let (r, _) = c.verify(&bad, &[]);
    assert!(
        r.stderr
            .contains("policy.toml:3: policy.compute_margin: `0.5` is below 1"),
        "{}",
        r.stderr
    );
    let bad = c.write_policy(
        "[policy]\nname = \"x\"\n[[trusted_key]]\nname = \"k\"\npath = \"KEYS/test-lab.key\"\n",
    );
    let (r, _) = c.verify(&bad, &[]);
    assert!(
        r.stderr.contains("policy.toml:5: trusted_key[0]: ")
            && r.stderr.contains("a private key where a public key"),
        "{}",
        r.stderr
    );
    let r = run(["policy", "check", &bad]);
    assert_eq!(r.code, 2);
    // Country lists are written in their normal form, or the policy is refused.
    let bad = c.write_policy(&format!(
        "{BASIC}\n[[custom_regime]]\nid = \"x\"\nthreshold = \"1e30\"\ncomparator = \">\"\nrequired = []\nembargoed = [\"cn\", \"RU \"]\n"
    ));
    let r = run(["policy", "check", &bad]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("custom_regime[0].embargoed: `cn` is not written as an ISO 3166-1 alpha-2 code: write `CN`"),
        "{}",
        r.stderr
    );
    let bad = c.write_policy(&format!(
        "{BASIC}\n[[custom_regime]]\nid = \"x\"\nthreshold = \"1e30\"\ncomparator = \">\"\nrequired = []\napplies_to = [\"DE\", \"EU\"]\n"
    ));
    let r = run(["policy", "check", &bad]);
    assert!(
        r.stderr.contains(
            "custom_regime[0].applies_to: `EU` is not an ISO 3166-1 alpha-2 country code"
        ),
        "{}",
        r.stderr
    );
    fs::remove_file(c.att()).unwrap();
    let (r, _) = c.verify(&c.write_policy(BASIC), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("weightgate.att: cannot read the attestation"),
        "{}",
        r.stderr
    );
    for example in ["hub", "lab", "downstream"] {
        let r = run(["policy", "check", &td(&format!("policy/{example}.toml"))]);
        assert_eq!(r.code, 0, "{example}: {}", r.stderr);
    }
}

#[test]
fn demo_plays_the_whole_story() {
    let r = run(["demo"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // The write token is a secret: the demo never shows it.
    assert!(!r.stdout.contains("wg_"), "the demo printed a token");
    assert!(!r.stdout.contains("pushed lab/frontier-lm"));
    for want in [
        "ALLOWED",
        "changed tensor(s): lm_head.weight",
        "regime.reference_missing",
        "destination_not_covered",
        // The distribution side: pushed and judged at the commit (the unlicensed release and a
        // tampered push refused with their reasons), served, refused per download with its
        // reason, verified downstream.
        "pushed lab/tiny-lm",
        "the commit: 403 Forbidden: weightgate refused the commit to lab/frontier-lm@main",
        "regime.no_destination_served",
        "the commit: 403 Forbidden: weightgate refused the commit to lab/tiny-lm@main",
        "subject.digest_mismatch",
        "GET /lab/tiny-lm/resolve/main/weightgate.att\n  HTTP 200",
        "(CF-IPCountry: DE)\n  HTTP 200",
        "(CF-IPCountry: BR)\n  HTTP 451",
        "x-error-code: GatedRepo",
        "downloaded: ALLOWED",
        "(the gate is stopped)",
        // The BIS rule is shown as what it is: historical, simulated.
        "HISTORICAL",
        "regime us-bis-ai-diffusion-2025 (historical)",
        "SIMULATED (assume_in_force): historical: took effect 2025-01-13; on 2025-05-13",
    ] {
        assert!(r.stdout.contains(want), "demo output lacks {want}");
    }
}

#[test]
fn a_closed_output_pipe_ends_a_command_quietly() {
    use std::process::Stdio;
    // `weightgate hash --per-tensor CHECKPOINT | head -c 1` at its smallest: stdout closed
    // before the command writes.
    let mut child = common::bin()
        .args(["policy", "presets"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn one_file_reads_1_file_and_no_trust_names_both_flags() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    fs::create_dir(&one).unwrap();
    fs::copy(
        testdata().join("checkpoints/single.safetensors"),
        one.join("model.safetensors"),
    )
    .unwrap();
    let r = run([
        "attest",
        one.to_str().unwrap(),
        "--key",
        &td("keys/test-lab.key"),
        "--claims",
        &td("claims/tiny-below.toml"),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(1 file, root"), "{}", r.stdout);
    let r = run([
        "verify",
        one.to_str().unwrap(),
        "--trust",
        &td("keys/test-lab.pub"),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(" 1 file, "), "{}", r.stdout);
    let r = run(["inspect", one.join("weightgate.att").to_str().unwrap()]);
    assert!(r.stdout.contains("  1 file\n"), "{}", r.stdout);

    let r = run(["verify", one.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--policy") && r.stderr.contains("--trust"),
        "{}",
        r.stderr
    );
}
