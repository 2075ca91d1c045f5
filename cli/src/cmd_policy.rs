//! `weightgate policy check FILE`: validate a policy and print what it means.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::Outcome;
use weightgate_verifier::Policy;

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

pub fn run(args: PolicyArgs) -> anyhow::Result<Outcome> {
    match args.command {
        PolicyCommand::Check { file, json } => {
            let policy = Policy::load(&file)?;
            let eff = policy.effective();
            if json {
                println!("{}", serde_json::to_string_pretty(&eff)?);
            } else {
                println!("policy {}: valid", file.display());
                println!(
                    "{}",
                    toml::to_string_pretty(&eff).unwrap_or_else(|_| eff.to_string())
                );
            }
        }
        PolicyCommand::Presets => {
            for r in weightgate_verifier::presets() {
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
    Ok(Outcome::Ok)
}
