//! `keygen`, `attest`, `cosign` and `inspect ENVELOPE` through the real binary.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, run, testdata};
use weightgate_schemas::{Envelope, Statement};

fn key(name: &str) -> String {
    testdata()
        .join("keys")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn claims(name: &str) -> String {
    testdata()
        .join("claims")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn tiny_copy(dir: &Path) -> PathBuf {
    let ck = dir.join("tiny");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    ck
}

fn attest(ck: &Path, key_file: &str, claims_file: &str) -> common::Run {
    run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        key_file,
        "--claims",
        claims_file,
        "--quiet",
    ])
}

#[test]
fn keygen_writes_a_private_key_only_we_can_read_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("lab");
    let r = run(["keygen", "--out", base.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64);
    let private = dir.path().join("lab.key");
    assert_eq!(
        fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        fs::read_to_string(&private)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let public = fs::read_to_string(dir.path().join("lab.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    // The key id is the SHA-256 of the SPKI DER, as openssl computes it.
    let der = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(dir.path().join("lab.pub"))
        .output()
        .unwrap();
    assert!(der.status.success());
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&der.stdout)), id);

    let before = fs::read(&private).unwrap();
    let r = run(["keygen", "--out", base.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("already exists; refusing to overwrite it"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read(&private).unwrap(), before);
}

#[test]
fn attest_signs_a_statement_that_inspect_shows_and_cosign_extends() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_copy(dir.path());
    let r = attest(&ck, &key("test-lab.key"), &claims("tiny-below.toml"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let att = ck.join("weightgate.att");
    let env = Envelope::decode_strict(&fs::read(&att).unwrap()).unwrap();
    let st = Statement::decode_strict(&env.payload).unwrap();
    assert_eq!(st.model.name, "tiny-lm");
    assert_eq!(st.subject.files.len(), 4);
    assert_eq!(st.compute.inputs.params_total, Some(352));
    let hash = run(["hash", "--json", ck.to_str().unwrap()]);
    let manifest: serde_json::Value = serde_json::from_str(&hash.stdout).unwrap();
    assert_eq!(manifest["root_sha256"], st.subject.root_sha256.to_hex());

    let shown = run(["inspect", att.to_str().unwrap()]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("model tiny-lm 1.0.0"));
    assert!(shown.stdout.contains("LEI 549300WGTGATETEST087"));
    let json = run(["inspect", "--json", att.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["statement"]["compute"]["total"], "2112000000000");

    let r = run([
        "cosign",
        att.to_str().unwrap(),
        "--key",
        &key("test-auditor.key"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cosigned = Envelope::decode_strict(&fs::read(&att).unwrap()).unwrap();
    assert_eq!(cosigned.signatures.len(), 2);
    assert_eq!(
        cosigned.payload, env.payload,
        "cosign must not touch the payload"
    );
    assert_eq!(cosigned.signatures[0], env.signatures[0]);
    let again = run([
        "cosign",
        att.to_str().unwrap(),
        "--key",
        &key("test-auditor.key"),
    ]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("has already signed"));

    // Attesting again replaces the envelope whole.
    let r = attest(&ck, &key("test-lab.key"), &claims("tiny-below.toml"));
    assert_eq!(r.code, 0);
    assert_eq!(
        Envelope::decode_strict(&fs::read(&att).unwrap())
            .unwrap()
            .signatures
            .len(),
        1
    );
}

#[test]
fn attest_out_inside_the_checkpoint_is_not_attested_itself() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_copy(dir.path());
    let out = ck.join("release.att");
    let r = run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        &key("test-lab.key"),
        "--claims",
        &claims("tiny-below.toml"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st = Statement::decode_strict(
        &Envelope::decode_strict(&fs::read(&out).unwrap())
            .unwrap()
            .payload,
    )
    .unwrap();
    assert!(st.subject.files.iter().all(|f| f.path != "release.att"));
}

/// `total = 3e26` unquoted is a TOML float that f64 cannot hold exactly (3e26 as f64 is
/// 300000000000000012582912...): the count is taken from the text, exactly.
#[test]
fn unquoted_float_counts_are_taken_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_copy(dir.path());
    let quoted = fs::read_to_string(testdata().join("claims/tiny-above.toml")).unwrap();
    let mut unquoted = quoted.clone();
    for v in ["3e26", "2.5e26", "4e25", "1e25", "1e9", "9.89e14"] {
        let q = format!("= \"{v}\"");
        assert!(unquoted.contains(&q), "{v}");
        unquoted = unquoted.replace(&q, &format!("= {v}"));
    }
    let file = dir.path().join("claims.toml");
    fs::write(&file, &unquoted).unwrap();
    let r = attest(&ck, &key("test-lab.key"), file.to_str().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(4 files,"), "{}", r.stdout);
    let st = Statement::decode_strict(
        &Envelope::decode_strict(&fs::read(ck.join("weightgate.att")).unwrap())
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(st.compute.total.0, 300_000_000_000_000_000_000_000_000);
    assert_ne!(st.compute.total.0, 3e26_f64 as u128);
}

/// Each malformed claim is refused before hashing with the file, line and field named.
#[test]
fn bad_claims_name_the_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_copy(dir.path());
    let good = fs::read_to_string(testdata().join("claims/tiny-below.toml")).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "lei = \"549300WGTGATETEST087\"",
            "lei = \"549300WGTGATETEST088\"",
            ":20: entity.lei: `549300WGTGATETEST088` is not a valid LEI",
        ),
        (
            "country = \"DE\"",
            "country = \"XX\"",
            ":21: entity.country: `XX` is not an ISO 3166-1 alpha-2 country code",
        ),
        (
            "total = \"2.112e12\"",
            "total = \"2.113e12\"",
            ":9: compute.total: 2113000000000 is not the sum of its components",
        ),
        (
            "params_active = 352",
            "params_active = 353",
            ":15: compute.inputs.params_active: 353 active parameters exceed the 352 parameters",
        ),
        (
            "method = \"6nd\"",
            "method = \"guess\"",
            ":8: compute.method: `guess` is not one of",
        ),
        (
            "tokens = \"1e9\"",
            "tokens = \"1.5\"",
            ":16: compute.inputs.tokens: `1.5` is not an operation count",
        ),
        (
            "open_weights = true",
            "open_weights = \"yes\"",
            ":5: model.open_weights: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "params_active = 352",
            "params_active = \"352\"",
            ":15: compute.inputs.params_active: invalid type: string \"352\"",
        ),
        (
            "[entity]",
            "[entity]\ncolour = \"blue\"",
            ":19: TOML: unknown field `colour`",
        ),
        ("name = \"tiny-lm\"", "name = \"tiny-lm", ":3: TOML:"),
        // Unquoted counts are TOML floats: taken from their text exactly, or refused with
        // the advice to quote them.
        (
            "tokens = \"1e9\"",
            "tokens = 1.5",
            ":16: compute.inputs.tokens: `1.5` is not an operation count: not an integer; write counts as integers or quoted, e.g. \"3.2e25\"",
        ),
        (
            "tokens = \"1e9\"",
            "tokens = -1e9",
            ":16: compute.inputs.tokens: `-1e9` is not an operation count",
        ),
        (
            "total = \"2.112e12\"",
            "total = inf",
            ":9: compute.total: `inf` is not an operation count: not a number; write counts as integers or quoted",
        ),
    ];
    for (from, to, want) in cases {
        assert!(good.contains(from), "{from}");
        let bad = dir.path().join("claims.toml");
        fs::write(&bad, good.replacen(from, to, 1)).unwrap();
        let r = attest(&ck, &key("test-lab.key"), bad.to_str().unwrap());
        assert_eq!(r.code, 2, "{to}: {}", r.stdout);
        assert!(
            r.stderr.contains(&format!("claims.toml{want}")),
            "{to}: got {:?}, want {want:?}",
            r.stderr
        );
        assert!(!ck.join("weightgate.att").exists());
    }
    // A reference that ends before it starts, and a destination that is not a country.
    let with_ref = format!(
        "{good}\n[[reference]]\nkind = \"export-licence\"\nauthority = \"BIS\"\nnumber = \"D1\"\ndestinations = [\"DE\", \"Germany\"]\nvalid_from = 2026-01-01\nvalid_until = 2025-01-01\n"
    );
    let bad = dir.path().join("claims.toml");
    fs::write(&bad, &with_ref).unwrap();
    let r = attest(&ck, &key("test-lab.key"), bad.to_str().unwrap());
    assert!(
        r.stderr
            .contains("reference[0].destinations: `Germany` is not an ISO 3166-1 alpha-2"),
        "{}",
        r.stderr
    );
    fs::write(&bad, with_ref.replace(", \"Germany\"", "")).unwrap();
    let r = attest(&ck, &key("test-lab.key"), bad.to_str().unwrap());
    assert!(
        r.stderr
            .contains("reference[0].valid_until: must be after valid_from"),
        "{}",
        r.stderr
    );
    // The annotated example in docs/ parses (it fails only on the tiny checkpoint's size).
    let r = attest(
        &ck,
        &key("test-lab.key"),
        testdata()
            .join("../docs/claims.example.toml")
            .to_str()
            .unwrap(),
    );
    assert!(
        r.stderr
            .contains("compute.inputs.params_active: 7000000000 active parameters exceed the 352"),
        "{}",
        r.stderr
    );
}

#[test]
fn wrong_keys_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_copy(dir.path());
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let openssl = |args: &[&str]| {
        assert!(
            Command::new("openssl")
                .args(args)
                .output()
                .unwrap()
                .status
                .success()
        )
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        &p("rsa.pem"),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &p("p256.pem"),
    ]);
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &p("sec1.pem"),
    ]);
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f", &p("ssh")])
            .output()
            .unwrap()
            .status
            .success()
    );
    let cases = [
        (
            p("missing.key"),
            "missing.key: cannot read key: No such file or directory",
        ),
        (p("rsa.pem"), "an RSA key, but signing needs an Ed25519 key"),
        (
            p("p256.pem"),
            "an ECDSA P-256 key, but signing needs an Ed25519 key",
        ),
        (p("sec1.pem"), "an EC key, but signing needs an Ed25519 key"),
        (p("ssh"), "an OpenSSH key"),
        (
            key("test-lab.pub"),
            "a public key, but signing needs the private key",
        ),
        (
            testdata()
                .join("claims/tiny-below.toml")
                .to_str()
                .unwrap()
                .to_string(),
            "not a PEM key",
        ),
    ];
    for (k, want) in cases {
        let r = attest(&ck, &k, &claims("tiny-below.toml"));
        assert_eq!(r.code, 2, "{k}");
        assert!(
            r.stderr.contains(want),
            "{k}: got {:?}, want {want:?}",
            r.stderr
        );
        assert!(!ck.join("weightgate.att").exists());
    }
}

/// Killing `attest` while it hashes leaves no envelope, or the previous one whole.
#[test]
fn an_interrupted_attest_leaves_no_partial_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_copy(dir.path());
    let r = attest(&ck, &key("test-lab.key"), &claims("tiny-below.toml"));
    assert_eq!(r.code, 0);
    let att = ck.join("weightgate.att");
    let before = fs::read(&att).unwrap();
    // A large sparse extra file keeps attest busy hashing for a while.
    let f = fs::File::create(ck.join("big.bin")).unwrap();
    f.set_len(6 << 30).unwrap();
    for delay_ms in [50u64, 300] {
        let mut child = common::bin()
            .args([
                "attest",
                ck.to_str().unwrap(),
                "--key",
                &key("test-lab.key"),
                "--claims",
                &claims("tiny-below.toml"),
                "--quiet",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "attest finished before it was killed; make big.bin bigger"
        );
        assert_eq!(
            fs::read(&att).unwrap(),
            before,
            "envelope changed after a killed attest"
        );
        let stray: Vec<_> = fs::read_dir(&ck)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains("weightgate.att.tmp"))
            .collect();
        assert!(stray.len() <= 1, "{stray:?}");
    }
}

#[test]
fn envelope_for_a_thousand_tensors_stays_under_8_kb() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("wide");
    fs::create_dir(&ck).unwrap();
    let names: Vec<String> = (0..1000)
        .map(|i| format!("model.layers.{i}.mlp.down_proj.weight"))
        .collect();
    let tensors: Vec<(&str, &[u64])> = names.iter().map(|n| (n.as_str(), &[4u64, 4][..])).collect();
    fs::write(
        ck.join("model.safetensors"),
        common::bf16_safetensors(&tensors),
    )
    .unwrap();
    let claims_text = fs::read_to_string(testdata().join("claims/tiny-below.toml"))
        .unwrap()
        .replace("params_active = 352", "params_active = 16000")
        // 6 x 16,000 x 2.2e7 = 2.112e12, the claimed total.
        .replace("tokens = \"1e9\"", "tokens = \"2.2e7\"");
    fs::write(dir.path().join("c.toml"), claims_text).unwrap();
    let r = attest(
        &ck,
        &key("test-lab.key"),
        dir.path().join("c.toml").to_str().unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let len = fs::metadata(ck.join("weightgate.att")).unwrap().len();
    assert!(len < 8 * 1024, "{len} bytes");
}

#[test]
fn attest_json_reports_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let ck = tiny_copy(dir.path());
    let r = run([
        "attest",
        ck.to_str().unwrap(),
        "--key",
        &key("test-lab.key"),
        "--claims",
        &claims("tiny-below.toml"),
        "--issued-at",
        "2026-11-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let att = ck.join("weightgate.att");
    assert_eq!(doc["attestation"], att.to_str().unwrap());
    assert_eq!(doc["attestation_bytes"], fs::metadata(&att).unwrap().len());
    // The same bytes as the golden vector: same checkpoint, key and time.
    assert_eq!(
        fs::read(&att).unwrap(),
        fs::read(testdata().join("envelopes/golden_tiny.att")).unwrap()
    );
    let st = Statement::decode_strict(
        &Envelope::decode_strict(&fs::read(&att).unwrap())
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(doc["root_sha256"], st.subject.root_sha256.to_hex());
    assert_eq!(doc["files"], 4);
    assert_eq!(doc["model"], "tiny-lm");
    assert_eq!(doc["key_id"].as_str().unwrap().len(), 64);
    assert!(doc["model_sig"].is_null());
}
