//! A Rekor entry's inclusion proof: the RFC 6962 Merkle audit path from the leaf hash of the
//! canonicalized body to the tree's root (the algorithm of RFC 9162 2.1.3.2), and the
//! checkpoint that commits the log to that root: a signed note (C2SP `signed-note`,
//! `tlog-checkpoint`) whose origin line, tree size and root hash are signed by the log's key.
//! The note's signature is found by the first four bytes of the log id, as sigstore-python
//! and sigstore-go find it.

use sha2::{Digest as _, Sha256};
use weightgate_schemas::oms::{InclusionProof, decode_base64_lenient};

use crate::trust::{LogKey, LogVerifyingKey};

/// A proof that checked out.
#[derive(Debug, Clone)]
pub struct ProvenInclusion {
    pub tree_size: u64,
    pub origin: String,
}

/// Why a proof or its checkpoint is refused.
#[derive(Debug, Clone)]
pub enum InclusionError {
    /// The Merkle path does not lead to the root (or is malformed).
    Proof(String),
    /// The checkpoint is malformed, unsigned by the log, or for another tree.
    Checkpoint(String),
}

fn hash_leaf(leaf: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

fn hash_children(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 2.1.3.2: the root the audit `path` leads to from leaf `index` of a tree of `size`.
fn root_from_path(index: u64, size: u64, leaf: [u8; 32], path: &[[u8; 32]]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = hash_children(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = hash_children(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

fn hash32(text: &str, what: &str) -> Result<[u8; 32], InclusionError> {
    decode_base64_lenient(text)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| InclusionError::Proof(format!("{what} is not a base64 SHA-256 hash")))
}

fn number(text: Option<&str>, what: &str) -> Result<u64, InclusionError> {
    text.and_then(|t| t.parse().ok())
        .ok_or_else(|| InclusionError::Proof(format!("the inclusion proof's {what} is missing")))
}

/// Checks that `body` (the canonicalized entry) is in the tree `proof` names, and that `log`
/// signed that tree's checkpoint.
pub fn verify_inclusion(
    proof: &InclusionProof,
    body: &[u8],
    log: &LogKey,
) -> Result<ProvenInclusion, InclusionError> {
    let index = number(proof.log_index.as_deref(), "logIndex")?;
    let size = number(proof.tree_size.as_deref(), "treeSize")?;
    let root = hash32(
        proof.root_hash.as_deref().unwrap_or_default(),
        "the inclusion proof's rootHash",
    )?;
    let path = proof
        .hashes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|h| hash32(h, "an inclusion proof hash"))
        .collect::<Result<Vec<_>, _>>()?;
    match root_from_path(index, size, hash_leaf(body), &path) {
        Some(computed) if computed == root => {}
        Some(_) => {
            return Err(InclusionError::Proof(format!(
                "the inclusion proof does not lead from the entry to the root hash of the tree of {size}"
            )));
        }
        None => {
            return Err(InclusionError::Proof(format!(
                "the inclusion proof has the wrong number of hashes ({}) for entry {index} of a tree of {size}",
                path.len()
            )));
        }
    }
    let envelope = proof
        .checkpoint
        .as_ref()
        .and_then(|c| c.envelope.as_deref())
        .ok_or_else(|| {
            InclusionError::Checkpoint("the inclusion proof has no checkpoint".into())
        })?;
    let checkpoint = verify_checkpoint(envelope, log)?;
    if checkpoint.size != size || checkpoint.root != root {
        return Err(InclusionError::Checkpoint(format!(
            "the checkpoint commits to a tree of {} with another root than the proof's tree of {size}",
            checkpoint.size
        )));
    }
    Ok(ProvenInclusion {
        tree_size: size,
        origin: checkpoint.origin,
    })
}

struct Checkpoint {
    origin: String,
    size: u64,
    root: [u8; 32],
}

fn checkpoint_error(m: impl Into<String>) -> InclusionError {
    InclusionError::Checkpoint(m.into())
}

/// A signed note: the text up to and including its blank line is signed; each following line
/// is `— NAME BASE64(KEYHINT[4] || SIGNATURE)`.
fn verify_checkpoint(envelope: &str, log: &LogKey) -> Result<Checkpoint, InclusionError> {
    let split = envelope
        .find("\n\n")
        .filter(|&i| envelope[i + 2..].find("\n\n").is_none())
        .ok_or_else(|| checkpoint_error("the checkpoint is not a signed note (one blank line)"))?;
    let note = &envelope[..split + 1];
    let signatures = &envelope[split + 2..];
    let mut lines = note.lines();
    let origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| checkpoint_error("the checkpoint has no origin"))?;
    let size = lines
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| checkpoint_error("the checkpoint's tree size is not a number"))?;
    let root = lines
        .next()
        .and_then(decode_base64_lenient)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| checkpoint_error("the checkpoint's root hash is not base64 SHA-256"))?;
    let hint = log.log_id.get(..4).unwrap_or_default();
    let mut found = false;
    for line in signatures.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(checkpoint_error("a checkpoint signature line is malformed"));
        };
        let Some((_, sig)) = rest.split_once(' ') else {
            return Err(checkpoint_error("a checkpoint signature line is malformed"));
        };
        let sig = decode_base64_lenient(sig)
            .filter(|s| s.len() > 4)
            .ok_or_else(|| checkpoint_error("a checkpoint signature is not base64"))?;
        if &sig[..4] != hint {
            continue;
        }
        found = true;
        let ok = match &log.key {
            LogVerifyingKey::Ecdsa(k) => k.verify_der(note.as_bytes(), &sig[4..]).is_ok(),
            LogVerifyingKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(&sig[4..])
                .is_ok_and(|s| k.verify_strict(note.as_bytes(), &s).is_ok()),
        };
        if ok {
            return Ok(Checkpoint {
                origin: origin.to_string(),
                size,
                root,
            });
        }
    }
    Err(checkpoint_error(if found {
        "the checkpoint's signature does not verify with the log's key"
    } else {
        "the checkpoint carries no signature by the entry's log"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf of trees of 1 to 17 leaves proves against the root built bottom-up.
    #[test]
    fn audit_paths_lead_to_the_root_and_nowhere_else() {
        fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
            if leaves.len() == 1 {
                return leaves[0];
            }
            let k = leaves.len().next_power_of_two() / 2;
            hash_children(&root(&leaves[..k]), &root(&leaves[k..]))
        }
        fn path(leaves: &[[u8; 32]], i: usize) -> Vec<[u8; 32]> {
            if leaves.len() == 1 {
                return vec![];
            }
            let k = leaves.len().next_power_of_two() / 2;
            if i < k {
                let mut p = path(&leaves[..k], i);
                p.push(root(&leaves[k..]));
                p
            } else {
                let mut p = path(&leaves[k..], i - k);
                p.push(root(&leaves[..k]));
                p
            }
        }
        for n in 1..=17usize {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| hash_leaf(&[i as u8])).collect();
            let r = root(&leaves);
            for i in 0..n {
                let p = path(&leaves, i);
                assert_eq!(root_from_path(i as u64, n as u64, leaves[i], &p), Some(r));
                // Another index, a longer or shorter path never reach the same root.
                if n > 1 {
                    let other = ((i + 1) % n) as u64;
                    assert_ne!(root_from_path(other, n as u64, leaves[i], &p), Some(r));
                }
                let mut long = p.clone();
                long.push(r);
                assert_ne!(
                    root_from_path(i as u64, n as u64, leaves[i], &long),
                    Some(r)
                );
            }
        }
        assert_eq!(root_from_path(3, 3, hash_leaf(b"x"), &[]), None);
    }
}
