//! X.509 for the OpenSSF model-signing `certificate` method: reading PEM certificates, and
//! validating a bundle's chain (signing certificate first) up to trusted anchors.
//!
//! Path validation (RFC 5280 section 6, the parts a private PKI for model signing uses):
//! each certificate signed by the next (ECDSA P-256/P-384/P-521 with SHA-256/384/512), names
//! chained, every certificate on the path within its validity period at the given time,
//! issuers marked CA (basicConstraints) with keyCertSign when they state a key usage and
//! their path length respected, and no critical extension left unprocessed. The signing
//! certificate must allow signing as `model_signing` requires: key usage digitalSignature or
//! extended key usage codeSigning.

use std::path::Path;

use x509_cert::Certificate;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::{EcVerifyingKey, KeyError};

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// Longest chain tried: leaf, intermediates, anchor.
const MAX_PATH: usize = 8;

/// Why a chain is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("certificate {which}: not a DER X.509 certificate: {problem}")]
    Parse { which: String, problem: String },
    #[error("certificate {which} ({subject}) expired at {not_after}")]
    Expired {
        which: String,
        subject: String,
        not_after: String,
    },
    #[error("certificate {which} ({subject}) is not valid before {not_before}")]
    NotYetValid {
        which: String,
        subject: String,
        not_before: String,
    },
    #[error("the signing certificate ({0}) allows neither digitalSignature nor codeSigning")]
    NotForSigning(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the chain does not reach a trusted anchor: {0}")]
    NoPath(String),
}

/// A chain that checked out.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// The signing certificate's key: the one that must have signed the payload.
    pub signing_key: EcVerifyingKey,
    /// The signing certificate's subject (RFC 4514 text).
    pub subject: String,
    /// Its subject alternative names (email, URI, DNS).
    pub alt_names: Vec<String>,
    /// Subjects from the signing certificate up to the anchor.
    pub path: Vec<String>,
}

impl VerifiedChain {
    /// Whether `identity` names the signing certificate: its subject, its common name or one of
    /// its alternative names, exactly.
    pub fn has_identity(&self, identity: &str) -> bool {
        self.subject == identity
            || self.alt_names.iter().any(|n| n == identity)
            || self
                .subject
                .split(',')
                .any(|rdn| rdn.strip_prefix("CN=") == Some(identity))
    }
}

/// Every `CERTIFICATE` block of a PEM text, as DER.
fn certificates_from_pem(text: &[u8], source_name: &str) -> Result<Vec<Vec<u8>>, KeyError> {
    let format = |problem: String| KeyError::Format {
        source_name: source_name.to_string(),
        problem,
    };
    let certs = Certificate::load_pem_chain(text)
        .map_err(|e| format(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(format("no `BEGIN CERTIFICATE` block".into()));
    }
    certs
        .iter()
        .map(|c| c.to_der().map_err(|e| format(e.to_string())))
        .collect()
}

/// [`certificates_from_pem`] of a file.
pub fn load_certificates(path: &Path) -> Result<Vec<Vec<u8>>, KeyError> {
    let text = crate::io::read_capped(path, crate::io::MAX_KEY_FILE_LEN).map_err(|e| {
        KeyError::Format {
            source_name: path.display().to_string(),
            problem: format!("cannot read certificates: {e}"),
        }
    })?;
    certificates_from_pem(&text, &path.display().to_string())
}

/// The public key of a DER certificate (ECDSA P-256/P-384/P-521).
pub fn certificate_key(der: &[u8], which: &str) -> Result<EcVerifyingKey, ChainError> {
    let cert = parse(der, which)?;
    subject_key(&cert, which)
}

fn parse(der: &[u8], which: &str) -> Result<Certificate, ChainError> {
    Certificate::from_der(der).map_err(|e| ChainError::Parse {
        which: which.to_string(),
        problem: e.to_string(),
    })
}

fn subject_key(cert: &Certificate, which: &str) -> Result<EcVerifyingKey, ChainError> {
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| ChainError::Unsupported(e.to_string()))?;
    EcVerifyingKey::from_spki_der(&spki, which).map_err(|e| {
        ChainError::Unsupported(format!(
            "certificate {which} ({}): {e}",
            cert.tbs_certificate().subject()
        ))
    })
}

fn seconds_text(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.to_string())
}

/// One certificate's own checks: validity at `now` and no unknown critical extension.
fn check_alone(cert: &Certificate, which: &str, now: i64) -> Result<(), ChainError> {
    let tbs = cert.tbs_certificate();
    let subject = tbs.subject().to_string();
    let not_before = tbs.validity().not_before.to_unix_duration().as_secs() as i64;
    let not_after = tbs.validity().not_after.to_unix_duration().as_secs() as i64;
    if now < not_before {
        return Err(ChainError::NotYetValid {
            which: which.into(),
            subject,
            not_before: seconds_text(not_before),
        });
    }
    if now > not_after {
        return Err(ChainError::Expired {
            which: which.into(),
            subject,
            not_after: seconds_text(not_after),
        });
    }
    for e in tbs.extensions().map(|e| e.as_slice()).unwrap_or(&[]) {
        let known = [
            BASIC_CONSTRAINTS,
            KEY_USAGE,
            EXT_KEY_USAGE,
            SUBJECT_ALT_NAME,
        ];
        if e.critical && !known.contains(&e.extn_id) {
            return Err(ChainError::Unsupported(format!(
                "certificate {which} ({subject}) has critical extension {} that weightgate does not process",
                e.extn_id
            )));
        }
    }
    Ok(())
}

fn bad_extension(which: &str, what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Parse {
        which: which.into(),
        problem: format!("{what}: {e}"),
    }
}

/// Whether `issuer` may issue certificates with `below` intermediates under it.
fn check_issuer(issuer: &Certificate, which: &str, below: usize) -> Result<(), String> {
    let tbs = issuer.tbs_certificate();
    let bc = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| format!("{which}: basicConstraints: {e}"))?;
    match bc {
        Some((_, bc)) if bc.ca => {
            if let Some(max) = bc.path_len_constraint
                && below > max as usize
            {
                return Err(format!(
                    "{which} ({}) allows {max} intermediates below it, the path has {below}",
                    tbs.subject()
                ));
            }
        }
        _ => {
            return Err(format!(
                "{which} ({}) is not a CA certificate (basicConstraints cA)",
                tbs.subject()
            ));
        }
    }
    if let Some((_, ku)) = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| format!("{which}: keyUsage: {e}"))?
        && !ku.key_cert_sign()
    {
        return Err(format!(
            "{which} ({}) lacks key usage keyCertSign",
            tbs.subject()
        ));
    }
    Ok(())
}

/// Whether `issuer`'s key signed `cert`.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<bool, ChainError> {
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Ok(false);
    }
    let key = subject_key(issuer, "issuer")?;
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|e| ChainError::Unsupported(e.to_string()))?;
    let alg = cert.signature_algorithm().oid;
    let digest: Vec<u8> = if alg == ECDSA_SHA256 {
        <sha2::Sha256 as sha2::Digest>::digest(&tbs).to_vec()
    } else if alg == ECDSA_SHA384 {
        <sha2::Sha384 as sha2::Digest>::digest(&tbs).to_vec()
    } else if alg == ECDSA_SHA512 {
        <sha2::Sha512 as sha2::Digest>::digest(&tbs).to_vec()
    } else {
        return Err(ChainError::Unsupported(format!(
            "certificate {} is signed with algorithm {alg}; weightgate checks ECDSA with SHA-256/384/512",
            cert.tbs_certificate().subject()
        )));
    };
    let sig = cert.signature().as_bytes().unwrap_or_default();
    Ok(key.verify_prehash_der(&digest, sig).is_ok())
}

/// Validates `chain` (DER, the signing certificate first, then intermediates in any order) up
/// to one of `anchors` (DER) at Unix time `now`.
pub fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: i64,
) -> Result<VerifiedChain, ChainError> {
    let leaf_der = chain
        .first()
        .ok_or_else(|| ChainError::NoPath("the bundle has no certificate".into()))?;
    let leaf = parse(leaf_der, "1 (signing)")?;
    let intermediates = chain[1..]
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, &format!("{} (bundle chain)", i + 2)))
        .collect::<Result<Vec<_>, _>>()?;
    let anchors_parsed = anchors
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, &format!("anchor {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    if anchors_parsed.is_empty() {
        return Err(ChainError::NoPath("no trust anchor was given".into()));
    }
    check_alone(&leaf, "1 (signing)", now)?;
    let signing_key = subject_key(&leaf, "1 (signing)")?;
    let tbs = leaf.tbs_certificate();
    let ku = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| bad_extension("1", "keyUsage", e))?;
    let eku = tbs
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| bad_extension("1", "extKeyUsage", e))?;
    let may_sign = ku.is_some_and(|(_, k)| k.digital_signature())
        || eku.is_some_and(|(_, e)| e.0.contains(&CODE_SIGNING));
    if !may_sign {
        return Err(ChainError::NotForSigning(tbs.subject().to_string()));
    }
    let alt_names = tbs
        .get_extension::<SubjectAltName>()
        .map_err(|e| bad_extension("1", "subjectAltName", e))?
        .map(|(_, san)| {
            san.0
                .iter()
                .filter_map(|n| match n {
                    GeneralName::Rfc822Name(s)
                    | GeneralName::DnsName(s)
                    | GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();

    // Depth-first over the bundle's intermediates until an anchor signs the current one.
    let mut reasons = Vec::new();
    let mut path = vec![&leaf];
    if !extend(
        &mut path,
        &intermediates,
        &anchors_parsed,
        now,
        &mut reasons,
    )? {
        reasons.dedup();
        let why = if reasons.is_empty() {
            format!(
                "no anchor or bundle certificate is the issuer ({}) of {}",
                path.last()
                    .map_or(String::new(), |c| c.tbs_certificate().issuer().to_string()),
                tbs.subject()
            )
        } else {
            reasons.join("; ")
        };
        return Err(ChainError::NoPath(why));
    }
    Ok(VerifiedChain {
        signing_key,
        subject: tbs.subject().to_string(),
        alt_names,
        path: path
            .iter()
            .map(|c| c.tbs_certificate().subject().to_string())
            .collect(),
    })
}

/// Extends `path` to an anchor; `true` when one was reached (the anchor is appended).
fn extend<'a>(
    path: &mut Vec<&'a Certificate>,
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
    now: i64,
    reasons: &mut Vec<String>,
) -> Result<bool, ChainError> {
    let Some(&current) = path.last() else {
        return Ok(false);
    };
    // Intermediates between the leaf and the issuer being tried.
    let below = path.len() - 1;
    for (i, anchor) in anchors.iter().enumerate() {
        if anchor == current && path.len() > 1 {
            return Ok(true);
        }
        if signed_by(current, anchor)? {
            let which = format!("anchor {}", i + 1);
            check_alone(anchor, &which, now)?;
            match check_issuer(anchor, &which, below) {
                Ok(()) => {
                    path.push(anchor);
                    return Ok(true);
                }
                Err(why) => reasons.push(why),
            }
        }
    }
    if path.len() >= MAX_PATH {
        reasons.push(format!("no anchor within {MAX_PATH} certificates"));
        return Ok(false);
    }
    for (i, next) in intermediates.iter().enumerate() {
        if path.contains(&next) || !signed_by(current, next)? {
            continue;
        }
        let which = format!("{} (bundle chain)", i + 2);
        check_alone(next, &which, now)?;
        if let Err(why) = check_issuer(next, &which, below) {
            reasons.push(why);
            continue;
        }
        path.push(next);
        if extend(path, intermediates, anchors, now, reasons)? {
            return Ok(true);
        }
        path.pop();
    }
    Ok(false)
}
