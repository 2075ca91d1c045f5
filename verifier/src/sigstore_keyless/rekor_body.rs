//! That a Rekor entry's body records this DSSE envelope's signature by this certificate (the
//! consistency check against CVE-2022-36056). Three kinds of entry log a DSSE envelope:
//! Rekor v1's `dsse` 0.0.1 (the payload's SHA-256, each signature with the PEM certificate),
//! and Rekor v2's `hashedrekord` 0.0.2 (the digest of the envelope's PAE, the one signature
//! and the DER certificate; rekor-v2 spec 6.1.4, how sigstore-python and cosign log DSSE) and
//! `dsse` 0.0.2 (the payload digest, the signatures with their DER certificates).

use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use weightgate_schemas::oms::decode_base64_lenient;
use weightgate_schemas::pae;

/// The entry kinds this verifier reads, by `kindVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    DsseV001,
    HashedRekordV002,
    DsseV002,
}

impl EntryKind {
    pub fn of(kind: Option<&str>, version: Option<&str>) -> Option<Self> {
        match (kind?, version?) {
            ("dsse", "0.0.1") => Some(EntryKind::DsseV001),
            ("hashedrekord", "0.0.2") => Some(EntryKind::HashedRekordV002),
            ("dsse", "0.0.2") => Some(EntryKind::DsseV002),
            _ => None,
        }
    }

    /// Rekor v2 entries carry no integrated time and no signed entry timestamp.
    pub fn is_rekor_v2(self) -> bool {
        self != EntryKind::DsseV001
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    kind: String,
    api_version: Option<String>,
    spec: Spec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    // dsse 0.0.1
    payload_hash: Option<HashValue>,
    #[serde(default)]
    signatures: Vec<V001Signature>,
    // hashedrekord 0.0.2
    hashed_rekord_v002: Option<HashedRekordV002>,
    // dsse 0.0.2
    dsse_v002: Option<DsseV002>,
}

#[derive(Deserialize)]
struct HashValue {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct V001Signature {
    signature: String,
    verifier: String,
}

#[derive(Deserialize)]
struct HashOutput {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct HashedRekordV002 {
    data: HashOutput,
    signature: V002Signature,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseV002 {
    payload_hash: HashOutput,
    signatures: Vec<V002Signature>,
}

#[derive(Deserialize)]
struct V002Signature {
    content: String,
    verifier: V002Verifier,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V002Verifier {
    x509_certificate: Option<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

/// `SHA2_256` etc. (protobuf-specs `HashAlgorithm`) applied to `data`.
fn digest(algorithm: &str, data: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        "SHA2_256" => Some(Sha256::digest(data).to_vec()),
        "SHA2_384" => Some(Sha384::digest(data).to_vec()),
        "SHA2_512" => Some(Sha512::digest(data).to_vec()),
        _ => None,
    }
}

fn pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    decode_base64_lenient(body.trim())
}

fn v002_signed_by(s: &V002Signature, signature: &[u8], certificate: &[u8]) -> bool {
    decode_base64_lenient(&s.content).as_deref() == Some(signature)
        && s.verifier
            .x509_certificate
            .as_ref()
            .and_then(|c| decode_base64_lenient(&c.raw_bytes))
            .as_deref()
            == Some(certificate)
}

/// The entry's body records `signature` over `payload` (of `payload_type`) by `certificate`;
/// an error says what differs.
pub fn check_body(
    kind: EntryKind,
    body: &[u8],
    payload_type: &str,
    payload: &[u8],
    signature: &[u8],
    certificate: &[u8],
) -> Result<(), String> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| format!("the Rekor entry's body is not a Rekor entry: {e}"))?;
    let (want_kind, want_version) = match kind {
        EntryKind::DsseV001 => ("dsse", "0.0.1"),
        EntryKind::HashedRekordV002 => ("hashedrekord", "0.0.2"),
        EntryKind::DsseV002 => ("dsse", "0.0.2"),
    };
    if body.kind != want_kind
        || body
            .api_version
            .as_deref()
            .is_some_and(|v| v != want_version)
    {
        return Err(format!(
            "the Rekor entry's body is of kind `{}`, its kindVersion says `{want_kind}` {want_version}",
            body.kind
        ));
    }
    let other_payload = || "the Rekor entry records another payload than the bundle's".to_string();
    let other_signature =
        || "the Rekor entry records another signature or certificate than the bundle's".to_string();
    match kind {
        EntryKind::DsseV001 => {
            let payload_hash = hex::encode(Sha256::digest(payload));
            match &body.spec.payload_hash {
                Some(h)
                    if h.algorithm == "sha256" && h.value.eq_ignore_ascii_case(&payload_hash) => {}
                _ => return Err(other_payload()),
            }
            let recorded = body.spec.signatures.iter().any(|s| {
                decode_base64_lenient(&s.signature).as_deref() == Some(signature)
                    && decode_base64_lenient(&s.verifier)
                        .and_then(|pem| pem_certificate(&pem))
                        .as_deref()
                        == Some(certificate)
            });
            if !recorded {
                return Err(other_signature());
            }
        }
        EntryKind::HashedRekordV002 => {
            let entry = body
                .spec
                .hashed_rekord_v002
                .ok_or("the Rekor entry has no hashedRekordV002 spec")?;
            let expected = digest(&entry.data.algorithm, &pae(payload_type, payload))
                .ok_or_else(|| format!("the Rekor entry's digest is {}", entry.data.algorithm))?;
            if decode_base64_lenient(&entry.data.digest) != Some(expected) {
                return Err(other_payload());
            }
            if !v002_signed_by(&entry.signature, signature, certificate) {
                return Err(other_signature());
            }
        }
        EntryKind::DsseV002 => {
            let entry = body
                .spec
                .dsse_v002
                .ok_or("the Rekor entry has no dsseV002 spec")?;
            let expected = digest(&entry.payload_hash.algorithm, payload).ok_or_else(|| {
                format!(
                    "the Rekor entry's digest is {}",
                    entry.payload_hash.algorithm
                )
            })?;
            if decode_base64_lenient(&entry.payload_hash.digest) != Some(expected) {
                return Err(other_payload());
            }
            if !entry
                .signatures
                .iter()
                .any(|s| v002_signed_by(s, signature, certificate))
            {
                return Err(other_signature());
            }
        }
    }
    Ok(())
}
