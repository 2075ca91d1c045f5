//! Admission of a revision that arrived as a commit over the Hub API: the parent's files plus
//! the commit's changes, whose bytes are already in the store (pending objects the commit
//! adopts, or blobs its namespace's revisions hold). The same stages as [`super::admit`]
//! judge it: authenticate the envelope, bind its subject to the digests the bytes got when
//! they were received (nothing is read again but the safetensors headers and shard indexes),
//! judge, then publish atomically or release everything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use weightgate_attest::hashing::{CheckpointDigests, FileDigests, root_digest};
use weightgate_attest::reading::{
    Checkpoint, CheckpointError, CheckpointFile, FileKind, SafetensorsHeader, ShardIndex,
    component_order,
};

use super::{Admission, authenticate_under, header_of, refuses, stored_header};
use crate::gate::store::{
    BlobSource, Hashes, Publication, PublishedFile, RefPrecondition, StagedFile, Staging, Store,
    StoreError,
};
use crate::gate::upload::ObjectSource;
use crate::policy::{Context, Policy};
use crate::stages::{SubjectSource, bind, judge};

/// Largest shard index read (as `attest` caps them when reading a checkpoint folder).
const MAX_INDEX_LEN: u64 = 16 << 20;

/// A commit's resulting revision, to judge and publish.
pub struct CommitRequest<'a> {
    /// `ORG/NAME`; `ORG` is the namespace whose pending objects the files name.
    pub repo: &'a str,
    pub ref_name: &'a str,
    /// What the branch pointed at when the commit was resolved against it.
    pub ref_was: RefPrecondition,
    /// Every file of the resulting revision except its signature files, with where its bytes
    /// are.
    pub files: Vec<CommittedFile>,
    /// The resulting revision's `weightgate.att`.
    pub envelope: &'a [u8],
    pub policy: &'a Policy,
    pub now: i64,
}

/// One file of a committed revision.
#[derive(Debug, Clone)]
pub struct CommittedFile {
    pub path: String,
    pub size: u64,
    pub source: ObjectSource,
}

/// The namespace (`ORG`) of a repository id.
pub fn namespace_of(repo: &str) -> &str {
    repo.split_once('/').map_or(repo, |(org, _)| org)
}

/// Judges the revision `req` describes and publishes it if nothing but per-request regimes
/// fails. `Err` for a store failure or a file that cannot be read as what its name says
/// (`StoreError::Source`); pending objects adopted before either are released.
pub async fn admit_commit(
    store: &dyn Store,
    req: &CommitRequest<'_>,
) -> Result<Admission, StoreError> {
    let (auth, mut d) =
        match authenticate_under(req.repo, req.ref_name, req.envelope, req.policy, req.now)? {
            Ok(opened) => opened,
            Err(refused) => return Ok(Admission::Refused(refused)),
        };
    let mut staging = store.begin(req.now).await?;
    let received = match receive(store, staging.as_mut(), req).await {
        Ok(r) => r,
        Err(e) => {
            staging.abort().await;
            return Err(e);
        }
    };
    let subject = SubjectSource::Stored {
        checkpoint: &received.checkpoint,
        digests: &received.digests,
        reused_files: received.reused,
        oms_root: Path::new(""),
        oms: None,
    };
    let context = Context {
        now: req.now,
        destination: None,
    };
    let bound = crate::gate::blocking(|| {
        let bound = bind(&auth, &subject, req.policy, &mut d, &|_| {})?;
        judge(&auth, &bound, req.policy, &context, &[], None, &mut d);
        Ok::<_, CheckpointError>(bound)
    });
    let bound = match bound {
        Ok(b) => b,
        Err(e) => {
            staging.abort().await;
            return Err(e.into());
        }
    };
    if refuses(&auth, req.policy, &[], req.now, &mut d) {
        staging.abort().await;
        return Ok(Admission::Refused(d));
    }
    let st = auth.statement();
    let mut files = Vec::with_capacity(st.subject.files.len());
    for entry in &st.subject.files {
        let Some((hashes, blob)) = received.blobs.get(&entry.path) else {
            staging.abort().await;
            return Err(StoreError::Corrupt {
                location: entry.path.clone(),
                why: "attested but not received (the subject check passed without it)".into(),
            });
        };
        files.push(PublishedFile {
            path: entry.path.clone(),
            size: entry.size,
            hashes: *hashes,
            blob: blob.clone(),
        });
    }
    let publication = Publication {
        repo: req.repo,
        ref_name: req.ref_name,
        ref_was: req.ref_was.clone(),
        revision: auth.payload_sha256()[..40].to_string(),
        now: req.now,
        envelope: req.envelope,
        grants: &[],
        model_sig: None,
        header_parameters: bound.header_parameters().unwrap_or(0),
        files,
    };
    let record = staging.commit(publication).await?;
    Ok(Admission::Admitted {
        record,
        decision: d,
        reused_files: received.reused,
        rehashed_files: received.rehashed,
    })
}

/// The committed files as the bind stage sees a checkpoint, with their digests and blobs.
struct Received {
    checkpoint: Checkpoint,
    digests: CheckpointDigests,
    blobs: HashMap<String, (Hashes, BlobSource)>,
    reused: usize,
    rehashed: usize,
}

/// Adopts every pending object the files name into `staging` (once per digest) and reads the
/// safetensors headers and shard indexes from the bytes received or stored.
async fn receive(
    store: &dyn Store,
    staging: &mut (dyn Staging + '_),
    req: &CommitRequest<'_>,
) -> Result<Received, StoreError> {
    let namespace = namespace_of(req.repo);
    let mut files = req.files.clone();
    files.sort_by(|a, b| component_order(&a.path, &b.path));
    let mut by_digest: HashMap<String, (Hashes, BlobSource, Vec<u8>)> = HashMap::new();
    let mut out = Received {
        checkpoint: Checkpoint {
            root: PathBuf::new(),
            single_file: false,
            files: Vec::with_capacity(files.len()),
            indexes: Vec::new(),
            warnings: Vec::new(),
            read: Default::default(),
        },
        digests: CheckpointDigests {
            files: Vec::with_capacity(files.len()),
            root_sha256: None,
        },
        blobs: HashMap::new(),
        reused: 0,
        rehashed: 0,
    };
    // The first bytes each digest must keep: the longest any file with those bytes needs.
    let mut head_lens: HashMap<String, usize> = HashMap::new();
    for f in &files {
        if let ObjectSource::Pending(o) = &f.source {
            let len = match kind_of(&f.path) {
                FileKind::Safetensors => o.header_len as usize,
                FileKind::SafetensorsIndex => index_len(&f.path, o.size)?,
                FileKind::Other => 0,
            };
            let e = head_lens.entry(o.sha256.clone()).or_default();
            *e = (*e).max(len);
        }
    }
    let mut index_bytes = Vec::new();
    for f in &files {
        let kind = kind_of(&f.path);
        let sha256 = match &f.source {
            ObjectSource::Pending(o) => o.sha256.clone(),
            ObjectSource::Held(a) => a.sha256.clone(),
            ObjectSource::Inline(b) => hex::encode(sha2::Sha256::digest(b)),
        };
        if !by_digest.contains_key(&sha256) {
            let got = match &f.source {
                ObjectSource::Pending(o) => {
                    let head_len = head_lens.get(&o.sha256).copied().unwrap_or(0);
                    let StagedFile { hashes, head } = staging
                        .adopt_pending(namespace, o, &o.sha256, head_len)
                        .await?;
                    let blob = BlobSource::Staged {
                        staged_path: o.sha256.clone(),
                    };
                    (hashes, blob, head)
                }
                ObjectSource::Held(a) => {
                    let (hashes, identity, rehashed) = held_blob(store, a).await?;
                    out.reused += 1;
                    out.rehashed += rehashed as usize;
                    let head = match kind {
                        FileKind::SafetensorsIndex => {
                            store
                                .read_blob(&a.sha256, 0, index_len(&f.path, a.size)? as u64)
                                .await?
                        }
                        _ => Vec::new(),
                    };
                    (hashes, BlobSource::Stored(identity), head)
                }
                ObjectSource::Inline(bytes) => {
                    let hashes = staging.put_bytes(&sha256, bytes).await?;
                    let blob = BlobSource::Staged {
                        staged_path: sha256.clone(),
                    };
                    (hashes, blob, bytes.clone())
                }
            };
            by_digest.insert(sha256.clone(), got);
        }
        let (hashes, blob, head) = &by_digest[&sha256];
        let header = match kind {
            FileKind::Safetensors => Some(match &f.source {
                ObjectSource::Pending(_) | ObjectSource::Inline(_) => {
                    header_of(head, f.size, &f.path)
                        .ok_or_else(|| bad_header(&f.path, head, f.size))?
                }
                ObjectSource::Held(_) => {
                    stored_header(store, hashes.sha256, f.size, &f.path).await?
                }
            }),
            FileKind::SafetensorsIndex => {
                index_bytes.push((f.path.clone(), head.clone()));
                None
            }
            FileKind::Other => None,
        };
        out.checkpoint.files.push(CheckpointFile {
            path: f.path.clone(),
            fs_path: PathBuf::new(),
            size: f.size,
            kind,
            header,
            identity: None,
        });
        out.digests.files.push(FileDigests {
            path: f.path.clone(),
            size: f.size,
            sha256: Some(hashes.sha256),
            blake3: Some(hashes.blake3),
            tensors: None,
        });
        out.blobs.insert(f.path.clone(), (*hashes, blob.clone()));
    }
    out.digests.root_sha256 = Some(root_digest(
        out.digests.files.iter().filter_map(|f| f.sha256.as_ref()),
    ));
    let headers: HashMap<&str, &SafetensorsHeader> = out
        .checkpoint
        .files
        .iter()
        .filter_map(|f| f.header.as_ref().map(|h| (f.path.as_str(), h)))
        .collect();
    let tensors: usize = headers.values().map(|h| h.tensors.len()).sum::<usize>() + 1024;
    let mut indexes = Vec::new();
    for (path, bytes) in &index_bytes {
        let index = ShardIndex::parse(bytes, path, tensors)?;
        out.checkpoint
            .warnings
            .extend(index.check_against(&headers)?);
        indexes.push(index);
    }
    out.checkpoint.indexes = indexes;
    Ok(out)
}

/// The digests and identity of a blob the namespace holds: from its record when the store
/// proves it unchanged since, else from its bytes read again (`true`).
async fn held_blob(
    store: &dyn Store,
    f: &crate::gate::store::AdmittedFile,
) -> Result<(Hashes, crate::gate::store::BlobIdentity, bool), StoreError> {
    let location = format!("{}/blobs/{}", store.location(), f.sha256);
    let now = store
        .blob_state(&f.sha256)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            location: location.clone(),
            why: "a blob a revision of this namespace names",
        })?;
    let recorded = |h: &str| <[u8; 32]>::try_from(hex::decode(h).ok()?).ok();
    if now.defect.is_none()
        && now.size == f.size
        && f.blob.proves_unchanged(&now.identity)
        && let (Some(sha256), Some(blake3)) = (recorded(&f.sha256), recorded(&f.blake3))
    {
        return Ok((Hashes { sha256, blake3 }, now.identity, false));
    }
    let (hashes, state) = store.rehash_blob(&f.sha256, &|_| {}).await?;
    if state.defect.is_some() || hex::encode(hashes.sha256) != f.sha256 || state.size != f.size {
        return Err(StoreError::BlobChanged {
            location,
            why: "it no longer holds the bytes admitted".into(),
        });
    }
    Ok((hashes, state.identity, true))
}

fn kind_of(path: &str) -> FileKind {
    if path.ends_with(".safetensors.index.json") {
        FileKind::SafetensorsIndex
    } else if path.ends_with(".safetensors") {
        FileKind::Safetensors
    } else {
        FileKind::Other
    }
}

fn index_len(path: &str, size: u64) -> Result<usize, StoreError> {
    if size > MAX_INDEX_LEN {
        return Err(CheckpointError::Index {
            path: path.to_string(),
            problem: format!("{size} bytes exceeds the cap of {MAX_INDEX_LEN}"),
        }
        .into());
    }
    Ok(size as usize)
}

/// Why the first bytes of an uploaded `.safetensors` file hold no header.
fn bad_header(path: &str, head: &[u8], size: u64) -> StoreError {
    let header = |problem: String| CheckpointError::Header {
        path: path.to_string(),
        problem,
    };
    let declared = <[u8; 8]>::try_from(head.get(..8).unwrap_or_default())
        .map_err(|_| header(format!("{size} bytes: too short for a header")))
        .and_then(|b| SafetensorsHeader::declared_len(b, size, path));
    let e = match declared {
        Err(e) => e,
        Ok(len) => SafetensorsHeader::parse(head.get(8..8 + len).unwrap_or_default(), size, path)
            .err()
            .unwrap_or_else(|| header("its header could not be read".into())),
    };
    e.into()
}
