//! What `verify` decided, why, and the facts it read. Serialized as the stable `--json` output.

use serde::Serialize;

use crate::reason::ReasonCode;

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    Pass,
    Fail,
    /// Not applicable, or not run because an earlier check failed.
    Skip,
}

/// One line of the human report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub outcome: CheckOutcome,
    pub detail: String,
}

/// Why a decision denies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

/// What one regime concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegimeFact {
    pub id: String,
    /// `skipped` (not in force or not applicable), `transitional`, `below-threshold`,
    /// `reference-ok`, `denied`.
    pub result: &'static str,
    pub threshold: String,
    pub detail: String,
    /// Decimal strings: the compute the regime counts, and that times its margin.
    pub counted_ops: String,
    pub effective_ops: String,
    /// A historical rule (evaluated only when simulated).
    pub historical: bool,
    /// Facts found on the way: roles, revenue, exemptions, notification timing.
    pub notes: Vec<String>,
}

/// Facts a hub or user may want beside the verdict (from the statement; trusted only when the
/// decision allows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub model: Option<String>,
    pub version: Option<String>,
    pub root_sha256: Option<String>,
    pub entity: Option<String>,
    pub lei: Option<String>,
    pub country: Option<String>,
    pub parent_country: Option<String>,
    /// Decimal strings: operation counts exceed JSON's exact integers.
    pub total_ops: Option<String>,
    pub effective_ops: Option<String>,
    pub header_parameters: Option<u64>,
    pub signers: Vec<String>,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub regimes: Vec<RegimeFact>,
    pub lineage: Vec<String>,
    pub destination: Option<String>,
    pub now: i64,
    pub digest: &'static str,
    pub bytes_hashed: u64,
    /// Root digest the checked `model.sig` names (OpenSSF model signing).
    pub oms_root_sha256: Option<String>,
    pub oms_signer: Option<String>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reasons: Vec<Reason>,
    pub checks: Vec<Check>,
    pub facts: Facts,
}

impl Decision {
    pub(crate) fn new(now: i64) -> Self {
        Decision {
            allowed: false,
            reasons: Vec::new(),
            checks: Vec::new(),
            facts: Facts {
                now,
                ..Facts::default()
            },
        }
    }

    pub(crate) fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            outcome: CheckOutcome::Pass,
            detail: detail.into(),
        });
    }

    pub(crate) fn skip(&mut self, name: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            outcome: CheckOutcome::Skip,
            detail: detail.into(),
        });
    }

    /// Records a failed check and its reason.
    pub(crate) fn fail(&mut self, name: &str, code: ReasonCode, message: impl Into<String>) {
        let message = message.into();
        self.checks.push(Check {
            name: name.into(),
            outcome: CheckOutcome::Fail,
            detail: format!("{code}: {message}"),
        });
        self.reasons.push(Reason { code, message });
    }

    /// Reason codes, in order.
    pub fn codes(&self) -> Vec<ReasonCode> {
        self.reasons.iter().map(|r| r.code).collect()
    }
}
