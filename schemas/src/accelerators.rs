//! Datasheet peaks of common accelerators (`accelerators.toml`): what a hardware estimate's
//! stated peak is held to.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::compute::Precision;
use crate::ops::Ops;

const TABLE: &str = include_str!("accelerators.toml");

/// One accelerator's dense peaks, with where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accelerator {
    pub name: String,
    pub aliases: Vec<String>,
    pub vendor: String,
    pub source: String,
    pub confidence: String,
    /// Where and when the figures were last compared with the vendor's (or a reproduction).
    pub checked: String,
    pub peaks: BTreeMap<Precision, Ops>,
}

impl Accelerator {
    /// The dense peak at `precision`, if the vendor lists one.
    pub fn peak(&self, precision: Precision) -> Option<Ops> {
        self.peaks.get(&precision).copied()
    }
}

/// The table and the date it was compiled.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub as_of: String,
    pub accelerators: Vec<Accelerator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    as_of: String,
    accelerator: Vec<RawAccelerator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccelerator {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    vendor: String,
    source: String,
    confidence: String,
    checked: String,
    peak: BTreeMap<Precision, String>,
}

fn parse(text: &str) -> Result<Table, String> {
    let raw: RawTable = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut accelerators = Vec::with_capacity(raw.accelerator.len());
    for a in raw.accelerator {
        let mut peaks = BTreeMap::new();
        for (p, v) in a.peak {
            let ops = v
                .parse::<Ops>()
                .map_err(|e| format!("{} {p}: {e}", a.name))?;
            peaks.insert(p, ops);
        }
        accelerators.push(Accelerator {
            name: a.name,
            aliases: a.aliases,
            vendor: a.vendor,
            source: a.source,
            confidence: a.confidence,
            checked: a.checked,
            peaks,
        });
    }
    Ok(Table {
        as_of: raw.as_of,
        accelerators,
    })
}

/// The shipped table (a test parses it, so it cannot ship broken; were it to, it is empty and
/// no peak is checked, never a panic).
pub fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| parse(TABLE).unwrap_or_default())
}

/// How names are compared: ASCII letters and digits only, lower case ("H100 SXM5" = "h100-sxm5").
fn key(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The accelerator a claim names, by name or alias.
pub fn find(name: &str) -> Option<&'static Accelerator> {
    let k = key(name);
    if k.is_empty() {
        return None;
    }
    table()
        .accelerators
        .iter()
        .find(|a| key(&a.name) == k || a.aliases.iter().any(|x| key(x) == k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_with_unique_names_and_sources() {
        let t = parse(TABLE).unwrap();
        assert_eq!(t.as_of, table().as_of);
        assert!(t.accelerators.len() >= 14);
        let mut keys = std::collections::BTreeSet::new();
        for a in &t.accelerators {
            assert!(
                !a.source.is_empty() && !a.confidence.is_empty() && !a.checked.is_empty(),
                "{}",
                a.name
            );
            assert!(!a.peaks.is_empty(), "{}", a.name);
            for n in std::iter::once(&a.name).chain(&a.aliases) {
                assert!(keys.insert(key(n)), "{n} names two accelerators");
            }
        }
    }

    #[test]
    fn names_match_loosely_and_peaks_are_dense() {
        let h100 = find("h100_sxm5").unwrap();
        assert_eq!(h100.name, "H100-SXM");
        // The guidelines' Model H figure, 989 TFLOP/s BF16 dense.
        assert_eq!(h100.peak(Precision::Bf16), Some(Ops(989_400_000_000_000)));
        assert_eq!(find("H100").unwrap().name, "H100-PCIe");
        assert_eq!(find("TPU v5p").unwrap().peak(Precision::Fp8), None);
        assert!(find("").is_none() && find("H1000").is_none());
    }
}
