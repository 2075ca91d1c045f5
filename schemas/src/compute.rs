//! Training-compute claims: a cumulative total, its components, and how it was estimated.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::ops::Ops;

/// Cumulative training compute. `total` must equal [`Components::sum`]; the verifier checks it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    pub total: Ops,
    pub inputs: EstimationInputs,
    pub method: EstimationMethod,
    pub components: Components,
}

/// The line items regimes count differently, kept apart so each policy preset can add its own.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Components {
    /// Weights this model started from (fine-tune, merge, initialisation), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<BaseModel>,
    pub pre_training: Ops,
    /// Fine-tuning, RL and other post-training.
    pub post_training: Ops,
    /// Generating non-public synthetic training data, discarded samples included.
    pub synthetic_data: Ops,
    /// Per mille of the training operations (pre + post) spent on synthetic data that one
    /// unpublished model generated (the largest such generator), when stated: the US BIS rule
    /// counts synthetic-data generation only above 10 % of training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic_data_share_permille: Option<u16>,
}

impl Components {
    /// Pre-training + post-training + synthetic data + base model (when its compute is
    /// known); `None` on overflow.
    pub fn sum(&self) -> Option<Ops> {
        let own = self
            .pre_training
            .checked_add(self.post_training)?
            .checked_add(self.synthetic_data)?;
        match self.base_model.as_ref().and_then(|b| b.ops) {
            Some(b) => own.checked_add(b),
            None => Some(own),
        }
    }
}

/// The model a derived model was trained from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BaseModel {
    /// The base model's cumulative compute; absent when unknown (then `systemic_risk` says
    /// which fallback the EU guidelines use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Ops>,
    pub name: String,
    /// Root digest of the base model's weights.
    pub root_sha256: Digest,
    /// Whether the base model is a general-purpose AI model with systemic risk (EU AI Act),
    /// when claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemic_risk: Option<bool>,
    /// SHA-256 of the base model's attestation envelope file, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_sha256: Option<Digest>,
}

/// How `total` was estimated (Epoch AI's methods).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EstimationMethod {
    /// 6 × active parameters × training tokens.
    #[serde(rename = "6nd")]
    SixNd,
    /// Accelerator-hours × peak operations per second × utilisation.
    #[serde(rename = "hardware")]
    Hardware,
    /// Counted by the training framework.
    #[serde(rename = "measured")]
    Measured,
}

impl EstimationMethod {
    pub const ALL: [EstimationMethod; 3] = [Self::SixNd, Self::Hardware, Self::Measured];

    /// The wire name: `6nd`, `hardware`, `measured`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SixNd => "6nd",
            Self::Hardware => "hardware",
            Self::Measured => "measured",
        }
    }
}

impl fmt::Display for EstimationMethod {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EstimationMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not one of `6nd`, `hardware`, `measured`"))
    }
}

/// The numbers behind the estimate, so a verifier can redo it. All optional; no floats.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EstimationInputs {
    /// Where a measured figure comes from (training log, report or URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Training tokens (D in 6·N·D).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Ops>,
    /// Accelerator model, e.g. `H100-SXM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_total: Option<u64>,
    /// Parameters active per token (N in 6·N·D; below `params_total` for mixture-of-experts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_active: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_hours: Option<u64>,
    /// Average utilisation of peak throughput, in thousandths (400 = 40 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation_permille: Option<u32>,
    /// Peak operations per second of one accelerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops_per_accelerator: Option<Ops>,
    /// The numeric precision the training ran at, whose peak `peak_flops_per_accelerator`
    /// states; absent in older statements (then checked as [`Precision::DEFAULT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Why `utilisation_permille` lies outside the plausible range
    /// ([`crate::estimate::PLAUSIBLE_UTILISATION_PERMILLE`]); required there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation_justification: Option<String>,
}

/// The numeric format the matrix units ran at: an accelerator's peak differs per format.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp64,
    Fp32,
    Tf32,
    Bf16,
    Fp16,
    Fp8,
    Fp6,
    Fp4,
    Int8,
}

impl Precision {
    pub const ALL: [Precision; 9] = [
        Self::Fp64,
        Self::Fp32,
        Self::Tf32,
        Self::Bf16,
        Self::Fp16,
        Self::Fp8,
        Self::Fp6,
        Self::Fp4,
        Self::Int8,
    ];

    /// What a statement without a precision is checked as: BF16, the format large runs
    /// train in and the one the Commission's guidelines use for their H100 example.
    pub const DEFAULT: Precision = Precision::Bf16;

    /// The wire name, e.g. `bf16`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp64 => "fp64",
            Self::Fp32 => "fp32",
            Self::Tf32 => "tf32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
            Self::Fp8 => "fp8",
            Self::Fp6 => "fp6",
            Self::Fp4 => "fp4",
            Self::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                format!("`{s}` is not one of `{}`", all.join("`, `"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_adds_every_component_and_reports_overflow() {
        let mut c = Components {
            base_model: None,
            pre_training: Ops(3),
            post_training: Ops(4),
            synthetic_data: Ops(5),
            synthetic_data_share_permille: None,
        };
        assert_eq!(c.sum(), Some(Ops(12)));
        c.base_model = Some(BaseModel {
            ops: Some(Ops(100)),
            name: "base".into(),
            root_sha256: Digest([0; 32]),
            systemic_risk: None,
            attestation_sha256: None,
        });
        assert_eq!(c.sum(), Some(Ops(112)));
        c.pre_training = Ops(u128::MAX - 100);
        assert_eq!(c.sum(), None);
    }

    #[test]
    fn methods_have_short_wire_names() {
        for m in EstimationMethod::ALL {
            assert_eq!(m.as_str().parse::<EstimationMethod>(), Ok(m));
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::json!(m.as_str())
            );
            assert_eq!(
                crate::cbor::to_vec(&m).unwrap(),
                crate::cbor::to_vec(m.as_str()).unwrap()
            );
        }
        assert!("SixNd".parse::<EstimationMethod>().is_err());
    }
}
