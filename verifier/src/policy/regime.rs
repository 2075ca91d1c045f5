//! Regimes: a compute threshold, the references needed above it, when and where it applies.
//! Presets are data (`presets.toml`); evaluation is one function for all of them.

use serde::Deserialize;
use weightgate_schemas::{Grant, Ops, Reference, ReferenceKind, Statement};

use crate::reason::ReasonCode;

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
    Denied(ReasonCode, String),
}

fn in_window(from: i64, until: Option<i64>, now: i64) -> Result<(), ReasonCode> {
    if now < from {
        Err(ReasonCode::RegimeReferenceNotYetValid)
    } else if until.is_some_and(|u| now >= u) {
        Err(ReasonCode::RegimeReferenceExpired)
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
) -> Option<(ReasonCode, String)> {
    let label = format!("{} {} from {}", r.kind.as_str(), r.number, r.authority);
    if !regime.accepted_authorities.is_empty()
        && !regime.accepted_authorities.contains(&r.authority)
    {
        return Some((
            ReasonCode::RegimeAuthorityNotAccepted,
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
                ReasonCode::RegimeGrantMissing,
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
                    ReasonCode::RegimeDestinationRequired,
                    format!(
                        "{label} covers only {}; give a destination",
                        terms.destinations.join(",")
                    ),
                ));
            }
            Some(d) if !terms.destinations.contains(d) => {
                return Some((
                    ReasonCode::RegimeDestinationNotCovered,
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
            ReasonCode::RegimeDestinationEmbargoed,
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
                ReasonCode::RegimeReferenceMissing,
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
                    ReasonCode::RegimeReferenceMissing,
                    format!("no {} reference", kind.as_str()),
                );
            }
        }
    }
    RegimeOutcome::Satisfied(satisfied.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Factor, presets};
    use weightgate_schemas::{
        Components, Compute, Digest, Entity, EstimationInputs, EstimationMethod, Model, Subject,
    };

    fn statement(total: u128, references: Vec<Reference>) -> Statement {
        Statement {
            model: Model {
                name: "m".into(),
                version: "1".into(),
                open_weights: false,
            },
            entity: Entity {
                lei: "549300WGTGATETEST087".into(),
                contact: "c".into(),
                country: "US".into(),
                legal_name: "L".into(),
                parent_country: "US".into(),
            },
            compute: Compute {
                total: Ops(total),
                inputs: EstimationInputs::default(),
                method: EstimationMethod::Measured,
                components: Components {
                    base_model: None,
                    pre_training: Ops(total),
                    post_training: Ops(0),
                    synthetic_data: Ops(0),
                },
            },
            subject: Subject {
                files: vec![],
                root_sha256: Digest([0; 32]),
            },
            issued_at: 0,
            expires_at: None,
            references,
            schema_version: 1,
        }
    }

    fn preset(id: &str) -> Regime {
        presets().into_iter().find(|r| r.id == id).unwrap()
    }

    fn at(date: &str) -> i64 {
        weightgate_attest::toml_time::toml_time(&date.parse().unwrap()).unwrap()
    }

    fn reference(
        kind: ReferenceKind,
        destinations: &[&str],
        from: &str,
        until: Option<&str>,
    ) -> Reference {
        Reference {
            kind,
            number: "N1".into(),
            authority: "A".into(),
            valid_from: at(from),
            valid_until: until.map(at),
            destinations: destinations.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn comparators_at_the_threshold_edge() {
        let ctx = Context {
            now: at("2026-11-20"),
            destination: Some("DE".into()),
        };
        let eu = preset("eu-ai-act-gpai");
        let e25 = 10u128.pow(25);
        assert_eq!(
            evaluate(&eu, &statement(e25, vec![]), e25, &ctx, &[]),
            RegimeOutcome::Below
        );
        assert!(matches!(
            evaluate(&eu, &statement(e25 + 1, vec![]), e25 + 1, &ctx, &[]),
            RegimeOutcome::Denied(ReasonCode::RegimeReferenceMissing, _)
        ));
        let mut bis = preset("us-bis-ai-diffusion-2025");
        bis.assume_in_force = true;
        let e26 = 10u128.pow(26);
        assert!(matches!(
            evaluate(&bis, &statement(e26, vec![]), e26, &ctx, &[]),
            RegimeOutcome::Denied(..)
        ));
        assert_eq!(
            evaluate(&bis, &statement(e26 - 1, vec![]), e26 - 1, &ctx, &[]),
            RegimeOutcome::Below
        );
    }

    #[test]
    fn dates_decide_whether_a_regime_applies() {
        let ny = preset("us-ny-raise");
        let big = 2 * 10u128.pow(26);
        let before = Context {
            now: at("2026-12-31"),
            destination: None,
        };
        assert!(matches!(
            evaluate(&ny, &statement(big, vec![]), big, &before, &[]),
            RegimeOutcome::Skipped(_)
        ));
        let after = Context {
            now: at("2027-01-01"),
            destination: None,
        };
        assert!(matches!(
            evaluate(&ny, &statement(big, vec![]), big, &after, &[]),
            RegimeOutcome::Denied(..)
        ));
        let bis = preset("us-bis-ai-diffusion-2025");
        let now = Context {
            now: at("2026-11-20"),
            destination: Some("CN".into()),
        };
        assert!(matches!(
            evaluate(&bis, &statement(big, vec![]), big, &now, &[]),
            RegimeOutcome::Skipped(_)
        ));
        let in_2025 = Context {
            now: at("2025-03-01"),
            destination: Some("CN".into()),
        };
        assert!(matches!(
            evaluate(&bis, &statement(big, vec![]), big, &in_2025, &[]),
            RegimeOutcome::Denied(ReasonCode::RegimeDestinationEmbargoed, _)
        ));
    }

    #[test]
    fn references_must_be_in_force_and_cover_the_destination() {
        let ca = preset("us-ca-sb53");
        let big = 2 * 10u128.pow(26);
        let refs = vec![
            reference(ReferenceKind::SafetyFramework, &[], "2026-01-01", None),
            reference(
                ReferenceKind::TransparencyReport,
                &["US"],
                "2026-01-01",
                Some("2027-01-01"),
            ),
        ];
        let st = statement(big, refs);
        let ok = Context {
            now: at("2026-06-01"),
            destination: Some("US".into()),
        };
        assert!(matches!(
            evaluate(&ca, &st, big, &ok, &[]),
            RegimeOutcome::Satisfied(_)
        ));
        let elsewhere = Context {
            now: at("2026-06-01"),
            destination: Some("FR".into()),
        };
        assert!(matches!(
            evaluate(&ca, &st, big, &elsewhere, &[]),
            RegimeOutcome::Denied(ReasonCode::RegimeDestinationNotCovered, _)
        ));
        let late = Context {
            now: at("2027-01-01"),
            destination: Some("US".into()),
        };
        assert!(matches!(
            evaluate(&ca, &st, big, &late, &[]),
            RegimeOutcome::Denied(ReasonCode::RegimeReferenceExpired, _)
        ));
        let early = Context {
            now: at("2025-12-31"),
            destination: Some("US".into()),
        };
        // CA SB 53 itself starts 2026-01-01.
        assert!(matches!(
            evaluate(&ca, &st, big, &early, &[]),
            RegimeOutcome::Skipped(_)
        ));
    }

    #[test]
    fn the_margin_is_exact() {
        let m = Factor::parse("1.3").unwrap();
        // 7.7e24 x 1.3 = 1.001e25 > 1e25: a claim just under the EU line is pushed over it.
        let claim = 77 * 10u128.pow(23);
        assert_eq!(m.apply_ceil(claim), 1001 * 10u128.pow(22));
        assert_eq!(m.apply_ceil(1), 2);
        assert_eq!(Factor::parse("1").unwrap(), Factor::ONE);
        assert!(
            Factor::parse("0.9").is_err()
                && Factor::parse("1.2.3").is_err()
                && Factor::parse("x").is_err()
        );
        assert_eq!(m.to_decimal(), "1.3");
    }

    #[test]
    fn presets_parse_with_their_sources() {
        let p = presets();
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|r| !r.source.is_empty()));
        assert!(!preset("us-bis-ai-diffusion-2025").default_active);
    }
}
