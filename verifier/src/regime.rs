//! Regimes: a compute threshold, the references needed above it, when and where it applies.
//! Presets are data (`presets.toml`); evaluation is one function for all of them.

use serde::Deserialize;
use weightgate_schemas::{Grant, Ops, Reference, ReferenceKind, Statement};

use crate::reason;

/// `>` or `>=` against the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Comparator {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Comparator {
    pub fn above(&self, value: u128, threshold: u128) -> bool {
        match self {
            Comparator::Gt => value > threshold,
            Comparator::Ge => value >= threshold,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        }
    }
}

/// A regime, fully resolved (preset plus policy overrides).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Regime {
    pub id: String,
    pub title: String,
    pub source: String,
    pub threshold: Ops,
    pub comparator: Comparator,
    pub required: Vec<ReferenceKind>,
    pub in_force_from: Option<i64>,
    pub in_force_until: Option<i64>,
    /// Destinations where it applies; empty means everywhere.
    pub applies_to: Vec<String>,
    /// Destinations refused outright above the threshold.
    pub embargoed: Vec<String>,
    pub tier1: Vec<String>,
    /// Authorities whose references count; empty means any.
    pub accepted_authorities: Vec<String>,
    /// References must come with a grant signed by a trusted issuer.
    pub require_grant: bool,
    /// Evaluate even outside `in_force_from..in_force_until` (simulating a historical rule).
    pub assume_in_force: bool,
    pub default_active: bool,
}

/// A grant whose signature by a trusted issuer has been checked.
#[derive(Debug, Clone)]
pub struct VerifiedGrant {
    pub grant: Grant,
    pub issuer: String,
}

/// What verification needs to know about the moment and place.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub now: i64,
    pub destination: Option<String>,
}

/// The outcome for one regime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegimeOutcome {
    Skipped(String),
    Below,
    Satisfied(String),
    Denied(&'static str, String),
}

fn in_window(from: i64, until: Option<i64>, now: i64) -> Result<(), &'static str> {
    if now < from {
        Err(reason::REGIME_REFERENCE_NOT_YET_VALID)
    } else if until.is_some_and(|u| now >= u) {
        Err(reason::REGIME_REFERENCE_EXPIRED)
    } else {
        Ok(())
    }
}

fn show(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |t| t.to_string())
}

/// Why one reference does not satisfy `regime` here and now, or `None` if it does.
fn reference_problem(
    regime: &Regime,
    r: &Reference,
    statement: &Statement,
    ctx: &Context,
    grants: &[VerifiedGrant],
) -> Option<(&'static str, String)> {
    let label = format!("{} {} from {}", r.kind.as_str(), r.number, r.authority);
    if !regime.accepted_authorities.is_empty()
        && !regime.accepted_authorities.contains(&r.authority)
    {
        return Some((
            reason::REGIME_AUTHORITY_NOT_ACCEPTED,
            format!(
                "{label}: authority not accepted (accepted: {})",
                regime.accepted_authorities.join(", ")
            ),
        ));
    }
    // With a grant required, the issuer's signed terms are what count, not the lab's copy.
    let terms: &Reference = if regime.require_grant {
        let Some(g) = grants.iter().find(|g| {
            g.grant.reference.kind == r.kind
                && g.grant.reference.number == r.number
                && g.grant.reference.authority == r.authority
                && g.grant.root_sha256 == statement.subject.root_sha256
        }) else {
            return Some((
                reason::REGIME_GRANT_MISSING,
                format!("{label}: no grant countersigned by a trusted issuer for this model"),
            ));
        };
        &g.grant.reference
    } else {
        r
    };
    if let Err(code) = in_window(terms.valid_from, terms.valid_until, ctx.now) {
        let window = format!(
            "valid {} until {}",
            show(terms.valid_from),
            terms.valid_until.map_or("open".into(), show)
        );
        return Some((code, format!("{label}: not in force now ({window})")));
    }
    if !terms.destinations.is_empty() {
        match &ctx.destination {
            None => {
                return Some((
                    reason::REGIME_DESTINATION_REQUIRED,
                    format!(
                        "{label} covers only {}; give a destination",
                        terms.destinations.join(",")
                    ),
                ));
            }
            Some(d) if !terms.destinations.contains(d) => {
                return Some((
                    reason::REGIME_DESTINATION_NOT_COVERED,
                    format!("{label} covers {}, not {d}", terms.destinations.join(",")),
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Evaluates one regime for a statement whose compute, with the policy's margin, is `effective_ops`.
pub fn evaluate(
    regime: &Regime,
    statement: &Statement,
    effective_ops: u128,
    ctx: &Context,
    grants: &[VerifiedGrant],
) -> RegimeOutcome {
    if !regime.assume_in_force {
        if regime.in_force_from.is_some_and(|f| ctx.now < f) {
            return RegimeOutcome::Skipped(format!(
                "not in force until {}",
                show(regime.in_force_from.unwrap_or_default())
            ));
        }
        if let Some(u) = regime.in_force_until
            && ctx.now >= u
        {
            return RegimeOutcome::Skipped(format!("not in force since {}", show(u)));
        }
    }
    if let Some(d) = &ctx.destination
        && !regime.applies_to.is_empty()
        && !regime.applies_to.contains(d)
    {
        return RegimeOutcome::Skipped(format!("does not apply to destination {d}"));
    }
    if !regime.comparator.above(effective_ops, regime.threshold.0) {
        return RegimeOutcome::Below;
    }
    if let Some(d) = &ctx.destination
        && regime.embargoed.contains(d)
    {
        return RegimeOutcome::Denied(
            reason::REGIME_DESTINATION_EMBARGOED,
            format!("destination {d} is embargoed under this regime"),
        );
    }
    let mut satisfied = Vec::new();
    for kind in &regime.required {
        let candidates: Vec<&Reference> = statement
            .references
            .iter()
            .filter(|r| r.kind == *kind)
            .collect();
        if candidates.is_empty() {
            return RegimeOutcome::Denied(
                reason::REGIME_REFERENCE_MISSING,
                format!("no {} reference", kind.as_str()),
            );
        }
        let mut first_problem = None;
        let mut ok = None;
        for r in candidates {
            match reference_problem(regime, r, statement, ctx, grants) {
                None => {
                    ok = Some(r);
                    break;
                }
                Some(p) => {
                    first_problem.get_or_insert(p);
                }
            }
        }
        match (ok, first_problem) {
            (Some(r), _) => satisfied.push(format!(
                "{} {} from {}",
                kind.as_str(),
                r.number,
                r.authority
            )),
            (None, Some((code, message))) => return RegimeOutcome::Denied(code, message),
            (None, None) => {
                return RegimeOutcome::Denied(
                    reason::REGIME_REFERENCE_MISSING,
                    format!("no {} reference", kind.as_str()),
                );
            }
        }
    }
    RegimeOutcome::Satisfied(satisfied.join("; "))
}
