//! Derived models: the base model's compute counts, and its envelope, when given, must agree.

use sha2::{Digest as _, Sha256};
use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement};

use super::signature::{check_signatures, distinct_valid_keys};
use crate::decision::Decision;
use crate::policy::Policy;
use crate::reason::ReasonCode;

/// Checks what can be checked about the base model: the policy's known base models, the base
/// envelope (signature, revocation, root, compute), or its absence when the policy requires it.
/// Who becomes the provider is each regime's rule (policy/regime.rs).
pub fn check(d: &mut Decision, st: &Statement, base_envelope: Option<&[u8]>, policy: &Policy) {
    let Some(base) = &st.compute.components.base_model else {
        if base_envelope.is_some() {
            d.fail(
                "lineage",
                ReasonCode::LineageBaseMismatch,
                "a base model envelope was given but the statement names no base model",
            );
        } else {
            d.skip("lineage", "not a derived model");
        }
        return;
    };
    let own = weightgate_schemas::estimate::own_compute(&st.compute);
    d.facts.lineage.push(format!(
        "derived from {} (root sha256:{}): base {}, own training {} operations",
        base.name,
        base.root_sha256.to_hex(),
        match (base.ops, base.systemic_risk) {
            (Some(o), _) => format!("{} operations", o.to_scientific()),
            (None, Some(true)) => "compute unknown, with systemic risk".into(),
            (None, _) => "compute unknown, without systemic risk".into(),
        },
        weightgate_schemas::Ops(own).to_scientific()
    ));
    let root = base.root_sha256.to_hex();
    let known = policy
        .known_base_models
        .iter()
        .find(|k| k.root_sha256 == root);
    if let Some(k) = known {
        let claimed = base
            .ops
            .map_or("it as unknown".into(), |o| o.to_scientific());
        let record = format!(
            "base model {} ({root}) was trained with {} operations by the policy's record; the statement counts {claimed}",
            k.name,
            k.ops.to_scientific(),
        );
        match base.ops {
            Some(o) if o == k.ops => d.pass(
                "lineage",
                format!(
                    "base model {} is known to the policy: {} operations, as counted",
                    k.name,
                    k.ops.to_scientific()
                ),
            ),
            // More than the record shrinks the modification's share of the base (the EU
            // one-third rule): as wrong as less.
            Some(o) if o > k.ops => d.fail("lineage", ReasonCode::LineageBaseMismatch, record),
            _ => d.fail("lineage", ReasonCode::LineageBaseUnderstated, record),
        }
    }
    let Some(bytes) = base_envelope else {
        if known.is_some() {
            return;
        }
        if policy.require_base_attestation {
            d.fail(
                "lineage",
                ReasonCode::LineageBaseAttestationMissing,
                format!(
                    "the policy requires the base model's attestation (--base-attestation) for {} and none was supplied, nor is the base a known base model",
                    base.name
                ),
            );
        } else {
            d.pass(
                "lineage",
                format!(
                    "base model {} counted as claimed; its envelope was not supplied",
                    base.name
                ),
            );
        }
        return;
    };
    let mut problems = Vec::new();
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if let Some(want) = base.attestation_sha256
        && want.0 != digest
    {
        problems.push((
            ReasonCode::LineageBaseMismatch,
            "the supplied base envelope is not the one the statement names".to_string(),
        ));
    }
    match Envelope::decode_strict(bytes) {
        Err(e) => problems.push((
            ReasonCode::LineageBaseInvalid,
            format!("base envelope: {e}"),
        )),
        Ok(env) if env.payload_type != ATTESTATION_PAYLOAD_TYPE => problems.push((
            ReasonCode::LineageBaseInvalid,
            "base envelope is not an attestation".into(),
        )),
        Ok(env) => {
            let payload_digest = hex::encode(Sha256::digest(&env.payload));
            if policy.revoked_attestations.contains(&payload_digest) {
                problems.push((
                    ReasonCode::LineageBaseInvalid,
                    format!("base attestation {payload_digest} is revoked"),
                ));
            }
            let findings = check_signatures(
                &env,
                &policy.trusted_keys,
                &policy.revoked_keys,
                d.facts.now,
            );
            if distinct_valid_keys(&findings).is_empty() {
                problems.push((
                    ReasonCode::LineageBaseInvalid,
                    "base envelope is not signed by a trusted key".into(),
                ));
            }
            match Statement::decode_strict(&env.payload) {
                Err(e) => problems.push((
                    ReasonCode::LineageBaseInvalid,
                    format!("base statement: {e}"),
                )),
                Ok(b) => {
                    if b.subject.root_sha256 != base.root_sha256 {
                        problems.push((
                            ReasonCode::LineageBaseMismatch,
                            format!(
                                "base envelope attests root sha256:{}, the statement names {}",
                                b.subject.root_sha256.to_hex(),
                                base.root_sha256.to_hex()
                            ),
                        ));
                    }
                    if Some(b.compute.total) != base.ops {
                        problems.push((
                            ReasonCode::LineageBaseMismatch,
                            format!(
                                "base envelope attests {} operations, the statement counts {}",
                                b.compute.total,
                                base.ops.map_or("them as unknown".into(), |o| o.to_string())
                            ),
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        d.pass(
            "lineage",
            format!(
                "base model {} envelope verified: signature, root and operations agree",
                base.name
            ),
        );
    }
    for (code, m) in problems {
        d.fail("lineage", code, m);
    }
}
