//! Stage 1, authenticate: envelope bytes to a statement signed by enough trusted, unrevoked
//! keys. Nothing else is read or hashed before this stage has passed, so an attacker without a
//! trusted key cannot make the verifier do expensive work.

use sha2::{Digest as _, Sha256};
use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement, StatementError,
};

use super::signature::{SignatureFinding, check_signatures, distinct_valid_keys};
use crate::decision::{CheckName, Decision};
use crate::finding::{Finding, Problem};
use crate::policy::{Policy, ReferenceLabel, VerifiedGrant};
use crate::trust::TrustedKey;

/// A statement whose envelope is canonical, of the attestation type, signed by at least the
/// policy's minimum of distinct trusted, unrevoked keys, and not itself revoked. Only
/// [`authenticate`] makes one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    statement: Statement,
    payload_sha256: String,
    signers: Vec<String>,
}

impl Authenticated {
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// Lowercase hex SHA-256 of the signed payload: the attestation's identity (cosigning does
    /// not change it).
    pub fn payload_sha256(&self) -> &str {
        &self.payload_sha256
    }

    /// Key ids of the distinct trusted keys whose signatures hold.
    pub fn signers(&self) -> &[String] {
        &self.signers
    }
}

/// The problems among the signature findings.
fn signature_problems(findings: &[SignatureFinding]) -> Vec<Problem> {
    findings
        .iter()
        .filter_map(|f| match f.clone() {
            SignatureFinding::Valid { .. } => None,
            SignatureFinding::RevokedKey { keyid } => Some(Problem::SignedByRevokedKey { keyid }),
            SignatureFinding::KeyNotYetValid { keyid, name } => {
                Some(Problem::KeyNotYetValid { keyid, name })
            }
            SignatureFinding::KeyExpired { keyid, name } => {
                Some(Problem::KeyExpired { keyid, name })
            }
            SignatureFinding::Invalid { keyid } => Some(Problem::SignatureInvalid { keyid }),
            SignatureFinding::Untrusted { keyid } => Some(Problem::SignedByUntrustedKey { keyid }),
        })
        .collect()
}

/// Runs the envelope, signature, revocation and statement checks into `d`; `None` when any of
/// them fails (the decision then says why and nothing further is checked).
pub fn authenticate(
    envelope_bytes: &[u8],
    policy: &Policy,
    now: i64,
    d: &mut Decision,
) -> Option<Authenticated> {
    // 1. Envelope.
    let env = match Envelope::decode_strict(envelope_bytes) {
        Ok(e) => e,
        Err(e) => {
            let error = e.to_string();
            d.fail(CheckName::Envelope, Problem::EnvelopeMalformed { error });
            return None;
        }
    };
    if env.payload_type != ATTESTATION_PAYLOAD_TYPE {
        d.fail(
            CheckName::Envelope,
            Problem::EnvelopeWrongPayloadType {
                payload_type: env.payload_type.clone(),
            },
        );
        return None;
    }
    d.pass(
        CheckName::Envelope,
        Finding::Envelope {
            bytes: envelope_bytes.len(),
            signatures: env.signatures.len(),
        },
    );

    // 2. Signatures over the exact payload bytes.
    let findings = check_signatures(&env, &policy.trusted_keys, &policy.revoked_keys, now);
    let valid = distinct_valid_keys(&findings);
    d.facts.signers = valid.clone();
    let mut sig_ok = true;
    for problem in signature_problems(&findings) {
        // An extra untrusted signature beside enough trusted ones is harmless; the rest is not.
        let harmless = matches!(problem, Problem::SignedByUntrustedKey { .. })
            && valid.len() >= policy.min_signatures;
        if harmless {
            d.skip(CheckName::Signatures, Finding::Ignored(problem));
        } else {
            sig_ok = false;
            d.fail(CheckName::Signatures, problem);
        }
    }
    if valid.len() < policy.min_signatures {
        sig_ok = false;
        d.fail(
            CheckName::Signatures,
            Problem::TooFewSignatures {
                valid: valid.len(),
                required: policy.min_signatures,
            },
        );
    }
    if !sig_ok {
        d.skip(CheckName::Statement, Finding::StatementNotRead);
        return None;
    }
    let names: Vec<String> = findings
        .iter()
        .filter_map(|f| match f {
            SignatureFinding::Valid { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    d.pass(
        CheckName::Signatures,
        Finding::Signatures {
            valid: valid.len(),
            required: policy.min_signatures,
            names,
        },
    );

    // 3. Revocation of this attestation (by payload digest: cosigning does not change it).
    let payload_digest = hex::encode(Sha256::digest(&env.payload));
    if policy.revoked_attestations.contains(&payload_digest) {
        d.fail(
            CheckName::Revocation,
            Problem::AttestationRevoked {
                attestation: payload_digest,
            },
        );
        return None;
    }
    d.pass(
        CheckName::Revocation,
        Finding::NotRevoked {
            attestation: payload_digest.clone(),
        },
    );

    // 4. Statement.
    let st = match Statement::decode_strict(&env.payload) {
        Ok(s) => s,
        Err(e @ StatementError::UnknownSchemaVersion { .. }) => {
            let error = e.to_string();
            d.fail(
                CheckName::Statement,
                Problem::StatementUnknownVersion { error },
            );
            return None;
        }
        Err(e) => {
            let error = e.to_string();
            d.fail(CheckName::Statement, Problem::StatementMalformed { error });
            return None;
        }
    };
    if policy.require_lei && st.entity.lei.is_none() {
        d.fail(
            CheckName::Statement,
            Problem::LeiMissing {
                entity: st.entity.legal_name.clone(),
            },
        );
    } else {
        d.pass(
            CheckName::Statement,
            Finding::Statement {
                model: st.model.name.clone(),
                version: st.model.version.clone(),
                entity: st.entity.legal_name.clone(),
                lei: st.entity.lei.clone(),
            },
        );
    }
    let f = &mut d.facts;
    f.model = Some(st.model.name.clone());
    f.version = Some(st.model.version.clone());
    f.root_sha256 = Some(st.subject.root_sha256.to_hex());
    f.entity = Some(st.entity.legal_name.clone());
    f.lei = st.entity.lei.clone();
    f.country = Some(st.entity.country.clone());
    f.parent_country = Some(st.entity.parent_country.clone());
    f.total_ops = Some(st.compute.total.to_string());
    f.issued_at = Some(st.issued_at);
    f.expires_at = st.expires_at;

    Some(Authenticated {
        statement: st,
        payload_sha256: payload_digest,
        signers: valid,
    })
}

/// Decodes grant envelopes and checks each is signed by a trusted issuer for its authority;
/// returns the good ones and the problems of the bad ones.
pub fn authenticate_grants(
    policy: &Policy,
    grants: &[Vec<u8>],
    now: i64,
) -> (Vec<VerifiedGrant>, Vec<Problem>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, bytes) in grants.iter().enumerate() {
        let malformed = |error: String| Problem::GrantMalformed { index: i, error };
        let env = match Envelope::decode_strict(bytes) {
            Ok(e) => e,
            Err(e) => {
                bad.push(malformed(e.to_string()));
                continue;
            }
        };
        if env.payload_type != GRANT_PAYLOAD_TYPE {
            bad.push(Problem::GrantWrongPayloadType {
                index: i,
                payload_type: env.payload_type,
            });
            continue;
        }
        let grant = match Grant::decode_strict(&env.payload) {
            Ok(g) => g,
            Err(e) => {
                bad.push(malformed(e.to_string()));
                continue;
            }
        };
        let reference = ReferenceLabel::of(&grant.reference);
        // Revoked by its payload digest: a re-signed copy of the same terms stays revoked.
        let grant_digest = hex::encode(Sha256::digest(&env.payload));
        if policy.revoked_grants.contains(&grant_digest) {
            bad.push(Problem::GrantRevoked {
                index: i,
                reference,
                grant: grant_digest,
            });
            continue;
        }
        // Only issuers for this reference's authority may sign it.
        let keys: Vec<TrustedKey> = policy
            .issuers
            .iter()
            .filter(|is| is.authority == grant.reference.authority)
            .map(|is| is.key.clone())
            .collect();
        let findings = check_signatures(&env, &keys, &policy.revoked_keys, now);
        match findings.iter().find_map(|f| match f {
            SignatureFinding::Valid { name, .. } => Some(name.clone()),
            _ => None,
        }) {
            Some(issuer) => good.push(VerifiedGrant { grant, issuer }),
            None => bad.push(Problem::GrantUntrustedIssuer {
                index: i,
                reference,
            }),
        }
    }
    (good, bad)
}
