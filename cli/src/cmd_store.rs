//! `weightgate store gc --store DIR|s3://BUCKET/PREFIX [--grace DURATION]`: removes what no
//! admitted revision names, and what killed admissions left behind, once past the grace period.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::Exit;
use crate::terminal::say;
use weightgate_verifier::gate::store::{self, StoreOptions};

#[derive(Args, Debug)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Remove unreferenced blobs, envelopes, grants and signature files, and the staging
    /// folders or unfinished multipart uploads of killed admissions, older than --grace.
    Gc(GcArgs),
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// The store: a folder, or s3://BUCKET/PREFIX (endpoint, region and credentials from the
    /// AWS_* environment variables).
    #[arg(long, value_name = "DIR|URL")]
    pub store: String,
    /// Keep unreferenced objects younger than this (an admission in progress writes its blobs
    /// before the record naming them): seconds, or a number with s, m, h or d.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub grace: Duration,
}

/// `90`, `90s`, `15m`, `24h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: use seconds or N with s, m, h or d"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use s, m, h or d)")),
    };
    n.checked_mul(per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is too long"))
}

pub fn run(args: StoreArgs) -> anyhow::Result<Exit> {
    match args.command {
        StoreCommand::Gc(gc) => run_gc(gc),
    }
}

fn run_gc(args: GcArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(store::open(&args.store, StoreOptions::default()))?;
    let report = rt.block_on(store.gc(args.grace))?;
    for name in &report.removed {
        say!("removed {name}");
    }
    say!(
        "{}: {} revision(s) read, {} removed, {} unfinished upload(s) or staging folder(s) cleared, {} unreferenced kept (younger than the grace period)",
        store.location(),
        report.revisions,
        report.removed.len(),
        report.abandoned,
        report.kept_recent
    );
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604800));
        for bad in ["", "h", "1w", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
