//! Policy files (TOML): which regimes are active, whom to trust, what to refuse.
//! Every error names the file, the line and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use weightgate_attest::keys::{key_id, parse_verifying_key};
use weightgate_schemas::{Ops, ReferenceKind, country};

mod regime;

use crate::stages::TrustedKey;
pub use regime::{Comparator, Context, Regime, RegimeOutcome, VerifiedGrant, evaluate};

const PRESETS: &str = include_str!("presets.toml");

/// A policy problem: `FILE:LINE: KEY: PROBLEM`.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}{}: {key}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    pub source_name: String,
    pub line: Option<usize>,
    pub key: String,
    pub problem: String,
}

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

/// A licence issuer whose grants count for references from `authority`.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub key: TrustedKey,
    pub authority: String,
}

/// A checked, fully resolved policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub min_signatures: usize,
    pub verify_digest: VerifyDigest,
    pub clock_skew_seconds: i64,
    pub compute_margin: Factor,
    pub plausibility_tolerance: Factor,
    pub trusted_keys: Vec<TrustedKey>,
    pub issuers: Vec<Issuer>,
    pub revoked_keys: Vec<String>,
    /// SHA-256 of revoked attestations' payloads (hex): cosigning does not change it.
    pub revoked_attestations: Vec<String>,
    pub regimes: Vec<Regime>,
    pub destination_header: Option<String>,
    /// ECDSA keys whose OpenSSF model-signing bundles (`model.sig`) are trusted.
    pub model_signing_keys: Vec<ModelSigningKey>,
    /// Deny unless a `model.sig` by one of [`Policy::model_signing_keys`] checks out too.
    pub require_model_signature: bool,
}

/// A key trusted for OpenSSF model-signing bundles.
#[derive(Debug, Clone)]
pub struct ModelSigningKey {
    pub name: String,
    pub key: weightgate_attest::keys::EcVerifyingKey,
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
    #[serde(default)]
    plausibility_tolerance: Option<Spanned<String>>,
    #[serde(default)]
    destination_header: Option<String>,
    #[serde(default)]
    require_model_signature: Option<Spanned<bool>>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegime {
    id: Spanned<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    source: String,
    threshold: Spanned<String>,
    comparator: Comparator,
    required: Spanned<Vec<String>>,
    #[serde(default)]
    in_force_from: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    in_force_until: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    applies_to: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    embargoed: Vec<String>,
    #[serde(default)]
    tier1: Vec<String>,
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
    text: &'a str,
    source_name: &'a str,
}

impl Cx<'_> {
    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        problem: impl Into<String>,
    ) -> PolicyError {
        PolicyError {
            source_name: self.source_name.to_string(),
            line: span.map(|s| {
                self.text[..s.start.min(self.text.len())]
                    .matches('\n')
                    .count()
                    + 1
            }),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn time(&self, v: &Spanned<toml::value::Datetime>, key: &str) -> Result<i64, PolicyError> {
        weightgate_attest::toml_time::toml_time(v.get_ref())
            .map_err(|e| self.err(Some(v.span()), key, e.to_string()))
    }

    fn countries(&self, v: &Spanned<Vec<String>>, key: &str) -> Result<Vec<String>, PolicyError> {
        for c in v.get_ref() {
            if !country::is_iso3166_alpha2(c) {
                return Err(self.err(
                    Some(v.span()),
                    key,
                    format!("`{c}` is not an ISO 3166-1 alpha-2 country code"),
                ));
            }
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

    fn regime(&self, r: &RawRegime, key: &str) -> Result<Regime, PolicyError> {
        let threshold: Ops = r.threshold.get_ref().parse().map_err(|e| {
            self.err(
                Some(r.threshold.span()),
                &format!("{key}.threshold"),
                format!("{e}"),
            )
        })?;
        Ok(Regime {
            id: r.id.get_ref().clone(),
            title: r.title.clone(),
            source: r.source.clone(),
            threshold,
            comparator: r.comparator,
            required: self.kinds(&r.required, &format!("{key}.required"))?,
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
            embargoed: r.embargoed.clone(),
            tier1: r.tier1.clone(),
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
        Ok(TrustedKey {
            name: k.name.get_ref().clone(),
            keyid: key_id(&vk),
            key: vk,
            valid_from,
            valid_until,
        })
    }
}

/// The built-in regime presets.
pub fn presets() -> Vec<Regime> {
    let raw: RawPresets = match toml::from_str(PRESETS) {
        Ok(r) => r,
        Err(_) => return Vec::new(), // a test parses the presets, so this cannot ship broken
    };
    let cx = Cx {
        text: PRESETS,
        source_name: "presets.toml",
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
        let text = weightgate_attest::io::read_capped_to_string(
            path,
            weightgate_attest::io::MAX_CONFIG_FILE_LEN,
        )
        .map_err(|e| PolicyError {
            source_name: path.display().to_string(),
            line: None,
            key: "file".into(),
            problem: format!("cannot read: {e}"),
        })?;
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// A policy that trusts exactly these keys, with the default regimes (`verify --trust`).
    pub fn trusting(keys: Vec<TrustedKey>) -> Self {
        Policy {
            name: "--trust".into(),
            min_signatures: 1,
            verify_digest: VerifyDigest::Blake3,
            clock_skew_seconds: 300,
            compute_margin: Factor::ONE,
            plausibility_tolerance: Factor {
                numerator: 3,
                denominator: 1,
            },
            trusted_keys: keys,
            issuers: Vec::new(),
            revoked_keys: Vec::new(),
            revoked_attestations: Vec::new(),
            regimes: presets().into_iter().filter(|r| r.default_active).collect(),
            destination_header: None,
            model_signing_keys: Vec::new(),
            require_model_signature: false,
        }
    }

    /// Parses policy text; `base` resolves key paths.
    pub fn parse(text: &str, source_name: &str, base: &Path) -> Result<Self, PolicyError> {
        let cx = Cx { text, source_name };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            PolicyError {
                source_name: source_name.to_string(),
                line,
                key: "TOML".into(),
                problem: e.message().to_string(),
            }
        })?;
        let s = &raw.policy;
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
        let require_model_signature = s
            .require_model_signature
            .as_ref()
            .is_some_and(|r| *r.get_ref());
        if let Some(r) = &s.require_model_signature
            && *r.get_ref()
            && model_signing_keys.is_empty()
        {
            return Err(cx.err(
                Some(r.span()),
                "policy.require_model_signature",
                "needs at least one [[model_signing_key]] (an ECDSA P-256/P-384/P-521 public key)",
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
        let factor = |v: &Option<Spanned<String>>,
                      key: &str,
                      default: Factor|
         -> Result<Factor, PolicyError> {
            match v {
                None => Ok(default),
                Some(v) => Factor::parse(v.get_ref()).map_err(|e| cx.err(Some(v.span()), key, e.0)),
            }
        };
        Ok(Policy {
            name: s.name.clone(),
            min_signatures,
            verify_digest: s.verify_digest.unwrap_or(VerifyDigest::Blake3),
            clock_skew_seconds: i64::from(s.clock_skew_seconds.unwrap_or(300)),
            compute_margin: factor(&s.compute_margin, "policy.compute_margin", Factor::ONE)?,
            plausibility_tolerance: factor(
                &s.plausibility_tolerance,
                "policy.plausibility_tolerance",
                Factor {
                    numerator: 3,
                    denominator: 1,
                },
            )?,
            trusted_keys,
            issuers,
            revoked_keys: hex64(&raw.revoked.keys, "revoked.keys")?,
            revoked_attestations: hex64(&raw.revoked.attestations, "revoked.attestations")?,
            regimes,
            destination_header: s.destination_header.clone(),
            model_signing_keys,
            require_model_signature,
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
            "plausibility_tolerance": self.plausibility_tolerance.to_decimal(),
            "trusted_keys": self.trusted_keys.iter().map(key).collect::<Vec<_>>(),
            "issuers": self.issuers.iter().map(|i| { let mut v = key(&i.key); v["authority"] = i.authority.clone().into(); v }).collect::<Vec<_>>(),
            "revoked": { "keys": self.revoked_keys, "attestations": self.revoked_attestations },
            "regimes": self.regimes.iter().map(|r| serde_json::json!({
                "id": r.id, "title": r.title, "source": r.source,
                "threshold": r.threshold.to_scientific(), "comparator": r.comparator.as_str(),
                "required": r.required.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "in_force_from": r.in_force_from, "in_force_until": r.in_force_until,
                "applies_to": r.applies_to, "embargoed": r.embargoed,
                "accepted_authorities": r.accepted_authorities, "require_grant": r.require_grant,
                "assume_in_force": r.assume_in_force,
            })).collect::<Vec<_>>(),
            "destination_header": self.destination_header,
            "model_signing_keys": self.model_signing_keys.iter().map(|k| serde_json::json!({
                "name": k.name, "curve": k.key.curve().name(), "hint": k.key.hint(),
            })).collect::<Vec<_>>(),
            "require_model_signature": self.require_model_signature,
        })
    }
}
