//! Subject binding: the checkpoint on disk is exactly the attested file set, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use weightgate_attest::hashing::{Algorithms, HashOptions, Progress, hash_checkpoint, root_digest};
use weightgate_attest::reading::{Checkpoint, CheckpointError, OpenOptions};
use weightgate_schemas::Statement;

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

/// One problem found, with its stable reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectProblem {
    pub code: &'static str,
    pub message: String,
}

/// What subject binding found.
#[derive(Debug, Clone, Default)]
pub struct SubjectReport {
    pub problems: Vec<SubjectProblem>,
    pub files_checked: usize,
    pub bytes_hashed: u64,
    pub header_parameters: Option<u64>,
    /// SHA-256 of each file hashed, by path, when SHA-256 was computed.
    pub sha256: BTreeMap<String, [u8; 32]>,
}

fn problem(code: &'static str, message: String) -> SubjectProblem {
    SubjectProblem { code, message }
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
    let mut report = SubjectReport::default();
    let subject = &statement.subject;

    // The root must follow from the attested digests, in the attested order.
    let claimed_root = root_digest(subject.files.iter().map(|f| &f.sha256.0));
    if claimed_root != subject.root_sha256.0 {
        report.problems.push(problem(
            "subject.root_mismatch",
            format!(
                "root sha256:{} does not follow from the attested file digests (they give sha256:{})",
                subject.root_sha256.to_hex(),
                hex_of(&claimed_root)
            ),
        ));
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
        report.problems.push(problem(
            "subject.root_mismatch",
            "attested files are not in path-component order".into(),
        ));
    }

    let checkpoint = match Checkpoint::open(root, open) {
        Ok(c) => c,
        Err(CheckpointError::Io { path, error }) if path == root => {
            return Err(CheckpointError::Io { path, error });
        }
        Err(e) => {
            let code = match e {
                CheckpointError::Header { .. } | CheckpointError::Index { .. } => {
                    "subject.header_invalid"
                }
                _ => "subject.unsafe_path",
            };
            report.problems.push(problem(code, e.to_string()));
            return Ok(report);
        }
    };
    let params = checkpoint.parameters();
    report.header_parameters = Some(params.total);

    let attested: BTreeMap<&str, &weightgate_schemas::FileEntry> =
        subject.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let on_disk: BTreeSet<&str> = checkpoint.files.iter().map(|f| f.path.as_str()).collect();
    for f in &subject.files {
        if !on_disk.contains(f.path.as_str()) {
            report.problems.push(problem(
                "subject.missing_file",
                format!("{}: attested but not in the checkpoint", f.path),
            ));
        }
    }
    for f in &checkpoint.files {
        if !attested.contains_key(f.path.as_str()) {
            let renamed = attested
                .values()
                .find(|a| a.size == f.size && !on_disk.contains(a.path.as_str()))
                .map(|a| format!(" (same size as the missing `{}`: renamed?)", a.path))
                .unwrap_or_default();
            report.problems.push(problem(
                "subject.extra_file",
                format!("{}: in the checkpoint but not attested{renamed}", f.path),
            ));
        }
    }

    let mut to_hash = checkpoint.clone();
    to_hash
        .files
        .retain(|f| match attested.get(f.path.as_str()) {
            Some(a) if a.size == f.size => true,
            Some(a) => {
                report.problems.push(problem(
                    "subject.size_mismatch",
                    format!("{}: {} bytes, attested {}", f.path, f.size, a.size),
                ));
                false
            }
            None => false,
        });
    if let Some(claimed) = statement.compute.inputs.params_total
        && claimed != params.total
    {
        report.problems.push(problem(
            "subject.parameter_mismatch",
            format!(
                "statement claims {claimed} parameters; the safetensors headers hold {}",
                params.total
            ),
        ));
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
    let manifest = hash_checkpoint(&to_hash, &opts, progress)?;
    report.files_checked = manifest.files.len();
    report.bytes_hashed = to_hash.total_bytes();
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
            let which = if blake_bad { "BLAKE3" } else { "SHA-256" };
            report.problems.push(problem(
                "subject.digest_mismatch",
                format!("{}: {which} digest differs from the attested one", got.path),
            ));
        }
    }
    if mode != DigestMode::Blake3
        && altered.is_empty()
        && report
            .problems
            .iter()
            .all(|p| p.code != "subject.root_mismatch")
        && let Some(root_now) = manifest.root_sha256
        && manifest.files.len() == subject.files.len()
        && root_now != subject.root_sha256.0
    {
        report.problems.push(problem(
            "subject.root_mismatch",
            format!("root of the files on disk is sha256:{}", hex_of(&root_now)),
        ));
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
                let changed: Vec<&str> = now
                    .iter()
                    .filter(|t| then.get(t.name.as_str()) != Some(&t.blake3))
                    .map(|t| t.name.as_str())
                    .collect();
                let message = if changed.is_empty() {
                    format!(
                        "{}: tensor data unchanged; the header or padding differs",
                        f.path
                    )
                } else {
                    format!("{}: changed tensor(s): {}", f.path, changed.join(", "))
                };
                report
                    .problems
                    .push(problem("subject.tensor_mismatch", message));
            }
        }
    }
    Ok(report)
}

fn hex_of(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
