//! Xet access tokens: what the `xet-write-token` route hands the client for the CAS. A token is
//! 32 random bytes; the gate keeps only their SHA-256, with the namespace and repository it was
//! issued for and when it expires, in the store (`MetaKind::XetTokens`): a token survives a gate
//! restart and is accepted by every gate over the same store, and `store gc` removes expired
//! ones.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::gate::store::{MetaKind, Store, StoreError};

/// How long an access token is valid (the Hub's are about as short).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;

/// What a valid access token allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The `ORG` whose xorbs and uploads the token reaches.
    pub namespace: String,
    /// The repository (`ORG/NAME`) it was issued for.
    pub repo: String,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// The tokens issued, kept in `store`.
#[derive(Debug, Clone)]
pub struct AccessTokens {
    store: Arc<dyn Store>,
}

/// Why a CAS request's token is refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    #[error("no `Authorization: Bearer` Xet access token")]
    Missing,
    #[error("the Xet access token is not one this gate issued")]
    Unknown,
    #[error("the Xet access token expired; ask the xet-write-token route for a new one")]
    Expired,
    #[error("the Xet access tokens cannot be read: {0}")]
    Store(#[from] StoreError),
}

impl AccessTokens {
    pub fn new(store: Arc<dyn Store>) -> Self {
        AccessTokens { store }
    }

    /// Issues a token for `repo` in `namespace`, valid from `now` for [`TOKEN_LIFETIME_SECS`].
    pub async fn issue(
        &self,
        namespace: &str,
        repo: &str,
        now: i64,
    ) -> Result<(String, Grant), String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness for a token: {e}"))?;
        let token = format!("xet_{}", hex::encode(secret));
        let grant = Grant {
            namespace: namespace.to_string(),
            repo: repo.to_string(),
            expires_at: now + TOKEN_LIFETIME_SECS,
        };
        let json = serde_json::to_vec(&grant).map_err(|e| e.to_string())?;
        self.store
            .put_meta(MetaKind::XetTokens, &digest(&token), &json)
            .await
            .map_err(|e| format!("cannot keep the token: {e}"))?;
        Ok((token, grant))
    }

    /// The grant of the bearer token in `authorization` (the header's value), if valid at `now`.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        now: i64,
    ) -> Result<Grant, TokenRefusal> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenRefusal::Missing)?;
        let bytes = self
            .store
            .meta(MetaKind::XetTokens, &digest(token))
            .await?
            .ok_or(TokenRefusal::Unknown)?;
        let grant: Grant = serde_json::from_slice(&bytes).map_err(|_| TokenRefusal::Unknown)?;
        if grant.expires_at <= now {
            return Err(TokenRefusal::Expired);
        }
        Ok(grant)
    }
}

/// The record id of a token: its SHA-256, so the store never holds the token itself.
fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn tokens_are_scoped_expire_and_outlive_the_gate_that_issued_them() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::gate::store::FolderStore::open(dir.path()).unwrap());
        let tokens = AccessTokens::new(store.clone());
        let (t, g) = tokens.issue("lab-a", "lab-a/m", 100).await.unwrap();
        let bearer = format!("Bearer {t}");
        // Another instance over the same store (a restarted gate, or a second one).
        let other = AccessTokens::new(store.clone());
        assert_eq!(other.check(Some(&bearer), 101).await.unwrap(), g);
        assert_eq!(g.namespace, "lab-a");
        assert!(matches!(
            other.check(Some(&bearer), 100 + TOKEN_LIFETIME_SECS).await,
            Err(TokenRefusal::Expired)
        ));
        assert!(matches!(
            tokens.check(None, 101).await,
            Err(TokenRefusal::Missing)
        ));
        assert!(matches!(
            tokens.check(Some("Bearer "), 101).await,
            Err(TokenRefusal::Missing)
        ));
        let forged = format!("Bearer {t}x");
        assert!(matches!(
            tokens.check(Some(&forged), 101).await,
            Err(TokenRefusal::Unknown)
        ));
        // Only the hash is kept.
        let ids = store.meta_ids(MetaKind::XetTokens).await.unwrap();
        assert_eq!(ids, vec![digest(&t)]);
        let kept = store
            .meta(MetaKind::XetTokens, &ids[0])
            .await
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&kept).contains(&t[4..]));
    }
}
