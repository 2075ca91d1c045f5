//! Policy files (TOML): which regimes are active, whom to trust, what to refuse.
//! Every error names the file, the line and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use weightgate_attest::keys::parse_verifying_key;
use weightgate_attest::toml_error::{TomlError, TomlSource, read_toml_file};
use weightgate_schemas::{Ops, ReferenceKind, country};

mod regime;

use crate::trust::{
    CertificateTrust, Issuer, ModelSigningKey, ModelSigningTrust, SigstoreIdentity, SigstoreRoot,
    SigstoreTrust, TrustedKey,
};
pub use regime::{
    Comparator, Component, Context, Evaluation, Holder, OpenWeightsRule, ProviderRule,
    ReferenceLabel, Regime, RegimeDenial, RegimeOutcome, Requirement, Transitional, VerifiedGrant,
    evaluate, usd,
};

const PRESETS: &str = include_str!("presets.toml");

/// A policy problem: `FILE:LINE: KEY: PROBLEM`, the same type as a claims file's.
pub type PolicyError = TomlError;

/// Which digest `verify` recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyDigest {
    Blake3,
    Sha256,
}

/// An exact decimal factor such as `1.3`, as numerator / denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Factor {
    pub numerator: u128,
    pub denominator: u128,
}

/// Why a text is not a factor of at least 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFactor(pub String);

impl Factor {
    pub const ONE: Factor = Factor {
        numerator: 1,
        denominator: 1,
    };

    /// Parses `1`, `1.3`, `2.25`: at least 1, at most 6 decimals.
    pub fn parse(s: &str) -> Result<Self, InvalidFactor> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 6
        {
            return Err(InvalidFactor(format!(
                "`{s}` is not a decimal like \"1.3\""
            )));
        }
        let denominator = 10u128.pow(frac.len() as u32);
        let numerator: u128 = format!("{int}{frac}")
            .parse()
            .map_err(|_| InvalidFactor(format!("`{s}` is too large")))?;
        if numerator < denominator {
            return Err(InvalidFactor(format!("`{s}` is below 1")));
        }
        Ok(Factor {
            numerator,
            denominator,
        })
    }

    /// `ceil(value * self)`, saturating.
    pub fn apply_ceil(&self, value: u128) -> u128 {
        match value.checked_mul(self.numerator) {
            Some(p) => p.div_ceil(self.denominator),
            None => u128::MAX,
        }
    }

    pub fn to_decimal(&self) -> String {
        let int = self.numerator / self.denominator;
        let frac = self.numerator % self.denominator;
        if self.denominator == 1 {
            return int.to_string();
        }
        let width = self.denominator.ilog10() as usize;
        format!("{int}.{frac:0width$}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// A checked, fully resolved policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub min_signatures: usize,
    pub verify_digest: VerifyDigest,
    pub clock_skew_seconds: i64,
    /// Default margin for regimes that set none (a policy choice, not law).
    pub compute_margin: Factor,
    /// A claim may lie at most this many percent below an estimate from its own inputs.
    pub compute_tolerance_percent: u32,
    /// Deny a bare method: each must come with the inputs it is computed from.
    pub require_compute_inputs: bool,
    /// Near a threshold, both estimates must be given and agree within a factor.
    pub cross_check: Option<CrossCheck>,
    /// A derived model must come with its base model's attestation (or a known base model).
    pub require_base_attestation: bool,
    /// Base models the hub has verified itself.
    pub known_base_models: Vec<KnownBaseModel>,
    pub trusted_keys: Vec<TrustedKey>,
    pub issuers: Vec<Issuer>,
    pub revoked_keys: Vec<String>,
    /// SHA-256 of revoked attestations' payloads (hex): cosigning does not change it.
    pub revoked_attestations: Vec<String>,
    /// SHA-256 of revoked grants' payloads (hex): one licence withdrawn without revoking the
    /// issuer's key (which would withdraw every grant it signed).
    pub revoked_grants: Vec<String>,
    pub regimes: Vec<Regime>,
    pub destination_header: Option<String>,
    /// Keys (`[[model_signing_key]]`) and trust anchors with the identities they vouch for
    /// (`[[model_signing_certificate]]`) for OpenSSF model-signing bundles (`model.sig`).
    pub model_signing: ModelSigningTrust,
    /// Deny unless a `model.sig` trusted by [`Policy::model_signing`] checks out too.
    pub require_model_signature: bool,
    /// Deny a statement whose entity states no LEI (no regime requires one: a policy choice).
    pub require_lei: bool,
    /// Judge no regime: provenance alone (see [`Policy::provenance_only`]).
    pub provenance_only: bool,
    /// `[[namespace]]`: which trusted keys may attest the releases of each organisation. When
    /// any is declared, admission under an organisation not listed is refused too.
    pub namespaces: Vec<NamespaceBinding>,
}

/// One organisation and the trusted keys (by key id) whose signatures may admit under it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamespaceBinding {
    pub name: String,
    /// Names of `[[trusted_key]]` entries, as written.
    pub key_names: Vec<String>,
    pub keyids: Vec<String>,
}

impl Policy {
    /// Why a release signed by `signers` (key ids) may not be admitted under `namespace`;
    /// `None` if it may (or the policy binds no namespaces).
    pub fn namespace_refusal(&self, namespace: &str, signers: &[String]) -> Option<String> {
        if self.namespaces.is_empty() {
            return None;
        }
        let Some(b) = self.namespaces.iter().find(|b| b.name == namespace) else {
            return Some(format!(
                "the policy binds no keys to namespace {namespace} (no [[namespace]] for it)"
            ));
        };
        if signers.iter().any(|s| b.keyids.contains(s)) {
            return None;
        }
        Some(format!(
            "namespace {namespace} takes releases signed by {}; this one is signed by none of them",
            b.key_names.join(", ")
        ))
    }
}

/// Near a threshold (within `band` either way), the 6·N·D and hardware estimates must both be
/// given and agree within `factor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CrossCheck {
    pub factor: Factor,
    pub band: Factor,
}

/// A base model whose weights and compute the hub has verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KnownBaseModel {
    pub name: String,
    pub root_sha256: String,
    pub ops: Ops,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    policy: RawSettings,
    #[serde(default)]
    trusted_key: Vec<RawKey>,
    #[serde(default)]
    issuer: Vec<RawKey>,
    #[serde(default)]
    revoked: RawRevoked,
    #[serde(default)]
    regime: std::collections::BTreeMap<String, RawOverride>,
    #[serde(default)]
    custom_regime: Vec<RawRegime>,
    #[serde(default)]
    model_signing_key: Vec<RawKey>,
    #[serde(default)]
    known_base_model: Vec<RawKnownBase>,
    #[serde(default)]
    model_signing_certificate: Vec<RawCertificateTrust>,
    #[serde(default)]
    model_signing_sigstore: Vec<RawSigstoreTrust>,
    #[serde(default)]
    namespace: Vec<RawNamespace>,
}

/// `[[model_signing_sigstore]]`: Sigstore keyless signers of `model.sig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigstoreTrust {
    name: Spanned<String>,
    /// The Fulcio certificate's subject alternative name (email or URI), exact.
    identity: Spanned<String>,
    /// The OIDC issuer that vouched for it, exact.
    issuer: Spanned<String>,
    /// A `TrustedRoot` JSON file relative to the policy; the public-good root when absent.
    trust_root: Option<Spanned<String>>,
}

/// `[[namespace]]`: an organisation and the `[[trusted_key]]` names that may attest under it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespace {
    name: Spanned<String>,
    keys: Spanned<Vec<String>>,
}

/// `[[model_signing_certificate]]`: trust anchors for the OMS `certificate` method.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificateTrust {
    name: Spanned<String>,
    /// PEM file of anchor certificates, relative to the policy file.
    path: Spanned<String>,
    /// Signing-certificate identities (alternative name, or the one common name) allowed.
    #[serde(default)]
    identities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKnownBase {
    name: Spanned<String>,
    root_sha256: Spanned<String>,
    ops: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    name: String,
    #[serde(default)]
    regimes: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    min_signatures: Option<Spanned<u32>>,
    #[serde(default)]
    verify_digest: Option<VerifyDigest>,
    #[serde(default)]
    clock_skew_seconds: Option<u32>,
    #[serde(default)]
    compute_margin: Option<Spanned<String>>,
    /// Replaced by `compute_tolerance_percent`; refused with a message saying so.
    #[serde(default)]
    plausibility_tolerance: Option<Spanned<String>>,
    #[serde(default)]
    compute_tolerance_percent: Option<Spanned<u32>>,
    #[serde(default)]
    require_compute_inputs: Option<bool>,
    #[serde(default)]
    cross_check_factor: Option<Spanned<String>>,
    #[serde(default)]
    cross_check_band: Option<Spanned<String>>,
    #[serde(default)]
    require_base_attestation: Option<bool>,
    #[serde(default)]
    destination_header: Option<String>,
    #[serde(default)]
    require_model_signature: Option<Spanned<bool>>,
    #[serde(default)]
    require_lei: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: Spanned<String>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    public_key: Option<Spanned<String>>,
    #[serde(default)]
    valid_from: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    valid_until: Option<Spanned<toml::value::Datetime>>,
    /// Issuers only.
    #[serde(default)]
    authority: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRevoked {
    #[serde(default)]
    keys: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    attestations: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    grants: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    #[serde(default)]
    accepted_authorities: Option<Vec<String>>,
    #[serde(default)]
    require_grant: Option<bool>,
    #[serde(default)]
    assume_in_force: Option<bool>,
    #[serde(default)]
    threshold: Option<Spanned<String>>,
    #[serde(default)]
    applies_to: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    margin: Option<Spanned<String>>,
    #[serde(default)]
    comparator: Option<Comparator>,
    #[serde(default)]
    counts: Option<Vec<Component>>,
    #[serde(default)]
    large_developer_revenue_usd: Option<u64>,
    #[serde(default)]
    exception_destinations: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    exempt_domestic: Option<bool>,
    #[serde(default)]
    unknown_base_systemic: Option<Spanned<String>>,
    #[serde(default)]
    unknown_base_other: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    kind: String,
    from: Holder,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviderRule {
    divisor: u32,
    unknown_base_systemic: Spanned<String>,
    unknown_base_other: Spanned<String>,
    #[serde(default)]
    confidence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransitional {
    placed_before: Spanned<toml::value::Datetime>,
    until: Spanned<toml::value::Datetime>,
    #[serde(default)]
    confidence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpenWeights {
    #[serde(default)]
    back_in_scope_divisor: Option<u32>,
    #[serde(default)]
    back_in_scope_ops: Option<Spanned<String>>,
    #[serde(default)]
    confidence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegime {
    id: Spanned<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    confidence: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    historical: bool,
    threshold: Spanned<String>,
    comparator: Comparator,
    #[serde(default)]
    margin: Option<Spanned<String>>,
    /// Kinds anyone may hold (the short form).
    #[serde(default)]
    required: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    requires: Option<Spanned<Vec<RawRequirement>>>,
    #[serde(default)]
    counts: Option<Vec<Component>>,
    #[serde(default)]
    counting: String,
    #[serde(default)]
    synthetic_data_counts_above_permille: Option<u16>,
    #[serde(default)]
    large_developer_revenue_usd: Option<u64>,
    #[serde(default)]
    derived: Option<RawProviderRule>,
    #[serde(default)]
    transitional: Option<RawTransitional>,
    #[serde(default)]
    notification_days: Option<u32>,
    #[serde(default)]
    open_weights: Option<RawOpenWeights>,
    #[serde(default)]
    in_force_from: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    in_force_until: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    applies_to: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    embargoed: Vec<String>,
    #[serde(default)]
    exception_destinations: Vec<String>,
    #[serde(default)]
    exempt_domestic: bool,
    #[serde(default)]
    accepted_authorities: Vec<String>,
    #[serde(default)]
    require_grant: bool,
    #[serde(default)]
    assume_in_force: bool,
    #[serde(default)]
    default_active: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPresets {
    regime: Vec<RawRegime>,
}

struct Cx<'a> {
    source: TomlSource<'a>,
}

impl Cx<'_> {
    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        problem: impl Into<String>,
    ) -> PolicyError {
        self.source.error(span, key, problem)
    }

    fn time(&self, v: &Spanned<toml::value::Datetime>, key: &str) -> Result<i64, PolicyError> {
        weightgate_attest::toml_time::toml_time(v.get_ref())
            .map_err(|e| self.err(Some(v.span()), key, e.to_string()))
    }

    fn countries(&self, v: &Spanned<Vec<String>>, key: &str) -> Result<Vec<String>, PolicyError> {
        for c in v.get_ref() {
            country::check_policy_country(c).map_err(|p| self.err(Some(v.span()), key, p))?;
        }
        Ok(v.get_ref().clone())
    }

    fn kinds(
        &self,
        v: &Spanned<Vec<String>>,
        key: &str,
    ) -> Result<Vec<ReferenceKind>, PolicyError> {
        v.get_ref()
            .iter()
            .map(|k| {
                k.parse::<ReferenceKind>().map_err(|_| {
                    self.err(Some(v.span()), key, format!(
                        "`{k}` is not one of `export-licence`, `notification`, `safety-framework`, `transparency-report`"
                    ))
                })
            })
            .collect()
    }

    fn ops(&self, v: &Spanned<String>, key: &str) -> Result<Ops, PolicyError> {
        v.get_ref()
            .parse()
            .map_err(|e| self.err(Some(v.span()), key, format!("{e}")))
    }

    fn factor(&self, v: &Spanned<String>, key: &str) -> Result<Factor, PolicyError> {
        Factor::parse(v.get_ref()).map_err(|e| self.err(Some(v.span()), key, e.0))
    }

    fn regime(&self, r: &RawRegime, key: &str) -> Result<Regime, PolicyError> {
        let threshold = self.ops(&r.threshold, &format!("{key}.threshold"))?;
        let mut requires = Vec::new();
        if let Some(kinds) = &r.required {
            for kind in self.kinds(kinds, &format!("{key}.required"))? {
                requires.push(Requirement {
                    kind,
                    from: Holder::Anyone,
                });
            }
        }
        if let Some(list) = &r.requires {
            for q in list.get_ref() {
                let kind = q
                    .kind
                    .parse::<ReferenceKind>()
                    .map_err(|e| self.err(Some(list.span()), &format!("{key}.requires.kind"), e))?;
                if q.from == Holder::LargeDeveloper && r.large_developer_revenue_usd.is_none() {
                    return Err(self.err(
                        Some(list.span()),
                        &format!("{key}.requires"),
                        "`large-developer` needs large_developer_revenue_usd",
                    ));
                }
                requires.push(Requirement { kind, from: q.from });
            }
        }
        if r.required.is_none() && r.requires.is_none() {
            return Err(self.err(
                Some(r.id.span()),
                key,
                "give `required` (kinds) or `requires` ([{ kind, from }])",
            ));
        }
        let derived = match &r.derived {
            None => None,
            Some(d) => {
                if d.divisor == 0 {
                    return Err(self.err(
                        Some(r.id.span()),
                        &format!("{key}.derived.divisor"),
                        "must be at least 1",
                    ));
                }
                Some(ProviderRule {
                    divisor: d.divisor,
                    unknown_base_systemic: self.ops(
                        &d.unknown_base_systemic,
                        &format!("{key}.derived.unknown_base_systemic"),
                    )?,
                    unknown_base_other: self.ops(
                        &d.unknown_base_other,
                        &format!("{key}.derived.unknown_base_other"),
                    )?,
                    confidence: d.confidence.clone(),
                })
            }
        };
        let transitional = match &r.transitional {
            None => None,
            Some(t) => Some(Transitional {
                placed_before: self.time(
                    &t.placed_before,
                    &format!("{key}.transitional.placed_before"),
                )?,
                until: self.time(&t.until, &format!("{key}.transitional.until"))?,
                confidence: t.confidence.clone(),
            }),
        };
        let open_weights = match &r.open_weights {
            None => None,
            Some(o) => Some(OpenWeightsRule {
                back_in_scope_divisor: o.back_in_scope_divisor.filter(|d| *d > 0),
                back_in_scope_ops: o
                    .back_in_scope_ops
                    .as_ref()
                    .map(|v| self.ops(v, &format!("{key}.open_weights.back_in_scope_ops")))
                    .transpose()?,
                confidence: o.confidence.clone(),
            }),
        };
        let embargoed = r.embargoed.clone();
        let exceptions = r.exception_destinations.clone();
        // Written in normal form, or refused: `"cn"` or `"RU "` would silently never match.
        for (list, countries) in [
            ("embargoed", &embargoed),
            ("exception_destinations", &exceptions),
        ] {
            for c in countries {
                country::check_policy_country(c)
                    .map_err(|p| self.err(Some(r.id.span()), &format!("{key}.{list}"), p))?;
            }
        }
        Ok(Regime {
            id: r.id.get_ref().clone(),
            title: r.title.clone(),
            source: r.source.clone(),
            confidence: r.confidence.clone(),
            scope: r.scope.clone(),
            status: r.status.clone(),
            historical: r.historical,
            threshold,
            comparator: r.comparator,
            margin: r
                .margin
                .as_ref()
                .map(|m| self.factor(m, &format!("{key}.margin")))
                .transpose()?
                .unwrap_or(Factor::ONE),
            counts: r.counts.clone().unwrap_or_else(|| {
                vec![
                    Component::PreTraining,
                    Component::PostTraining,
                    Component::SyntheticData,
                    Component::BaseModel,
                ]
            }),
            counting: if r.counting.is_empty() && r.counts.is_none() {
                "cumulative: every component".into()
            } else {
                r.counting.clone()
            },
            requires,
            synthetic_data_counts_above_permille: r
                .synthetic_data_counts_above_permille
                .filter(|p| *p <= 1000),
            large_developer_revenue_usd: r.large_developer_revenue_usd,
            derived,
            transitional,
            notification_days: r.notification_days,
            open_weights,
            in_force_from: r
                .in_force_from
                .as_ref()
                .map(|t| self.time(t, &format!("{key}.in_force_from")))
                .transpose()?,
            in_force_until: r
                .in_force_until
                .as_ref()
                .map(|t| self.time(t, &format!("{key}.in_force_until")))
                .transpose()?,
            applies_to: r
                .applies_to
                .as_ref()
                .map(|a| self.countries(a, &format!("{key}.applies_to")))
                .transpose()?
                .unwrap_or_default(),
            embargoed,
            exception_destinations: exceptions,
            exempt_domestic: r.exempt_domestic,
            accepted_authorities: r.accepted_authorities.clone(),
            require_grant: r.require_grant,
            assume_in_force: r.assume_in_force,
            default_active: r.default_active,
        })
    }

    /// An ECDSA key for OpenSSF model-signing bundles.
    fn model_signing_key(
        &self,
        k: &RawKey,
        key: &str,
        base: &Path,
    ) -> Result<ModelSigningKey, PolicyError> {
        let (pem, name, span) = self.key_text(k, key, base)?;
        let vk = weightgate_attest::keys::EcVerifyingKey::from_pem(&pem, &name)
            .map_err(|e| self.err(span, key, e.to_string()))?;
        Ok(ModelSigningKey {
            name: k.name.get_ref().clone(),
            key: vk,
        })
    }

    /// The PEM text of a key given by `path` or inline `public_key`, its name and span.
    fn key_text(
        &self,
        k: &RawKey,
        key: &str,
        base: &Path,
    ) -> Result<(String, String, Option<std::ops::Range<usize>>), PolicyError> {
        let (pem, name) = match (&k.path, &k.public_key) {
            (Some(p), None) => {
                let full = base.join(p.get_ref());
                let text = weightgate_attest::io::read_capped_to_string(
                    &full,
                    weightgate_attest::io::MAX_KEY_FILE_LEN,
                )
                .map_err(|e| {
                    self.err(
                        Some(p.span()),
                        &format!("{key}.path"),
                        format!("{}: {e}", full.display()),
                    )
                })?;
                (text, full.display().to_string())
            }
            (None, Some(pem)) => (pem.get_ref().clone(), format!("{key}.public_key")),
            _ => {
                return Err(self.err(
                    Some(k.name.span()),
                    key,
                    "give exactly one of `path` and `public_key`",
                ));
            }
        };
        let span = k.path.as_ref().or(k.public_key.as_ref()).map(|s| s.span());
        Ok((pem, name, span))
    }

    fn key(&self, k: &RawKey, key: &str, base: &Path) -> Result<TrustedKey, PolicyError> {
        let (pem, name, span) = self.key_text(k, key, base)?;
        let vk =
            parse_verifying_key(&pem, &name).map_err(|e| self.err(span, key, e.to_string()))?;
        let valid_from = k
            .valid_from
            .as_ref()
            .map(|t| self.time(t, &format!("{key}.valid_from")))
            .transpose()?;
        let valid_until = k
            .valid_until
            .as_ref()
            .map(|t| self.time(t, &format!("{key}.valid_until")))
            .transpose()?;
        if let (Some(f), Some(u), Some(s)) = (valid_from, valid_until, k.valid_until.as_ref())
            && u <= f
        {
            return Err(self.err(
                Some(s.span()),
                &format!("{key}.valid_until"),
                "must be after valid_from",
            ));
        }
        Ok(TrustedKey::new(
            k.name.get_ref().clone(),
            vk,
            valid_from,
            valid_until,
        ))
    }
}

/// The built-in regime presets.
pub fn presets() -> Vec<Regime> {
    let raw: RawPresets = match toml::from_str(PRESETS) {
        Ok(r) => r,
        Err(_) => return Vec::new(), // a test parses the presets, so this cannot ship broken
    };
    let cx = Cx {
        source: TomlSource {
            text: PRESETS,
            name: "presets.toml",
        },
    };
    raw.regime
        .iter()
        .filter_map(|r| cx.regime(r, "regime").ok())
        .collect()
}

fn presets_ids() -> Vec<String> {
    presets().into_iter().map(|r| r.id).collect()
}

impl Policy {
    /// Reads a policy file; key `path`s are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = read_toml_file(path)?;
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// This policy with no regime judged: signatures, revocation, subject, `model.sig`,
    /// compute consistency and lineage only ("are these the bytes this key signed, and what
    /// does the attestation say"), for downstream users who are not the regulated party.
    pub fn provenance_only(mut self) -> Self {
        self.regimes.clear();
        self.provenance_only = true;
        self
    }

    /// A policy that trusts exactly these keys, with the default regimes (`verify --trust`).
    pub fn trusting(keys: Vec<TrustedKey>) -> Self {
        Policy {
            name: "--trust".into(),
            min_signatures: 1,
            verify_digest: VerifyDigest::Blake3,
            clock_skew_seconds: 300,
            compute_margin: Factor::ONE,
            compute_tolerance_percent: weightgate_schemas::estimate::DEFAULT_TOLERANCE_PERCENT,
            require_compute_inputs: false,
            cross_check: None,
            require_base_attestation: false,
            known_base_models: Vec::new(),
            trusted_keys: keys,
            issuers: Vec::new(),
            revoked_keys: Vec::new(),
            revoked_attestations: Vec::new(),
            revoked_grants: Vec::new(),
            regimes: presets().into_iter().filter(|r| r.default_active).collect(),
            destination_header: None,
            model_signing: ModelSigningTrust::default(),
            require_model_signature: false,
            require_lei: false,
            provenance_only: false,
            namespaces: Vec::new(),
        }
    }

    /// Parses policy text; `base` resolves key paths.
    pub fn parse(text: &str, source_name: &str, base: &Path) -> Result<Self, PolicyError> {
        let source = TomlSource {
            text,
            name: source_name,
        };
        let cx = Cx { source };
        let raw: RawPolicy = source.parse()?;
        let s = &raw.policy;
        if let Some(p) = &s.plausibility_tolerance {
            return Err(cx.err(
                Some(p.span()),
                "policy.plausibility_tolerance",
                "replaced by `compute_tolerance_percent`: a claim may be at most that many percent below an estimate from its own inputs (default 30)",
            ));
        }
        let compute_margin = match &s.compute_margin {
            None => Factor::ONE,
            Some(v) => cx.factor(v, "policy.compute_margin")?,
        };
        let mut explicit_margin: Vec<String> = raw
            .custom_regime
            .iter()
            .filter(|c| c.margin.is_some())
            .map(|c| c.id.get_ref().clone())
            .collect();
        let mut available = presets();
        for (i, c) in raw.custom_regime.iter().enumerate() {
            let key = format!("custom_regime[{i}]");
            if available.iter().any(|r| &r.id == c.id.get_ref()) {
                return Err(cx.err(
                    Some(c.id.span()),
                    &format!("{key}.id"),
                    format!("`{}` is already a preset id", c.id.get_ref()),
                ));
            }
            let mut r = cx.regime(c, &key)?;
            if r.title.is_empty() {
                r.title = r.id.clone();
            }
            r.default_active = true;
            available.push(r);
        }
        let mut regimes: Vec<Regime> = match &s.regimes {
            None => available
                .iter()
                .filter(|r| r.default_active)
                .cloned()
                .collect(),
            Some(list) => {
                let mut out = Vec::new();
                for id in list.get_ref() {
                    let r = available.iter().find(|r| &r.id == id).ok_or_else(|| {
                        let known: Vec<&str> = available.iter().map(|r| r.id.as_str()).collect();
                        cx.err(
                            Some(list.span()),
                            "policy.regimes",
                            format!("unknown regime `{id}` (known: {})", known.join(", ")),
                        )
                    })?;
                    out.push(r.clone());
                }
                out
            }
        };
        // Custom regimes are the policy's own: always active.
        for r in available
            .iter()
            .filter(|r| r.default_active && !presets_ids().contains(&r.id))
        {
            if !regimes.iter().any(|x| x.id == r.id) {
                regimes.push(r.clone());
            }
        }
        for (id, o) in &raw.regime {
            let Some(r) = regimes.iter_mut().find(|r| &r.id == id) else {
                return Err(cx.err(
                    None,
                    &format!("regime.{id}"),
                    "overrides a regime that is not active in policy.regimes",
                ));
            };
            if let Some(a) = &o.accepted_authorities {
                r.accepted_authorities = a.clone();
            }
            if let Some(g) = o.require_grant {
                r.require_grant = g;
            }
            if let Some(f) = o.assume_in_force {
                r.assume_in_force = f;
            }
            if let Some(t) = &o.threshold {
                r.threshold = t.get_ref().parse().map_err(|e| {
                    cx.err(
                        Some(t.span()),
                        &format!("regime.{id}.threshold"),
                        format!("{e}"),
                    )
                })?;
            }
            if let Some(a) = &o.applies_to {
                r.applies_to = cx.countries(a, &format!("regime.{id}.applies_to"))?;
            }
            if let Some(m) = &o.margin {
                r.margin = cx.factor(m, &format!("regime.{id}.margin"))?;
                explicit_margin.push(id.clone());
            }
            if let Some(c) = o.comparator {
                r.comparator = c;
            }
            if let Some(c) = &o.counts {
                r.counts = c.clone();
                r.counting = format!(
                    "overridden by the policy: {}",
                    c.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" + ")
                );
            }
            if let Some(l) = o.large_developer_revenue_usd {
                r.large_developer_revenue_usd = Some(l);
            }
            if let Some(e) = &o.exception_destinations {
                r.exception_destinations =
                    cx.countries(e, &format!("regime.{id}.exception_destinations"))?;
            }
            if let Some(d) = o.exempt_domestic {
                r.exempt_domestic = d;
            }
            for (v, systemic) in [
                (&o.unknown_base_systemic, true),
                (&o.unknown_base_other, false),
            ] {
                let Some(v) = v else { continue };
                let key = format!(
                    "regime.{id}.unknown_base_{}",
                    if systemic { "systemic" } else { "other" }
                );
                let ops = cx.ops(v, &key)?;
                let Some(d) = r.derived.as_mut() else {
                    return Err(cx.err(
                        Some(v.span()),
                        &key,
                        "this regime has no derived-model rule",
                    ));
                };
                if systemic {
                    d.unknown_base_systemic = ops;
                } else {
                    d.unknown_base_other = ops;
                }
                d.confidence = "set by the policy".into();
            }
        }
        for r in &mut regimes {
            if !explicit_margin.contains(&r.id) {
                r.margin = compute_margin;
            }
        }

        let mut trusted_keys = Vec::new();
        for (i, k) in raw.trusted_key.iter().enumerate() {
            if k.authority.is_some() {
                return Err(cx.err(
                    Some(k.name.span()),
                    &format!("trusted_key[{i}].authority"),
                    "only issuers have an authority",
                ));
            }
            trusted_keys.push(cx.key(k, &format!("trusted_key[{i}]"), base)?);
        }
        let mut namespaces: Vec<NamespaceBinding> = Vec::new();
        for (i, n) in raw.namespace.iter().enumerate() {
            let key = format!("namespace[{i}]");
            let name = n.name.get_ref();
            let valid = !name.is_empty()
                && name.len() <= 96
                && !name.starts_with(['.', '-'])
                && !name.contains("..")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid {
                return Err(cx.err(
                    Some(n.name.span()),
                    &format!("{key}.name"),
                    format!("`{name}` is not an organisation name ([A-Za-z0-9._-], max 96)"),
                ));
            }
            if namespaces.iter().any(|b| &b.name == name) {
                return Err(cx.err(
                    Some(n.name.span()),
                    &format!("{key}.name"),
                    format!("namespace {name} is declared twice"),
                ));
            }
            if n.keys.get_ref().is_empty() {
                return Err(cx.err(
                    Some(n.keys.span()),
                    &format!("{key}.keys"),
                    "name at least one trusted key",
                ));
            }
            let mut keyids = Vec::new();
            for k in n.keys.get_ref() {
                let Some(t) = trusted_keys.iter().find(|t: &&TrustedKey| &t.name == k) else {
                    return Err(cx.err(
                        Some(n.keys.span()),
                        &format!("{key}.keys"),
                        format!("no [[trusted_key]] is named `{k}`"),
                    ));
                };
                keyids.push(t.keyid.clone());
            }
            namespaces.push(NamespaceBinding {
                name: name.clone(),
                key_names: n.keys.get_ref().clone(),
                keyids,
            });
        }
        let mut issuers = Vec::new();
        for (i, k) in raw.issuer.iter().enumerate() {
            let key = format!("issuer[{i}]");
            let authority = k
                .authority
                .as_ref()
                .ok_or_else(|| {
                    cx.err(
                        Some(k.name.span()),
                        &format!("{key}.authority"),
                        "an issuer needs the authority whose references it grants",
                    )
                })?
                .get_ref()
                .clone();
            issuers.push(Issuer {
                key: cx.key(k, &key, base)?,
                authority,
            });
        }
        let mut model_signing_keys = Vec::new();
        for k in &raw.model_signing_key {
            if let Some(extra) = k.valid_from.as_ref().or(k.valid_until.as_ref()) {
                return Err(cx.err(
                    Some(extra.span()),
                    "model_signing_key",
                    "validity windows are not supported for model-signing keys",
                ));
            }
            if let Some(a) = &k.authority {
                return Err(cx.err(
                    Some(a.span()),
                    "model_signing_key.authority",
                    "only issuers have an authority",
                ));
            }
            model_signing_keys.push(cx.model_signing_key(k, "model_signing_key", base)?);
        }
        let mut model_signing_certificates = Vec::new();
        for c in &raw.model_signing_certificate {
            let full = base.join(c.path.get_ref());
            let anchors = weightgate_attest::keys::load_certificates(&full).map_err(|e| {
                cx.err(
                    Some(c.path.span()),
                    "model_signing_certificate.path",
                    e.to_string(),
                )
            })?;
            if c.identities.iter().any(|i| i.is_empty()) {
                return Err(cx.err(
                    Some(c.name.span()),
                    "model_signing_certificate.identities",
                    "an identity is empty",
                ));
            }
            model_signing_certificates.push(CertificateTrust {
                name: c.name.get_ref().clone(),
                anchors,
                identities: c.identities.clone(),
            });
        }
        let mut sigstore: Vec<SigstoreTrust> = Vec::new();
        for t in &raw.model_signing_sigstore {
            for (field, v) in [
                ("name", &t.name),
                ("identity", &t.identity),
                ("issuer", &t.issuer),
            ] {
                if v.get_ref().is_empty() {
                    return Err(cx.err(
                        Some(v.span()),
                        &format!("model_signing_sigstore.{field}"),
                        "is empty",
                    ));
                }
            }
            let root = match &t.trust_root {
                Some(p) => SigstoreRoot::load(&base.join(p.get_ref())).map_err(|e| {
                    cx.err(
                        Some(p.span()),
                        "model_signing_sigstore.trust_root",
                        e.to_string(),
                    )
                })?,
                None => SigstoreRoot::public_good(),
            };
            let identity = SigstoreIdentity {
                identity: t.identity.get_ref().clone(),
                issuer: t.issuer.get_ref().clone(),
            };
            // Entries sharing a root are one trust with several identities.
            match sigstore.iter_mut().find(|s| s.root.name == root.name) {
                Some(existing) => existing.identities.push(identity),
                None => sigstore.push(SigstoreTrust {
                    root,
                    identities: vec![identity],
                }),
            }
        }
        let model_signing = ModelSigningTrust {
            keys: model_signing_keys,
            certificates: model_signing_certificates,
            sigstore,
        };
        let require_model_signature = s
            .require_model_signature
            .as_ref()
            .is_some_and(|r| *r.get_ref());
        if let Some(r) = &s.require_model_signature
            && *r.get_ref()
            && model_signing.is_empty()
        {
            return Err(cx.err(
                Some(r.span()),
                "policy.require_model_signature",
                "needs at least one [[model_signing_key]] (an ECDSA P-256/P-384/P-521 public key), [[model_signing_certificate]] or [[model_signing_sigstore]]",
            ));
        }
        let min_signatures = s
            .min_signatures
            .as_ref()
            .map_or(1, |m| *m.get_ref() as usize);
        if let Some(m) = &s.min_signatures
            && (min_signatures == 0 || min_signatures > trusted_keys.len().max(1))
        {
            return Err(cx.err(
                Some(m.span()),
                "policy.min_signatures",
                format!(
                    "must be between 1 and the number of trusted keys ({})",
                    trusted_keys.len()
                ),
            ));
        }
        let hex64 =
            |v: &Option<Spanned<Vec<String>>>, key: &str| -> Result<Vec<String>, PolicyError> {
                let Some(v) = v else { return Ok(Vec::new()) };
                for h in v.get_ref() {
                    if h.len() != 64
                        || !h
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        return Err(cx.err(
                            Some(v.span()),
                            key,
                            format!("`{h}` is not 64 lowercase hex digits"),
                        ));
                    }
                }
                Ok(v.get_ref().clone())
            };
        let compute_tolerance_percent = match &s.compute_tolerance_percent {
            None => weightgate_schemas::estimate::DEFAULT_TOLERANCE_PERCENT,
            Some(t) if *t.get_ref() <= 99 => *t.get_ref(),
            Some(t) => {
                return Err(cx.err(
                    Some(t.span()),
                    "policy.compute_tolerance_percent",
                    "must be between 0 and 99 (percent a claim may lie below its own estimate)",
                ));
            }
        };
        let cross_check = match (&s.cross_check_factor, &s.cross_check_band) {
            (None, None) => None,
            (Some(f), Some(b)) => Some(CrossCheck {
                factor: cx.factor(f, "policy.cross_check_factor")?,
                band: cx.factor(b, "policy.cross_check_band")?,
            }),
            (Some(f), None) => {
                return Err(cx.err(
                    Some(f.span()),
                    "policy.cross_check_band",
                    "missing: how close to a threshold (a factor such as \"10\") the cross-check applies",
                ));
            }
            (None, Some(b)) => {
                return Err(cx.err(
                    Some(b.span()),
                    "policy.cross_check_factor",
                    "missing: the factor (such as \"1.5\") within which the 6nd and hardware estimates must agree",
                ));
            }
        };
        let mut known_base_models = Vec::new();
        for (i, k) in raw.known_base_model.iter().enumerate() {
            let key = format!("known_base_model[{i}]");
            let hex = k.root_sha256.get_ref();
            if weightgate_schemas::Digest::from_hex(hex).is_none() {
                return Err(cx.err(
                    Some(k.root_sha256.span()),
                    &format!("{key}.root_sha256"),
                    format!("`{hex}` is not 64 lowercase hex digits"),
                ));
            }
            known_base_models.push(KnownBaseModel {
                name: k.name.get_ref().clone(),
                root_sha256: hex.clone(),
                ops: cx.ops(&k.ops, &format!("{key}.ops"))?,
            });
        }
        Ok(Policy {
            name: s.name.clone(),
            min_signatures,
            verify_digest: s.verify_digest.unwrap_or(VerifyDigest::Blake3),
            clock_skew_seconds: i64::from(s.clock_skew_seconds.unwrap_or(300)),
            compute_margin,
            compute_tolerance_percent,
            require_compute_inputs: s.require_compute_inputs.unwrap_or(false),
            cross_check,
            require_base_attestation: s.require_base_attestation.unwrap_or(false),
            known_base_models,
            trusted_keys,
            issuers,
            revoked_keys: hex64(&raw.revoked.keys, "revoked.keys")?,
            revoked_attestations: hex64(&raw.revoked.attestations, "revoked.attestations")?,
            revoked_grants: hex64(&raw.revoked.grants, "revoked.grants")?,
            regimes,
            destination_header: s.destination_header.clone(),
            model_signing,
            require_model_signature,
            require_lei: s.require_lei.unwrap_or(false),
            provenance_only: false,
            namespaces,
        })
    }

    /// The effective policy, resolved, as JSON (for `weightgate policy check`).
    pub fn effective(&self) -> serde_json::Value {
        let key = |k: &TrustedKey| {
            serde_json::json!({
                "name": k.name, "keyid": k.keyid, "valid_from": k.valid_from, "valid_until": k.valid_until,
            })
        };
        serde_json::json!({
            "name": self.name,
            "min_signatures": self.min_signatures,
            "verify_digest": self.verify_digest,
            "clock_skew_seconds": self.clock_skew_seconds,
            "compute_margin": self.compute_margin.to_decimal(),
            "compute_tolerance_percent": self.compute_tolerance_percent,
            "require_compute_inputs": self.require_compute_inputs,
            "cross_check": self.cross_check.map(|c| serde_json::json!({
                "factor": c.factor.to_decimal(), "band": c.band.to_decimal(),
            })),
            "require_base_attestation": self.require_base_attestation,
            "known_base_models": self.known_base_models.iter().map(|k| serde_json::json!({
                "name": k.name, "root_sha256": k.root_sha256, "ops": k.ops.to_scientific(),
            })).collect::<Vec<_>>(),
            "trusted_keys": self.trusted_keys.iter().map(key).collect::<Vec<_>>(),
            "issuers": self.issuers.iter().map(|i| { let mut v = key(&i.key); v["authority"] = i.authority.clone().into(); v }).collect::<Vec<_>>(),
            "revoked": { "keys": self.revoked_keys, "attestations": self.revoked_attestations, "grants": self.revoked_grants },
            "regimes": self.regimes.iter().map(regime_json).collect::<Vec<_>>(),
            "destination_header": self.destination_header,
            "model_signing_keys": self.model_signing.keys.iter().map(|k| serde_json::json!({
                "name": k.name, "curve": k.key.curve().name(), "hint": k.key.hint(),
            })).collect::<Vec<_>>(),
            "model_signing_certificates": self.model_signing.certificates.iter().map(|c| serde_json::json!({
                "name": c.name, "anchors": c.anchors.len(), "identities": c.identities,
            })).collect::<Vec<_>>(),
            "model_signing_sigstore": self.model_signing.sigstore.iter().map(|t| serde_json::json!({
                "trust_root": t.root.name,
                "identities": t.identities.iter().map(|i| serde_json::json!({
                    "identity": i.identity, "issuer": i.issuer,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "require_model_signature": self.require_model_signature,
            "require_lei": self.require_lei,
            "namespaces": self.namespaces.iter().map(|n| serde_json::json!({
                "name": n.name, "keys": n.key_names,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A regime as `policy presets --json` and `policy check --json` show it: everything it checks,
/// with dates, scope, confidence and source.
pub fn regime_json(r: &Regime) -> serde_json::Value {
    let date = |t: Option<i64>| {
        t.and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
    };
    serde_json::json!({
        "id": r.id, "title": r.title, "source": r.source, "confidence": r.confidence,
        "scope": r.scope, "status": r.status, "historical": r.historical,
        "threshold": r.threshold.to_scientific(), "comparator": r.comparator.as_str(),
        "margin": r.margin.to_decimal(),
        "counts": r.counts.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "counting": r.counting,
        "synthetic_data_counts_above_permille": r.synthetic_data_counts_above_permille,
        "requires": r.requires.iter().map(|q| serde_json::json!({
            "kind": q.kind.as_str(), "from": q.from.as_str(),
        })).collect::<Vec<_>>(),
        "large_developer_revenue_usd": r.large_developer_revenue_usd,
        "derived": r.derived.as_ref().map(|d| serde_json::json!({
            "provider_above_fraction": format!("1/{}", d.divisor),
            "unknown_base_systemic": d.unknown_base_systemic.to_scientific(),
            "unknown_base_other": d.unknown_base_other.to_scientific(),
            "confidence": d.confidence,
        })),
        "transitional": r.transitional.as_ref().map(|t| serde_json::json!({
            "placed_before": date(Some(t.placed_before)), "until": date(Some(t.until)),
            "confidence": t.confidence,
        })),
        "notification_days": r.notification_days,
        "open_weights": r.open_weights.as_ref().map(|o| serde_json::json!({
            "excluded": true,
            "back_in_scope_above_fraction": o.back_in_scope_divisor.map(|d| format!("1/{d}")),
            "back_in_scope_above_ops": o.back_in_scope_ops.map(|x| x.to_scientific()),
            "confidence": o.confidence,
        })),
        "in_force_from": date(r.in_force_from), "in_force_until": date(r.in_force_until),
        "applies_to": r.applies_to, "embargoed": r.embargoed,
        "exception_destinations": r.exception_destinations, "exempt_domestic": r.exempt_domestic,
        "accepted_authorities": r.accepted_authorities, "require_grant": r.require_grant,
        "assume_in_force": r.assume_in_force, "default_active": r.default_active,
    })
}
