//! Derived models: the base model's compute counts, and its envelope, when given, must agree.

use sha2::{Digest as _, Sha256};
use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement};

use super::signature::{check_signatures, distinct_valid_keys};
use crate::decision::Decision;
use crate::policy::Policy;
use crate::reason::ReasonCode;

/// EU AI Act guidelines: a modifier becomes the provider when its modification compute exceeds
/// one third of the original model's (regulation.md s2.3).
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
    let modification = st.compute.total.0.saturating_sub(base.ops.0);
    let becomes_provider = modification.saturating_mul(3) > base.ops.0;
    d.facts.lineage.push(format!(
        "derived from {} (root sha256:{}): base {} operations, modification {} operations",
        base.name,
        base.root_sha256.to_hex(),
        base.ops.to_scientific(),
        weightgate_schemas::Ops(modification).to_scientific()
    ));
    d.facts.lineage.push(format!(
        "EU one-third rule: modification is {} one third of the base compute, so the modifier {} the provider",
        if becomes_provider { "more than" } else { "at most" },
        if becomes_provider { "becomes" } else { "does not become" }
    ));
    let Some(bytes) = base_envelope else {
        d.pass(
            "lineage",
            format!(
                "base model {} counted ({}); its envelope was not supplied",
                base.name,
                base.ops.to_scientific()
            ),
        );
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
                    if b.compute.total != base.ops {
                        problems.push((
                            ReasonCode::LineageBaseMismatch,
                            format!(
                                "base envelope attests {} operations, the statement counts {}",
                                b.compute.total, base.ops
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
