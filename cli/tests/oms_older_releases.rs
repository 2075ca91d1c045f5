//! Bundles written by older `model_signing` releases, genuine ones made with the real releases
//! by testdata/oms-v0.2/generate.sh and testdata/oms-v0.3.1/generate.sh. 0.2.0 wrote the
//! deprecated `Digests/v0.1` predicate, signed over its PAE variant; 0.3.1 the v1.0 predicate
//! with `rawBytes` keys and null `keyid`s. They verify through `weightgate verify-oms`; a
//! changed byte, a wrong key, a wrong anchor and a tampered bundle are refused, each with its
//! reason code.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Run, copy_dir, python, run, testdata};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

fn fixture(p: &str) -> PathBuf {
    testdata().join("oms-v0.2").join(p)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A scratch copy of the signed model and the bundles beside it (tests change the copy).
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture("model"), &dir.path().join("model"));
        Copy { dir }
    }
    fn model(&self) -> PathBuf {
        self.dir.path().join("model")
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `weightgate verify-oms MODEL --signature SIG ARGS... --json`: (exit code, verdict).
fn verify(model: &Path, sig: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["verify-oms", s(model), "--signature", s(sig), "--json"];
    all.extend_from_slice(args);
    let r = run(all);
    assert!(r.code == 0 || r.code == 1, "{}{}", r.stdout, r.stderr);
    (r.code, serde_json::from_str(&r.stdout).unwrap())
}

fn problem_codes(v: &Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect()
}

fn check_detail(v: &Value, name: &str) -> String {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["detail"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

const KEY_P256: [&str; 2] = ["--key", "P256"];

/// The fixture's flags with paths filled in.
fn with_paths(args: &[&str]) -> Vec<String> {
    args.iter()
        .map(|a| match *a {
            "P256" => s(&fixture("keys/p256.pub")).to_string(),
            "P384" => s(&fixture("keys/p384.pub")).to_string(),
            "P521" => s(&fixture("keys/p521.pub")).to_string(),
            "ROOT" => s(&fixture("keys/root.pem")).to_string(),
            other => other.to_string(),
        })
        .collect()
}

fn verify_with(model: &Path, sig: &Path, args: &[&str]) -> (i32, Value) {
    let args = with_paths(args);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    verify(model, sig, &refs)
}

const CERT: [&str; 4] = [
    "--certificate-chain",
    "ROOT",
    "--now",
    "2030-01-01T00:00:00Z",
];

#[test]
fn genuine_model_signing_0_2_bundles_verify() {
    let c = Copy::new();
    let m = c.model();
    // Every signing method and curve 0.2.0 offered. P-384 and P-521 are signed with SHA-256,
    // as 0.2.0 always hashed (model_signing 1.1.1 tries the curve's hash there and refuses).
    for (sig, args, signer) in [
        ("key-p256.sig", &KEY_P256[..], "p256.pub (ECDSA P-256)"),
        (
            "key-p384.sig",
            &["--key", "P384"][..],
            "p384.pub (ECDSA P-384)",
        ),
        (
            "key-p521.sig",
            &["--key", "P521"][..],
            "p521.pub (ECDSA P-521)",
        ),
        ("certificate.sig", &CERT[..], "CN=v0.2 Test Signer"),
    ] {
        let (code, v) = verify_with(&m, &fixture(sig), args);
        assert_eq!(code, 0, "{sig}: {v:#}");
        assert_eq!(v["verified"], true);
        assert_eq!(v["files"], 5, "{sig}: every file, the empty one too");
        assert_eq!(v["serialization"], "files/sha256");
        assert!(
            v["signer"].as_str().unwrap().contains(signer),
            "{sig}: {}",
            v["signer"]
        );
        let detail = check_detail(&v, "signature");
        assert!(
            detail.contains("SHA-256 signature over model_signing 0.2's PAE variant"),
            "{sig}: {detail}"
        );
        assert!(
            check_detail(&v, "statement").contains("https://model_signing/Digests/v0.1"),
            "{sig}: {v:#}"
        );
        assert!(
            v["notes"].to_string().contains("model_signing 0.2"),
            "{sig}: {}",
            v["notes"]
        );
    }

    // The root weightgate reports is the OMS v1.0 root of the same files: what a current
    // signer writes for this model.
    let (_, old) = verify_with(&m, &fixture("key-p256.sig"), &KEY_P256);
    let ours = c.p("ours.sig");
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&fixture("keys/p256.key")),
        "--signature",
        s(&ours),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (code, new) = verify_with(&m, &ours, &KEY_P256);
    assert_eq!(code, 0, "{new:#}");
    assert_eq!(old["root_sha256"], new["root_sha256"]);
    assert!(
        check_detail(&new, "signature").contains("over the DSSE payload"),
        "{new:#}"
    );

    // A single-file model, whose one subject 0.2.0 named `.`.
    let (code, v) = verify_with(
        &m.join("weights.bin"),
        &fixture("single-file.sig"),
        &KEY_P256,
    );
    assert_eq!((code, v["files"].clone()), (0, json!(1)), "{v:#}");

    // The text form names the format too.
    let args = with_paths(&KEY_P256);
    let r = run([
        "verify-oms",
        s(&m),
        "--signature",
        s(&fixture("key-p256.sig")),
        &args[0],
        &args[1],
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("VERIFIED"), "{}", r.stdout);
    assert!(
        r.stdout.contains("note  written by model_signing 0.2"),
        "{}",
        r.stdout
    );
}

#[test]
fn model_signing_0_2_bundles_refuse_changes_wrong_keys_and_tampering() {
    let c = Copy::new();
    let m = c.model();

    // One flipped byte in the model, under both methods.
    let w = m.join("weights.bin");
    let original = fs::read(&w).unwrap();
    let mut flipped = original.clone();
    flipped[1234] ^= 0x01;
    fs::write(&w, &flipped).unwrap();
    for (sig, args) in [
        ("key-p256.sig", &KEY_P256[..]),
        ("certificate.sig", &CERT[..]),
    ] {
        let (code, v) = verify_with(&m, &fixture(sig), args);
        assert_eq!(
            (code, problem_codes(&v)),
            (1, vec!["oms.digest_mismatch".to_string()]),
            "{sig}: {v:#}"
        );
        assert!(
            v["problems"][0]["message"]
                .as_str()
                .unwrap()
                .contains("weights.bin")
        );
    }
    fs::write(&w, &original).unwrap();

    // A file added, a file removed.
    fs::write(m.join("extra.txt"), "not signed\n").unwrap();
    let (code, v) = verify_with(&m, &fixture("key-p256.sig"), &KEY_P256);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.extra_file".to_string()])
    );
    fs::remove_file(m.join("extra.txt")).unwrap();
    fs::rename(m.join("config.json"), c.p("config.json")).unwrap();
    let (code, v) = verify_with(&m, &fixture("key-p256.sig"), &KEY_P256);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.missing_file".to_string()])
    );
    fs::rename(c.p("config.json"), m.join("config.json")).unwrap();

    // The wrong key: the bundle's `rawBytes` names another key...
    let (code, v) = verify_with(&m, &fixture("key-p256.sig"), &["--key", "P384"]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.key_mismatch".to_string()])
    );
    // ...and with `rawBytes` removed (it is not signed), the signature does not verify.
    let bundle: Value =
        serde_json::from_slice(&fs::read(fixture("key-p256.sig")).unwrap()).unwrap();
    let write = |name: &str, b: &Value| {
        let p = c.p(name);
        fs::write(&p, b.to_string()).unwrap();
        p
    };
    let mut b = bundle.clone();
    b["verificationMaterial"] = json!({ "publicKey": {} });
    let (code, v) = verify_with(&m, &write("no-raw.sig", &b), &["--key", "P384"]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.signature_invalid".to_string()])
    );

    // A tampered bundle: a digest in the payload changed to the flipped file's, without
    // re-signing; a flipped signature byte.
    let payload = STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(payload.clone()).unwrap();
    let old_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&original));
    let new_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&flipped));
    assert!(text.contains(&old_digest));
    let mut b = bundle.clone();
    b["dsseEnvelope"]["payload"] = json!(STANDARD.encode(text.replace(&old_digest, &new_digest)));
    fs::write(&w, &flipped).unwrap();
    let (code, v) = verify_with(&m, &write("tampered.sig", &b), &KEY_P256);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.signature_invalid".to_string()])
    );
    fs::write(&w, &original).unwrap();
    let mut sig = STANDARD
        .decode(
            bundle["dsseEnvelope"]["signatures"][0]["sig"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    let mut b = bundle.clone();
    b["dsseEnvelope"]["signatures"][0]["sig"] = json!(STANDARD.encode(&sig));
    let (code, v) = verify_with(&m, &write("bad-sig.sig", &b), &KEY_P256);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.signature_invalid".to_string()])
    );

    // 0.2.0's PAE variant is accepted only for its own predicate: the same statement retyped
    // as OMS v1.0 and signed that way by the right key does not verify.
    let secret =
        p256::SecretKey::from_pkcs8_pem(&fs::read_to_string(fixture("keys/p256.key")).unwrap())
            .unwrap();
    let signer = p256::ecdsa::SigningKey::from(&secret);
    let sign_0_2 = |payload: &[u8]| {
        use p256::ecdsa::signature::Signer as _;
        let message =
            weightgate_schemas::oms::pae_model_signing_0_2("application/vnd.in-toto+json", payload);
        let sig: p256::ecdsa::Signature = signer.sign(&message);
        STANDARD.encode(sig.to_der().as_bytes())
    };
    // Signing the genuine payload that way reproduces a bundle that verifies...
    let mut b = bundle.clone();
    b["dsseEnvelope"]["signatures"][0]["sig"] = json!(sign_0_2(&payload));
    let (code, v) = verify_with(&m, &write("resigned.sig", &b), &KEY_P256);
    assert_eq!(code, 0, "{v:#}");
    // ...but not once the predicate type says v1.0.
    let retyped = text.replace(
        "https://model_signing/Digests/v0.1",
        "https://model_signing/signature/v1.0",
    );
    let mut b = bundle.clone();
    b["dsseEnvelope"]["payload"] = json!(STANDARD.encode(&retyped));
    b["dsseEnvelope"]["signatures"][0]["sig"] = json!(sign_0_2(retyped.as_bytes()));
    let (code, v) = verify_with(&m, &write("retyped.sig", &b), &KEY_P256);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.signature_invalid".to_string()])
    );

    // Certificates: expired at the time asked for; a key bundle where a certificate is
    // required; an anchor that is not the chain's.
    let (code, v) = verify_with(
        &m,
        &fixture("certificate.sig"),
        &[
            "--certificate-chain",
            "ROOT",
            "--now",
            "2060-01-01T00:00:00Z",
        ],
    );
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.certificate_validity".to_string()])
    );
    let (code, v) = verify_with(&m, &fixture("key-p256.sig"), &CERT);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.wrong_method".to_string()])
    );
    let other = c.p("other-root.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-keyout",
            s(&c.p("other-root.key")),
            "-out",
            s(&other),
        ])
        .args(["-subj", "/CN=Other Root", "-days", "30"])
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v) = verify(
        &m,
        &fixture("certificate.sig"),
        &[
            "--certificate-chain",
            s(&other),
            "--now",
            "2030-01-01T00:00:00Z",
        ],
    );
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.certificate_untrusted".to_string()])
    );
}

fn model_signing(args: &[&str]) -> Run {
    let out = Command::new(python())
        .args(["-m", "model_signing"])
        .args(args)
        .output()
        .expect("run python -m model_signing");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The fixtures are what the reference reads as 0.2 bundles: `model_signing` 1.1.1 verifies
/// them and refuses the same changed byte.
#[test]
fn the_reference_agrees_on_the_fixtures() {
    let c = Copy::new();
    let m = c.model();
    let key = |sig: &str| {
        model_signing(&[
            "verify",
            "key",
            s(&m),
            "--signature",
            s(&fixture(sig)),
            "--public_key",
            s(&fixture("keys/p256.pub")),
        ])
    };
    let cert = || {
        model_signing(&[
            "verify",
            "certificate",
            s(&m),
            "--signature",
            s(&fixture("certificate.sig")),
            "--certificate_chain",
            s(&fixture("keys/root.pem")),
        ])
    };
    for r in [key("key-p256.sig"), cert()] {
        assert!(
            r.code == 0 && r.stdout.contains("Verification succeeded"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }
    let w = m.join("weights.bin");
    let mut bytes = fs::read(&w).unwrap();
    bytes[1234] ^= 0x01;
    fs::write(&w, &bytes).unwrap();
    for r in [key("key-p256.sig"), cert()] {
        assert!(
            r.stderr.contains("Verification failed"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }
}

/// `model_signing` 0.3.1 (its certificate signer is broken, so key bundles only): every curve
/// and a single file verify over the DSSE PAE, with the same root as 0.2.0's bundle of the
/// same files.
#[test]
fn genuine_model_signing_0_3_1_bundles_verify() {
    let c = Copy::new();
    let m = c.model();
    let v031 = |p: &str| testdata().join("oms-v0.3.1").join(p);
    let (_, v02) = verify_with(&m, &fixture("key-p256.sig"), &KEY_P256);
    for (sig, key) in [
        ("key-p256.sig", "P256"),
        ("key-p384.sig", "P384"),
        ("key-p521.sig", "P521"),
    ] {
        let (code, v) = verify_with(&m, &v031(sig), &["--key", key]);
        assert_eq!(code, 0, "{sig}: {v:#}");
        assert_eq!(v["files"], 5);
        assert_eq!(v["root_sha256"], v02["root_sha256"], "{sig}");
        assert!(
            check_detail(&v, "signature").contains("over the DSSE payload"),
            "{sig}: {v:#}"
        );
        assert!(check_detail(&v, "key").contains("rawBytes"), "{sig}: {v:#}");
        assert_eq!(v["notes"], json!([]), "{sig}");
    }
    let (code, v) = verify_with(&m.join("weights.bin"), &v031("single-file.sig"), &KEY_P256);
    assert_eq!((code, v["files"].clone()), (0, json!(1)), "{v:#}");
    let w = m.join("weights.bin");
    let mut bytes = fs::read(&w).unwrap();
    bytes[0] ^= 0x80;
    fs::write(&w, &bytes).unwrap();
    let (code, v) = verify_with(&m, &v031("key-p384.sig"), &["--key", "P384"]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.digest_mismatch".to_string()])
    );
    let (code, v) = verify_with(&m, &v031("key-p384.sig"), &["--key", "P256"]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.key_mismatch".to_string()])
    );
}
