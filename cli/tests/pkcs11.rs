//! Keys in a PKCS#11 token (`--key pkcs11:...`, `keygen --pkcs11`), against SoftHSM2 (Debian
//! `softhsm2`, installed by .ci/run; never skipped): each test makes its own token in a temp
//! dir through SOFTHSM2_CONF, with SoftHSM's own `softhsm2-util`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::common::{Run, copy_dir, python, run_env, td, testdata};

pub(crate) const PIN: &str = "246810";

/// SoftHSM's module where Debian installs it.
pub(crate) fn module() -> &'static str {
    const MODULES: &[&str] = &[
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ];
    MODULES
        .iter()
        .find(|m| Path::new(m).exists())
        .expect("SoftHSM2 missing: install the Debian package softhsm2 (.ci/run does); this test is never skipped")
}

/// A SoftHSM2 installation of its own: a config file and a token directory.
pub(crate) struct SoftHsm {
    pub(crate) dir: tempfile::TempDir,
}

impl SoftHsm {
    /// With one initialised token labelled `label`, user PIN [`PIN`].
    pub(crate) fn with_token(label: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("tokens")).unwrap();
        fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let hsm = SoftHsm { dir };
        hsm.util(&[
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            "13579111",
            "--pin",
            PIN,
        ]);
        hsm
    }

    pub(crate) fn conf(&self) -> String {
        self.dir
            .path()
            .join("softhsm2.conf")
            .to_str()
            .unwrap()
            .into()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `softhsm2-util ARGS` on this installation.
    pub(crate) fn util(&self, args: &[&str]) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(args)
            .output()
            .expect("softhsm2-util missing: install the Debian package softhsm2 (.ci/run does)");
        assert!(
            out.status.success(),
            "softhsm2-util {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Imports a PKCS#8 PEM private key (and its public key) as `label` with CKA_ID `id_hex`.
    fn import(&self, key: &str, token: &str, label: &str, id_hex: &str) {
        self.util(&[
            "--import", key, "--token", token, "--label", label, "--id", id_hex, "--pin", PIN,
        ]);
    }

    /// Imports one of testdata/keys' Ed25519 keys. They are PKCS#8 v2 (RFC 5958, with the
    /// public key), which OpenSSL 3.0 and so `softhsm2-util` cannot read: the same seed is
    /// handed over as PKCS#8 v1 (RFC 8410).
    fn import_ed25519(&self, key: &str, token: &str, label: &str, id_hex: &str) {
        let pem = fs::read_to_string(key).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        // SEQUENCE { INTEGER, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } ...
        assert_eq!(
            &der[12..16],
            &[0x04, 0x22, 0x04, 0x20],
            "an Ed25519 PKCS#8 key"
        );
        let mut v1 = hex::decode("302e020100300506032b657004220420").unwrap();
        v1.extend_from_slice(&der[16..48]);
        let converted = self.path(&format!("{label}-v1.key"));
        fs::write(
            &converted,
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(v1)
            ),
        )
        .unwrap();
        self.import(s(&converted), token, label, id_hex);
    }

    /// `weightgate ARGS` with this installation, the module from WEIGHTGATE_PKCS11_MODULE, and
    /// `env` on top.
    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let conf = self.conf();
        let mut all = vec![
            ("SOFTHSM2_CONF", conf.as_str()),
            ("WEIGHTGATE_PKCS11_MODULE", module()),
        ];
        all.extend_from_slice(env);
        run_env(&all, args)
    }

    /// `weightgate ARGS` with the PIN from WEIGHTGATE_PKCS11_PIN.
    pub(crate) fn run_with_pin(&self, args: &[&str]) -> Run {
        self.run(&[("WEIGHTGATE_PKCS11_PIN", PIN)], args)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tiny_copy(dir: &Path, name: &str) -> PathBuf {
    let model = dir.join(name);
    copy_dir(&testdata().join("checkpoints/tiny"), &model);
    model
}

#[test]
fn keys_made_in_a_token_sign_what_verify_and_model_signing_accept() {
    let hsm = SoftHsm::with_token("lab hsm");
    // An Ed25519 key for the envelope (PIN from the environment) and a P-384 key for
    // model.sig (PIN from the URI's pin-source).
    let made = hsm.run_with_pin(&[
        "keygen",
        "--pkcs11",
        "pkcs11:token=lab%20hsm;object=release",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(
        made.stdout.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{}",
        made.stdout
    );
    let lab_pub = hsm.path("release.pub");
    fs::write(&lab_pub, &made.stdout).unwrap();
    let key_id = made.stderr.trim().rsplit(' ').next().unwrap().to_string();

    let pin_file = hsm.path("pin");
    fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let oms_uri = format!(
        "pkcs11:token=lab%20hsm;object=model-signing?pin-source=file:{}",
        s(&pin_file)
    );
    let made = hsm.run(&[], &["keygen", "--pkcs11", &oms_uri, "--type", "p384"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let oms_pub = hsm.path("model-signing.pub");
    fs::write(&oms_pub, &made.stdout).unwrap();
    // keygen never adds a second key under one label.
    let again = hsm.run(&[], &["keygen", "--pkcs11", &oms_uri, "--type", "p256"]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("an object with this label exists"),
        "{}",
        again.stderr
    );

    // attest signs both with the token (PIN for the envelope key from --pin-source).
    let model = tiny_copy(hsm.dir.path(), "tiny");
    let r = hsm.run(
        &[],
        &[
            "attest",
            s(&model),
            "--key",
            "pkcs11:token=lab%20hsm;object=release;type=private",
            "--pin-source",
            s(&pin_file),
            "--claims",
            &td("claims/tiny-below.toml"),
            "--oms-key",
            &oms_uri,
            "--quiet",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("key {key_id}")), "{}", r.stdout);
    let verified = hsm.run(&[], &["verify", s(&model), "--trust", s(&lab_pub)]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    let verified = hsm.run(&[], &["verify-oms", s(&model), "--key", s(&oms_pub)]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    let reference = Command::new(python())
        .args([
            "-m",
            "model_signing",
            "verify",
            "key",
            s(&model),
            "--signature",
        ])
        .arg(model.join("model.sig"))
        .args(["--public_key", s(&oms_pub)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&reference.stdout);
    assert!(
        reference.status.success() && stdout.contains("Verification succeeded"),
        "model_signing: {stdout}{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    // Another key than the trusted one is refused: the check above can fail.
    let refused = hsm.run(
        &[],
        &["verify", s(&model), "--trust", &td("keys/test-lab.pub")],
    );
    assert_ne!(refused.code, 0, "{}", refused.stdout);

    // A key of the wrong algorithm for the purpose is refused before anything is signed.
    let r = hsm.run_with_pin(&[
        "sign-oms",
        s(&model),
        "--key",
        "pkcs11:token=lab%20hsm;object=release",
        "--signature",
        s(&hsm.path("wrong.sig")),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("an Ed25519 key, but OpenSSF model signing accepts only ECDSA keys"),
        "{}",
        r.stderr
    );
    assert!(!hsm.path("wrong.sig").exists());
}

/// The token signs exactly what the same key in a file signs: the Ed25519 envelopes (attest,
/// cosign, grant) are byte-identical, signature included (Ed25519 is deterministic); the ECDSA
/// `model.sig` differs only in its signature (the token's ECDSA is randomised).
#[test]
fn a_token_key_writes_the_bytes_the_same_key_in_a_file_writes() {
    let hsm = SoftHsm::with_token("lab");
    hsm.import_ed25519(&td("keys/test-lab.key"), "lab", "lab", "01");
    hsm.import_ed25519(&td("keys/test-auditor.key"), "lab", "auditor", "02");
    hsm.import_ed25519(&td("keys/test-issuer.key"), "lab", "issuer", "03");
    let ecdsa = hsm.path("oms");
    let r = hsm.run(&[], &["keygen", "--out", s(&ecdsa), "--type", "p256"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    hsm.import(s(&hsm.path("oms.key")), "lab", "oms", "04");

    let model = tiny_copy(hsm.dir.path(), "tiny");
    let mut written = Vec::new();
    for (name, lab, auditor, issuer, oms) in [
        (
            "file",
            td("keys/test-lab.key"),
            td("keys/test-auditor.key"),
            td("keys/test-issuer.key"),
            s(&hsm.path("oms.key")).to_string(),
        ),
        (
            "token",
            "pkcs11:token=lab;object=lab".into(),
            "pkcs11:token=lab;id=%02".into(),
            "pkcs11:token=lab;object=issuer;id=%03".into(),
            "pkcs11:token=lab;object=oms".into(),
        ),
    ] {
        let att = hsm.path(&format!("{name}.att"));
        let r = hsm.run_with_pin(&[
            "attest",
            s(&model),
            "--key",
            &lab,
            "--claims",
            &td("claims/tiny-above.toml"),
            "--issued-at",
            "2026-01-02T03:04:05Z",
            "--out",
            s(&att),
            "--quiet",
        ]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let r = hsm.run_with_pin(&["cosign", s(&att), "--key", &auditor]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let grant = hsm.path(&format!("{name}.grant"));
        let r = hsm.run_with_pin(&[
            "grant",
            s(&att),
            "--reference",
            "D1234567",
            "--key",
            &issuer,
            "--out",
            s(&grant),
            "--issued-at",
            "2026-01-03",
        ]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let sig = hsm.path(&format!("{name}.sig"));
        let r = hsm.run_with_pin(&[
            "sign-oms",
            s(&model),
            "--key",
            &oms,
            "--signature",
            s(&sig),
            "--quiet",
        ]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let verified = hsm.run(
            &[],
            &[
                "verify-oms",
                s(&model),
                "--signature",
                s(&sig),
                "--key",
                s(&hsm.path("oms.pub")),
            ],
        );
        assert_eq!(
            verified.code, 0,
            "{name}: {}{}",
            verified.stdout, verified.stderr
        );
        written.push((
            fs::read(&att).unwrap(),
            fs::read(&grant).unwrap(),
            fs::read(&sig).unwrap(),
        ));
    }
    let (file, token) = (&written[0], &written[1]);
    assert!(file.0 == token.0, "the cosigned attestations differ");
    assert!(file.1 == token.1, "the grants differ");

    // model.sig: the same JSON once the signature is taken out, and both signatures DER.
    let without_signature = |bytes: &[u8]| {
        let mut bundle: Value = serde_json::from_slice(bytes).unwrap();
        let sig = bundle["dsseEnvelope"]["signatures"][0]["sig"].take();
        let der = base64::engine::general_purpose::STANDARD
            .decode(sig.as_str().unwrap())
            .unwrap();
        assert_eq!(
            der[0], 0x30,
            "an ASN.1 DER SEQUENCE, as the file signer writes"
        );
        assert_eq!(
            usize::from(der[1]) + 2,
            der.len(),
            "one DER value, nothing after it"
        );
        bundle
    };
    assert_eq!(without_signature(&file.2), without_signature(&token.2));
    assert_ne!(file.2, token.2, "the token's ECDSA nonce is random");
}

#[test]
fn a_wrong_pin_a_missing_object_a_removed_token_and_a_missing_module_are_named() {
    let hsm = SoftHsm::with_token("lab");
    let r = hsm.run_with_pin(&["keygen", "--pkcs11", "pkcs11:token=lab;object=release"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let model = tiny_copy(hsm.dir.path(), "tiny");
    let out = hsm.path("out.att");
    let attest = |env: &[(&str, &str)], key: &str| {
        let r = hsm.run(
            env,
            &[
                "attest",
                s(&model),
                "--key",
                key,
                "--claims",
                &td("claims/tiny-below.toml"),
                "--out",
                s(&out),
                "--quiet",
            ],
        );
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert!(!out.exists(), "nothing is written when the key cannot sign");
        r.stderr
    };
    let key = "pkcs11:token=lab;object=release";
    let pin = [("WEIGHTGATE_PKCS11_PIN", PIN)];

    let wrong = attest(&[("WEIGHTGATE_PKCS11_PIN", "999999")], key);
    assert!(
        wrong.contains("token \"lab\" refused the PIN (CKR_PIN_INCORRECT)"),
        "{wrong}"
    );
    assert!(!wrong.contains("999999"), "the PIN is never shown: {wrong}");
    let none = attest(&[], key);
    assert!(
        none.contains("token \"lab\" needs a PIN: give `pin-source=` in the URI, --pin-source, or WEIGHTGATE_PKCS11_PIN"),
        "{none}"
    );
    let in_uri = attest(&pin, "pkcs11:token=lab;object=release?pin-value=424242");
    assert!(
        in_uri.contains("`pin-value` puts the PIN on the command line"),
        "{in_uri}"
    );
    assert!(!in_uri.contains("424242"), "{in_uri}");
    let unreadable = attest(
        &[],
        "pkcs11:token=lab;object=release?pin-source=/nonexistent/pin",
    );
    assert!(
        unreadable.contains("cannot read the PIN from pin-source \"/nonexistent/pin\""),
        "{unreadable}"
    );

    let missing = attest(&pin, "pkcs11:token=lab;object=nothing-here");
    assert!(
        missing.contains("token \"lab\" has no private key matching object=\"nothing-here\""),
        "{missing}"
    );
    let other = attest(&pin, "pkcs11:token=elsewhere;object=release");
    assert!(
        other.contains("no token matches token=\"elsewhere\"")
            && other.contains("tokens present: \"lab\""),
        "{other}"
    );
    let no_module = attest(
        &pin,
        "pkcs11:token=lab;object=release?module-path=/nonexistent/libnone.so",
    );
    assert!(
        no_module.contains("cannot load the PKCS#11 module /nonexistent/libnone.so")
            && no_module.contains("No such file"),
        "{no_module}"
    );
    let bad_uri = attest(&pin, "pkcs11:token=lab;object=release;objekt=x");
    assert!(
        bad_uri.contains("unknown path attribute `objekt`"),
        "{bad_uri}"
    );

    // The token taken away (SoftHSM keeps each token in a directory of its own).
    for token in fs::read_dir(hsm.path("tokens")).unwrap() {
        fs::remove_dir_all(token.unwrap().path()).unwrap();
    }
    let removed = attest(&pin, key);
    assert!(
        removed.contains("no token matches token=\"lab\"")
            && removed.contains("no token present: removed, or not initialised"),
        "{removed}"
    );
}
