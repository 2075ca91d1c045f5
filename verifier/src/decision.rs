//! What `verify` decided, why, and the facts it read. Serialized as the stable `--json` output;
//! the sentences in it are written by [`crate::render`].

use serde::Serialize;

use crate::finding::{Finding, Problem};
use crate::reason::ReasonCode;

/// Which check a report line is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckName {
    Envelope,
    Signatures,
    Revocation,
    Statement,
    Subject,
    /// The OpenSSF model-signing bundle (`model.sig`).
    ModelSig,
    Compute,
    Time,
    Lineage,
    Grants,
    /// The policy's regimes, when it activates none.
    Regimes,
    /// One regime; `historical` when it is a historical rule.
    Regime {
        id: String,
        historical: bool,
    },
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    Pass,
    Fail,
    /// Not applicable, or not run because an earlier check failed.
    Skip,
}

/// What one check found, by outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    Pass(Finding),
    Skip(Finding),
    Fail(Problem),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: CheckName,
    pub result: CheckResult,
}

impl Check {
    pub fn outcome(&self) -> CheckOutcome {
        match self.result {
            CheckResult::Pass(_) => CheckOutcome::Pass,
            CheckResult::Skip(_) => CheckOutcome::Skip,
            CheckResult::Fail(_) => CheckOutcome::Fail,
        }
    }
}

/// Why a decision denies: a failed check's problem and its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    pub problem: Problem,
}

/// What one regime concluded, as `--json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegimeResult {
    /// Not in force, or not applicable here.
    Skipped,
    Transitional,
    BelowThreshold,
    /// Above the threshold, with what the regime requires.
    ReferenceOk,
    Denied,
}

/// What one regime concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegimeFact {
    pub id: String,
    pub result: RegimeResult,
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
    /// Attested (or model.sig-signed) files absent from a download, left out of the subject
    /// and model.sig checks.
    pub not_downloaded: Vec<String>,
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

    pub(crate) fn pass(&mut self, name: CheckName, finding: Finding) {
        self.checks.push(Check {
            name,
            result: CheckResult::Pass(finding),
        });
    }

    pub(crate) fn skip(&mut self, name: CheckName, finding: Finding) {
        self.checks.push(Check {
            name,
            result: CheckResult::Skip(finding),
        });
    }

    /// Records a failed check and its reason.
    pub(crate) fn fail(&mut self, name: CheckName, problem: Problem) {
        self.reasons.push(Reason {
            code: problem.code(),
            problem: problem.clone(),
        });
        self.checks.push(Check {
            name,
            result: CheckResult::Fail(problem),
        });
    }

    /// Reason codes, in order.
    pub fn codes(&self) -> Vec<ReasonCode> {
        self.reasons.iter().map(|r| r.code).collect()
    }
}
