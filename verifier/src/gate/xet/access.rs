//! Xet access tokens: what the `xet-write-token` route hands the client for the CAS. A token is
//! 32 random bytes; the gate keeps only their SHA-256, with the namespace and repository it was
//! issued for and when it expires, in memory (the client asks again through the same route
//! when one expires, and after a gate restart).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// How long an access token is valid (the Hub's are about as short).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;

/// What a valid access token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The `ORG` whose xorbs and uploads the token reaches.
    pub namespace: String,
    /// The repository (`ORG/NAME`) it was issued for.
    pub repo: String,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// The tokens issued and not yet expired.
#[derive(Debug, Default)]
pub struct AccessTokens {
    by_digest: Mutex<HashMap<[u8; 32], Grant>>,
}

/// Why a CAS request's token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRefusal {
    #[error("no `Authorization: Bearer` Xet access token")]
    Missing,
    #[error("the Xet access token is not one this gate issued")]
    Unknown,
    #[error("the Xet access token expired; ask the xet-write-token route for a new one")]
    Expired,
}

impl AccessTokens {
    /// Issues a token for `repo` in `namespace`, valid from `now` for [`TOKEN_LIFETIME_SECS`].
    pub fn issue(&self, namespace: &str, repo: &str, now: i64) -> Result<(String, Grant), String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness for a token: {e}"))?;
        let token = format!("xet_{}", hex::encode(secret));
        let grant = Grant {
            namespace: namespace.to_string(),
            repo: repo.to_string(),
            expires_at: now + TOKEN_LIFETIME_SECS,
        };
        let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, g| g.expires_at > now);
        map.insert(Sha256::digest(token.as_bytes()).into(), grant.clone());
        Ok((token, grant))
    }

    /// The grant of the bearer token in `authorization` (the header's value), if valid at `now`.
    pub fn check(&self, authorization: Option<&str>, now: i64) -> Result<Grant, TokenRefusal> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenRefusal::Missing)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        let grant = map.get(&digest).ok_or(TokenRefusal::Unknown)?;
        if grant.expires_at <= now {
            return Err(TokenRefusal::Expired);
        }
        Ok(grant.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_scoped_and_expire() {
        let tokens = AccessTokens::default();
        let (t, g) = tokens.issue("lab-a", "lab-a/m", 100).unwrap();
        let bearer = format!("Bearer {t}");
        assert_eq!(tokens.check(Some(&bearer), 101), Ok(g.clone()));
        assert_eq!(g.namespace, "lab-a");
        assert_eq!(
            tokens.check(Some(&bearer), 100 + TOKEN_LIFETIME_SECS),
            Err(TokenRefusal::Expired)
        );
        assert_eq!(tokens.check(None, 101), Err(TokenRefusal::Missing));
        assert_eq!(
            tokens.check(Some("Bearer "), 101),
            Err(TokenRefusal::Missing)
        );
        let forged = format!("Bearer {}x", t);
        assert_eq!(tokens.check(Some(&forged), 101), Err(TokenRefusal::Unknown));
    }
}
