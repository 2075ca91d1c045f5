//! OpenSSF model signing (OMS v1.0) as `model_signing` 1.1.1 writes and reads it: a Sigstore
//! bundle v0.3 (JSON) around a DSSE envelope around an in-toto Statement v1 whose predicate
//! lists one digest per file (`files`) or per byte range (`shards`), SHA-256, BLAKE2b or BLAKE3.
//! The root digest is SHA-256 over the raw resource digests in resource order; with SHA-256
//! files it is the same root a weightgate statement names. docs/format.md has the details.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

pub use crate::sigstore_bundle::{InclusionProof, TlogEntry};
use crate::sigstore_bundle::{PredicateTypeOnly, RawBundle, RawMaterial};

pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
pub const OMS_PREDICATE_V1: &str = "https://model_signing/signature/v1.0";
/// The deprecated predicate `model_signing` 0.2.0 wrote (OMS v1.0 §5.1 and §11): one
/// in-toto subject per file, no `serialization`, no root digest. Read, never written.
pub const OMS_PREDICATE_V0_2: &str = "https://model_signing/Digests/v0.1";
/// The other layouts 0.2.0's API offered (single digest, digest of digests, shards). Only
/// 0.2.0 itself reads them (not `model_signing` 1.x) and the spec names only `Digests/v0.1`:
/// refused by name.
const OTHER_V0_2_PREDICATES: &[&str] = &[
    "https://model_signing/Digest/v0.1",
    "https://model_signing/DigestOfDigests/v0.1",
    "https://model_signing/DigestOfShardDigests/v0.1",
    "https://model_signing/ShardDigests/v0.1",
];
/// A bundle larger than this is refused before parsing. `model_signing` writes about 280
/// bytes per resource (indented JSON, then base64): a sharded bundle of a 1,000-file model
/// is 272 KiB, and 16 MiB holds about 60,000 resources (60 TB at the default shard size).
pub const MAX_BUNDLE_LEN: usize = 16 << 20;

/// A file-hashing algorithm of the OMS algorithm registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OmsHashType {
    /// SHA-256 (FIPS 180-4), 32 bytes: required, the default.
    Sha256,
    /// BLAKE2b (RFC 7693) with its full 64-byte output.
    Blake2b,
    /// BLAKE3, 32 bytes.
    Blake3,
}

impl OmsHashType {
    /// The registry identifier (`hash_type`, resource `algorithm`).
    pub fn name(self) -> &'static str {
        match self {
            OmsHashType::Sha256 => "sha256",
            OmsHashType::Blake2b => "blake2b",
            OmsHashType::Blake3 => "blake3",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            OmsHashType::Blake2b => 64,
            OmsHashType::Sha256 | OmsHashType::Blake3 => 32,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            OmsHashType::Sha256,
            OmsHashType::Blake2b,
            OmsHashType::Blake3,
        ]
        .into_iter()
        .find(|h| h.name() == name)
    }
}

/// The spec's default shard size (1,000,000,000 bytes).
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;

/// How files map to resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OmsMethod {
    /// One resource per file.
    Files,
    /// One resource per `shard_size` byte range of each non-empty file, named `path:start:end`.
    Shards { shard_size: u64 },
}

/// One signed file or byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsResource {
    /// POSIX path relative to the model (`.` for a single-file model as `model_signing` writes
    /// it), followed by `:start:end` under shard serialization.
    pub name: String,
    /// Raw digest bytes, `hash_type` long.
    pub digest: Vec<u8>,
}

/// Which statement layout a manifest was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OmsStatementFormat {
    /// `https://model_signing/signature/v1.0`: OMS v1.0, what `model_signing` 0.3.1 and later
    /// (and weightgate) write.
    V1,
    /// `https://model_signing/Digests/v0.1` of `model_signing` 0.2.0: files only, no root
    /// digest, no ignore paths; its signature may use that release's PAE variant.
    Digests0_2,
}

/// What an OMS signature says about a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsManifest {
    pub format: OmsStatementFormat,
    /// Informational: the model folder's (or file's) name.
    pub subject_name: String,
    pub method: OmsMethod,
    pub hash_type: OmsHashType,
    pub resources: Vec<OmsResource>,
    /// Paths the signer left out, which a verifier leaves out too.
    pub ignore_paths: Vec<String>,
    pub allow_symlinks: bool,
}

/// Splits a shard resource name `path:start:end` at its last two colons (a path may hold
/// colons itself). `None` unless both ends are decimal and `start < end`.
pub fn split_shard_name(name: &str) -> Option<(&str, u64, u64)> {
    let (rest, end) = name.rsplit_once(':')?;
    let (path, start) = rest.rsplit_once(':')?;
    let decimal = |s: &str| {
        // Canonical decimal: the names are compared as text with the recomputed ones.
        (!s.is_empty()
            && s.len() <= 20
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse::<u64>().ok())
        .flatten()
    };
    let (start, end) = (decimal(start)?, decimal(end)?);
    (!path.is_empty() && start < end).then_some((path, start, end))
}

/// The byte ranges of a `len`-byte file under shard serialization: none for an empty file.
pub fn shard_ranges(len: u64, shard_size: u64) -> impl Iterator<Item = (u64, u64)> {
    let step = shard_size.max(1);
    (0..len.div_ceil(step)).map(move |i| (i * step, ((i + 1) * step).min(len)))
}

impl OmsManifest {
    /// SHA-256 over the raw resource digests in order: the model's root digest (SHA-256 even
    /// when the resources use another hash).
    pub fn root(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for r in &self.resources {
            h.update(&r.digest);
        }
        h.finalize().into()
    }

    /// The in-toto statement, compact JSON with sorted keys: the same manifest always gives
    /// the same bytes. `shard_size` is an integer, as the spec's schema has it. Always the
    /// v1.0 predicate, whatever `format` says: the spec forbids producing the 0.2 one.
    pub fn statement_json(&self) -> Vec<u8> {
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "algorithm": self.hash_type.name(),
                    "digest": hex::encode(&r.digest),
                })
            })
            .collect();
        let mut serialization = json!({
            "method": "files",
            "hash_type": self.hash_type.name(),
            "allow_symlinks": self.allow_symlinks,
            "ignore_paths": self.ignore_paths,
        });
        if let OmsMethod::Shards { shard_size } = self.method {
            serialization["method"] = json!("shards");
            serialization["shard_size"] = json!(shard_size);
        }
        json!({
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [{ "name": self.subject_name, "digest": { "sha256": hex::encode(self.root()) } }],
            "predicateType": OMS_PREDICATE_V1,
            "predicate": {
                "serialization": serialization,
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
    #[error("bundle is empty (zero bytes)")]
    Empty,
    #[error("bundle is not valid JSON: {0}")]
    NotJson(String),
    #[error("bundle: {0}")]
    Malformed(String),
    #[error("bundle media type `{0}` is not `{SIGSTORE_BUNDLE_V03}`")]
    MediaType(String),
    #[error("DSSE payload type `{0}` is not `{IN_TOTO_PAYLOAD_TYPE}`")]
    PayloadType(String),
    #[error("bundle carries no signature (`dsseEnvelope.signatures` is empty)")]
    NoSignature,
    #[error(
        "bundle was signed with Sigstore keyless signing (Fulcio certificate, Rekor log); weightgate checks the `key` and `certificate` methods"
    )]
    SigstoreKeyless,
    #[error(
        "bundle was signed with the `{found}` method (verification material `{material}`), not the `{expected}` method asked for"
    )]
    WrongMethod {
        found: &'static str,
        material: &'static str,
        expected: &'static str,
    },
    #[error("statement: {0}")]
    Statement(String),
    #[error("statement names {0} subjects; OpenSSF model signing allows exactly one")]
    Subjects(usize),
    #[error("{0} is not supported")]
    Unsupported(String),
    #[error(
        "subject root sha256:{claimed} does not follow from the resources (they give sha256:{computed})"
    )]
    RootMismatch { claimed: String, computed: String },
}

/// The key or certificates a bundle carries to identify its signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OmsMaterial {
    /// `key` method: `publicKey.hint` (when not empty) and/or `rawBytes` (older releases).
    PublicKey {
        hint: Option<String>,
        raw: Option<Vec<u8>>,
    },
    /// `certificate` method: DER certificates, leaf first.
    CertificateChain(Vec<Vec<u8>>),
    /// `sigstore` method: a Fulcio certificate and transparency-log entries.
    Sigstore(SigstoreMaterial),
}

impl OmsMaterial {
    /// The signing method's name in the spec.
    pub fn method(&self) -> &'static str {
        match self {
            OmsMaterial::PublicKey { .. } => "key",
            OmsMaterial::CertificateChain(_) => "certificate",
            OmsMaterial::Sigstore(_) => "sigstore",
        }
    }

    /// The verification-material field that names the method.
    pub fn field(&self) -> &'static str {
        match self {
            OmsMaterial::PublicKey { .. } => "publicKey",
            OmsMaterial::CertificateChain(_) => "x509CertificateChain",
            OmsMaterial::Sigstore(_) => "certificate",
        }
    }
}

/// What a Sigstore keyless bundle carries to prove its signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreMaterial {
    /// The Fulcio signing certificate, DER.
    pub certificate: Vec<u8>,
    pub tlog_entries: Vec<TlogEntry>,
    /// `timestampVerificationData.rfc3161Timestamps[].signedTimestamp`, DER `TimeStampResp`s.
    pub timestamps: Vec<Vec<u8>>,
}

/// A bundle decoded far enough to check its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmsBundle {
    pub payload_type: String,
    /// The exact bytes the signature covers (through DSSE PAE).
    pub payload: Vec<u8>,
    /// `signatures[0].sig`; later signatures are not checked, as in the reference verifier.
    pub signature: Vec<u8>,
    pub material: OmsMaterial,
}

impl OmsBundle {
    /// `verificationMaterial.publicKey.hint`, when present and not empty.
    pub fn hint(&self) -> Option<&str> {
        match &self.material {
            OmsMaterial::PublicKey { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// Base64 as protobuf JSON readers take it: standard or URL-safe, padded or not.
pub fn decode_base64_lenient(s: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

fn bundle_json(material: Value, payload: &[u8], signature_der: &[u8]) -> Vec<u8> {
    json!({
        "mediaType": SIGSTORE_BUNDLE_V03,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": STANDARD.encode(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{ "sig": STANDARD.encode(signature_der), "keyid": "" }],
        },
    })
    .to_string()
    .into_bytes()
}

/// Writes a bundle the way `model_signing sign key` does (compact JSON).
pub fn encode_bundle(payload: &[u8], signature_der: &[u8], hint: &str) -> Vec<u8> {
    bundle_json(
        json!({ "publicKey": { "hint": hint }, "tlogEntries": [] }),
        payload,
        signature_der,
    )
}

/// Writes a bundle the way `model_signing sign certificate` does: the signing certificate
/// then its chain, DER in base64.
pub fn encode_certificate_bundle(
    payload: &[u8],
    signature_der: &[u8],
    chain_der: &[Vec<u8>],
) -> Vec<u8> {
    let certificates: Vec<Value> = chain_der
        .iter()
        .map(|c| json!({ "rawBytes": STANDARD.encode(c) }))
        .collect();
    bundle_json(
        json!({ "x509CertificateChain": { "certificates": certificates }, "tlogEntries": [] }),
        payload,
        signature_der,
    )
}

fn base64_field(value: Option<&str>, ctx: &str) -> Result<Vec<u8>, OmsError> {
    let text = value.ok_or_else(|| OmsError::Malformed(format!("`{ctx}` is missing")))?;
    decode_base64_lenient(text)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| OmsError::Malformed(format!("{ctx} is not base64")))
}

fn decode_material(material: RawMaterial) -> Result<OmsMaterial, OmsError> {
    if let Some(chain) = material.x509_certificate_chain {
        let list = chain.certificates.ok_or_else(|| {
            OmsError::Malformed("x509CertificateChain: `certificates` is missing".into())
        })?;
        if list.is_empty() {
            return Err(OmsError::Malformed(
                "x509CertificateChain.certificates is empty".into(),
            ));
        }
        let certs = list
            .iter()
            .enumerate()
            .map(|(i, c)| {
                base64_field(
                    c.raw_bytes.as_deref(),
                    &format!("x509CertificateChain.certificates[{i}].rawBytes"),
                )
            })
            .collect::<Result<_, _>>()?;
        return Ok(OmsMaterial::CertificateChain(certs));
    }
    if let Some(cert) = material.certificate {
        let certificate = base64_field(cert.raw_bytes.as_deref(), "certificate.rawBytes")?;
        let timestamps = material
            .timestamp_verification_data
            .and_then(|t| t.rfc3161_timestamps)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                base64_field(
                    t.signed_timestamp.as_deref(),
                    &format!("timestampVerificationData.rfc3161Timestamps[{i}].signedTimestamp"),
                )
            })
            .collect::<Result<_, _>>()?;
        return Ok(OmsMaterial::Sigstore(SigstoreMaterial {
            certificate,
            tlog_entries: material.tlog_entries.unwrap_or_default(),
            timestamps,
        }));
    }
    let pk = material.public_key.ok_or_else(|| {
        OmsError::Malformed(
            "verificationMaterial has none of `publicKey`, `x509CertificateChain`, `certificate`"
                .into(),
        )
    })?;
    let hint = pk.hint.filter(|h| !h.is_empty());
    let raw = match pk.raw_bytes {
        Some(r) => Some(
            decode_base64_lenient(&r)
                .ok_or_else(|| OmsError::Malformed("publicKey.rawBytes is not base64".into()))?,
        ),
        None => None,
    };
    Ok(OmsMaterial::PublicKey { hint, raw })
}

/// Reads a bundle; accepts what older releases and other writers produce (no hint, a hint
/// or `rawBytes` in another form, `tlogEntries` and `keyid` missing, empty or null). The
/// JSON is checked against the bundle's shape while it is parsed ([`crate::sigstore_bundle`]):
/// members no check reads are skipped unkept, lists are bounded, nothing becomes a tree.
pub fn decode_bundle(bytes: &[u8]) -> Result<OmsBundle, OmsError> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(OmsError::TooLarge {
            len: bytes.len(),
            max: MAX_BUNDLE_LEN,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(OmsError::Empty);
    }
    // Syntax first, walking the document without keeping any of it.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| OmsError::NotJson(e.to_string()))?;
    // A struct would also read from a JSON array of its fields: only an object is a bundle.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(OmsError::Malformed("bundle is not a JSON object".into()));
    }
    let top: RawBundle =
        serde_json::from_slice(bytes).map_err(|e| OmsError::Malformed(e.to_string()))?;
    let media_type = top
        .media_type
        .ok_or_else(|| OmsError::Malformed("bundle: `mediaType` is missing".into()))?;
    if media_type != SIGSTORE_BUNDLE_V03 {
        return Err(OmsError::MediaType(media_type));
    }
    let material =
        decode_material(top.verification_material.ok_or_else(|| {
            OmsError::Malformed("bundle: `verificationMaterial` is missing".into())
        })?)?;
    let dsse = top.dsse_envelope.ok_or_else(|| {
        let why = if top.message_signature.is_some() {
            " (a message-signature bundle is not an OMS bundle)"
        } else {
            ""
        };
        OmsError::Malformed(format!("bundle has no `dsseEnvelope`{why}"))
    })?;
    let payload_type = dsse
        .payload_type
        .ok_or_else(|| OmsError::Malformed("dsseEnvelope: `payloadType` is missing".into()))?;
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(OmsError::PayloadType(payload_type));
    }
    let payload = decode_base64_lenient(
        dsse.payload
            .as_deref()
            .ok_or_else(|| OmsError::Malformed("dsseEnvelope: `payload` is missing".into()))?,
    )
    .ok_or_else(|| OmsError::Malformed("dsseEnvelope.payload is not base64".into()))?;
    let sigs = dsse
        .signatures
        .ok_or_else(|| OmsError::Malformed("dsseEnvelope: `signatures` is missing".into()))?;
    let first = sigs.into_iter().next().ok_or(OmsError::NoSignature)?;
    let signature = decode_base64_lenient(
        first
            .sig
            .as_deref()
            .ok_or_else(|| OmsError::Malformed("signatures[0]: `sig` is missing".into()))?,
    )
    .ok_or_else(|| OmsError::Malformed("signatures[0].sig is not base64".into()))?;
    Ok(OmsBundle {
        payload_type,
        payload,
        signature,
        material,
    })
}

fn statement_error(m: impl Into<String>) -> OmsError {
    OmsError::Statement(m.into())
}

fn hex_digest(s: &str, len: usize, algorithm: &str, ctx: &str) -> Result<Vec<u8>, OmsError> {
    if s.len() != 2 * len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(statement_error(format!(
            "{ctx}: `{}` is not a {}-digit hex {algorithm} digest",
            s.chars().take(200).collect::<String>(),
            2 * len
        )));
    }
    hex::decode(s).map_err(|_| statement_error(format!("{ctx}: digest is not hex")))
}

/// `shard_size` as a positive integer; `model_signing` writes it as a float (`1000000000.0`).
fn shard_size(v: Option<&Value>) -> Result<u64, OmsError> {
    let v = v.ok_or_else(|| statement_error("`serialization.shard_size` is missing for shards"))?;
    let n = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f < 9.0e15)
            .map(|f| f as u64)
    });
    n.filter(|&n| n > 0).ok_or_else(|| {
        statement_error(format!(
            "`serialization.shard_size` {v} is not a positive integer"
        ))
    })
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
    if predicate_type == OMS_PREDICATE_V0_2 {
        return decode_v0_2_statement(st);
    }
    if OTHER_V0_2_PREDICATES.contains(&predicate_type) {
        return Err(OmsError::Unsupported(format!(
            "predicate type `{predicate_type}` (a non-default layout of model_signing 0.2.0; of that release weightgate reads, as the spec allows, only `{OMS_PREDICATE_V0_2}`)"
        )));
    }
    if predicate_type != OMS_PREDICATE_V1 {
        return Err(OmsError::Unsupported(format!(
            "predicate type `{predicate_type}` (weightgate reads `{OMS_PREDICATE_V1}` and the deprecated `{OMS_PREDICATE_V0_2}`)"
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
    let claimed_root = hex_digest(claimed_root, 32, "sha256", "subject digest")?;

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
    let method = match method {
        "files" => OmsMethod::Files,
        "shards" => OmsMethod::Shards {
            shard_size: shard_size(ser.get("shard_size"))?,
        },
        other => {
            return Err(OmsError::Unsupported(format!(
                "serialization method `{other}` (OMS v1.0 has `files` and `shards`)"
            )));
        }
    };
    let hash_name = ser
        .get("hash_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let hash_type = OmsHashType::parse(hash_name).ok_or_else(|| {
        OmsError::Unsupported(format!(
            "hash type `{hash_name}` (the registry has sha256, blake2b, blake3)"
        ))
    })?;
    // `model_signing` names shard digests `sha256-sharded-<size>`; the spec names them as
    // `hash_type`. Both are read.
    let sharded_name = match method {
        OmsMethod::Shards { shard_size } => Some(format!("{hash_name}-sharded-{shard_size}")),
        OmsMethod::Files => None,
    };
    let allow_symlinks = match ser.get("allow_symlinks") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        // Python's compatibility path writes the string "false".
        Some(Value::String(s)) if s == "false" || s == "true" => s == "true",
        Some(other) => {
            return Err(statement_error(format!(
                "`serialization.allow_symlinks` {other} is not a boolean"
            )));
        }
    };
    let mut ignore_paths = Vec::new();
    if let Some(list) = ser.get("ignore_paths").filter(|l| !l.is_null()) {
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
        .ok_or_else(|| statement_error("`predicate.resources` is missing or not a list"))?;
    if list.is_empty() {
        return Err(statement_error(
            "`predicate.resources` is empty (a model has at least one file)",
        ));
    }
    let mut resources = Vec::with_capacity(list.len());
    let mut seen = std::collections::HashSet::new();
    for (i, r) in list.iter().enumerate() {
        let ctx = format!("resource {i}");
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| statement_error(format!("{ctx}: no name")))?;
        let algorithm = r
            .get("algorithm")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if algorithm != hash_name && Some(algorithm) != sharded_name.as_deref() {
            return Err(statement_error(format!(
                "resource `{name}`: algorithm `{algorithm}` differs from hash type `{hash_name}`"
            )));
        }
        if let OmsMethod::Shards { shard_size } = method {
            let (_, start, end) = split_shard_name(name).ok_or_else(|| {
                statement_error(format!(
                    "resource `{name}` is not `path:start:end` with start < end"
                ))
            })?;
            if start % shard_size != 0 || end - start > shard_size {
                return Err(statement_error(format!(
                    "resource `{name}` is not a {shard_size}-byte shard"
                )));
            }
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
            digest: hex_digest(digest, hash_type.digest_len(), hash_name, &ctx)?,
        });
    }
    let manifest = OmsManifest {
        format: OmsStatementFormat::V1,
        subject_name,
        method,
        hash_type,
        resources,
        ignore_paths,
        allow_symlinks,
    };
    let root = manifest.root();
    if root[..] != claimed_root[..] {
        return Err(OmsError::RootMismatch {
            claimed: hex::encode(claimed_root),
            computed: hex::encode(root),
        });
    }
    Ok(manifest)
}

/// The `predicateType` of a DSSE payload, read only to pick the PAE its signature may use
/// (nothing else is taken from the payload before the signature is checked).
pub fn payload_predicate_type(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<PredicateTypeOnly>(payload)
        .ok()?
        .predicate_type
}

/// What `model_signing` 0.2.0 signed instead of the DSSE PAE: it formatted the payload bytes
/// into a Python `str`, so the message is `DSSEV1 <len> <type> <len> ` followed by the
/// payload's Python `bytes` repr (`b'...'` with escapes). Its ECDSA hash was SHA-256 on every
/// curve. `model_signing` 1.x verifies these signatures the same way (`pae_compat`).
pub fn pae_model_signing_0_2(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    format!(
        "DSSEV1 {} {payload_type} {} {}",
        payload_type.len(),
        payload.len(),
        python_bytes_repr(payload)
    )
    .into_bytes()
}

/// CPython's `repr(bytes)`: single quotes unless the bytes hold `'` and no `"`; `\\`, the
/// quote, `\t`, `\n`, `\r` escaped; other bytes outside printable ASCII as `\xhh`.
fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if b == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote as char);
    out
}

/// The file-digest algorithm a 0.2.0 subject names in `annotations.actual_hash_algorithm`
/// (its file hashers call themselves `file-<hash>`); absent means SHA-256, as 0.2.0 says.
fn v0_2_hash_type(subject: &Value) -> Result<OmsHashType, OmsError> {
    let Some(a) = subject
        .get("annotations")
        .and_then(|a| a.get("actual_hash_algorithm"))
    else {
        return Ok(OmsHashType::Sha256);
    };
    let name = a.as_str().unwrap_or_default();
    match name.strip_prefix("file-").unwrap_or(name) {
        "sha256" => Ok(OmsHashType::Sha256),
        "blake2b" => Ok(OmsHashType::Blake2b),
        _ => Err(OmsError::Unsupported(format!(
            "model_signing 0.2 file digest `{a}` (it wrote `file-sha256` and `file-blake2b`)"
        ))),
    }
}

/// The `Digests/v0.1` statement of `model_signing` 0.2.0: each subject is a file (`.` for a
/// single-file model), its digest under `sha256` whatever `actual_hash_algorithm` says. There
/// is no root to check; resources are put in path-component order so the root computed from
/// them is the one OMS v1.0 (and a weightgate statement) gives for the same files.
fn decode_v0_2_statement(st: &Map<String, Value>) -> Result<OmsManifest, OmsError> {
    if !st.get("predicate").is_some_and(Value::is_object) {
        return Err(statement_error("`predicate` is missing or not an object"));
    }
    let subjects = st
        .get("subject")
        .and_then(Value::as_array)
        .ok_or_else(|| statement_error("`subject` is missing or not a list"))?;
    if subjects.is_empty() {
        return Err(statement_error(
            "`subject` is empty (a model_signing 0.2 statement lists each file as a subject)",
        ));
    }
    let hash_type = v0_2_hash_type(&subjects[0])?;
    let mut resources = Vec::with_capacity(subjects.len());
    let mut seen = std::collections::HashSet::new();
    for (i, subject) in subjects.iter().enumerate() {
        let ctx = format!("subject {i}");
        let name = subject
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| statement_error(format!("{ctx}: no name")))?;
        let this_hash = v0_2_hash_type(subject)?;
        if this_hash != hash_type {
            return Err(statement_error(format!(
                "subject `{name}`: file digest {} differs from the first subject's {}",
                this_hash.name(),
                hash_type.name()
            )));
        }
        let digest = subject
            .get("digest")
            .and_then(|d| d.get("sha256"))
            .and_then(Value::as_str)
            .ok_or_else(|| statement_error(format!("{ctx} ({name}): no `digest.sha256`")))?;
        if !seen.insert(name.to_string()) {
            return Err(statement_error(format!("subject `{name}` is listed twice")));
        }
        resources.push(OmsResource {
            name: name.to_string(),
            digest: hex_digest(digest, hash_type.digest_len(), hash_type.name(), &ctx)?,
        });
    }
    resources.sort_by(|a, b| a.name.split('/').cmp(b.name.split('/')));
    Ok(OmsManifest {
        format: OmsStatementFormat::Digests0_2,
        subject_name: String::new(),
        method: OmsMethod::Files,
        hash_type,
        resources,
        ignore_paths: Vec::new(),
        allow_symlinks: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> OmsManifest {
        OmsManifest {
            format: OmsStatementFormat::V1,
            subject_name: "m".into(),
            method: OmsMethod::Files,
            hash_type: OmsHashType::Sha256,
            resources: vec![
                OmsResource {
                    name: "a/b".into(),
                    digest: vec![1; 32],
                },
                OmsResource {
                    name: "a-b".into(),
                    digest: vec![2; 32],
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
        assert_eq!(b.hint(), Some("abcd"));
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
        v["predicate"]["serialization"]["method"] = json!("tensors");
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
        assert_eq!((b.hint(), &b.signature[..]), (None, &[1u8][..]));
        assert!(matches!(decode_bundle(b"[1,2"), Err(OmsError::NotJson(_))));
    }

    #[test]
    fn model_signing_0_2_pae_is_its_python_bytes_repr() {
        // Expected values printed by CPython 3.11 (`f"... {payload}".encode()`).
        let payload = b"{\"n\": \"it's \\u6a21\"}\n\x00\xff\t\r\x7f";
        assert_eq!(
            pae_model_signing_0_2(IN_TOTO_PAYLOAD_TYPE, payload),
            br#"DSSEV1 28 application/vnd.in-toto+json 26 b'{"n": "it\'s \\u6a21"}\n\x00\xff\t\r\x7f'"#
        );
        assert_eq!(python_bytes_repr(b"it's"), r#"b"it's""#);
        assert_eq!(python_bytes_repr(b"'\""), r#"b'\'"'"#);
    }

    fn v0_2_statement() -> Value {
        let subject = |name: &str, d: u8| {
            json!({
                "name": name,
                "digest": { "sha256": hex::encode([d; 32]) },
                "annotations": { "actual_hash_algorithm": "file-sha256" },
            })
        };
        json!({
            "_type": IN_TOTO_STATEMENT_V1,
            "subject": [subject("a.txt", 1), subject("a/b", 2), subject("a-b", 3)],
            "predicateType": OMS_PREDICATE_V0_2,
            "predicate": { "unused": "Unused, just passed due to API requirements" },
        })
    }

    #[test]
    fn model_signing_0_2_statements_decode_in_path_component_order() {
        let v = v0_2_statement();
        let m = decode_statement(v.to_string().as_bytes()).unwrap();
        assert_eq!(m.format, OmsStatementFormat::Digests0_2);
        let names: Vec<&str> = m.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a/b", "a-b", "a.txt"]);
        assert_eq!(
            (m.method, m.hash_type),
            (OmsMethod::Files, OmsHashType::Sha256)
        );
        assert_eq!(
            payload_predicate_type(v.to_string().as_bytes()).as_deref(),
            Some(OMS_PREDICATE_V0_2)
        );
        // No annotation means SHA-256; BLAKE2b digests sit under `sha256` too.
        let mut w = v.clone();
        w["subject"][0]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        decode_statement(w.to_string().as_bytes()).unwrap();
        let mut w = v.clone();
        for s in w["subject"].as_array_mut().unwrap() {
            s["annotations"]["actual_hash_algorithm"] = json!("file-blake2b");
            s["digest"]["sha256"] = json!(hex::encode([7u8; 64]));
        }
        assert_eq!(
            decode_statement(w.to_string().as_bytes())
                .unwrap()
                .hash_type,
            OmsHashType::Blake2b
        );
        type Edit = fn(&mut Value);
        let bad: [(&str, Edit); 7] = [
            ("empty subject", (|w| w["subject"] = json!([]))),
            (
                "no predicate",
                (|w| {
                    w.as_object_mut().unwrap().remove("predicate");
                }),
            ),
            ("duplicate", (|w| w["subject"][1]["name"] = json!("a.txt"))),
            (
                "short digest",
                (|w| w["subject"][1]["digest"]["sha256"] = json!("abcd")),
            ),
            (
                "mixed hashes",
                (|w| {
                    w["subject"][1]["annotations"]["actual_hash_algorithm"] = json!("file-blake2b")
                }),
            ),
            (
                "unknown hash",
                (|w| w["subject"][0]["annotations"]["actual_hash_algorithm"] = json!("file-md5")),
            ),
            ("no name", (|w| w["subject"][2]["name"] = json!(""))),
        ];
        for (what, edit) in bad {
            let mut w = v.clone();
            edit(&mut w);
            assert!(
                decode_statement(w.to_string().as_bytes()).is_err(),
                "{what}"
            );
        }
        let mut w = v;
        w["predicateType"] = json!("https://model_signing/ShardDigests/v0.1");
        let e = decode_statement(w.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(&e, OmsError::Unsupported(m) if m.contains("non-default layout")),
            "{e}"
        );
    }

    #[test]
    fn shard_names_split_at_the_last_two_colons() {
        assert_eq!(split_shard_name("a:b.bin:0:10"), Some(("a:b.bin", 0, 10)));
        assert_eq!(split_shard_name(".:5:6"), Some((".", 5, 6)));
        for bad in [
            "a.bin", "a:1", "a:2:1", "a:1:1", ":0:1", "a:-1:2", "a:0x1:2", "a:0:+2",
        ] {
            assert_eq!(split_shard_name(bad), None, "{bad}");
        }
        let r: Vec<_> = shard_ranges(25, 10).collect();
        assert_eq!(r, [(0, 10), (10, 20), (20, 25)]);
        assert_eq!(shard_ranges(0, 10).count(), 0);
        assert_eq!(shard_ranges(10, 10).collect::<Vec<_>>(), [(0, 10)]);
    }

    #[test]
    fn shard_and_hash_variants_decode() {
        let mut m = manifest();
        m.method = OmsMethod::Shards { shard_size: 10 };
        m.resources = vec![
            OmsResource {
                name: "w:0:10".into(),
                digest: vec![3; 64],
            },
            OmsResource {
                name: "w:10:15".into(),
                digest: vec![4; 64],
            },
        ];
        m.hash_type = OmsHashType::Blake2b;
        let payload = m.statement_json();
        assert_eq!(decode_statement(&payload).unwrap(), m);
        // model_signing's form: float shard size, `<hash>-sharded-<size>` algorithm.
        let mut v: Value = serde_json::from_slice(&payload).unwrap();
        v["predicate"]["serialization"]["shard_size"] = json!(10.0);
        for r in v["predicate"]["resources"].as_array_mut().unwrap() {
            r["algorithm"] = json!("blake2b-sharded-10");
        }
        assert_eq!(decode_statement(v.to_string().as_bytes()).unwrap(), m);
        for (field, value) in [
            ("shard_size", json!(0)),
            ("shard_size", json!(1.5)),
            ("shard_size", json!("10")),
            ("hash_type", json!("md5")),
        ] {
            let mut w = v.clone();
            w["predicate"]["serialization"][field] = value;
            assert!(
                decode_statement(w.to_string().as_bytes()).is_err(),
                "{field}"
            );
        }
        let mut w = v.clone();
        w["predicate"]["resources"][1]["name"] = json!("w:10:25");
        assert!(decode_statement(w.to_string().as_bytes()).is_err());
        let mut w = v.clone();
        w["predicate"]["resources"][1]["digest"] = json!(hex::encode([4u8; 32]));
        assert!(decode_statement(w.to_string().as_bytes()).is_err());
        let mut w = v;
        w["predicate"]["resources"] = json!([]);
        assert!(decode_statement(w.to_string().as_bytes()).is_err());
    }

    #[test]
    fn key_material_variants() {
        let payload = manifest().statement_json();
        let good: Value = serde_json::from_slice(&encode_bundle(&payload, &[1], "ab")).unwrap();
        for keyid in [json!(null), json!(""), json!("k")] {
            let mut v = good.clone();
            v["dsseEnvelope"]["signatures"][0]["keyid"] = keyid;
            decode_bundle(v.to_string().as_bytes()).unwrap();
        }
        let mut v = good.clone();
        v["verificationMaterial"] =
            json!({ "publicKey": { "rawBytes": "AQID", "keyDetails": "PKIX_ECDSA_P256_SHA_256" } });
        let b = decode_bundle(v.to_string().as_bytes()).unwrap();
        assert_eq!(
            b.material,
            OmsMaterial::PublicKey {
                hint: None,
                raw: Some(vec![1, 2, 3])
            }
        );
        let cert = encode_certificate_bundle(&payload, &[1], &[vec![7, 8], vec![9]]);
        let b = decode_bundle(&cert).unwrap();
        assert_eq!(
            b.material,
            OmsMaterial::CertificateChain(vec![vec![7, 8], vec![9]])
        );
        let mut v = good.clone();
        v["verificationMaterial"] =
            json!({ "certificate": { "rawBytes": "AQID" }, "tlogEntries": [{}] });
        assert_eq!(
            decode_bundle(v.to_string().as_bytes()).unwrap().material,
            OmsMaterial::Sigstore(SigstoreMaterial {
                certificate: vec![1, 2, 3],
                tlog_entries: vec![TlogEntry::default()],
                timestamps: vec![],
            })
        );
        let mut v = good;
        v.as_object_mut().unwrap().remove("dsseEnvelope");
        assert!(matches!(
            decode_bundle(v.to_string().as_bytes()),
            Err(OmsError::Malformed(_))
        ));
        assert_eq!(decode_bundle(b""), Err(OmsError::Empty));
    }

    /// A bundle's shape is checked while it is read: hostile documents under the size limit
    /// are refused at their first wrong member, long lists at their 17th element, and what no
    /// check reads is skipped without being kept.
    #[test]
    fn hostile_bundles_are_refused_while_parsing() {
        let zeros = format!("[{}0]", "0,".repeat(4 << 20));
        assert!(zeros.len() < MAX_BUNDLE_LEN);
        match decode_bundle(zeros.as_bytes()) {
            Err(OmsError::Malformed(m)) => assert_eq!(m, "bundle is not a JSON object"),
            other => panic!("{other:?}"),
        }
        let many_entries = format!(
            "{{\"mediaType\":\"{SIGSTORE_BUNDLE_V03}\",\"verificationMaterial\":{{\"certificate\":{{\"rawBytes\":\"AQID\"}},\"tlogEntries\":[{}{{}}]}}}}",
            "{},".repeat(1 << 20)
        );
        match decode_bundle(many_entries.as_bytes()) {
            Err(OmsError::Malformed(m)) => assert!(m.contains("more than 16"), "{m}"),
            other => panic!("{other:?}"),
        }
        // An unread member holding a large array is skipped, not kept.
        let payload = STANDARD.encode(b"{}");
        let ignored = format!(
            "{{\"mediaType\":\"{SIGSTORE_BUNDLE_V03}\",\"extra\":{zeros},\"verificationMaterial\":{{\"publicKey\":{{}}}},\"dsseEnvelope\":{{\"payload\":\"{payload}\",\"payloadType\":\"{IN_TOTO_PAYLOAD_TYPE}\",\"signatures\":[{{\"sig\":\"AQID\"}}]}}}}"
        );
        assert_eq!(decode_bundle(ignored.as_bytes()).unwrap().payload, b"{}");
        let over = vec![b' '; MAX_BUNDLE_LEN + 1];
        assert!(matches!(
            decode_bundle(&over),
            Err(OmsError::TooLarge { .. })
        ));
        assert_eq!(payload_predicate_type(zeros.as_bytes()), None);
    }
}
