//! ISO 3166-1 alpha-2 country codes.

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted. Excludes the exceptionally
/// reserved (`EU`, `UK`, `EL`), transitionally reserved and user-assigned (`AA`, `QM`-`QZ`,
/// `XA`-`XZ`, `ZZ`, so also `XK`) codes, which name no country. Checked against Debian
/// `iso-codes` 4.15.0 (`iso_3166-1.json`) and tzdata `iso3166.tab`.
pub const ISO3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code, in upper case.
pub fn is_iso3166_alpha2(code: &str) -> bool {
    code.len() == 2 && ISO3166_ALPHA2.binary_search(&code).is_ok()
}

/// User-assigned codes (ISO 3166-1 leaves `AA`, `QM`-`QZ`, `XA`-`XZ`, `ZZ` to users) in real
/// use for a country: (code, country, who uses it). As of 2026-12-06 that is Kosovo alone.
/// Not listed: `XI` (Northern Ireland in EU/UK customs numbers, a part of `GB`, never a
/// geolocated destination), `EU` (exceptionally reserved, a union, not a country), `XX`/`T1`
/// (a geolocation service's "unknown" and "Tor"), and pseudo-locales such as `XA`/`XB`.
pub const USER_ASSIGNED_IN_USE: [(&str, &str, &str); 1] = [(
    "XK",
    "Kosovo",
    "the European Commission (since 2008), the IMF, SWIFT, Unicode CLDR and geolocation services such as Cloudflare and MaxMind",
)];

/// Whether `code` names a country: an assigned ISO 3166-1 alpha-2 code or a user-assigned
/// code in [`USER_ASSIGNED_IN_USE`], in upper case.
pub fn is_country(code: &str) -> bool {
    is_iso3166_alpha2(code) || USER_ASSIGNED_IN_USE.iter().any(|(c, ..)| *c == code)
}

/// How a destination the caller could not name as a country is carried in a decision: never a
/// code, so every check that depends on the destination treats it as unknown and refuses.
pub const UNKNOWN_DESTINATION: &str = "unknown";

/// The one normalisation of a destination, for the gate's trusted header and
/// `verify --destination`: surrounding ASCII whitespace trimmed, ASCII upper-cased, and then it
/// must name a country ([`is_country`]). Anything else (`XX` and `T1` from Cloudflare,
/// `EU`, `DEU`, `ZZ`, `D E`, empty, non-ASCII) is [`UNKNOWN_DESTINATION`].
pub fn normalise_destination(raw: &str) -> &'static str {
    let upper = raw
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_uppercase();
    match ISO3166_ALPHA2.binary_search(&upper.as_str()) {
        Ok(i) => ISO3166_ALPHA2[i],
        Err(_) => USER_ASSIGNED_IN_USE
            .iter()
            .find(|(c, ..)| *c == upper)
            .map_or(UNKNOWN_DESTINATION, |(c, ..)| c),
    }
}

/// A country as written in a policy list: it must already be in its normal form (an assigned
/// code in upper case, no spaces), so `"cn"` or `"RU "` is an error rather than a silent
/// non-match. Returns the problem to report.
pub fn check_policy_country(code: &str) -> Result<(), String> {
    if is_country(code) {
        return Ok(());
    }
    match normalise_destination(code) {
        UNKNOWN_DESTINATION => Err(format!(
            "`{}` is not an ISO 3166-1 alpha-2 country code",
            code.escape_debug()
        )),
        normal => Err(format!(
            "`{}` is not written as an ISO 3166-1 alpha-2 code: write `{normal}`",
            code.escape_debug()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_normalise_to_assigned_codes_or_unknown() {
        for (raw, want) in [
            ("DE", "DE"),
            ("de", "DE"),
            (" us\t", "US"),
            ("XX", UNKNOWN_DESTINATION),
            ("T1", UNKNOWN_DESTINATION),
            ("EU", UNKNOWN_DESTINATION),
            ("DEU", UNKNOWN_DESTINATION),
            ("ZZ", UNKNOWN_DESTINATION),
            ("D E", UNKNOWN_DESTINATION),
            ("", UNKNOWN_DESTINATION),
            ("D\u{c9}", UNKNOWN_DESTINATION),
            ("\u{1d403}\u{1d404}", UNKNOWN_DESTINATION),
            ("unknown", UNKNOWN_DESTINATION),
            ("xk", "XK"),
            ("XI", UNKNOWN_DESTINATION),
        ] {
            assert_eq!(normalise_destination(raw), want, "{raw:?}");
        }
        assert!(!is_iso3166_alpha2(UNKNOWN_DESTINATION));
    }

    #[test]
    fn policy_countries_must_be_written_normally() {
        assert!(check_policy_country("CN").is_ok());
        assert!(
            check_policy_country("cn")
                .unwrap_err()
                .contains("write `CN`")
        );
        assert!(
            check_policy_country("RU ")
                .unwrap_err()
                .contains("write `RU`")
        );
        assert!(
            check_policy_country("EU")
                .unwrap_err()
                .contains("not an ISO")
        );
    }

    #[test]
    fn list_is_sorted_unique_and_complete() {
        assert!(ISO3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ISO3166_ALPHA2
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
        assert_eq!(ISO3166_ALPHA2.len(), 249);
    }

    #[test]
    fn accepts_assigned_upper_case_codes_only() {
        for ok in [
            "DE", "US", "GB", "TW", "MO", "KR", "KP", "AX", "SS", "BQ", "ZW", "AD",
        ] {
            assert!(is_iso3166_alpha2(ok), "{ok}");
        }
        for bad in [
            "de", "De", "UK", "EU", "EL", "XK", "AA", "ZZ", "QM", "XA", "AN", "CS", "YU", "", "D",
            "DEU", "D\u{0}",
        ] {
            assert!(!is_iso3166_alpha2(bad), "{bad}");
            assert_eq!(is_country(bad), bad == "XK", "{bad}");
        }
    }
}
