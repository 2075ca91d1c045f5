//! The plan of an admission: for each attested file, whether its blob must be written or is
//! already in the store.
//!
//! A blob the repository already has (a record one of its refs points at names it) is reused
//! without reading the source: without reading the blob either when it still has
//! the identity recorded (inode and status-change time, or ETag), after hashing it again when
//! it does not. A blob that only other repositories hold is reused too, but the source file
//! must prove it has those bytes (it is read and hashed, not copied): a tenant cannot publish
//! another's weights by naming their digest. A stored blob whose bytes no longer match its
//! name stops the admission. Files with the same attested digest are written once.

use std::collections::HashMap;

use weightgate_attest::hashing::Progress;
use weightgate_schemas::Statement;

use crate::gate::store::{BlobIdentity, Hashes, RevisionRecord, Store, StoreError};

/// What admission does for one attested file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Copy it from the source while hashing.
    Ingest,
    /// Its bytes are the stored blob's, whose digests and identity are these.
    Reuse {
        hashes: Hashes,
        identity: BlobIdentity,
    },
    /// The stored blob (intact, with this identity) is reused once the source file is hashed
    /// and found to hold the same bytes.
    Prove { identity: BlobIdentity },
    /// The same attested bytes as the file at this index of the statement.
    SameAs(usize),
}

/// One step per attested file, in statement order.
#[derive(Debug)]
pub(super) struct Plan {
    pub steps: Vec<Step>,
    /// Stored blobs read back because their record could not prove them unchanged.
    pub rehashed: usize,
}

impl Plan {
    pub fn reused(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Reuse { .. } | Step::Prove { .. }))
            .count()
    }
}

/// Plans the admission of `st` into `store` for a repository whose refs point at `current`.
pub(super) async fn plan(
    store: &dyn Store,
    st: &Statement,
    current: &[RevisionRecord],
    progress: Progress<'_>,
) -> Result<Plan, StoreError> {
    let mut recorded: HashMap<(&str, u64), Vec<&crate::gate::store::AdmittedFile>> = HashMap::new();
    for f in current.iter().flat_map(|r| &r.files) {
        recorded
            .entry((f.sha256.as_str(), f.size))
            .or_default()
            .push(f);
    }
    let mut first_with: HashMap<[u8; 32], usize> = HashMap::new();
    let mut steps = Vec::with_capacity(st.subject.files.len());
    let mut rehashed = 0;
    for (i, entry) in st.subject.files.iter().enumerate() {
        let sha = entry.sha256.0;
        if let Some(&first) = first_with.get(&sha) {
            steps.push(Step::SameAs(first));
            continue;
        }
        first_with.insert(sha, i);
        let name = hex::encode(sha);
        let Some(now) = store.blob_state(&name).await? else {
            steps.push(Step::Ingest);
            continue;
        };
        let ours = recorded.get(&(name.as_str(), entry.size));
        let proven = ours.into_iter().flatten().find_map(|f| {
            let unchanged = now.defect.is_none()
                && now.size == entry.size
                && f.blob.proves_unchanged(&now.identity);
            let blake3 = <[u8; 32]>::try_from(hex::decode(&f.blake3).ok()?).ok()?;
            unchanged.then_some(blake3)
        });
        if let Some(blake3) = proven {
            steps.push(Step::Reuse {
                hashes: Hashes {
                    sha256: sha,
                    blake3,
                },
                identity: now.identity,
            });
            continue;
        }
        // Stored, but not provably as admitted: its bytes decide.
        let (hashes, state) = store.rehash_blob(&name, progress).await?;
        rehashed += 1;
        let location = format!("{}/blobs/{name}", store.location());
        if let Some(defect) = state.defect {
            return Err(StoreError::BlobChanged {
                location,
                why: format!("it {defect}"),
            });
        }
        if hashes.sha256 != sha {
            return Err(StoreError::BlobChanged {
                location,
                why: format!("its SHA-256 is now {}", hex::encode(hashes.sha256)),
            });
        }
        if state.size != entry.size {
            return Err(StoreError::BlobChanged {
                location,
                why: format!("{} bytes, attested {}", state.size, entry.size),
            });
        }
        steps.push(match ours {
            Some(_) => Step::Reuse {
                hashes,
                identity: state.identity,
            },
            None => Step::Prove {
                identity: state.identity,
            },
        });
    }
    Ok(Plan { steps, rehashed })
}
