//! A Sigstore trusted root (the `TrustedRoot` JSON of protobuf-specs, as sigstore-python and
//! cosign ship it): the Fulcio certificate authorities, the Rekor transparency-log keys and the
//! certificate-transparency log keys, each with its validity window; and the identities a
//! keyless `model.sig` may be signed by. The build carries the public-good root; a file given
//! instead (a `TrustedRoot`, or a `ClientTrustConfig` holding one) replaces it.

use std::path::Path;

use serde::Deserialize;
use weightgate_attest::keys::{CtLogKey, EcVerifyingKey, KeyError};
use weightgate_schemas::oms::decode_base64_lenient;

/// The public-good instance's trusted root as sigstore-python 4.5.1 (PyPI) ships it
/// (`sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json`).
const PUBLIC_GOOD: &str = include_str!("sigstore_public_good_root.json");
/// Its date: the newest `validFor.start` it lists.
pub const PUBLIC_GOOD_DATE: &str = "2025-09-23";

/// A Fulcio certificate authority: its chain (issuing certificate first, root last) and when
/// it issued certificates (Unix seconds, end inclusive).
#[derive(Debug, Clone)]
pub struct FulcioCa {
    pub chain: Vec<Vec<u8>>,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
}

/// A timestamping authority (RFC 3161): its chain (the TSA certificate first, root last), a
/// name for messages, and when its timestamps count (Unix seconds, both ends included).
#[derive(Debug, Clone)]
pub struct TimestampAuthority {
    pub name: String,
    pub chain: Vec<Vec<u8>>,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
}

/// A transparency log's key, by log id.
#[derive(Debug, Clone)]
pub struct LogKey {
    pub log_id: Vec<u8>,
    pub key: LogVerifyingKey,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
}

/// The key types logs sign with.
#[derive(Debug, Clone)]
pub enum LogVerifyingKey {
    Ecdsa(EcVerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// Whether `t` falls in a validity window of the trusted root, both ends included (as
/// sigstore-go counts them).
fn within(t: i64, from: i64, until: Option<i64>) -> bool {
    t >= from && until.is_none_or(|end| t <= end)
}

impl LogKey {
    pub fn valid_at(&self, t: i64) -> bool {
        within(t, self.valid_from, self.valid_until)
    }
}

impl FulcioCa {
    pub fn valid_at(&self, t: i64) -> bool {
        within(t, self.valid_from, self.valid_until)
    }
}

impl TimestampAuthority {
    pub fn valid_at(&self, t: i64) -> bool {
        within(t, self.valid_from, self.valid_until)
    }
}

/// A parsed trusted root.
#[derive(Debug, Clone)]
pub struct SigstoreRoot {
    /// Where it came from (the file, or the public-good root and its date).
    pub name: String,
    pub certificate_authorities: Vec<FulcioCa>,
    pub tlogs: Vec<LogKey>,
    pub ctlogs: Vec<LogKey>,
    pub timestamp_authorities: Vec<TimestampAuthority>,
}

/// One identity a keyless bundle may be signed by: the certificate's subject alternative name
/// and the OIDC issuer that vouched for it, both exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreIdentity {
    pub identity: String,
    pub issuer: String,
}

/// A trusted root and the identities it vouches for.
#[derive(Debug, Clone)]
pub struct SigstoreTrust {
    pub root: SigstoreRoot,
    pub identities: Vec<SigstoreIdentity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    timestamp_authorities: Vec<RawCa>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    key_details: String,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
struct RawValidity {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    cert_chain: RawChain,
    valid_for: Option<RawValidity>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    subject: Option<RawSubject>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSubject {
    organization: Option<String>,
    common_name: Option<String>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

fn window(v: Option<&RawValidity>, name: &str) -> Result<(i64, Option<i64>), KeyError> {
    let parse = |s: &str| {
        s.parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .map_err(|e| weightgate_attest::keys::KeyError::Format {
                source_name: name.to_string(),
                problem: format!("validFor time `{s}`: {e}"),
            })
    };
    let start = match v.and_then(|v| v.start.as_deref()) {
        Some(s) => parse(s)?,
        None => i64::MIN,
    };
    let end = v.and_then(|v| v.end.as_deref()).map(parse).transpose()?;
    Ok((start, end))
}

fn log_key(raw: &RawLog, name: &str) -> Result<Option<LogKey>, KeyError> {
    let format = |problem: String| KeyError::Format {
        source_name: name.to_string(),
        problem,
    };
    let der = decode_base64_lenient(&raw.public_key.raw_bytes)
        .ok_or_else(|| format("a log key's rawBytes is not base64".into()))?;
    let log_id = decode_base64_lenient(&raw.log_id.key_id)
        .ok_or_else(|| format("a logId.keyId is not base64".into()))?;
    let key = match raw.public_key.key_details.as_str() {
        "PKIX_ECDSA_P256_SHA_256" | "PKIX_ECDSA_P384_SHA_384" | "PKIX_ECDSA_P521_SHA_512" => {
            LogVerifyingKey::Ecdsa(EcVerifyingKey::from_spki_der(&der, name)?)
        }
        "PKIX_ED25519" => {
            use ed25519_dalek::pkcs8::DecodePublicKey as _;
            LogVerifyingKey::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(&der)
                    .map_err(|e| format(format!("an Ed25519 log key: {e}")))?,
            )
        }
        // A key type no check here uses (e.g. RSA CT logs) is left out, not an error.
        _ => return Ok(None),
    };
    let (valid_from, valid_until) = window(raw.public_key.valid_for.as_ref(), name)?;
    Ok(Some(LogKey {
        log_id,
        key,
        valid_from,
        valid_until,
    }))
}

impl SigstoreRoot {
    /// Parses a `TrustedRoot` JSON document named `name`.
    pub fn parse(text: &str, name: &str) -> Result<Self, KeyError> {
        let format = |problem: String| KeyError::Format {
            source_name: name.to_string(),
            problem,
        };
        // A `ClientTrustConfig` (what `model_signing --trust_config` and cosign take) wraps
        // the trusted root under `trustedRoot`; either document is accepted.
        let mut value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format(format!("not a Sigstore trusted root: {e}")))?;
        if let Some(inner) = value.get_mut("trustedRoot") {
            value = inner.take();
        }
        let raw: RawRoot = serde_json::from_value(value)
            .map_err(|e| format(format!("not a Sigstore trusted root: {e}")))?;
        let mut cas = Vec::new();
        let mut tsas = Vec::new();
        for (i, ca) in raw
            .certificate_authorities
            .iter()
            .chain(&raw.timestamp_authorities)
            .enumerate()
        {
            let chain = ca
                .cert_chain
                .certificates
                .iter()
                .map(|c| {
                    decode_base64_lenient(&c.raw_bytes)
                        .ok_or_else(|| format("a CA certificate is not base64".into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if chain.is_empty() {
                return Err(format("a certificate authority has no certificate".into()));
            }
            let (valid_from, valid_until) = window(ca.valid_for.as_ref(), name)?;
            if i < raw.certificate_authorities.len() {
                cas.push(FulcioCa {
                    chain,
                    valid_from,
                    valid_until,
                });
                continue;
            }
            let subject = ca.subject.as_ref();
            let tsa_name = subject
                .and_then(|s| s.common_name.clone().or(s.organization.clone()))
                .or(ca.uri.clone())
                .unwrap_or_else(|| format!("timestamp authority {}", tsas.len() + 1));
            tsas.push(TimestampAuthority {
                name: tsa_name,
                chain,
                valid_from,
                valid_until,
            });
        }
        let logs = |list: &[RawLog]| -> Result<Vec<LogKey>, KeyError> {
            Ok(list
                .iter()
                .map(|l| log_key(l, name))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect())
        };
        Ok(SigstoreRoot {
            name: name.to_string(),
            certificate_authorities: cas,
            tlogs: logs(&raw.tlogs)?,
            ctlogs: logs(&raw.ctlogs)?,
            timestamp_authorities: tsas,
        })
    }

    /// The public-good root the build carries.
    pub fn public_good() -> Self {
        Self::parse(
            PUBLIC_GOOD,
            &format!("Sigstore public-good trusted root of {PUBLIC_GOOD_DATE}"),
        )
        .expect("the bundled trusted root parses")
    }

    /// A trusted-root file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text =
            weightgate_attest::io::read_capped_to_string(path, 1 << 20).map_err(|error| {
                KeyError::Read {
                    path: path.to_path_buf(),
                    error,
                }
            })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The CT log keys valid at `t`, as SCT checks take them.
    pub fn ct_keys_at(&self, t: i64) -> Vec<CtLogKey> {
        self.ctlogs
            .iter()
            .filter(|l| l.valid_at(t))
            .filter_map(|l| match &l.key {
                LogVerifyingKey::Ecdsa(k) => Some(CtLogKey {
                    log_id: l.log_id.clone(),
                    key: k.clone(),
                }),
                LogVerifyingKey::Ed25519(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_good_root_has_fulcio_rekor_and_ct_keys() {
        let root = SigstoreRoot::public_good();
        assert_eq!(root.certificate_authorities.len(), 2);
        assert!(root.tlogs.len() >= 2 && !root.ctlogs.is_empty());
        assert!(root.name.contains(PUBLIC_GOOD_DATE));
        let err = SigstoreRoot::parse("{\"tlogs\": 3}", "x").unwrap_err();
        assert!(
            err.to_string().contains("not a Sigstore trusted root"),
            "{err}"
        );
    }
}
