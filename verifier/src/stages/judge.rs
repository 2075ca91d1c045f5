//! Stage 3, judge: an authenticated statement bound to its bytes, against the policy: compute
//! consistency with its own inputs, time, lineage, grants and every active regime.

use super::authenticate::{Authenticated, authenticate_grants};
use super::bind::Bound;
use super::lineage::check as check_lineage;
use crate::decision::{CheckName, Decision, RegimeFact, RegimeResult};
use crate::finding::{CrossCheckBand, Finding, Problem, Threshold};
use crate::policy::{Context, Policy, RegimeOutcome, evaluate};
use crate::render::below_threshold;

/// Runs the remaining checks into `d` and settles it: allowed only if no check failed in any
/// stage.
pub fn judge(
    auth: &Authenticated,
    bound: &Bound,
    policy: &Policy,
    context: &Context,
    grants: &[Vec<u8>],
    base_envelope: Option<&[u8]>,
    d: &mut Decision,
) {
    let st = auth.statement();
    let now = context.now;
    // 6. Compute: consistency and plausibility.
    let c = &st.compute;
    let mut compute_ok = true;
    match c.components.sum() {
        Some(sum) if sum == c.total => {}
        Some(sum) => {
            compute_ok = false;
            d.fail(
                CheckName::Compute,
                Problem::TotalNotSum {
                    total: c.total,
                    sum,
                },
            );
        }
        None => {
            compute_ok = false;
            d.fail(CheckName::Compute, Problem::ComponentsOverflow);
        }
    }
    if let (Some(active), Some(header)) = (c.inputs.params_active, bound.header_parameters())
        && active > header
    {
        compute_ok = false;
        d.fail(
            CheckName::Compute,
            Problem::ActiveExceedsHeaders {
                active,
                headers: header,
            },
        );
    }
    // The same check `attest` makes before signing, at the policy's tolerance.
    let estimates = match weightgate_schemas::estimate::check_compute(
        c,
        policy.compute_tolerance_percent,
        policy.require_compute_inputs,
    ) {
        Ok(e) => e,
        Err(p) => {
            compute_ok = false;
            d.fail(CheckName::Compute, Problem::Estimate(p));
            Vec::new()
        }
    };
    if compute_ok
        && let Some(x) = policy.cross_check
        && let Some(problem) = cross_check(c, &estimates, x, policy)
    {
        compute_ok = false;
        d.fail(CheckName::Compute, problem);
    }
    if compute_ok {
        d.pass(
            CheckName::Compute,
            Finding::Compute {
                total: c.total,
                method: c.method,
                tolerance_percent: policy.compute_tolerance_percent,
                estimates: estimates.iter().map(|e| (e.method, e.ops)).collect(),
            },
        );
    }

    // 7. Time.
    let mut time_ok = true;
    if st.issued_at > now + policy.clock_skew_seconds {
        time_ok = false;
        d.fail(
            CheckName::Time,
            Problem::IssuedInFuture {
                issued_at: st.issued_at,
                now,
                skew: policy.clock_skew_seconds,
            },
        );
    }
    if let Some(e) = st.expires_at
        && e <= now
    {
        time_ok = false;
        d.fail(CheckName::Time, Problem::Expired { expires_at: e });
    }
    if time_ok {
        d.pass(
            CheckName::Time,
            Finding::Time {
                issued_at: st.issued_at,
                expires_at: st.expires_at,
            },
        );
    }

    // 8. Lineage.
    check_lineage(d, st, base_envelope, policy);

    // 9. Regimes.
    let shortfall = weightgate_schemas::estimate::shortfall(c).map_or(0, |(s, _)| s);
    d.facts.effective_ops = Some(
        policy
            .compute_margin
            .apply_ceil(c.total.0.saturating_add(shortfall))
            .to_string(),
    );
    let (grants, bad_grants) = authenticate_grants(policy, grants, now);
    for problem in bad_grants {
        d.fail(CheckName::Grants, problem);
    }
    for g in &grants {
        d.pass(
            CheckName::Grants,
            Finding::Grant {
                reference: crate::policy::ReferenceLabel::of(&g.grant.reference),
                issuer: g.issuer.clone(),
            },
        );
    }
    if policy.provenance_only {
        d.skip(CheckName::Regimes, Finding::RegimesNotJudged);
    } else if policy.regimes.is_empty() {
        d.skip(CheckName::Regimes, Finding::NoRegimes);
    }
    for regime in &policy.regimes {
        let name = CheckName::Regime {
            id: regime.id.clone(),
            historical: regime.historical,
        };
        let threshold = Threshold {
            comparator: regime.comparator,
            ops: regime.threshold,
        };
        let margin = regime.margin;
        let ev = evaluate(regime, st, context, &grants);
        let notes = ev.notes.clone();
        let (result, detail) = match ev.outcome {
            RegimeOutcome::Skipped(why) => {
                d.skip(
                    name,
                    Finding::RegimeSkipped {
                        why: why.clone(),
                        notes,
                    },
                );
                (RegimeResult::Skipped, why)
            }
            RegimeOutcome::Transitional(why) => {
                d.pass(
                    name,
                    Finding::RegimeTransitional {
                        why: why.clone(),
                        notes,
                    },
                );
                (RegimeResult::Transitional, why)
            }
            RegimeOutcome::Below => {
                let why = below_threshold(ev.effective_ops, margin, &threshold);
                d.pass(
                    name,
                    Finding::RegimeBelow {
                        effective_ops: ev.effective_ops,
                        margin,
                        threshold,
                        notes,
                    },
                );
                (RegimeResult::BelowThreshold, why)
            }
            RegimeOutcome::Satisfied(refs) => {
                d.pass(
                    name,
                    Finding::RegimeSatisfied {
                        threshold,
                        satisfied: refs.clone(),
                        notes,
                    },
                );
                (RegimeResult::ReferenceOk, refs)
            }
            RegimeOutcome::Denied(denial) => {
                let problem = Problem::RegimeDenied {
                    threshold,
                    margin,
                    denial,
                    notes,
                };
                let message = problem.to_string();
                d.fail(name, problem);
                (RegimeResult::Denied, message)
            }
        };
        d.facts.regimes.push(RegimeFact {
            id: regime.id.clone(),
            result,
            threshold: threshold.to_string(),
            detail,
            counted_ops: ev.counted_ops.to_string(),
            effective_ops: ev.effective_ops.to_string(),
            historical: regime.historical,
            notes: ev.notes,
        });
    }

    d.allowed = d.reasons.is_empty();
}

/// Near a threshold both estimates must be given and agree within the policy's factor: the
/// problem when they do not.
fn cross_check(
    c: &weightgate_schemas::Compute,
    estimates: &[weightgate_schemas::estimate::Estimate],
    x: crate::policy::CrossCheck,
    policy: &Policy,
) -> Option<Problem> {
    let total = c.total.0;
    let near = policy.regimes.iter().find(|rg| {
        let t = rg.threshold.0;
        // threshold / band <= total <= threshold x band, exactly.
        total.saturating_mul(x.band.numerator) >= t.saturating_mul(x.band.denominator)
            && total.saturating_mul(x.band.denominator) <= t.saturating_mul(x.band.numerator)
    })?;
    let near = CrossCheckBand {
        band: x.band,
        regime: near.id.clone(),
        threshold: near.threshold,
    };
    if estimates.len() < 2 {
        return Some(Problem::CrossCheckMissing {
            total: c.total,
            near,
        });
    }
    let hi = estimates.iter().map(|e| e.ops).max().unwrap_or(0);
    let lo = estimates.iter().map(|e| e.ops).min().unwrap_or(0);
    // hi <= lo x factor, exactly.
    if hi.saturating_mul(x.factor.denominator) > lo.saturating_mul(x.factor.numerator) {
        return Some(Problem::CrossCheckDisagrees {
            total: c.total,
            near,
            estimates: estimates.iter().map(|e| (e.method, e.ops)).collect(),
            factor: x.factor,
        });
    }
    None
}
