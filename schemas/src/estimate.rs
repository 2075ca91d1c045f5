//! Redoing a compute claim from its own inputs. `attest` (before signing) and `verify` (with
//! the policy's tolerance) call the same [`check_compute`], so a lab cannot sign a claim that a
//! verifier refuses as inconsistent, and both give the same message.

use crate::compute::{Compute, EstimationInputs, EstimationMethod};
use crate::ops::Ops;

/// The default tolerance: a claim may lie at most 30 % below an estimate from its own inputs,
/// the overall error margin the Commission's GPAI guidelines (Annex A.2) expect of estimates.
pub const DEFAULT_TOLERANCE_PERCENT: u32 = 30;

/// One estimate recomputed from the inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub method: EstimationMethod,
    pub ops: u128,
    /// How it was computed, e.g. `6 x 3.8e9 parameters x 3.3e12 tokens`.
    pub formula: String,
}

/// What is wrong with a compute claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeProblem {
    /// The declared method lacks the inputs it is computed from (or, for `measured`, a source).
    MissingInputs(String),
    /// The claim lies further below an estimate from its own inputs than the tolerance allows.
    BelowEstimate(String),
}

impl ComputeProblem {
    pub fn message(&self) -> &str {
        match self {
            ComputeProblem::MissingInputs(m) | ComputeProblem::BelowEstimate(m) => m,
        }
    }
}

/// 6 · N_active · D, when both inputs are there.
pub fn six_nd(inputs: &EstimationInputs) -> Option<Estimate> {
    let (n, d) = (inputs.params_active?, inputs.tokens?);
    Some(Estimate {
        method: EstimationMethod::SixNd,
        ops: 6u128.saturating_mul(u128::from(n)).saturating_mul(d.0),
        formula: format!(
            "6 x {} active parameters x {} tokens",
            Ops(u128::from(n)).to_scientific(),
            d.to_scientific()
        ),
    })
}

/// Accelerator-hours x 3600 s x peak operations per second x utilisation, when all are there.
pub fn hardware(inputs: &EstimationInputs) -> Option<Estimate> {
    let (hours, peak, permille) = (
        inputs.accelerator_hours?,
        inputs.peak_flops_per_accelerator?,
        inputs.utilisation_permille?,
    );
    let ops = u128::from(hours)
        .saturating_mul(3600)
        .saturating_mul(peak.0)
        .saturating_mul(u128::from(permille))
        / 1000;
    Some(Estimate {
        method: EstimationMethod::Hardware,
        ops,
        formula: format!(
            "{} accelerator-hours x 3600 s x {} operations/s peak x {}.{} % utilisation",
            Ops(u128::from(hours)).to_scientific(),
            peak.to_scientific(),
            permille / 10,
            permille % 10
        ),
    })
}

/// Every estimate the inputs allow, 6·N·D first.
pub fn estimates(inputs: &EstimationInputs) -> Vec<Estimate> {
    [six_nd(inputs), hardware(inputs)]
        .into_iter()
        .flatten()
        .collect()
}

/// The compute the inputs describe: the model's own training, i.e. the total without a base
/// model's (known) compute.
pub fn own_compute(c: &Compute) -> u128 {
    let base = c
        .components
        .base_model
        .as_ref()
        .and_then(|b| b.ops)
        .map_or(0, |o| o.0);
    c.total.0.saturating_sub(base)
}

/// Checks a claim against the estimates from its own inputs: the declared method must have its
/// inputs when `require_inputs`, and the model's own compute may lie at most
/// `tolerance_percent` % below any estimate (claiming more is fine: other work counts too).
/// Returns the estimates on success.
pub fn check_compute(
    c: &Compute,
    tolerance_percent: u32,
    require_inputs: bool,
) -> Result<Vec<Estimate>, ComputeProblem> {
    let i = &c.inputs;
    if require_inputs {
        let missing = match c.method {
            EstimationMethod::SixNd if six_nd(i).is_none() => {
                Some("`6nd` needs compute.inputs.params_active and compute.inputs.tokens")
            }
            EstimationMethod::Hardware if hardware(i).is_none() => Some(
                "`hardware` needs compute.inputs.accelerator_hours, peak_flops_per_accelerator and utilisation_permille",
            ),
            EstimationMethod::Measured if i.source.as_deref().is_none_or(str::is_empty) => {
                Some("`measured` needs compute.inputs.source, naming where the figure comes from")
            }
            _ => None,
        };
        if let Some(m) = missing {
            return Err(ComputeProblem::MissingInputs(m.to_string()));
        }
    }
    let own = own_compute(c);
    let keep = 100 - u128::from(tolerance_percent.min(99));
    let all = estimates(i);
    for e in &all {
        // own < estimate x (100 - tolerance) / 100, exactly.
        if own.saturating_mul(100) < e.ops.saturating_mul(keep) {
            let whose = if own == c.total.0 {
                "claimed"
            } else {
                "own training (total minus the base model) is"
            };
            return Err(ComputeProblem::BelowEstimate(format!(
                "{whose} {} operations, but its own inputs give {} = {} ({}); a claim may be at most {} % below its own estimate",
                Ops(own).to_scientific(),
                e.formula,
                Ops(e.ops).to_scientific(),
                e.method.as_str(),
                tolerance_percent
            )));
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::Components;

    fn compute(total: u128, method: EstimationMethod, inputs: EstimationInputs) -> Compute {
        Compute {
            total: Ops(total),
            inputs,
            method,
            components: Components {
                base_model: None,
                pre_training: Ops(total),
                post_training: Ops(0),
                synthetic_data: Ops(0),
            },
        }
    }

    fn hw(hours: u64, peak: u128, permille: u32) -> EstimationInputs {
        EstimationInputs {
            accelerator_hours: Some(hours),
            peak_flops_per_accelerator: Some(Ops(peak)),
            utilisation_permille: Some(permille),
            ..Default::default()
        }
    }

    #[test]
    fn eu_guideline_examples() {
        // Model A: 6 x 3.8e9 x 3.3e12 = 7.524e22.
        let a = EstimationInputs {
            params_active: Some(3_800_000_000),
            tokens: Some(Ops(3_300_000_000_000)),
            ..Default::default()
        };
        assert_eq!(six_nd(&a).unwrap().ops, 75_240 * 10u128.pow(18));
        // Model B: 200,000 A100-hours at 3e14 and 50 % = 1.08e23.
        assert_eq!(
            hardware(&hw(200_000, 3 * 10u128.pow(14), 500)).unwrap().ops,
            108 * 10u128.pow(21)
        );
        // Model H: 370,000 H100-hours at 9.89e14 and 50 % = 6.5871e23.
        assert_eq!(
            hardware(&hw(370_000, 989 * 10u128.pow(12), 500))
                .unwrap()
                .ops,
            658_674 * 10u128.pow(18)
        );
    }

    #[test]
    fn a_claim_below_its_inputs_is_refused_within_the_tolerance() {
        // 2.1e8 H100-hours at 40 %: about 3e26, claimed 5e24.
        let inputs = hw(210_000_000, 989 * 10u128.pow(12), 400);
        let est = hardware(&inputs).unwrap().ops;
        let lie = compute(
            5 * 10u128.pow(24),
            EstimationMethod::Hardware,
            inputs.clone(),
        );
        let p = check_compute(&lie, 30, false).unwrap_err();
        assert!(
            matches!(&p, ComputeProblem::BelowEstimate(m) if m.contains("= 2.990736e26")),
            "{p:?}"
        );
        // Exactly 70 % of the estimate is the edge: allowed; one less is not.
        let edge = est * 7 / 10;
        assert_eq!(est % 10, 0);
        let ok = compute(edge, EstimationMethod::Hardware, inputs.clone());
        assert!(check_compute(&ok, 30, false).is_ok());
        let under = compute(edge - 1, EstimationMethod::Hardware, inputs.clone());
        assert!(check_compute(&under, 30, false).is_err());
        // Claiming more than the estimate is fine.
        let more = compute(est * 2, EstimationMethod::Hardware, inputs);
        assert!(check_compute(&more, 30, false).is_ok());
    }

    #[test]
    fn inputs_can_be_required() {
        let bare = compute(10, EstimationMethod::Hardware, EstimationInputs::default());
        assert!(check_compute(&bare, 30, false).is_ok());
        assert!(matches!(
            check_compute(&bare, 30, true),
            Err(ComputeProblem::MissingInputs(_))
        ));
        let measured = compute(10, EstimationMethod::Measured, EstimationInputs::default());
        assert!(check_compute(&measured, 30, true).is_err());
        let cited = compute(
            10,
            EstimationMethod::Measured,
            EstimationInputs {
                source: Some("log".into()),
                ..Default::default()
            },
        );
        assert!(check_compute(&cited, 30, true).is_ok());
    }
}
