//! `verify`: every check, in the order docs/verify.md gives, into one [`Decision`].

use std::path::Path;

use sha2::{Digest as _, Sha256};
use weightgate_attest::hashing::Progress;
use weightgate_attest::reading::OpenOptions;
use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement, StatementError,
};

use crate::decision::{Decision, RegimeFact};
use crate::policy::{Context, RegimeOutcome, VerifiedGrant, evaluate};
use crate::policy::{Policy, VerifyDigest};
use crate::reason as r;
use crate::stages::{
    DigestMode, SignatureFinding, TrustedKey, check_signatures, check_subject, distinct_valid_keys,
};

/// Everything `verify` looks at.
pub struct VerifyRequest<'a> {
    pub envelope: &'a [u8],
    pub checkpoint: &'a Path,
    pub open: OpenOptions,
    pub policy: &'a Policy,
    pub context: Context,
    /// Recompute SHA-256 too (and so the root from the bytes), whatever the policy says.
    pub full: bool,
    /// Grant envelopes (licences countersigned by their issuers).
    pub grants: Vec<Vec<u8>>,
    /// The base model's envelope, for a derived model.
    pub base_envelope: Option<Vec<u8>>,
    pub threads: usize,
    /// `Some(header parameters)` when the checkpoint was verified byte for byte at admission
    /// and its bytes cannot have changed since (the gate server's content-addressed store):
    /// subject binding is then taken as done and nothing is hashed.
    pub admitted: Option<u64>,
    /// An OpenSSF model-signing bundle to check beside the attestation.
    pub oms: Option<crate::model_sig::OmsRequest>,
}

/// Input that could not be judged at all (the checkpoint root unreadable).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct VerifyError(#[from] weightgate_attest::reading::CheckpointError);

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn show(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |t| t.to_string())
}

/// Checks signatures of an envelope against `keys` and returns the findings' reasons.
fn signature_reasons(findings: &[SignatureFinding]) -> Vec<(&'static str, String)> {
    findings
        .iter()
        .filter_map(|f| match f {
            SignatureFinding::Valid { .. } => None,
            SignatureFinding::RevokedKey { keyid } => Some((
                r::SIGNATURE_REVOKED_KEY,
                format!("signed by revoked key {keyid}"),
            )),
            SignatureFinding::KeyNotYetValid { keyid, name } => Some((
                r::SIGNATURE_KEY_NOT_YET_VALID,
                format!("key {name} ({keyid}) is not valid yet"),
            )),
            SignatureFinding::KeyExpired { keyid, name } => Some((
                r::SIGNATURE_KEY_EXPIRED,
                format!("key {name} ({keyid}) has expired"),
            )),
            SignatureFinding::Invalid { keyid } => Some((
                r::SIGNATURE_INVALID,
                format!("signature naming key {keyid} does not verify"),
            )),
            SignatureFinding::Untrusted { keyid } => Some((
                r::SIGNATURE_UNTRUSTED_KEY,
                format!("signed by key {keyid}, which the policy does not trust"),
            )),
        })
        .collect()
}

/// Decodes and checks grant envelopes; returns the good ones and reasons for the bad ones.
fn verify_grants(
    policy: &Policy,
    grants: &[Vec<u8>],
    now: i64,
) -> (Vec<VerifiedGrant>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, bytes) in grants.iter().enumerate() {
        let env = match Envelope::decode_strict(bytes) {
            Ok(e) => e,
            Err(e) => {
                bad.push(format!("grant {i}: {e}"));
                continue;
            }
        };
        if env.payload_type != GRANT_PAYLOAD_TYPE {
            bad.push(format!(
                "grant {i}: payload type `{}` is not a grant",
                env.payload_type
            ));
            continue;
        }
        let grant = match Grant::decode_strict(&env.payload) {
            Ok(g) => g,
            Err(e) => {
                bad.push(format!("grant {i}: {e}"));
                continue;
            }
        };
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
            None => bad.push(format!(
                "grant {i} ({} {} from {}): not signed by a trusted issuer for that authority",
                grant.reference.kind.as_str(),
                grant.reference.number,
                grant.reference.authority
            )),
        }
    }
    (good, bad)
}

/// Runs every check. Cheap checks that make the rest meaningless (envelope, signatures,
/// statement) stop early; after that, all checks run so the report names every problem.
pub fn verify(req: &VerifyRequest, progress: Progress) -> Result<Decision, VerifyError> {
    let policy = req.policy;
    let now = req.context.now;
    let mut d = Decision::new(now);
    d.facts.destination = req.context.destination.clone();

    // 1. Envelope.
    let env = match Envelope::decode_strict(req.envelope) {
        Ok(e) => e,
        Err(e) => {
            d.fail("envelope", r::ENVELOPE_MALFORMED, e.to_string());
            return Ok(d);
        }
    };
    if env.payload_type != ATTESTATION_PAYLOAD_TYPE {
        d.fail(
            "envelope",
            r::ENVELOPE_WRONG_PAYLOAD_TYPE,
            format!(
                "payload type `{}` is not a weightgate attestation",
                env.payload_type
            ),
        );
        return Ok(d);
    }
    d.pass(
        "envelope",
        format!(
            "{} bytes, {} signature(s), canonical CBOR",
            req.envelope.len(),
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
        let harmless = code == r::SIGNATURE_UNTRUSTED_KEY && valid.len() >= policy.min_signatures;
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
            r::SIGNATURE_TOO_FEW,
            format!(
                "{} distinct trusted key(s) signed; the policy needs {}",
                valid.len(),
                policy.min_signatures
            ),
        );
    }
    if !sig_ok {
        d.skip("statement", "not read: the signatures do not hold");
        return Ok(d);
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
    let payload_digest = hex(&Sha256::digest(&env.payload));
    if policy.revoked_attestations.contains(&payload_digest) {
        d.fail(
            "revocation",
            r::ATTESTATION_REVOKED,
            format!("attestation {payload_digest} is revoked"),
        );
        return Ok(d);
    }
    d.pass(
        "revocation",
        format!("attestation {payload_digest} not revoked"),
    );

    // 4. Statement.
    let st = match Statement::decode_strict(&env.payload) {
        Ok(s) => s,
        Err(e @ StatementError::UnknownSchemaVersion { .. }) => {
            d.fail("statement", r::STATEMENT_UNKNOWN_VERSION, e.to_string());
            return Ok(d);
        }
        Err(e) => {
            d.fail("statement", r::STATEMENT_MALFORMED, e.to_string());
            return Ok(d);
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

    // 5. Subject binding.
    let mode = if req.full {
        DigestMode::Full
    } else if req.oms.is_some() || policy.verify_digest == VerifyDigest::Sha256 {
        // SHA-256 binds as well as BLAKE3, and a model.sig check needs it anyway.
        DigestMode::Sha256
    } else {
        DigestMode::Blake3
    };
    d.facts.digest = match mode {
        DigestMode::Full => "sha256+blake3",
        DigestMode::Sha256 => "sha256",
        DigestMode::Blake3 => "blake3",
    };
    let subject = match req.admitted {
        Some(header_parameters) => {
            d.facts.digest = "admitted";
            crate::stages::SubjectReport {
                problems: Vec::new(),
                files_checked: st.subject.files.len(),
                bytes_hashed: 0,
                header_parameters: Some(header_parameters),
                sha256: Default::default(),
            }
        }
        None => check_subject(&st, req.checkpoint, &req.open, mode, req.threads, progress)?,
    };
    d.facts.header_parameters = subject.header_parameters;
    d.facts.bytes_hashed = subject.bytes_hashed;
    if subject.problems.is_empty() {
        let how = if req.admitted.is_some() {
            "bound at admission (content-addressed store, SHA-256 checked while copying)"
                .to_string()
        } else {
            format!(
                "{} bytes match their {} digests",
                subject.bytes_hashed, d.facts.digest
            )
        };
        d.pass(
            "subject",
            format!(
                "{} files, {how}; root sha256:{}",
                subject.files_checked,
                st.subject.root_sha256.to_hex()
            ),
        );
    }
    for p in &subject.problems {
        d.fail("subject", p.code, p.message.clone());
    }

    // 5b. The OpenSSF model-signing bundle, when given or required.
    match &req.oms {
        Some(oms) => {
            let report = crate::model_sig::check_oms(
                oms,
                req.checkpoint,
                &subject.sha256,
                req.threads,
                progress,
            )?;
            d.facts.bytes_hashed += report.bytes_hashed;
            d.facts.oms_root_sha256 = report.root.map(|r| hex(&r));
            d.facts.oms_signer = report.signer.clone();
            if report.problems.is_empty() {
                let root = report.root.map(|r| hex(&r)).unwrap_or_default();
                let same = if Some(&root) == d.facts.root_sha256.as_ref() {
                    "the attestation's root"
                } else {
                    "NOT the attestation's root (different file sets)"
                };
                let mut detail = format!(
                    "{} files match, signed by {}; root sha256:{root} = {same}",
                    report.files,
                    report.signer.as_deref().unwrap_or("?")
                );
                for n in &report.notes {
                    detail.push_str("; ");
                    detail.push_str(n);
                }
                d.pass("model.sig", detail);
            }
            for (code, message) in report.problems {
                d.fail("model.sig", code, message);
            }
        }
        None if policy.require_model_signature && req.admitted.is_some() => d.pass(
            "model.sig",
            "checked at admission (the store holds only what passed)",
        ),
        None if policy.require_model_signature => d.fail(
            "model.sig",
            r::OMS_MISSING,
            "the policy requires an OpenSSF model signature (model.sig) and none was checked",
        ),
        None => {}
    }

    // 6. Compute: consistency and plausibility.
    let c = &st.compute;
    let mut compute_ok = true;
    match c.components.sum() {
        Some(sum) if sum == c.total => {}
        Some(sum) => {
            compute_ok = false;
            d.fail(
                "compute",
                r::COMPUTE_TOTAL_MISMATCH,
                format!("total {} is not the sum of its components ({sum})", c.total),
            );
        }
        None => {
            compute_ok = false;
            d.fail(
                "compute",
                r::COMPUTE_TOTAL_MISMATCH,
                "components overflow".to_string(),
            );
        }
    }
    if let (Some(active), Some(header)) = (c.inputs.params_active, subject.header_parameters)
        && active > header
    {
        compute_ok = false;
        d.fail(
            "compute",
            r::COMPUTE_ACTIVE_EXCEEDS_TOTAL,
            format!("{active} active parameters exceed the {header} in the headers"),
        );
    }
    if let (Some(active), Some(tokens)) = (c.inputs.params_active, c.inputs.tokens) {
        let six_nd = 6u128
            .saturating_mul(u128::from(active))
            .saturating_mul(tokens.0);
        // The claim may exceed 6ND (other work counts too) but not fall far below it.
        let tol = policy.plausibility_tolerance;
        if c.total.0.saturating_mul(tol.numerator) < six_nd.saturating_mul(tol.denominator) {
            compute_ok = false;
            d.fail("compute", r::COMPUTE_IMPLAUSIBLE, format!(
                "claimed {} operations, but 6 x {active} active parameters x {} tokens = {} (tolerance /{})",
                c.total.to_scientific(),
                tokens.to_scientific(),
                weightgate_schemas::Ops(six_nd).to_scientific(),
                tol.to_decimal()
            ));
        }
    }
    if compute_ok {
        d.pass(
            "compute",
            format!(
                "{} operations ({}), components add up",
                c.total.to_scientific(),
                c.method.as_str()
            ),
        );
    }

    // 7. Time.
    let mut time_ok = true;
    if st.issued_at > now + policy.clock_skew_seconds {
        time_ok = false;
        d.fail(
            "time",
            r::TIME_ISSUED_IN_FUTURE,
            format!(
                "issued {} is after now ({}) plus {} s skew",
                show(st.issued_at),
                show(now),
                policy.clock_skew_seconds
            ),
        );
    }
    if let Some(e) = st.expires_at
        && e <= now
    {
        time_ok = false;
        d.fail("time", r::TIME_EXPIRED, format!("expired {}", show(e)));
    }
    if time_ok {
        d.pass(
            "time",
            format!(
                "issued {}{}",
                show(st.issued_at),
                st.expires_at
                    .map_or(String::new(), |e| format!(", expires {}", show(e)))
            ),
        );
    }

    // 8. Lineage.
    crate::stages::check_lineage(&mut d, &st, req.base_envelope.as_deref(), policy);

    // 9. Regimes.
    let effective = policy.compute_margin.apply_ceil(c.total.0);
    d.facts.effective_ops = Some(effective.to_string());
    let (grants, bad_grants) = verify_grants(policy, &req.grants, now);
    for b in bad_grants {
        d.fail("grants", r::GRANT_INVALID, b);
    }
    for g in &grants {
        d.pass(
            "grants",
            format!(
                "{} {} from {} countersigned by {}",
                g.grant.reference.kind.as_str(),
                g.grant.reference.number,
                g.grant.reference.authority,
                g.issuer
            ),
        );
    }
    if policy.regimes.is_empty() {
        d.skip("regimes", "the policy activates no regime");
    }
    for regime in &policy.regimes {
        let name = format!("regime {}", regime.id);
        let threshold = format!(
            "{} {}",
            regime.comparator.as_str(),
            regime.threshold.to_scientific()
        );
        let margin = if policy.compute_margin == crate::policy::Factor::ONE {
            String::new()
        } else {
            format!(" x{} margin", policy.compute_margin.to_decimal())
        };
        let (result, detail) = match evaluate(regime, &st, effective, &req.context, &grants) {
            RegimeOutcome::Skipped(why) => {
                d.skip(&name, why.clone());
                ("skipped", why)
            }
            RegimeOutcome::Below => {
                let why = format!(
                    "{}{margin} is not {threshold}",
                    weightgate_schemas::Ops(effective).to_scientific()
                );
                d.pass(&name, format!("below threshold: {why}"));
                ("below-threshold", why)
            }
            RegimeOutcome::Satisfied(refs) => {
                d.pass(&name, format!("above threshold ({threshold}); {refs}"));
                ("reference-ok", refs)
            }
            RegimeOutcome::Denied(code, message) => {
                let message = format!("above threshold ({threshold}{margin}): {message}");
                d.fail(&name, code, message.clone());
                ("denied", message)
            }
        };
        d.facts.regimes.push(RegimeFact {
            id: regime.id.clone(),
            result,
            threshold,
            detail,
        });
    }

    d.allowed = d.reasons.is_empty();
    Ok(d)
}
