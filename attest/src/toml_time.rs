//! TOML dates and date-times as Unix seconds, for claims and policies alike.

/// Why a TOML date or date-time is not a point in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` has no time zone offset; write e.g. `{0}Z` or a plain date")]
    NoOffset(String),
    #[error("`{value}`: {problem}")]
    Invalid { value: String, problem: String },
}

/// A TOML date (midnight UTC) or offset date-time as Unix seconds (claims and policies).
pub fn toml_time(d: &toml::value::Datetime) -> Result<i64, TimeError> {
    let invalid = |problem: String| TimeError::Invalid {
        value: d.to_string(),
        problem,
    };
    if d.date.is_some() && d.time.is_none() {
        let date: jiff::civil::Date = d.to_string().parse().map_err(|e| invalid(format!("{e}")))?;
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .map_err(|e| invalid(format!("{e}")));
    }
    if d.offset.is_none() {
        return Err(TimeError::NoOffset(d.to_string()));
    }
    d.to_string()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| invalid(format!("{e}")))
}
