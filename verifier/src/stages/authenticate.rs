//! Stage 1, authenticate: envelope bytes to a statement signed by enough trusted, unrevoked
//! keys. Nothing else is read or hashed before this stage has passed, so an attacker without a
//! trusted key cannot make the verifier do expensive work.

use sha2::{Digest as _, Sha256};
use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement, StatementError,
};

use super::signature::{SignatureFinding, TrustedKey, check_signatures, distinct_valid_keys};
use crate::decision::Decision;
use crate::policy::{Policy, VerifiedGrant};
use crate::reason::ReasonCode;

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

/// Checks signatures of an envelope against `keys` and returns the findings' reasons.
fn signature_reasons(findings: &[SignatureFinding]) -> Vec<(ReasonCode, String)> {
    findings
        .iter()
        .filter_map(|f| match f {
            SignatureFinding::Valid { .. } => None,
            SignatureFinding::RevokedKey { keyid } => Some((
                ReasonCode::SignatureRevokedKey,
                format!("signed by revoked key {keyid}"),
            )),
            SignatureFinding::KeyNotYetValid { keyid, name } => Some((
                ReasonCode::SignatureKeyNotYetValid,
                format!("key {name} ({keyid}) is not valid yet"),
            )),
            SignatureFinding::KeyExpired { keyid, name } => Some((
                ReasonCode::SignatureKeyExpired,
                format!("key {name} ({keyid}) has expired"),
            )),
            SignatureFinding::Invalid { keyid } => Some((
                ReasonCode::SignatureInvalid,
                format!("signature naming key {keyid} does not verify"),
            )),
            SignatureFinding::Untrusted { keyid } => Some((
                ReasonCode::SignatureUntrustedKey,
                format!("signed by key {keyid}, which the policy does not trust"),
            )),
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
            d.fail("envelope", ReasonCode::EnvelopeMalformed, e.to_string());
            return None;
        }
    };
    if env.payload_type != ATTESTATION_PAYLOAD_TYPE {
        d.fail(
            "envelope",
            ReasonCode::EnvelopeWrongPayloadType,
            format!(
                "payload type `{}` is not a weightgate attestation",
                env.payload_type
            ),
        );
        return None;
    }
    d.pass(
        "envelope",
        format!(
            "{} bytes, {} signature(s), canonical CBOR",
            envelope_bytes.len(),
            env.signatures.len()
        ),
    );

    // 2. Signatures over the exact payload bytes.
    let findings = check_signatures(&env, &policy.trusted_keys, &policy.revoked_keys, now);
    let valid = distinct_valid_keys(&findings);
    d.facts.signers = valid.clone();
    let mut sig_ok = true;
    for (code, message) in signature_reasons(&findings) {
        // An extra untrusted signature beside enough trusted ones is harmless; the rest is not.
        let harmless =
            code == ReasonCode::SignatureUntrustedKey && valid.len() >= policy.min_signatures;
        if harmless {
            d.skip("signatures", format!("ignored: {message}"));
        } else {
            sig_ok = false;
            d.fail("signatures", code, message);
        }
    }
    if valid.len() < policy.min_signatures {
        sig_ok = false;
        d.fail(
            "signatures",
            ReasonCode::SignatureTooFew,
            format!(
                "{} distinct trusted key(s) signed; the policy needs {}",
                valid.len(),
                policy.min_signatures
            ),
        );
    }
    if !sig_ok {
        d.skip("statement", "not read: the signatures do not hold");
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
        "signatures",
        format!(
            "{} of {} required trusted key(s): {}",
            valid.len(),
            policy.min_signatures,
            names.join(", ")
        ),
    );

    // 3. Revocation of this attestation (by payload digest: cosigning does not change it).
    let payload_digest = hex::encode(Sha256::digest(&env.payload));
    if policy.revoked_attestations.contains(&payload_digest) {
        d.fail(
            "revocation",
            ReasonCode::AttestationRevoked,
            format!("attestation {payload_digest} is revoked"),
        );
        return None;
    }
    d.pass(
        "revocation",
        format!("attestation {payload_digest} not revoked"),
    );

    // 4. Statement.
    let st = match Statement::decode_strict(&env.payload) {
        Ok(s) => s,
        Err(e @ StatementError::UnknownSchemaVersion { .. }) => {
            d.fail(
                "statement",
                ReasonCode::StatementUnknownVersion,
                e.to_string(),
            );
            return None;
        }
        Err(e) => {
            d.fail("statement", ReasonCode::StatementMalformed, e.to_string());
            return None;
        }
    };
    d.pass(
        "statement",
        format!(
            "{} {} by {} ({})",
            st.model.name, st.model.version, st.entity.legal_name, st.entity.lei
        ),
    );
    let f = &mut d.facts;
    f.model = Some(st.model.name.clone());
    f.version = Some(st.model.version.clone());
    f.root_sha256 = Some(st.subject.root_sha256.to_hex());
    f.entity = Some(st.entity.legal_name.clone());
    f.lei = Some(st.entity.lei.clone());
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

/// Decodes grant envelopes and checks each is signed by a trusted issuer for its authority; returns the good ones and reasons for the bad ones.
pub fn authenticate_grants(
    policy: &Policy,
    grants: &[Vec<u8>],
    now: i64,
) -> (Vec<VerifiedGrant>, Vec<(ReasonCode, String)>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, bytes) in grants.iter().enumerate() {
        let env = match Envelope::decode_strict(bytes) {
            Ok(e) => e,
            Err(e) => {
                bad.push((ReasonCode::GrantInvalid, format!("grant {i}: {e}")));
                continue;
            }
        };
        if env.payload_type != GRANT_PAYLOAD_TYPE {
            bad.push((
                ReasonCode::GrantInvalid,
                format!(
                    "grant {i}: payload type `{}` is not a grant",
                    env.payload_type
                ),
            ));
            continue;
        }
        let grant = match Grant::decode_strict(&env.payload) {
            Ok(g) => g,
            Err(e) => {
                bad.push((ReasonCode::GrantInvalid, format!("grant {i}: {e}")));
                continue;
            }
        };
        // Revoked by its payload digest: a re-signed copy of the same terms stays revoked.
        let grant_digest = hex::encode(Sha256::digest(&env.payload));
        if policy.revoked_grants.contains(&grant_digest) {
            bad.push((
                ReasonCode::GrantRevoked,
                format!(
                    "grant {i} ({} {} from {}): grant {grant_digest} is revoked",
                    grant.reference.kind.as_str(),
                    grant.reference.number,
                    grant.reference.authority
                ),
            ));
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
            None => bad.push((
                ReasonCode::GrantInvalid,
                format!(
                    "grant {i} ({} {} from {}): not signed by a trusted issuer for that authority",
                    grant.reference.kind.as_str(),
                    grant.reference.number,
                    grant.reference.authority
                ),
            )),
        }
    }
    (good, bad)
}
