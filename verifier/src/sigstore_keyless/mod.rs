//! Sigstore keyless `model.sig` bundles, verified offline against a trusted root, as the
//! Sigstore client spec and sigstore-python verify them: a time is established (Rekor's
//! integrated time under its signed entry timestamp, and each RFC 3161 timestamp of a trusted
//! timestamping authority, [`timestamp`]); the Rekor entry is proven in the log (its signed
//! entry timestamp, its inclusion proof and signed checkpoint, [`inclusion`], each checked
//! when present, one of them required) and records this very signature, payload and
//! certificate ([`rekor_body`]); the Fulcio certificate chains to one of the root's
//! certificate authorities at every established time; a trusted CT log signed a timestamp
//! embedded in it; its subject alternative name and OIDC issuer are ones the trust names; and
//! the certificate's key signed the DSSE payload (checked by the caller).

mod der;
mod inclusion;
mod rekor_body;
mod timestamp;

use weightgate_attest::keys::{
    ChainError, EcVerifyingKey, VerifiedChain, fulcio_issuer, verify_chain, verify_embedded_sct,
};
use weightgate_schemas::oms::{SigstoreMaterial, TlogEntry, decode_base64_lenient};

use crate::reason::ReasonCode;
use crate::trust::{LogKey, LogVerifyingKey, SigstoreRoot, SigstoreTrust};
use inclusion::{InclusionError, verify_inclusion};
use rekor_body::{EntryKind, check_body};

/// A keyless bundle that checked out.
#[derive(Debug, Clone)]
pub struct KeylessSigner {
    pub key: EcVerifyingKey,
    pub identity: String,
    pub issuer: String,
    /// The earliest established signing time (Unix seconds).
    pub signed_at: i64,
    /// Where each established time came from, e.g. "Rekor's integrated time 2025-...".
    pub times: Vec<String>,
    /// How the entry is proven in the log, e.g. "signed entry timestamp; inclusion proof ...".
    pub logged: String,
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

fn when(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or(t.to_string(), |t| t.to_string())
}

/// The signed entry timestamp: the log's signature over the entry's canonical JSON. Returns
/// the integrated time it vouches for.
fn check_set(entry: &TlogEntry, log: &LogKey, log_id: &[u8]) -> Result<i64, KeylessError> {
    let integrated = decimal(entry.integrated_time.as_deref(), "integratedTime")?;
    let log_index = decimal(entry.log_index.as_deref(), "logIndex")?;
    let body = entry
        .canonicalized_body
        .as_deref()
        .ok_or_else(|| tlog_error("the Rekor entry has no body"))?;
    if body.contains(['"', '\\']) {
        return Err(tlog_error("the Rekor entry's body is not base64"));
    }
    let set = b64(
        entry
            .inclusion_promise
            .as_ref()
            .and_then(|p| p.signed_entry_timestamp.as_deref()),
        "signed entry timestamp",
    )?;
    // RFC 8785 canonical JSON of the entry: keys sorted, no spaces.
    let canonical = format!(
        "{{\"body\":\"{body}\",\"integratedTime\":{integrated},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
        hex::encode(log_id)
    );
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
    Ok(integrated)
}

/// The log key of `log_id` that the root lists at time `t`.
fn log_at<'r>(root: &'r SigstoreRoot, log_id: &[u8], t: i64) -> Result<&'r LogKey, KeylessError> {
    root.tlogs
        .iter()
        .find(|l| l.log_id == log_id && l.valid_at(t))
        .ok_or_else(|| {
            tlog_error(format!(
                "the Rekor entry is from log {}, which the trusted root ({}) does not list at {}",
                hex::encode(log_id),
                root.name,
                when(t)
            ))
        })
}

/// Checks `material` (with the DSSE `payload` of `payload_type` and its `signature`) against
/// each trust in turn; the first that accepts it names the signer.
pub fn verify_keyless(
    material: &SigstoreMaterial,
    payload_type: &str,
    payload: &[u8],
    signature: &[u8],
    trusts: &[SigstoreTrust],
) -> Result<KeylessSigner, KeylessError> {
    let mut first_error = None;
    for trust in trusts {
        match verify_with(material, payload_type, payload, signature, trust) {
            Ok(s) => return Ok(s),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| tlog_error("no Sigstore trusted root configured")))
}

/// A time the bundle proves, and where it came from.
struct EstablishedTime {
    time: i64,
    source: String,
}

fn verify_with(
    material: &SigstoreMaterial,
    payload_type: &str,
    payload: &[u8],
    signature: &[u8],
    trust: &SigstoreTrust,
) -> Result<KeylessSigner, KeylessError> {
    let root = &trust.root;
    let entry = match material.tlog_entries.as_slice() {
        [entry] => entry,
        [] => return Err(tlog_error("the bundle has no Rekor entry")),
        _ => {
            return Err(tlog_error(
                "the bundle has more than one Rekor entry; a bundle proves one signature",
            ));
        }
    };
    let kv = entry.kind_version.as_ref();
    let kind = EntryKind::of(
        kv.and_then(|k| k.kind.as_deref()),
        kv.and_then(|k| k.version.as_deref()),
    )
    .ok_or_else(|| {
        tlog_error(format!(
            "the Rekor entry is of kind `{}` {}; a DSSE bundle's is `dsse` 0.0.1 (Rekor v1), `hashedrekord` or `dsse` 0.0.2 (Rekor v2)",
            kv.and_then(|k| k.kind.as_deref()).unwrap_or("?"),
            kv.and_then(|k| k.version.as_deref()).unwrap_or("?"),
        ))
    })?;
    let log_id = b64(
        entry.log_id.as_ref().and_then(|l| l.key_id.as_deref()),
        "logId",
    )?;
    let body = b64(entry.canonicalized_body.as_deref(), "body")?;

    // (0) Times: the integrated time under a signed entry timestamp, and RFC 3161 timestamps.
    let mut times = Vec::new();
    let mut logged = Vec::new();
    if entry.inclusion_promise.is_some() {
        if kind.is_rekor_v2() {
            return Err(tlog_error(
                "the Rekor v2 entry carries a signed entry timestamp, which Rekor v2 never issues",
            ));
        }
        let integrated = decimal(entry.integrated_time.as_deref(), "integratedTime")?;
        let log = log_at(root, &log_id, integrated)?;
        check_set(entry, log, &log_id)?;
        logged.push("signed entry timestamp".to_string());
        times.push(EstablishedTime {
            time: integrated,
            source: format!("Rekor's integrated time {}", when(integrated)),
        });
    }
    if !material.timestamps.is_empty() && root.timestamp_authorities.is_empty() {
        return Err(KeylessError::Refused(
            ReasonCode::OmsSigstoreTimestamp,
            format!(
                "the bundle carries RFC 3161 timestamps but the trusted root ({}) lists no timestamp authority",
                root.name
            ),
        ));
    }
    let mut timestamp_problems = Vec::new();
    for (i, response) in material.timestamps.iter().enumerate() {
        if material.timestamps[..i].contains(response) {
            return Err(KeylessError::Refused(
                ReasonCode::OmsSigstoreTimestamp,
                "the bundle carries the same RFC 3161 timestamp twice".into(),
            ));
        }
        match timestamp::verify_timestamp(response, signature, &root.timestamp_authorities) {
            Ok(t) => times.push(EstablishedTime {
                time: t.time,
                source: format!("RFC 3161 timestamp {} by {}", when(t.time), t.authority),
            }),
            Err(e) => timestamp_problems.push(format!("timestamp {}: {e}", i + 1)),
        }
    }
    if times.is_empty() {
        return Err(KeylessError::Refused(
            ReasonCode::OmsSigstoreTimestamp,
            if timestamp_problems.is_empty() {
                "the bundle proves no signing time: no signed entry timestamp and no RFC 3161 timestamp"
                    .to_string()
            } else {
                format!(
                    "the bundle proves no signing time: {}",
                    timestamp_problems.join("; ")
                )
            },
        ));
    }
    let signed_at = times.iter().map(|t| t.time).min().expect("not empty");

    // (4) The inclusion proof and its checkpoint, when present; Rekor v2 entries need one.
    match &entry.inclusion_proof {
        Some(proof) => {
            let log = log_at(root, &log_id, signed_at)?;
            let proven = verify_inclusion(proof, &body, log).map_err(|e| match e {
                InclusionError::Proof(m) => {
                    KeylessError::Refused(ReasonCode::OmsSigstoreInclusionProof, m)
                }
                InclusionError::Checkpoint(m) => {
                    KeylessError::Refused(ReasonCode::OmsSigstoreCheckpoint, m)
                }
            })?;
            logged.push(format!(
                "inclusion proof to the checkpoint of {} at tree size {}",
                proven.origin, proven.tree_size
            ));
        }
        None if logged.is_empty() => {
            return Err(KeylessError::Refused(
                ReasonCode::OmsSigstoreInclusionProof,
                "the Rekor entry has neither a signed entry timestamp nor an inclusion proof"
                    .into(),
            ));
        }
        None => {}
    }
    // (8) The entry records this signature, payload and certificate.
    check_body(
        kind,
        &body,
        payload_type,
        payload,
        signature,
        &material.certificate,
    )
    .map_err(tlog_error)?;

    // (1) The chain at every established time, to a CA of the root valid then.
    let mut verified: Option<(VerifiedChain, Vec<u8>)> = None;
    for established in &times {
        let t = established.time;
        let mut chain_error: Option<ChainError> = None;
        let mut found = None;
        for ca in &root.certificate_authorities {
            if !ca.valid_at(t) {
                continue;
            }
            let (anchor, intermediates) = ca.chain.split_last().expect("a CA has a certificate");
            let mut chain = vec![material.certificate.clone()];
            chain.extend(intermediates.iter().cloned());
            match verify_chain(&chain, std::slice::from_ref(anchor), t) {
                Ok(v) => {
                    found = Some((v, ca.chain[0].clone()));
                    break;
                }
                Err(e) => {
                    chain_error.get_or_insert(e);
                }
            }
        }
        match found {
            Some(f) => {
                verified.get_or_insert(f);
            }
            None => {
                return Err(match chain_error {
                    Some(error) => KeylessError::Chain {
                        root: root.name.clone(),
                        error,
                    },
                    None => KeylessError::Refused(
                        ReasonCode::OmsCertificateUntrusted,
                        format!(
                            "no certificate authority of {} was valid at the {}",
                            root.name, established.source
                        ),
                    ),
                });
            }
        }
    }
    let (chain, issuer_der) = verified.expect("times is not empty");
    // (2) The embedded SCT.
    verify_embedded_sct(
        &material.certificate,
        &issuer_der,
        &root.ct_keys_at(signed_at),
    )
    .map_err(|e| KeylessError::Refused(ReasonCode::OmsSigstoreSct, e.to_string()))?;
    // (3) Identity and issuer.
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
        signed_at,
        times: times.into_iter().map(|t| t.source).collect(),
        logged: logged.join("; "),
        // A Fulcio certificate's subject is empty: it is named by its identity.
        path: std::iter::once(matched.identity.clone())
            .chain(chain.path.iter().skip(1).cloned())
            .collect(),
        log_index: entry.log_index.clone().unwrap_or_default(),
    })
}
