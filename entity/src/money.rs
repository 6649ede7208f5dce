//! Money is kept in integer cents, read exactly from the decimal text Hotmart sends (a JSON
//! number's own digits, or a string), never through binary floating point arithmetic.

use serde_json::Value;

/// Prices above this (ten million in any currency) are taken for a mistake, not a sale.
pub const MAX_CENTS: i64 = 1_000_000_000;

/// A price read from a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Price {
    Absent,
    Cents(i64),
    /// Present but not usable as a deal's value, with the reason.
    Refused(String),
}

impl Price {
    pub fn cents(&self) -> Option<i64> {
        match self {
            Price::Cents(cents) => Some(*cents),
            _ => None,
        }
    }

    pub fn problem(&self) -> Option<&str> {
        match self {
            Price::Refused(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Reads a price: a number or a numeric string, at most two decimals kept (half up).
pub fn price(value: Option<&Value>) -> Price {
    let text = match value {
        None | Some(Value::Null) => return Price::Absent,
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => return Price::Absent,
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Price::Refused("the price is not a number".into()),
    };
    match parse_cents(&text) {
        None => Price::Refused(format!("the price {text:?} is not a number")),
        Some(cents) if cents < 0 => Price::Refused(format!("the price {text} is negative")),
        Some(cents) if cents > MAX_CENTS => {
            Price::Refused(format!("the price {text} is implausibly large"))
        }
        Some(cents) => Price::Cents(cents),
    }
}

/// Decimal text (`97`, `97.5`, `-3.999`, `1e3`) to cents, half away from zero.
pub fn parse_cents(text: &str) -> Option<i64> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // The value is 0.<all digits> · 10^point.
    let all: String = format!("{whole}{fraction}");
    let point = whole.len() as i64 + exponent as i64 + 2; // cents: two more places
    if point > 18 {
        return all.trim_start_matches('0').is_empty().then_some(0);
    }
    let mut cents: i64 = 0;
    for (i, digit) in all.chars().enumerate() {
        let d = digit.to_digit(10)? as i64;
        if (i as i64) < point {
            cents = cents.checked_mul(10)?.checked_add(d)?;
        } else {
            if i as i64 == point && d >= 5 {
                cents += 1;
            }
            break;
        }
    }
    for _ in (all.len() as i64)..point {
        cents = cents.checked_mul(10)?;
    }
    Some(if negative { -cents } else { cents })
}

/// Cents as a decimal number (for the API and the timeline).
pub fn to_f64(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// `9750` → `97.50`.
pub fn format(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_becomes_exact_cents() {
        for (text, cents) in [
            ("97", Some(9700)),
            ("97.5", Some(9750)),
            ("97.50", Some(9750)),
            ("0.1", Some(10)),
            ("0.29", Some(29)),
            ("19.999", Some(2000)),
            ("19.994", Some(1999)),
            ("-3.5", Some(-350)),
            ("1e3", Some(100_000)),
            ("1.5E1", Some(1500)),
            ("", None),
            ("abc", None),
            ("1.2.3", None),
            ("1e999", None),
        ] {
            assert_eq!(parse_cents(text), cents, "{text}");
        }
    }

    #[test]
    fn json_prices_are_read_without_float_error() {
        let json: Value =
            serde_json::from_str(r#"[0.29, 1234.56, "97,00", -1, 1e12, null, ""]"#).unwrap();
        let read: Vec<Price> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|v| price(Some(v)))
            .collect();
        assert_eq!(read[0], Price::Cents(29));
        assert_eq!(read[1], Price::Cents(123_456));
        assert!(matches!(read[2], Price::Refused(_)));
        assert!(matches!(read[3], Price::Refused(_)));
        assert!(matches!(read[4], Price::Refused(_)));
        assert_eq!(read[5], Price::Absent);
        assert_eq!(read[6], Price::Absent);
        assert_eq!(format(9750), "97.50");
        assert_eq!(format(-5), "-0.05");
    }
}
