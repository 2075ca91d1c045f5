//! `weightgate policy check FILE`: validate a policy and print what it means.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::Exit;
use crate::run_args::JsonArg;
use weightgate_verifier::policy::{Holder, Policy, Regime, presets, regime_json, usd};

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file and print the effective policy (presets resolved, keys loaded).
    Check {
        /// The policy file (TOML; see docs/policy.md).
        file: PathBuf,
        #[command(flatten)]
        output: JsonArg,
    },
    /// List the built-in regime presets: thresholds, counting, required references and who
    /// must hold them, dates, scope, confidence and source.
    Presets {
        #[command(flatten)]
        output: JsonArg,
    },
}

pub fn run(args: PolicyArgs) -> anyhow::Result<Exit> {
    match args.command {
        PolicyCommand::Check { file, output } => {
            let policy = Policy::load(&file)?;
            let eff = policy.effective();
            if output.json {
                println!("{}", serde_json::to_string_pretty(&eff)?);
            } else {
                println!("policy {}: valid", file.display());
                print_effective(&policy);
            }
        }
        PolicyCommand::Presets { output } => {
            let presets = presets();
            if output.json {
                let list: Vec<_> = presets.iter().map(regime_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in &presets {
                    print_regime(r, "");
                    println!();
                }
            }
        }
    }
    Ok(Exit::Ok)
}

fn date(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(
        |_| t.to_string(),
        |t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
    )
}

/// Everything a regime checks, one fact a line.
fn print_regime(r: &Regime, indent: &str) {
    let line = |label: &str, value: String| println!("{indent}  {label:<14} {value}");
    println!(
        "{indent}{}{}: {}",
        r.id,
        if r.historical { " [HISTORICAL]" } else { "" },
        r.title
    );
    line(
        "threshold",
        format!(
            "counted compute {} {}{}",
            r.comparator.as_str(),
            r.threshold.to_scientific(),
            if r.margin == weightgate_verifier::policy::Factor::ONE {
                String::new()
            } else {
                format!(
                    " after a x{} margin (the policy's choice, not law)",
                    r.margin.to_decimal()
                )
            }
        ),
    );
    line(
        "counts",
        format!(
            "{} ({})",
            r.counts
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            r.counting
        ),
    );
    let requires: Vec<String> = r
        .requires
        .iter()
        .map(|q| {
            let who = match q.from {
                Holder::Anyone => "anyone".to_string(),
                Holder::Developer => "the developer".to_string(),
                Holder::LargeDeveloper => format!(
                    "large developers only (revenue with affiliates above {}; no revenue for the preceding calendar year counts as large [choice])",
                    r.large_developer_revenue_usd.map_or("?".into(), usd)
                ),
                Holder::Provider => "the provider".to_string(),
            };
            format!("{} held by {who}", q.kind.as_str())
        })
        .collect();
    line("above it needs", requires.join("; "));
    if let Some(d) = &r.derived {
        line(
            "derived models",
            format!(
                "the modifier is the provider above 1/{} of the base compute (unknown base: 1/{} of {} with systemic risk, of {} otherwise) [{}]",
                d.divisor,
                d.divisor,
                d.unknown_base_systemic.to_scientific(),
                d.unknown_base_other.to_scientific(),
                d.confidence
            ),
        );
    }
    if let Some(o) = &r.open_weights {
        line(
            "open weights",
            format!(
                "published weights excluded{}{} [{}]",
                o.back_in_scope_divisor.map_or(String::new(), |d| format!(
                    "; back in scope above 1/{d} of the base"
                )),
                o.back_in_scope_ops.map_or(String::new(), |x| format!(
                    " or above {}",
                    x.to_scientific()
                )),
                o.confidence
            ),
        );
    }
    line(
        "in force",
        match (r.in_force_from, r.in_force_until) {
            (Some(f), Some(u)) if u <= f => format!(
                "never (from {} but ended {}){}",
                date(f),
                date(u),
                if r.assume_in_force {
                    "; SIMULATED by the policy"
                } else {
                    ""
                }
            ),
            (f, u) => format!(
                "{}{}{}",
                f.map_or("always".into(), |f| format!("from {}", date(f))),
                u.map_or(String::new(), |u| format!(" until {}", date(u))),
                if r.assume_in_force {
                    "; assumed in force by the policy"
                } else {
                    ""
                }
            ),
        },
    );
    if let Some(t) = &r.transitional {
        line(
            "transitional",
            format!(
                "placed on the market before {}: until {} [{}]",
                date(t.placed_before),
                date(t.until),
                t.confidence
            ),
        );
    }
    if let Some(days) = r.notification_days {
        line(
            "notification",
            format!("within {days} days (reported as a fact)"),
        );
    }
    line("status", r.status.clone());
    line("scope", r.scope.clone());
    if !r.applies_to.is_empty() {
        line("destinations", r.applies_to.join(","));
    }
    if !r.embargoed.is_empty() {
        line("refused", r.embargoed.join(","));
    }
    if !r.exception_destinations.is_empty() || r.exempt_domestic {
        line(
            "no reference",
            format!(
                "{}{}",
                r.exception_destinations.join(","),
                if r.exempt_domestic {
                    " and the entity's own country"
                } else {
                    ""
                }
            ),
        );
    }
    if !r.accepted_authorities.is_empty() {
        line(
            "authorities",
            format!(
                "references count only from: {}",
                r.accepted_authorities.join(", ")
            ),
        );
    }
    if r.require_grant {
        line(
            "grants",
            "references must be countersigned by an issuer".into(),
        );
    }
    line("confidence", r.confidence.clone());
    line("source", r.source.clone());
    line(
        "default",
        if r.default_active { "on" } else { "off" }.to_string(),
    );
}

fn print_effective(p: &Policy) {
    println!("  name                   {}", p.name);
    println!("  min_signatures         {}", p.min_signatures);
    println!("  verify_digest          {:?}", p.verify_digest);
    println!("  clock_skew_seconds     {}", p.clock_skew_seconds);
    println!(
        "  compute_margin         x{} (default for regimes; a policy choice, not law)",
        p.compute_margin.to_decimal()
    );
    println!(
        "  compute tolerance      a claim may lie {} % below its own estimate{}",
        p.compute_tolerance_percent,
        if p.require_compute_inputs {
            "; every method needs its inputs"
        } else {
            ""
        }
    );
    if let Some(x) = p.cross_check {
        println!(
            "  cross-check            within x{} of a threshold, 6nd and hardware must agree within x{}",
            x.band.to_decimal(),
            x.factor.to_decimal()
        );
    }
    if p.require_base_attestation {
        println!("  derived models         need the base model's attestation");
    }
    for k in &p.known_base_models {
        println!(
            "  known base model       {} {} ({})",
            k.root_sha256,
            k.name,
            k.ops.to_scientific()
        );
    }
    for k in &p.trusted_keys {
        println!("  trusted key            {} {}", k.keyid, k.name);
    }
    for i in &p.issuers {
        println!(
            "  issuer for {:<11} {} {}",
            i.authority, i.key.keyid, i.key.name
        );
    }
    for r in &p.regimes {
        println!("  regime");
        print_regime(r, "    ");
    }
    println!(
        "  revoked                {} key(s), {} attestation(s)",
        p.revoked_keys.len(),
        p.revoked_attestations.len()
    );
}
