//! Admission, one pipeline for every store and every way bytes arrive:
//!
//! 1. **plan**: authenticate (a statement without enough trusted signatures costs nothing to
//!    refuse), compare the file set (names and sizes) with the attested one, then compare the
//!    attested digests with what the store already holds ([`plan`]);
//! 2. **ingest**: copy what is new into the store's staging area, hashing the bytes written
//!    ([`Staging::put_files`]); nothing is read twice, and what is reused is not read at all;
//! 3. **judge**: the same bind and judge stages as `verify`, on the digests of the stored bytes
//!    and the safetensors headers read from them;
//! 4. **publish**: blobs, envelope, grants and signature files, the revision record, the ref
//!    last ([`Staging::commit`]); a refusal or an error aborts, and nothing appears.
//!
//! A file set that does not match is verified in place instead, which names every problem as
//! `verify --full` does, and nothing is copied.

mod commit;
mod destinations;
mod plan;

pub use commit::{CommitRequest, CommittedFile, admit_commit, namespace_of};
pub use destinations::{no_destination_served, request_destinations};

use weightgate_attest::hashing::{
    CheckpointDigests, FileDigests, HashOptions, Progress, hash_checkpoint, root_digest,
};
use weightgate_attest::reading::{Checkpoint, OpenOptions, SafetensorsHeader};
use weightgate_schemas::Statement;

use crate::decision::{CheckName, Decision};
use crate::finding::Problem;
use crate::gate::store::{
    BlobSource, Hashes, Publication, PublishedFile, RefPrecondition, RevisionRecord, SourceFile,
    StagedFile, Staging, Store, StoreError, check_ref, check_repo_id,
};
use crate::model_sig::OmsRequest;
use crate::policy::{Context, Policy};
use crate::reason::ReasonCode;
use crate::stages::{Authenticated, Bound, SubjectScope, SubjectSource, authenticate, bind, judge};
use plan::Step;

/// What to admit, and under which policy.
pub struct AdmitRequest<'a> {
    /// Repository id to serve it as, `ORG/NAME`.
    pub repo: &'a str,
    /// Ref name to point at the new revision.
    pub ref_name: &'a str,
    pub checkpoint: &'a std::path::Path,
    pub open: OpenOptions,
    pub envelope: &'a [u8],
    pub grants: Vec<Vec<u8>>,
    pub policy: &'a Policy,
    /// An OpenSSF model-signing bundle to check beside the attestation.
    pub oms: Option<OmsRequest>,
    pub now: i64,
}

/// What admission decided.
#[derive(Debug)]
pub enum Admission {
    /// Published. The decision may still deny for some requests: regimes depend on the
    /// destination and date of each download, so the gate judges them per request.
    Admitted {
        record: RevisionRecord,
        decision: Decision,
        /// Files whose blobs were already stored and were not written again.
        reused_files: usize,
        /// Of those, the blobs read back and hashed because no record proved them unchanged.
        rehashed_files: usize,
    },
    /// Nothing was published; the decision says why.
    Refused(Decision),
}

/// Which failed checks keep a release out of the store: all but the regimes' per-destination
/// refusals (the gate judges those per request), and the regimes' refusal of every destination.
pub fn blocks_admission(code: ReasonCode) -> bool {
    code.family() != crate::reason::Family::Regime || code == ReasonCode::RegimeNoDestinationServed
}

/// Whether admission refuses the release `d` judged (destination-free): a check that blocks
/// admission failed, or the regimes refuse every destination a request can carry (then that
/// failure is added to `d`). Every entrance to admission decides here.
pub(crate) fn refuses(
    auth: &Authenticated,
    policy: &Policy,
    grants: &[Vec<u8>],
    now: i64,
    d: &mut Decision,
) -> bool {
    if d.reasons.iter().any(|r| blocks_admission(r.code)) {
        return true;
    }
    let (verified, _) = crate::stages::authenticate_grants(policy, grants, now);
    match no_destination_served(policy, auth.statement(), &verified, now) {
        Some(problem) => {
            d.fail(CheckName::Regimes, problem);
            // First: it is why admission refused, and a client may show only the start of a
            // long message (`X-Error-Message` is cut at 1000 characters).
            d.reasons.rotate_right(1);
            d.allowed = false;
            true
        }
        None => false,
    }
}

/// The opening every entrance to admission shares: the repository and ref names checked, the
/// envelope authenticated, and the policy's `[[namespace]]` binding applied to its signers.
/// `Ok(Err(decision))` when the release is refused there.
pub(crate) fn authenticate_under(
    repo: &str,
    ref_name: &str,
    envelope: &[u8],
    policy: &Policy,
    now: i64,
) -> Result<Result<(Authenticated, Decision), Decision>, StoreError> {
    check_repo_id(repo)?;
    check_ref(ref_name)?;
    let mut d = Decision::new(now);
    let Some(auth) = authenticate(envelope, policy, now, &mut d) else {
        return Ok(Err(d));
    };
    if let Some(why) = policy.namespace_refusal(namespace_of(repo), auth.signers()) {
        d.fail(CheckName::Signatures, Problem::WrongNamespace { why });
        return Ok(Err(d));
    }
    Ok(Ok((auth, d)))
}

/// Admits a checkpoint into `store` if every check but the per-request regimes passes. Copying
/// and judging block their thread ([`crate::gate::blocking`]): on a multi-threaded runtime,
/// other tasks move to other workers meanwhile.
pub async fn admit(
    store: &dyn Store,
    req: &AdmitRequest<'_>,
    progress: Progress<'_>,
) -> Result<Admission, StoreError> {
    let (auth, mut d) =
        match authenticate_under(req.repo, req.ref_name, req.envelope, req.policy, req.now)? {
            Ok(opened) => opened,
            Err(refused) => return Ok(Admission::Refused(refused)),
        };
    let st = auth.statement();

    // Names and sizes first: a mismatch is judged in place, without copying anything.
    let source = Checkpoint::open(req.checkpoint, &req.open).ok();
    let Some(mut source) = source.filter(|s| same_file_set(st, s)) else {
        let subject = SubjectSource::OnDisk {
            checkpoint: req.checkpoint,
            open: req.open.clone(),
            full: true,
            threads: 0,
            oms: req.oms.clone(),
            scope: SubjectScope::Whole,
        };
        crate::gate::blocking(|| bind_and_judge(&auth, &subject, req, &mut d, progress))?;
        return Ok(Admission::Refused(d));
    };

    // Staging first: a folder store's `store gc` waits for it, so what the plan finds stored
    // and reuses is still there at commit.
    let mut staging = store.begin(req.now).await?;
    let planned = async {
        plan::plan(
            store,
            st,
            &current_records(store, req.repo).await?,
            progress,
        )
        .await
    }
    .await;
    let plan = match planned {
        Ok(p) => p,
        Err(e) => {
            staging.abort().await;
            return Err(e);
        }
    };
    let staged = match ingest(staging.as_mut(), st, &source, &plan.steps, progress).await {
        Ok(s) => s,
        Err(e) => {
            staging.abort().await;
            return Err(e);
        }
    };
    let judged = async {
        let hashes = file_hashes(store, st, &mut source, &plan.steps, &staged, progress).await?;
        let digests = CheckpointDigests {
            root_sha256: Some(root_digest(hashes.iter().map(|h| &h.sha256))),
            files: st
                .subject
                .files
                .iter()
                .zip(&hashes)
                .map(|(entry, h)| FileDigests {
                    path: entry.path.clone(),
                    size: entry.size,
                    sha256: Some(h.sha256),
                    blake3: Some(h.blake3),
                    tensors: None,
                })
                .collect(),
        };
        let subject = SubjectSource::Stored {
            checkpoint: &source,
            digests: &digests,
            reused_files: plan.reused(),
            oms_root: req.checkpoint,
            oms: req.oms.clone(),
        };
        let bound =
            crate::gate::blocking(|| bind_and_judge(&auth, &subject, req, &mut d, &|_| {}))?;
        Ok::<_, StoreError>((bound, hashes))
    }
    .await;
    let (bound, hashes) = match judged {
        Ok(j) => j,
        Err(e) => {
            staging.abort().await;
            return Err(e);
        }
    };
    if refuses(&auth, req.policy, &req.grants, req.now, &mut d) {
        staging.abort().await;
        return Ok(Admission::Refused(d));
    }
    let files = st
        .subject
        .files
        .iter()
        .zip(hashes)
        .enumerate()
        .map(|(i, (entry, hashes))| PublishedFile {
            path: entry.path.clone(),
            size: entry.size,
            hashes,
            blob: blob_source(st, &plan.steps, i),
        })
        .collect();
    let publication = Publication {
        repo: req.repo,
        ref_name: req.ref_name,
        ref_was: RefPrecondition::Any,
        revision: auth.payload_sha256()[..40].to_string(),
        now: req.now,
        envelope: req.envelope,
        grants: &req.grants,
        model_sig: req.oms.as_ref().map(|o| o.bundle.as_slice()),
        header_parameters: bound.header_parameters().unwrap_or(0),
        files,
    };
    let record = staging.commit(publication).await?;
    Ok(Admission::Admitted {
        record,
        decision: d,
        reused_files: plan.reused(),
        rehashed_files: plan.rehashed,
    })
}

/// The records every ref of `repo` points at now: what the repository already has.
async fn current_records(store: &dyn Store, repo: &str) -> Result<Vec<RevisionRecord>, StoreError> {
    let mut records: Vec<RevisionRecord> = Vec::new();
    for (_, revision) in store.refs(repo).await? {
        if records.iter().any(|r| r.revision == revision) {
            continue;
        }
        if let Some(r) = store.manifest(repo, &revision).await? {
            records.push(r);
        }
    }
    Ok(records)
}

/// Stages every file the plan ingests; the result is in the order of those files. Each keeps
/// enough of its first bytes for the longest safetensors header among the files that share its
/// bytes, so all of them get their header from what is stored.
async fn ingest(
    staging: &mut (dyn Staging + '_),
    st: &Statement,
    source: &Checkpoint,
    steps: &[Step],
    progress: Progress<'_>,
) -> Result<Vec<StagedFile>, StoreError> {
    let head_len = |path: &str| {
        source
            .file(path)
            .and_then(|f| f.header.as_ref())
            .map_or(0, |h| 8 + h.header_len as usize)
    };
    // The longest header among the files that share each ingested file's bytes.
    let mut group_head_len: Vec<usize> =
        st.subject.files.iter().map(|e| head_len(&e.path)).collect();
    for (e, step) in st.subject.files.iter().zip(steps) {
        if let Step::SameAs(first) = step {
            group_head_len[*first] = group_head_len[*first].max(head_len(&e.path));
        }
    }
    let mut files = Vec::new();
    for (i, (entry, step)) in st.subject.files.iter().zip(steps).enumerate() {
        if *step != Step::Ingest {
            continue;
        }
        let file = source
            .file(&entry.path)
            .ok_or_else(|| StoreError::source_changed(&source.root.join(&entry.path)))?;
        files.push(SourceFile {
            path: entry.path.clone(),
            fs_path: file.fs_path.clone(),
            sha256: entry.sha256.0,
            size: entry.size,
            identity: file.identity,
            head_len: group_head_len[i],
        });
    }
    if files.is_empty() {
        return Ok(Vec::new());
    }
    staging.put_files(&files, progress).await
}

/// The digests of every attested file's stored bytes, in statement order; the safetensors
/// headers of `source` are replaced by those read from the stored bytes, so what is judged is
/// what will be served. Files with the same bytes share the digests and stored bytes of the
/// first of them.
async fn file_hashes(
    store: &dyn Store,
    st: &Statement,
    source: &mut Checkpoint,
    steps: &[Step],
    staged: &[StagedFile],
    progress: Progress<'_>,
) -> Result<Vec<Hashes>, StoreError> {
    let mut proved = prove(st, source, steps, progress)?.into_iter();
    let mut staged_iter = staged.iter();
    // The staged file of each ingested index.
    let mut staged_at: Vec<Option<&StagedFile>> = vec![None; steps.len()];
    let mut out: Vec<Hashes> = Vec::with_capacity(steps.len());
    for (i, (entry, step)) in st.subject.files.iter().zip(steps).enumerate() {
        let Some(file) = source.files.iter_mut().find(|f| f.path == entry.path) else {
            return Err(StoreError::source_changed(&source.root.join(&entry.path)));
        };
        let changed = || StoreError::source_changed(&file.fs_path);
        let first = match step {
            Step::SameAs(first) => *first,
            _ => i,
        };
        let hashes = match step {
            Step::Ingest => {
                let s = staged_iter.next().ok_or_else(changed)?;
                staged_at[i] = Some(s);
                s.hashes
            }
            Step::Prove { .. } => proved.next().ok_or_else(changed)?,
            Step::Reuse { hashes, .. } => *hashes,
            Step::SameAs(first) => out[*first],
        };
        if file.header.is_some() {
            file.header = Some(match (&steps[first], staged_at[first]) {
                (Step::Ingest, Some(s)) => {
                    header_of(&s.head, entry.size, &entry.path).ok_or_else(changed)?
                }
                _ => stored_header(store, entry.sha256.0, entry.size, &entry.path).await?,
            });
        }
        out.push(hashes);
    }
    Ok(out)
}

/// Both digests of the source files the plan must see before reusing a blob other
/// repositories hold, in statement order. Bytes that differ from the attested ones are then
/// found by the bind stage, which compares these digests with the statement.
fn prove(
    st: &Statement,
    source: &Checkpoint,
    steps: &[Step],
    progress: Progress,
) -> Result<Vec<Hashes>, StoreError> {
    let paths: Vec<&str> = st
        .subject
        .files
        .iter()
        .zip(steps)
        .filter(|(_, s)| matches!(s, Step::Prove { .. }))
        .map(|(e, _)| e.path.as_str())
        .collect();
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut sub = source.clone();
    sub.files.retain(|f| paths.contains(&f.path.as_str()));
    let digests =
        crate::gate::blocking(|| hash_checkpoint(&sub, &HashOptions::default(), progress))?;
    paths
        .iter()
        .map(|p| {
            let d = digests.files.iter().find(|d| d.path == *p);
            match d.and_then(|d| Some((d.sha256?, d.blake3?))) {
                Some((sha256, blake3)) => Ok(Hashes { sha256, blake3 }),
                None => Err(StoreError::source_changed(&source.root.join(p))),
            }
        })
        .collect()
}

/// The header in `head` (the first bytes of a stored file: the 8-byte length, then the JSON,
/// perhaps more), or `None` if those bytes hold no whole header.
fn header_of(head: &[u8], size: u64, path: &str) -> Option<SafetensorsHeader> {
    let len_bytes = <[u8; 8]>::try_from(head.get(..8)?).ok()?;
    let len = SafetensorsHeader::declared_len(len_bytes, size, path).ok()?;
    SafetensorsHeader::parse(head.get(8..8 + len)?, size, path).ok()
}

/// The safetensors header of a stored blob, read from it.
async fn stored_header(
    store: &dyn Store,
    sha256: [u8; 32],
    size: u64,
    path: &str,
) -> Result<SafetensorsHeader, StoreError> {
    let name = hex::encode(sha256);
    let bad = |why: String| StoreError::Corrupt {
        location: format!("{}/blobs/{name} ({path})", store.location()),
        why,
    };
    let prefix = match size {
        0..8 => Vec::new(),
        _ => store.read_blob(&name, 0, 8).await?,
    };
    let len_bytes = <[u8; 8]>::try_from(prefix.as_slice()).unwrap_or_default();
    let len = SafetensorsHeader::declared_len(len_bytes, size, path)
        .map_err(|e| bad(e.to_string()))? as u64;
    let json = store.read_blob(&name, 8, len).await?;
    SafetensorsHeader::parse(&json, size, path).map_err(|e| bad(e.to_string()))
}

/// Where the blob of the `i`-th attested file comes from, by the plan.
fn blob_source(st: &Statement, steps: &[Step], i: usize) -> BlobSource {
    match &steps[i] {
        Step::Ingest => BlobSource::Staged {
            staged_path: st.subject.files[i].path.clone(),
        },
        Step::Reuse { identity, .. } | Step::Prove { identity } => {
            BlobSource::Stored(identity.clone())
        }
        Step::SameAs(first) => blob_source(st, steps, *first),
    }
}

/// The bind and judge stages into `d`. Regimes are judged without a destination: admission
/// only needs to know which non-regime checks fail.
fn bind_and_judge(
    auth: &Authenticated,
    subject: &SubjectSource,
    req: &AdmitRequest,
    d: &mut Decision,
    progress: Progress,
) -> Result<Bound, StoreError> {
    let bound = bind(auth, subject, req.policy, d, progress)?;
    let context = Context {
        now: req.now,
        destination: None,
    };
    judge(auth, &bound, req.policy, &context, &req.grants, None, d);
    Ok(bound)
}

/// True when the checkpoint holds exactly the attested paths with the attested sizes.
fn same_file_set(st: &Statement, source: &Checkpoint) -> bool {
    st.subject.files.len() == source.files.len()
        && st
            .subject
            .files
            .iter()
            .all(|f| source.file(&f.path).is_some_and(|s| s.size == f.size))
}
