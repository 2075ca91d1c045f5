//! Envelope signatures: which trusted keys signed the exact payload bytes.

use ed25519_dalek::Signature as EdSignature;
use weightgate_schemas::Envelope;

use crate::trust::TrustedKey;

/// What one signature turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFinding {
    /// Verified by a trusted key in its window and not revoked.
    Valid {
        keyid: String,
        name: String,
    },
    /// Verified by a trusted key that is revoked.
    RevokedKey {
        keyid: String,
    },
    KeyNotYetValid {
        keyid: String,
        name: String,
    },
    KeyExpired {
        keyid: String,
        name: String,
    },
    /// Names (by its hint) a trusted key but does not verify with it or any other trusted key.
    Invalid {
        keyid: String,
    },
    /// Verifies with no trusted key (and does not name one).
    Untrusted {
        keyid: String,
    },
}

/// Checks every signature in `envelope` against `trusted` at time `now`. `revoked` holds key ids.
/// The `keyid` of a signature is only a hint: each signature is tried with every trusted key.
pub fn check_signatures(
    envelope: &Envelope,
    trusted: &[TrustedKey],
    revoked: &[String],
    now: i64,
) -> Vec<SignatureFinding> {
    let message = envelope.signed_bytes();
    envelope
        .signatures
        .iter()
        .map(|s| {
            let hint = s.keyid.clone();
            let Ok(sig) = EdSignature::from_slice(&s.sig) else {
                return if trusted.iter().any(|k| k.keyid == hint) {
                    SignatureFinding::Invalid { keyid: hint }
                } else {
                    SignatureFinding::Untrusted { keyid: hint }
                };
            };
            // The hinted key first, then the others.
            let mut order: Vec<&TrustedKey> = trusted.iter().filter(|k| k.keyid == hint).collect();
            order.extend(trusted.iter().filter(|k| k.keyid != hint));
            let Some(k) = order
                .into_iter()
                .find(|k| k.key.verify_strict(&message, &sig).is_ok())
            else {
                if revoked.contains(&hint) {
                    return SignatureFinding::RevokedKey { keyid: hint };
                }
                return if trusted.iter().any(|k| k.keyid == hint) {
                    SignatureFinding::Invalid { keyid: hint }
                } else {
                    SignatureFinding::Untrusted { keyid: hint }
                };
            };
            let (keyid, name) = (k.keyid.clone(), k.name.clone());
            if revoked.contains(&keyid) {
                SignatureFinding::RevokedKey { keyid }
            } else if k.valid_from.is_some_and(|f| now < f) {
                SignatureFinding::KeyNotYetValid { keyid, name }
            } else if k.valid_until.is_some_and(|u| now >= u) {
                SignatureFinding::KeyExpired { keyid, name }
            } else {
                SignatureFinding::Valid { keyid, name }
            }
        })
        .collect()
}

/// Distinct trusted keys with a valid signature.
pub fn distinct_valid_keys(findings: &[SignatureFinding]) -> Vec<String> {
    let mut ids: Vec<String> = findings
        .iter()
        .filter_map(|f| match f {
            SignatureFinding::Valid { keyid, .. } => Some(keyid.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
