//! `weightgate policy check FILE`: validate a policy and print what it means.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::Exit;
use weightgate_verifier::policy::Policy;

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file and print the effective policy (presets resolved, keys loaded).
    Check {
        file: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the built-in regime presets.
    Presets,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<Exit> {
    match args.command {
        PolicyCommand::Check { file, json } => {
            let policy = Policy::load(&file)?;
            let eff = policy.effective();
            if json {
                println!("{}", serde_json::to_string_pretty(&eff)?);
            } else {
                println!("policy {}: valid", file.display());
                print_effective(&policy);
            }
        }
        PolicyCommand::Presets => {
            for r in weightgate_verifier::policy::presets() {
                println!(
                    "{:<26} {} {:<6} needs {:<40} {}{}",
                    r.id,
                    r.comparator.as_str(),
                    r.threshold.to_scientific(),
                    r.required
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" + "),
                    if r.default_active {
                        "on by default"
                    } else {
                        "off by default"
                    },
                    format_args!("  [{}]", r.source)
                );
            }
        }
    }
    Ok(Exit::Ok)
}

fn print_effective(p: &Policy) {
    println!("  name                   {}", p.name);
    println!("  min_signatures         {}", p.min_signatures);
    println!("  verify_digest          {:?}", p.verify_digest);
    println!("  clock_skew_seconds     {}", p.clock_skew_seconds);
    println!(
        "  compute_margin         x{}",
        p.compute_margin.to_decimal()
    );
    println!(
        "  plausibility_tolerance /{}",
        p.plausibility_tolerance.to_decimal()
    );
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
        println!(
            "  regime                 {} ({} {}, needs {}{}{})",
            r.id,
            r.comparator.as_str(),
            r.threshold.to_scientific(),
            r.required
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            if r.require_grant {
                ", countersigned"
            } else {
                ""
            },
            if r.assume_in_force {
                ", assumed in force"
            } else {
                ""
            }
        );
    }
    println!(
        "  revoked                {} key(s), {} attestation(s)",
        p.revoked_keys.len(),
        p.revoked_attestations.len()
    );
}
