//! The responsible entity: who trained and releases the model.

use serde::{Deserialize, Serialize};

/// The legal entity answerable for the release. Decoding checks the shape only; check
/// `lei` with [`crate::lei::is_valid_lei`] and the countries with
/// [`crate::country::is_iso3166_alpha2`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// Legal Entity Identifier (ISO 17442).
    pub lei: String,
    /// Where to reach the entity about this release (e-mail address or URL).
    pub contact: String,
    /// ISO 3166-1 alpha-2 country of the entity.
    pub country: String,
    pub legal_name: String,
    /// ISO 3166-1 alpha-2 country of the ultimate parent (export-control tiers key off it).
    pub parent_country: String,
}
