//! The one regime rule judged at admission: a release that no download request could be served
//! is refused. Regimes depend on each request's destination, so the gate judges them per
//! request; but when every destination a request can carry would be refused, publishing the
//! release would only make it refused everywhere, so admission refuses it instead.
//!
//! Only the regimes depend on the destination (compute, time, lineage and grants do not), so
//! the rule evaluates the regimes alone, once per destination, and stops at the first one served.

use std::collections::BTreeSet;

use weightgate_schemas::Statement;
use weightgate_schemas::country::{ISO3166_ALPHA2, UNKNOWN_DESTINATION, USER_ASSIGNED_IN_USE};

use crate::finding::Problem;
use crate::policy::{Context, Policy, RegimeOutcome, VerifiedGrant, evaluate};

/// The destinations a download request can carry under `policy`, as the gate reads them
/// ([`crate::gate::hub_api`]): without a destination header in the policy, none (`None`); with
/// one, every country [`weightgate_schemas::country::normalise_destination`] can give, and
/// the unknown destination a request without the header (or naming no country) gets.
pub fn request_destinations(policy: &Policy) -> Vec<Option<&'static str>> {
    if policy.destination_header.is_none() {
        return vec![None];
    }
    ISO3166_ALPHA2
        .iter()
        .copied()
        .chain(USER_ASSIGNED_IN_USE.iter().map(|(code, ..)| *code))
        .chain([UNKNOWN_DESTINATION])
        .map(Some)
        .collect()
}

/// Why no request could be served `st` at `now`: `None` as soon as one destination passes every
/// regime, else the problem naming every regime reason code met on the way.
pub fn no_destination_served(
    policy: &Policy,
    st: &Statement,
    grants: &[VerifiedGrant],
    now: i64,
) -> Option<Problem> {
    if policy.provenance_only {
        return None;
    }
    let destinations = request_destinations(policy);
    let mut codes = BTreeSet::new();
    for destination in &destinations {
        let context = Context {
            now,
            destination: destination.map(str::to_string),
        };
        let mut refused = false;
        for regime in &policy.regimes {
            if let RegimeOutcome::Denied(denial) = evaluate(regime, st, &context, grants).outcome {
                refused = true;
                codes.insert(denial.code());
            }
        }
        if !refused {
            return None;
        }
    }
    Some(Problem::NoDestinationServed {
        judged: destinations.len(),
        codes: codes.into_iter().collect(),
    })
}
