//! Checking an OpenSSF model-signing bundle (`model.sig`) against the files, as OMS v1.0
//! section 8 has it: bundle, key material, ECDSA signature over the DSSE PAE, statement and
//! root, then every file (or shard) digest with the same ignore rules. Each step is reported
//! by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use weightgate_attest::hashing::{
    Algorithms, HashOptions, OmsSerialization, Progress, hash_checkpoint, oms_resources,
};
use weightgate_attest::keys::{ChainError, EcSignatureError, EcVerifyingKey, verify_chain};
use weightgate_attest::reading::{Checkpoint, CheckpointError, OpenOptions, check_relative_path};
use weightgate_schemas::file_names::GIT_IGNORES;
use weightgate_schemas::oms::{
    IN_TOTO_PAYLOAD_TYPE, OMS_PREDICATE_V0_2, OmsBundle, OmsError, OmsHashType, OmsManifest,
    OmsMaterial, OmsMethod, OmsStatementFormat, decode_base64_lenient, decode_bundle,
    decode_statement, pae_model_signing_0_2, payload_predicate_type, split_shard_name,
};
use weightgate_schemas::pae;

use crate::downloaded::{SubjectScope, absent_files, shards_of_present_indexes};
use crate::reason::ReasonCode;
use crate::trust::{ModelSigningKey, ModelSigningTrust};

/// A bundle to check and how.
#[derive(Debug, Clone)]
pub struct OmsRequest {
    pub bundle: Vec<u8>,
    /// Keys and certificate anchors any of which may have signed it.
    pub trust: ModelSigningTrust,
    /// Relative paths left out besides the git paths and the bundle's own `ignore_paths` (the
    /// bundle itself when it lies inside the checkpoint, `--oms-ignore`).
    pub ignore: Vec<String>,
    /// weightgate's own files inside the checkpoint (the attestation, grants): left out unless
    /// the bundle signs them, as it does when `model_signing` signed after `attest`.
    pub own_files: Vec<String>,
    /// Files on disk that the bundle does not list are not an error.
    pub ignore_unsigned: bool,
    pub allow_symlinks: bool,
    /// Unix time at which certificates must be valid.
    pub now: i64,
}

/// Which `model.sig` to check and with which keys, as the user asked.
#[derive(Debug, Clone, Default)]
pub struct OmsOptions {
    /// What the caller trusts besides the policy (keys, certificate anchors, Sigstore
    /// identities given on the command line).
    pub extra: ModelSigningTrust,
    /// The bundle; default `CHECKPOINT/model.sig` (or `FILE.sig`).
    pub bundle: Option<std::path::PathBuf>,
    /// Relative paths to leave out of the check.
    pub ignore: Vec<String>,
    /// Files the bundle does not sign are not an error.
    pub ignore_unsigned: bool,
}

/// Why a `model.sig` request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OmsRequestError {
    #[error(
        "--oms-bundle needs something to check it with: --oms-key PUB.pem, --oms-certificate-chain, --oms-sigstore, or a [[model_signing_key]], [[model_signing_certificate]] or [[model_signing_sigstore]] in the policy"
    )]
    NoKey,
    #[error("{}: cannot read the model signature: {error}", path.display())]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

impl OmsRequest {
    /// What to check model.sig with for `checkpoint`, trusting `trusted` (the policy's) and
    /// what `options` adds: `None` when nothing is trusted, or when only the policy trusts
    /// something and no bundle is there (whether one is required is the bind stage's call).
    /// `own_files` are weightgate's files beside the weights (attestation, grants), left out
    /// unless the bundle signs them.
    pub fn for_checkpoint(
        options: &OmsOptions,
        trusted: &ModelSigningTrust,
        checkpoint: &Path,
        allow_symlinks: bool,
        own_files: &[&Path],
        now: i64,
    ) -> Result<Option<OmsRequest>, OmsRequestError> {
        use weightgate_attest::reading::{default_oms_signature_path, relative_inside};
        let mut trust = trusted.clone();
        trust.keys.extend(options.extra.keys.iter().cloned());
        trust
            .certificates
            .extend(options.extra.certificates.iter().cloned());
        trust
            .sigstore
            .extend(options.extra.sigstore.iter().cloned());
        if trust.is_empty() {
            if options.bundle.is_some() {
                return Err(OmsRequestError::NoKey);
            }
            return Ok(None);
        }
        let path = options
            .bundle
            .clone()
            .unwrap_or_else(|| default_oms_signature_path(checkpoint));
        let explicit = !options.extra.is_empty() || options.bundle.is_some();
        let bundle = match weightgate_attest::io::read_capped(
            &path,
            weightgate_schemas::oms::MAX_BUNDLE_LEN as u64,
        ) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
            Err(error) => return Err(OmsRequestError::Read { path, error }),
        };
        let mut ignore = options.ignore.clone();
        ignore.extend(relative_inside(checkpoint, &path));
        // An `hf download --local-dir` folder's bookkeeping is the client's, not the model's:
        // left out here exactly as the attestation check leaves it out.
        let hf_metadata = weightgate_schemas::file_names::HF_LOCAL_DIR_METADATA;
        if checkpoint.join(hf_metadata).is_dir() {
            ignore.push(hf_metadata.to_string());
        }
        // A model.sig in its usual place is a signature, not model content, even when the
        // bundle checked is another one.
        let usual = default_oms_signature_path(checkpoint);
        let own = own_files
            .iter()
            .copied()
            .chain([usual.as_path()])
            .filter_map(|f| relative_inside(checkpoint, f))
            .collect();
        Ok(Some(OmsRequest {
            bundle,
            trust,
            ignore,
            own_files: own,
            ignore_unsigned: options.ignore_unsigned,
            allow_symlinks,
            now,
        }))
    }
}

/// The steps of the check, in order (`certificate` instead of `key` for that method).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OmsStep {
    Bundle,
    Key,
    Certificate,
    Signature,
    Statement,
    Files,
}

impl OmsStep {
    pub fn as_str(self) -> &'static str {
        match self {
            OmsStep::Bundle => "bundle",
            OmsStep::Key => "key",
            OmsStep::Certificate => "certificate",
            OmsStep::Signature => "signature",
            OmsStep::Statement => "statement",
            OmsStep::Files => "files",
        }
    }
}

/// Pads like a string, so report columns line up.
impl std::fmt::Display for OmsStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One named step of the check and how it went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OmsCheck {
    pub name: OmsStep,
    pub passed: bool,
    pub detail: String,
}

/// What the check found.
#[derive(Debug, Clone, Default)]
pub struct OmsReport {
    pub problems: Vec<(ReasonCode, String)>,
    /// Each step in order; a step after a failed one is not run.
    pub checks: Vec<OmsCheck>,
    /// Findings that do not fail the check (e.g. no key hint).
    pub notes: Vec<String>,
    pub root: Option<[u8; 32]>,
    pub signer: Option<String>,
    /// The signing method (`key`, `certificate`) and serialization, once known.
    pub method: Option<&'static str>,
    pub serialization: Option<String>,
    pub files: usize,
    pub bytes_hashed: u64,
    /// Signed files absent from a [`SubjectScope::Downloaded`] check: never downloaded.
    pub not_downloaded: Vec<String>,
}

impl OmsReport {
    fn pass(&mut self, name: OmsStep, detail: String) {
        self.checks.push(OmsCheck {
            name,
            passed: true,
            detail,
        });
    }

    /// Records a failed step; `problems` keeps the reason code.
    fn fail(&mut self, name: OmsStep, code: ReasonCode, detail: String) {
        self.checks.push(OmsCheck {
            name,
            passed: false,
            detail: detail.clone(),
        });
        self.problems.push((code, detail));
    }

    /// A failed step with several findings, each with its code.
    fn fail_all(&mut self, name: OmsStep, found: Vec<(ReasonCode, String)>) {
        let detail = found
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        self.checks.push(OmsCheck {
            name,
            passed: false,
            detail,
        });
        self.problems.extend(found);
    }
}

fn code_of(e: &OmsError) -> ReasonCode {
    match e {
        OmsError::MediaType(_) => ReasonCode::OmsMediaType,
        OmsError::PayloadType(_) => ReasonCode::OmsPayloadType,
        OmsError::Subjects(_) => ReasonCode::OmsSubjects,
        OmsError::Unsupported(_) | OmsError::SigstoreKeyless => ReasonCode::OmsUnsupported,
        OmsError::WrongMethod { .. } => ReasonCode::OmsWrongMethod,
        OmsError::RootMismatch { .. } => ReasonCode::OmsRootMismatch,
        OmsError::TooLarge { .. }
        | OmsError::Empty
        | OmsError::NotJson(_)
        | OmsError::Malformed(_)
        | OmsError::NoSignature
        | OmsError::Statement(_) => ReasonCode::OmsMalformed,
    }
}

/// The reason code of each way a certificate chain fails.
fn chain_code(e: &ChainError) -> ReasonCode {
    match e {
        ChainError::Expired { .. } | ChainError::NotYetValid { .. } => {
            ReasonCode::OmsCertificateValidity
        }
        ChainError::NotForSigning(..) => ReasonCode::OmsCertificateUsage,
        ChainError::NotForCodeSigning { .. } => ReasonCode::OmsCertificateCodeSigning,
        ChainError::NotCa { .. } => ReasonCode::OmsCertificateNotCa,
        ChainError::NoCertSign { .. } => ReasonCode::OmsCertificateIssuerUsage,
        ChainError::PathLength { .. } => ReasonCode::OmsCertificatePathLength,
        ChainError::Algorithm { .. } => ReasonCode::OmsCertificateAlgorithm,
        ChainError::CriticalExtension { .. } => ReasonCode::OmsCertificateCriticalExtension,
        ChainError::TooManyCertificates { .. } => ReasonCode::OmsCertificateTooMany,
        ChainError::Parse { .. } => ReasonCode::OmsMalformed,
        ChainError::NoPath(_) => ReasonCode::OmsCertificateUntrusted,
    }
}

/// Whether `bytes` (PEM text or SPKI DER) hold `key`.
fn same_key(bytes: &[u8], key: &EcVerifyingKey) -> bool {
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => EcVerifyingKey::from_pem(text, "hint"),
        _ => EcVerifyingKey::from_spki_der(bytes, "hint"),
    };
    parsed.is_ok_and(|k| &k == key)
}

/// The hint as `model_signing` writes it (hex SHA-256 of the PEM), or the PEM or DER itself
/// in base64 as other writers put it.
fn hint_names(hint: &str, key: &EcVerifyingKey) -> bool {
    hint.eq_ignore_ascii_case(&key.hint())
        || decode_base64_lenient(hint).is_some_and(|b| same_key(&b, key))
}

/// Which of `keys` the bundle's key material allows, and notes about it.
fn candidate_keys<'a>(
    hint: Option<&str>,
    raw: Option<&[u8]>,
    keys: &'a [ModelSigningKey],
    report: &mut OmsReport,
) -> Vec<&'a ModelSigningKey> {
    let mut out: Vec<&ModelSigningKey> = keys.iter().collect();
    match hint {
        Some(h) => out.retain(|k| hint_names(h, &k.key)),
        None if raw.is_none() => report
            .notes
            .push("the bundle names no key (no hint); checked against every trusted key".into()),
        None => {}
    }
    if let Some(raw) = raw {
        out.retain(|k| same_key(raw, &k.key));
    }
    out
}

/// Which message a verified signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignedMessage {
    /// The DSSE PAE, hashed as the curve calls for.
    Dsse,
    /// `model_signing` 0.2.0's PAE variant, hashed with SHA-256 (see
    /// [`pae_model_signing_0_2`]).
    ModelSigning0_2,
}

impl SignedMessage {
    fn describe(self, key: &EcVerifyingKey) -> String {
        match self {
            SignedMessage::Dsse => format!(
                "ECDSA {} signature over the DSSE payload",
                key.curve().name()
            ),
            SignedMessage::ModelSigning0_2 => format!(
                "ECDSA {}/SHA-256 signature over model_signing 0.2's PAE variant of the payload",
                key.curve().name()
            ),
        }
    }
}

/// Checks `bundle`'s signature with `key`: over the DSSE PAE; for a `model_signing` 0.2
/// statement (and only there, as no later release signs that way) also over that release's
/// PAE variant with SHA-256, as 0.2 signed and `model_signing` 1.x accepts. The error is the
/// DSSE one when both fail.
fn verify_payload(
    bundle: &OmsBundle,
    key: &EcVerifyingKey,
) -> Result<SignedMessage, EcSignatureError> {
    let dsse = key.verify_der(
        &pae(IN_TOTO_PAYLOAD_TYPE, &bundle.payload),
        &bundle.signature,
    );
    match dsse {
        Ok(()) => Ok(SignedMessage::Dsse),
        Err(e @ EcSignatureError::NotDer { .. }) => Err(e),
        Err(e) => {
            if payload_predicate_type(&bundle.payload).as_deref() != Some(OMS_PREDICATE_V0_2) {
                return Err(e);
            }
            let message = pae_model_signing_0_2(IN_TOTO_PAYLOAD_TYPE, &bundle.payload);
            key.verify_prehash_der(&Sha256::digest(&message), &bundle.signature)
                .map(|()| SignedMessage::ModelSigning0_2)
                .map_err(|_| e)
        }
    }
}

/// The signature step: which trusted key (or certificate chain) signed the payload.
fn check_signature(bundle: &OmsBundle, req: &OmsRequest, report: &mut OmsReport) {
    let wrong = |found: &OmsMaterial, expected: &'static str| OmsError::WrongMethod {
        found: found.method(),
        material: found.field(),
        expected,
    };
    match &bundle.material {
        OmsMaterial::Sigstore(material) if !req.trust.sigstore.is_empty() => {
            check_keyless_signature(bundle, material, req, report)
        }
        OmsMaterial::Sigstore(_) => {
            let e = OmsError::SigstoreKeyless;
            report.fail(OmsStep::Key, code_of(&e), e.to_string());
        }
        OmsMaterial::PublicKey { hint, raw }
            if !req.trust.keys.is_empty() || req.trust.certificates.is_empty() =>
        {
            check_key_signature(
                bundle,
                hint.as_deref(),
                raw.as_deref(),
                &req.trust.keys,
                report,
            )
        }
        OmsMaterial::CertificateChain(chain) if !req.trust.certificates.is_empty() => {
            check_certificate_signature(bundle, chain, req, report)
        }
        other => {
            let expected = if req.trust.certificates.is_empty() {
                "key"
            } else {
                "certificate"
            };
            let e = wrong(other, expected);
            report.fail(OmsStep::Key, code_of(&e), e.to_string());
        }
    }
}

fn check_certificate_signature(
    bundle: &OmsBundle,
    chain: &[Vec<u8>],
    req: &OmsRequest,
    report: &mut OmsReport,
) {
    // The first trust entry whose anchors accept the chain and whose identities name it.
    let mut failure: Option<(ReasonCode, String)> = None;
    let mut verified = None;
    for trust in &req.trust.certificates {
        match verify_chain(chain, &trust.anchors, req.now) {
            Ok(v)
                if trust.identities.is_empty()
                    || trust.identities.iter().any(|i| v.has_identity(i)) =>
            {
                verified = Some(v);
                break;
            }
            Ok(v) => {
                let names = if v.alt_names.is_empty() {
                    String::new()
                } else {
                    format!("; {}", v.alt_names.join(", "))
                };
                failure.get_or_insert((
                    ReasonCode::OmsCertificateIdentity,
                    format!(
                        "the signing certificate ({}{names}) is none of the identities {} vouches for ({})",
                        v.subject,
                        trust.name,
                        trust.identities.join(", ")
                    ),
                ));
            }
            Err(e) => {
                let code = chain_code(&e);
                // A validity, usage or parse failure says more than "no path" elsewhere.
                if failure.is_none() || code != ReasonCode::OmsCertificateUntrusted {
                    failure = Some((code, format!("{}: {e}", trust.name)));
                }
            }
        }
    }
    let Some(verified) = verified else {
        let (code, message) = failure.unwrap_or((
            ReasonCode::OmsCertificateUntrusted,
            "no trust anchor configured".into(),
        ));
        report.fail(OmsStep::Certificate, code, message);
        return;
    };
    report.pass(
        OmsStep::Certificate,
        format!("chain valid: {}", verified.path.join(" <- ")),
    );
    let key = &verified.signing_key;
    match verify_payload(bundle, key) {
        Ok(signed) => {
            let signer = format!("{} (ECDSA {})", verified.subject, key.curve().name());
            report.pass(
                OmsStep::Signature,
                format!("{} by {signer}", signed.describe(key)),
            );
            report.signer = Some(signer);
        }
        Err(e @ EcSignatureError::NotDer { .. }) => report.fail(
            OmsStep::Signature,
            ReasonCode::OmsSignatureNotDer,
            e.to_string(),
        ),
        Err(e) => report.fail(
            OmsStep::Signature,
            ReasonCode::OmsSignatureInvalid,
            e.to_string(),
        ),
    }
}

/// The certificate and signature steps for a Sigstore keyless bundle.
fn check_keyless_signature(
    bundle: &OmsBundle,
    material: &weightgate_schemas::oms::SigstoreMaterial,
    req: &OmsRequest,
    report: &mut OmsReport,
) {
    use crate::sigstore_keyless::{KeylessError, verify_keyless};
    let signer = match verify_keyless(
        material,
        &bundle.payload_type,
        &bundle.payload,
        &bundle.signature,
        &req.trust.sigstore,
    ) {
        Ok(s) => s,
        Err(KeylessError::Refused(code, message)) => {
            report.fail(OmsStep::Certificate, code, message);
            return;
        }
        Err(KeylessError::Chain { root, error }) => {
            report.fail(
                OmsStep::Certificate,
                chain_code(&error),
                format!("{root}: {error}"),
            );
            return;
        }
    };
    report.pass(
        OmsStep::Certificate,
        format!(
            "Fulcio chain valid at {} (Rekor entry {}: {}): {}; CT timestamp verified; {} from {}",
            signer.times.join(" and "),
            signer.log_index,
            signer.logged,
            signer.path.join(" <- "),
            signer.identity,
            signer.issuer
        ),
    );
    match verify_payload(bundle, &signer.key) {
        Ok(signed) => {
            let who = format!(
                "{} from {} (Sigstore keyless)",
                signer.identity, signer.issuer
            );
            report.pass(
                OmsStep::Signature,
                format!("{} by {who}", signed.describe(&signer.key)),
            );
            report.signer = Some(who);
        }
        Err(e @ EcSignatureError::NotDer { .. }) => report.fail(
            OmsStep::Signature,
            ReasonCode::OmsSignatureNotDer,
            e.to_string(),
        ),
        Err(e) => report.fail(
            OmsStep::Signature,
            ReasonCode::OmsSignatureInvalid,
            e.to_string(),
        ),
    }
}

/// The signature step for the `key` method.
fn check_key_signature(
    bundle: &OmsBundle,
    hint: Option<&str>,
    raw: Option<&[u8]>,
    keys: &[ModelSigningKey],
    report: &mut OmsReport,
) {
    let candidates = candidate_keys(hint, raw, keys, report);
    if candidates.is_empty() {
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        let what = if hint.is_some() {
            "key hint"
        } else {
            "public key (rawBytes)"
        };
        report.fail(
            OmsStep::Key,
            ReasonCode::OmsKeyMismatch,
            format!(
                "the bundle's {what} names none of the trusted model-signing keys ({})",
                names.join(", ")
            ),
        );
        return;
    }
    report.pass(
        OmsStep::Key,
        format!(
            "bundle key material ({}) matches {}",
            if hint.is_some() {
                "hint"
            } else if raw.is_some() {
                "rawBytes"
            } else {
                "none"
            },
            candidates
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let mut last_error = None;
    let mut signed_as = None;
    for k in candidates {
        match verify_payload(bundle, &k.key) {
            Ok(signed) => {
                report.signer = Some(format!("{} (ECDSA {})", k.name, k.key.curve().name()));
                signed_as = Some(signed.describe(&k.key));
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    match (&report.signer, last_error) {
        (Some(signer), _) => {
            let detail = format!("{} by {signer}", signed_as.unwrap_or_default());
            report.pass(OmsStep::Signature, detail);
        }
        (None, Some(e @ EcSignatureError::NotDer { .. })) => report.fail(
            OmsStep::Signature,
            ReasonCode::OmsSignatureNotDer,
            e.to_string(),
        ),
        (None, Some(e)) => report.fail(
            OmsStep::Signature,
            ReasonCode::OmsSignatureInvalid,
            e.to_string(),
        ),
        (None, None) => report.fail(
            OmsStep::Signature,
            ReasonCode::OmsSignatureInvalid,
            "no key to check with".into(),
        ),
    }
}

fn serialization_text(m: &OmsManifest) -> String {
    match m.method {
        OmsMethod::Files => format!("files/{}", m.hash_type.name()),
        OmsMethod::Shards { shard_size } => {
            format!("shards of {shard_size} bytes/{}", m.hash_type.name())
        }
    }
}

/// Runs the whole check; `scope` says which signed files must be present, as for the
/// attestation. Errors only when the checkpoint root itself cannot be read.
pub fn check_oms(
    req: &OmsRequest,
    root: &Path,
    known_sha256: &BTreeMap<String, [u8; 32]>,
    scope: SubjectScope,
    threads: usize,
    progress: Progress,
) -> Result<OmsReport, CheckpointError> {
    let mut report = OmsReport::default();
    let bundle = match decode_bundle(&req.bundle) {
        Ok(b) => b,
        Err(e) => {
            report.fail(OmsStep::Bundle, code_of(&e), e.to_string());
            return Ok(report);
        }
    };
    report.method = Some(bundle.material.method());
    report.pass(
        OmsStep::Bundle,
        format!(
            "Sigstore bundle v0.3, DSSE in-toto payload, `{}` method",
            bundle.material.method()
        ),
    );
    check_signature(&bundle, req, &mut report);
    if !report.problems.is_empty() {
        return Ok(report);
    }
    let manifest = match decode_statement(&bundle.payload) {
        Ok(m) => m,
        Err(e) => {
            report.fail(OmsStep::Statement, code_of(&e), e.to_string());
            return Ok(report);
        }
    };
    report.root = Some(manifest.root());
    report.serialization = Some(serialization_text(&manifest));
    let root_hex = hex::encode(manifest.root());
    let detail = match manifest.format {
        OmsStatementFormat::V1 => format!(
            "in-toto Statement v1, {} resources ({}), root sha256:{root_hex} follows from them",
            manifest.resources.len(),
            serialization_text(&manifest),
        ),
        OmsStatementFormat::Digests0_2 => {
            report.notes.push(format!(
                "written by model_signing 0.2 (deprecated predicate `{OMS_PREDICATE_V0_2}`): it records no root digest and no ignored paths; re-sign with a current signer"
            ));
            format!(
                "in-toto Statement v1 of model_signing 0.2 (`{OMS_PREDICATE_V0_2}`), {} files as subjects ({}), root sha256:{root_hex} computed from them",
                manifest.resources.len(),
                serialization_text(&manifest),
            )
        }
    };
    report.pass(OmsStep::Statement, detail);
    check_files(
        req,
        root,
        &manifest,
        known_sha256,
        scope,
        threads,
        progress,
        &mut report,
    )?;
    Ok(report)
}

/// The local name a signed resource refers to: `.` or the file's name for a single-file model.
fn local_name(res_path: &str, single_file: Option<&str>) -> String {
    match single_file {
        Some(name) if res_path == "." => name.to_string(),
        _ => res_path.to_string(),
    }
}

/// The file a resource covers (a shard's path without `:start:end`).
fn resource_file(name: &str, method: OmsMethod) -> &str {
    match method {
        OmsMethod::Files => name,
        OmsMethod::Shards { .. } => split_shard_name(name).map_or(name, |(p, _, _)| p),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_files(
    req: &OmsRequest,
    root: &Path,
    manifest: &OmsManifest,
    known_sha256: &BTreeMap<String, [u8; 32]>,
    scope: SubjectScope,
    threads: usize,
    progress: Progress,
    report: &mut OmsReport,
) -> Result<(), CheckpointError> {
    // The files on disk, left out as the signer left them out.
    let mut ignore = req.ignore.clone();
    ignore.extend(
        manifest
            .ignore_paths
            .iter()
            .map(|p| p.trim_end_matches('/').to_string())
            .filter(|p| check_relative_path(p).is_ok()),
    );
    let open = OpenOptions {
        allow_symlinks: req.allow_symlinks || manifest.allow_symlinks,
        ignore,
        git_ignores_only: true,
        ..Default::default()
    };
    let mut local = match Checkpoint::open_files(root, &open) {
        Ok(c) => c,
        Err(CheckpointError::Io { path, error }) if path == root => {
            return Err(CheckpointError::Io { path, error });
        }
        Err(e) => {
            report.fail(OmsStep::Files, ReasonCode::OmsUnsafePath, e.to_string());
            return Ok(());
        }
    };
    let single = local.single_file.then(|| local.files[0].path.clone());
    let method = manifest.method;
    // Resource name on disk -> signed digest; a single-file model is named `.` (model_signing)
    // or by its name (the spec).
    let signed: BTreeMap<String, &[u8]> = manifest
        .resources
        .iter()
        .map(|res| {
            let name = match method {
                OmsMethod::Files => local_name(&res.name, single.as_deref()),
                OmsMethod::Shards { .. } => match split_shard_name(&res.name) {
                    Some((p, s, e)) => format!("{}:{s}:{e}", local_name(p, single.as_deref())),
                    None => res.name.clone(),
                },
            };
            (name, res.digest.as_slice())
        })
        .collect();
    let signed_files: BTreeSet<&str> = signed.keys().map(|n| resource_file(n, method)).collect();
    local
        .files
        .retain(|f| signed_files.contains(f.path.as_str()) || !req.own_files.contains(&f.path));
    let on_disk: BTreeSet<String> = local.files.iter().map(|f| f.path.clone()).collect();
    let mut found = Vec::new();
    let present: BTreeSet<&str> = on_disk.iter().map(String::as_str).collect();
    let required = match scope {
        SubjectScope::Downloaded => shards_of_present_indexes(root, &signed_files, &present),
        SubjectScope::Whole => BTreeSet::new(),
    };
    let absent = absent_files(signed_files.iter().copied(), &present, &required, scope);
    let git_path = |name: &str| {
        let top = name.split('/').next().unwrap_or_default();
        (single.is_none() && GIT_IGNORES.contains(&top)).then_some(top.to_string())
    };
    // A signed git path is never on disk for the check, downloaded or not: always reported.
    let (git_paths, not_downloaded): (Vec<String>, Vec<String>) = absent
        .not_downloaded
        .into_iter()
        .partition(|name| git_path(name).is_some());
    match not_downloaded.len() {
        0 => {}
        1 => report
            .notes
            .push("1 signed file not downloaded, so not checked".into()),
        n => report
            .notes
            .push(format!("{n} signed files not downloaded, so not checked")),
    }
    report.not_downloaded = not_downloaded;
    for name in absent.missing.iter().chain(&git_paths) {
        let why = match git_path(name) {
            // Older signers (model_signing 0.2) signed git metadata; the spec's default
            // exclusions still apply when verifying.
            Some(top) => format!(
                "signed in model.sig, but `{top}` is one of the git paths every OpenSSF model-signing verifier leaves out"
            ),
            None => "signed in model.sig but not in the model".to_string(),
        };
        found.push((ReasonCode::OmsMissingFile, format!("{name}: {why}")));
    }
    for f in &local.files {
        // A zero-byte file has no shard, so shard serialization cannot tell it is there.
        let visible = method == OmsMethod::Files || f.size > 0;
        if visible && !signed_files.contains(f.path.as_str()) && !req.ignore_unsigned {
            found.push((
                ReasonCode::OmsExtraFile,
                format!(
                    "{}: in the model but not signed in model.sig (ignore unsigned files to allow)",
                    f.path
                ),
            ));
        }
    }
    local
        .files
        .retain(|f| signed_files.contains(f.path.as_str()));
    report.files = local.files.len();
    let computed: BTreeMap<String, Vec<u8>> =
        if method == OmsMethod::Files && manifest.hash_type == OmsHashType::Sha256 {
            // The attestation's SHA-256 digests, when the bytes were already bound to it.
            let mut out: BTreeMap<String, Vec<u8>> = known_sha256
                .iter()
                .filter(|(p, _)| on_disk.contains(*p))
                .map(|(p, d)| (p.clone(), d.to_vec()))
                .collect();
            local.files.retain(|f| !known_sha256.contains_key(&f.path));
            report.bytes_hashed = local.total_bytes();
            if !local.files.is_empty() {
                let opts = HashOptions {
                    algorithms: Algorithms::Sha256Only,
                    per_tensor: false,
                    threads,
                };
                for f in hash_checkpoint(&local, &opts, progress)?.files {
                    if let Some(d) = f.sha256 {
                        out.insert(f.path, d.to_vec());
                    }
                }
            }
            out
        } else {
            report.bytes_hashed = local.total_bytes();
            let how = OmsSerialization {
                method,
                hash_type: manifest.hash_type,
            };
            let files: Vec<String> = local.files.iter().map(|f| f.path.clone()).collect();
            oms_resources(&local, &how, threads, progress)?
                .into_iter()
                .map(|r| {
                    // Names of a single-file model come back as `.`.
                    let name = match (method, &single) {
                        (OmsMethod::Files, Some(n)) => n.clone(),
                        (OmsMethod::Shards { .. }, Some(n)) => {
                            format!("{n}{}", r.name.strip_prefix('.').unwrap_or(&r.name))
                        }
                        _ => r.name,
                    };
                    (name, r.digest)
                })
                .filter(|(n, _)| files.iter().any(|f| f == resource_file(n, method)))
                .collect()
        };
    let what = manifest.hash_type.name();
    for (name, want) in &signed {
        if !on_disk.contains(resource_file(name, method)) {
            continue;
        }
        match computed.get(name) {
            Some(got) if got.as_slice() == *want => {}
            Some(_) => found.push((
                ReasonCode::OmsDigestMismatch,
                format!("{name}: {what} differs from the one signed in model.sig"),
            )),
            None => found.push((
                ReasonCode::OmsDigestMismatch,
                format!("{name}: no such byte range in the file (its size changed)"),
            )),
        }
    }
    for name in computed.keys() {
        if !signed.contains_key(name) {
            found.push((
                ReasonCode::OmsDigestMismatch,
                format!("{name}: bytes the signed shards do not cover (the file grew)"),
            ));
        }
    }
    if found.is_empty() {
        let checked = signed
            .keys()
            .filter(|n| on_disk.contains(resource_file(n, method)))
            .count();
        report.pass(
            OmsStep::Files,
            format!(
                "{} files, {checked} resources match ({})",
                report.files,
                serialization_text(manifest)
            ),
        );
    } else {
        report.fail_all(OmsStep::Files, found);
    }
    Ok(())
}
