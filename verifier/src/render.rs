//! The one place a [`Decision`] becomes sentences: each check's detail, each reason's message,
//! the gate's refusal and the text report. `verify --json`, the CLI's text and the gate's 451
//! all render from the same values, so they cannot say different things.

use std::fmt::{self, Display, Formatter};

use weightgate_schemas::{EstimationMethod, Ops};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::decision::{Check, CheckName, CheckOutcome, CheckResult, Decision, Reason};
use crate::finding::{Binding, CrossCheckBand, Finding, HashName, Problem, Threshold};
use crate::policy::{Factor, ReferenceLabel, RegimeDenial};

/// `{ "name", "outcome", "detail" }`, as docs/verify.md documents it: the JSON view renders
/// here too.
impl Serialize for Check {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Check", 3)?;
        st.serialize_field("name", &self.name.to_string())?;
        st.serialize_field("outcome", &self.outcome())?;
        st.serialize_field("detail", &check_detail(self))?;
        st.end()
    }
}

/// `{ "code", "message" }`, as docs/verify.md documents it.
impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Reason", 2)?;
        st.serialize_field("code", &self.code)?;
        st.serialize_field("message", &self.problem.to_string())?;
        st.end()
    }
}

/// Unix seconds as RFC 3339.
fn show(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |t| t.to_string())
}

/// `""` for one, `"s"` otherwise.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A regime's notes as a bracketed suffix, or nothing.
fn notes_suffix(notes: &[String]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", notes.join("; "))
    }
}

/// The policy's margin as a suffix, or nothing when it is one.
fn margin_suffix(margin: Factor) -> String {
    if margin == Factor::ONE {
        String::new()
    } else {
        format!(" x{} margin (policy choice)", margin.to_decimal())
    }
}

fn estimates_list(estimates: &[(EstimationMethod, u128)]) -> String {
    estimates
        .iter()
        .map(|(method, ops)| format!("{} {}", method.as_str(), Ops(*ops).to_scientific()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a regime found the compute below its threshold (also the regime fact's detail).
pub(crate) fn below_threshold(
    effective_ops: u128,
    margin: Factor,
    threshold: &Threshold,
) -> String {
    format!(
        "{}{} is not {threshold}",
        Ops(effective_ops).to_scientific(),
        margin_suffix(margin)
    )
}

/// The detail column of a check: what it found, or `CODE: problem` when it failed.
pub fn check_detail(check: &Check) -> String {
    match &check.result {
        CheckResult::Pass(f) | CheckResult::Skip(f) => f.to_string(),
        CheckResult::Fail(p) => format!("{}: {p}", p.code()),
    }
}

/// The gate's refusal: every reason, with its code.
pub fn refusal(decision: &Decision) -> String {
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .map(|r| format!("{}: {}", r.code, r.problem))
        .collect();
    format!("weightgate refused this release: {}", reasons.join("; "))
}

/// The human report of a decision on `what` under the policy `policy_name`, one line each:
/// the verdict, every check, then the facts about a base model.
pub fn report(what: &str, decision: &Decision, policy_name: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "{what}: {} (policy {policy_name}, {}{})",
        if decision.allowed {
            "ALLOWED"
        } else {
            "DENIED"
        },
        show(decision.facts.now),
        decision
            .facts
            .destination
            .as_ref()
            .map_or(String::new(), |c| format!(", destination {c}"))
    )];
    for c in &decision.checks {
        let mark = match c.outcome() {
            CheckOutcome::Pass => "ok  ",
            CheckOutcome::Fail => "FAIL",
            CheckOutcome::Skip => "skip",
        };
        lines.push(format!("  {mark}  {:<30} {}", c.name, check_detail(c)));
    }
    for l in &decision.facts.lineage {
        lines.push(format!("  fact  {l}"));
    }
    let absent = &decision.facts.not_downloaded;
    if !absent.is_empty() {
        lines.push(format!(
            "  note  {} file{} not downloaded, so not checked (`--complete` requires every file): {}",
            absent.len(),
            plural(absent.len()),
            absent.join(", ")
        ));
    }
    lines
}

/// Pads like a string, so report columns line up.
impl Display for CheckName {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let name = match self {
            CheckName::Envelope => "envelope",
            CheckName::Signatures => "signatures",
            CheckName::Revocation => "revocation",
            CheckName::Statement => "statement",
            CheckName::Subject => "subject",
            CheckName::ModelSig => "model.sig",
            CheckName::Compute => "compute",
            CheckName::Time => "time",
            CheckName::Lineage => "lineage",
            CheckName::Grants => "grants",
            CheckName::Regimes => "regimes",
            CheckName::Regime { id, historical } => {
                let suffix = if *historical { " (historical)" } else { "" };
                return f.pad(&format!("regime {id}{suffix}"));
            }
        };
        f.pad(name)
    }
}

impl Display for ReferenceLabel {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} from {}",
            self.kind.as_str(),
            self.number,
            self.authority
        )
    }
}

impl Display for Threshold {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.comparator.as_str(),
            self.ops.to_scientific()
        )
    }
}

impl Display for HashName {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashName::Sha256 => "SHA-256",
            HashName::Blake3 => "BLAKE3",
        })
    }
}

impl Display for CrossCheckBand {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "within x{} of {}'s threshold {}",
            self.band.to_decimal(),
            self.regime,
            self.threshold.to_scientific()
        )
    }
}

impl Display for Binding {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Hashed { bytes, digests } => {
                write!(f, "{bytes} bytes match their {digests} digests")
            }
            Binding::HashedWhileStored {
                bytes,
                reused_files: 0,
            } => write!(
                f,
                "{bytes} bytes match their sha256+blake3 digests, hashed while stored"
            ),
            Binding::HashedWhileStored {
                bytes,
                reused_files,
            } => write!(
                f,
                "{bytes} bytes match their sha256+blake3 digests, hashed while stored or when the \
                 {reused_files} already stored file(s) were admitted"
            ),
            Binding::Admitted => f.write_str(
                "bound at admission (content-addressed store, both digests checked while copying)",
            ),
        }
    }
}

impl Display for Finding {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Envelope { bytes, signatures } => write!(
                f,
                "{bytes} bytes, {signatures} signature(s), canonical CBOR"
            ),
            Finding::Signatures {
                valid,
                required,
                names,
            } => write!(
                f,
                "{valid} of {required} required trusted key(s): {}",
                names.join(", ")
            ),
            Finding::Ignored(problem) => write!(f, "ignored: {problem}"),
            Finding::StatementNotRead => f.write_str("not read: the signatures do not hold"),
            Finding::NotRevoked { attestation } => {
                write!(f, "attestation {attestation} not revoked")
            }
            Finding::Statement {
                model,
                version,
                entity,
                lei,
            } => write!(
                f,
                "{model} {version} by {entity} ({})",
                lei.as_deref().unwrap_or("no LEI")
            ),
            Finding::Subject {
                files,
                binding,
                root_sha256,
            } => write!(
                f,
                "{files} file{}, {binding}; root sha256:{root_sha256}",
                plural(*files)
            ),
            Finding::ModelSig {
                files,
                signer,
                root_sha256,
                same_root,
                notes,
            } => {
                write!(
                    f,
                    "{files} file{} match{}, signed by {}; root sha256:{root_sha256} = {}",
                    plural(*files),
                    if *files == 1 { "es" } else { "" },
                    signer.as_deref().unwrap_or("?"),
                    if *same_root {
                        "the attestation's root"
                    } else {
                        "NOT the attestation's root (different file sets)"
                    }
                )?;
                for n in notes {
                    write!(f, "; {n}")?;
                }
                Ok(())
            }
            Finding::ModelSigAtAdmission => {
                f.write_str("checked at admission (the store holds only what passed)")
            }
            Finding::Compute {
                total,
                method,
                tolerance_percent,
                estimates,
            } => {
                write!(
                    f,
                    "{} operations ({}), components add up",
                    total.to_scientific(),
                    method.as_str()
                )?;
                if !estimates.is_empty() {
                    write!(
                        f,
                        "; agrees with its inputs within {tolerance_percent} % ({})",
                        estimates_list(estimates)
                    )?;
                }
                Ok(())
            }
            Finding::Time {
                issued_at,
                expires_at,
            } => write!(
                f,
                "issued {}{}",
                show(*issued_at),
                expires_at.map_or(String::new(), |e| format!(", expires {}", show(e)))
            ),
            Finding::NotDerived => f.write_str("not a derived model"),
            Finding::KnownBase { name, ops } => write!(
                f,
                "base model {name} is known to the policy: {} operations, as counted",
                ops.to_scientific()
            ),
            Finding::BaseCountedAsClaimed { name } => write!(
                f,
                "base model {name} counted as claimed; its envelope was not supplied"
            ),
            Finding::BaseVerified { name } => write!(
                f,
                "base model {name} envelope verified: signature, root and operations agree"
            ),
            Finding::Grant { reference, issuer } => {
                write!(f, "{reference} countersigned by {issuer}")
            }
            Finding::NoRegimes => f.write_str("the policy activates no regime"),
            Finding::RegimesNotJudged => f.write_str(
                "no regime was judged (--provenance-only): this says who signed these bytes, not whether they may be used",
            ),
            Finding::RegimeSkipped { why, notes } => {
                write!(f, "{why}{}", notes_suffix(notes))
            }
            Finding::RegimeTransitional { why, notes } => {
                write!(f, "transitional: {why}{}", notes_suffix(notes))
            }
            Finding::RegimeBelow {
                effective_ops,
                margin,
                threshold,
                notes,
            } => write!(
                f,
                "below threshold: {}{}",
                below_threshold(*effective_ops, *margin, threshold),
                notes_suffix(notes)
            ),
            Finding::RegimeSatisfied {
                threshold,
                satisfied,
                notes,
            } => write!(
                f,
                "above threshold ({threshold}); {satisfied}{}",
                notes_suffix(notes)
            ),
        }
    }
}

impl Display for Problem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Problem::EnvelopeMalformed { error }
            | Problem::StatementMalformed { error }
            | Problem::StatementUnknownVersion { error }
            | Problem::CheckpointUnreadable { error, .. } => f.write_str(error),
            Problem::LeiMissing { entity } => write!(
                f,
                "{entity} states no LEI (entity.lei), and the policy requires one (require_lei)"
            ),
            Problem::EnvelopeWrongPayloadType { payload_type } => write!(
                f,
                "payload type `{payload_type}` is not a weightgate attestation"
            ),
            Problem::SignedByRevokedKey { keyid } => write!(f, "signed by revoked key {keyid}"),
            Problem::KeyNotYetValid { keyid, name } => {
                write!(f, "key {name} ({keyid}) is not valid yet")
            }
            Problem::KeyExpired { keyid, name } => write!(f, "key {name} ({keyid}) has expired"),
            Problem::SignatureInvalid { keyid } => {
                write!(f, "signature naming key {keyid} does not verify")
            }
            Problem::SignedByUntrustedKey { keyid } => {
                write!(f, "signed by key {keyid}, which the policy does not trust")
            }
            Problem::TooFewSignatures { valid, required } => write!(
                f,
                "{valid} distinct trusted key(s) signed; the policy needs {required}"
            ),
            Problem::WrongNamespace { why } => f.write_str(why),
            Problem::AttestationRevoked { attestation } => {
                write!(f, "attestation {attestation} is revoked")
            }
            Problem::RootNotFromDigests { attested, computed } => write!(
                f,
                "root sha256:{attested} does not follow from the attested file digests (they give sha256:{computed})"
            ),
            Problem::FilesOutOfOrder => {
                f.write_str("attested files are not in path-component order")
            }
            Problem::MissingFile { path } => {
                write!(f, "{path}: attested but not in the checkpoint")
            }
            Problem::ExtraFile { path, renamed_from } => {
                write!(f, "{path}: in the checkpoint but not attested")?;
                if let Some(missing) = renamed_from {
                    write!(f, " (same size as the missing `{missing}`: renamed?)")?;
                }
                Ok(())
            }
            Problem::SizeMismatch {
                path,
                size,
                attested,
            } => write!(f, "{path}: {size} bytes, attested {attested}"),
            Problem::ParameterMismatch { claimed, headers } => write!(
                f,
                "statement claims {claimed} parameters; the safetensors headers hold {headers}"
            ),
            Problem::DigestMismatch { path, digest } => {
                write!(f, "{path}: {digest} digest differs from the attested one")
            }
            Problem::RootMismatch { on_disk } => {
                write!(f, "root of the files on disk is sha256:{on_disk}")
            }
            Problem::TensorsChanged { path, tensors } if tensors.is_empty() => write!(
                f,
                "{path}: tensor data unchanged; the header or padding differs"
            ),
            Problem::TensorsChanged { path, tensors } => {
                write!(f, "{path}: changed tensor(s): {}", tensors.join(", "))
            }
            Problem::ModelSig { message, .. } => f.write_str(message),
            Problem::ModelSigMissing => f.write_str(
                "the policy requires an OpenSSF model signature (model.sig) and none was checked",
            ),
            Problem::TotalNotSum { total, sum } => {
                write!(f, "total {total} is not the sum of its components ({sum})")
            }
            Problem::ComponentsOverflow => f.write_str("components overflow"),
            Problem::ActiveExceedsHeaders { active, headers } => write!(
                f,
                "{active} active parameters exceed the {headers} in the headers"
            ),
            Problem::Estimate(p) => f.write_str(p.message()),
            Problem::CrossCheckMissing { total, near } => write!(
                f,
                "{} operations is {near}: the policy wants both a 6nd (params_active, tokens) and a hardware (accelerator_hours, peak_flops_per_accelerator, utilisation_permille) estimate",
                total.to_scientific()
            ),
            Problem::CrossCheckDisagrees {
                total,
                near,
                estimates,
                factor,
            } => write!(
                f,
                "{} operations is {near}, and its estimates ({}) disagree by more than x{}",
                total.to_scientific(),
                estimates_list(estimates),
                factor.to_decimal()
            ),
            Problem::IssuedInFuture {
                issued_at,
                now,
                skew,
            } => write!(
                f,
                "issued {} is after now ({}) plus {skew} s skew",
                show(*issued_at),
                show(*now)
            ),
            Problem::Expired { expires_at } => write!(f, "expired {}", show(*expires_at)),
            Problem::BaseEnvelopeWithoutBase => {
                f.write_str("a base model envelope was given but the statement names no base model")
            }
            Problem::KnownBaseDisagrees {
                name,
                root_sha256,
                recorded,
                claimed,
                ..
            } => write!(
                f,
                "base model {name} ({root_sha256}) was trained with {} operations by the policy's record; the statement counts {}",
                recorded.to_scientific(),
                claimed.map_or("it as unknown".into(), |o| o.to_scientific())
            ),
            Problem::BaseAttestationRequired { name } => write!(
                f,
                "the policy requires the base model's attestation (--base-attestation) for {name} and none was supplied, nor is the base a known base model"
            ),
            Problem::BaseEnvelopeNotNamed => {
                f.write_str("the supplied base envelope is not the one the statement names")
            }
            Problem::BaseEnvelopeMalformed { error } => write!(f, "base envelope: {error}"),
            Problem::BaseNotAttestation => f.write_str("base envelope is not an attestation"),
            Problem::BaseRevoked { attestation } => {
                write!(f, "base attestation {attestation} is revoked")
            }
            Problem::BaseNotSignedByTrustedKey => {
                f.write_str("base envelope is not signed by a trusted key")
            }
            Problem::BaseStatementMalformed { error } => write!(f, "base statement: {error}"),
            Problem::BaseRootDiffers { attested, named } => write!(
                f,
                "base envelope attests root sha256:{attested}, the statement names {named}"
            ),
            Problem::BaseOpsDiffer { attested, claimed } => write!(
                f,
                "base envelope attests {attested} operations, the statement counts {}",
                claimed.map_or("them as unknown".into(), |o| o.to_string())
            ),
            Problem::GrantMalformed { index, error } => write!(f, "grant {index}: {error}"),
            Problem::GrantWrongPayloadType {
                index,
                payload_type,
            } => write!(
                f,
                "grant {index}: payload type `{payload_type}` is not a grant"
            ),
            Problem::GrantRevoked {
                index,
                reference,
                grant,
            } => write!(f, "grant {index} ({reference}): grant {grant} is revoked"),
            Problem::GrantUntrustedIssuer { index, reference } => write!(
                f,
                "grant {index} ({reference}): not signed by a trusted issuer for that authority"
            ),
            Problem::RegimeDenied {
                threshold,
                margin,
                denial,
                notes,
            } => write!(
                f,
                "above threshold ({threshold}{}): {denial}{}",
                margin_suffix(*margin),
                notes_suffix(notes)
            ),
            Problem::NoDestinationServed { judged, codes } => write!(
                f,
                "the regimes refuse every destination a download can name ({judged} judged: {}), so no request could be served",
                codes
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Display for RegimeDenial {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            RegimeDenial::AuthorityNotAccepted {
                reference,
                accepted,
            } => write!(
                f,
                "{reference}: authority not accepted (accepted: {})",
                accepted.join(", ")
            ),
            RegimeDenial::GrantMissing { reference } => write!(
                f,
                "{reference}: no grant countersigned by a trusted issuer for this model"
            ),
            RegimeDenial::NotInForce {
                reference,
                valid_from,
                valid_until,
                ..
            } => write!(
                f,
                "{reference}: not in force now (valid {} until {})",
                show(*valid_from),
                valid_until.map_or("open".into(), show)
            ),
            RegimeDenial::DestinationUnknown { reference, covers } => write!(
                f,
                "{reference} covers only {}, and the destination is not a known country",
                covers.join(",")
            ),
            RegimeDenial::DestinationRequired { reference, covers } => write!(
                f,
                "{reference} covers only {}; give a destination",
                covers.join(",")
            ),
            RegimeDenial::DestinationNotCovered {
                reference,
                covers,
                destination,
            } => write!(
                f,
                "{reference} covers {}, not {destination}",
                covers.join(",")
            ),
            RegimeDenial::EmbargoUnknownDestination => f.write_str(
                "the destination is not a known country, and this regime embargoes some",
            ),
            RegimeDenial::Embargoed { destination } => {
                write!(
                    f,
                    "destination {destination} is embargoed under this regime"
                )
            }
            RegimeDenial::ReferenceMissing { kind } => write!(f, "no {} reference", kind.as_str()),
            RegimeDenial::WrongHolder { kind, lei, held } => {
                let held: Vec<String> = held
                    .iter()
                    .map(|(number, holder)| {
                        format!(
                            "{number} held by {}",
                            holder.as_deref().unwrap_or("(no holder stated)")
                        )
                    })
                    .collect();
                write!(
                    f,
                    "the {} must be held by the entity itself ({lei}); found {}",
                    kind.as_str(),
                    held.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use weightgate_schemas::estimate::ComputeProblem;
    use weightgate_schemas::{EstimationMethod, Ops, ReferenceKind};

    use super::{check_detail, refusal, report};
    use crate::decision::{CheckName, Decision};
    use crate::finding::{Binding, CrossCheckBand, Finding, HashName, Problem, Threshold};
    use crate::policy::{Comparator, Factor, ReferenceLabel, RegimeDenial};
    use crate::reason::ReasonCode;

    fn reference() -> ReferenceLabel {
        ReferenceLabel {
            kind: ReferenceKind::ExportLicence,
            number: "D1234".into(),
            authority: "US-BIS".into(),
        }
    }

    fn threshold() -> Threshold {
        Threshold {
            comparator: Comparator::Gt,
            ops: Ops(10u128.pow(25)),
        }
    }

    fn denied(denial: RegimeDenial) -> Problem {
        Problem::RegimeDenied {
            threshold: threshold(),
            margin: Factor::ONE,
            denial,
            notes: Vec::new(),
        }
    }

    /// One problem for every code a decision can carry.
    fn one_of_each() -> Vec<Problem> {
        let s = |t: &str| t.to_string();
        let band = CrossCheckBand {
            band: Factor::ONE,
            regime: s("eu"),
            threshold: Ops(10),
        };
        vec![
            Problem::EnvelopeMalformed {
                error: s("bad CBOR"),
            },
            Problem::EnvelopeWrongPayloadType {
                payload_type: s("x"),
            },
            Problem::SignatureInvalid { keyid: s("k") },
            Problem::SignedByUntrustedKey { keyid: s("k") },
            Problem::SignedByRevokedKey { keyid: s("k") },
            Problem::KeyNotYetValid {
                keyid: s("k"),
                name: s("lab"),
            },
            Problem::KeyExpired {
                keyid: s("k"),
                name: s("lab"),
            },
            Problem::TooFewSignatures {
                valid: 1,
                required: 2,
            },
            Problem::WrongNamespace { why: s("w") },
            Problem::AttestationRevoked {
                attestation: s("ab"),
            },
            Problem::StatementMalformed { error: s("e") },
            Problem::StatementUnknownVersion { error: s("e") },
            Problem::LeiMissing { entity: s("L") },
            Problem::MissingFile { path: s("a") },
            Problem::ExtraFile {
                path: s("b"),
                renamed_from: Some(s("a")),
            },
            Problem::SizeMismatch {
                path: s("a"),
                size: 1,
                attested: 2,
            },
            Problem::DigestMismatch {
                path: s("a"),
                digest: HashName::Blake3,
            },
            Problem::TensorsChanged {
                path: s("a"),
                tensors: vec![s("w")],
            },
            Problem::RootMismatch { on_disk: s("00") },
            Problem::CheckpointUnreadable {
                code: ReasonCode::SubjectHeaderInvalid,
                error: s("e"),
            },
            Problem::CheckpointUnreadable {
                code: ReasonCode::SubjectUnsafePath,
                error: s("e"),
            },
            Problem::ParameterMismatch {
                claimed: 1,
                headers: 2,
            },
            Problem::TotalNotSum {
                total: Ops(3),
                sum: Ops(2),
            },
            Problem::CrossCheckDisagrees {
                total: Ops(10),
                near: band.clone(),
                estimates: vec![
                    (EstimationMethod::SixNd, 5),
                    (EstimationMethod::Hardware, 50),
                ],
                factor: Factor::ONE,
            },
            Problem::ActiveExceedsHeaders {
                active: 2,
                headers: 1,
            },
            Problem::Estimate(ComputeProblem::BelowEstimate(s("too low"))),
            Problem::Estimate(ComputeProblem::PeakBelowDatasheet(s("peak"))),
            Problem::Estimate(ComputeProblem::UtilisationUnjustified(s("0.1 %"))),
            Problem::CrossCheckMissing {
                total: Ops(10),
                near: band,
            },
            Problem::IssuedInFuture {
                issued_at: 100,
                now: 0,
                skew: 300,
            },
            Problem::Expired { expires_at: 0 },
            denied(RegimeDenial::ReferenceMissing {
                kind: ReferenceKind::Notification,
            }),
            denied(RegimeDenial::NotInForce {
                reference: reference(),
                code: ReasonCode::RegimeReferenceExpired,
                valid_from: 0,
                valid_until: Some(1),
            }),
            denied(RegimeDenial::NotInForce {
                reference: reference(),
                code: ReasonCode::RegimeReferenceNotYetValid,
                valid_from: 1,
                valid_until: None,
            }),
            denied(RegimeDenial::DestinationNotCovered {
                reference: reference(),
                covers: vec![s("US")],
                destination: s("FR"),
            }),
            denied(RegimeDenial::DestinationRequired {
                reference: reference(),
                covers: vec![s("US")],
            }),
            denied(RegimeDenial::Embargoed {
                destination: s("CN"),
            }),
            denied(RegimeDenial::EmbargoUnknownDestination),
            denied(RegimeDenial::AuthorityNotAccepted {
                reference: reference(),
                accepted: vec![s("EU")],
            }),
            denied(RegimeDenial::GrantMissing {
                reference: reference(),
            }),
            denied(RegimeDenial::WrongHolder {
                kind: ReferenceKind::ExportLicence,
                lei: s("L"),
                held: vec![(s("D1"), None)],
            }),
            Problem::GrantUntrustedIssuer {
                index: 0,
                reference: reference(),
            },
            Problem::GrantRevoked {
                index: 0,
                reference: reference(),
                grant: s("cd"),
            },
            Problem::BaseNotAttestation,
            Problem::BaseRootDiffers {
                attested: s("a"),
                named: s("b"),
            },
            Problem::BaseAttestationRequired { name: s("base") },
            Problem::KnownBaseDisagrees {
                code: ReasonCode::LineageBaseUnderstated,
                name: s("base"),
                root_sha256: s("ab"),
                recorded: Ops(10),
                claimed: None,
            },
            Problem::ModelSigMissing,
            Problem::NoDestinationServed {
                judged: 251,
                codes: vec![ReasonCode::RegimeReferenceMissing],
            },
        ]
        .into_iter()
        .chain(
            ReasonCode::ALL
                .iter()
                .filter(|c| {
                    c.family() == crate::reason::Family::Oms && **c != ReasonCode::OmsMissing
                })
                .map(|&code| Problem::ModelSig {
                    code,
                    message: s("bundle problem"),
                }),
        )
        .collect()
    }

    /// Every code a decision can carry has a problem that renders a sentence under it; the
    /// gate's changed-blob refusal is the one code recorded outside a decision.
    #[test]
    fn every_code_has_a_sentence() {
        let problems = one_of_each();
        for code in ReasonCode::ALL {
            if *code == ReasonCode::StoreBlobChanged {
                continue;
            }
            let Some(p) = problems.iter().find(|p| p.code() == *code) else {
                panic!("no problem renders {code}");
            };
            let sentence = p.to_string();
            assert!(
                !sentence.trim().is_empty() && !sentence.contains('{'),
                "{code}: {sentence:?}"
            );
        }
    }

    #[test]
    fn sentences_read_as_before() {
        assert_eq!(
            Problem::TooFewSignatures {
                valid: 1,
                required: 2
            }
            .to_string(),
            "1 distinct trusted key(s) signed; the policy needs 2"
        );
        assert_eq!(
            Problem::ExtraFile {
                path: "b.safetensors".into(),
                renamed_from: Some("a.safetensors".into())
            }
            .to_string(),
            "b.safetensors: in the checkpoint but not attested (same size as the missing `a.safetensors`: renamed?)"
        );
        assert_eq!(
            Problem::TensorsChanged {
                path: "a".into(),
                tensors: vec![]
            }
            .to_string(),
            "a: tensor data unchanged; the header or padding differs"
        );
        assert_eq!(
            Problem::DigestMismatch {
                path: "a".into(),
                digest: HashName::Sha256
            }
            .to_string(),
            "a: SHA-256 digest differs from the attested one"
        );
        let margin = Factor {
            numerator: 13,
            denominator: 10,
        };
        assert_eq!(
            Problem::RegimeDenied {
                threshold: threshold(),
                margin,
                denial: RegimeDenial::DestinationNotCovered {
                    reference: reference(),
                    covers: vec!["US".into(), "CA".into()],
                    destination: "FR".into(),
                },
                notes: vec!["provider: the lab".into(), "SIMULATED".into()],
            }
            .to_string(),
            "above threshold (> 1e25 x1.3 margin (policy choice)): export-licence D1234 from US-BIS covers US,CA, not FR [provider: the lab; SIMULATED]"
        );
        assert_eq!(
            Finding::RegimeBelow {
                effective_ops: 2 * 10u128.pow(24),
                margin: Factor::ONE,
                threshold: threshold(),
                notes: vec![],
            }
            .to_string(),
            "below threshold: 2e24 is not > 1e25"
        );
        assert_eq!(
            Finding::Subject {
                files: 1,
                binding: Binding::Hashed {
                    bytes: 8,
                    digests: "blake3"
                },
                root_sha256: "ab".into(),
            }
            .to_string(),
            "1 file, 8 bytes match their blake3 digests; root sha256:ab"
        );
        assert_eq!(
            Finding::ModelSig {
                files: 2,
                signer: None,
                root_sha256: "ab".into(),
                same_root: false,
                notes: vec!["no hint".into()],
            }
            .to_string(),
            "2 files match, signed by ?; root sha256:ab = NOT the attestation's root (different file sets); no hint"
        );
        assert_eq!(
            Finding::Compute {
                total: Ops(3 * 10u128.pow(24)),
                method: EstimationMethod::SixNd,
                tolerance_percent: 30,
                estimates: vec![(EstimationMethod::SixNd, 3 * 10u128.pow(24))],
            }
            .to_string(),
            "3e24 operations (6nd), components add up; agrees with its inputs within 30 % (6nd 3e24)"
        );
    }

    /// The CLI's text, `--json` and the gate's refusal say the same thing about the same
    /// decision.
    #[test]
    fn text_json_and_refusal_render_the_same_values() {
        let mut d = Decision::new(0);
        d.pass(
            CheckName::Envelope,
            Finding::Envelope {
                bytes: 10,
                signatures: 1,
            },
        );
        d.skip(
            CheckName::Signatures,
            Finding::Ignored(Problem::SignedByUntrustedKey { keyid: "k2".into() }),
        );
        d.fail(CheckName::Time, Problem::Expired { expires_at: 0 });
        d.fail(
            CheckName::Regime {
                id: "eu".into(),
                historical: true,
            },
            denied(RegimeDenial::Embargoed {
                destination: "CN".into(),
            }),
        );

        assert_eq!(
            check_detail(&d.checks[1]),
            "ignored: signed by key k2, which the policy does not trust"
        );
        assert_eq!(
            check_detail(&d.checks[2]),
            "time.expired: expired 1970-01-01T00:00:00Z"
        );
        assert_eq!(
            report("ckpt", &d, "p"),
            vec![
                "ckpt: DENIED (policy p, 1970-01-01T00:00:00Z)",
                "  ok    envelope                       10 bytes, 1 signature(s), canonical CBOR",
                "  skip  signatures                     ignored: signed by key k2, which the policy does not trust",
                "  FAIL  time                           time.expired: expired 1970-01-01T00:00:00Z",
                "  FAIL  regime eu (historical)         regime.destination_embargoed: above threshold (> 1e25): destination CN is embargoed under this regime",
            ]
        );
        assert_eq!(
            refusal(&d),
            "weightgate refused this release: time.expired: expired 1970-01-01T00:00:00Z; regime.destination_embargoed: above threshold (> 1e25): destination CN is embargoed under this regime"
        );

        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["reasons"][0]["code"], "time.expired");
        assert_eq!(
            json["reasons"][0]["message"],
            "expired 1970-01-01T00:00:00Z"
        );
        assert_eq!(json["checks"][3]["name"], "regime eu (historical)");
        assert_eq!(json["checks"][3]["outcome"], "fail");
        for (i, check) in d.checks.iter().enumerate() {
            assert_eq!(json["checks"][i]["detail"], check_detail(check));
        }
        let mut keys: Vec<&String> = json["checks"][0].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["detail", "name", "outcome"]);
    }
}
