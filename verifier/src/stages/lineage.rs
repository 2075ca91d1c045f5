//! Derived models: the base model's compute counts, and its envelope, when given, must agree.

use sha2::{Digest as _, Sha256};
use weightgate_schemas::{ATTESTATION_PAYLOAD_TYPE, Envelope, Statement};

use super::signature::{check_signatures, distinct_valid_keys};
use crate::decision::{CheckName, Decision};
use crate::finding::{Finding, Problem};
use crate::policy::Policy;
use crate::reason::ReasonCode;

/// Checks what can be checked about the base model: the policy's known base models, the base
/// envelope (signature, revocation, root, compute), or its absence when the policy requires it.
/// Who becomes the provider is each regime's rule (policy/regime.rs).
pub fn check(d: &mut Decision, st: &Statement, base_envelope: Option<&[u8]>, policy: &Policy) {
    let Some(base) = &st.compute.components.base_model else {
        if base_envelope.is_some() {
            d.fail(CheckName::Lineage, Problem::BaseEnvelopeWithoutBase);
        } else {
            d.skip(CheckName::Lineage, Finding::NotDerived);
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
        let disagrees = |code| Problem::KnownBaseDisagrees {
            code,
            name: k.name.clone(),
            root_sha256: root.clone(),
            recorded: k.ops,
            claimed: base.ops,
        };
        match base.ops {
            Some(o) if o == k.ops => d.pass(
                CheckName::Lineage,
                Finding::KnownBase {
                    name: k.name.clone(),
                    ops: k.ops,
                },
            ),
            // More than the record shrinks the modification's share of the base (the EU
            // one-third rule): as wrong as less.
            Some(o) if o > k.ops => d.fail(
                CheckName::Lineage,
                disagrees(ReasonCode::LineageBaseMismatch),
            ),
            _ => d.fail(
                CheckName::Lineage,
                disagrees(ReasonCode::LineageBaseUnderstated),
            ),
        }
    }
    let Some(bytes) = base_envelope else {
        if known.is_some() {
            return;
        }
        let name = base.name.clone();
        if policy.require_base_attestation {
            d.fail(
                CheckName::Lineage,
                Problem::BaseAttestationRequired { name },
            );
        } else {
            d.pass(CheckName::Lineage, Finding::BaseCountedAsClaimed { name });
        }
        return;
    };
    let mut problems = Vec::new();
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if let Some(want) = base.attestation_sha256
        && want.0 != digest
    {
        problems.push(Problem::BaseEnvelopeNotNamed);
    }
    match Envelope::decode_strict(bytes) {
        Err(e) => problems.push(Problem::BaseEnvelopeMalformed {
            error: e.to_string(),
        }),
        Ok(env) if env.payload_type != ATTESTATION_PAYLOAD_TYPE => {
            problems.push(Problem::BaseNotAttestation)
        }
        Ok(env) => {
            let payload_digest = hex::encode(Sha256::digest(&env.payload));
            if policy.revoked_attestations.contains(&payload_digest) {
                problems.push(Problem::BaseRevoked {
                    attestation: payload_digest,
                });
            }
            let findings = check_signatures(
                &env,
                &policy.trusted_keys,
                &policy.revoked_keys,
                d.facts.now,
            );
            if distinct_valid_keys(&findings).is_empty() {
                problems.push(Problem::BaseNotSignedByTrustedKey);
            }
            match Statement::decode_strict(&env.payload) {
                Err(e) => problems.push(Problem::BaseStatementMalformed {
                    error: e.to_string(),
                }),
                Ok(b) => {
                    if b.subject.root_sha256 != base.root_sha256 {
                        problems.push(Problem::BaseRootDiffers {
                            attested: b.subject.root_sha256.to_hex(),
                            named: base.root_sha256.to_hex(),
                        });
                    }
                    if Some(b.compute.total) != base.ops {
                        problems.push(Problem::BaseOpsDiffer {
                            attested: b.compute.total,
                            claimed: base.ops,
                        });
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        d.pass(
            CheckName::Lineage,
            Finding::BaseVerified {
                name: base.name.clone(),
            },
        );
    }
    for problem in problems {
        d.fail(CheckName::Lineage, problem);
    }
}
