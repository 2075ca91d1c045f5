//! Sigstore keyless `model.sig` bundles, verified offline against a trusted root: the Fulcio
//! certificate chains to one of the root's certificate authorities at the time the Rekor log
//! integrated the entry, a trusted CT log signed a timestamp embedded in it, its subject
//! alternative name and OIDC issuer are ones the trust names, the Rekor entry is signed by a
//! trusted log (signed entry timestamp) and records this very signature, payload and
//! certificate, and the certificate's key signed the DSSE payload.

use sha2::{Digest as _, Sha256};
use weightgate_attest::keys::{
    ChainError, EcVerifyingKey, VerifiedChain, fulcio_issuer, verify_chain, verify_embedded_sct,
};
use weightgate_schemas::oms::{SigstoreMaterial, TlogEntry, decode_base64_lenient};

use crate::reason::ReasonCode;
use crate::trust::{LogVerifyingKey, SigstoreRoot, SigstoreTrust};

/// A keyless bundle that checked out.
#[derive(Debug, Clone)]
pub struct KeylessSigner {
    pub key: EcVerifyingKey,
    pub identity: String,
    pub issuer: String,
    /// When Rekor integrated the entry (Unix seconds).
    pub integrated_time: i64,
    /// The path from the certificate to the Fulcio root.
    pub path: Vec<String>,
    pub log_index: String,
}

/// Why a keyless bundle is refused.
#[derive(Debug, Clone)]
pub enum KeylessError {
    /// The Fulcio certificate does not chain to the named root's CAs.
    Chain { root: String, error: ChainError },
    /// Any other check, with its reason code.
    Refused(ReasonCode, String),
}

fn tlog_error(m: impl Into<String>) -> KeylessError {
    KeylessError::Refused(ReasonCode::OmsSigstoreTlog, m.into())
}

fn b64(s: Option<&str>, what: &str) -> Result<Vec<u8>, KeylessError> {
    s.and_then(decode_base64_lenient)
        .ok_or_else(|| tlog_error(format!("the Rekor entry's {what} is missing or not base64")))
}

fn decimal(s: Option<&str>, what: &str) -> Result<i64, KeylessError> {
    s.and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| {
        tlog_error(format!(
            "the Rekor entry's {what} is missing or not a number"
        ))
    })
}

/// The Rekor `dsse` 0.0.1 body, the fields checked.
#[derive(serde::Deserialize)]
struct DsseBody {
    kind: String,
    spec: DsseSpec,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseSpec {
    payload_hash: Option<HashValue>,
    #[serde(default)]
    signatures: Vec<BodySignature>,
}

#[derive(serde::Deserialize)]
struct HashValue {
    algorithm: String,
    value: String,
}

#[derive(serde::Deserialize)]
struct BodySignature {
    signature: String,
    verifier: String,
}

/// The entry's body records this signature over this payload by this certificate.
fn check_body(
    body: &[u8],
    payload: &[u8],
    signature: &[u8],
    certificate: &[u8],
) -> Result<(), KeylessError> {
    let body: DsseBody = serde_json::from_slice(body)
        .map_err(|e| tlog_error(format!("the Rekor entry's body is not a dsse entry: {e}")))?;
    if body.kind != "dsse" {
        return Err(tlog_error(format!(
            "the Rekor entry is of kind `{}`; a DSSE bundle's is `dsse`",
            body.kind
        )));
    }
    let payload_hash = hex::encode(Sha256::digest(payload));
    match &body.spec.payload_hash {
        Some(h) if h.algorithm == "sha256" && h.value.eq_ignore_ascii_case(&payload_hash) => {}
        _ => {
            return Err(tlog_error(
                "the Rekor entry records another payload than the bundle's",
            ));
        }
    }
    let recorded = body.spec.signatures.iter().any(|s| {
        decode_base64_lenient(&s.signature).as_deref() == Some(signature)
            && decode_base64_lenient(&s.verifier)
                .and_then(|pem| pem_certificate(&pem))
                .as_deref()
                == Some(certificate)
    });
    if !recorded {
        return Err(tlog_error(
            "the Rekor entry records another signature or certificate than the bundle's",
        ));
    }
    Ok(())
}

fn pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    decode_base64_lenient(body.trim())
}

/// The signed entry timestamp: the log's signature over the entry's canonical JSON.
fn check_set(entry: &TlogEntry, root: &SigstoreRoot) -> Result<(i64, String), KeylessError> {
    let log_id = b64(
        entry.log_id.as_ref().and_then(|l| l.key_id.as_deref()),
        "logId",
    )?;
    let integrated = decimal(entry.integrated_time.as_deref(), "integratedTime")?;
    let log_index = decimal(entry.log_index.as_deref(), "logIndex")?;
    let body = entry
        .canonicalized_body
        .as_deref()
        .ok_or_else(|| tlog_error("the Rekor entry has no body"))?;
    let set = b64(
        entry
            .inclusion_promise
            .as_ref()
            .and_then(|p| p.signed_entry_timestamp.as_deref()),
        "signed entry timestamp",
    )?;
    let log = root
        .tlogs
        .iter()
        .find(|l| l.log_id == log_id && l.valid_at(integrated))
        .ok_or_else(|| {
            tlog_error(format!(
                "the Rekor entry is from log {}, which the trusted root ({}) does not list at its time",
                hex::encode(&log_id),
                root.name
            ))
        })?;
    // RFC 8785 canonical JSON of the entry: keys sorted, no spaces.
    let canonical = format!(
        "{{\"body\":\"{body}\",\"integratedTime\":{integrated},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
        hex::encode(&log_id)
    );
    if body.contains(['"', '\\']) {
        return Err(tlog_error("the Rekor entry's body is not base64"));
    }
    let ok = match &log.key {
        LogVerifyingKey::Ecdsa(k) => k.verify_der(canonical.as_bytes(), &set).is_ok(),
        LogVerifyingKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(&set)
            .is_ok_and(|s| k.verify_strict(canonical.as_bytes(), &s).is_ok()),
    };
    if !ok {
        return Err(tlog_error(
            "the Rekor entry's signed entry timestamp does not verify with the log's key",
        ));
    }
    Ok((integrated, log_index.to_string()))
}

/// Checks `material` (with the DSSE `payload` and `signature`) against each trust in turn;
/// the first that accepts it names the signer.
pub fn verify_keyless(
    material: &SigstoreMaterial,
    payload: &[u8],
    signature: &[u8],
    trusts: &[SigstoreTrust],
) -> Result<KeylessSigner, KeylessError> {
    let mut first_error = None;
    for trust in trusts {
        match verify_with(material, payload, signature, trust) {
            Ok(s) => return Ok(s),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| tlog_error("no Sigstore trusted root configured")))
}

fn verify_with(
    material: &SigstoreMaterial,
    payload: &[u8],
    signature: &[u8],
    trust: &SigstoreTrust,
) -> Result<KeylessSigner, KeylessError> {
    let root = &trust.root;
    let entry = material
        .tlog_entries
        .iter()
        .find(|e| e.kind_version.as_ref().and_then(|k| k.kind.as_deref()) == Some("dsse"))
        .ok_or_else(|| tlog_error("the bundle has no Rekor `dsse` entry"))?;
    let (integrated_time, log_index) = check_set(entry, root)?;
    let body = b64(entry.canonicalized_body.as_deref(), "body")?;
    check_body(&body, payload, signature, &material.certificate)?;
    // The chain at the integrated time, to a CA of the root valid then.
    let mut chain_error: Option<ChainError> = None;
    let mut verified: Option<(VerifiedChain, Vec<u8>)> = None;
    for ca in &root.certificate_authorities {
        if integrated_time < ca.valid_from || ca.valid_until.is_some_and(|e| integrated_time > e) {
            continue;
        }
        let (anchor, intermediates) = ca.chain.split_last().expect("a CA has a certificate");
        let mut chain = vec![material.certificate.clone()];
        chain.extend(intermediates.iter().cloned());
        match verify_chain(&chain, std::slice::from_ref(anchor), integrated_time) {
            Ok(v) => {
                let issuer = ca.chain[0].clone();
                verified = Some((v, issuer));
                break;
            }
            Err(e) => {
                chain_error.get_or_insert(e);
            }
        }
    }
    let Some((chain, issuer_der)) = verified else {
        return Err(match chain_error {
            Some(error) => KeylessError::Chain {
                root: root.name.clone(),
                error,
            },
            None => KeylessError::Refused(
                ReasonCode::OmsCertificateUntrusted,
                format!(
                    "no certificate authority of {} was valid when Rekor integrated the entry ({})",
                    root.name,
                    jiff::Timestamp::from_second(integrated_time)
                        .map_or(integrated_time.to_string(), |t| t.to_string())
                ),
            ),
        });
    };
    verify_embedded_sct(
        &material.certificate,
        &issuer_der,
        &root.ct_keys_at(integrated_time),
    )
    .map_err(|e| KeylessError::Refused(ReasonCode::OmsSigstoreSct, e.to_string()))?;
    let issuer = fulcio_issuer(&material.certificate).unwrap_or_default();
    let identities = &trust.identities;
    let matched = identities
        .iter()
        .find(|i| chain.alt_names.contains(&i.identity) && i.issuer == issuer);
    let Some(matched) = matched else {
        let san_ok = identities
            .iter()
            .any(|i| chain.alt_names.contains(&i.identity));
        let wanted = identities
            .iter()
            .map(|i| format!("{} from {}", i.identity, i.issuer))
            .collect::<Vec<_>>()
            .join(", ");
        let (code, what) = if san_ok {
            (
                ReasonCode::OmsSigstoreIssuer,
                format!("OIDC issuer `{issuer}`"),
            )
        } else {
            (
                ReasonCode::OmsSigstoreIdentity,
                format!("identity `{}`", chain.alt_names.join(", ")),
            )
        };
        return Err(KeylessError::Refused(
            code,
            format!("the Fulcio certificate names {what}, not one trusted ({wanted})"),
        ));
    };
    Ok(KeylessSigner {
        key: chain.signing_key.clone(),
        identity: matched.identity.clone(),
        issuer,
        integrated_time,
        // A Fulcio certificate's subject is empty: it is named by its identity.
        path: std::iter::once(matched.identity.clone())
            .chain(chain.path.iter().skip(1).cloned())
            .collect(),
        log_index,
    })
}
