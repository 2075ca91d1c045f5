//! `verify`: the three stages in order ([`authenticate`], [`bind`], [`judge`]) into one
//! [`Decision`]. `weightgate verify`, admission and the gate all come through here; they differ
//! only in where the bytes come from ([`SubjectSource`]).

use weightgate_attest::hashing::Progress;
use weightgate_attest::reading::CheckpointError;

use crate::decision::Decision;
use crate::policy::{Context, Policy};
use crate::stages::{SubjectSource, authenticate, bind, judge};

/// Everything `verify` looks at.
pub struct VerifyRequest<'a> {
    pub envelope: &'a [u8],
    pub subject: SubjectSource<'a>,
    pub policy: &'a Policy,
    pub context: Context,
    /// Grant envelopes (licences countersigned by their issuers).
    pub grants: Vec<Vec<u8>>,
    /// The base model's envelope, for a derived model.
    pub base_envelope: Option<Vec<u8>>,
}

/// Input that could not be judged at all (the checkpoint root unreadable).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct VerifyError(#[from] CheckpointError);

/// Runs every check. Authentication (envelope, signatures, revocation, statement) stops at the
/// first failure and nothing is read or hashed before it passes; after that, every check runs
/// so the report names every problem.
pub fn verify(req: &VerifyRequest, progress: Progress) -> Result<Decision, VerifyError> {
    let now = req.context.now;
    let mut d = Decision::new(now);
    d.facts.destination = req.context.destination.clone();
    let Some(auth) = authenticate(req.envelope, req.policy, now, &mut d) else {
        return Ok(d);
    };
    let bound = bind(&auth, &req.subject, req.policy, &mut d, progress)?;
    judge(
        &auth,
        &bound,
        req.policy,
        &req.context,
        &req.grants,
        req.base_envelope.as_deref(),
        &mut d,
    );
    Ok(d)
}

/// Authentication alone (envelope, signatures, revocation, statement), for uses that carry the
/// statement elsewhere without its bytes (exports): the decision allows when it authenticates.
pub fn authenticate_envelope(envelope: &[u8], policy: &Policy, now: i64) -> Decision {
    let mut d = Decision::new(now);
    d.allowed = authenticate(envelope, policy, now, &mut d).is_some() && d.reasons.is_empty();
    d
}
