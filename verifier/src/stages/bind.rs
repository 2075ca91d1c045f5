//! Subject binding: the checkpoint on disk is exactly the attested file set, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use weightgate_attest::hashing::{
    Algorithms, CheckpointDigests, HashOptions, Progress, hash_checkpoint, root_digest,
};
use weightgate_attest::reading::{Checkpoint, CheckpointError, OpenOptions};
use weightgate_schemas::Statement;

use super::authenticate::Authenticated;
use crate::decision::{CheckName, Decision};
pub use crate::downloaded::SubjectScope;
use crate::downloaded::{absent_files, is_weights};
use crate::finding::{Binding, Finding, HashName, Problem};
use crate::model_sig::{OmsRequest, check_oms};
use crate::policy::{Policy, VerifyDigest};
use crate::reason::ReasonCode;

/// Which digests to recompute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestMode {
    /// BLAKE3 only: fast, parallel within a file.
    Blake3,
    /// SHA-256 and BLAKE3 (`--full`): also recomputes the root digest from the bytes.
    Full,
    /// SHA-256 only: what a `model.sig` check needs anyway, so one pass serves both.
    Sha256,
}

/// What subject binding found.
#[derive(Debug, Clone, Default)]
pub struct SubjectReport {
    pub problems: Vec<Problem>,
    pub files_checked: usize,
    pub bytes_hashed: u64,
    pub header_parameters: Option<u64>,
    /// SHA-256 of each file hashed, by path, when SHA-256 was computed.
    pub sha256: BTreeMap<String, [u8; 32]>,
    /// Attested files left out of a [`SubjectScope::Downloaded`] check because they are absent.
    pub not_downloaded: Vec<String>,
}

/// Where the bytes a statement is bound to come from.
pub enum SubjectSource<'a> {
    /// A checkpoint on disk, hashed now.
    OnDisk {
        checkpoint: &'a Path,
        open: OpenOptions,
        /// Recompute SHA-256 too (and so the root from the bytes), whatever the policy says.
        full: bool,
        threads: usize,
        /// An OpenSSF model-signing bundle to check beside the attestation.
        oms: Option<OmsRequest>,
        scope: SubjectScope,
    },
    /// A checkpoint being admitted: the digests are those of the bytes in the store (hashed
    /// while they were written, or recorded when an identical blob was admitted before and
    /// unchanged since), and the safetensors headers of `checkpoint` were read from those same
    /// bytes (so nothing is read again here).
    Stored {
        checkpoint: &'a Checkpoint,
        digests: &'a CheckpointDigests,
        /// Files whose blobs were already stored, not written again.
        reused_files: usize,
        /// Where a `model.sig` check looks for files the attestation does not cover.
        oms_root: &'a Path,
        oms: Option<OmsRequest>,
    },
    /// Facts recorded when the revision was admitted: its bytes were verified then and cannot
    /// have changed since (the gate's content-addressed store).
    Admitted(AdmittedFacts),
}

/// What admission established about a revision's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedFacts {
    /// Parameters counted from the safetensors headers of the admitted copy.
    pub header_parameters: u64,
    /// Whether a `model.sig` was checked at admission.
    pub model_sig_checked: bool,
}

/// A statement bound to bytes: what [`bind`] established. Only `bind` makes one.
#[derive(Debug, Clone)]
pub struct Bound {
    header_parameters: Option<u64>,
    sha256: BTreeMap<String, [u8; 32]>,
}

impl Bound {
    /// Parameters counted from the safetensors headers of the bound bytes.
    pub fn header_parameters(&self) -> Option<u64> {
        self.header_parameters
    }

    /// SHA-256 of each file, by path, where it was computed.
    pub fn sha256(&self) -> &BTreeMap<String, [u8; 32]> {
        &self.sha256
    }
}

/// Binds an authenticated statement to its bytes: the subject check (and the `model.sig` check
/// when asked or required) into `d`. Errors only when the checkpoint root cannot be read.
pub fn bind(
    auth: &Authenticated,
    source: &SubjectSource,
    policy: &Policy,
    d: &mut Decision,
    progress: Progress,
) -> Result<Bound, CheckpointError> {
    let st = auth.statement();
    let (subject, oms, root, threads, how, scope) = match source {
        SubjectSource::OnDisk {
            checkpoint,
            open,
            full,
            threads,
            oms,
            scope,
        } => {
            let mode = if *full {
                DigestMode::Full
            } else if oms.is_some() || policy.verify_digest == VerifyDigest::Sha256 {
                // SHA-256 binds as well as BLAKE3, and a model.sig check needs it anyway.
                DigestMode::Sha256
            } else {
                DigestMode::Blake3
            };
            d.facts.digest = match mode {
                DigestMode::Full => "sha256+blake3",
                DigestMode::Sha256 => "sha256",
                DigestMode::Blake3 => "blake3",
            };
            let report =
                check_subject_with(st, checkpoint, open, mode, *threads, None, *scope, progress)?;
            let how = Binding::Hashed {
                bytes: report.bytes_hashed,
                digests: d.facts.digest,
            };
            (
                report,
                oms.as_ref(),
                Some(*checkpoint),
                *threads,
                how,
                *scope,
            )
        }
        SubjectSource::Stored {
            checkpoint,
            digests,
            reused_files,
            oms_root,
            oms,
        } => {
            d.facts.digest = "sha256+blake3";
            let mut report = SubjectReport::default();
            check_subject_root(st, &mut report);
            check_subject_files(
                st,
                checkpoint,
                DigestMode::Full,
                0,
                Some(digests),
                SubjectScope::Whole,
                progress,
                &mut report,
            )?;
            let bytes: u64 = digests.files.iter().map(|f| f.size).sum();
            d.facts.bytes_hashed = bytes;
            let how = Binding::HashedWhileStored {
                bytes,
                reused_files: *reused_files,
            };
            (
                report,
                oms.as_ref(),
                Some(*oms_root),
                0,
                how,
                SubjectScope::Whole,
            )
        }
        SubjectSource::Admitted(facts) => {
            d.facts.digest = "admitted";
            let report = SubjectReport {
                problems: Vec::new(),
                files_checked: st.subject.files.len(),
                bytes_hashed: 0,
                header_parameters: Some(facts.header_parameters),
                sha256: Default::default(),
                not_downloaded: Vec::new(),
            };
            (
                report,
                None,
                None,
                0,
                Binding::Admitted,
                SubjectScope::Whole,
            )
        }
    };
    d.facts.header_parameters = subject.header_parameters;
    d.facts.not_downloaded = subject.not_downloaded.clone();
    d.facts.bytes_hashed += subject.bytes_hashed;
    if subject.problems.is_empty() {
        d.pass(
            CheckName::Subject,
            Finding::Subject {
                files: subject.files_checked,
                binding: how,
                root_sha256: st.subject.root_sha256.to_hex(),
            },
        );
    }
    for p in &subject.problems {
        d.fail(CheckName::Subject, p.clone());
    }

    // The OpenSSF model-signing bundle, when given or required.
    let admitted_with_model_sig =
        matches!(source, SubjectSource::Admitted(f) if f.model_sig_checked);
    match (oms, root) {
        (Some(oms), Some(root)) => {
            let report = check_oms(oms, root, &subject.sha256, scope, threads, progress)?;
            d.facts.bytes_hashed += report.bytes_hashed;
            for path in &report.not_downloaded {
                if !d.facts.not_downloaded.contains(path) {
                    d.facts.not_downloaded.push(path.clone());
                }
            }
            d.facts.oms_root_sha256 = report.root.map(hex::encode);
            d.facts.oms_signer = report.signer.clone();
            if report.problems.is_empty() {
                let root = report.root.map(hex::encode).unwrap_or_default();
                d.pass(
                    CheckName::ModelSig,
                    Finding::ModelSig {
                        files: report.files,
                        signer: report.signer.clone(),
                        same_root: Some(&root) == d.facts.root_sha256.as_ref(),
                        root_sha256: root,
                        notes: report.notes.clone(),
                    },
                );
            }
            for (code, message) in report.problems {
                d.fail(CheckName::ModelSig, Problem::ModelSig { code, message });
            }
        }
        _ if policy.require_model_signature && admitted_with_model_sig => {
            d.pass(CheckName::ModelSig, Finding::ModelSigAtAdmission)
        }
        _ if policy.require_model_signature => {
            d.fail(CheckName::ModelSig, Problem::ModelSigMissing)
        }
        _ => {}
    }
    Ok(Bound {
        header_parameters: subject.header_parameters,
        sha256: subject.sha256,
    })
}

/// Checks `statement.subject` against the checkpoint at `root`. Errors only for input that
/// cannot be judged at all (the root itself unreadable); everything else is a problem.
pub fn check_subject(
    statement: &Statement,
    root: &Path,
    open: &OpenOptions,
    mode: DigestMode,
    threads: usize,
    progress: Progress,
) -> Result<SubjectReport, CheckpointError> {
    check_subject_with(
        statement,
        root,
        open,
        mode,
        threads,
        None,
        SubjectScope::Whole,
        progress,
    )
}

/// [`check_subject`], with the digests already computed when `computed` is given (admission
/// hashes every byte while copying it into staging, so nothing is read twice), and `scope`
/// saying which attested files must be present.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_subject_with(
    statement: &Statement,
    root: &Path,
    open: &OpenOptions,
    mode: DigestMode,
    threads: usize,
    computed: Option<&CheckpointDigests>,
    scope: SubjectScope,
    progress: Progress,
) -> Result<SubjectReport, CheckpointError> {
    let mut report = SubjectReport::default();
    check_subject_root(statement, &mut report);
    let checkpoint = match Checkpoint::open(root, open) {
        Ok(c) => c,
        Err(CheckpointError::Io { path, error }) if path == root => {
            return Err(CheckpointError::Io { path, error });
        }
        Err(e) => {
            let code = match e {
                CheckpointError::Header { .. } | CheckpointError::Index { .. } => {
                    ReasonCode::SubjectHeaderInvalid
                }
                _ => ReasonCode::SubjectUnsafePath,
            };
            report.problems.push(Problem::CheckpointUnreadable {
                code,
                error: e.to_string(),
            });
            return Ok(report);
        }
    };
    check_subject_files(
        statement,
        &checkpoint,
        mode,
        threads,
        computed,
        scope,
        progress,
        &mut report,
    )?;
    Ok(report)
}

/// The attested root and file order, from the statement alone.
fn check_subject_root(statement: &Statement, report: &mut SubjectReport) {
    let subject = &statement.subject;
    // The root must follow from the attested digests, in the attested order.
    let claimed_root = root_digest(subject.files.iter().map(|f| &f.sha256.0));
    if claimed_root != subject.root_sha256.0 {
        report.problems.push(Problem::RootNotFromDigests {
            attested: subject.root_sha256.to_hex(),
            computed: hex::encode(claimed_root),
        });
    }
    let mut sorted: Vec<&str> = subject.files.iter().map(|f| f.path.as_str()).collect();
    sorted.sort_by(|a, b| weightgate_attest::reading::component_order(a, b));
    if sorted
        != subject
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
    {
        report.problems.push(Problem::FilesOutOfOrder);
    }
}

/// The checkpoint's files against the attested ones: names, sizes, parameters, digests
/// (computed now, or `computed` when given), and the tensors that changed.
#[allow(clippy::too_many_arguments)]
fn check_subject_files(
    statement: &Statement,
    checkpoint: &Checkpoint,
    mode: DigestMode,
    threads: usize,
    computed: Option<&CheckpointDigests>,
    scope: SubjectScope,
    progress: Progress,
    report: &mut SubjectReport,
) -> Result<(), CheckpointError> {
    let subject = &statement.subject;
    let params = checkpoint.parameters();
    report.header_parameters = Some(params.total);

    let attested: BTreeMap<&str, &weightgate_schemas::FileEntry> =
        subject.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let on_disk: BTreeSet<&str> = checkpoint.files.iter().map(|f| f.path.as_str()).collect();
    // The shards a present index names need no listing here: the checkpoint reader refuses an
    // index whose shards are absent.
    let absent = absent_files(
        subject.files.iter().map(|f| f.path.as_str()),
        &on_disk,
        &BTreeSet::new(),
        scope,
    );
    report.not_downloaded = absent.not_downloaded;
    for path in absent.missing {
        report.problems.push(Problem::MissingFile { path });
    }
    for f in &checkpoint.files {
        if !attested.contains_key(f.path.as_str()) {
            let renamed_from = attested
                .values()
                .find(|a| a.size == f.size && !on_disk.contains(a.path.as_str()))
                .map(|a| a.path.clone());
            report.problems.push(Problem::ExtraFile {
                path: f.path.clone(),
                renamed_from,
            });
        }
    }

    let mut to_hash = checkpoint.clone();
    to_hash
        .files
        .retain(|f| match attested.get(f.path.as_str()) {
            Some(a) if a.size == f.size => true,
            Some(a) => {
                report.problems.push(Problem::SizeMismatch {
                    path: f.path.clone(),
                    size: f.size,
                    attested: a.size,
                });
                false
            }
            None => false,
        });
    // The headers of weights never downloaded cannot be counted.
    let all_weights_present = !report.not_downloaded.iter().any(|p| is_weights(p));
    if let Some(claimed) = statement.compute.inputs.params_total
        && claimed != params.total
        && all_weights_present
    {
        report.problems.push(Problem::ParameterMismatch {
            claimed,
            headers: params.total,
        });
    }

    let wants_tensors = to_hash.files.iter().any(|f| {
        attested
            .get(f.path.as_str())
            .is_some_and(|a| a.tensors.is_some())
    });
    let opts = HashOptions {
        algorithms: match mode {
            DigestMode::Blake3 => Algorithms::Blake3Only,
            DigestMode::Full => Algorithms::Both,
            DigestMode::Sha256 => Algorithms::Sha256Only,
        },
        per_tensor: false,
        threads,
    };
    let manifest = match computed {
        Some(all) => {
            let mut kept = all.clone();
            kept.files
                .retain(|f| to_hash.files.iter().any(|h| h.path == f.path));
            let sha: Option<Vec<[u8; 32]>> = kept.files.iter().map(|f| f.sha256).collect();
            kept.root_sha256 = sha.map(|s| root_digest(s.iter()));
            kept
        }
        None => {
            let m = hash_checkpoint(&to_hash, &opts, progress)?;
            report.bytes_hashed = to_hash.total_bytes();
            m
        }
    };
    report.files_checked = manifest.files.len();
    let mut altered = Vec::new();
    for got in &manifest.files {
        if let Some(d) = got.sha256 {
            report.sha256.insert(got.path.clone(), d);
        }
        let want = attested[got.path.as_str()];
        let blake_bad = got.blake3.is_some_and(|b| b != want.blake3.0);
        let sha_bad = got.sha256.is_some_and(|s| s != want.sha256.0);
        if blake_bad || sha_bad {
            altered.push(got.path.clone());
            report.problems.push(Problem::DigestMismatch {
                path: got.path.clone(),
                digest: if blake_bad {
                    HashName::Blake3
                } else {
                    HashName::Sha256
                },
            });
        }
    }
    if mode != DigestMode::Blake3
        && altered.is_empty()
        && report
            .problems
            .iter()
            .all(|p| p.code() != ReasonCode::SubjectRootMismatch)
        && let Some(root_now) = manifest.root_sha256
        && manifest.files.len() == subject.files.len()
        && root_now != subject.root_sha256.0
    {
        report.problems.push(Problem::RootMismatch {
            on_disk: hex::encode(root_now),
        });
    }
    // Name the tensors that changed, when the attestation carries per-tensor digests.
    if wants_tensors && !altered.is_empty() {
        let mut tensor_ck = to_hash.clone();
        tensor_ck.files.retain(|f| altered.contains(&f.path));
        let per_tensor = HashOptions {
            algorithms: Algorithms::Blake3Only,
            per_tensor: true,
            threads,
        };
        if let Ok(m) = hash_checkpoint(&tensor_ck, &per_tensor, &|_| {}) {
            for f in &m.files {
                let (Some(now), Some(then)) = (&f.tensors, &attested[f.path.as_str()].tensors)
                else {
                    continue;
                };
                let then: BTreeMap<&str, [u8; 32]> =
                    then.iter().map(|t| (t.name.as_str(), t.blake3.0)).collect();
                let tensors: Vec<String> = now
                    .iter()
                    .filter(|t| then.get(t.name.as_str()) != Some(&t.blake3))
                    .map(|t| t.name.clone())
                    .collect();
                report.problems.push(Problem::TensorsChanged {
                    path: f.path.clone(),
                    tensors,
                });
            }
        }
    }
    Ok(())
}
