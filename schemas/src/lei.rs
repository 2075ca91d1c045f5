//! Legal Entity Identifier (ISO 17442) check digits.
//!
//! 20 characters `[0-9A-Z]`, the last two digits, and ISO 7064 MOD 97-10 over the string with
//! letters mapped to numbers (A = 10 … Z = 35) gives 1, as for IBANs. This proves the format only:
//! whether an LEI is issued and active needs a GLEIF lookup.

/// Whether `lei` is a well-formed LEI with correct check digits (upper case only).
pub fn is_valid_lei(lei: &str) -> bool {
    let b = lei.as_bytes();
    b.len() == 20
        && b.iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b[18..].iter().all(u8::is_ascii_digit)
        && mod97(b) == 1
}

/// The two check digits for an 18-character prefix (`[0-9A-Z]`), or `None` if it is not one.
pub fn check_digits(prefix: &str) -> Option<String> {
    let b = prefix.as_bytes();
    if b.len() != 18
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return None;
    }
    let r = mod97(&[b, b"00"].concat());
    Some(format!("{:02}", 98 - r))
}

/// The number spelled by `s` (digits as is, letters A = 10 … Z = 35) modulo 97.
fn mod97(s: &[u8]) -> u32 {
    s.iter().fold(0u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_leis() {
        for lei in [
            "5493001KJTIIGC8Y1R12", // Bloomberg Finance L.P.
            "529900T8BM49AURSDO55",
            "724500VKKSH9QOLTFR81",
            "506700GE1G29325QX363",
            "54930084UKLVMY22DS16",
            "213800WSGIIZCXF1P572",
            "5493000IBP32UQZ0KL24",
            "4469000001AVO26P9X86",
        ] {
            assert!(is_valid_lei(lei), "{lei}");
            assert_eq!(
                check_digits(&lei[..18]).as_deref(),
                Some(&lei[18..]),
                "{lei}"
            );
        }
    }

    #[test]
    fn refuses_broken_leis() {
        for lei in [
            "969500T3MBS4SQAMHJ45", // wrong check digits
            "5493001KJTIIGC8Y1R13", // last digit changed
            "5493001KJTIIGC8Y1R21", // check digits swapped
            "5493001KJTIIGC8Y1R1A", // letter in a check-digit position
            "5493001KJTIIGC8Y1R1",  // 19 characters
            "5493001KJTIIGC8Y1R120",
            "5493001kjtiigc8y1r12", // lower case
            "5493001KJTIIGC8Y1R1 ",
            "5493001KJTIIGC-Y1R12",
            "",
            "ÄÄÄÄÄÄÄÄÄÄ", // 20 bytes, not ASCII
        ] {
            assert!(!is_valid_lei(lei), "{lei}");
        }
        assert_eq!(check_digits("969500KSV493XWY0PS").as_deref(), Some("33"));
        assert_eq!(check_digits("969500KSV493XWY0P"), None);
        assert_eq!(check_digits("969500KSV493XWY0Pé"), None);
    }
}
