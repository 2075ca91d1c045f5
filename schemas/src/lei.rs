//! ISO 17442 Legal Entity Identifiers: 20 characters, ISO 7064 MOD 97-10 check digits.

/// True for a well-formed LEI whose check digits are right.
pub fn is_valid_lei(lei: &str) -> bool {
    let b = lei.as_bytes();
    if b.len() != 20
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        || !b[18..].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    // Letters become two digits (A=10 .. Z=35); the whole number mod 97 must be 1.
    let mut rem = 0u32;
    for &c in b {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_leis_pass_and_altered_ones_fail() {
        for good in [
            "5493001KJTIIGC8Y1R12",
            "529900T8BM49AURSDO55",
            "213800D1EI4B9WTWWD28",
            "HWUPKR0MPOU8FGXBT394",
        ] {
            assert!(is_valid_lei(good), "{good}");
        }
        for bad in [
            "5493001KJTIIGC8Y1R13",
            "5493001KJTIIGC8Y1R1",
            "5493001kjtiigc8y1r12",
            "5493001KJTIIGC8Y1RAB",
            "",
        ] {
            assert!(!is_valid_lei(bad), "{bad}");
        }
    }
}
