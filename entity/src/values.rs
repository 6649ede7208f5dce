//! Parse, don't validate: input values checked once at the edge of the domain.

use crate::{DomainError, DomainResult};

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_EMAIL_LEN: usize = 254;

/// A trimmed, non-empty name of bounded length.
pub fn name(field: &str, value: &str) -> DomainResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::bad_input(field, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_NAME_LEN {
        return Err(DomainError::bad_input(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::bad_input(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// An optional name: `None` or blank means "no value".
pub fn optional_name(field: &str, value: Option<&str>) -> DomainResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => name(field, v).map(Some),
    }
}

/// Characters that do not show: zero-width spaces and joiners, the word joiner, the byte
/// order mark, and the bidirectional controls. Pasted or hostile text carries them, and
/// `ana@x.com` with one inside would be another contact.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// An e-mail address, without invisible characters, trimmed and lower-cased: the
/// identity of users and contacts.
pub fn email(field: &str, value: &str) -> DomainResult<String> {
    let visible: String = value.chars().filter(|c| !is_invisible(*c)).collect();
    let normalised = visible.trim().to_lowercase();
    let bad = |message: &str| Err(DomainError::bad_input(field, message));
    if normalised.is_empty() {
        return bad("must not be empty");
    }
    if normalised.len() > MAX_EMAIL_LEN {
        return bad("is too long");
    }
    let Some((local, domain)) = normalised.rsplit_once('@') else {
        return bad("is not an e-mail address");
    };
    if local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || normalised
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return bad("is not an e-mail address");
    }
    Ok(normalised)
}

/// A label colour, `#rrggbb`, lower-cased.
pub fn color(field: &str, value: Option<&str>) -> DomainResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => {
            let hex = v.strip_prefix('#').unwrap_or("");
            if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(Some(format!("#{}", hex.to_lowercase())))
            } else {
                Err(DomainError::bad_input(
                    field,
                    "must be a colour like #1a2b3c",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn invisible_characters_do_not_make_another_e_mail() {
        for hostile in [
            "ana\u{200B}@x.com",
            "\u{FEFF}Ana@X.com",
            "ana@x\u{202E}.com",
            "an\u{2066}a@x.com\u{2069}",
            " ana\u{200D}@x.com ",
        ] {
            assert_eq!(
                super::email("email", hostile).unwrap(),
                "ana@x.com",
                "{hostile:?}"
            );
        }
        assert!(super::email("email", "\u{200B}").is_err());
    }

    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            email("email", "  Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@com",
            "a na@example.com",
            "ana@example.",
        ] {
            let err = email("email", bad).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{bad:?}");
            assert!(err.to_string().starts_with("email:"), "{err}");
        }
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(name("name", " Curso X ").unwrap(), "Curso X");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(name("name", "a\u{0}b").is_err());
        assert_eq!(optional_name("label", Some(" ")).unwrap(), None);
    }

    #[test]
    fn colours_must_be_hex() {
        assert_eq!(
            color("color", Some("#A1B2C3")).unwrap().as_deref(),
            Some("#a1b2c3")
        );
        assert!(color("color", Some("red")).is_err());
        assert_eq!(color("color", None).unwrap(), None);
    }
}
