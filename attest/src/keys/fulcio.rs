//! What a Fulcio (Sigstore) signing certificate says beyond RFC 5280: the OIDC issuer that
//! vouched for its subject (Fulcio's extensions under OID 1.3.6.1.4.1.57264.1), and the signed
//! certificate timestamps (RFC 6962 section 3.3) a certificate-transparency log embedded in it.

use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::der::asn1::{OctetString, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode as _, Encode as _};

use super::EcVerifyingKey;

/// The OIDC issuer, raw UTF-8 (deprecated, still written).
const ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// The OIDC issuer, a DER UTF8String.
const ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// RFC 6962 embedded SCT list.
const SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

/// The OIDC issuer a Fulcio certificate names, when it names one.
pub fn fulcio_issuer(cert_der: &[u8]) -> Option<String> {
    let cert = Certificate::from_der(cert_der).ok()?;
    let exts = cert.tbs_certificate().extensions()?;
    if let Some(e) = exts.iter().find(|e| e.extn_id == ISSUER_V2) {
        return Utf8StringRef::from_der(e.extn_value.as_bytes())
            .ok()
            .map(|s| s.as_str().to_string());
    }
    exts.iter()
        .find(|e| e.extn_id == ISSUER_V1)
        .and_then(|e| String::from_utf8(e.extn_value.as_bytes().to_vec()).ok())
}

/// A certificate-transparency log's key, by its log id (SHA-256 of the key's DER).
#[derive(Debug, Clone)]
pub struct CtLogKey {
    pub log_id: Vec<u8>,
    pub key: EcVerifyingKey,
}

/// Why no embedded SCT vouches for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SctError {
    #[error("the certificate embeds no signed certificate timestamp")]
    Missing,
    #[error("the embedded signed certificate timestamps are malformed: {0}")]
    Malformed(String),
    #[error("no embedded signed certificate timestamp is signed by a trusted CT log ({0})")]
    Untrusted(String),
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], SctError> {
    if data.len() < n {
        return Err(SctError::Malformed("truncated".into()));
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn take_u16(data: &mut &[u8]) -> Result<usize, SctError> {
    let b = take(data, 2)?;
    Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

/// Checks that a trusted CT log signed one of the SCTs embedded in `cert_der`, issued by the
/// certificate `issuer_der` (RFC 6962 section 3.2: the signature covers the precertificate's
/// TBS, which is the certificate's without the SCT list, and the issuer key's hash).
pub fn verify_embedded_sct(
    cert_der: &[u8],
    issuer_der: &[u8],
    logs: &[CtLogKey],
) -> Result<(), SctError> {
    let bad = |e: x509_cert::der::Error| SctError::Malformed(e.to_string());
    let cert = Certificate::from_der(cert_der).map_err(bad)?;
    let issuer = Certificate::from_der(issuer_der).map_err(bad)?;
    let exts = cert
        .tbs_certificate()
        .extensions()
        .ok_or(SctError::Missing)?;
    let ext = exts
        .iter()
        .find(|e| e.extn_id == SCT_LIST)
        .ok_or(SctError::Missing)?;
    let list = OctetString::from_der(ext.extn_value.as_bytes()).map_err(bad)?;
    let mut data = list.as_bytes();
    let total = take_u16(&mut data)?;
    let mut list = take(&mut data, total)?;
    // The precertificate TBS: the same fields with the SCT extension removed.
    let kept: Vec<x509_cert::ext::Extension> = exts
        .iter()
        .filter(|e| e.extn_id != SCT_LIST)
        .cloned()
        .collect();
    let tbs_der = tbs_with_extensions(&cert, &kept).map_err(bad)?;
    let spki = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(bad)?;
    let issuer_key_hash = Sha256::digest(&spki);
    let mut seen = Vec::new();
    while !list.is_empty() {
        let len = take_u16(&mut list)?;
        let mut sct = take(&mut list, len)?;
        let version = take(&mut sct, 1)?[0];
        let log_id = take(&mut sct, 32)?;
        let timestamp = take(&mut sct, 8)?;
        let ext_len = take_u16(&mut sct)?;
        let extensions = take(&mut sct, ext_len)?;
        let _hash_and_signature_algorithms = take(&mut sct, 2)?;
        let sig_len = take_u16(&mut sct)?;
        let signature = take(&mut sct, sig_len)?;
        seen.push(hex::encode(log_id));
        if version != 0 {
            continue;
        }
        let Some(log) = logs.iter().find(|l| l.log_id == log_id) else {
            continue;
        };
        let mut signed = vec![0u8, 0u8];
        signed.extend_from_slice(timestamp);
        signed.extend_from_slice(&[0, 1]);
        signed.extend_from_slice(&issuer_key_hash);
        let n = tbs_der.len();
        signed.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
        signed.extend_from_slice(&tbs_der);
        signed.extend_from_slice(&(ext_len as u16).to_be_bytes());
        signed.extend_from_slice(extensions);
        if log
            .key
            .verify_prehash_der(&Sha256::digest(&signed), signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(SctError::Untrusted(format!(
        "logs {}",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    )))
}

/// The certificate's TBS DER with its extensions (`[3]`) replaced by `extensions`: the TBS
/// is read as a sequence of opaque elements, so every other field keeps its exact bytes.
fn tbs_with_extensions(
    cert: &Certificate,
    extensions: &[x509_cert::ext::Extension],
) -> Result<Vec<u8>, x509_cert::der::Error> {
    use x509_cert::der::{Any, Tag, TagNumber, Tagged as _};
    let tbs = cert.tbs_certificate().to_der()?;
    let mut fields = Vec::<Any>::from_der(&tbs)?;
    let extensions_tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(3),
    };
    let list = extensions.to_vec().to_der()?;
    for f in &mut fields {
        if f.tag() == extensions_tag {
            *f = Any::new(extensions_tag, list.clone())?;
        }
    }
    fields.to_der()
}
