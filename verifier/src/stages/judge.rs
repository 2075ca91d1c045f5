//! Stage 3, judge: an authenticated statement bound to its bytes, against the policy: compute
//! consistency with its own inputs, time, lineage, grants and every active regime.

use weightgate_schemas::Ops;
use weightgate_schemas::estimate::ComputeProblem;

use super::authenticate::{Authenticated, authenticate_grants};
use super::bind::Bound;
use super::lineage::check as check_lineage;
use crate::decision::{Decision, RegimeFact};
use crate::policy::{Context, Factor, Policy, RegimeOutcome, evaluate};
use crate::reason::ReasonCode;

fn show(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |t| t.to_string())
}

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
                "compute",
                ReasonCode::ComputeTotalMismatch,
                format!("total {} is not the sum of its components ({sum})", c.total),
            );
        }
        None => {
            compute_ok = false;
            d.fail(
                "compute",
                ReasonCode::ComputeTotalMismatch,
                "components overflow".to_string(),
            );
        }
    }
    if let (Some(active), Some(header)) = (c.inputs.params_active, bound.header_parameters())
        && active > header
    {
        compute_ok = false;
        d.fail(
            "compute",
            ReasonCode::ComputeActiveExceedsTotal,
            format!("{active} active parameters exceed the {header} in the headers"),
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
            let code = match p {
                ComputeProblem::MissingInputs(_) => ReasonCode::ComputeInputsMissing,
                ComputeProblem::BelowEstimate(_) => ReasonCode::ComputeInconsistentInputs,
            };
            d.fail("compute", code, p.message().to_string());
            Vec::new()
        }
    };
    if compute_ok
        && let Some(x) = policy.cross_check
        && let Some(problem) = cross_check(c, &estimates, x, policy)
    {
        compute_ok = false;
        d.fail("compute", problem.0, problem.1);
    }
    if compute_ok {
        let agree = estimates
            .iter()
            .map(|e| format!("{} {}", e.method.as_str(), Ops(e.ops).to_scientific()))
            .collect::<Vec<_>>();
        d.pass(
            "compute",
            format!(
                "{} operations ({}), components add up{}",
                c.total.to_scientific(),
                c.method.as_str(),
                if agree.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; agrees with its inputs within {} % ({})",
                        policy.compute_tolerance_percent,
                        agree.join(", ")
                    )
                }
            ),
        );
    }

    // 7. Time.
    let mut time_ok = true;
    if st.issued_at > now + policy.clock_skew_seconds {
        time_ok = false;
        d.fail(
            "time",
            ReasonCode::TimeIssuedInFuture,
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
        d.fail(
            "time",
            ReasonCode::TimeExpired,
            format!("expired {}", show(e)),
        );
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
    check_lineage(d, st, base_envelope, policy);

    // 9. Regimes.
    d.facts.effective_ops = Some(policy.compute_margin.apply_ceil(c.total.0).to_string());
    let (grants, bad_grants) = authenticate_grants(policy, grants, now);
    for (code, b) in bad_grants {
        d.fail("grants", code, b);
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
        let name = format!(
            "regime {}{}",
            regime.id,
            if regime.historical {
                " (historical)"
            } else {
                ""
            }
        );
        let threshold = format!(
            "{} {}",
            regime.comparator.as_str(),
            regime.threshold.to_scientific()
        );
        let margin = if regime.margin == Factor::ONE {
            String::new()
        } else {
            format!(" x{} margin (policy choice)", regime.margin.to_decimal())
        };
        let ev = evaluate(regime, st, context, &grants);
        let notes = if ev.notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", ev.notes.join("; "))
        };
        let (result, detail) = match ev.outcome {
            RegimeOutcome::Skipped(why) => {
                d.skip(&name, format!("{why}{notes}"));
                ("skipped", why)
            }
            RegimeOutcome::Transitional(why) => {
                d.pass(&name, format!("transitional: {why}{notes}"));
                ("transitional", why)
            }
            RegimeOutcome::Below => {
                let why = format!(
                    "{}{margin} is not {threshold}",
                    Ops(ev.effective_ops).to_scientific()
                );
                d.pass(&name, format!("below threshold: {why}{notes}"));
                ("below-threshold", why)
            }
            RegimeOutcome::Satisfied(refs) => {
                d.pass(
                    &name,
                    format!("above threshold ({threshold}); {refs}{notes}"),
                );
                ("reference-ok", refs)
            }
            RegimeOutcome::Denied(code, message) => {
                let message = format!("above threshold ({threshold}{margin}): {message}{notes}");
                d.fail(&name, code, message.clone());
                ("denied", message)
            }
        };
        d.facts.regimes.push(RegimeFact {
            id: regime.id.clone(),
            result,
            threshold,
            detail,
            counted_ops: ev.counted_ops.to_string(),
            effective_ops: ev.effective_ops.to_string(),
            historical: regime.historical,
            notes: ev.notes,
        });
    }

    d.allowed = d.reasons.is_empty();
}

/// Near a threshold both estimates must be given and agree within the policy's factor: a
/// `(code, message)` when they do not.
fn cross_check(
    c: &weightgate_schemas::Compute,
    estimates: &[weightgate_schemas::estimate::Estimate],
    x: crate::policy::CrossCheck,
    policy: &Policy,
) -> Option<(ReasonCode, String)> {
    let total = c.total.0;
    let near = policy.regimes.iter().find(|rg| {
        let t = rg.threshold.0;
        // threshold / band <= total <= threshold x band, exactly.
        total.saturating_mul(x.band.numerator) >= t.saturating_mul(x.band.denominator)
            && total.saturating_mul(x.band.denominator) <= t.saturating_mul(x.band.numerator)
    })?;
    let band = format!(
        "within x{} of {}'s threshold {}",
        x.band.to_decimal(),
        near.id,
        near.threshold.to_scientific()
    );
    if estimates.len() < 2 {
        return Some((
            ReasonCode::ComputeInputsMissing,
            format!(
                "{} operations is {band}: the policy wants both a 6nd (params_active, tokens) and a hardware (accelerator_hours, peak_flops_per_accelerator, utilisation_permille) estimate",
                c.total.to_scientific()
            ),
        ));
    }
    let hi = estimates.iter().map(|e| e.ops).max().unwrap_or(0);
    let lo = estimates.iter().map(|e| e.ops).min().unwrap_or(0);
    // hi <= lo x factor, exactly.
    if hi.saturating_mul(x.factor.denominator) > lo.saturating_mul(x.factor.numerator) {
        let list = estimates
            .iter()
            .map(|e| format!("{} {}", e.method.as_str(), Ops(e.ops).to_scientific()))
            .collect::<Vec<_>>()
            .join(", ");
        return Some((
            ReasonCode::ComputeImplausible,
            format!(
                "{} operations is {band}, and its estimates ({list}) disagree by more than x{}",
                c.total.to_scientific(),
                x.factor.to_decimal()
            ),
        ));
    }
    None
}
