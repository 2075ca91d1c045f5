//! References to licences, notifications and published documents that a regime may demand.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A licence, notification or document reference, as issued by `authority`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub kind: ReferenceKind,
    /// LEI of the entity that holds the reference (made the notification, holds the licence,
    /// published the document); absent in older statements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// The authority's reference number (or, for published documents, a URL).
    pub number: String,
    /// Unix seconds: when the notification was made or the document published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_at: Option<i64>,
    pub authority: String,
    /// Unix seconds.
    pub valid_from: i64,
    /// Unix seconds, exclusive; absent means open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
    /// ISO 3166-1 alpha-2 codes the reference covers; empty means every destination.
    pub destinations: Vec<String>,
}

/// What a [`Reference`] is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceKind {
    /// An export licence (e.g. US BIS, ECCN 4E091).
    ExportLicence,
    /// A notification to an authority (e.g. EU AI Act Art. 52 to the Commission).
    Notification,
    /// A published frontier AI / safety framework (California SB 53, New York RAISE).
    SafetyFramework,
    /// A published transparency report (California SB 53).
    TransparencyReport,
}

impl ReferenceKind {
    pub const ALL: [ReferenceKind; 4] = [
        Self::ExportLicence,
        Self::Notification,
        Self::SafetyFramework,
        Self::TransparencyReport,
    ];

    /// Whether a reference of this kind ends at its `valid_until`. A notification does not:
    /// an EU AI Act Art. 52(1) notification tells the Commission that the threshold is met,
    /// once, and nothing in the Act makes it lapse.
    pub fn lapses(self) -> bool {
        !matches!(self, Self::Notification)
    }

    /// Whether a reference of this kind can be limited to destinations. A notification cannot:
    /// it is made to the Commission for the whole Union, not per member state.
    pub fn per_destination(self) -> bool {
        !matches!(self, Self::Notification)
    }

    /// The wire name, e.g. `export-licence`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExportLicence => "export-licence",
            Self::Notification => "notification",
            Self::SafetyFramework => "safety-framework",
            Self::TransparencyReport => "transparency-report",
        }
    }
}

impl fmt::Display for ReferenceKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReferenceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("`{s}` is not one of `export-licence`, `notification`, `safety-framework`, `transparency-report`")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_kebab_case_wire_names() {
        for k in ReferenceKind::ALL {
            assert_eq!(k.as_str().parse::<ReferenceKind>(), Ok(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
            assert_eq!(
                crate::cbor::to_vec(&k).unwrap(),
                crate::cbor::to_vec(k.as_str()).unwrap()
            );
        }
        assert!("export_licence".parse::<ReferenceKind>().is_err());
    }
}
