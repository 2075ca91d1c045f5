//! X.509 for the OpenSSF model-signing `certificate` method: reading PEM certificates, and
//! validating a bundle's chain (signing certificate first) up to trusted anchors.
//!
//! Path validation (RFC 5280 section 6, the parts a PKI for model signing uses): each
//! certificate signed by the next (ECDSA or RSA, [`super::certificate_signature`]), names
//! chained, every certificate on the path within its validity period at the given time,
//! issuers marked CA (basicConstraints) with keyCertSign when they state a key usage and their
//! path length respected, and no critical extension left unprocessed. The signing certificate
//! must allow signing: key usage digitalSignature where it lists key usages, extended key usage
//! codeSigning where it lists extended key usages (RFC 5280 4.2.1.12), and at least one of the
//! two, as `model_signing` requires. A signing certificate identical to an anchor is trusted
//! directly. The search is breadth-first over the bundle's certificates, each reached once at
//! its shortest depth (every constraint only tightens with depth), with every candidate
//! issuer tried and each signature checked at most once, so a hostile bundle costs at most
//! (certificates + anchors) squared signature checks.

use std::collections::HashMap;
use std::path::Path;

use x509_cert::Certificate;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::{DirectoryString, GeneralName};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::certificate_signature::IssuerKey;
use super::{EcVerifyingKey, KeyError};

const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// What the end certificate of a chain signs, which decides the extended key usage it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePurpose {
    /// Models and statements: codeSigning where it lists extended key usages.
    CodeSigning,
    /// RFC 3161 timestamps: timeStamping, which RFC 3161 2.3 makes mandatory.
    TimeStamping,
}
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// Most certificates a bundle may carry (signing certificate and intermediates). Real chains
/// have one to four; Fulcio's has two or three.
pub const MAX_BUNDLE_CERTIFICATES: usize = 16;
/// Longest path tried: signing certificate, intermediates, anchor.
pub const MAX_PATH: usize = 8;

/// Why a chain is not trusted; each kind has its own reason code in the verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("certificate {which}: not a DER X.509 certificate: {problem}")]
    Parse { which: String, problem: String },
    #[error(
        "the bundle carries {count} certificates; weightgate reads at most {MAX_BUNDLE_CERTIFICATES}"
    )]
    TooManyCertificates { count: usize },
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
    #[error("the signing certificate ({0}) {1}")]
    NotForSigning(String, &'static str),
    #[error(
        "the signing certificate ({subject}) lists extended key usages without codeSigning ({listed})"
    )]
    NotForCodeSigning { subject: String, listed: String },
    #[error(
        "certificate {which} ({subject}) has critical extension {oid} that weightgate does not process"
    )]
    CriticalExtension {
        which: String,
        subject: String,
        oid: String,
    },
    #[error("certificate {which} ({subject}): {problem}")]
    Algorithm {
        which: String,
        subject: String,
        problem: String,
    },
    #[error("certificate {which} ({subject}) is not a CA certificate (basicConstraints cA)")]
    NotCa { which: String, subject: String },
    #[error("certificate {which} ({subject}) lacks key usage keyCertSign")]
    NoCertSign { which: String, subject: String },
    #[error(
        "certificate {which} ({subject}) allows {max} intermediates below it, the path has {below}"
    )]
    PathLength {
        which: String,
        subject: String,
        max: u8,
        below: usize,
    },
    #[error("the chain does not reach a trusted anchor: {0}")]
    NoPath(String),
}

/// A chain that checked out.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// The signing certificate's key: the one that must have signed the payload.
    pub signing_key: EcVerifyingKey,
    /// The signing certificate's subject (RFC 4514 text, for messages only).
    pub subject: String,
    /// The values of its subject's common name attributes.
    pub common_names: Vec<String>,
    /// Its subject alternative names (email, URI, DNS).
    pub alt_names: Vec<String>,
    /// Subjects from the signing certificate up to the anchor.
    pub path: Vec<String>,
}

impl VerifiedChain {
    /// Whether `identity` names the signing certificate: exactly one of its alternative names,
    /// or the value of its common name when the subject has exactly one. Compared on the
    /// parsed attributes, never on the subject's text, so an `O` or `CN` holding `,CN=alice`
    /// is not `alice`.
    pub fn has_identity(&self, identity: &str) -> bool {
        self.alt_names.iter().any(|n| n == identity)
            || matches!(self.common_names.as_slice(), [cn] if cn == identity)
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
        .map_err(|e| algorithm(cert, which, e.to_string()))?;
    EcVerifyingKey::from_spki_der(&spki, which).map_err(|e| algorithm(cert, which, e.to_string()))
}

fn subject_of(cert: &Certificate) -> String {
    cert.tbs_certificate().subject().to_string()
}

fn algorithm(cert: &Certificate, which: &str, problem: String) -> ChainError {
    ChainError::Algorithm {
        which: which.into(),
        subject: subject_of(cert),
        problem,
    }
}

fn seconds_text(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.to_string())
}

/// One certificate's own checks: validity at `now` and no unknown critical extension.
fn check_alone(cert: &Certificate, which: &str, now: i64) -> Result<(), ChainError> {
    let tbs = cert.tbs_certificate();
    let not_before = tbs.validity().not_before.to_unix_duration().as_secs() as i64;
    let not_after = tbs.validity().not_after.to_unix_duration().as_secs() as i64;
    if now < not_before {
        return Err(ChainError::NotYetValid {
            which: which.into(),
            subject: subject_of(cert),
            not_before: seconds_text(not_before),
        });
    }
    if now > not_after {
        return Err(ChainError::Expired {
            which: which.into(),
            subject: subject_of(cert),
            not_after: seconds_text(not_after),
        });
    }
    let known = [
        BASIC_CONSTRAINTS,
        KEY_USAGE,
        EXT_KEY_USAGE,
        SUBJECT_ALT_NAME,
    ];
    for e in tbs.extensions().map(|e| e.as_slice()).unwrap_or(&[]) {
        if e.critical && !known.contains(&e.extn_id) {
            return Err(ChainError::CriticalExtension {
                which: which.into(),
                subject: subject_of(cert),
                oid: e.extn_id.to_string(),
            });
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
fn check_issuer(issuer: &Certificate, which: &str, below: usize) -> Result<(), ChainError> {
    let tbs = issuer.tbs_certificate();
    let bc = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| bad_extension(which, "basicConstraints", e))?;
    match bc {
        Some((_, bc)) if bc.ca => {
            if let Some(max) = bc.path_len_constraint
                && below > max as usize
            {
                return Err(ChainError::PathLength {
                    which: which.into(),
                    subject: subject_of(issuer),
                    max,
                    below,
                });
            }
        }
        _ => {
            return Err(ChainError::NotCa {
                which: which.into(),
                subject: subject_of(issuer),
            });
        }
    }
    if let Some((_, ku)) = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| bad_extension(which, "keyUsage", e))?
        && !ku.key_cert_sign()
    {
        return Err(ChainError::NoCertSign {
            which: which.into(),
            subject: subject_of(issuer),
        });
    }
    Ok(())
}

/// The signing certificate's own uses: RFC 5280 4.2.1.3 and 4.2.1.12.
fn check_signing_use(leaf: &Certificate, purpose: CertificatePurpose) -> Result<(), ChainError> {
    let tbs = leaf.tbs_certificate();
    let ku = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| bad_extension("1", "keyUsage", e))?;
    let eku = tbs
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| bad_extension("1", "extKeyUsage", e))?;
    if let Some((_, ku)) = &ku
        && !ku.digital_signature()
    {
        return Err(ChainError::NotForSigning(
            subject_of(leaf),
            "lists key usages without digitalSignature",
        ));
    }
    let (wanted, required) = match purpose {
        CertificatePurpose::CodeSigning => (CODE_SIGNING, false),
        CertificatePurpose::TimeStamping => (TIME_STAMPING, true),
    };
    if required && eku.is_none() {
        return Err(ChainError::NotForSigning(
            subject_of(leaf),
            "has no extended key usage timeStamping",
        ));
    }
    if let Some((_, eku)) = &eku
        && !eku.0.contains(&wanted)
    {
        if purpose == CertificatePurpose::TimeStamping {
            return Err(ChainError::NotForSigning(
                subject_of(leaf),
                "lists extended key usages without timeStamping",
            ));
        }
        return Err(ChainError::NotForCodeSigning {
            subject: subject_of(leaf),
            listed: eku
                .0
                .iter()
                .map(|o| eku_name(*o))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if ku.is_none() && eku.is_none() {
        return Err(ChainError::NotForSigning(
            subject_of(leaf),
            "states neither key usage digitalSignature nor extended key usage codeSigning",
        ));
    }
    Ok(())
}

fn eku_name(oid: ObjectIdentifier) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("1.3.6.1.5.5.7.3.1", "serverAuth"),
        ("1.3.6.1.5.5.7.3.2", "clientAuth"),
        ("1.3.6.1.5.5.7.3.3", "codeSigning"),
        ("1.3.6.1.5.5.7.3.4", "emailProtection"),
        ("1.3.6.1.5.5.7.3.8", "timeStamping"),
        ("1.3.6.1.5.5.7.3.9", "OCSPSigning"),
        ("2.5.29.37.0", "anyExtendedKeyUsage"),
    ];
    let text = oid.to_string();
    NAMES
        .iter()
        .find(|(o, _)| *o == text)
        .map_or(text, |(_, n)| n.to_string())
}

/// The values of the subject's common-name attributes (as many as the subject has).
fn common_names(cert: &Certificate) -> Vec<String> {
    cert.tbs_certificate()
        .subject()
        .iter()
        .filter(|atv| atv.oid == COMMON_NAME)
        // A value that is no directory string names nobody: it cannot match an identity.
        .map(|atv| {
            atv.value
                .decode_as::<DirectoryString>()
                .map(|d| d.value().into_owned())
                .unwrap_or_else(|_| "\u{fffd}".into())
        })
        .collect()
}

fn alt_names(cert: &Certificate) -> Result<Vec<String>, ChainError> {
    Ok(cert
        .tbs_certificate()
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
        .unwrap_or_default())
}

/// Validates `chain` (DER, the signing certificate first, then intermediates in any order) up
/// to one of `anchors` (DER) at Unix time `now`, for signing code.
pub fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: i64,
) -> Result<VerifiedChain, ChainError> {
    verify_chain_for(chain, anchors, now, CertificatePurpose::CodeSigning)
}

/// [`verify_chain`] for the end certificate's `purpose`.
pub fn verify_chain_for(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: i64,
    purpose: CertificatePurpose,
) -> Result<VerifiedChain, ChainError> {
    if chain.len() > MAX_BUNDLE_CERTIFICATES {
        return Err(ChainError::TooManyCertificates { count: chain.len() });
    }
    let leaf_der = chain
        .first()
        .ok_or_else(|| ChainError::NoPath("the bundle has no certificate".into()))?;
    let leaf = parse(leaf_der, "1 (signing)")?;
    let bundle = chain
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, &format!("{} (bundle chain)", i + 1)))
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
    check_signing_use(&leaf, purpose)?;
    let verified = |path: Vec<String>| -> Result<VerifiedChain, ChainError> {
        Ok(VerifiedChain {
            signing_key: signing_key.clone(),
            subject: subject_of(&leaf),
            common_names: common_names(&leaf),
            alt_names: alt_names(&leaf)?,
            path,
        })
    };
    // A signing certificate the trust list names itself is trusted as it is (RFC 5280 6.1: a
    // trust anchor's own extensions are not checked).
    if anchors.iter().any(|a| a == leaf_der) {
        return verified(vec![subject_of(&leaf)]);
    }
    let mut search = PathSearch {
        nodes: bundle,
        anchors: &anchors_parsed,
        now,
        signatures: HashMap::new(),
        keys: HashMap::new(),
        refusals: Vec::new(),
    };
    match search.run() {
        Some(path) => verified(path),
        None => Err(search.refusals.into_iter().next().unwrap_or_else(|| {
            ChainError::NoPath(format!(
                "no anchor or bundle certificate is the issuer ({}) of {}",
                leaf.tbs_certificate().issuer(),
                subject_of(&leaf)
            ))
        })),
    }
}

/// A certificate on a path: one of the bundle's, or an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Node {
    Bundle(usize),
    Anchor(usize),
}

/// Breadth-first path search from the signing certificate (`nodes[0]`) to an anchor.
struct PathSearch<'a> {
    nodes: Vec<Certificate>,
    anchors: &'a [Certificate],
    now: i64,
    /// (child, issuer) -> whether the issuer's key signed the child.
    signatures: HashMap<(usize, Node), bool>,
    keys: HashMap<Node, Result<IssuerKey, String>>,
    /// Why a certificate that signed the one below it could not be its issuer, first first.
    refusals: Vec<ChainError>,
}

impl PathSearch<'_> {
    fn cert(&self, n: Node) -> &Certificate {
        match n {
            Node::Bundle(i) => &self.nodes[i],
            Node::Anchor(i) => &self.anchors[i],
        }
    }

    fn which(n: Node) -> String {
        match n {
            Node::Bundle(i) => format!("{} (bundle chain)", i + 1),
            Node::Anchor(i) => format!("anchor {}", i + 1),
        }
    }

    /// Whether `issuer` names and signed bundle certificate `child`; each pair checked once.
    /// An issuer key or algorithm weightgate does not check is a refusal, not an abort: the
    /// next candidate is tried.
    fn signed(&mut self, child: usize, issuer: Node) -> bool {
        if self.nodes[child].tbs_certificate().issuer()
            != self.cert(issuer).tbs_certificate().subject()
        {
            return false;
        }
        if let Some(&known) = self.signatures.get(&(child, issuer)) {
            return known;
        }
        if !self.keys.contains_key(&issuer) {
            let key = IssuerKey::of(self.cert(issuer));
            self.keys.insert(issuer, key);
        }
        let outcome = match &self.keys[&issuer] {
            Ok(key) => key.signed(&self.nodes[child]),
            Err(e) => Err(e.clone()),
        };
        let ok = match outcome {
            Ok(ok) => ok,
            Err(problem) => {
                let e = algorithm(self.cert(issuer), &Self::which(issuer), problem);
                self.refusals.push(e);
                false
            }
        };
        self.signatures.insert((child, issuer), ok);
        ok
    }

    /// `issuer` may sign for a path with `below` intermediates under it.
    fn admit(&mut self, issuer: Node, below: usize) -> bool {
        let which = Self::which(issuer);
        let cert = self.cert(issuer);
        match check_alone(cert, &which, self.now).and_then(|()| check_issuer(cert, &which, below)) {
            Ok(()) => true,
            Err(e) => {
                self.refusals.push(e);
                false
            }
        }
    }

    /// The subjects from the signing certificate to an anchor, when a path exists.
    fn run(&mut self) -> Option<Vec<String>> {
        // Each bundle certificate is reached once, at its least depth: a deeper path only has
        // more intermediates under each issuer, so it cannot succeed where the shorter failed.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut layer = vec![0usize];
        let mut reached = std::collections::HashSet::from([0usize]);
        for depth in 0..MAX_PATH - 1 {
            let mut next = Vec::new();
            for &child in &layer {
                for a in 0..self.anchors.len() {
                    let anchor = Node::Anchor(a);
                    if self.signed(child, anchor) && self.admit(anchor, depth) {
                        let mut path = vec![subject_of(&self.anchors[a])];
                        let mut at = Some(child);
                        while let Some(i) = at {
                            path.push(subject_of(&self.nodes[i]));
                            at = parent.get(&i).copied();
                        }
                        path.reverse();
                        return Some(path);
                    }
                }
                if depth + 2 >= MAX_PATH {
                    continue;
                }
                for issuer in 1..self.nodes.len() {
                    if reached.contains(&issuer) || !self.signed(child, Node::Bundle(issuer)) {
                        continue;
                    }
                    if self.admit(Node::Bundle(issuer), depth) {
                        reached.insert(issuer);
                        parent.insert(issuer, child);
                        next.push(issuer);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            layer = next;
        }
        if self.refusals.is_empty() && reached.len() > 1 {
            self.refusals.push(ChainError::NoPath(format!(
                "no anchor issued the signing certificate or any of the {} bundle certificates above it within {MAX_PATH} certificates",
                reached.len() - 1
            )));
        }
        None
    }
}
