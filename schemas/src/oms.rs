//! OpenSSF model signing (OMS v1.0) as `model_signing` 1.1.1 writes and reads it: a Sigstore
//! bundle v0.3 (JSON) around a DSSE envelope around an in-toto Statement v1 whose predicate
//! lists one SHA-256 digest per file. The root digest is SHA-256 over the raw file digests in
//! resource order, the same root a weightgate statement names. docs/format.md has the details.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
pub const OMS_PREDICATE_V1: &str = "https://model_signing/signature/v1.0";
/// A bundle larger than this is refused before parsing (a million files fit in about 150 MB
/// of JSON; 256 MiB leaves room and bounds memory).
pub const MAX_BUNDLE_LEN: usize = 256 << 20;

/// One signed file: its POSIX path relative to the model (`.` for a single-file model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsResource {
    pub name: String,
    pub sha256: [u8; 32],
}

/// What an OMS signature says about a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsManifest {
    /// Informational: the model folder's (or file's) name.
    pub subject_name: String,
    pub resources: Vec<OmsResource>,
    /// Paths the signer left out, which a verifier leaves out too.
    pub ignore_paths: Vec<String>,
    pub allow_symlinks: bool,
}

impl OmsManifest {
    /// SHA-256 over the raw resource digests in order: the model's root digest.
    pub fn root(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for r in &self.resources {
            h.update(r.sha256);
        }
        h.finalize().into()
    }

    /// The in-toto statement, compact JSON with sorted keys: the same manifest always gives
    /// the same bytes.
    pub fn statement_json(&self) -> Vec<u8> {
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|r| json!({ "name": r.name, "algorithm": "sha256", "digest": hex::encode(r.sha256) }))
            .collect();
        json!({
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [{ "name": self.subject_name, "digest": { "sha256": hex::encode(self.root()) } }],
            "predicateType": OMS_PREDICATE_V1,
            "predicate": {
                "serialization": {
                    "method": "files",
                    "hash_type": "sha256",
                    "allow_symlinks": self.allow_symlinks,
                    "ignore_paths": self.ignore_paths,
                },
                "resources": resources,
            },
        })
        .to_string()
        .into_bytes()
    }
}

/// What is wrong with a bundle or its statement; each maps to its own reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OmsError {
    #[error("bundle is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("bundle is not valid JSON: {0}")]
    NotJson(String),
    #[error("bundle: {0}")]
    Malformed(String),
    #[error("bundle media type `{0}` is not `{SIGSTORE_BUNDLE_V03}`")]
    MediaType(String),
    #[error("DSSE payload type `{0}` is not `{IN_TOTO_PAYLOAD_TYPE}`")]
    PayloadType(String),
    #[error("bundle carries no signature")]
    NoSignature,
    #[error(
        "bundle is certificate-based (Sigstore keyless or X.509); weightgate checks bundles signed with a key (`model_signing sign key`)"
    )]
    NotKeySigned,
    #[error("statement: {0}")]
    Statement(String),
    #[error("statement names {0} subjects; OpenSSF model signing allows exactly one")]
    Subjects(usize),
    #[error("{0} is not supported; weightgate checks `files` serialization with SHA-256")]
    Unsupported(String),
    #[error(
        "subject root sha256:{claimed} does not follow from the resources (they give sha256:{computed})"
    )]
    RootMismatch { claimed: String, computed: String },
}

/// A bundle decoded far enough to check its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsBundle {
    pub payload_type: String,
    /// The exact bytes the signature covers (through DSSE PAE).
    pub payload: Vec<u8>,
    /// `signatures[0].sig`; later signatures are not checked, as in the reference verifier.
    pub signature: Vec<u8>,
    /// `verificationMaterial.publicKey.hint`, when present and not empty.
    pub hint: Option<String>,
    /// `verificationMaterial.publicKey.rawBytes` (older releases), decoded.
    pub raw_public_key: Option<Vec<u8>>,
}

/// Base64 as protobuf JSON readers take it: standard or URL-safe, padded or not.
pub fn decode_base64_lenient(s: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str, ctx: &str) -> Result<&'a Value, OmsError> {
    obj.get(name)
        .ok_or_else(|| OmsError::Malformed(format!("{ctx}: `{name}` is missing")))
}

fn object<'a>(v: &'a Value, ctx: &str) -> Result<&'a Map<String, Value>, OmsError> {
    v.as_object()
        .ok_or_else(|| OmsError::Malformed(format!("{ctx} is not an object")))
}

fn string<'a>(v: &'a Value, ctx: &str) -> Result<&'a str, OmsError> {
    v.as_str()
        .ok_or_else(|| OmsError::Malformed(format!("{ctx} is not a string")))
}

/// Writes a bundle the way `model_signing sign key` does (compact JSON).
pub fn encode_bundle(payload: &[u8], signature_der: &[u8], hint: &str) -> Vec<u8> {
    json!({
        "mediaType": SIGSTORE_BUNDLE_V03,
        "verificationMaterial": { "publicKey": { "hint": hint }, "tlogEntries": [] },
        "dsseEnvelope": {
            "payload": STANDARD.encode(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{ "sig": STANDARD.encode(signature_der), "keyid": "" }],
        },
    })
    .to_string()
    .into_bytes()
}

/// Reads a bundle; accepts what older releases and other writers produce (no hint, a hint
/// or `rawBytes` in another form, `tlogEntries` and `keyid` missing or empty).
pub fn decode_bundle(bytes: &[u8]) -> Result<OmsBundle, OmsError> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(OmsError::TooLarge {
            len: bytes.len(),
            max: MAX_BUNDLE_LEN,
        });
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| OmsError::NotJson(e.to_string()))?;
    let top = object(&v, "bundle")?;
    let media_type = string(field(top, "mediaType", "bundle")?, "mediaType")?;
    if media_type != SIGSTORE_BUNDLE_V03 {
        return Err(OmsError::MediaType(media_type.to_string()));
    }
    let material = object(
        field(top, "verificationMaterial", "bundle")?,
        "verificationMaterial",
    )?;
    if material.contains_key("certificate") || material.contains_key("x509CertificateChain") {
        return Err(OmsError::NotKeySigned);
    }
    let (mut hint, mut raw_public_key) = (None, None);
    if let Some(pk) = material.get("publicKey") {
        let pk = object(pk, "verificationMaterial.publicKey")?;
        if let Some(h) = pk.get("hint") {
            let h = string(h, "publicKey.hint")?;
            if !h.is_empty() {
                hint = Some(h.to_string());
            }
        }
        if let Some(raw) = pk.get("rawBytes") {
            let raw = string(raw, "publicKey.rawBytes")?;
            raw_public_key =
                Some(decode_base64_lenient(raw).ok_or_else(|| {
                    OmsError::Malformed("publicKey.rawBytes is not base64".into())
                })?);
        }
    }
    let dsse = object(field(top, "dsseEnvelope", "bundle")?, "dsseEnvelope")?;
    let payload_type = string(field(dsse, "payloadType", "dsseEnvelope")?, "payloadType")?;
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(OmsError::PayloadType(payload_type.to_string()));
    }
    let payload = decode_base64_lenient(string(
        field(dsse, "payload", "dsseEnvelope")?,
        "dsseEnvelope.payload",
    )?)
    .ok_or_else(|| OmsError::Malformed("dsseEnvelope.payload is not base64".into()))?;
    let sigs = field(dsse, "signatures", "dsseEnvelope")?
        .as_array()
        .ok_or_else(|| OmsError::Malformed("dsseEnvelope.signatures is not a list".into()))?;
    let first = object(sigs.first().ok_or(OmsError::NoSignature)?, "signatures[0]")?;
    let signature = decode_base64_lenient(string(
        field(first, "sig", "signatures[0]")?,
        "signatures[0].sig",
    )?)
    .ok_or_else(|| OmsError::Malformed("signatures[0].sig is not base64".into()))?;
    Ok(OmsBundle {
        payload_type: payload_type.to_string(),
        payload,
        signature,
        hint,
        raw_public_key,
    })
}

fn statement_error(m: impl Into<String>) -> OmsError {
    OmsError::Statement(m.into())
}

fn hex32(s: &str, ctx: &str) -> Result<[u8; 32], OmsError> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return Err(statement_error(format!(
            "{ctx}: `{s}` is not a 64-digit hex SHA-256"
        )));
    }
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| statement_error(format!("{ctx}: `{s}` is not hex")))?;
    Ok(out)
}

/// Decodes the in-toto statement and checks that its root follows from its resources.
pub fn decode_statement(payload: &[u8]) -> Result<OmsManifest, OmsError> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| statement_error(format!("not valid JSON: {e}")))?;
    let st = v
        .as_object()
        .ok_or_else(|| statement_error("not a JSON object"))?;
    let get = |name: &str| {
        st.get(name)
            .ok_or_else(|| statement_error(format!("`{name}` is missing")))
    };
    let ty = get("_type")?.as_str().unwrap_or_default();
    if ty != IN_TOTO_STATEMENT_V1 {
        return Err(statement_error(format!(
            "`_type` `{ty}` is not `{IN_TOTO_STATEMENT_V1}`"
        )));
    }
    let predicate_type = get("predicateType")?.as_str().unwrap_or_default();
    if predicate_type != OMS_PREDICATE_V1 {
        return Err(OmsError::Unsupported(format!(
            "predicate type `{predicate_type}`"
        )));
    }
    let subjects = get("subject")?
        .as_array()
        .ok_or_else(|| statement_error("`subject` is not a list"))?;
    if subjects.len() != 1 {
        return Err(OmsError::Subjects(subjects.len()));
    }
    let subject_name = subjects[0]
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let claimed_root = subjects[0]
        .get("digest")
        .and_then(|d| d.get("sha256"))
        .and_then(Value::as_str)
        .ok_or_else(|| statement_error("subject has no sha256 digest"))?;
    let claimed_root = hex32(claimed_root, "subject digest")?;

    let predicate = get("predicate")?
        .as_object()
        .ok_or_else(|| statement_error("`predicate` is not an object"))?;
    let ser = predicate
        .get("serialization")
        .and_then(Value::as_object)
        .ok_or_else(|| statement_error("`predicate.serialization` is missing"))?;
    let method = ser
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if method != "files" {
        return Err(OmsError::Unsupported(format!(
            "serialization method `{method}`"
        )));
    }
    let hash_type = ser
        .get("hash_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if hash_type != "sha256" {
        return Err(OmsError::Unsupported(format!("hash type `{hash_type}`")));
    }
    let allow_symlinks = ser
        .get("allow_symlinks")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut ignore_paths = Vec::new();
    if let Some(list) = ser.get("ignore_paths") {
        let list = list
            .as_array()
            .ok_or_else(|| statement_error("`ignore_paths` is not a list"))?;
        for p in list {
            ignore_paths.push(
                p.as_str()
                    .ok_or_else(|| statement_error("an `ignore_paths` entry is not a string"))?
                    .to_string(),
            );
        }
    }
    let list = predicate
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| statement_error("`predicate.resources` is missing"))?;
    let mut resources = Vec::with_capacity(list.len());
    let mut seen = std::collections::HashSet::new();
    for (i, r) in list.iter().enumerate() {
        let ctx = format!("resource {i}");
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| statement_error(format!("{ctx}: no name")))?;
        let algorithm = r
            .get("algorithm")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if algorithm != "sha256" {
            return Err(OmsError::Unsupported(format!(
                "resource algorithm `{algorithm}` ({name})"
            )));
        }
        let digest = r
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| statement_error(format!("{ctx} ({name}): no digest")))?;
        if !seen.insert(name.to_string()) {
            return Err(statement_error(format!(
                "resource `{name}` is listed twice"
            )));
        }
        resources.push(OmsResource {
            name: name.to_string(),
            sha256: hex32(digest, &ctx)?,
        });
    }
    let manifest = OmsManifest {
        subject_name,
        resources,
        ignore_paths,
        allow_symlinks,
    };
    let root = manifest.root();
    if root != claimed_root {
        return Err(OmsError::RootMismatch {
            claimed: hex::encode(claimed_root),
            computed: hex::encode(root),
        });
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> OmsManifest {
        OmsManifest {
            subject_name: "m".into(),
            resources: vec![
                OmsResource {
                    name: "a/b".into(),
                    sha256: [1; 32],
                },
                OmsResource {
                    name: "a-b".into(),
                    sha256: [2; 32],
                },
            ],
            ignore_paths: vec![".git".into()],
            allow_symlinks: false,
        }
    }

    #[test]
    fn statement_and_bundle_round_trip() {
        let m = manifest();
        let payload = m.statement_json();
        assert_eq!(decode_statement(&payload).unwrap(), m);
        let bundle = encode_bundle(&payload, &[0x30, 0x01, 0x02], "abcd");
        let b = decode_bundle(&bundle).unwrap();
        assert_eq!(b.payload, payload);
        assert_eq!(b.signature, vec![0x30, 0x01, 0x02]);
        assert_eq!(b.hint.as_deref(), Some("abcd"));
    }

    #[test]
    fn bad_statements_are_named() {
        let m = manifest();
        let mut v: Value = serde_json::from_slice(&m.statement_json()).unwrap();
        v["subject"][0]["digest"]["sha256"] = json!(hex::encode([9u8; 32]));
        let e = decode_statement(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(e, OmsError::RootMismatch { .. }), "{e}");
        let two = v["subject"][0].clone();
        v["subject"] = json!([two.clone(), two]);
        assert_eq!(
            decode_statement(v.to_string().as_bytes()).unwrap_err(),
            OmsError::Subjects(2)
        );
        let mut v: Value = serde_json::from_slice(&m.statement_json()).unwrap();
        v["predicate"]["serialization"]["method"] = json!("shards");
        assert!(matches!(
            decode_statement(v.to_string().as_bytes()).unwrap_err(),
            OmsError::Unsupported(_)
        ));
    }

    #[test]
    fn bad_bundles_are_named() {
        let payload = manifest().statement_json();
        let good: Value = serde_json::from_slice(&encode_bundle(&payload, &[1], "")).unwrap();
        let mut v = good.clone();
        v["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.2");
        assert!(matches!(
            decode_bundle(v.to_string().as_bytes()),
            Err(OmsError::MediaType(_))
        ));
        let mut v = good.clone();
        v["dsseEnvelope"]["payloadType"] = json!("application/json");
        assert!(matches!(
            decode_bundle(v.to_string().as_bytes()),
            Err(OmsError::PayloadType(_))
        ));
        let mut v = good.clone();
        v["dsseEnvelope"]["signatures"] = json!([]);
        assert_eq!(
            decode_bundle(v.to_string().as_bytes()),
            Err(OmsError::NoSignature)
        );
        // Older writers: no hint, no tlogEntries, no keyid, unpadded base64.
        let mut v = good;
        v["verificationMaterial"] = json!({ "publicKey": {} });
        v["dsseEnvelope"]["signatures"] = json!([{ "sig": "AQ" }]);
        let b = decode_bundle(v.to_string().as_bytes()).unwrap();
        assert_eq!((b.hint, b.signature), (None, vec![1]));
        assert!(matches!(decode_bundle(b"[1,2"), Err(OmsError::NotJson(_))));
    }
}
