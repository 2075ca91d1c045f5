//! OpenSSF model signing interop: bundles weightgate writes are checked by the real
//! `model_signing` 1.1.1 (installed by .ci/run; never skipped), bundles `model_signing` writes
//! are checked by `weightgate verify`, and every malformed bundle gets its own reason code.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Run, copy_dir, run, testdata};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIGHTGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run .ci/run, which installs the pinned model-signing there (this test is never skipped)",
        p.display()
    );
    p
}

/// `model_signing ARGS...` from the pinned venv.
fn model_signing(args: &[&str]) -> Run {
    let out = Command::new(python())
        .args(["-m", "model_signing"])
        .args(args)
        .output()
        .expect("run python -m model_signing");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("No module named"),
        "model_signing not installed: {}",
        r.stderr
    );
    r
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn td(p: &str) -> String {
    testdata().join(p).to_str().unwrap().to_string()
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Self {
        Lab {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// `weightgate keygen --type TYPE`; returns (private, public).
    fn keygen(&self, name: &str, ty: &str) -> (PathBuf, PathBuf) {
        let base = self.p(name);
        let r = run(["keygen", "--out", s(&base), "--type", ty]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        (
            self.p(&format!("{name}.key")),
            self.p(&format!("{name}.pub")),
        )
    }
    /// The tiny model plus files whose path-component order differs from byte order.
    fn model(&self, name: &str) -> PathBuf {
        let m = self.p(name);
        copy_dir(&testdata().join("checkpoints/tiny"), &m);
        fs::create_dir_all(m.join("a")).unwrap();
        fs::write(m.join("a/b"), "nested\n").unwrap();
        fs::write(m.join("a-b"), "dash\n").unwrap();
        fs::write(m.join("a.txt"), "dot\n").unwrap();
        fs::write(m.join(".hidden"), "dotfiles are signed\n").unwrap();
        m
    }
    fn attest(&self, model: &Path, oms_key: &Path, extra: &[&str]) -> Run {
        let (key, claims) = (td("keys/test-lab.key"), td("claims/tiny-below.toml"));
        let mut args = vec![
            "attest",
            s(model),
            "--key",
            &key,
            "--claims",
            &claims,
            "--oms-key",
            s(oms_key),
            "--issued-at",
            "2026-11-01T00:00:00Z",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        run(args)
    }
    fn verify(&self, model: &Path, oms_pub: &Path, extra: &[&str]) -> (Run, Value) {
        let trust = td("keys/test-lab.pub");
        let mut args = vec![
            "verify",
            s(model),
            "--trust",
            &trust,
            "--oms-key",
            s(oms_pub),
            "--now",
            "2026-11-20T00:00:00Z",
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = run(args);
        let v = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        (r, v)
    }
}

fn codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["code"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn payload_of(bundle: &Path) -> Value {
    let b: Value = serde_json::from_slice(&fs::read(bundle).unwrap()).unwrap();
    let raw = STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[test]
fn model_signing_accepts_weightgate_bundles_on_every_curve() {
    let lab = Lab::new();
    for ty in ["p256", "p384", "p521"] {
        let (key, public) = lab.keygen(ty, ty);
        let m = lab.model(&format!("model-{ty}"));
        let r = lab.attest(&m, &key, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let sig = m.join("model.sig");
        let first = fs::read(&sig).unwrap();

        let ok = model_signing(&[
            "verify",
            "key",
            s(&m),
            "--signature",
            s(&sig),
            "--public_key",
            s(&public),
        ]);
        assert_eq!(ok.code, 0, "{ty}: {}{}", ok.stdout, ok.stderr);
        assert!(
            ok.stdout.contains("Verification succeeded"),
            "{}",
            ok.stdout
        );
        // The hint is the one model_signing computes: no "key hint" warning.
        assert!(!ok.stderr.to_lowercase().contains("hint"), "{}", ok.stderr);

        // Path-component order, dotfiles signed, git paths and our own files left out.
        let payload = payload_of(&sig);
        let names: Vec<&str> = payload["predicate"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                ".hidden",
                "a/b",
                "a-b",
                "a.txt",
                "config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json"
            ]
        );
        // The attestation and the bundle name the same root.
        let (v, verdict) = lab.verify(&m, &public, &[]);
        assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
        assert_eq!(
            verdict["facts"]["oms_root_sha256"],
            verdict["facts"]["root_sha256"]
        );
        assert_eq!(
            payload["subject"][0]["digest"]["sha256"],
            verdict["facts"]["root_sha256"]
        );

        // The same model and key give the same bundle, byte for byte.
        assert_eq!(lab.attest(&m, &key, &[]).code, 0);
        assert_eq!(
            fs::read(&sig).unwrap(),
            first,
            "{ty}: bundle not reproducible"
        );

        // Both sides reject a tampered file.
        fs::write(m.join("a/b"), "tampered\n").unwrap();
        let bad = model_signing(&[
            "verify",
            "key",
            s(&m),
            "--signature",
            s(&sig),
            "--public_key",
            s(&public),
        ]);
        assert_ne!(bad.code, 0, "model_signing accepted a tampered file");
        let (v, verdict) = lab.verify(&m, &public, &[]);
        assert_eq!(v.code, 1);
        assert!(
            codes(&verdict).contains(&"oms.digest_mismatch".to_string()),
            "{verdict}"
        );
    }
}

#[test]
fn single_file_model_is_resource_dot() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let file = lab.p("model.safetensors");
    fs::copy(testdata().join("checkpoints/single.safetensors"), &file).unwrap();
    let r = lab.attest(&file, &key, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sig = lab.p("model.safetensors.sig");
    let payload = payload_of(&sig);
    assert_eq!(payload["predicate"]["resources"][0]["name"], ".");
    assert_eq!(payload["subject"][0]["name"], "model.safetensors");
    let ok = model_signing(&[
        "verify",
        "key",
        s(&file),
        "--signature",
        s(&sig),
        "--public_key",
        s(&public),
    ]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let (v, _) = lab.verify(&file, &public, &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn weightgate_accepts_model_signing_bundles_and_rejects_their_tampered_files() {
    let lab = Lab::new();
    // A SEC1 key with OpenSSL's text block before the PEM, as `openssl ec -text` writes it.
    let sec1 = lab.p("p384-sec1.pem");
    let gen_key = Command::new("openssl")
        .args(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out"])
        .arg(&sec1)
        .status()
        .expect("openssl");
    assert!(gen_key.success());
    let with_text = lab.p("p384-text.pem");
    assert!(
        Command::new("openssl")
            .args(["ec", "-text", "-in"])
            .arg(&sec1)
            .arg("-out")
            .arg(&with_text)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        fs::read_to_string(&with_text)
            .unwrap()
            .starts_with("Private-Key")
    );
    let public = lab.p("p384.pub");
    assert!(
        Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&sec1)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success()
    );

    let m = lab.model("model");
    // weightgate signs with the text-prefixed SEC1 key; model_signing then re-signs.
    assert_eq!(lab.attest(&m, &with_text, &[]).code, 0);
    let sig = m.join("model.sig");
    fs::remove_file(&sig).unwrap();
    let signed = model_signing(&[
        "sign",
        "key",
        s(&m),
        "--private_key",
        s(&sec1),
        "--signature",
        s(&sig),
    ]);
    assert_eq!(signed.code, 0, "{}{}", signed.stdout, signed.stderr);
    // model_signing signed weightgate.att too (it was there): that is fine, both match.
    let (v, verdict) = lab.verify(&m, &public, &[]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(
        verdict["facts"]["oms_signer"]
            .as_str()
            .unwrap()
            .contains("P-384")
    );

    // Signed with the attestation left out, the roots agree.
    let ignore = m.join("weightgate.att");
    let signed = model_signing(&[
        "sign",
        "key",
        s(&m),
        "--private_key",
        s(&sec1),
        "--signature",
        s(&sig),
        "--ignore-paths",
        s(&ignore),
    ]);
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    let (v, verdict) = lab.verify(&m, &public, &[]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert_eq!(
        verdict["facts"]["oms_root_sha256"],
        verdict["facts"]["root_sha256"]
    );

    // An extra file is refused unless unsigned files are allowed; a missing one always.
    fs::write(m.join("extra.bin"), "unsigned\n").unwrap();
    let (_, verdict) = lab.verify(&m, &public, &["--ignore", "extra.bin"]);
    assert_eq!(codes(&verdict), ["oms.extra_file"], "{verdict}");
    let (v, _) = lab.verify(
        &m,
        &public,
        &["--ignore", "extra.bin", "--oms-ignore-unsigned"],
    );
    assert_eq!(v.code, 0, "{}", v.stdout);
    let (v, _) = lab.verify(
        &m,
        &public,
        &["--ignore", "extra.bin", "--oms-ignore", "extra.bin"],
    );
    assert_eq!(v.code, 0, "{}", v.stdout);
    fs::remove_file(m.join("extra.bin")).unwrap();

    fs::write(m.join("config.json"), "{\"tampered\": true}\n").unwrap();
    let (v, verdict) = lab.verify(&m, &public, &[]);
    assert_eq!(v.code, 1);
    let c = codes(&verdict);
    assert!(c.contains(&"oms.digest_mismatch".to_string()), "{verdict}");
    assert!(
        c.contains(&"subject.size_mismatch".to_string()),
        "{verdict}"
    );
}

/// A bundle for `model` re-signed after `edit` changed its statement or envelope.
struct Forger {
    key: p256::ecdsa::SigningKey,
    hint: String,
}

impl Forger {
    fn new(private_pem: &Path, public_pem: &Path) -> Self {
        let text = fs::read_to_string(private_pem).unwrap();
        let secret = p256::SecretKey::from_pkcs8_pem(&text).unwrap();
        let hint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            fs::read(public_pem).unwrap(),
        ));
        Forger {
            key: p256::ecdsa::SigningKey::from(&secret),
            hint,
        }
    }
    fn sign(&self, statement: &Value, der: bool) -> Value {
        use p256::ecdsa::signature::Signer as _;
        let payload = statement.to_string().into_bytes();
        let pae = weightgate_schemas::pae("application/vnd.in-toto+json", &payload);
        let sig: p256::ecdsa::Signature = self.key.sign(&pae);
        let sig = if der {
            sig.to_der().as_bytes().to_vec()
        } else {
            sig.to_bytes().to_vec()
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": { "publicKey": { "hint": self.hint }, "tlogEntries": [] },
            "dsseEnvelope": {
                "payload": STANDARD.encode(&payload),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{ "sig": STANDARD.encode(sig), "keyid": "" }],
            },
        })
    }
}

#[test]
fn every_bad_bundle_gets_a_named_reason() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let (_, other_public) = lab.keygen("other", "p256");
    let m = lab.model("model");
    assert_eq!(lab.attest(&m, &key, &[]).code, 0);
    let sig = m.join("model.sig");
    let good: Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
    let statement = payload_of(&sig);
    let forger = Forger::new(&key, &public);
    let bundle_path = lab.p("case.sig");

    let check = |bundle: &Value, extra: &[&str]| -> (i32, Vec<String>, Value) {
        fs::write(&bundle_path, bundle.to_string()).unwrap();
        let mut args = vec!["--oms-bundle", s(&bundle_path)];
        args.extend_from_slice(extra);
        let (r, v) = lab.verify(&m, &public, &args);
        assert!(r.code == 0 || r.code == 1, "{}{}", r.stdout, r.stderr);
        (r.code, codes(&v), v)
    };

    // Our own forger is faithful: an unchanged statement passes.
    assert_eq!(check(&forger.sign(&statement, true), &[]).0, 0);

    let mut v = good.clone();
    v["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.2");
    assert_eq!(check(&v, &[]).1, ["oms.media_type"]);

    let mut v = good.clone();
    v["dsseEnvelope"]["payloadType"] = json!("application/json");
    assert_eq!(check(&v, &[]).1, ["oms.payload_type"]);

    let mut two = statement.clone();
    let subject = two["subject"][0].clone();
    two["subject"] = json!([subject.clone(), subject]);
    assert_eq!(check(&forger.sign(&two, true), &[]).1, ["oms.subjects"]);

    assert_eq!(
        check(&forger.sign(&statement, false), &[]).1,
        ["oms.signature_not_der"]
    );

    let mut wrong_root = statement.clone();
    wrong_root["subject"][0]["digest"]["sha256"] = json!("00".repeat(32));
    assert_eq!(
        check(&forger.sign(&wrong_root, true), &[]).1,
        ["oms.root_mismatch"]
    );

    // Payload edited after signing.
    let mut v = good.clone();
    let mut edited = statement.clone();
    edited["predicate"]["resources"][0]["digest"] = json!("11".repeat(32));
    v["dsseEnvelope"]["payload"] = json!(STANDARD.encode(edited.to_string()));
    assert_eq!(check(&v, &[]).1, ["oms.signature_invalid"]);

    // A hint naming another key.
    let mut v = good.clone();
    v["verificationMaterial"]["publicKey"]["hint"] = json!(hex::encode(
        <sha2::Sha256 as sha2::Digest>::digest(fs::read(&other_public).unwrap())
    ));
    assert_eq!(check(&v, &[]).1, ["oms.key_mismatch"]);

    // What older releases and other writers produce is accepted: no hint (noted), the hint as
    // base64 PEM bytes, no tlogEntries, no keyid.
    let mut v = good.clone();
    v["verificationMaterial"] = json!({ "publicKey": {} });
    v["dsseEnvelope"]["signatures"][0]
        .as_object_mut()
        .unwrap()
        .remove("keyid");
    let (code, c, verdict) = check(&v, &[]);
    assert_eq!((code, c.len()), (0, 0), "{verdict}");
    let detail = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "model.sig")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("no hint"), "{detail}");
    let mut v = good.clone();
    v["verificationMaterial"]["publicKey"]["hint"] =
        json!(STANDARD.encode(fs::read(&public).unwrap()));
    assert_eq!(check(&v, &[]).0, 0);

    // A bundle's own ignore_paths are honoured.
    fs::write(m.join("notes.md"), "not part of the model\n").unwrap();
    let mut with_ignore = statement.clone();
    with_ignore["predicate"]["serialization"]["ignore_paths"] = json!(["notes.md"]);
    let (code, c, verdict) = check(&forger.sign(&with_ignore, true), &["--ignore", "notes.md"]);
    assert_eq!((code, c), (0, vec![]), "{verdict}");
    assert_eq!(
        check(&forger.sign(&statement, true), &["--ignore", "notes.md"]).1,
        ["oms.extra_file"]
    );
    fs::remove_file(m.join("notes.md")).unwrap();

    // Unsupported serializations are named, not mistaken for tampering.
    let mut shards = statement.clone();
    shards["predicate"]["serialization"]["method"] = json!("shards");
    assert_eq!(
        check(&forger.sign(&shards, true), &[]).1,
        ["oms.unsupported"]
    );

    // A missing signed file.
    fs::remove_file(m.join("a-b")).unwrap();
    let (_, c, _) = check(&good, &[]);
    assert!(c.contains(&"oms.missing_file".to_string()), "{c:?}");

    // Not JSON at all.
    fs::write(&bundle_path, "{\"mediaType\": ").unwrap();
    let (r, v) = lab.verify(&m, &public, &["--oms-bundle", s(&bundle_path)]);
    assert_eq!(r.code, 1);
    assert!(codes(&v).contains(&"oms.malformed".to_string()));
}

#[test]
fn keys_of_the_wrong_kind_are_named() {
    let lab = Lab::new();
    let (p256_key, p256_pub) = lab.keygen("ec", "p256");
    let m = lab.model("model");
    assert_eq!(lab.attest(&m, &p256_key, &[]).code, 0);
    // A P-256 key where Ed25519 is expected, and the reverse.
    let r = run([
        "verify",
        s(&m),
        "--trust",
        s(&p256_pub),
        "--attestation",
        "/nonexistent",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("ECDSA P-256"), "{}", r.stderr);
    let r = lab.attest(&m, Path::new(&td("keys/test-lab.key")), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("an Ed25519 key") && r.stderr.contains("P-256, P-384 and P-521"),
        "{}",
        r.stderr
    );
    let (r, _) = lab.verify(&m, Path::new(&td("keys/test-lab.pub")), &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("an Ed25519 key"), "{}", r.stderr);
    // An Ed25519 attestation key given as the P-256 one is refused before any hashing.
    let (key, claims) = (td("keys/test-lab.key"), td("claims/tiny-below.toml"));
    let r = run(["attest", s(&m), "--key", s(&p256_key), "--claims", &claims]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("ECDSA P-256"), "{}", r.stderr);
    // Symbolic links are refused for model.sig, even with --allow-symlinks.
    let r = run([
        "attest",
        s(&m),
        "--key",
        &key,
        "--claims",
        &claims,
        "--oms-key",
        s(&p256_key),
        "--allow-symlinks",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("symbolic links"), "{}", r.stderr);
    // An empty model has nothing to sign.
    let empty = lab.p("empty");
    fs::create_dir_all(empty.join(".git")).unwrap();
    let r = run([
        "attest",
        s(&empty),
        "--key",
        &key,
        "--claims",
        &claims,
        "--oms-key",
        s(&p256_key),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("empty checkpoint"), "{}", r.stderr);
}

#[test]
fn a_policy_can_require_model_sig() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let m = lab.model("model");
    assert_eq!(lab.attest(&m, &key, &[]).code, 0);
    let policy = lab.p("policy.toml");
    fs::write(
        &policy,
        format!(
            "[policy]\nname = \"both\"\nrequire_model_signature = true\n\n[[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n\n[[model_signing_key]]\nname = \"lab ecdsa\"\npath = \"{}\"\n",
            td("keys/test-lab.pub"),
            s(&public)
        ),
    )
    .unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            s(&m),
            "--policy",
            s(&policy),
            "--now",
            "2026-11-20T00:00:00Z",
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = run(args);
        (
            r.code,
            codes(&serde_json::from_str(&r.stdout).unwrap_or(Value::Null)),
        )
    };
    assert_eq!(verify(&[]), (0, vec![]));
    fs::rename(m.join("model.sig"), lab.p("elsewhere.sig")).unwrap();
    assert_eq!(verify(&[]), (1, vec!["oms.missing".to_string()]));
    let elsewhere = lab.p("elsewhere.sig");
    assert_eq!(verify(&["--oms-bundle", s(&elsewhere)]), (0, vec![]));

    // The requirement without a key is a policy error naming the line.
    fs::write(
        &policy,
        "[policy]\nname = \"x\"\nrequire_model_signature = true\n",
    )
    .unwrap();
    let r = run(["policy", "check", s(&policy)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("require_model_signature") && r.stderr.contains(":3"),
        "{}",
        r.stderr
    );
}

#[test]
fn export_intoto_wraps_the_signed_attestation() {
    let lab = Lab::new();
    let (key, _) = lab.keygen("k", "p256");
    let m = lab.model("model");
    assert_eq!(lab.attest(&m, &key, &[]).code, 0);
    let att = m.join("weightgate.att");
    let r = run(["export-intoto", s(&att), "--key", &td("keys/test-lab.key")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "one line, for claims.jsonl");
    let dsse: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(dsse["payloadType"], "application/vnd.in-toto+json");
    let payload = STANDARD.decode(dsse["payload"].as_str().unwrap()).unwrap();
    // The DSSE signature verifies with the lab's key over the in-toto payload.
    let public =
        weightgate_attest::keys::load_verifying_key(Path::new(&td("keys/test-lab.pub"))).unwrap();
    let sig = STANDARD
        .decode(dsse["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
    public
        .verify_strict(
            &weightgate_schemas::pae("application/vnd.in-toto+json", &payload),
            &sig,
        )
        .unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://weightgate.dev/attestation/v1");
    // Subject = the root digest model.sig names.
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        payload_of(&m.join("model.sig"))["subject"][0]["digest"]["sha256"]
    );
    // The original envelope rides along, byte for byte.
    let inner = STANDARD
        .decode(st["predicate"]["envelope"]["payload"].as_str().unwrap())
        .unwrap();
    let original = weightgate_schemas::Envelope::decode_strict(&fs::read(&att).unwrap()).unwrap();
    assert_eq!(inner, original.payload);

    // Unsigned without --key; a grant is not an attestation.
    let r = run(["export-intoto", s(&att)]);
    let dsse: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(dsse["signatures"], json!([]));
    let r = run(["export-intoto", &td("envelopes/fail_trailing_bytes.att")]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not a weightgate envelope"),
        "{}",
        r.stderr
    );
}
