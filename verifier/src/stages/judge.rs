//! Stage 3, judge: an authenticated statement bound to its bytes, against the policy: compute
//! consistency and plausibility, time, lineage, grants and every active regime.

use weightgate_schemas::Ops;

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
    if let (Some(active), Some(tokens)) = (c.inputs.params_active, c.inputs.tokens) {
        let six_nd = 6u128
            .saturating_mul(u128::from(active))
            .saturating_mul(tokens.0);
        // The claim may exceed 6ND (other work counts too) but not fall far below it.
        let tol = policy.plausibility_tolerance;
        if c.total.0.saturating_mul(tol.numerator) < six_nd.saturating_mul(tol.denominator) {
            compute_ok = false;
            d.fail("compute", ReasonCode::ComputeImplausible, format!(
                "claimed {} operations, but 6 x {active} active parameters x {} tokens = {} (tolerance /{})",
                c.total.to_scientific(),
                tokens.to_scientific(),
                Ops(six_nd).to_scientific(),
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
    let effective = policy.compute_margin.apply_ceil(c.total.0);
    d.facts.effective_ops = Some(effective.to_string());
    let (grants, bad_grants) = authenticate_grants(policy, grants, now);
    for b in bad_grants {
        d.fail("grants", ReasonCode::GrantInvalid, b);
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
        let margin = if policy.compute_margin == Factor::ONE {
            String::new()
        } else {
            format!(" x{} margin", policy.compute_margin.to_decimal())
        };
        let (result, detail) = match evaluate(regime, st, effective, context, &grants) {
            RegimeOutcome::Skipped(why) => {
                d.skip(&name, why.clone());
                ("skipped", why)
            }
            RegimeOutcome::Below => {
                let why = format!(
                    "{}{margin} is not {threshold}",
                    Ops(effective).to_scientific()
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
}
