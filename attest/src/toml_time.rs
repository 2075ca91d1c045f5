//! TOML dates and date-times as Unix seconds, for claims and policies alike.

/// A TOML date (midnight UTC) or offset date-time as Unix seconds (claims and policies).
pub fn toml_time(d: &toml::value::Datetime) -> Result<i64, String> {
    if d.date.is_some() && d.time.is_none() {
        let date: jiff::civil::Date = d.to_string().parse().map_err(|e| format!("{e}"))?;
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .map_err(|e| format!("{e}"));
    }
    if d.offset.is_none() {
        return Err(format!(
            "`{d}` has no time zone offset; write e.g. `{d}Z` or a plain date"
        ));
    }
    d.to_string()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| format!("`{d}`: {e}"))
}
