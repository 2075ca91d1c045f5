//! The responsible entity: who trained and releases the model.

use serde::{Deserialize, Serialize};

/// The legal entity answerable for the release. Decoding checks the shape only; check a
/// `lei` with [`crate::lei::is_valid_lei`] and the countries with
/// [`crate::country::is_country`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// Legal Entity Identifier (ISO 17442), when the entity has one: no regime requires one
    /// (a policy may, with `require_lei`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lei: Option<String>,
    /// Where to reach the entity about this release (e-mail address or URL).
    pub contact: String,
    /// ISO 3166-1 alpha-2 country of the entity.
    pub country: String,
    /// Annual gross revenue together with affiliates (California SB 53 and New York RAISE
    /// "large frontier developer"), if claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Revenue>,
    pub legal_name: String,
    /// ISO 3166-1 alpha-2 country of the ultimate parent (export-control tiers key off it).
    pub parent_country: String,
}

/// Annual gross revenue of an entity together with its affiliates, for one fiscal year.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Revenue {
    /// US dollars, affiliates included.
    pub usd: u64,
    /// The (calendar or fiscal) year the figure is for.
    pub fiscal_year: u16,
}
