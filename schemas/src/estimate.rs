//! Redoing a compute claim from its own inputs. `attest` (before signing) and `verify` (with
//! the policy's tolerance) call the same [`check_compute`], so a lab cannot sign a claim that a
//! verifier refuses as inconsistent, and both give the same message.
//!
//! The tolerance is how far a claim may lie below its own estimate and still be consistent;
//! it is never a discount: [`shortfall`] is what the verdicts add back, so a model is judged at
//! no less than the highest estimate its inputs allow.

use std::ops::RangeInclusive;

use crate::accelerators;
use crate::compute::{Compute, EstimationInputs, EstimationMethod, Precision};
use crate::ops::Ops;

/// The default tolerance: a claim may lie at most 30 % below an estimate from its own inputs,
/// the overall error margin the Commission's GPAI guidelines (Annex A.2) expect of estimates.
pub const DEFAULT_TOLERANCE_PERCENT: u32 = 30;

/// Utilisation (thousandths of peak) that needs no justification: 5 % to 85 %. Published
/// large runs report 30-60 % (Epoch's defaults 30-40 %, the guidelines' examples 50 %,
/// Llama 3 38-43 %, DeepSeek-V3 about 33 %); below 5 % a run mostly idled, above 85 % beats
/// every published training run. Outside it, `utilisation_justification` must say why.
pub const PLAUSIBLE_UTILISATION_PERMILLE: RangeInclusive<u32> = 50..=850;

/// How far a stated peak may lie below the datasheet's: figures are quoted rounded (the
/// guidelines' Model B uses 300 TFLOP/s for the A100's 312). The estimate uses the higher.
pub const PEAK_ROUNDING_PERCENT: u32 = 5;

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
    /// The stated peak is below the datasheet's for the named accelerator and precision (or
    /// the datasheet lists no peak at that precision).
    PeakBelowDatasheet(String),
    /// Utilisation outside the plausible range without a justification.
    UtilisationUnjustified(String),
}

impl ComputeProblem {
    pub fn message(&self) -> &str {
        match self {
            ComputeProblem::MissingInputs(m)
            | ComputeProblem::BelowEstimate(m)
            | ComputeProblem::PeakBelowDatasheet(m)
            | ComputeProblem::UtilisationUnjustified(m) => m,
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

/// The named accelerator's datasheet peak at the stated precision (BF16 when none is
/// stated), with the accelerator; `None` for an accelerator not in the table.
fn datasheet_peak(
    inputs: &EstimationInputs,
) -> Option<(&'static accelerators::Accelerator, Option<Ops>)> {
    let a = accelerators::find(inputs.accelerator.as_deref()?)?;
    Some((a, a.peak(inputs.precision.unwrap_or(Precision::DEFAULT))))
}

/// Accelerator-hours x 3600 s x peak operations per second x utilisation, when all are there.
/// The peak is the stated one or, when higher, the named accelerator's datasheet peak.
pub fn hardware(inputs: &EstimationInputs) -> Option<Estimate> {
    let (hours, stated, permille) = (
        inputs.accelerator_hours?,
        inputs.peak_flops_per_accelerator?,
        inputs.utilisation_permille?,
    );
    let (peak, whose) = match datasheet_peak(inputs) {
        Some((a, Some(sheet))) if sheet > stated => (
            sheet,
            format!(
                " ({} {} datasheet; stated {})",
                a.name,
                inputs.precision.unwrap_or(Precision::DEFAULT),
                stated.to_scientific()
            ),
        ),
        _ => (stated, String::new()),
    };
    let ops = u128::from(hours)
        .saturating_mul(3600)
        .saturating_mul(peak.0)
        .saturating_mul(u128::from(permille))
        / 1000;
    Some(Estimate {
        method: EstimationMethod::Hardware,
        ops,
        formula: format!(
            "{} accelerator-hours x 3600 s x {} operations/s peak{whose} x {}.{} % utilisation",
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

/// The training the inputs estimate: pre-training + post-training. Both estimates describe
/// parameter updates; generating synthetic data is other compute (SB 53 and RAISE do not
/// count it), so it cannot absorb what the inputs attribute to training.
pub fn training_ops(c: &Compute) -> u128 {
    c.components
        .pre_training
        .0
        .saturating_add(c.components.post_training.0)
}

/// How far the highest estimate lies above the claimed training (zero when none does), and
/// that estimate: what every verdict adds to the training components it counts.
pub fn shortfall(c: &Compute) -> Option<(u128, Estimate)> {
    let training = training_ops(c);
    estimates(&c.inputs)
        .into_iter()
        .filter(|e| e.ops > training)
        .max_by_key(|e| e.ops)
        .map(|e| (e.ops - training, e))
}

/// The model's own compute (the total without a base model's known compute), raised to what
/// its inputs give.
pub fn own_compute(c: &Compute) -> u128 {
    let base = c
        .components
        .base_model
        .as_ref()
        .and_then(|b| b.ops)
        .map_or(0, |o| o.0);
    c.total
        .0
        .saturating_sub(base)
        .saturating_add(shortfall(c).map_or(0, |(s, _)| s))
}

/// The stated peak against the datasheet, and utilisation against the plausible range.
fn check_hardware_inputs(i: &EstimationInputs) -> Result<(), ComputeProblem> {
    if let (Some(stated), Some((a, sheet))) = (i.peak_flops_per_accelerator, datasheet_peak(i)) {
        let precision = i.precision.unwrap_or(Precision::DEFAULT);
        let assumed = if i.precision.is_none() {
            " (no precision stated: checked as bf16)"
        } else {
            ""
        };
        let table = accelerators::table();
        match sheet {
            None => {
                let listed: Vec<&str> = a.peaks.keys().map(|p| p.as_str()).collect();
                return Err(ComputeProblem::PeakBelowDatasheet(format!(
                    "{} lists no {precision} peak{assumed} (it lists {}; {}, table of {})",
                    a.name,
                    listed.join(", "),
                    a.source,
                    table.as_of
                )));
            }
            // stated < sheet x (100 - rounding) / 100, exactly.
            Some(sheet)
                if stated.0.saturating_mul(100)
                    < sheet
                        .0
                        .saturating_mul(u128::from(100 - PEAK_ROUNDING_PERCENT)) =>
            {
                return Err(ComputeProblem::PeakBelowDatasheet(format!(
                    "peak_flops_per_accelerator {} is below the {} {precision} dense peak {}{assumed} ({} {}, table of {}); at most {PEAK_ROUNDING_PERCENT} % below it is rounding",
                    stated.to_scientific(),
                    a.name,
                    sheet.to_scientific(),
                    a.source,
                    a.confidence,
                    table.as_of
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(u) = i.utilisation_permille
        && !PLAUSIBLE_UTILISATION_PERMILLE.contains(&u)
        && i.utilisation_justification
            .as_deref()
            .is_none_or(|j| j.trim().is_empty())
    {
        return Err(ComputeProblem::UtilisationUnjustified(format!(
            "utilisation {}.{} % is outside {}-{} % and compute.inputs.utilisation_justification does not say why",
            u / 10,
            u % 10,
            PLAUSIBLE_UTILISATION_PERMILLE.start() / 10,
            PLAUSIBLE_UTILISATION_PERMILLE.end() / 10
        )));
    }
    Ok(())
}

/// Checks a claim against the estimates from its own inputs: the declared method must have its
/// inputs when `require_inputs`; a stated peak must not lie below the named accelerator's
/// datasheet peak, and utilisation outside the plausible range needs a justification; and the
/// training components (pre + post) may lie at most `tolerance_percent` % below any estimate
/// (claiming more is fine: other work counts too). Returns the estimates on success.
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
    check_hardware_inputs(i)?;
    let training = training_ops(c);
    let keep = 100 - u128::from(tolerance_percent.min(99));
    let all = estimates(i);
    for e in &all {
        // training < estimate x (100 - tolerance) / 100, exactly.
        if training.saturating_mul(100) < e.ops.saturating_mul(keep) {
            let whose = if training == c.total.0 {
                "claimed"
            } else {
                "training (pre_training + post_training) is"
            };
            return Err(ComputeProblem::BelowEstimate(format!(
                "{whose} {} operations, but its own inputs give {} = {} ({}); a claim may be at most {} % below its own estimate",
                Ops(training).to_scientific(),
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
                synthetic_data_share_permille: None,
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

    #[test]
    fn synthetic_data_cannot_absorb_training() {
        // 6 x 1e9 x 1.8e16 = 1.08e26 of parameter updates, 5e25 of it relabelled synthetic.
        let inputs = EstimationInputs {
            params_active: Some(1_000_000_000),
            tokens: Some(Ops(18 * 10u128.pow(15))),
            ..Default::default()
        };
        let mut c = compute(108 * 10u128.pow(24), EstimationMethod::SixNd, inputs);
        c.components.pre_training = Ops(58 * 10u128.pow(24));
        c.components.synthetic_data = Ops(50 * 10u128.pow(24));
        let p = check_compute(&c, 30, true).unwrap_err();
        assert!(
            p.message()
                .starts_with("training (pre_training + post_training) is 5.8e25"),
            "{p:?}"
        );
        // Within the tolerance it is consistent, and the shortfall is what verdicts add back.
        c.components.pre_training = Ops(80 * 10u128.pow(24));
        c.components.synthetic_data = Ops(28 * 10u128.pow(24));
        assert!(check_compute(&c, 30, true).is_ok());
        assert_eq!(shortfall(&c).unwrap().0, 28 * 10u128.pow(24));
        assert_eq!(own_compute(&c), 136 * 10u128.pow(24));
    }

    #[test]
    fn hardware_inputs_are_held_to_the_datasheet() {
        let mut i = hw(1000, 98_900_000_000_000, 400);
        i.accelerator = Some("H100 SXM5".into());
        let p = check_compute(
            &compute(10u128.pow(30), EstimationMethod::Hardware, i.clone()),
            30,
            true,
        )
        .unwrap_err();
        assert!(
            matches!(&p, ComputeProblem::PeakBelowDatasheet(m)
            if m.contains("below the H100-SXM bf16 dense peak 9.894e14 (no precision stated: checked as bf16)")),
            "{p:?}"
        );
        // FP8 at the BF16 peak halves the estimate: refused.
        i.peak_flops_per_accelerator = Some(Ops(989 * 10u128.pow(12)));
        i.precision = Some(Precision::Fp8);
        assert!(matches!(
            check_compute(
                &compute(10u128.pow(30), EstimationMethod::Hardware, i.clone()),
                30,
                true
            ),
            Err(ComputeProblem::PeakBelowDatasheet(_))
        ));
        // Rounded to 9.89e14 at BF16: accepted, and the estimate uses the datasheet's 9.894e14.
        i.precision = Some(Precision::Bf16);
        assert_eq!(
            hardware(&i).unwrap().ops,
            1000 * 3600 * 9_894 * 10u128.pow(11) * 400 / 1000
        );
        // A TPU v5p has no FP8 peak.
        i.accelerator = Some("TPU v5p".into());
        i.precision = Some(Precision::Fp8);
        let p = check_compute(
            &compute(10u128.pow(30), EstimationMethod::Hardware, i.clone()),
            30,
            true,
        )
        .unwrap_err();
        assert!(
            p.message()
                .contains("TPU v5p lists no fp8 peak (it lists bf16, int8"),
            "{p:?}"
        );
        // Utilisation of 0.1 % needs a justification.
        let mut low = hw(1000, 10u128.pow(15), 1);
        let c = compute(10u128.pow(30), EstimationMethod::Hardware, low.clone());
        assert!(matches!(
            check_compute(&c, 30, true),
            Err(ComputeProblem::UtilisationUnjustified(m)) if m.contains("0.1 % is outside 5-85 %")
        ));
        low.utilisation_justification = Some("idle reservation billed as training".into());
        let c = compute(10u128.pow(30), EstimationMethod::Hardware, low);
        assert!(check_compute(&c, 30, true).is_ok());
    }
}
