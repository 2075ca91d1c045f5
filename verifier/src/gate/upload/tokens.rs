//! Write tokens: what `Authorization: Bearer` proves on the write routes. A token is 32 random
//! bytes, shown once when created; the store keeps only its SHA-256 (as the record's id) with
//! its name and the namespaces it may write, so every gate over the store sees the same tokens,
//! and removing the record revokes it at the next request. Tokens never reach a log: the
//! audit log and messages name the token's name.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::gate::store::{MetaKind, Store, StoreError, check_repo_id};

/// Prefix of weightgate's write tokens (as `hf_` marks the Hub's), so a leaked one is
/// recognisable.
pub const TOKEN_PREFIX: &str = "wg_";

/// What a token may do, as stored (without the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    /// `ORG` (every repository of the organisation) or `ORG/NAME` (that repository).
    pub write: Vec<String>,
    pub created_at: i64,
}

impl TokenRecord {
    /// Whether the token may write `repo` (`ORG/NAME`).
    pub fn may_write(&self, repo: &str) -> bool {
        let org = repo.split('/').next().unwrap_or_default();
        self.write.iter().any(|w| w == repo || w == org)
    }

    /// The organisations it writes in (whole or in part), for whoami.
    pub fn orgs(&self) -> Vec<&str> {
        let mut orgs: Vec<&str> = self
            .write
            .iter()
            .map(|w| w.split('/').next().unwrap_or_default())
            .collect();
        orgs.sort();
        orgs.dedup();
        orgs
    }
}

/// The record id of `token`: its SHA-256.
pub fn token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a token could not be created or found.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token name `{0}`: use 1 to 64 characters of [A-Za-z0-9._-]")]
    BadName(String),
    #[error("`{0}` is not a namespace to write: give ORG or ORG/NAME")]
    BadScope(String),
    #[error("a token needs at least one --write ORG[/NAME]")]
    NoScope,
    #[error("a token named `{0}` exists already; revoke it first")]
    Exists(String),
    #[error("no token is named `{0}`")]
    Unknown(String),
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token named `name` that may write `write`; returns the token, which is not
/// stored and cannot be shown again.
pub async fn create(
    store: &dyn Store,
    name: &str,
    write: &[String],
    now: i64,
) -> Result<String, TokenError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(TokenError::BadName(name.to_string()));
    }
    if write.is_empty() {
        return Err(TokenError::NoScope);
    }
    for w in write {
        let as_repo = if w.contains('/') {
            w.clone()
        } else {
            format!("{w}/x")
        };
        if check_repo_id(&as_repo).is_err() {
            return Err(TokenError::BadScope(w.clone()));
        }
    }
    if list(store).await?.iter().any(|(_, r)| r.name == name) {
        return Err(TokenError::Exists(name.to_string()));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let record = TokenRecord {
        name: name.to_string(),
        write: write.to_vec(),
        created_at: now,
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Corrupt {
        location: "token record".into(),
        why: e.to_string(),
    })?;
    store
        .put_meta(MetaKind::Tokens, &token_id(&token), &json)
        .await?;
    Ok(token)
}

/// Every token record, with its id.
pub async fn list(store: &dyn Store) -> Result<Vec<(String, TokenRecord)>, StoreError> {
    let mut out = Vec::new();
    for id in store.meta_ids(MetaKind::Tokens).await? {
        if let Some(r) = record(store, &id).await? {
            out.push((id, r));
        }
    }
    out.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    Ok(out)
}

/// Revokes the token named `name`.
pub async fn revoke(store: &dyn Store, name: &str) -> Result<(), TokenError> {
    for (id, r) in list(store).await? {
        if r.name == name {
            store.remove_meta(MetaKind::Tokens, &id).await?;
            return Ok(());
        }
    }
    Err(TokenError::Unknown(name.to_string()))
}

/// The record of the token presented, if it is one.
pub async fn lookup(store: &dyn Store, token: &str) -> Result<Option<TokenRecord>, StoreError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    record(store, &token_id(token)).await
}

async fn record(store: &dyn Store, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let Some(bytes) = store.meta(MetaKind::Tokens, id).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            location: format!("{}/tokens/{id}.json", store.location()),
            why: e.to_string(),
        })
}
