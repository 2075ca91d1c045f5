//! Sigstore keyless `model.sig` bundles verified offline (`verify-oms --sigstore`) against a
//! trusted root given with `--trust-root`. The test is its own Sigstore instance: Python's
//! `cryptography` (in the pinned venv) plays Fulcio (a root and an intermediate CA issuing a
//! short-lived certificate with the signer's email and OIDC issuer), the CT log (a signed
//! certificate timestamp embedded in the certificate, RFC 6962) and Rekor (a `dsse` entry and
//! its signed entry timestamp), and writes the `TrustedRoot` naming their keys.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{python, run};
use serde_json::{Value, json};

const INSTANCE: &str = r#"
import base64, datetime, hashlib, json, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

out, payload_path, identity, issuer = sys.argv[1:5]
payload = open(payload_path, "rb").read()
b64 = lambda b: base64.b64encode(b).decode()
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
day = datetime.timedelta(days=1)
key = lambda: ec.generate_private_key(ec.SECP256R1())
root_k, int_k, leaf_k, ct_k, rekor_k = key(), key(), key(), key(), key()
spki = lambda k: k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
name = lambda cn: x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test.example"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def usage(sign, cert_sign):
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False)
def ca(subject, issuer_name, k, signer, pathlen):
    return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer_name)).public_key(k.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - day).not_valid_after(now + 30 * day)
            .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
            .add_extension(usage(False, True), critical=True).sign(signer, hashes.SHA256()))
root, inter = ca("root", "root", root_k, root_k, 1), ca("intermediate", "root", int_k, root_k, 0)
serial = x509.random_serial_number()
issuer_ext = bytes([0x0C, len(issuer)]) + issuer.encode()
def leaf(extra=None):
    b = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(name("intermediate")).public_key(leaf_k.public_key())
         .serial_number(serial).not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(minutes=10))
         .add_extension(usage(True, False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
         .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity)]), critical=True)
         .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), issuer_ext), critical=False))
    if extra is not None:
        b = b.add_extension(extra, critical=False)
    return b.sign(int_k, hashes.SHA256())
# RFC 6962: the CT log signs the precertificate's TBS (the certificate without the SCT list).
tbs = leaf().tbs_certificate_bytes
ct_id = hashlib.sha256(spki(ct_k)).digest()
ts = int(now.timestamp() * 1000).to_bytes(8, "big")
signed = b"\x00\x00" + ts + b"\x00\x01" + hashlib.sha256(spki(int_k)).digest() + len(tbs).to_bytes(3, "big") + tbs + b"\x00\x00"
sct_sig = ct_k.sign(signed, ec.ECDSA(hashes.SHA256()))
sct = b"\x00" + ct_id + ts + b"\x00\x00" + b"\x04\x03" + len(sct_sig).to_bytes(2, "big") + sct_sig
scts = (len(sct) + 2).to_bytes(2, "big") + len(sct).to_bytes(2, "big") + sct
der_len = lambda n: bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else b"\x82" + n.to_bytes(2, "big")
octets = b"\x04" + der_len(len(scts))
cert = leaf(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"), octets + scts))
der = cert.public_bytes(serialization.Encoding.DER)
pem = cert.public_bytes(serialization.Encoding.PEM)
ptype = b"application/vnd.in-toto+json"
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
sig = leaf_k.sign(pae, ec.ECDSA(hashes.SHA256()))
body = json.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
    "envelopeHash": {"algorithm": "sha256", "value": "00" * 32},
    "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
    "signatures": [{"signature": b64(sig), "verifier": b64(pem)}]}}, separators=(",", ":")).encode()
rekor_id = hashlib.sha256(spki(rekor_k)).digest()
integrated = int(now.timestamp())
canonical = '{"body":"%s","integratedTime":%d,"logID":"%s","logIndex":7}' % (b64(body), integrated, rekor_id.hex())
entry = {"logIndex": "7", "logId": {"keyId": b64(rekor_id)}, "kindVersion": {"kind": "dsse", "version": "0.0.1"},
         "integratedTime": str(integrated), "inclusionPromise": {"signedEntryTimestamp": b64(rekor_k.sign(canonical.encode(), ec.ECDSA(hashes.SHA256())))},
         "canonicalizedBody": b64(body)}
bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
          "verificationMaterial": {"certificate": {"rawBytes": b64(der)}, "tlogEntries": [entry]},
          "dsseEnvelope": {"payload": b64(payload), "payloadType": ptype.decode(), "signatures": [{"sig": b64(sig)}]}}
json.dump(bundle, open(out + "/model.sig", "w"))
log = lambda k, i: {"baseUrl": "https://log.test", "hashAlgorithm": "SHA2_256", "logId": {"keyId": b64(i)},
                    "publicKey": {"rawBytes": b64(spki(k)), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": "2020-01-01T00:00:00Z"}}}
chain = [{"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))} for c in (inter, root)]
trusted = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [log(rekor_k, rekor_id)],
           "certificateAuthorities": [{"uri": "https://fulcio.test", "certChain": {"certificates": chain}, "validFor": {"start": "2020-01-01T00:00:00Z"}}],
           "ctlogs": [log(ct_k, ct_id)], "timestampAuthorities": []}
json.dump(trusted, open(out + "/trusted_root.json", "w"))
trusted["certificateAuthorities"] = []
json.dump(trusted, open(out + "/root_without_ca.json", "w"))
"#;

const IDENTITY: &str = "signer@lab.example";
const ISSUER: &str = "https://accounts.lab.example";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `verify-oms MODEL --sigstore ...`: (exit, problem codes).
fn verify(model: &Path, sig: &Path, extra: &[&str]) -> (i32, Vec<String>, Value) {
    let mut args = vec![
        "verify-oms",
        s(model),
        "--signature",
        s(sig),
        "--sigstore",
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

#[test]
fn keyless_bundles_verify_offline_against_the_trusted_root() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    fs::create_dir(&model).unwrap();
    fs::write(model.join("weights.bin"), b"weights\n").unwrap();
    // The statement a signer would sign: weightgate's own, from a key-signed bundle.
    let key = dir.path().join("k");
    assert_eq!(run(["keygen", "--out", s(&key), "--type", "p256"]).code, 0);
    let keyed = dir.path().join("keyed.sig");
    let r = run([
        "sign-oms",
        s(&model),
        "--key",
        s(&dir.path().join("k.key")),
        "--signature",
        s(&keyed),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let keyed: Value = serde_json::from_slice(&fs::read(&keyed).unwrap()).unwrap();
    let payload = STANDARD
        .decode(keyed["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let payload_path = dir.path().join("payload.json");
    fs::write(&payload_path, &payload).unwrap();
    let instance = dir.path().join("instance");
    fs::create_dir(&instance).unwrap();
    let out = Command::new(python())
        .args([
            "-c",
            INSTANCE,
            s(&instance),
            s(&payload_path),
            IDENTITY,
            ISSUER,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = instance.join("model.sig");
    let root = instance.join("trusted_root.json");
    let trust = ["--trust-root", s(&root)];
    let who = |identity: &'static str, issuer: &'static str| {
        let mut a = trust.to_vec();
        a.extend(["--identity", identity, "--issuer", issuer]);
        a
    };

    let (code, problems, v) = verify(&model, &sig, &who(IDENTITY, ISSUER));
    assert_eq!((code, problems), (0, vec![]), "{v}");
    assert_eq!(v["method"], "sigstore");
    let detail = v["checks"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains("CT timestamp verified") && detail.contains(ISSUER),
        "{detail}"
    );
    // Wrong identity, wrong issuer.
    let (_, problems, _) = verify(&model, &sig, &who("mallory@lab.example", ISSUER));
    assert_eq!(problems, ["oms.sigstore_identity"]);
    let (_, problems, _) = verify(&model, &sig, &who(IDENTITY, "https://evil.example"));
    assert_eq!(problems, ["oms.sigstore_issuer"]);
    // The public-good root (the default) does not know this instance's log.
    let (_, problems, _) = verify(&model, &sig, &["--identity", IDENTITY, "--issuer", ISSUER]);
    assert_eq!(problems, ["oms.sigstore_tlog"]);
    // A trust root without the signing CA.
    let no_ca = instance.join("root_without_ca.json");
    let (_, problems, _) = verify(
        &model,
        &sig,
        &[
            "--trust-root",
            s(&no_ca),
            "--identity",
            IDENTITY,
            "--issuer",
            ISSUER,
        ],
    );
    assert_eq!(problems, ["oms.certificate_untrusted"]);
    // A tampered Rekor entry: its time, or its body.
    let bundle: Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
    let tampered = dir.path().join("tampered.sig");
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    let time: i64 = entry["integratedTime"].as_str().unwrap().parse().unwrap();
    let mut later = bundle.clone();
    later["verificationMaterial"]["tlogEntries"][0]["integratedTime"] =
        json!((time + 1).to_string());
    let mut other_body = bundle.clone();
    other_body["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] =
        json!(STANDARD.encode(b"{\"kind\":\"dsse\"}"));
    for edited in [later, other_body] {
        fs::write(&tampered, edited.to_string()).unwrap();
        let (_, problems, _) = verify(&model, &tampered, &who(IDENTITY, ISSUER));
        assert_eq!(problems, ["oms.sigstore_tlog"]);
    }
    // A tampered file.
    fs::write(model.join("weights.bin"), b"tampered\n").unwrap();
    let (_, problems, _) = verify(&model, &sig, &who(IDENTITY, ISSUER));
    assert_eq!(problems, ["oms.digest_mismatch"]);
}

#[test]
fn a_policy_can_trust_a_sigstore_identity_for_model_sig() {
    let tiny = common::attested_tiny();
    let checkpoint = tiny.model.clone();
    let dir = tiny.dir.path();
    let key = dir.join("k");
    assert_eq!(run(["keygen", "--out", s(&key), "--type", "p256"]).code, 0);
    let keyed = dir.join("keyed.sig");
    let r = run([
        "sign-oms",
        s(&checkpoint),
        "--key",
        s(&dir.join("k.key")),
        "--signature",
        s(&keyed),
        "--ignore-paths",
        "weightgate.att",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let keyed: Value = serde_json::from_slice(&fs::read(&keyed).unwrap()).unwrap();
    let payload_path = dir.join("payload.json");
    fs::write(
        &payload_path,
        STANDARD
            .decode(keyed["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let instance = dir.join("instance");
    fs::create_dir(&instance).unwrap();
    let out = Command::new(python())
        .args([
            "-c",
            INSTANCE,
            s(&instance),
            s(&payload_path),
            IDENTITY,
            ISSUER,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::copy(instance.join("model.sig"), checkpoint.join("model.sig")).unwrap();
    let verdict = |identity: &str| {
        let policy = dir.join("policy.toml");
        fs::write(
            &policy,
            format!(
                "[policy]\nname = \"keyless\"\nrequire_model_signature = true\n\
                 [[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n\
                 [[model_signing_sigstore]]\nname = \"release workflow\"\nidentity = \"{identity}\"\n\
                 issuer = \"{ISSUER}\"\ntrust_root = \"instance/trusted_root.json\"\n",
                common::td("keys/test-lab.pub")
            ),
        )
        .unwrap();
        let r = run(["verify", s(&checkpoint), "--policy", s(&policy), "--json"]);
        (
            r.code,
            serde_json::from_str::<Value>(&r.stdout).unwrap_or(Value::Null),
            r.stderr,
        )
    };
    let (code, v, err) = verdict(IDENTITY);
    assert_eq!(code, 0, "{v}{err}");
    let (code, v, _) = verdict("someone-else@lab.example");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["reasons"][0]["code"], "oms.sigstore_identity", "{v}");

    // The same trust from `verify`'s own flags, with a policy that names no Sigstore signer.
    let keys_only = dir.join("keys-only.toml");
    fs::write(
        &keys_only,
        format!(
            "[policy]\nname = \"keys\"\n[[trusted_key]]\nname = \"lab\"\npath = \"{}\"\n",
            common::td("keys/test-lab.pub")
        ),
    )
    .unwrap();
    let root = instance.join("trusted_root.json");
    let flagged = |identity: &str| {
        let r = run([
            "verify",
            s(&checkpoint),
            "--policy",
            s(&keys_only),
            "--oms-sigstore",
            "--oms-identity",
            identity,
            "--oms-issuer",
            ISSUER,
            "--oms-trust-root",
            s(&root),
            "--json",
        ]);
        (
            r.code,
            serde_json::from_str::<Value>(&r.stdout).unwrap_or(Value::Null),
            r.stderr,
        )
    };
    let (code, v, err) = flagged(IDENTITY);
    assert_eq!(code, 0, "{v}{err}");
    let (code, v, _) = flagged("someone-else@lab.example");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["reasons"][0]["code"], "oms.sigstore_identity", "{v}");
}
