//! What a page shows beyond the decision: the statement's own claims (model, entity, compute
//! inputs, lineage, references), who signed the envelope and the grants admitted with it. They
//! depend only on stored bytes that are content-addressed (an envelope and its grants are named
//! by the SHA-256 of their bytes), so each is decoded once and kept, not per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use weightgate_schemas::estimate::{Estimate, estimates};
use weightgate_schemas::{Envelope, Grant, Statement};

use crate::gate::store::RevisionRecord;

/// A countersigned grant as admitted: who signed it and what it grants.
pub struct GrantFacts {
    pub keyids: Vec<String>,
    pub grant: Grant,
}

/// The decoded claims of one admitted revision.
pub struct ClaimFacts {
    /// The statement without its file list (see [`ClaimFacts::decode`]).
    pub statement: Statement,
    /// Key ids of the envelope's signatures, in order: the signer first, then cosigners.
    pub signature_keyids: Vec<String>,
    /// The estimates the compute claim's own inputs imply (6·N·D, hardware).
    pub estimates: Vec<Estimate>,
    pub grants: Vec<GrantFacts>,
}

/// Why the stored claims could not be read (they decoded at admission, so the store changed).
#[derive(Debug, thiserror::Error)]
#[error("the stored {what} does not decode: {problem}")]
pub struct UnreadableClaims {
    what: &'static str,
    problem: String,
}

impl ClaimFacts {
    pub fn decode(envelope: &[u8], grants: &[Vec<u8>]) -> Result<Self, UnreadableClaims> {
        let unreadable = |what, problem: String| UnreadableClaims { what, problem };
        let env = Envelope::decode_strict(envelope)
            .map_err(|e| unreadable("attestation envelope", e.to_string()))?;
        let mut statement = Statement::decode_strict(&env.payload)
            .map_err(|e| unreadable("attestation statement", e.to_string()))?;
        // Pages list the admitted record's files; the statement's own list, with per-tensor
        // digests, can be megabytes per revision (91,000 tensors) and is not kept.
        statement.subject.files = Vec::new();
        let grants = grants
            .iter()
            .map(|bytes| {
                let env = Envelope::decode_strict(bytes)
                    .map_err(|e| unreadable("grant envelope", e.to_string()))?;
                let grant = Grant::decode_strict(&env.payload)
                    .map_err(|e| unreadable("grant", e.to_string()))?;
                Ok(GrantFacts {
                    keyids: env.signatures.iter().map(|s| s.keyid.clone()).collect(),
                    grant,
                })
            })
            .collect::<Result<_, UnreadableClaims>>()?;
        Ok(ClaimFacts {
            estimates: estimates(&statement.compute.inputs),
            signature_keyids: env.signatures.iter().map(|s| s.keyid.clone()).collect(),
            statement,
            grants,
        })
    }
}

/// Decoded claims by the stored bytes they come from (envelope and grant digests).
#[derive(Default)]
pub struct ClaimCache {
    entries: Mutex<HashMap<String, Arc<ClaimFacts>>>,
}

/// Entries kept; past it the cache starts over (a page then decodes once more).
const MAX_ENTRIES: usize = 4096;

impl ClaimCache {
    /// The claims of `m`, decoding them with `load` only when not yet known.
    pub async fn get<F, Fut, E>(
        &self,
        m: &RevisionRecord,
        load: F,
    ) -> Result<Arc<ClaimFacts>, ClaimError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<u8>, Vec<Vec<u8>>), E>>,
    {
        let key = std::iter::once(m.attestation.as_str())
            .chain(m.grants.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("+");
        if let Some(c) = self.lock().get(&key) {
            return Ok(c.clone());
        }
        let (envelope, grants) = load().await.map_err(ClaimError::Load)?;
        let facts = Arc::new(
            crate::gate::blocking(|| ClaimFacts::decode(&envelope, &grants))
                .map_err(ClaimError::Unreadable)?,
        );
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, facts.clone());
        Ok(facts)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ClaimFacts>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why claims are not available: the store could not be read, or what it holds does not decode.
#[derive(Debug)]
pub enum ClaimError<E> {
    Load(E),
    Unreadable(UnreadableClaims),
}
