//! The attestation as a CycloneDX 1.6 ML-BOM (JSON): one `machine-learning-model` component
//! with every attested file as a `file` sub-component (SHA-256 and BLAKE3), the responsible
//! entity as manufacturer and supplier, the training compute and its estimation method in the
//! model card, the base model as pedigree, and the licence / notification / document
//! references and the attestation itself as external references.
//!
//! CycloneDX has no fields for compute, the LEI or the root digest: those are properties in a
//! `weightgate:` namespace (the spec's way to carry facts it does not model). The model is the
//! document's subject (`metadata.component`), with the package URL
//! `pkg:huggingface/ORG/NAME@COMMIT` when its Hub revision is known; whether the exporter
//! authenticated the envelope is stated. The document is deterministic: the same envelope (and
//! options) gives the same bytes, serial number included.

use serde_json::{Value, json};

use crate::dsse::Envelope;
use crate::reference::{Reference, ReferenceKind};
use crate::statement::Statement;

/// The CycloneDX specification version written.
pub const CYCLONEDX_SPEC_VERSION: &str = "1.6";

/// Seconds since the Unix epoch as RFC 3339 UTC, as CycloneDX `date-time` wants it.
fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn property(name: &str, value: impl ToString) -> Value {
    json!({ "name": format!("weightgate:{name}"), "value": value.to_string() })
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for URN parts and file names.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The contact as CycloneDX wants it: an e-mail address, a URL of the entity, or a name.
fn entity(st: &Statement) -> Value {
    let e = &st.entity;
    let mut v = json!({
        "name": e.legal_name,
        "address": { "country": e.country },
    });
    let c = e.contact.trim();
    let is_email = c.split('@').count() == 2
        && !c.starts_with('@')
        && !c.ends_with('@')
        && !c.contains(char::is_whitespace)
        && !c.contains(':');
    if c.starts_with("https://") || c.starts_with("http://") {
        v["url"] = json!([c]);
    } else if is_email {
        v["contact"] = json!([{ "email": c }]);
    } else if !c.is_empty() {
        v["contact"] = json!([{ "name": c }]);
    }
    v
}

fn external_reference(r: &Reference) -> Value {
    let kind = match r.kind {
        // Regulatory acts have no CycloneDX type of their own ("license" means a software
        // licence); published frameworks and reports are documentation.
        ReferenceKind::ExportLicence | ReferenceKind::Notification => "other",
        ReferenceKind::SafetyFramework | ReferenceKind::TransparencyReport => "documentation",
    };
    let is_url = r.number.starts_with("https://") || r.number.starts_with("http://");
    let url = if is_url && !r.number.contains(char::is_whitespace) {
        r.number.clone()
    } else {
        format!(
            "urn:weightgate:reference:{}:{}:{}",
            r.kind.as_str(),
            pct(&r.authority),
            pct(&r.number)
        )
    };
    let destinations = if r.destinations.is_empty() {
        "all destinations".to_string()
    } else {
        format!("destinations {}", r.destinations.join(", "))
    };
    let until = r.valid_until.map_or("open-ended".to_string(), |t| {
        format!("until {}", rfc3339(t))
    });
    let holder = r
        .holder
        .as_ref()
        .map_or(String::new(), |h| format!(", held by {h}"));
    json!({
        "type": kind,
        "url": url,
        "comment": format!(
            "{} {} by {}{holder}; valid from {}, {until}; {destinations}",
            r.kind.as_str(), r.number, r.authority, rfc3339(r.valid_from)
        ),
    })
}

/// What the BOM says about the envelope besides its statement.
pub struct BomSubject<'a> {
    /// The file name the envelope is published under.
    pub envelope_file: &'a str,
    /// SHA-256 of the envelope's bytes.
    pub envelope_sha256: &'a [u8; 32],
    /// Whether the exporter authenticated the envelope (false: exported `--unverified`).
    pub authenticated: bool,
    /// The Hugging Face repository id and 40-hex commit it is published as, for the package URL.
    pub huggingface: Option<(&'a str, &'a str)>,
}

/// The package URL of a Hugging Face model revision (purl-spec `huggingface` type: the
/// namespace and name as the Hub spells them, the version a commit id, lowercase).
pub fn huggingface_purl(repo_id: &str, commit: &str) -> String {
    let parts: Vec<String> = repo_id.split('/').map(pct).collect();
    format!(
        "pkg:huggingface/{}@{}",
        parts.join("/"),
        commit.to_lowercase()
    )
}

/// A serial number that identifies this document: a UUID (version 4 layout, as the 1.6 schema
/// wants one of versions 1-5) taken from the SHA-256 of what the document is made of, so the
/// same export gives the same bytes.
fn serial_number(envelope_sha256: &[u8; 32], purl: Option<&str>, authenticated: bool) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"weightgate cyclonedx serial\0");
    h.update(envelope_sha256);
    h.update(purl.unwrap_or("").as_bytes());
    h.update([u8::from(authenticated)]);
    let d: [u8; 32] = h.finalize().into();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// The ML-BOM for an attestation envelope (decoded as `envelope`) and its decoded statement.
/// The model is the BOM's subject (`metadata.component`).
pub fn cyclonedx_bom(envelope: &Envelope, st: &Statement, subject: &BomSubject) -> Value {
    let (envelope_file, envelope_sha256) = (subject.envelope_file, subject.envelope_sha256);
    let c = &st.compute;
    let mut compute = vec![
        property("compute:total_operations", c.total),
        property("compute:method", c.method.as_str()),
        property("compute:pre_training_operations", c.components.pre_training),
        property(
            "compute:post_training_operations",
            c.components.post_training,
        ),
        property(
            "compute:synthetic_data_operations",
            c.components.synthetic_data,
        ),
    ];
    let i = &c.inputs;
    let inputs: [(&str, Option<String>); 8] = [
        ("params_total", i.params_total.map(|v| v.to_string())),
        ("params_active", i.params_active.map(|v| v.to_string())),
        ("tokens", i.tokens.map(|v| v.to_string())),
        ("accelerator", i.accelerator.clone()),
        (
            "accelerator_count",
            i.accelerator_count.map(|v| v.to_string()),
        ),
        (
            "accelerator_hours",
            i.accelerator_hours.map(|v| v.to_string()),
        ),
        (
            "peak_flops_per_accelerator",
            i.peak_flops_per_accelerator.map(|v| v.to_string()),
        ),
        (
            "utilisation_permille",
            i.utilisation_permille.map(|v| v.to_string()),
        ),
    ];
    for (name, value) in inputs {
        if let Some(v) = value {
            compute.push(property(&format!("compute:inputs:{name}"), v));
        }
    }
    if let Some(ops) = c.components.base_model.as_ref().and_then(|b| b.ops) {
        compute.push(property("compute:base_model_operations", ops));
    }

    let files: Vec<Value> = st
        .subject
        .files
        .iter()
        .map(|f| {
            json!({
                "type": "file",
                "bom-ref": format!("file:{}", f.path),
                "name": f.path,
                "hashes": [
                    { "alg": "SHA-256", "content": f.sha256.to_hex() },
                    { "alg": "BLAKE3", "content": f.blake3.to_hex() },
                ],
                "properties": [property("file:size", f.size)],
            })
        })
        .collect();

    let mut properties = vec![
        property("subject:root_sha256", st.subject.root_sha256.to_hex()),
        property("model:open_weights", st.model.open_weights),
        property("entity:parent_country", &st.entity.parent_country),
        property("attestation:issued_at", rfc3339(st.issued_at)),
    ];
    if let Some(lei) = &st.entity.lei {
        properties.insert(2, property("entity:lei", lei));
    }
    if let Some(t) = st.expires_at {
        properties.push(property("attestation:expires_at", rfc3339(t)));
    }
    properties.push(property("attestation:authenticated", subject.authenticated));
    let purl = subject
        .huggingface
        .map(|(repo, commit)| huggingface_purl(repo, commit));

    let keyids: Vec<&str> = envelope
        .signatures
        .iter()
        .map(|s| s.keyid.as_str())
        .collect();
    let mut refs = vec![json!({
        "type": "attestation",
        "url": pct(envelope_file),
        "hashes": [{ "alg": "SHA-256", "content": hex::encode(envelope_sha256) }],
        "comment": if subject.authenticated {
            format!(
                "weightgate attestation (DSSE envelope in CBOR, Ed25519), signed by key id {}, authenticated by the exporter",
                keyids.join(", ")
            )
        } else {
            format!(
                "weightgate attestation (DSSE envelope in CBOR, Ed25519), claiming key id {}: NOT authenticated by the exporter (--unverified)",
                keyids.join(", ")
            )
        },
    })];
    refs.extend(st.references.iter().map(external_reference));

    let mut model = json!({
        "type": "machine-learning-model",
        "bom-ref": "model",
        "name": st.model.name,
        "version": st.model.version,
        "manufacturer": entity(st),
        "supplier": entity(st),
        "modelCard": { "properties": compute },
        "externalReferences": refs,
        "properties": properties,
        "components": files,
    });
    if let Some(p) = &purl {
        model["purl"] = json!(p);
    }
    if let Some(b) = &c.components.base_model {
        let mut base = vec![property("subject:root_sha256", b.root_sha256.to_hex())];
        if let Some(ops) = b.ops {
            base.push(property("compute:total_operations", ops));
        }
        if let Some(risk) = b.systemic_risk {
            base.push(property("base_model:systemic_risk", risk));
        }
        if let Some(a) = &b.attestation_sha256 {
            base.push(property("attestation:sha256", a.to_hex()));
        }
        model["pedigree"] = json!({
            "ancestors": [{
                "type": "machine-learning-model",
                "bom-ref": "base-model",
                "name": b.name,
                "properties": base,
            }],
        });
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": CYCLONEDX_SPEC_VERSION,
        "serialNumber": serial_number(envelope_sha256, purl.as_deref(), subject.authenticated),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(st.issued_at),
            "tools": { "components": [{
                "type": "application",
                "name": "weightgate",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "manufacturer": entity(st),
            "component": model,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_urls_name_the_repository_and_commit() {
        assert_eq!(
            huggingface_purl("Org/My.Model", "ABCDEF0123456789abcdef0123456789abcdef01"),
            "pkg:huggingface/Org/My.Model@abcdef0123456789abcdef0123456789abcdef01"
        );
        let a = serial_number(&[1; 32], None, true);
        assert_eq!(a, serial_number(&[1; 32], None, true));
        assert_ne!(a, serial_number(&[1; 32], None, false));
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a["urn:uuid:".len() + 14..][..1], "4");
    }

    #[test]
    fn urn_parts_are_percent_encoded() {
        assert_eq!(pct("US BIS/ECCN 4E091"), "US%20BIS%2FECCN%204E091");
        assert_eq!(pct("a-b.c_d~e"), "a-b.c_d~e");
    }
}
