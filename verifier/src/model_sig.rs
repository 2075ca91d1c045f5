//! Checking an OpenSSF model-signing bundle (`model.sig`) against the files, as
//! `model_signing verify key` does: key hint, ECDSA signature over the DSSE PAE, statement,
//! root, then every file's SHA-256 with the same ignore rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use weightgate_attest::hashing::{Algorithms, HashOptions, Progress, hash_checkpoint};
use weightgate_attest::keys::{EcSignatureError, EcVerifyingKey};
use weightgate_attest::reading::{Checkpoint, CheckpointError, OpenOptions, check_relative_path};
use weightgate_schemas::oms::{
    IN_TOTO_PAYLOAD_TYPE, OmsBundle, OmsError, decode_base64_lenient, decode_bundle,
    decode_statement,
};
use weightgate_schemas::pae;

use crate::policy::ModelSigningKey;
use crate::reason::ReasonCode;

/// A bundle to check and how.
#[derive(Debug, Clone)]
pub struct OmsRequest {
    pub bundle: Vec<u8>,
    /// Keys any of which may have signed it.
    pub keys: Vec<ModelSigningKey>,
    /// Relative paths left out besides the git paths and the bundle's own `ignore_paths` (the
    /// bundle itself when it lies inside the checkpoint, `--oms-ignore`).
    pub ignore: Vec<String>,
    /// weightgate's own files inside the checkpoint (the attestation, grants): left out unless
    /// the bundle signs them, as it does when `model_signing` signed after `attest`.
    pub own_files: Vec<String>,
    /// Files on disk that the bundle does not list are not an error.
    pub ignore_unsigned: bool,
    pub allow_symlinks: bool,
}

/// Which `model.sig` to check and with which keys, as the user asked.
#[derive(Debug, Clone, Default)]
pub struct OmsOptions {
    /// Public keys given besides the policy's `[[model_signing_key]]`s.
    pub keys: Vec<std::path::PathBuf>,
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
        "--oms-bundle needs a key to check it with: --oms-key PUB.pem or a [[model_signing_key]] in the policy"
    )]
    NoKey,
    #[error(transparent)]
    Key(#[from] weightgate_attest::keys::KeyError),
    #[error("{}: cannot read the model signature: {error}", path.display())]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

impl OmsRequest {
    /// What to check model.sig with for `checkpoint`: `None` when no key is configured, or
    /// when only the policy has keys and no bundle is there (whether one is required is the
    /// bind stage's call). `own_files` are weightgate's files beside the weights (attestation,
    /// grants), left out unless the bundle signs them.
    pub fn for_checkpoint(
        options: &OmsOptions,
        policy: &crate::policy::Policy,
        checkpoint: &Path,
        allow_symlinks: bool,
        own_files: &[&Path],
    ) -> Result<Option<OmsRequest>, OmsRequestError> {
        use weightgate_attest::reading::{default_oms_signature_path, relative_inside};
        let mut keys = policy.model_signing_keys.clone();
        for p in &options.keys {
            keys.push(ModelSigningKey {
                name: p.display().to_string(),
                key: EcVerifyingKey::load(p)?,
            });
        }
        if keys.is_empty() {
            if options.bundle.is_some() {
                return Err(OmsRequestError::NoKey);
            }
            return Ok(None);
        }
        let path = options
            .bundle
            .clone()
            .unwrap_or_else(|| default_oms_signature_path(checkpoint));
        let explicit = !options.keys.is_empty() || options.bundle.is_some();
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
            keys,
            ignore,
            own_files: own,
            ignore_unsigned: options.ignore_unsigned,
            allow_symlinks,
        }))
    }
}

/// What the check found.
#[derive(Debug, Clone, Default)]
pub struct OmsReport {
    pub problems: Vec<(ReasonCode, String)>,
    /// Findings that do not fail the check (e.g. no key hint).
    pub notes: Vec<String>,
    pub root: Option<[u8; 32]>,
    pub signer: Option<String>,
    pub files: usize,
    pub bytes_hashed: u64,
}

fn code_of(e: &OmsError) -> ReasonCode {
    match e {
        OmsError::MediaType(_) => ReasonCode::OmsMediaType,
        OmsError::PayloadType(_) => ReasonCode::OmsPayloadType,
        OmsError::Subjects(_) => ReasonCode::OmsSubjects,
        OmsError::Unsupported(_) | OmsError::NotKeySigned => ReasonCode::OmsUnsupported,
        OmsError::RootMismatch { .. } => ReasonCode::OmsRootMismatch,
        OmsError::TooLarge { .. }
        | OmsError::NotJson(_)
        | OmsError::Malformed(_)
        | OmsError::NoSignature
        | OmsError::Statement(_) => ReasonCode::OmsMalformed,
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
    b: &OmsBundle,
    keys: &'a [ModelSigningKey],
    report: &mut OmsReport,
) -> Vec<&'a ModelSigningKey> {
    let mut out: Vec<&ModelSigningKey> = keys.iter().collect();
    match &b.hint {
        Some(h) => out.retain(|k| hint_names(h, &k.key)),
        None => report
            .notes
            .push("the bundle names no key (no hint); checked against every trusted key".into()),
    }
    if let Some(raw) = &b.raw_public_key {
        out.retain(|k| same_key(raw, &k.key));
    }
    out
}

/// Runs the whole check. Errors only when the checkpoint root itself cannot be read.
pub fn check_oms(
    req: &OmsRequest,
    root: &Path,
    known_sha256: &BTreeMap<String, [u8; 32]>,
    threads: usize,
    progress: Progress,
) -> Result<OmsReport, CheckpointError> {
    let mut report = OmsReport::default();
    let bundle = match decode_bundle(&req.bundle) {
        Ok(b) => b,
        Err(e) => {
            report.problems.push((code_of(&e), e.to_string()));
            return Ok(report);
        }
    };
    let candidates = candidate_keys(&bundle, &req.keys, &mut report);
    if candidates.is_empty() {
        let names: Vec<&str> = req.keys.iter().map(|k| k.name.as_str()).collect();
        report.problems.push((
            ReasonCode::OmsKeyMismatch,
            format!(
                "the bundle's key hint names none of the trusted model-signing keys ({})",
                names.join(", ")
            ),
        ));
        return Ok(report);
    }
    let message = pae(IN_TOTO_PAYLOAD_TYPE, &bundle.payload);
    let mut last_error = None;
    for k in candidates {
        match k.key.verify_der(&message, &bundle.signature) {
            Ok(()) => {
                report.signer = Some(format!("{} (ECDSA {})", k.name, k.key.curve().name()));
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    if report.signer.is_none() {
        let (code, message) = match last_error {
            Some(e @ EcSignatureError::NotDer { .. }) => {
                (ReasonCode::OmsSignatureNotDer, e.to_string())
            }
            Some(e) => (ReasonCode::OmsSignatureInvalid, e.to_string()),
            None => (
                ReasonCode::OmsSignatureInvalid,
                "no key to check with".into(),
            ),
        };
        report.problems.push((code, message));
        return Ok(report);
    }
    let manifest = match decode_statement(&bundle.payload) {
        Ok(m) => m,
        Err(e) => {
            report.problems.push((code_of(&e), e.to_string()));
            return Ok(report);
        }
    };
    report.root = Some(manifest.root());

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
        allow_symlinks: req.allow_symlinks,
        ignore,
        git_ignores_only: true,
    };
    let mut local = match Checkpoint::open_files(root, &open) {
        Ok(c) => c,
        Err(CheckpointError::Io { path, error }) if path == root => {
            return Err(CheckpointError::Io { path, error });
        }
        Err(e) => {
            report
                .problems
                .push((ReasonCode::OmsUnsafePath, e.to_string()));
            return Ok(report);
        }
    };
    // A single-file model is one resource named `.` (model_signing) or by its name (the spec).
    let signed: BTreeMap<String, [u8; 32]> = manifest
        .resources
        .iter()
        .map(|res| {
            let name = if local.single_file && res.name == "." {
                local.files[0].path.clone()
            } else {
                res.name.clone()
            };
            (name, res.sha256)
        })
        .collect();
    local
        .files
        .retain(|f| signed.contains_key(&f.path) || !req.own_files.contains(&f.path));
    let on_disk: BTreeSet<String> = local.files.iter().map(|f| f.path.clone()).collect();
    for name in signed.keys() {
        if !on_disk.contains(name) {
            report.problems.push((
                ReasonCode::OmsMissingFile,
                format!("{name}: signed in model.sig but not in the checkpoint"),
            ));
        }
    }
    for f in &local.files {
        if !signed.contains_key(&f.path) && !req.ignore_unsigned {
            report.problems.push((
                ReasonCode::OmsExtraFile,
                format!(
                    "{}: in the checkpoint but not signed in model.sig (--oms-ignore-unsigned to allow)",
                    f.path
                ),
            ));
        }
    }
    local
        .files
        .retain(|f| signed.contains_key(&f.path) && !known_sha256.contains_key(&f.path));
    report.bytes_hashed = local.total_bytes();
    let opts = HashOptions {
        algorithms: Algorithms::Sha256Only,
        per_tensor: false,
        threads,
    };
    let hashed = if local.files.is_empty() {
        Vec::new()
    } else {
        hash_checkpoint(&local, &opts, progress)?.files
    };
    let mut digests: BTreeMap<&str, [u8; 32]> =
        known_sha256.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    for f in &hashed {
        if let Some(d) = f.sha256 {
            digests.insert(f.path.as_str(), d);
        }
    }
    for (name, want) in &signed {
        if !on_disk.contains(name) {
            continue;
        }
        report.files += 1;
        if digests.get(name.as_str()) != Some(want) {
            report.problems.push((
                ReasonCode::OmsDigestMismatch,
                format!("{name}: SHA-256 differs from the one signed in model.sig"),
            ));
        }
    }
    Ok(report)
}
