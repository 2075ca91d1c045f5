//! OpenSSF model signing interop: bundles weightgate writes are checked by the real
//! `model_signing` 1.1.1 (installed by .ci/run; never skipped), bundles `model_signing` writes
//! are checked by `weightgate verify`, and every malformed bundle gets its own reason code.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Run, copy_dir, python, run, td, testdata};
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

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

    // Unknown serializations are named, not mistaken for tampering.
    let mut unknown = statement.clone();
    unknown["predicate"]["serialization"]["method"] = json!("tensors");
    assert_eq!(
        check(&forger.sign(&unknown, true), &[]).1,
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
    let r = run([
        "export-intoto",
        s(&att),
        "--key",
        &td("keys/test-lab.key"),
        "--trust",
        &td("keys/test-lab.pub"),
    ]);
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
    let r = run([
        "export-intoto",
        s(&att),
        "--trust",
        &td("keys/test-lab.pub"),
    ]);
    assert!(r.stderr.contains("carries no signature"), "{}", r.stderr);
    let dsse: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(dsse["signatures"], json!([]));
    let r = run([
        "export-intoto",
        &td("envelopes/fail_trailing_bytes.att"),
        "--unverified",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not a weightgate envelope"),
        "{}",
        r.stderr
    );
}

/// `python -c SCRIPT ARGS...` in the pinned venv (for `model_signing`'s API: shards, BLAKE).
fn python_api(script: &str, args: &[&str]) -> Run {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `weightgate verify-oms MODEL --key PUB --json EXTRA...`: (exit code, verdict).
fn verify_oms(model: &Path, public: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify-oms", s(model), "--key", s(public), "--json"];
    args.extend_from_slice(extra);
    let r = run(args);
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

/// A model with every kind of name the spec's path rules speak of.
fn odd_model(dir: &Path) -> PathBuf {
    let m = dir.join("odd model");
    for d in [
        ".git/objects",
        ".github/workflows",
        ".cache/hf",
        "sub dir/(nested)",
    ] {
        fs::create_dir_all(m.join(d)).unwrap();
    }
    fs::write(m.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(m.join(".git/objects/x"), "git object\n").unwrap();
    fs::write(m.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
    fs::write(m.join(".gitignore"), "*.tmp\n").unwrap();
    fs::write(m.join(".gitattributes"), "* binary\n").unwrap();
    fs::write(m.join(".cache/hf/meta"), "hidden folders are signed\n").unwrap();
    fs::write(m.join(".env"), "dotfiles are signed\n").unwrap();
    fs::write(m.join("empty.bin"), b"").unwrap();
    fs::write(m.join("binary.bin"), (0..=255u8).collect::<Vec<u8>>()).unwrap();
    fs::write(m.join("modèle-ü 😀.txt"), "unicode\n").unwrap();
    fs::write(m.join("sub dir/(nested)/weights (1).bin"), "spaces\n").unwrap();
    fs::write(m.join("ignore-me"), "left out\n").unwrap();
    m
}

const ODD_SIGNED: &[&str] = &[
    ".cache/hf/meta",
    ".env",
    "binary.bin",
    "empty.bin",
    "modèle-ü 😀.txt",
    "sub dir/(nested)/weights (1).bin",
];

#[test]
fn standalone_verification_and_signing_interoperate_on_odd_names() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let m = odd_model(lab.dir.path());
    // Our bundle inside the model under another name; the ignore path absolute.
    let ours = m.join("bundle.sig");
    let ignore_abs = m.join("ignore-me");
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&key),
        "--signature",
        s(&ours),
        "--ignore-paths",
        s(&ignore_abs),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let payload = payload_of(&ours);
    let names: Vec<&str> = payload["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ODD_SIGNED);
    let ignored = payload["predicate"]["serialization"]["ignore_paths"].to_string();
    assert!(
        !ignored.contains(s(lab.dir.path())),
        "absolute path leaked: {ignored}"
    );
    assert_eq!(
        payload["predicate"]["serialization"]["ignore_paths"],
        json!([
            ".git",
            ".gitattributes",
            ".github",
            ".gitignore",
            "bundle.sig",
            "ignore-me"
        ])
    );
    // The reference verifier agrees (it reads ignore_paths from the bundle).
    let ok = model_signing(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&ours),
        "--public_key",
        s(&public),
    ]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let (code, v) = verify_oms(&m, &public, &["--signature", s(&ours)]);
    assert_eq!(code, 0, "{v}");
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["bundle", "key", "signature", "statement", "files"]);
    assert_eq!(v["files"], ODD_SIGNED.len());

    // model_signing's bundle, also inside the model under another name, verifies here.
    let theirs = m.join("theirs.sig");
    let signed = model_signing(&[
        "sign",
        "key",
        s(&m),
        "--private_key",
        s(&key),
        "--signature",
        s(&theirs),
        "--ignore-paths",
        s(&ours),
        "--ignore-paths",
        s(&ignore_abs),
    ]);
    assert_eq!(signed.code, 0, "{}{}", signed.stdout, signed.stderr);
    let (code, v) = verify_oms(&m, &public, &["--signature", s(&theirs)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["root_sha256"], {
        let (_, ours_v) = verify_oms(&m, &public, &["--signature", s(&ours)]);
        ours_v["root_sha256"].clone()
    });
    // Another bundle inside the model is a file like any other: it is unsigned by ours.
    let (code, v) = verify_oms(&m, &public, &["--signature", s(&ours)]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.extra_file".to_string()])
    );
    fs::remove_file(&theirs).unwrap();

    // Extra, tampered and missing files, each named; unsigned files allowed on request.
    fs::write(m.join("extra.bin"), "unsigned\n").unwrap();
    let (code, v) = verify_oms(&m, &public, &["--signature", s(&ours)]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.extra_file".to_string()])
    );
    let (code, v) = verify_oms(
        &m,
        &public,
        &["--signature", s(&ours), "--ignore-unsigned-files"],
    );
    assert_eq!(code, 0, "{v}");
    let rel = run([
        "verify-oms",
        s(&m),
        "--key",
        s(&public),
        "--signature",
        s(&ours),
        "--ignore-paths",
        "extra.bin",
    ]);
    assert_eq!(rel.code, 0, "{}", rel.stdout);
    assert!(rel.stdout.starts_with("VERIFIED"), "{}", rel.stdout);
    fs::write(m.join("binary.bin"), "tampered").unwrap();
    let (code, v) = verify_oms(
        &m,
        &public,
        &["--signature", s(&ours), "--ignore-unsigned-files"],
    );
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.digest_mismatch".to_string()])
    );
    let failed = &v["checks"].as_array().unwrap()[4];
    assert_eq!(
        (failed["name"].as_str(), failed["passed"].as_bool()),
        (Some("files"), Some(false))
    );
    fs::remove_file(m.join(".env")).unwrap();
    let text = run([
        "verify-oms",
        s(&m),
        "--key",
        s(&public),
        "--signature",
        s(&ours),
    ]);
    assert_eq!(text.code, 1);
    for needle in [
        "NOT VERIFIED",
        "oms.missing_file",
        ".env",
        "oms.extra_file",
        "oms.digest_mismatch",
    ] {
        assert!(text.stdout.contains(needle), "{needle}: {}", text.stdout);
    }
    // Unreadable inputs are usage errors (2), not verdicts.
    let r = run([
        "verify-oms",
        s(&m),
        "--key",
        s(&public),
        "--signature",
        "/nonexistent.sig",
    ]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let r = run(["verify-oms", "/nonexistent-model", "--key", s(&public)]);
    assert_eq!(r.code, 2);
    let r = run(["verify-oms", s(&m), "--signature", s(&ours)]);
    assert_eq!(r.code, 2, "a key is required");
}

#[test]
fn single_file_models_verify_standalone_both_ways() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p384");
    let file = lab.p("weights.bin");
    fs::write(&file, vec![7u8; 3000]).unwrap();
    let r = run(["sign-oms", s(&file), "--key", s(&key)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sig = lab.p("weights.bin.sig");
    assert_eq!(payload_of(&sig)["predicate"]["resources"][0]["name"], ".");
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
    assert_eq!(verify_oms(&file, &public, &[]).0, 0);
    let theirs = lab.p("theirs.sig");
    let signed = model_signing(&[
        "sign",
        "key",
        s(&file),
        "--private_key",
        s(&key),
        "--signature",
        s(&theirs),
    ]);
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    assert_eq!(
        verify_oms(&file, &public, &["--signature", s(&theirs)]).0,
        0
    );
    fs::write(&file, vec![8u8; 3000]).unwrap();
    let (code, v) = verify_oms(&file, &public, &["--signature", s(&theirs)]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.digest_mismatch".to_string()])
    );
}

#[test]
fn path_rules_refuse_what_signing_must_not_sign() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let m = odd_model(lab.dir.path());
    let sign = |extra: &[&str]| {
        let mut args = vec!["sign-oms", s(&m), "--key", s(&key)];
        args.extend_from_slice(extra);
        run(args)
    };
    // An ignore path outside the model.
    let outside = lab.p("elsewhere");
    let r = sign(&["--ignore-paths", s(&outside)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("outside the model folder"),
        "{}",
        r.stderr
    );
    let r = sign(&["--ignore-paths", "../x"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`..`"), "{}", r.stderr);
    // Any symbolic link, a cycle, a link out of the root.
    for (name, target) in [
        ("link-in", PathBuf::from("binary.bin")),
        ("loop", m.join("loop")),
        ("link-out", lab.p("k.pub")),
    ] {
        std::os::unix::fs::symlink(&target, m.join(name)).unwrap();
        let r = sign(&[]);
        assert_eq!(r.code, 2, "{name}");
        assert!(
            r.stderr.contains("symbolic link refused"),
            "{name}: {}",
            r.stderr
        );
        fs::remove_file(m.join(name)).unwrap();
    }
    // A model empty after exclusions.
    let empty = lab.p("empty-model");
    fs::create_dir_all(empty.join(".git")).unwrap();
    fs::write(empty.join(".git/HEAD"), "x").unwrap();
    fs::write(empty.join("only"), "x").unwrap();
    let r = run([
        "sign-oms",
        s(&empty),
        "--key",
        s(&key),
        "--ignore-paths",
        "only",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("empty"), "{}", r.stderr);

    // The attestation path follows the same rules: an absolute ignore path is honoured in
    // both artifacts and recorded relative.
    let tiny = lab.model("tiny");
    fs::write(tiny.join("ignore-me"), "left out\n").unwrap();
    let abs = tiny.join("ignore-me");
    let r = lab.attest(&tiny, &key, &["--oms-ignore", s(&abs)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let payload = payload_of(&tiny.join("model.sig"));
    let recorded = payload["predicate"]["serialization"]["ignore_paths"].clone();
    assert!(
        recorded.as_array().unwrap().contains(&json!("ignore-me")),
        "{recorded}"
    );
    assert!(
        !recorded.to_string().contains(s(lab.dir.path())),
        "{recorded}"
    );
    assert!(!payload.to_string().contains("\"ignore-me\",\"digest\""));
    let ok = model_signing(&[
        "verify",
        "key",
        s(&tiny),
        "--signature",
        s(&tiny.join("model.sig")),
        "--public_key",
        s(&public),
    ]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let (v, verdict) = lab.verify(&tiny, &public, &["--ignore", s(&abs)]);
    assert_eq!(v.code, 0, "{verdict}");
    let r = lab.attest(&tiny, &key, &["--oms-ignore", s(&outside)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("outside the model folder"),
        "{}",
        r.stderr
    );
}

/// Signs `model` with `model_signing`'s API (what its CLI cannot: shards, BLAKE2b, BLAKE3).
const PY_SIGN: &str = r#"
import sys, pathlib, model_signing
model, key, out, method, algo, shard = sys.argv[1:7]
h = model_signing.hashing.Config()
if method == "shards":
    h = h.use_shard_serialization(hashing_algorithm=algo, shard_size=int(shard))
else:
    h = h.use_file_serialization(hashing_algorithm=algo)
h = h.set_ignored_paths(paths=[pathlib.Path(out).name], ignore_git_paths=True)
model_signing.signing.Config().use_elliptic_key_signer(private_key=pathlib.Path(key)).set_hashing_config(h).sign(pathlib.Path(model), pathlib.Path(out))
"#;

/// Verifies with `model_signing`'s API and an explicit hashing configuration.
const PY_VERIFY: &str = r#"
import sys, pathlib, model_signing
model, key, sig, algo = sys.argv[1:5]
h = model_signing.hashing.Config().use_file_serialization(hashing_algorithm=algo)
model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pathlib.Path(key)).set_hashing_config(h).verify(pathlib.Path(model), pathlib.Path(sig))
"#;

#[test]
fn shards_and_blake_hashes_interoperate_with_the_reference_api() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let m = lab.p("model");
    fs::create_dir_all(m.join("a:b")).unwrap();
    fs::write(
        m.join("w.bin"),
        (0..2500u32).map(|i| (i * 31) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    fs::write(m.join("a:b/c.bin"), vec![5u8; 1000]).unwrap();
    fs::write(m.join("empty"), b"").unwrap();
    for (method, algo, py_algo, shard) in [
        ("shards", "sha256", "sha256", "1000"),
        ("shards", "blake2b", "blake2", "700"),
        ("files", "blake2b", "blake2", "0"),
        ("files", "blake3", "blake3", "0"),
    ] {
        let case = format!("{method}/{algo}");
        // The reference writes it; weightgate verifies it.
        let theirs = m.join("theirs.sig");
        let r = python_api(
            PY_SIGN,
            &[s(&m), s(&key), s(&theirs), method, py_algo, shard],
        );
        assert_eq!(r.code, 0, "{case}: {}", r.stderr);
        let (code, v) = verify_oms(&m, &public, &["--signature", s(&theirs)]);
        assert_eq!(code, 0, "{case}: {v}");
        // weightgate writes it: the same digests, in the spec's form.
        let ours = m.join("ours.sig");
        let mut args = vec![
            "sign-oms",
            s(&m),
            "--key",
            s(&key),
            "--signature",
            s(&ours),
            "--ignore-paths",
            "theirs.sig",
            "--hash-type",
            algo,
        ];
        if method == "shards" {
            args.extend(["--shards", "--shard-size", shard]);
        }
        let r = run(args);
        assert_eq!(r.code, 0, "{case}: {}", r.stderr);
        let digests = |p: &Path| -> Vec<(String, String)> {
            payload_of(p)["predicate"]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["name"].as_str().unwrap().into(),
                        r["digest"].as_str().unwrap().into(),
                    )
                })
                .collect()
        };
        let (mut a, mut b) = (digests(&ours), digests(&theirs));
        a.sort();
        b.sort();
        assert_eq!(a, b, "{case}");
        let ser = payload_of(&ours)["predicate"]["serialization"].clone();
        assert_eq!(ser["hash_type"], algo, "{case}");
        if method == "shards" {
            assert_eq!(
                ser["shard_size"],
                json!(shard.parse::<u64>().unwrap()),
                "{case}"
            );
            assert!(
                a.iter()
                    .any(|(n, _)| n == "a:b/c.bin:0:700" || n == "a:b/c.bin:0:1000")
            );
            assert!(
                !a.iter().any(|(n, _)| n.starts_with("empty")),
                "empty files have no shard"
            );
            assert!(
                payload_of(&ours)["predicate"]["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["algorithm"] == algo),
                "{case}"
            );
        } else {
            // The reference verifies ours (its CLI only does files/sha256; its API the rest).
            fs::rename(&theirs, lab.p("theirs.sig")).unwrap();
            let r = python_api(PY_VERIFY, &[s(&m), s(&public), s(&ours), py_algo]);
            assert_eq!(r.code, 0, "{case}: {}", r.stderr);
        }
        let _ = fs::remove_file(&theirs);
        assert_eq!(
            verify_oms(&m, &public, &["--signature", s(&ours)]).0,
            0,
            "{case}"
        );
        // A changed byte in the last shard, and a file that grew, are caught.
        let w = m.join("w.bin");
        let original = fs::read(&w).unwrap();
        let mut tampered = original.clone();
        tampered[2400] ^= 1;
        fs::write(&w, &tampered).unwrap();
        let (code, v) = verify_oms(&m, &public, &["--signature", s(&ours)]);
        assert_eq!(
            (code, problem_codes(&v)),
            (1, vec!["oms.digest_mismatch".to_string()]),
            "{case}"
        );
        tampered = original.clone();
        tampered.extend([0u8; 10]);
        fs::write(&w, &tampered).unwrap();
        assert_eq!(
            verify_oms(&m, &public, &["--signature", s(&ours)]).0,
            1,
            "{case}"
        );
        fs::write(&w, &original).unwrap();
        fs::remove_file(&ours).unwrap();
    }
}

/// Verifies with `model_signing`'s API, the hashing configuration read from the bundle.
const PY_VERIFY_AS_SIGNED: &str = r#"
import sys, pathlib, model_signing
model, key, sig = sys.argv[1:4]
model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pathlib.Path(key)).verify(pathlib.Path(model), pathlib.Path(sig))
"#;

/// weightgate's shard bundles name each digest's algorithm as the spec does (`sha256`);
/// `model_signing` 1.1.1 expects `sha256-sharded-<size>` and refuses them for that alone:
/// with only the names changed (and re-signed), it accepts the same digests, shard names,
/// order, integer `shard_size` and root. weightgate reads both names (docs/decisions.md).
#[test]
fn shard_bundles_differ_from_the_reference_only_in_algorithm_names() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let m = lab.p("model");
    // No colon in a name: model_signing 1.1.1 cannot read one back from a shard name.
    fs::create_dir_all(m.join("sub")).unwrap();
    fs::write(
        m.join("w.bin"),
        (0..2500u32).map(|i| (i * 13) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    fs::write(m.join("sub/c.bin"), vec![9u8; 1000]).unwrap();
    let ours = lab.p("ours.sig");
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&key),
        "--signature",
        s(&ours),
        "--shards",
        "--shard-size",
        "1000",
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = python_api(PY_VERIFY_AS_SIGNED, &[s(&m), s(&public), s(&ours)]);
    assert!(
        r.code != 0
            && r.stderr.contains("Hash mismatch")
            && r.stderr.contains("sha256-sharded-1000"),
        "model_signing now reads the spec's shard algorithm names: update docs/decisions.md ({}{})",
        r.stdout,
        r.stderr
    );
    let mut statement = payload_of(&ours);
    for res in statement["predicate"]["resources"].as_array_mut().unwrap() {
        res["algorithm"] = json!("sha256-sharded-1000");
    }
    let renamed = lab.p("renamed.sig");
    fs::write(
        &renamed,
        Forger::new(&key, &public)
            .sign(&statement, true)
            .to_string(),
    )
    .unwrap();
    let r = python_api(PY_VERIFY_AS_SIGNED, &[s(&m), s(&public), s(&renamed)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for sig in [&ours, &renamed] {
        assert_eq!(verify_oms(&m, &public, &["--signature", s(sig)]).0, 0);
    }
    // Either name, a changed byte is caught by both.
    let w = m.join("w.bin");
    let mut bytes = fs::read(&w).unwrap();
    bytes[1500] ^= 1;
    fs::write(&w, &bytes).unwrap();
    let (code, v) = verify_oms(&m, &public, &["--signature", s(&renamed)]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.digest_mismatch".to_string()])
    );
    let r = python_api(PY_VERIFY_AS_SIGNED, &[s(&m), s(&public), s(&renamed)]);
    assert!(
        r.code != 0 && r.stderr.contains("w.bin:1000:2000"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_oms_names_every_bad_input() {
    let lab = Lab::new();
    let (key, public) = lab.keygen("k", "p256");
    let (_, other_public) = lab.keygen("other", "p256");
    let m = lab.model("model");
    let sig = lab.p("model.sig");
    let r = run(["sign-oms", s(&m), "--key", s(&key), "--signature", s(&sig)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let good_text = fs::read_to_string(&sig).unwrap();
    let good: Value = serde_json::from_str(&good_text).unwrap();
    let statement = payload_of(&sig);
    let forger = Forger::new(&key, &public);
    let case = lab.p("case.sig");
    // (bundle bytes, trusted key) -> (code, the one reason, its message)
    let check = |bytes: &[u8], public: &Path| -> (i32, String, String) {
        fs::write(&case, bytes).unwrap();
        let (code, v) = verify_oms(&m, public, &["--signature", s(&case)]);
        let problems = v["problems"].as_array().unwrap();
        assert!(problems.len() <= 1, "{v}");
        let first = |f: &str| {
            problems
                .first()
                .map_or(String::new(), |p| p[f].as_str().unwrap().into())
        };
        (code, first("code"), first("message"))
    };
    let forged = |edit: &dyn Fn(&mut Value)| {
        let mut st = statement.clone();
        edit(&mut st);
        forger.sign(&st, true).to_string().into_bytes()
    };
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        edit(&mut b);
        b.to_string().into_bytes()
    };
    assert_eq!(check(good_text.as_bytes(), &public).0, 0);
    let cases: Vec<(&str, Vec<u8>, &Path, &str, &str)> = vec![
        (
            "garbage",
            b"\x00\xffnot json".to_vec(),
            &public,
            "oms.malformed",
            "not valid JSON",
        ),
        ("zero bytes", Vec::new(), &public, "oms.malformed", "empty"),
        (
            "truncated",
            good_text.as_bytes()[..good_text.len() / 2].to_vec(),
            &public,
            "oms.malformed",
            "not valid JSON",
        ),
        (
            "no dsseEnvelope",
            edited(&|b| {
                b.as_object_mut().unwrap().remove("dsseEnvelope");
            }),
            &public,
            "oms.malformed",
            "dsseEnvelope",
        ),
        (
            "no signatures",
            edited(&|b| b["dsseEnvelope"]["signatures"] = json!([])),
            &public,
            "oms.malformed",
            "no signature",
        ),
        (
            "media type",
            edited(&|b| b["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v0.2+json")),
            &public,
            "oms.media_type",
            "v0.2",
        ),
        (
            "payload type",
            edited(&|b| b["dsseEnvelope"]["payloadType"] = json!("text/plain")),
            &public,
            "oms.payload_type",
            "text/plain",
        ),
        (
            "_type",
            forged(&|st| st["_type"] = json!("https://in-toto.io/Statement/v0.1")),
            &public,
            "oms.malformed",
            "_type",
        ),
        (
            "predicate type",
            forged(&|st| st["predicateType"] = json!("https://slsa.dev/provenance/v1")),
            &public,
            "oms.unsupported",
            "slsa",
        ),
        (
            "no predicate",
            forged(&|st| {
                st.as_object_mut().unwrap().remove("predicate");
            }),
            &public,
            "oms.malformed",
            "predicate",
        ),
        (
            "empty subject",
            forged(&|st| st["subject"] = json!([])),
            &public,
            "oms.subjects",
            "0 subjects",
        ),
        (
            "empty resources",
            forged(&|st| st["predicate"]["resources"] = json!([])),
            &public,
            "oms.malformed",
            "empty",
        ),
        (
            "wrong key",
            good_text.as_bytes().to_vec(),
            &other_public,
            "oms.key_mismatch",
            "none of the trusted",
        ),
        (
            "tampered payload",
            edited(&|b| {
                let mut st = statement.clone();
                st["predicate"]["resources"][0]["digest"] = json!("00".repeat(32));
                b["dsseEnvelope"]["payload"] = json!(STANDARD.encode(st.to_string()));
            }),
            &public,
            "oms.signature_invalid",
            "signature",
        ),
        (
            "sigstore keyless",
            edited(&|b| {
                b["verificationMaterial"] = json!({
            "certificate": { "rawBytes": "MIIB" }, "tlogEntries": [{ "logIndex": "1" }] })
            }),
            &public,
            "oms.unsupported",
            "keyless",
        ),
        (
            "certificate bundle as key bundle",
            edited(&|b| {
                b["verificationMaterial"] = json!({
            "x509CertificateChain": { "certificates": [{ "rawBytes": "MIIB" }] } })
            }),
            &public,
            "oms.wrong_method",
            "`certificate` method",
        ),
    ];
    for (name, bytes, key, code, needle) in cases {
        let (exit, got, message) = check(&bytes, key);
        assert_eq!((exit, got.as_str()), (1, code), "{name}: {message}");
        assert!(message.contains(needle), "{name}: {message}");
    }
    // Older and other writers' variants are accepted: keyid absent, empty or null,
    // tlogEntries absent or empty, rawBytes instead of a hint, extra ignore_paths.
    let pem = fs::read(&public).unwrap();
    let variants: Vec<Vec<u8>> = vec![
        edited(&|b| {
            b["dsseEnvelope"]["signatures"][0]
                .as_object_mut()
                .unwrap()
                .remove("keyid");
        }),
        edited(&|b| b["dsseEnvelope"]["signatures"][0]["keyid"] = json!(null)),
        edited(&|b| {
            b["verificationMaterial"]
                .as_object_mut()
                .unwrap()
                .remove("tlogEntries");
        }),
        edited(&|b| {
            b["verificationMaterial"] = json!({ "publicKey": {
            "rawBytes": STANDARD.encode(&pem), "keyDetails": "PKIX_ECDSA_P256_SHA_256" } })
        }),
        forged(&|st| {
            st["predicate"]["serialization"]["ignore_paths"] =
                json!([".git", "not-there", "dir/also-not-there", "/abs/elsewhere"])
        }),
    ];
    for (i, bytes) in variants.iter().enumerate() {
        let (exit, code, message) = check(bytes, &public);
        assert_eq!(exit, 0, "variant {i}: {code} {message}");
    }
}

/// A private PKI made with the openssl CLI: root (P-384) -> intermediate (P-256) -> signing
/// certificates (P-256), plus an unrelated root.
struct Pki {
    dir: PathBuf,
}

const PKI_EXTENSIONS: &str = "\
[v3ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
[v3leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
subjectAltName=email:signer@lab.example
[v3eku]
basicConstraints=critical,CA:FALSE
extendedKeyUsage=codeSigning
[v3nosign]
basicConstraints=critical,CA:FALSE
keyUsage=critical,keyEncipherment
extendedKeyUsage=serverAuth
";

impl Pki {
    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn key(&self, name: &str, curve: &str) {
        self.openssl(&[
            "ecparam",
            "-name",
            curve,
            "-genkey",
            "-noout",
            "-out",
            &format!("{name}.key"),
        ]);
    }
    /// `name`.pem for `name`.key, issued by `issuer` (itself when None), with `section`.
    fn cert(&self, name: &str, cn: &str, issuer: Option<&str>, section: &str) {
        let csr = format!("{name}.csr");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &csr,
        ]);
        let out = format!("{name}.pem");
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-extensions",
            section,
            "-out",
            &out,
        ];
        let (ca, ca_key);
        match issuer {
            Some(i) => {
                ca = format!("{i}.pem");
                ca_key = format!("{i}.key");
                args.extend(["-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial"]);
            }
            None => {
                ca_key = format!("{name}.key");
                args.extend(["-signkey", &ca_key]);
            }
        }
        self.openssl(&args);
    }
    fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("ext.cnf"), PKI_EXTENSIONS).unwrap();
        let pki = Pki { dir };
        pki.key("root", "secp384r1");
        pki.cert("root", "Test Root", None, "v3ca");
        pki.key("int", "prime256v1");
        pki.cert("int", "Test Intermediate", Some("root"), "v3ca");
        for (name, section) in [("leaf", "v3leaf"), ("eku", "v3eku"), ("nosign", "v3nosign")] {
            pki.key(name, "prime256v1");
            pki.cert(name, &format!("Signer {name}"), Some("int"), section);
        }
        pki.key("other", "prime256v1");
        pki.cert("other", "Other Root", None, "v3ca");
        pki
    }
    fn p(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

#[test]
fn certificate_method_interoperates_and_validates_the_chain() {
    let lab = Lab::new();
    let pki = Pki::new(lab.p("pki"));
    let m = lab.model("model");
    let (root, int, leaf, leaf_key) = (
        pki.p("root.pem"),
        pki.p("int.pem"),
        pki.p("leaf.pem"),
        pki.p("leaf.key"),
    );
    let ours = lab.p("ours.sig");
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&leaf_key),
        "--signing-certificate",
        s(&leaf),
        "--certificate-chain",
        s(&int),
        "--signature",
        s(&ours),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ok = model_signing(&[
        "verify",
        "certificate",
        s(&m),
        "--signature",
        s(&ours),
        "--certificate_chain",
        s(&root),
    ]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let theirs = lab.p("theirs.sig");
    let signed = model_signing(&[
        "sign",
        "certificate",
        s(&m),
        "--private_key",
        s(&leaf_key),
        "--signing_certificate",
        s(&leaf),
        "--certificate_chain",
        s(&int),
        "--signature",
        s(&theirs),
    ]);
    assert_eq!(signed.code, 0, "{}{}", signed.stdout, signed.stderr);
    let verify = |sig: &Path, extra: &[&str]| -> (i32, Value) {
        let mut args = vec!["verify-oms", s(&m), "--signature", s(sig), "--json"];
        args.extend_from_slice(extra);
        let r = run(args);
        assert!(r.code == 0 || r.code == 1, "{}{}", r.stdout, r.stderr);
        (r.code, serde_json::from_str(&r.stdout).unwrap())
    };
    for sig in [&ours, &theirs] {
        let (code, v) = verify(sig, &["--certificate-chain", s(&root)]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["method"], "certificate");
        let names: Vec<&str> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["bundle", "certificate", "signature", "statement", "files"]
        );
        // Identities: the alternative name, the common name, or neither.
        assert_eq!(
            verify(
                sig,
                &[
                    "--certificate-chain",
                    s(&root),
                    "--identity",
                    "signer@lab.example"
                ]
            )
            .0,
            0
        );
        assert_eq!(
            verify(
                sig,
                &["--certificate-chain", s(&root), "--identity", "Signer leaf"]
            )
            .0,
            0
        );
        let (code, v) = verify(
            sig,
            &[
                "--certificate-chain",
                s(&root),
                "--identity",
                "mallory@lab.example",
            ],
        );
        assert_eq!(
            (code, problem_codes(&v)),
            (1, vec!["oms.certificate_identity".to_string()])
        );
    }
    let expect = |sig: &Path, extra: &[&str], code: &str, needle: &str| {
        let (exit, v) = verify(sig, extra);
        assert_eq!(
            (exit, problem_codes(&v)),
            (1, vec![code.to_string()]),
            "{extra:?}: {v}"
        );
        let message = v["problems"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{extra:?}: {message}");
    };
    // Validity is checked at verification time: expired, and not yet valid.
    expect(
        &theirs,
        &["--certificate-chain", s(&root), "--now", "2099-01-01"],
        "oms.certificate_validity",
        "expired",
    );
    expect(
        &theirs,
        &["--certificate-chain", s(&root), "--now", "2001-01-01"],
        "oms.certificate_validity",
        "not valid before",
    );
    // A chain that does not reach the anchor given.
    expect(
        &theirs,
        &["--certificate-chain", s(&pki.p("other.pem"))],
        "oms.certificate_untrusted",
        "does not reach",
    );
    // The signing certificate named as an anchor itself is trusted as it is (RFC 5280 6.1).
    assert_eq!(verify(&theirs, &["--certificate-chain", s(&leaf)]).0, 0);
    // A certificate bundle presented for key verification, and the reverse.
    let leaf_pub = lab.p("leaf.pub");
    pki.openssl(&["ec", "-in", s(&leaf_key), "-pubout", "-out", s(&leaf_pub)]);
    let (code, v) = verify_oms(&m, &leaf_pub, &["--signature", s(&theirs)]);
    assert_eq!(
        (code, problem_codes(&v)),
        (1, vec!["oms.wrong_method".to_string()])
    );
    let key_sig = lab.p("key.sig");
    assert_eq!(
        run([
            "sign-oms",
            s(&m),
            "--key",
            s(&leaf_key),
            "--signature",
            s(&key_sig)
        ])
        .code,
        0
    );
    expect(
        &key_sig,
        &["--certificate-chain", s(&root)],
        "oms.wrong_method",
        "`key` method",
    );
    // Key usage: extended key usage codeSigning alone is enough; neither it nor
    // digitalSignature is refused.
    for (name, ok) in [("eku", true), ("nosign", false)] {
        let sig = lab.p(&format!("{name}.sig"));
        let r = run([
            "sign-oms",
            s(&m),
            "--key",
            s(&pki.p(&format!("{name}.key"))),
            "--signing-certificate",
            s(&pki.p(&format!("{name}.pem"))),
            "--certificate-chain",
            s(&int),
            "--signature",
            s(&sig),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        if ok {
            assert_eq!(
                verify(&sig, &["--certificate-chain", s(&root)]).0,
                0,
                "{name}"
            );
        } else {
            expect(
                &sig,
                &["--certificate-chain", s(&root)],
                "oms.certificate_usage",
                "digitalSignature",
            );
        }
    }
    // Tampered files still fail after a good chain.
    fs::write(m.join("config.json"), "{}").unwrap();
    expect(
        &theirs,
        &["--certificate-chain", s(&root)],
        "oms.digest_mismatch",
        "config.json",
    );
    // Signing refuses a certificate that is not the key's.
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&pki.p("eku.key")),
        "--signing-certificate",
        s(&leaf),
        "--signature",
        s(&lab.p("x.sig")),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not the private key's"), "{}", r.stderr);
}

#[test]
fn a_policy_can_require_a_model_sig_from_a_certificate_identity() {
    let lab = Lab::new();
    let pki = Pki::new(lab.p("pki"));
    let (oms_key, _) = lab.keygen("unused", "p256");
    let m = lab.model("model");
    assert_eq!(lab.attest(&m, &oms_key, &[]).code, 0);
    let sig = m.join("model.sig");
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&pki.p("leaf.key")),
        "--signing-certificate",
        s(&pki.p("leaf.pem")),
        "--certificate-chain",
        s(&pki.p("int.pem")),
        "--signature",
        s(&sig),
        "--ignore-paths",
        "weightgate.att",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let policy = |identity: &str| {
        let path = lab.p("policy.toml");
        fs::write(
            &path,
            format!(
                "[policy]\nname = \"oms cert\"\nrequire_model_signature = true\n\
                 [[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n\
                 [[model_signing_certificate]]\nname = \"lab PKI\"\npath = \"pki/root.pem\"\nidentities = [\"{identity}\"]\n",
                td("keys/test-lab.pub")
            ),
        )
        .unwrap();
        // Judged now: the certificates were made moments ago.
        let r = run(["verify", s(&m), "--policy", s(&path), "--json"]);
        (
            r.code,
            serde_json::from_str::<Value>(&r.stdout).unwrap_or(Value::Null),
            r.stderr,
        )
    };
    let (code, v, err) = policy("signer@lab.example");
    assert_eq!(code, 0, "{v}{err}");
    let (code, v, _) = policy("someone-else@lab.example");
    assert_eq!(
        (code, codes(&v)),
        (1, vec!["oms.certificate_identity".to_string()]),
        "{v}"
    );
}
