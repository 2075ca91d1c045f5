//! Operation counts: exact integers, because 10^26 exceeds u64 and thresholds compare exactly.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A count of training operations (integer or floating-point; 1 FMA = 2 operations).
///
/// CBOR: a plain unsigned integer up to 2^64-1, a tag-2 bignum above (RFC 8949 §3.4.3).
/// JSON: a decimal string, since JSON numbers lose precision above 2^53 in most readers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Ops(pub u128);

impl Ops {
    pub const ZERO: Ops = Ops(0);

    pub fn checked_add(self, other: Ops) -> Option<Ops> {
        self.0.checked_add(other.0).map(Ops)
    }

    /// Scientific form for people: `3.2e25`, exact (every significant digit kept); numbers below
    /// 10^6 as they are.
    pub fn to_scientific(&self) -> String {
        let digits = self.0.to_string();
        if digits.len() <= 6 {
            return digits;
        }
        let exp = digits.len() - 1;
        let (first, rest) = digits.split_at(1);
        let rest = rest.trim_end_matches('0');
        if rest.is_empty() {
            format!("{first}e{exp}")
        } else {
            format!("{first}.{rest}e{exp}")
        }
    }
}

impl From<u64> for Ops {
    fn from(v: u64) -> Self {
        Ops(u128::from(v))
    }
}

impl fmt::Display for Ops {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a count did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}`: {problem}")]
pub struct OpsParseError {
    input: String,
    problem: &'static str,
}

impl FromStr for Ops {
    type Err = OpsParseError;

    /// Accepts `123`, `1_000`, `1e26`, `3.2e25`, `3.2E+25`; refuses anything that is not an exact
    /// non-negative integer below 2^128 (`1.5`, `1e-3`, `-1`, `1.23e1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |problem| OpsParseError {
            input: s.to_string(),
            problem,
        };
        let t = s.trim().replace('_', "");
        let (mantissa, exp) = match t.split_once(['e', 'E']) {
            Some((m, e)) => {
                let e = e.strip_prefix('+').unwrap_or(e);
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("the exponent must be a non-negative integer"));
                }
                // Long exponents only matter for zero; cap them so parsing stays cheap.
                (m, e.parse::<u32>().unwrap_or(u32::MAX))
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
        let digits = format!("{int_part}{}", frac_part.trim_end_matches('0'));
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            return Ok(Ops(0));
        }
        let frac_len = frac_part.trim_end_matches('0').len();
        let scale = (exp as usize)
            .checked_sub(frac_len)
            .ok_or_else(|| err("not an integer"))?;
        // 2^128 has 39 digits, so anything longer cannot fit.
        if digits.len() + scale > 39 {
            return Err(err("too large (at most 2^128 - 1)"));
        }
        let base: u128 = digits
            .parse()
            .map_err(|_| err("too large (at most 2^128 - 1)"))?;
        10u128
            .checked_pow(scale as u32)
            .and_then(|p| base.checked_mul(p))
            .map(Ops)
            .ok_or_else(|| err("too large (at most 2^128 - 1)"))
    }
}

impl Serialize for Ops {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&self.0)
        } else {
            s.serialize_u128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Ops {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let canonical = s == "0"
                || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
            if !canonical {
                return Err(de::Error::custom(
                    "operation counts are decimal strings without leading zeros",
                ));
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
    use crate::cbor::{from_slice_strict, to_vec};

    #[test]
    fn parses_exact_integers_in_any_common_form() {
        for (s, v) in [
            ("0", 0u128),
            ("123", 123),
            ("1_000", 1000),
            (" 42 ", 42),
            ("1e26", 10u128.pow(26)),
            ("1E26", 10u128.pow(26)),
            ("3.2e25", 32 * 10u128.pow(24)),
            ("3.20E+25", 32 * 10u128.pow(24)),
            ("6.0e23", 6 * 10u128.pow(23)),
            ("1.5e1", 15),
            ("0.5e1", 5),
            ("00012", 12),
            ("0e999999999999", 0),
            ("100000000000000000000000000", 10u128.pow(26)),
            ("340282366920938463463374607431768211455", u128::MAX),
        ] {
            assert_eq!(s.parse::<Ops>().unwrap(), Ops(v), "{s}");
        }
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "1e-3",
            "1.23e1",
            "abc",
            "1e39",
            "1e40",
            "e5",
            ".",
            "1e",
            "1e+",
            "1.2.3",
            "0x10",
            "340282366920938463463374607431768211456",
            "1e4294967296",
            "NaN",
            "inf",
        ] {
            assert!(bad.parse::<Ops>().is_err(), "{bad} accepted");
        }
        assert_eq!(
            "1.5".parse::<Ops>().unwrap_err().to_string(),
            "`1.5`: not an integer"
        );
    }

    #[test]
    fn prints_decimal_and_scientific() {
        assert_eq!(
            Ops(10u128.pow(26)).to_string(),
            "100000000000000000000000000"
        );
        assert_eq!(Ops(32 * 10u128.pow(24)).to_scientific(), "3.2e25");
        assert_eq!(Ops(10u128.pow(26)).to_scientific(), "1e26");
        assert_eq!(
            Ops(3_790_000_000_000_000_000_000_001).to_scientific(),
            "3.790000000000000000000001e24"
        );
        assert_eq!(Ops(999_999).to_scientific(), "999999");
        for v in [0, 7, 1_234_567, 10u128.pow(26), u128::MAX] {
            assert_eq!(Ops(v).to_scientific().parse::<Ops>().unwrap(), Ops(v));
        }
    }

    #[test]
    fn adds_without_overflow() {
        assert_eq!(Ops(2).checked_add(Ops(3)), Some(Ops(5)));
        assert_eq!(Ops(u128::MAX).checked_add(Ops(1)), None);
    }

    #[test]
    fn encodes_as_cbor_integer_and_json_string() {
        let e26 = Ops(10u128.pow(26));
        let enc = to_vec(&e26).unwrap();
        assert_eq!(enc[0], 0xc2, "bignum");
        assert_eq!(from_slice_strict::<Ops>(&enc, 100).unwrap(), e26);
        assert_eq!(to_vec(&Ops(24)).unwrap(), [0x18, 24]);
        assert_eq!(
            serde_json::to_string(&e26).unwrap(),
            "\"100000000000000000000000000\""
        );
        assert_eq!(
            serde_json::from_str::<Ops>("\"100000000000000000000000000\"").unwrap(),
            e26
        );
        for bad in ["1e26", "\"1e26\"", "\"01\"", "\"\"", "\"-1\"", "100"] {
            assert!(serde_json::from_str::<Ops>(bad).is_err(), "{bad}");
        }
    }
}
