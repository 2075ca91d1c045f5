//! Operation counts: exact integers, because 10^26 exceeds u64 and thresholds compare exactly.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A count of training operations (integer or floating-point).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Ops(pub u128);

impl Ops {
    pub fn checked_add(self, other: Ops) -> Option<Ops> {
        self.0.checked_add(other.0).map(Ops)
    }

    /// Scientific form for people: `3.2e25`; exact integers below 10^6 as they are.
    pub fn to_scientific(&self) -> String {
        let digits = self.0.to_string();
        if digits.len() <= 6 {
            return digits;
        }
        let exp = digits.len() - 1;
        let mantissa = digits.trim_end_matches('0');
        if mantissa.len() <= 1 {
            format!("{}e{exp}", &digits[..1])
        } else {
            format!("{}.{}e{exp}", &mantissa[..1], &mantissa[1..])
        }
    }
}

impl fmt::Display for Ops {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a count did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpsParseError(String);

impl FromStr for Ops {
    type Err = OpsParseError;

    /// Accepts `123`, `1_000`, `1e26`, `3.2e25`, `3.2E+25`; refuses anything not an exact integer.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |m: &str| OpsParseError(format!("`{s}`: {m}"));
        let t = s.trim().replace('_', "");
        if t.is_empty() {
            return Err(err("empty"));
        }
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(i) => {
                let e = t[i + 1..].strip_prefix('+').unwrap_or(&t[i + 1..]);
                let e: u32 = e
                    .parse()
                    .map_err(|_| err("exponent must be a non-negative integer"))?;
                (&t[..i], e)
            }
            None => (t.as_str(), 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("no digits"));
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(err("not a number"));
        }
        let frac = frac_part.trim_end_matches('0');
        let frac_len = frac.len() as u32;
        if frac_len > exp {
            return Err(err("not an integer"));
        }
        let digits = format!("{int_part}{frac}");
        let base: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| err("too large"))?
        };
        let scale = 10u128
            .checked_pow(exp - frac_len)
            .ok_or_else(|| err("too large"))?;
        base.checked_mul(scale)
            .map(Ops)
            .ok_or_else(|| err("too large"))
    }
}

impl Serialize for Ops {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.0.to_string())
        } else {
            s.serialize_u128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Ops {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(de::Error::custom("operation counts are decimal strings"));
            }
            s.parse::<u128>().map(Ops).map_err(de::Error::custom)
        } else {
            u128::deserialize(d).map(Ops)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_integers_in_any_common_form() {
        for (s, v) in [
            ("0", 0u128),
            ("123", 123),
            ("1_000", 1000),
            ("1e26", 10u128.pow(26)),
            ("3.2e25", 32 * 10u128.pow(24)),
            ("3.20E+25", 32 * 10u128.pow(24)),
            ("6.0e23", 6 * 10u128.pow(23)),
            ("100000000000000000000000000", 10u128.pow(26)),
        ] {
            assert_eq!(s.parse::<Ops>().unwrap(), Ops(v), "{s}");
        }
        for bad in ["", "-1", "1.5", "1e-3", "1.23e1", "abc", "1e40", "e5", "."] {
            assert!(bad.parse::<Ops>().is_err(), "{bad} accepted");
        }
        assert_eq!(Ops(32 * 10u128.pow(24)).to_scientific(), "3.2e25");
        assert_eq!(Ops(10u128.pow(26)).to_scientific(), "1e26");
    }
}
