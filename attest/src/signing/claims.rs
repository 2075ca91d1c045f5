//! The claims a lab makes about a release (`claims.toml`), checked before any hashing.
//!
//! Every problem names the field and, where the TOML parser kept its position, the line.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use weightgate_schemas::{
    BaseModel, Components, Compute, Digest, Entity, EstimationInputs, EstimationMethod, Model, Ops,
    Precision, Reference, ReferenceKind, Revenue, SCHEMA_VERSION, Statement, Subject, country,
    estimate::{self, ComputeProblem},
    lei,
};

use crate::hashing::CheckpointDigests;
use crate::reading::ParameterCount;
use crate::toml_error::{TomlError, TomlSource, read_toml_file};
use crate::toml_time::toml_time;

/// A claims problem: `FILE:LINE: FIELD: PROBLEM`, the same type as a policy's.
pub type ClaimsError = TomlError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsFile {
    model: ModelClaims,
    compute: ComputeClaims,
    entity: EntityClaims,
    #[serde(default, rename = "reference")]
    references: Vec<ReferenceClaims>,
    #[serde(default)]
    attestation: AttestationClaims,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelClaims {
    name: Spanned<String>,
    version: Spanned<String>,
    open_weights: bool,
    /// First placed on the EU market.
    #[serde(default)]
    placed_on_market: Option<Spanned<toml::value::Datetime>>,
}

/// Operation counts: TOML integers stop at 2^63, so larger ones are strings ("3.2e25").
/// An unquoted `3.2e25` is a TOML float, which cannot hold most such counts exactly: it is
/// read again from its source text, so it is taken exactly or refused, never rounded.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum OpsValue {
    Int(u64),
    Text(String),
    /// A TOML float (or negative integer); only its source text is used.
    Number(#[allow(dead_code)] f64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComputeClaims {
    method: Spanned<String>,
    total: Spanned<OpsValue>,
    pre_training: Spanned<OpsValue>,
    #[serde(default)]
    post_training: Option<Spanned<OpsValue>>,
    #[serde(default)]
    synthetic_data: Option<Spanned<OpsValue>>,
    /// Per mille of training spent on synthetic data from one unpublished model.
    #[serde(default)]
    synthetic_data_share_permille: Option<Spanned<u32>>,
    #[serde(default)]
    base_model: Option<BaseModelClaims>,
    #[serde(default)]
    inputs: InputsClaims,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseModelClaims {
    name: Spanned<String>,
    root_sha256: Spanned<String>,
    #[serde(default)]
    attestation_sha256: Option<Spanned<String>>,
    #[serde(default)]
    ops: Option<Spanned<OpsValue>>,
    #[serde(default)]
    systemic_risk: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InputsClaims {
    source: Option<Spanned<String>>,
    params_total: Option<Spanned<u64>>,
    params_active: Option<Spanned<u64>>,
    tokens: Option<Spanned<OpsValue>>,
    accelerator: Option<String>,
    accelerator_count: Option<u64>,
    accelerator_hours: Option<u64>,
    peak_flops_per_accelerator: Option<Spanned<OpsValue>>,
    /// The numeric precision the peak is for (`bf16`, `fp8`, ...).
    precision: Option<Spanned<String>>,
    utilisation_permille: Option<Spanned<u32>>,
    /// Why utilisation lies outside the plausible range; signed with the rest.
    utilisation_justification: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityClaims {
    legal_name: Spanned<String>,
    /// Optional: no regime requires an LEI.
    #[serde(default)]
    lei: Option<Spanned<String>>,
    country: Spanned<String>,
    parent_country: Spanned<String>,
    contact: Spanned<String>,
    /// Annual gross revenue with affiliates, US dollars, and the year it is for.
    #[serde(default)]
    revenue_usd: Option<Spanned<i64>>,
    #[serde(default)]
    revenue_fiscal_year: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceClaims {
    kind: Spanned<String>,
    #[serde(default)]
    holder: Option<Spanned<String>>,
    #[serde(default)]
    made_at: Option<Spanned<toml::value::Datetime>>,
    authority: Spanned<String>,
    number: Spanned<String>,
    #[serde(default)]
    destinations: Option<Spanned<Vec<String>>>,
    valid_from: Spanned<toml::value::Datetime>,
    #[serde(default)]
    valid_until: Option<Spanned<toml::value::Datetime>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AttestationClaims {
    #[serde(default)]
    expires: Option<Spanned<toml::value::Datetime>>,
}

/// The attestation would be expired when it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attestation.expires: is not after the time of signing")]
pub struct ExpiresBeforeSigning;

/// Checked claims, ready to become a [`Statement`] once the checkpoint is hashed.
#[derive(Debug, Clone)]
pub struct Claims {
    pub model: Model,
    pub compute: Compute,
    pub entity: Entity,
    pub references: Vec<Reference>,
    pub expires_at: Option<i64>,
}

struct Ctx<'a> {
    source: TomlSource<'a>,
}

impl Ctx<'_> {
    fn err<T>(
        &self,
        span: Option<std::ops::Range<usize>>,
        field: &str,
        problem: impl Into<String>,
    ) -> Result<T, ClaimsError> {
        Err(self.source.error(span, field, problem))
    }

    fn ops(&self, v: &Spanned<OpsValue>, field: &str) -> Result<Ops, ClaimsError> {
        match v.get_ref() {
            OpsValue::Int(n) => Ok(Ops(*n as u128)),
            OpsValue::Text(t) => match t.parse::<Ops>() {
                Ok(o) => Ok(o),
                Err(e) => self.err(
                    Some(v.span()),
                    field,
                    format!("`{t}` is not an operation count: {e}"),
                ),
            },
            OpsValue::Number(_) => {
                let literal = self.source.text.get(v.span()).unwrap_or("").trim();
                match literal.parse::<Ops>() {
                    Ok(o) => Ok(o),
                    Err(e) => {
                        let e = e.to_string();
                        let why = e.rsplit_once("`: ").map_or(e.as_str(), |(_, w)| w);
                        self.err(
                            Some(v.span()),
                            field,
                            format!(
                                "`{literal}` is not an operation count: {why}; write counts as integers or quoted, e.g. \"3.2e25\""
                            ),
                        )
                    }
                }
            }
        }
    }

    fn opt_ops(&self, v: &Option<Spanned<OpsValue>>, field: &str) -> Result<Ops, ClaimsError> {
        v.as_ref().map_or(Ok(Ops(0)), |v| self.ops(v, field))
    }

    fn country(&self, v: &Spanned<String>, field: &str) -> Result<String, ClaimsError> {
        if country::is_country(v.get_ref()) {
            Ok(v.get_ref().clone())
        } else {
            self.err(
                Some(v.span()),
                field,
                format!(
                    "`{}` is not an ISO 3166-1 alpha-2 country code (e.g. `DE`, `US`)",
                    v.get_ref()
                ),
            )
        }
    }

    fn non_empty(&self, v: &Spanned<String>, field: &str) -> Result<String, ClaimsError> {
        if v.get_ref().trim().is_empty() {
            self.err(Some(v.span()), field, "must not be empty")
        } else {
            Ok(v.get_ref().clone())
        }
    }

    fn digest(&self, v: &Spanned<String>, field: &str) -> Result<Digest, ClaimsError> {
        match Digest::from_hex(v.get_ref()) {
            Some(d) => Ok(d),
            None => self.err(Some(v.span()), field, "must be 64 lowercase hex digits"),
        }
    }

    fn time(&self, v: &Spanned<toml::value::Datetime>, field: &str) -> Result<i64, ClaimsError> {
        match toml_time(v.get_ref()) {
            Ok(t) => Ok(t),
            Err(e) => self.err(Some(v.span()), field, e.to_string()),
        }
    }
}

impl Claims {
    /// Reads and checks a claims file against the checkpoint's header parameter counts.
    pub fn load(path: &Path, params: &ParameterCount) -> Result<Self, ClaimsError> {
        let text = read_toml_file(path)?;
        Self::parse(&text, &path.display().to_string(), params)
    }

    /// Parses and checks claims text; `source_name` names it in errors.
    pub fn parse(
        text: &str,
        source_name: &str,
        params: &ParameterCount,
    ) -> Result<Self, ClaimsError> {
        let source = TomlSource {
            text,
            name: source_name,
        };
        let cx = Ctx { source };
        let raw: ClaimsFile = source.parse()?;

        let model = Model {
            name: cx.non_empty(&raw.model.name, "model.name")?,
            version: cx.non_empty(&raw.model.version, "model.version")?,
            open_weights: raw.model.open_weights,
            placed_on_market: raw
                .model
                .placed_on_market
                .as_ref()
                .map(|v| cx.time(v, "model.placed_on_market"))
                .transpose()?,
        };

        let c = &raw.compute;
        let method = match c.method.get_ref().as_str() {
            "6nd" => EstimationMethod::SixNd,
            "hardware" => EstimationMethod::Hardware,
            "measured" => EstimationMethod::Measured,
            other => {
                return cx.err(
                    Some(c.method.span()),
                    "compute.method",
                    format!("`{other}` is not one of `6nd`, `hardware`, `measured`"),
                );
            }
        };
        let base_model = match &c.base_model {
            None => None,
            Some(b) => {
                if b.ops.is_none() && b.systemic_risk.is_none() {
                    return cx.err(
                        Some(b.name.span()),
                        "compute.base_model",
                        "without `ops` (base compute unknown), say `systemic_risk = true|false`: the EU guidelines' fallback depends on it",
                    );
                }
                Some(BaseModel {
                    name: cx.non_empty(&b.name, "compute.base_model.name")?,
                    root_sha256: cx.digest(&b.root_sha256, "compute.base_model.root_sha256")?,
                    attestation_sha256: b
                        .attestation_sha256
                        .as_ref()
                        .map(|a| cx.digest(a, "compute.base_model.attestation_sha256"))
                        .transpose()?,
                    ops: b
                        .ops
                        .as_ref()
                        .map(|o| cx.ops(o, "compute.base_model.ops"))
                        .transpose()?,
                    systemic_risk: b.systemic_risk,
                })
            }
        };
        let components = Components {
            pre_training: cx.ops(&c.pre_training, "compute.pre_training")?,
            post_training: cx.opt_ops(&c.post_training, "compute.post_training")?,
            synthetic_data: cx.opt_ops(&c.synthetic_data, "compute.synthetic_data")?,
            synthetic_data_share_permille: match &c.synthetic_data_share_permille {
                None => None,
                Some(s) => match u16::try_from(*s.get_ref()) {
                    Ok(permille) if permille <= 1000 => Some(permille),
                    _ => {
                        return cx.err(
                            Some(s.span()),
                            "compute.synthetic_data_share_permille",
                            format!("{} is not a share in per mille (0-1000)", s.get_ref()),
                        );
                    }
                },
            },
            base_model,
        };
        let total = cx.ops(&c.total, "compute.total")?;
        match components.sum() {
            Some(sum) if sum == total => {}
            Some(sum) => {
                return cx.err(Some(c.total.span()), "compute.total", format!(
                    "{total} is not the sum of its components ({sum} = pre_training + post_training + synthetic_data + base_model.ops)"
                ));
            }
            None => return cx.err(Some(c.total.span()), "compute.total", "components overflow"),
        }

        let i = &c.inputs;
        if let Some(pt) = &i.params_total
            && *pt.get_ref() != params.total
        {
            return cx.err(
                Some(pt.span()),
                "compute.inputs.params_total",
                format!(
                    "claims {} parameters but the safetensors headers hold {}",
                    pt.get_ref(),
                    params.total
                ),
            );
        }
        if let Some(pa) = &i.params_active
            && *pa.get_ref() > params.total
        {
            return cx.err(
                Some(pa.span()),
                "compute.inputs.params_active",
                format!(
                    "{} active parameters exceed the {} parameters in the safetensors headers",
                    pa.get_ref(),
                    params.total
                ),
            );
        }
        let precision = match &i.precision {
            None => None,
            Some(p) => match p.get_ref().parse::<Precision>() {
                Ok(p) => Some(p),
                Err(e) => return cx.err(Some(p.span()), "compute.inputs.precision", e),
            },
        };
        if let Some(u) = &i.utilisation_permille
            && *u.get_ref() > 1000
        {
            return cx.err(
                Some(u.span()),
                "compute.inputs.utilisation_permille",
                "must be at most 1000 (per mille)",
            );
        }
        let inputs = EstimationInputs {
            source: i
                .source
                .as_ref()
                .map(|s| cx.non_empty(s, "compute.inputs.source"))
                .transpose()?,
            // Parameters always come from the headers, so the verifier can hold the claim to the bytes.
            params_total: Some(params.total),
            params_active: i.params_active.as_ref().map(|p| *p.get_ref()),
            tokens: i
                .tokens
                .as_ref()
                .map(|t| cx.ops(t, "compute.inputs.tokens"))
                .transpose()?,
            accelerator: i.accelerator.clone(),
            accelerator_count: i.accelerator_count,
            accelerator_hours: i.accelerator_hours,
            peak_flops_per_accelerator: i
                .peak_flops_per_accelerator
                .as_ref()
                .map(|t| cx.ops(t, "compute.inputs.peak_flops_per_accelerator"))
                .transpose()?,
            utilisation_permille: i.utilisation_permille.as_ref().map(|u| *u.get_ref()),
            precision,
            utilisation_justification: i
                .utilisation_justification
                .as_ref()
                .map(|j| cx.non_empty(j, "compute.inputs.utilisation_justification"))
                .transpose()?,
        };
        let compute = Compute {
            total,
            components,
            method,
            inputs,
        };
        // The same check `verify` makes, at the default tolerance: never sign what it refuses.
        match estimate::check_compute(&compute, estimate::DEFAULT_TOLERANCE_PERCENT, true) {
            Ok(_) => {}
            Err(ComputeProblem::MissingInputs(m)) => {
                return cx.err(Some(c.method.span()), "compute.method", m);
            }
            Err(ComputeProblem::BelowEstimate(m)) => {
                return cx.err(
                    Some(c.total.span()),
                    "compute.total",
                    format!("compute.inconsistent_inputs: {m}"),
                );
            }
            Err(ComputeProblem::PeakBelowDatasheet(m)) => {
                return cx.err(
                    i.peak_flops_per_accelerator.as_ref().map(|p| p.span()),
                    "compute.inputs.peak_flops_per_accelerator",
                    format!("compute.peak_below_datasheet: {m}"),
                );
            }
            Err(ComputeProblem::UtilisationUnjustified(m)) => {
                return cx.err(
                    i.utilisation_permille.as_ref().map(|u| u.span()),
                    "compute.inputs.utilisation_permille",
                    format!("compute.utilisation_unjustified: {m}"),
                );
            }
        }

        let e = &raw.entity;
        // No LEI is allowed (a policy may require one); a malformed one is always an error.
        if let Some(l) = &e.lei
            && !lei::is_valid_lei(l.get_ref())
        {
            return cx.err(
                Some(l.span()),
                "entity.lei",
                format!(
                    "`{}` is not a valid LEI (ISO 17442: 20 characters, MOD 97-10 check digits)",
                    l.get_ref()
                ),
            );
        }
        let revenue = match (&e.revenue_usd, &e.revenue_fiscal_year) {
            (None, None) => None,
            (Some(usd), Some(year)) => {
                let Ok(usd_value) = u64::try_from(*usd.get_ref()) else {
                    return cx.err(
                        Some(usd.span()),
                        "entity.revenue_usd",
                        "must not be negative (US dollars, affiliates included)",
                    );
                };
                let fiscal_year = match u16::try_from(*year.get_ref()) {
                    Ok(y) if (1900..=9999).contains(&y) => y,
                    _ => {
                        return cx.err(
                            Some(year.span()),
                            "entity.revenue_fiscal_year",
                            format!("`{}` is not a year (1900..9999)", year.get_ref()),
                        );
                    }
                };
                Some(Revenue {
                    usd: usd_value,
                    fiscal_year,
                })
            }
            (Some(v), None) => {
                return cx.err(
                    Some(v.span()),
                    "entity.revenue_fiscal_year",
                    "missing: give the year the revenue is for",
                );
            }
            (None, Some(v)) => {
                return cx.err(
                    Some(v.span()),
                    "entity.revenue_usd",
                    "missing: give the revenue for that year",
                );
            }
        };
        let entity = Entity {
            revenue,
            legal_name: cx.non_empty(&e.legal_name, "entity.legal_name")?,
            lei: e.lei.as_ref().map(|l| l.get_ref().clone()),
            country: cx.country(&e.country, "entity.country")?,
            parent_country: cx.country(&e.parent_country, "entity.parent_country")?,
            contact: cx.non_empty(&e.contact, "entity.contact")?,
        };

        let mut references = Vec::new();
        for (n, r) in raw.references.iter().enumerate() {
            let field = |f: &str| format!("reference[{n}].{f}");
            let kind = match r.kind.get_ref().as_str() {
                "export-licence" => ReferenceKind::ExportLicence,
                "notification" => ReferenceKind::Notification,
                "safety-framework" => ReferenceKind::SafetyFramework,
                "transparency-report" => ReferenceKind::TransparencyReport,
                other => return cx.err(Some(r.kind.span()), &field("kind"), format!(
                    "`{other}` is not one of `export-licence`, `notification`, `safety-framework`, `transparency-report`"
                )),
            };
            let destinations = r
                .destinations
                .as_ref()
                .map(|d| d.get_ref().clone())
                .unwrap_or_default();
            if let Some(spanned) = &r.destinations {
                for d in spanned.get_ref() {
                    if !country::is_country(d) {
                        return cx.err(
                            Some(spanned.span()),
                            &field("destinations"),
                            format!("`{d}` is not an ISO 3166-1 alpha-2 country code"),
                        );
                    }
                }
            }
            let valid_from = cx.time(&r.valid_from, &field("valid_from"))?;
            let valid_until = r
                .valid_until
                .as_ref()
                .map(|v| cx.time(v, &field("valid_until")))
                .transpose()?;
            if let (Some(until), Some(span)) =
                (valid_until, r.valid_until.as_ref().map(|v| v.span()))
                && until <= valid_from
            {
                return cx.err(
                    Some(span),
                    &field("valid_until"),
                    "must be after valid_from",
                );
            }
            let holder = match &r.holder {
                None => None,
                Some(h) if lei::is_valid_lei(h.get_ref()) => Some(h.get_ref().clone()),
                Some(h) => {
                    return cx.err(
                        Some(h.span()),
                        &field("holder"),
                        format!(
                            "`{}` is not a valid LEI (ISO 17442: 20 characters, MOD 97-10 check digits)",
                            h.get_ref()
                        ),
                    );
                }
            };
            let made_at = r
                .made_at
                .as_ref()
                .map(|v| cx.time(v, &field("made_at")))
                .transpose()?;
            references.push(Reference {
                kind,
                holder,
                made_at,
                authority: cx.non_empty(&r.authority, &field("authority"))?,
                number: cx.non_empty(&r.number, &field("number"))?,
                destinations,
                valid_from,
                valid_until,
            });
        }
        let expires_at = raw
            .attestation
            .expires
            .as_ref()
            .map(|v| cx.time(v, "attestation.expires"))
            .transpose()?;

        Ok(Claims {
            model,
            compute,
            entity,
            references,
            expires_at,
        })
    }

    /// Fails if the attestation would already be expired at `issued_at`.
    pub fn check_times(&self, issued_at: i64) -> Result<(), ExpiresBeforeSigning> {
        match self.expires_at {
            Some(e) if e <= issued_at => Err(ExpiresBeforeSigning),
            _ => Ok(()),
        }
    }

    /// The statement for the hashed checkpoint.
    pub fn statement(&self, manifest: &CheckpointDigests, issued_at: i64) -> Option<Statement> {
        let files = manifest
            .files
            .iter()
            .map(|f| {
                Some(weightgate_schemas::FileEntry {
                    path: f.path.clone(),
                    size: f.size,
                    sha256: Digest(f.sha256?),
                    blake3: Digest(f.blake3?),
                    tensors: f.tensors.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| weightgate_schemas::TensorDigest {
                                name: t.name.clone(),
                                blake3: Digest(t.blake3),
                            })
                            .collect()
                    }),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Statement {
            schema_version: SCHEMA_VERSION,
            model: self.model.clone(),
            subject: Subject {
                files,
                root_sha256: Digest(manifest.root_sha256?),
            },
            compute: self.compute.clone(),
            entity: self.entity.clone(),
            references: self.references.clone(),
            issued_at,
            expires_at: self.expires_at,
        })
    }
}
