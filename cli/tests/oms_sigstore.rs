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
log = lambda k, i: {"baseUrl": "https://log.test", "hashAlgorithm": "SHA2_256", "logId": {"keyId": b64(i)},
                    "publicKey": {"rawBytes": b64(spki(k)), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": "2020-01-01T00:00:00Z"}}}
chain = [{"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))} for c in (inter, root)]
trusted = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [log(rekor_k, rekor_id)],
           "certificateAuthorities": [{"uri": "https://fulcio.test", "certChain": {"certificates": chain}, "validFor": {"start": "2020-01-01T00:00:00Z"}}],
           "ctlogs": [log(ct_k, ct_id)], "timestampAuthorities": []}
if sys.argv[5:] == ["v2"]:
    # Rekor v2: the envelope logged as a hashedrekord 0.0.2 entry over the DSSE PAE, proven by
    # an RFC 6962 inclusion proof in a tree of 7 and a checkpoint signed (C2SP signed note) by
    # an Ed25519 log key; no signed entry timestamp, no integrated time. The time comes from an
    # RFC 3161 timestamp over the signature that OpenSSL's `ts -reply` makes as the TSA.
    import subprocess
    from cryptography.hazmat.primitives.asymmetric import ed25519
    body = json.dumps({"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
        "data": {"algorithm": "SHA2_256", "digest": b64(hashlib.sha256(pae).digest())},
        "signature": {"content": b64(sig), "verifier": {"keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                                          "x509Certificate": {"rawBytes": b64(der)}}}}}}, separators=(",", ":")).encode()
    mleaf = lambda d: hashlib.sha256(b"\x00" + d).digest()
    mnode = lambda l, r: hashlib.sha256(b"\x01" + l + r).digest()
    split = lambda n: 1 << ((n - 1).bit_length() - 1)
    def mth(ls):
        return ls[0] if len(ls) == 1 else mnode(mth(ls[:split(len(ls))]), mth(ls[split(len(ls)):]))
    def audit(ls, i):
        if len(ls) == 1:
            return []
        k = split(len(ls))
        return audit(ls[:k], i) + [mth(ls[k:])] if i < k else audit(ls[k:], i - k) + [mth(ls[:k])]
    index = 4
    leaves = [mleaf(b"entry %d" % i) for i in range(6)]
    leaves.insert(index, mleaf(body))
    tree_root = mth(leaves)
    log_k = ed25519.Ed25519PrivateKey.generate()
    log_id = hashlib.sha256(spki(log_k)).digest()
    note = "log.test\n%d\n%s\n" % (len(leaves), b64(tree_root))
    checkpoint = note + "\n\u2014 log.test %s\n" % b64(log_id[:4] + log_k.sign(note.encode()))
    entry = {"logIndex": str(index), "logId": {"keyId": b64(log_id)}, "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
             "inclusionProof": {"logIndex": str(index), "rootHash": b64(tree_root), "treeSize": str(len(leaves)),
                                "hashes": [b64(h) for h in audit(leaves, index)], "checkpoint": {"envelope": checkpoint}},
             "canonicalizedBody": b64(body)}
    tsa_root_k, tsa_k = key(), key()
    tsa_root = ca("tsa root", "tsa root", tsa_root_k, tsa_root_k, 0)
    tsa = (x509.CertificateBuilder().subject_name(name("tsa")).issuer_name(name("tsa root")).public_key(tsa_k.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(now - day).not_valid_after(now + 30 * day)
           .add_extension(usage(True, False), critical=True)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
           .sign(tsa_root_k, hashes.SHA256()))
    open(out + "/tsa.pem", "wb").write(tsa.public_bytes(serialization.Encoding.PEM))
    open(out + "/tsa.key", "wb").write(tsa_k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(out + "/signature.bin", "wb").write(sig)
    open(out + "/serial", "w").write("01\n")
    open(out + "/ts.cnf", "w").write("[tsa]\ndefault_tsa = t\n[t]\nserial = %s/serial\ndefault_policy = 1.2.3.4\n"
                                     "digests = sha256\nsigner_digest = sha256\ness_cert_id_alg = sha256\n" % out)
    subprocess.run(["openssl", "ts", "-query", "-data", out + "/signature.bin", "-sha256", "-cert", "-out", out + "/request.tsq"], check=True)
    subprocess.run(["openssl", "ts", "-reply", "-config", out + "/ts.cnf", "-queryfile", out + "/request.tsq", "-signer", out + "/tsa.pem",
                    "-inkey", out + "/tsa.key", "-out", out + "/response.tsr"], check=True, capture_output=True)
    bundle["verificationMaterial"]["tlogEntries"] = [entry]
    bundle["verificationMaterial"]["timestampVerificationData"] = {"rfc3161Timestamps": [
        {"signedTimestamp": b64(open(out + "/response.tsr", "rb").read())}]}
    trusted["tlogs"] = [{"baseUrl": "https://log.test", "hashAlgorithm": "SHA2_256", "logId": {"keyId": b64(log_id)},
                         "publicKey": {"rawBytes": b64(spki(log_k)), "keyDetails": "PKIX_ED25519", "validFor": {"start": "2020-01-01T00:00:00Z"}}}]
    trusted["timestampAuthorities"] = [{"subject": {"organization": "test.example", "commonName": "tsa"}, "certChain": {"certificates": [
        {"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))} for c in (tsa, tsa_root)]}, "validFor": {"start": "2020-01-01T00:00:00Z"}}]
json.dump(bundle, open(out + "/model.sig", "w"))
json.dump(trusted, open(out + "/trusted_root.json", "w"))
trusted["certificateAuthorities"] = []
json.dump(trusted, open(out + "/root_without_ca.json", "w"))
"#;

const IDENTITY: &str = "signer@lab.example";

/// A model signed keyless by a fresh instance (`v2`: Rekor v2 and an RFC 3161 timestamp):
/// returns the instance directory with model.sig, trusted_root.json and root_without_ca.json.
fn signed_by_instance(dir: &Path, model: &Path, rekor_v2: bool) -> std::path::PathBuf {
    let key = dir.join("k");
    assert_eq!(run(["keygen", "--out", s(&key), "--type", "p256"]).code, 0);
    let keyed = dir.join("keyed.sig");
    let r = run([
        "sign-oms",
        s(model),
        "--key",
        s(&dir.join("k.key")),
        "--signature",
        s(&keyed),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let keyed: Value = serde_json::from_slice(&fs::read(&keyed).unwrap()).unwrap();
    let payload = STANDARD
        .decode(keyed["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let payload_path = dir.join("payload.json");
    fs::write(&payload_path, &payload).unwrap();
    let instance = dir.join("instance");
    fs::create_dir(&instance).unwrap();
    let mut args = vec![
        "-c",
        INSTANCE,
        s(&instance),
        s(&payload_path),
        IDENTITY,
        ISSUER,
    ];
    if rekor_v2 {
        args.push("v2");
    }
    let out = Command::new(python()).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    instance
}
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
    let instance = signed_by_instance(dir.path(), &model, false);
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

#[test]
fn a_rekor_v2_bundle_is_proven_by_inclusion_proof_checkpoint_and_rfc3161_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    fs::create_dir(&model).unwrap();
    fs::write(model.join("weights.bin"), b"weights\n").unwrap();
    let instance = signed_by_instance(dir.path(), &model, true);
    let sig = instance.join("model.sig");
    let root = instance.join("trusted_root.json");
    let who = [
        "--trust-root",
        s(&root),
        "--identity",
        IDENTITY,
        "--issuer",
        ISSUER,
    ];

    let (code, problems, v) = verify(&model, &sig, &who);
    assert_eq!((code, problems), (0, vec![]), "{v}");
    let detail = v["checks"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains("RFC 3161 timestamp")
            && detail.contains("by tsa")
            && detail.contains("inclusion proof to the checkpoint of log.test at tree size 7")
            && !detail.contains("signed entry timestamp"),
        "{detail}"
    );

    let bundle: Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
    let edited = dir.path().join("edited.sig");
    let refused = |edit: &dyn Fn(&mut Value), trust_root: &Path| {
        let mut b = bundle.clone();
        edit(&mut b["verificationMaterial"]);
        fs::write(&edited, b.to_string()).unwrap();
        let (code, problems, v) = verify(
            &model,
            &edited,
            &[
                "--trust-root",
                s(trust_root),
                "--identity",
                IDENTITY,
                "--issuer",
                ISSUER,
            ],
        );
        assert_eq!(code, 1, "{v}");
        problems
    };
    // No timestamp: a Rekor v2 entry proves no time of its own.
    let no_time = refused(&|m| m["timestampVerificationData"] = json!({}), &root);
    assert_eq!(no_time, ["oms.sigstore_timestamp"]);
    // A timestamp over another signature.
    let other = refused(
        &|m| {
            let ts = &m["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"];
            let mut der = STANDARD.decode(ts.as_str().unwrap()).unwrap();
            // The last byte of the TSA's signature.
            let last = der.len() - 1;
            der[last] ^= 1;
            m["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"] =
                json!(STANDARD.encode(der));
        },
        &root,
    );
    assert_eq!(other, ["oms.sigstore_timestamp"]);
    // The same timestamp twice; two log entries for one signature.
    let twice = refused(
        &|m| {
            let ts = m["timestampVerificationData"]["rfc3161Timestamps"][0].clone();
            m["timestampVerificationData"]["rfc3161Timestamps"] = json!([ts.clone(), ts]);
        },
        &root,
    );
    assert_eq!(twice, ["oms.sigstore_timestamp"]);
    let two_entries = refused(
        &|m| {
            let e = m["tlogEntries"][0].clone();
            m["tlogEntries"] = json!([e.clone(), e]);
        },
        &root,
    );
    assert_eq!(two_entries, ["oms.sigstore_tlog"]);
    // A root without the timestamp authority.
    let mut trusted: Value = serde_json::from_slice(&fs::read(&root).unwrap()).unwrap();
    trusted["timestampAuthorities"] = json!([]);
    let no_tsa = dir.path().join("no_tsa.json");
    fs::write(&no_tsa, trusted.to_string()).unwrap();
    assert_eq!(refused(&|_| {}, &no_tsa), ["oms.sigstore_timestamp"]);
    // The audit path or the checkpoint tampered with; no proof at all.
    let proof = refused(
        &|m| {
            let p = &mut m["tlogEntries"][0]["inclusionProof"];
            p["logIndex"] = json!("5");
        },
        &root,
    );
    assert_eq!(proof, ["oms.sigstore_inclusion_proof"]);
    let checkpoint = refused(
        &|m| {
            let c = &mut m["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"];
            *c = json!(
                c.as_str()
                    .unwrap()
                    .replacen("log.test\n7", "log.test\n8", 1)
            );
        },
        &root,
    );
    assert_eq!(checkpoint, ["oms.sigstore_checkpoint"]);
    let unproven = refused(
        &|m| {
            m["tlogEntries"][0]
                .as_object_mut()
                .unwrap()
                .remove("inclusionProof");
        },
        &root,
    );
    assert_eq!(unproven, ["oms.sigstore_inclusion_proof"]);
    // The entry records another signature.
    let body = refused(
        &|m| {
            let e = &mut m["tlogEntries"][0];
            let text = STANDARD
                .decode(e["canonicalizedBody"].as_str().unwrap())
                .unwrap();
            let mut v: Value = serde_json::from_slice(&text).unwrap();
            v["spec"]["hashedRekordV002"]["signature"]["content"] = json!("AAAA");
            e["canonicalizedBody"] = json!(STANDARD.encode(v.to_string()));
        },
        &root,
    );
    // The changed body is no longer the proven leaf.
    assert_eq!(body, ["oms.sigstore_inclusion_proof"]);
}
