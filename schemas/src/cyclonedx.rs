//! The attestation as a CycloneDX 1.6 ML-BOM (JSON): one `machine-learning-model` component
//! with every attested file as a `file` sub-component (SHA-256 and BLAKE3), the responsible
//! entity as manufacturer and supplier, the training compute and its estimation method in the
//! model card, the base model as pedigree, and the licence / notification / document
//! references and the attestation itself as external references.
//!
//! CycloneDX has no fields for compute, the LEI or the root digest: those are properties in a
//! `weightgate:` namespace (the spec's way to carry facts it does not model). The document is
//! deterministic: the same envelope gives the same bytes.

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

/// The ML-BOM for an attestation envelope (published under the file name `envelope_file`, whose
/// bytes have the SHA-256 `envelope_sha256`, decoded as `envelope`) and its decoded statement.
pub fn cyclonedx_bom(
    envelope: &Envelope,
    st: &Statement,
    envelope_file: &str,
    envelope_sha256: &[u8; 32],
) -> Value {
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

    let keyids: Vec<&str> = envelope
        .signatures
        .iter()
        .map(|s| s.keyid.as_str())
        .collect();
    let mut refs = vec![json!({
        "type": "attestation",
        "url": pct(envelope_file),
        "hashes": [{ "alg": "SHA-256", "content": hex::encode(envelope_sha256) }],
        "comment": format!(
            "weightgate attestation (DSSE envelope in CBOR, Ed25519), signed by key id {}",
            keyids.join(", ")
        ),
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
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(st.issued_at),
            "tools": { "components": [{
                "type": "application",
                "name": "weightgate",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "manufacturer": entity(st),
        },
        "components": [model],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_parts_are_percent_encoded() {
        assert_eq!(pct("US BIS/ECCN 4E091"), "US%20BIS%2FECCN%204E091");
        assert_eq!(pct("a-b.c_d~e"), "a-b.c_d~e");
    }
}
