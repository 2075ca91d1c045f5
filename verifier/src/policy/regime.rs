//! Regimes: a compute threshold, the references needed above it, when and where it applies.
//! Presets are data (`presets.toml`); evaluation is one function for all of them.

use serde::{Deserialize, Serialize};
use weightgate_schemas::{Grant, Ops, Reference, ReferenceKind, Statement, country};

use crate::policy::Factor;
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

/// A line item of the compute claim that a regime may count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    PreTraining,
    PostTraining,
    SyntheticData,
    BaseModel,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::PreTraining => "pre_training",
            Component::PostTraining => "post_training",
            Component::SyntheticData => "synthetic_data",
            Component::BaseModel => "base_model",
        }
    }
}

/// Who must hold a required reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holder {
    /// Anyone: the reference only has to be there.
    Anyone,
    /// The attesting entity (the developer); a stated holder must be its LEI.
    Developer,
    /// The attesting entity, and only when its revenue makes it a large developer.
    LargeDeveloper,
    /// Whoever the derived-model rule makes the provider: the attesting entity for an original
    /// model or a modifier that becomes the provider (then it must name itself as holder),
    /// the base model's provider for a modifier that does not.
    Provider,
}

impl Holder {
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::Anyone => "anyone",
            Holder::Developer => "developer",
            Holder::LargeDeveloper => "large-developer",
            Holder::Provider => "provider",
        }
    }
}

/// A reference kind a regime demands above its threshold, and from whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub kind: ReferenceKind,
    pub from: Holder,
}

/// When a modifier of a base model becomes its provider (EU GPAI guidelines s3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderRule {
    /// The modifier becomes the provider when its own compute exceeds base / `divisor`.
    pub divisor: u32,
    /// With the base compute unknown, compare against this / `divisor` for a base with
    /// systemic risk ...
    pub unknown_base_systemic: Ops,
    /// ... and this / `divisor` otherwise.
    pub unknown_base_other: Ops,
    pub confidence: String,
}

/// A transitional period for models placed on the market before a date (EU Art. 111(3)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transitional {
    pub placed_before: i64,
    pub until: i64,
    pub confidence: String,
}

/// Published (open) weights are outside the regime, unless a modification brings them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenWeightsRule {
    /// Back in scope when the own compute exceeds base / this ...
    pub back_in_scope_divisor: Option<u32>,
    /// ... or exceeds this.
    pub back_in_scope_ops: Option<Ops>,
    pub confidence: String,
}

/// A regime, fully resolved (preset plus policy overrides).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Regime {
    pub id: String,
    pub title: String,
    pub source: String,
    /// How sure the facts are ([P] primary text read, [S] secondary sources, [U] unconfirmed).
    pub confidence: String,
    /// Territorial scope, in words.
    pub scope: String,
    /// Effective dates and status, in words.
    pub status: String,
    /// No longer law (or never enforced): evaluated only with `assume_in_force`.
    pub historical: bool,
    pub threshold: Ops,
    pub comparator: Comparator,
    /// The policy's safety margin on the counted compute (a choice, not law).
    pub margin: Factor,
    /// Which compute components count toward the threshold.
    pub counts: Vec<Component>,
    /// The counting rule, in words, with its confidence.
    pub counting: String,
    /// Synthetic-data generation counts only when the claim says more than this per mille of
    /// training was spent on one unpublished model's synthetic data (US BIS); a claim that
    /// does not say counts it in full.
    pub synthetic_data_counts_above_permille: Option<u16>,
    pub requires: Vec<Requirement>,
    /// Annual revenue (affiliates included) above which a developer is "large".
    pub large_developer_revenue_usd: Option<u64>,
    pub derived: Option<ProviderRule>,
    pub transitional: Option<Transitional>,
    /// Days allowed for a notification, reported as a fact.
    pub notification_days: Option<u32>,
    pub open_weights: Option<OpenWeightsRule>,
    pub in_force_from: Option<i64>,
    pub in_force_until: Option<i64>,
    /// Destinations where it applies; empty means everywhere.
    pub applies_to: Vec<String>,
    /// Destinations refused outright above the threshold.
    pub embargoed: Vec<String>,
    /// Destinations needing no reference (a licence exception, e.g. BIS AIA for Tier 1).
    pub exception_destinations: Vec<String>,
    /// A transfer within the entity's own country needs no reference.
    pub exempt_domestic: bool,
    /// Authorities whose references count; empty means any.
    pub accepted_authorities: Vec<String>,
    /// References must come with a grant signed by a trusted issuer.
    pub require_grant: bool,
    /// Evaluate even outside `in_force_from..in_force_until` (simulating a historical rule).
    pub assume_in_force: bool,
    pub default_active: bool,
}

impl Regime {
    /// The compute this regime counts: the sum of its components (a base model of unknown
    /// compute counts zero), with the training components raised to the highest estimate
    /// the inputs allow when that lies above them (the tolerance is never a discount).
    pub fn counted_ops(&self, st: &Statement) -> u128 {
        let c = &st.compute.components;
        let counted = self
            .counts
            .iter()
            .map(|k| match k {
                Component::PreTraining => c.pre_training.0,
                Component::PostTraining => c.post_training.0,
                Component::SyntheticData if !self.synthetic_data_counted(st) => 0,
                Component::SyntheticData => c.synthetic_data.0,
                Component::BaseModel => {
                    c.base_model.as_ref().and_then(|b| b.ops).map_or(0, |o| o.0)
                }
            })
            .fold(0u128, u128::saturating_add);
        counted.saturating_add(self.training_shortfall(st).map_or(0, |(s, _)| s))
    }

    /// Whether the synthetic-data component counts: always, unless the regime has a share rule
    /// and the claim states a share at or below it.
    fn synthetic_data_counted(&self, st: &Statement) -> bool {
        match (
            self.synthetic_data_counts_above_permille,
            st.compute.components.synthetic_data_share_permille,
        ) {
            (Some(limit), Some(share)) => share > limit,
            _ => true,
        }
    }

    /// What the inputs' highest estimate adds to the training components this regime counts.
    fn training_shortfall(
        &self,
        st: &Statement,
    ) -> Option<(u128, weightgate_schemas::estimate::Estimate)> {
        let counts_training = self
            .counts
            .iter()
            .any(|k| matches!(k, Component::PreTraining | Component::PostTraining));
        if counts_training {
            weightgate_schemas::estimate::shortfall(&st.compute)
        } else {
            None
        }
    }
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
    /// Normalised with [`country::normalise_destination`]; any value that is not an assigned
    /// ISO 3166-1 alpha-2 code is an unknown destination, refused wherever it matters.
    pub destination: Option<String>,
}

/// The outcome for one regime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegimeOutcome {
    Skipped(String),
    /// Applies, but a transitional period runs (EU Art. 111(3)).
    Transitional(String),
    Below,
    Satisfied(String),
    Denied(RegimeDenial),
}

/// Why a regime refuses a release above its threshold. [`crate::render`] writes the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegimeDenial {
    /// The reference's authority is not one the regime accepts.
    AuthorityNotAccepted {
        reference: ReferenceLabel,
        accepted: Vec<String>,
    },
    /// The regime requires a grant, and no trusted issuer countersigned one for this model.
    GrantMissing {
        reference: ReferenceLabel,
    },
    /// The reference's validity window does not hold `now`.
    NotInForce {
        reference: ReferenceLabel,
        code: ReasonCode,
        valid_from: i64,
        valid_until: Option<i64>,
    },
    /// The reference covers some countries, and the destination is not a known one.
    DestinationUnknown {
        reference: ReferenceLabel,
        covers: Vec<String>,
    },
    /// The reference covers some countries, and no destination was given.
    DestinationRequired {
        reference: ReferenceLabel,
        covers: Vec<String>,
    },
    DestinationNotCovered {
        reference: ReferenceLabel,
        covers: Vec<String>,
        destination: String,
    },
    /// The regime embargoes some countries, and the destination is not a known one.
    EmbargoUnknownDestination,
    Embargoed {
        destination: String,
    },
    ReferenceMissing {
        kind: ReferenceKind,
    },
    /// No reference of the kind is held by the entity; `held` is (number, holder) of those found.
    WrongHolder {
        kind: ReferenceKind,
        lei: String,
        held: Vec<(String, Option<String>)>,
    },
}

impl RegimeDenial {
    /// The stable reason code.
    pub fn code(&self) -> ReasonCode {
        match self {
            RegimeDenial::AuthorityNotAccepted { .. } => ReasonCode::RegimeAuthorityNotAccepted,
            RegimeDenial::GrantMissing { .. } => ReasonCode::RegimeGrantMissing,
            RegimeDenial::NotInForce { code, .. } => *code,
            RegimeDenial::DestinationUnknown { .. } | RegimeDenial::EmbargoUnknownDestination => {
                ReasonCode::RegimeDestinationUnknown
            }
            RegimeDenial::DestinationRequired { .. } => ReasonCode::RegimeDestinationRequired,
            RegimeDenial::DestinationNotCovered { .. } => ReasonCode::RegimeDestinationNotCovered,
            RegimeDenial::Embargoed { .. } => ReasonCode::RegimeDestinationEmbargoed,
            RegimeDenial::ReferenceMissing { .. } => ReasonCode::RegimeReferenceMissing,
            RegimeDenial::WrongHolder { .. } => ReasonCode::RegimeReferenceWrongHolder,
        }
    }
}

/// A reference as the reports name it: kind, number and issuing authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceLabel {
    pub kind: ReferenceKind,
    pub number: String,
    pub authority: String,
}

impl ReferenceLabel {
    pub fn of(r: &Reference) -> Self {
        ReferenceLabel {
            kind: r.kind,
            number: r.number.clone(),
            authority: r.authority.clone(),
        }
    }
}

/// One regime's outcome with the compute it judged and the facts it found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub outcome: RegimeOutcome,
    /// The compute the regime counts (its components), before the margin.
    pub counted_ops: u128,
    /// `counted_ops` x the margin, rounded up: what the threshold is compared with.
    pub effective_ops: u128,
    /// Facts: roles, counting, exceptions, timing.
    pub notes: Vec<String>,
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
) -> Option<RegimeDenial> {
    let reference = ReferenceLabel::of(r);
    if !regime.accepted_authorities.is_empty()
        && !regime
            .accepted_authorities
            .iter()
            .any(|a| same_authority(a, &r.authority))
    {
        return Some(RegimeDenial::AuthorityNotAccepted {
            reference,
            accepted: regime.accepted_authorities.clone(),
        });
    }
    // With a grant required, the issuer's signed terms are what count, not the lab's copy.
    let terms: &Reference = if regime.require_grant {
        let Some(g) = grants.iter().find(|g| {
            g.grant.reference.kind == r.kind
                && g.grant.reference.number == r.number
                && g.grant.reference.authority == r.authority
                && g.grant.root_sha256 == statement.subject.root_sha256
        }) else {
            return Some(RegimeDenial::GrantMissing { reference });
        };
        &g.grant.reference
    } else {
        r
    };
    let until = terms.valid_until.filter(|_| r.kind.lapses());
    if let Err(code) = in_window(terms.valid_from, until, ctx.now) {
        return Some(RegimeDenial::NotInForce {
            reference,
            code,
            valid_from: terms.valid_from,
            valid_until: until,
        });
    }
    if r.kind.per_destination() && !terms.destinations.is_empty() {
        let covers = terms.destinations.clone();
        match &ctx.destination {
            Some(d) if !country::is_country(d) => {
                return Some(RegimeDenial::DestinationUnknown { reference, covers });
            }
            None => return Some(RegimeDenial::DestinationRequired { reference, covers }),
            Some(d) if !terms.destinations.contains(d) => {
                return Some(RegimeDenial::DestinationNotCovered {
                    reference,
                    covers,
                    destination: d.clone(),
                });
            }
            Some(_) => {}
        }
    }
    None
}

/// Authority names compare ignoring case and runs of white space ("European Commission  AI
/// office" is "European Commission AI Office").
fn same_authority(a: &str, b: &str) -> bool {
    let words = |s: &str| {
        s.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    words(a) == words(b)
}

fn show_date(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(
        |_| t.to_string(),
        |t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
    )
}

/// How a holder requirement resolved for this statement.
#[derive(Clone, Copy)]
enum HolderRule {
    Any,
    /// A stated holder must be the entity; an unstated one is accepted (older statements).
    OwnLenient,
    /// The holder must be stated and be the entity.
    OwnStrict,
}

/// Whether the model is above the threshold and who holds the obligations, after the
/// derived-model rule.
struct Role {
    above: bool,
    provider_rule: HolderRule,
}

fn role(regime: &Regime, st: &Statement, effective: u128, notes: &mut Vec<String>) -> Role {
    let plain = Role {
        above: regime.comparator.above(effective, regime.threshold.0),
        provider_rule: HolderRule::OwnLenient,
    };
    let (Some(rule), Some(base)) = (&regime.derived, &st.compute.components.base_model) else {
        return plain;
    };
    let own = weightgate_schemas::estimate::own_compute(&st.compute);
    let (reference, how) = match (base.ops, base.systemic_risk) {
        (Some(ops), _) => (ops, "the base model's compute".to_string()),
        (None, Some(true)) => (
            rule.unknown_base_systemic,
            format!(
                "base compute unknown, base has systemic risk: fallback {} [{}]",
                rule.unknown_base_systemic.to_scientific(),
                rule.confidence
            ),
        ),
        (None, _) => (
            rule.unknown_base_other,
            format!(
                "base compute unknown, base without systemic risk: fallback {} [{}]",
                rule.unknown_base_other.to_scientific(),
                rule.confidence
            ),
        ),
    };
    let divisor = u128::from(rule.divisor.max(1));
    let becomes_provider = own.saturating_mul(divisor) > reference.0;
    notes.push(format!(
        "derived model: own compute {} is {} 1/{} of {} ({}), so the modifier {} the provider",
        Ops(own).to_scientific(),
        if becomes_provider {
            "more than"
        } else {
            "at most"
        },
        divisor,
        reference.to_scientific(),
        how,
        if becomes_provider {
            "becomes"
        } else {
            "does not become"
        }
    ));
    let base_above = match base.ops {
        Some(ops) => regime
            .comparator
            .above(regime.margin.apply_ceil(ops.0), regime.threshold.0),
        None => base.systemic_risk == Some(true),
    };
    if becomes_provider {
        if base_above && !plain.above {
            notes.push("the base model is above the threshold, so the modified model is presumed to be too".into());
        }
        Role {
            above: plain.above || base_above,
            provider_rule: HolderRule::OwnStrict,
        }
    } else {
        if base_above {
            notes.push(format!(
                "the model inherits the base model's obligations: the base provider's {} must exist",
                regime
                    .requires
                    .iter()
                    .filter(|r| r.from == Holder::Provider)
                    .map(|r| r.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ));
        } else {
            notes.push(
                "the model takes the base model's status, which is below the threshold".into(),
            );
        }
        Role {
            above: base_above,
            provider_rule: HolderRule::Any,
        }
    }
}

/// US dollars as the statutes write them: `$500,000,000`.
pub fn usd(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("${out}")
}

/// Whether the statement's entity is a large developer under `line`; notes why. SB 53
/// s22757.11(j) and RAISE look at revenue "in the preceding calendar year": a figure for an
/// older year (or a year not yet begun) says nothing about it and counts as absent, and an
/// absent figure is treated as large (the project's choice: the conservative reading).
fn is_large(st: &Statement, line: u64, now: i64, notes: &mut Vec<String>) -> bool {
    let year = jiff::Timestamp::from_second(now)
        .map(|t| i32::from(t.to_zoned(jiff::tz::TimeZone::UTC).year()))
        .unwrap_or(0);
    let preceding = year - 1;
    let absent = |notes: &mut Vec<String>, why: String| {
        notes.push(format!(
            "{why}: treated as a large developer (revenue above {} with affiliates) [choice: without a figure for the year the law looks at, the conservative reading]",
            usd(line)
        ));
        true
    };
    match &st.entity.revenue {
        None => absent(notes, "no revenue claimed".into()),
        Some(r) if i32::from(r.fiscal_year) < preceding => absent(
            notes,
            format!(
                "revenue {} is for fiscal year {}, older than the preceding calendar year ({preceding}) the law looks at: counted as absent",
                usd(r.usd),
                r.fiscal_year
            ),
        ),
        Some(r) if i32::from(r.fiscal_year) > year => absent(
            notes,
            format!(
                "revenue {} is for fiscal year {}, which has not begun: counted as absent",
                usd(r.usd),
                r.fiscal_year
            ),
        ),
        Some(r) => {
            let large = r.usd > line;
            notes.push(format!(
                "revenue {} with affiliates (fiscal year {}): {} developer (line: above {})",
                usd(r.usd),
                r.fiscal_year,
                if large { "a large" } else { "not a large" },
                usd(line)
            ));
            if i32::from(r.fiscal_year) != preceding {
                notes.push(format!(
                    "the revenue is for {}; the law counts the preceding calendar year ({preceding})",
                    r.fiscal_year
                ));
            }
            large
        }
    }
}

/// Evaluates one regime for a statement: counts its components, applies its margin, its
/// dates, scope and exemptions, the derived-model rule, and checks the references it demands.
pub fn evaluate(
    regime: &Regime,
    statement: &Statement,
    ctx: &Context,
    grants: &[VerifiedGrant],
) -> Evaluation {
    let counted = regime.counted_ops(statement);
    let effective = regime.margin.apply_ceil(counted);
    let mut notes = Vec::new();
    let outcome = judge(regime, statement, effective, ctx, grants, &mut notes);
    let c = &statement.compute.components;
    if let Some(limit) = regime.synthetic_data_counts_above_permille
        && regime.counts.contains(&Component::SyntheticData)
        && c.synthetic_data.0 > 0
        && !matches!(outcome, RegimeOutcome::Skipped(_))
    {
        notes.push(match c.synthetic_data_share_permille {
            Some(share) if share <= limit => format!(
                "synthetic data not counted: {} % of training on one unpublished model's synthetic data, not more than {} %",
                permille_percent(share),
                permille_percent(limit)
            ),
            Some(share) => format!(
                "synthetic data counted: {} % of training on one unpublished model's synthetic data, more than {} %",
                permille_percent(share),
                permille_percent(limit)
            ),
            None => format!(
                "synthetic data counted in full: the claim does not state its share of training (counted only above {} %)",
                permille_percent(limit)
            ),
        });
    }
    if let Some((_, e)) = regime.training_shortfall(statement)
        && !matches!(outcome, RegimeOutcome::Skipped(_))
    {
        let c = &statement.compute.components;
        notes.insert(0, format!(
            "training counted at {} ({}: {}), not the claimed {} (pre_training + post_training): the tolerance is not a discount",
            Ops(e.ops).to_scientific(),
            e.method.as_str(),
            e.formula,
            Ops(c.pre_training.0.saturating_add(c.post_training.0)).to_scientific()
            ),
        );
    }
    Evaluation {
        outcome,
        counted_ops: counted,
        effective_ops: effective,
        notes,
    }
}

/// `125` as `12.5`, `100` as `10`.
fn permille_percent(p: u16) -> String {
    match p % 10 {
        0 => format!("{}", p / 10),
        d => format!("{}.{d}", p / 10),
    }
}

fn judge(
    regime: &Regime,
    statement: &Statement,
    effective_ops: u128,
    ctx: &Context,
    grants: &[VerifiedGrant],
    notes: &mut Vec<String>,
) -> RegimeOutcome {
    if !regime.assume_in_force {
        if regime.historical {
            return RegimeOutcome::Skipped(format!(
                "{}; simulate it with assume_in_force",
                regime.status
            ));
        }
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
    } else if regime.historical {
        notes.push(format!("SIMULATED (assume_in_force): {}", regime.status));
    }
    // An unknown destination could be any country: the regime is applied as if it covered it.
    if let Some(d) = &ctx.destination
        && country::is_country(d)
        && !regime.applies_to.is_empty()
        && !regime.applies_to.contains(d)
    {
        return RegimeOutcome::Skipped(format!("does not apply to destination {d}"));
    }
    if let Some(rule) = &regime.open_weights
        && statement.model.open_weights
    {
        let own = weightgate_schemas::estimate::own_compute(&statement.compute);
        let base = statement
            .compute
            .components
            .base_model
            .as_ref()
            .and_then(|b| b.ops);
        let by_fraction = match (rule.back_in_scope_divisor, base) {
            (Some(div), Some(b)) => own.saturating_mul(u128::from(div.max(1))) > b.0,
            _ => false,
        };
        let by_ops = rule.back_in_scope_ops.is_some_and(|o| own > o.0);
        let derived = statement.compute.components.base_model.is_some();
        if !(derived && (by_fraction || by_ops)) {
            return RegimeOutcome::Skipped(format!(
                "published (open) weights are outside this regime{}",
                if derived {
                    format!(
                        "; the modification is not large enough to bring them back [{}]",
                        rule.confidence
                    )
                } else {
                    String::new()
                }
            ));
        }
        notes.push(format!(
            "published weights, but the modification brings them back in scope [{}]",
            rule.confidence
        ));
    }
    let role = role(regime, statement, effective_ops, notes);
    if !role.above {
        return RegimeOutcome::Below;
    }
    if let Some(t) = &regime.transitional
        && let Some(placed) = statement.model.placed_on_market
        && placed < t.placed_before
    {
        if ctx.now < t.until {
            return RegimeOutcome::Transitional(format!(
                "placed on the market {}, before {}: compliance due by {} [{}]",
                show_date(placed),
                show_date(t.placed_before),
                show_date(t.until),
                t.confidence
            ));
        }
        notes.push(format!(
            "placed on the market {}; the transitional period ended {}",
            show_date(placed),
            show_date(t.until)
        ));
    }
    if let Some(d) = &ctx.destination
        && !country::is_country(d)
        && !regime.embargoed.is_empty()
    {
        return RegimeOutcome::Denied(RegimeDenial::EmbargoUnknownDestination);
    }
    if let Some(d) = &ctx.destination
        && regime.embargoed.contains(d)
    {
        return RegimeOutcome::Denied(RegimeDenial::Embargoed {
            destination: d.clone(),
        });
    }
    if let Some(d) = &ctx.destination {
        if regime.exempt_domestic && *d == statement.entity.country {
            return RegimeOutcome::Satisfied(format!(
                "destination {d} is the entity's own country: not an export"
            ));
        }
        if regime.exception_destinations.contains(d) {
            return RegimeOutcome::Satisfied(format!(
                "destination {d} is covered by a licence exception: no reference needed"
            ));
        }
    }
    let mut satisfied = Vec::new();
    let lei = &statement.entity.lei;
    for req in &regime.requires {
        let kind = req.kind;
        let rule = match req.from {
            Holder::Anyone => HolderRule::Any,
            Holder::Developer => HolderRule::OwnLenient,
            Holder::LargeDeveloper => {
                let line = regime.large_developer_revenue_usd.unwrap_or(0);
                if !is_large(statement, line, ctx.now, notes) {
                    notes.push(format!(
                        "no {} needed from a developer that is not large",
                        kind.as_str()
                    ));
                    continue;
                }
                HolderRule::OwnLenient
            }
            Holder::Provider => role.provider_rule,
        };
        let of_kind: Vec<&Reference> = statement
            .references
            .iter()
            .filter(|r| r.kind == kind)
            .collect();
        if of_kind.is_empty() {
            return RegimeOutcome::Denied(RegimeDenial::ReferenceMissing { kind });
        }
        let candidates: Vec<&Reference> = of_kind
            .iter()
            .copied()
            .filter(|r| match (rule, lei) {
                (HolderRule::Any, _) => true,
                (HolderRule::OwnLenient, Some(lei)) => r.holder.as_ref().is_none_or(|h| h == lei),
                (HolderRule::OwnStrict, Some(lei)) => r.holder.as_ref() == Some(lei),
                // An entity without an LEI can name no holder: its own statement's references
                // without one are its own.
                (HolderRule::OwnLenient | HolderRule::OwnStrict, None) => r.holder.is_none(),
            })
            .collect();
        if candidates.is_empty() {
            return RegimeOutcome::Denied(RegimeDenial::WrongHolder {
                kind,
                lei: lei.clone().unwrap_or_else(|| "no LEI".into()),
                held: of_kind
                    .iter()
                    .map(|r| (r.number.clone(), r.holder.clone()))
                    .collect(),
            });
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
            (Some(r), _) => {
                if !kind.lapses() && r.valid_until.is_some() {
                    notes.push(format!(
                        "{} {}: valid_until ignored: a {} does not lapse",
                        kind.as_str(),
                        r.number,
                        kind.as_str()
                    ));
                }
                if !kind.per_destination() && !r.destinations.is_empty() {
                    notes.push(format!(
                        "{} {}: destinations ({}) ignored: a {} covers every destination of the regime",
                        kind.as_str(),
                        r.number,
                        r.destinations.join(", "),
                        kind.as_str()
                    ));
                }
                if kind == ReferenceKind::Notification
                    && let Some(days) = regime.notification_days
                {
                    notes.push(match r.made_at {
                        Some(m) => format!(
                            "notification {} made {}; the law allows {days} days after the threshold is met or known to be met",
                            r.number,
                            show_date(m)
                        ),
                        None => format!(
                            "notification {} states no date; the law allows {days} days after the threshold is met or known to be met",
                            r.number
                        ),
                    });
                    // The threshold is met in training, before the model is placed on the
                    // market: a notification made later than `days` after placement is late.
                    if let (Some(m), Some(placed)) = (r.made_at, statement.model.placed_on_market)
                        && m.saturating_sub(placed) > i64::from(days) * 86_400
                    {
                        notes.push(format!(
                            "the notification was made {} days after the model was placed on the market ({}), later than {days} days",
                            m.saturating_sub(placed) / 86_400,
                            show_date(placed)
                        ));
                    }
                }
                satisfied.push(format!(
                    "{} {} from {}{}",
                    kind.as_str(),
                    r.number,
                    r.authority,
                    r.holder
                        .as_ref()
                        .map_or(String::new(), |h| format!(" held by {h}"))
                ))
            }
            (None, Some(denial)) => return RegimeOutcome::Denied(denial),
            (None, None) => {
                return RegimeOutcome::Denied(RegimeDenial::ReferenceMissing { kind });
            }
        }
    }
    if satisfied.is_empty() {
        return RegimeOutcome::Satisfied("no reference required of this entity".into());
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
                placed_on_market: None,
            },
            entity: Entity {
                lei: Some("549300WGTGATETEST087".into()),
                contact: "c".into(),
                country: "US".into(),
                revenue: None,
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
                    synthetic_data_share_permille: None,
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
            holder: None,
            number: "N1".into(),
            made_at: None,
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
            evaluate(&eu, &statement(e25, vec![]), &ctx, &[]).outcome,
            RegimeOutcome::Below
        );
        assert!(matches!(
            evaluate(&eu, &statement(e25 + 1, vec![]), &ctx, &[]).outcome,
            RegimeOutcome::Denied(ref d) if d.code() == ReasonCode::RegimeReferenceMissing
        ));
        let mut bis = preset("us-bis-ai-diffusion-2025");
        bis.assume_in_force = true;
        let e26 = 10u128.pow(26);
        let brazil = Context {
            now: ctx.now,
            destination: Some("BR".into()),
        };
        assert!(matches!(
            evaluate(&bis, &statement(e26, vec![]), &brazil, &[]).outcome,
            RegimeOutcome::Denied(..)
        ));
        assert_eq!(
            evaluate(&bis, &statement(e26 - 1, vec![]), &brazil, &[]).outcome,
            RegimeOutcome::Below
        );
        // Germany is Tier 1 (License Exception AIA): no licence needed.
        assert!(matches!(
            evaluate(&bis, &statement(e26, vec![]), &ctx, &[]).outcome,
            RegimeOutcome::Satisfied(_)
        ));
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
            evaluate(&ny, &statement(big, vec![]), &before, &[]).outcome,
            RegimeOutcome::Skipped(_)
        ));
        let after = Context {
            now: at("2027-01-01"),
            destination: None,
        };
        assert!(matches!(
            evaluate(&ny, &statement(big, vec![]), &after, &[]).outcome,
            RegimeOutcome::Denied(..)
        ));
        let bis = preset("us-bis-ai-diffusion-2025");
        let now = Context {
            now: at("2026-11-20"),
            destination: Some("CN".into()),
        };
        assert!(matches!(
            evaluate(&bis, &statement(big, vec![]), &now, &[]).outcome,
            RegimeOutcome::Skipped(_)
        ));
        // Historical: skipped at any date unless simulated, also in spring 2025.
        let in_2025 = Context {
            now: at("2025-05-14"),
            destination: Some("CN".into()),
        };
        assert!(matches!(
            evaluate(&bis, &statement(big, vec![]), &in_2025, &[]).outcome,
            RegimeOutcome::Skipped(_)
        ));
        let mut simulated = bis.clone();
        simulated.assume_in_force = true;
        let ev = evaluate(&simulated, &statement(big, vec![]), &in_2025, &[]);
        assert!(matches!(
            ev.outcome,
            RegimeOutcome::Denied(ref d) if d.code() == ReasonCode::RegimeDestinationEmbargoed
        ));
        assert!(ev.notes.iter().any(|n| n.contains("SIMULATED")));
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
            evaluate(&ca, &st, &ok, &[]).outcome,
            RegimeOutcome::Satisfied(_)
        ));
        let elsewhere = Context {
            now: at("2026-06-01"),
            destination: Some("FR".into()),
        };
        assert!(matches!(
            evaluate(&ca, &st, &elsewhere, &[]).outcome,
            RegimeOutcome::Denied(ref d) if d.code() == ReasonCode::RegimeDestinationNotCovered
        ));
        let late = Context {
            now: at("2027-01-01"),
            destination: Some("US".into()),
        };
        assert!(matches!(
            evaluate(&ca, &st, &late, &[]).outcome,
            RegimeOutcome::Denied(ref d) if d.code() == ReasonCode::RegimeReferenceExpired
        ));
        let early = Context {
            now: at("2025-12-31"),
            destination: Some("US".into()),
        };
        // CA SB 53 itself starts 2026-01-01.
        assert!(matches!(
            evaluate(&ca, &st, &early, &[]).outcome,
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
    fn money_is_written_as_the_statutes_write_it() {
        assert_eq!(usd(500_000_000), "$500,000,000");
        assert_eq!(usd(0), "$0");
        assert_eq!(usd(999), "$999");
        assert_eq!(usd(1_000), "$1,000");
        assert_eq!(usd(u64::MAX), "$18,446,744,073,709,551,615");
    }

    #[test]
    fn presets_parse_with_their_sources() {
        let p = presets();
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|r| !r.source.is_empty()));
        assert!(!preset("us-bis-ai-diffusion-2025").default_active);
    }
}
