//! What the gate tells a client about a revision, by verdict: one rule for every route (info,
//! revision, tree, paths-info, commits, the 451 body and `/v1/decision`).
//!
//! - **Allowed** (for this request's time and destination): everything, as the Hub shows a
//!   public repository: file names, sizes, SHA-256, the attestation's digest, the whole decision.
//! - **Refused**: what the Hub shows of a gated repository without access: file names and sizes,
//!   the revision id and its date. No SHA-256 of a file (nor the tree `oid` derived from it), no
//!   attestation digest, no facts of the statement (root digest, entity, compute) and no
//!   reference numbers (licences, notifications): the reasons keep their codes and sentences with
//!   each reference named by kind and authority only.

use serde_json::{Value, json};

use crate::decision::Decision;
use crate::finding::Problem;
use crate::policy::{ReferenceLabel, RegimeDenial};

/// Stands for a withheld reference number in a refusal's sentences.
const WITHHELD: &str = "(number withheld)";

/// Whether a listing may carry the bytes' digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disclosure {
    Full,
    NamesAndSizes,
}

impl Disclosure {
    pub fn of(decision: &Decision) -> Self {
        if decision.allowed {
            Disclosure::Full
        } else {
            Disclosure::NamesAndSizes
        }
    }
}

/// The decision as a client may see it: whole when allowed; when refused, the verdict, the
/// reasons (reference numbers withheld), the time and the destination it was made for.
pub fn public_decision(decision: &Decision) -> Value {
    if decision.allowed {
        return json!(decision);
    }
    let reasons: Vec<Value> = decision
        .reasons
        .iter()
        .map(|r| json!({ "code": r.code, "message": withheld(&r.problem).to_string() }))
        .collect();
    json!({
        "allowed": false,
        "reasons": reasons,
        "now": decision.facts.now,
        "destination": decision.facts.destination,
    })
}

/// The one-line refusal a client sees (`X-Error-Message`, the 451 body's `error`).
pub fn public_refusal_message(decision: &Decision) -> String {
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .map(|r| format!("{}: {}", r.code, withheld(&r.problem)))
        .collect();
    format!("weightgate refused this release: {}", reasons.join("; "))
}

/// One reason's sentence as a client of a refused revision may read it.
pub fn public_reason(problem: &Problem) -> String {
    withheld(problem).to_string()
}

/// `problem` with every reference number replaced, and a regime's notes (which may quote one)
/// left out.
fn withheld(problem: &Problem) -> Problem {
    match problem {
        Problem::GrantRevoked {
            index,
            reference,
            grant,
        } => Problem::GrantRevoked {
            index: *index,
            reference: label(reference),
            grant: grant.clone(),
        },
        Problem::GrantUntrustedIssuer { index, reference } => Problem::GrantUntrustedIssuer {
            index: *index,
            reference: label(reference),
        },
        Problem::RegimeDenied {
            threshold,
            margin,
            denial,
            notes: _,
        } => Problem::RegimeDenied {
            threshold: *threshold,
            margin: *margin,
            denial: denial_withheld(denial),
            notes: Vec::new(),
        },
        other => other.clone(),
    }
}

fn label(r: &ReferenceLabel) -> ReferenceLabel {
    ReferenceLabel {
        number: WITHHELD.into(),
        ..r.clone()
    }
}

// Exhaustive on purpose: a new denial carrying a reference must decide what it shows.
fn denial_withheld(d: &RegimeDenial) -> RegimeDenial {
    use RegimeDenial as D;
    match d {
        D::AuthorityNotAccepted {
            reference,
            accepted,
        } => D::AuthorityNotAccepted {
            reference: label(reference),
            accepted: accepted.clone(),
        },
        D::GrantMissing { reference } => D::GrantMissing {
            reference: label(reference),
        },
        D::NotInForce {
            reference,
            code,
            valid_from,
            valid_until,
        } => D::NotInForce {
            reference: label(reference),
            code: *code,
            valid_from: *valid_from,
            valid_until: *valid_until,
        },
        D::DestinationUnknown { reference, covers } => D::DestinationUnknown {
            reference: label(reference),
            covers: covers.clone(),
        },
        D::DestinationRequired { reference, covers } => D::DestinationRequired {
            reference: label(reference),
            covers: covers.clone(),
        },
        D::DestinationNotCovered {
            reference,
            covers,
            destination,
        } => D::DestinationNotCovered {
            reference: label(reference),
            covers: covers.clone(),
            destination: destination.clone(),
        },
        D::WrongHolder { kind, lei, held } => D::WrongHolder {
            kind: *kind,
            lei: lei.clone(),
            held: held
                .iter()
                .map(|(_, holder)| (WITHHELD.to_string(), holder.clone()))
                .collect(),
        },
        D::EmbargoUnknownDestination => D::EmbargoUnknownDestination,
        D::Embargoed { destination } => D::Embargoed {
            destination: destination.clone(),
        },
        D::ReferenceMissing { kind } => D::ReferenceMissing { kind: *kind },
    }
}

#[cfg(test)]
mod tests {
    use weightgate_schemas::{Ops, ReferenceKind};

    use super::*;
    use crate::decision::CheckName;
    use crate::finding::Threshold;
    use crate::policy::{Comparator, Factor};
    use crate::reason::ReasonCode;

    const NUMBER: &str = "D1234567";

    fn reference() -> ReferenceLabel {
        ReferenceLabel {
            kind: ReferenceKind::ExportLicence,
            number: NUMBER.into(),
            authority: "US BIS".into(),
        }
    }

    fn refused_with(denials: Vec<RegimeDenial>) -> Decision {
        let mut d = Decision::new(0);
        d.facts.root_sha256 = Some("ab".repeat(32));
        d.facts.lei = Some("549300WGTGATETEST087".into());
        for denial in denials {
            d.fail(
                CheckName::Regimes,
                Problem::RegimeDenied {
                    threshold: Threshold {
                        comparator: Comparator::Gt,
                        ops: Ops(10u128.pow(25)),
                    },
                    margin: Factor::ONE,
                    denial,
                    notes: vec![format!("notification {NUMBER} made 2026-01-01")],
                },
            );
        }
        d.fail(
            CheckName::Grants,
            Problem::GrantUntrustedIssuer {
                index: 0,
                reference: reference(),
            },
        );
        d
    }

    #[test]
    fn a_refusal_names_no_reference_number_and_no_facts() {
        let covers = vec!["DE".to_string()];
        let d = refused_with(vec![
            RegimeDenial::AuthorityNotAccepted {
                reference: reference(),
                accepted: vec!["EU AI Office".into()],
            },
            RegimeDenial::GrantMissing {
                reference: reference(),
            },
            RegimeDenial::NotInForce {
                reference: reference(),
                code: ReasonCode::RegimeReferenceExpired,
                valid_from: 0,
                valid_until: Some(1),
            },
            RegimeDenial::DestinationUnknown {
                reference: reference(),
                covers: covers.clone(),
            },
            RegimeDenial::DestinationRequired {
                reference: reference(),
                covers: covers.clone(),
            },
            RegimeDenial::DestinationNotCovered {
                reference: reference(),
                covers,
                destination: "BR".into(),
            },
            RegimeDenial::WrongHolder {
                kind: ReferenceKind::ExportLicence,
                lei: "549300WGTGATETEST087".into(),
                held: vec![(NUMBER.into(), None)],
            },
        ]);
        // The full rendering does name it: the test can fail.
        assert!(crate::render::refusal(&d).contains(NUMBER));
        let message = public_refusal_message(&d);
        let body = public_decision(&d).to_string();
        for shown in [&message, &body] {
            assert!(!shown.contains(NUMBER), "{shown}");
            assert!(!shown.contains(&"ab".repeat(32)), "{shown}");
            assert!(shown.contains(WITHHELD), "{shown}");
        }
        assert!(!body.contains("\"checks\"") && !body.contains("\"facts\""));
        assert_eq!(Disclosure::of(&d), Disclosure::NamesAndSizes);
    }
}
