//! Phone numbers to E.164, with Brazil (55) as the default country.
//!
//! Brazilian mobiles gained a ninth digit (a leading 9 after the area code); numbers still
//! arrive in both forms, so the national form without it is completed to match the other.

/// `+<digits>` for a plausible number, else `None`.
pub fn normalise(raw: &str, code: Option<&str>) -> Option<String> {
    let raw = raw.trim();
    if raw.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let international = raw.starts_with('+') || raw.starts_with("00");
    let mut digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if raw.starts_with("00") {
        digits = digits[2..].to_owned();
    }
    let code: String = code
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if !international && !code.is_empty() {
        // Hotmart's `checkout_phone_code` is the country code ("55") in practice; a
        // two-digit code before an 8–9 digit number is an area code.
        if digits.starts_with(&code) && digits.len() >= 12 {
            // The number already carries its country code.
        } else if code == "55" || digits.len() >= 10 {
            digits = format!("{code}{digits}");
        } else if code.len() == 2 && (8..=9).contains(&digits.len()) {
            digits = format!("55{code}{digits}");
        } else {
            digits = format!("{code}{digits}");
        }
    } else if !international {
        // National Brazilian forms: with or without a trunk 0, 10 or 11 digits.
        let national = digits.trim_start_matches('0');
        if (10..=11).contains(&national.len()) {
            digits = format!("55{national}");
        }
    }
    if let Some(national) = digits.strip_prefix("55")
        && national.len() == 10
        && matches!(national.as_bytes()[2], b'6'..=b'9')
    {
        digits = format!("55{}9{}", &national[..2], &national[2..]);
    }
    (8..=15)
        .contains(&digits.len())
        .then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn brazilian_numbers_in_every_form_match() {
        let expected = Some("+5511999990000".to_owned());
        for (raw, code) in [
            ("+55 11 99999-0000", None),
            ("11999990000", Some("55")),
            ("(11) 99999-0000", None),
            ("011 99999-0000", None),
            ("5511999990000", Some("55")),
            ("99999-0000", Some("11")),
        ] {
            assert_eq!(normalise(raw, code), expected, "{raw} {code:?}");
        }
    }

    #[test]
    fn the_ninth_digit_is_added_to_old_mobile_numbers_only() {
        assert_eq!(
            normalise("+55 11 9999-0000", None).as_deref(),
            Some("+5511999990000")
        );
        assert_eq!(
            normalise("(11) 8888-0000", None).as_deref(),
            Some("+5511988880000")
        );
        // Landlines start with 2–5 and keep 8 digits.
        assert_eq!(
            normalise("(11) 3333-0000", None).as_deref(),
            Some("+551133330000")
        );
    }

    #[test]
    fn foreign_and_garbage_numbers() {
        assert_eq!(
            normalise("+1 415 555 0100", None).as_deref(),
            Some("+14155550100")
        );
        assert_eq!(normalise("+55 11 9a4f5-d5c1", None), None);
        assert_eq!(normalise("123", None), None);
        assert_eq!(normalise("", None), None);
    }
}
