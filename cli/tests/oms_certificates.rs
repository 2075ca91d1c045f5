//! The OpenSSF model-signing `certificate` method against PKIs the openssl CLI makes: RSA
//! (PKCS#1 v1.5 and PSS) and ECDSA authorities, checked both ways with the real
//! `model_signing` 1.1.1, every chain failure with its reason code, and the attacks a red-team
//! pass found (identity by text, a path search without memory, a TLS server certificate
//! signing models).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Run, python, run};
use serde_json::Value;

const EXTENSIONS: &str = "\
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
[ca_pathlen0]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
[ca_no_certsign]
basicConstraints=critical,CA:TRUE
keyUsage=critical,digitalSignature,cRLSign
[not_ca]
basicConstraints=critical,CA:FALSE
keyUsage=critical,keyCertSign
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
subjectAltName=email:signer@lab.example
[leaf_plain]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
[server_auth]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
[email_only]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=emailProtection
[self_signed]
keyUsage=critical,digitalSignature
[ca_section]
default_ca=ca_default
[ca_default]
database=index.txt
new_certs_dir=.
serial=serial
default_md=sha256
policy=any
unique_subject=no
copy_extensions=none
[any]
commonName=supplied
";

/// A folder of keys and certificates made with the openssl CLI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ext.cnf"), EXTENSIONS).unwrap();
        fs::write(dir.path().join("index.txt"), "").unwrap();
        fs::write(dir.path().join("serial"), "1000\n").unwrap();
        Pki { dir }
    }

    fn p(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `name.key`: `ec:CURVE` or `rsa:BITS`.
    fn key(&self, name: &str, kind: &str) {
        let out = format!("{name}.key");
        match kind.split_once(':') {
            Some(("ec", curve)) => self.openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
                "-out",
                &out,
            ]),
            Some(("rsa", bits)) => self.openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                "-out",
                &out,
            ]),
            _ => panic!("key kind {kind}"),
        }
    }

    /// `name.pem` for `name.key` with subject `subject` (openssl `/A=v/B=w` form), issued by
    /// `issuer` (self-signed when None) under extension section `section`; `sign` adds
    /// signature options (`-sha384`, `-sigopt rsa_padding_mode:pss`).
    fn cert(&self, name: &str, subject: &str, issuer: Option<&str>, section: &str, sign: &[&str]) {
        let csr = format!("{name}.csr");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-out",
            &csr,
        ]);
        let out = format!("{name}.pem");
        let (ca, ca_key) = match issuer {
            Some(i) => (format!("{i}.pem"), format!("{i}.key")),
            None => (String::new(), format!("{name}.key")),
        };
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
        if issuer.is_some() {
            args.extend(["-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial"]);
        } else {
            args.extend(["-signkey", &ca_key]);
        }
        args.extend_from_slice(sign);
        self.openssl(&args);
    }

    /// A certificate valid only on 1-2 January 2020, issued with `openssl ca`.
    fn expired_cert(&self, name: &str, subject: &str, issuer: &str) {
        let csr = format!("{name}.csr");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-out",
            &csr,
        ]);
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "ext.cnf",
            "-name",
            "ca_default",
            "-cert",
            &format!("{issuer}.pem"),
            "-keyfile",
            &format!("{issuer}.key"),
            "-in",
            &csr,
            "-out",
            &format!("{name}.pem"),
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf_plain",
            "-notext",
        ]);
    }

    /// Concatenates PEM files into `name`.
    fn bundle_file(&self, name: &str, parts: &[&str]) -> PathBuf {
        let mut text = Vec::new();
        for part in parts {
            text.extend(fs::read(self.p(part)).unwrap());
        }
        fs::write(self.p(name), text).unwrap();
        self.p(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

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

fn tiny_model(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    fs::create_dir_all(&m).unwrap();
    fs::write(m.join("weights.bin"), b"weights\n").unwrap();
    fs::write(m.join("config.json"), b"{}\n").unwrap();
    m
}

/// `weightgate sign-oms` with a certificate: the bundle's path.
fn sign_ours(model: &Path, pki: &Pki, leaf: &str, chain: &[&str], out: &Path) {
    let mut args = vec![
        "sign-oms".to_string(),
        s(model).into(),
        "--key".into(),
        s(&pki.p(&format!("{leaf}.key"))).into(),
        "--signing-certificate".into(),
        s(&pki.p(&format!("{leaf}.pem"))).into(),
        "--signature".into(),
        s(out).into(),
    ];
    for c in chain {
        args.extend(["--certificate-chain".into(), s(&pki.p(c)).to_string()]);
    }
    let r = run(args);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `model_signing sign certificate`.
fn sign_theirs(model: &Path, pki: &Pki, leaf: &str, chain: &[&str], out: &Path) {
    let (key, cert) = (pki.p(&format!("{leaf}.key")), pki.p(&format!("{leaf}.pem")));
    let mut args = vec![
        "sign",
        "certificate",
        s(model),
        "--private_key",
        s(&key),
        "--signing_certificate",
        s(&cert),
        "--signature",
        s(out),
    ];
    // model_signing needs a chain file: the signing certificate itself where there is none.
    let mut chain: Vec<PathBuf> = chain.iter().map(|c| pki.p(c)).collect();
    if chain.is_empty() {
        chain.push(cert.clone());
    }
    args.push("--certificate_chain");
    args.extend(chain.iter().map(|c| s(c)));
    let r = model_signing(&args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// `weightgate verify-oms` with anchors: (exit, problem codes, JSON).
fn verify_ours(
    model: &Path,
    sig: &Path,
    anchors: &Path,
    extra: &[&str],
) -> (i32, Vec<String>, Value) {
    let mut args = vec![
        "verify-oms",
        s(model),
        "--signature",
        s(sig),
        "--certificate-chain",
        s(anchors),
        "--json",
    ];
    args.extend_from_slice(extra);
    let r = run(args);
    assert!(r.code == 0 || r.code == 1, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let codes = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect();
    (r.code, codes, v)
}

fn verify_theirs(model: &Path, sig: &Path, anchors: &Path) -> i32 {
    model_signing(&[
        "verify",
        "certificate",
        s(model),
        "--signature",
        s(sig),
        "--certificate_chain",
        s(anchors),
    ])
    .code
}

#[test]
fn rsa_and_ecdsa_authorities_verify_both_ways_with_model_signing() {
    let pki = Pki::new();
    // RSA: a PKCS#1 v1.5 RSA-3072 root, an RSA-2048 intermediate it signs with PSS, a P-256
    // signing certificate the intermediate signs with PKCS#1 v1.5 SHA-384.
    pki.key("rsa_root", "rsa:3072");
    pki.cert("rsa_root", "/CN=RSA Root", None, "ca", &[]);
    pki.key("rsa_int", "rsa:2048");
    pki.cert(
        "rsa_int",
        "/CN=RSA Intermediate",
        Some("rsa_root"),
        "ca",
        &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
        ],
    );
    pki.key("rsa_leaf", "ec:P-256");
    pki.cert(
        "rsa_leaf",
        "/CN=RSA signed",
        Some("rsa_int"),
        "leaf",
        &["-sha384"],
    );
    // ECDSA: P-384 root, P-256 intermediate, P-384 signing certificate.
    pki.key("ec_root", "ec:P-384");
    pki.cert("ec_root", "/CN=EC Root", None, "ca", &[]);
    pki.key("ec_int", "ec:P-256");
    pki.cert(
        "ec_int",
        "/CN=EC Intermediate",
        Some("ec_root"),
        "ca",
        &["-sha384"],
    );
    pki.key("ec_leaf", "ec:P-384");
    pki.cert("ec_leaf", "/CN=EC signed", Some("ec_int"), "leaf", &[]);
    // A self-signed signing certificate that is its own anchor: no cA, no keyCertSign.
    pki.key("self", "ec:P-256");
    pki.cert("self", "/CN=Self", None, "self_signed", &[]);

    let work = tempfile::tempdir().unwrap();
    let m = tiny_model(work.path());
    for (leaf, int, root) in [
        ("rsa_leaf", "rsa_int.pem", "rsa_root.pem"),
        ("ec_leaf", "ec_int.pem", "ec_root.pem"),
    ] {
        let root = pki.p(root);
        let ours = work.path().join(format!("{leaf}.ours.sig"));
        let theirs = work.path().join(format!("{leaf}.theirs.sig"));
        sign_ours(&m, &pki, leaf, &[int], &ours);
        sign_theirs(&m, &pki, leaf, &[int], &theirs);
        for sig in [&ours, &theirs] {
            let (code, problems, v) = verify_ours(&m, sig, &root, &[]);
            assert_eq!((code, problems), (0, vec![]), "{leaf}: {v}");
            assert_eq!(verify_theirs(&m, sig, &root), 0, "{leaf} {}", sig.display());
            // The other PKI's root is a wrong CA for both verifiers.
            let wrong = if leaf == "rsa_leaf" {
                pki.p("ec_root.pem")
            } else {
                pki.p("rsa_root.pem")
            };
            let (code, problems, _) = verify_ours(&m, sig, &wrong, &[]);
            assert_eq!(
                (code, problems),
                (1, vec!["oms.certificate_untrusted".to_string()])
            );
            assert_ne!(verify_theirs(&m, sig, &wrong), 0);
        }
    }
    // The self-signed certificate as its own anchor, both ways.
    let ours = work.path().join("self.ours.sig");
    let theirs = work.path().join("self.theirs.sig");
    sign_ours(&m, &pki, "self", &[], &ours);
    sign_theirs(&m, &pki, "self", &[], &theirs);
    for sig in [&ours, &theirs] {
        let (code, _, v) = verify_ours(&m, sig, &pki.p("self.pem"), &[]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(verify_theirs(&m, sig, &pki.p("self.pem")), 0);
    }
}

#[test]
fn signing_certificates_must_be_for_code_signing_and_valid() {
    let pki = Pki::new();
    pki.key("root", "ec:P-256");
    pki.cert("root", "/CN=Root", None, "ca", &[]);
    for (name, section) in [("server", "server_auth"), ("email", "email_only")] {
        pki.key(name, "ec:P-256");
        pki.cert(name, &format!("/CN={name}"), Some("root"), section, &[]);
    }
    pki.key("expired", "ec:P-256");
    pki.expired_cert("expired", "/CN=expired", "root");
    let work = tempfile::tempdir().unwrap();
    let m = tiny_model(work.path());
    let root = pki.p("root.pem");
    // A TLS server certificate (key usage digitalSignature, extended key usage serverAuth
    // only) signs no model: RFC 5280 4.2.1.12. model_signing takes digitalSignature alone and
    // accepts it; that is the attack this refuses.
    for (name, listed) in [("server", "serverAuth"), ("email", "emailProtection")] {
        let sig = work.path().join(format!("{name}.sig"));
        sign_theirs(&m, &pki, name, &[], &sig);
        let (code, problems, v) = verify_ours(&m, &sig, &root, &[]);
        assert_eq!(
            (code, problems),
            (1, vec!["oms.certificate_code_signing".to_string()])
        );
        let message = v["problems"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(listed) && message.contains("codeSigning"),
            "{message}"
        );
        assert_eq!(
            verify_theirs(&m, &sig, &root),
            0,
            "model_signing accepts {name}"
        );
    }
    // Expired at verification time; the bundle proves no signing time, so "now" decides.
    // model_signing checks the chain at the certificate's notBefore, when the root (made
    // today) was not valid yet: it refuses too.
    let sig = work.path().join("expired.sig");
    sign_ours(&m, &pki, "expired", &[], &sig);
    let (code, problems, v) = verify_ours(&m, &sig, &root, &[]);
    assert_eq!(
        (code, problems),
        (1, vec!["oms.certificate_validity".to_string()]),
        "{v}"
    );
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired at 2020-01-02")
    );
    assert_ne!(verify_theirs(&m, &sig, &root), 0);
    // At a time inside its validity (and the root's), it verifies.
    let root_start = "2020-01-01T12:00:00Z";
    let (code, problems, _) = verify_ours(&m, &sig, &root, &["--now", root_start]);
    // The root was made today, so it is not yet valid then: the failure names the root.
    assert_eq!(
        (code, problems),
        (1, vec!["oms.certificate_validity".to_string()])
    );
}

#[test]
fn every_chain_failure_has_its_reason_code() {
    let pki = Pki::new();
    pki.key("root", "ec:P-256");
    pki.cert("root", "/CN=Root", None, "ca", &[]);
    pki.key("root0", "ec:P-256");
    pki.cert("root0", "/CN=Root pathlen 0", None, "ca_pathlen0", &[]);
    pki.key("weak", "rsa:1024");
    pki.cert("weak", "/CN=Weak", Some("root"), "ca", &[]);
    let cases = [
        (
            "not_ca",
            "root",
            "not_ca",
            "oms.certificate_not_ca",
            "not a CA",
        ),
        (
            "no_certsign",
            "root",
            "ca_no_certsign",
            "oms.certificate_issuer_usage",
            "keyCertSign",
        ),
        (
            "deep",
            "root0",
            "ca",
            "oms.certificate_path_length",
            "allows 0 intermediates",
        ),
        (
            "weak",
            "root",
            "ca",
            "oms.certificate_algorithm",
            "1024 bits",
        ),
    ];
    let work = tempfile::tempdir().unwrap();
    let m = tiny_model(work.path());
    for (int, root, section, code, needle) in cases {
        if int != "weak" {
            pki.key(int, "ec:P-256");
            pki.cert(int, &format!("/CN={int}"), Some(root), section, &[]);
        }
        let leaf = format!("{int}_leaf");
        pki.key(&leaf, "ec:P-256");
        pki.cert(&leaf, &format!("/CN={leaf}"), Some(int), "leaf", &[]);
        let sig = work.path().join(format!("{int}.sig"));
        sign_ours(&m, &pki, &leaf, &[&format!("{int}.pem")], &sig);
        let (exit, problems, v) = verify_ours(&m, &sig, &pki.p(&format!("{root}.pem")), &[]);
        assert_eq!((exit, problems), (1, vec![code.to_string()]), "{int}: {v}");
        let message = v["problems"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{int}: {message}");
    }
}

#[test]
fn identities_are_compared_on_parsed_names_not_text() {
    let pki = Pki::new();
    pki.key("root", "ec:P-256");
    pki.cert("root", "/CN=Root", None, "ca", &[]);
    // One genuine `alice`, and three that a CA issuing whatever a CSR asks for would sign for
    // mallory: a comma in the CN, a comma in the O, and a second CN.
    let subjects = [
        ("alice", "/CN=alice", true),
        ("comma_cn", "/CN=mallory\\,CN=alice", false),
        ("comma_o", "/O=x\\,CN=alice/CN=mallory", false),
        ("two_cn", "/CN=mallory/CN=alice", false),
    ];
    let work = tempfile::tempdir().unwrap();
    let m = tiny_model(work.path());
    let root = pki.p("root.pem");
    for (name, subject, genuine) in subjects {
        pki.key(name, "ec:P-256");
        pki.cert(name, subject, Some("root"), "leaf_plain", &[]);
        let sig = work.path().join(format!("{name}.sig"));
        sign_ours(&m, &pki, name, &[], &sig);
        let (code, problems, v) = verify_ours(&m, &sig, &root, &["--identity", "alice"]);
        if genuine {
            assert_eq!(code, 0, "{v}");
        } else {
            assert_eq!(
                (code, problems),
                (1, vec!["oms.certificate_identity".to_string()]),
                "{name}: {v}"
            );
        }
        // A distinguished name's text is never an identity.
        let (code, _, _) = verify_ours(&m, &sig, &root, &["--identity", "CN=alice"]);
        assert_eq!(code, 1, "{name}");
    }
    // The gate's policy trusts identities the same way.
    let tiny = common::attested_tiny();
    let checkpoint = tiny.model.clone();
    let policy = tiny.dir.path().join("policy.toml");
    fs::write(
        &policy,
        format!(
            "[policy]\nname = \"ids\"\nrequire_model_signature = true\n\
             [[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n\
             [[model_signing_certificate]]\nname = \"lab PKI\"\npath = \"{}\"\nidentities = [\"alice\"]\n",
            common::td("keys/test-lab.pub"),
            s(&root)
        ),
    )
    .unwrap();
    for (name, ok) in [("alice", true), ("comma_cn", false)] {
        let r = run([
            "sign-oms",
            s(&checkpoint),
            "--key",
            s(&pki.p(&format!("{name}.key"))),
            "--signing-certificate",
            s(&pki.p(&format!("{name}.pem"))),
            "--ignore-paths",
            "weightgate.att",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = run(["verify", s(&checkpoint), "--policy", s(&policy), "--json"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        if ok {
            assert_eq!(r.code, 0, "{v}{}", r.stderr);
        } else {
            assert_eq!(r.code, 1, "{v}");
            assert_eq!(v["reasons"][0]["code"], "oms.certificate_identity", "{v}");
        }
    }
}

#[test]
fn a_bundle_of_self_issued_certificates_is_refused_quickly() {
    let pki = Pki::new();
    pki.key("root", "ec:P-256");
    pki.cert("root", "/CN=Root", None, "ca", &[]);
    // Ten certificates named `Loop`, each issued by `Loop` with the same key: every one signs
    // every other, so trying each ordering would be 10! paths.
    pki.key("loop", "ec:P-256");
    let mut loops = Vec::new();
    for i in 0..10 {
        let name = format!("loop{i}");
        fs::copy(pki.p("loop.key"), pki.p(&format!("{name}.key"))).unwrap();
        pki.cert(
            &name,
            "/CN=Loop",
            None,
            "ca",
            &["-set_serial", &(100 + i).to_string()],
        );
        loops.push(format!("{name}.pem"));
    }
    pki.key("leaf", "ec:P-256");
    pki.cert("leaf", "/CN=leaf", Some("loop0"), "leaf_plain", &[]);
    let work = tempfile::tempdir().unwrap();
    let m = tiny_model(work.path());
    let loop_refs: Vec<&str> = loops.iter().map(String::as_str).collect();
    let chain = pki.bundle_file("loops.pem", &loop_refs);
    let sig = work.path().join("loops.sig");
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&pki.p("leaf.key")),
        "--signing-certificate",
        s(&pki.p("leaf.pem")),
        "--certificate-chain",
        s(&chain),
        "--signature",
        s(&sig),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let started = Instant::now();
    let (code, problems, v) = verify_ours(&m, &sig, &pki.p("root.pem"), &[]);
    let took = started.elapsed();
    assert_eq!(
        (code, problems),
        (1, vec!["oms.certificate_untrusted".to_string()]),
        "{v}"
    );
    // Trying every ordering took minutes; the bound leaves room for a loaded machine.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    // Past 16 certificates a bundle is refused while it is read, before any signature is
    // checked.
    let many: Vec<&str> = loop_refs.iter().chain(loop_refs.iter()).copied().collect();
    let chain = pki.bundle_file("many.pem", &many);
    let sig = work.path().join("many.sig");
    let r = run([
        "sign-oms",
        s(&m),
        "--key",
        s(&pki.p("leaf.key")),
        "--signing-certificate",
        s(&pki.p("leaf.pem")),
        "--certificate-chain",
        s(&chain),
        "--signature",
        s(&sig),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (code, problems, v) = verify_ours(&m, &sig, &pki.p("root.pem"), &[]);
    assert_eq!((code, problems), (1, vec!["oms.malformed".to_string()]));
    let message = v["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains("more than 16 elements"), "{message}");
}
