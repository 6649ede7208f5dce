//! Finding and removing one buyer's personal data in free text and stored payloads.
//!
//! A [`Scrubber`] knows the buyer's e-mail, name, phone and document. In text it
//! replaces each of them (case-insensitively; phones and documents also by their digits,
//! however they are punctuated) with [`REDACTED`]. In a JSON payload it replaces every
//! string that names the buyer, and every string inside the objects that describe a
//! person (`buyer`, `customer`, `subscriber`…, and their addresses), so a payload keeps
//! its shape, ids, products and money, and nothing that says who bought.

use serde_json::Value;

/// What an erased value reads as.
pub const REDACTED: &str = "[removido]";

/// Objects that describe the buyer in the platforms' payloads (keys compared in lower
/// case): every string inside them is personal.
const PERSON_KEYS: &[&str] = &[
    "buyer",
    "customer",
    "subscriber",
    "student",
    "client",
    "contact",
    "address",
    "buyer_address",
    "billing",
    "shipping",
];

/// The fewest digits a phone or document must have to be matched by its digits.
const MIN_DIGITS: usize = 8;

/// One buyer's identifying values.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Lower-cased texts matched case-insensitively.
    texts: Vec<String>,
    /// Digit sequences matched whatever separates their digits.
    digits: Vec<String>,
}

impl Scrubber {
    pub fn new(
        email: Option<&str>,
        name: Option<&str>,
        phone: Option<&str>,
        document: Option<&str>,
    ) -> Self {
        let mut s = Scrubber::default();
        for text in [email, name].into_iter().flatten() {
            let text = text.trim().to_lowercase();
            if text.chars().count() >= 3 {
                s.texts.push(text);
            }
        }
        for number in [phone, document].into_iter().flatten() {
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            // A Brazilian phone is also written without its country code.
            let national = digits.strip_prefix("55").filter(|n| n.len() >= 10);
            for d in [Some(digits.as_str()), national].into_iter().flatten() {
                if d.len() >= MIN_DIGITS && !s.digits.iter().any(|x| x == d) {
                    s.digits.push(d.to_owned());
                }
            }
        }
        // Longer needles first, so an e-mail goes before a name it contains.
        s.texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
        s.digits.sort_by_key(|d| std::cmp::Reverse(d.len()));
        s
    }

    /// The text with every mention of the buyer replaced, or `None` when it has none.
    pub fn text(&self, text: &str) -> Option<String> {
        let mut out = text.to_owned();
        let mut changed = false;
        for needle in &self.texts {
            changed |= replace_all(&mut out, |s| find_ignoring_case(s, needle));
        }
        for digits in &self.digits {
            changed |= replace_all(&mut out, |s| find_digits(s, digits));
        }
        changed.then_some(out)
    }

    /// Redacts a JSON document in place; true when anything changed.
    pub fn json(&self, value: &mut Value) -> bool {
        self.walk(value, false)
    }

    fn walk(&self, value: &mut Value, personal: bool) -> bool {
        match value {
            Value::String(s) => {
                if personal && !s.is_empty() && s != REDACTED {
                    *s = REDACTED.to_owned();
                    return true;
                }
                match self.text(s) {
                    Some(_) => {
                        *s = REDACTED.to_owned();
                        true
                    }
                    None => false,
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.walk(v, personal) | changed),
            Value::Object(map) => map.iter_mut().fold(false, |changed, (key, v)| {
                let inner = personal || PERSON_KEYS.contains(&key.to_lowercase().as_str());
                self.walk(v, inner) | changed
            }),
            _ => false,
        }
    }

    /// A stored payload (raw JSON text) with the buyer removed; a body that is not JSON
    /// is scrubbed as text.
    pub fn payload(&self, raw: &str) -> Option<String> {
        match serde_json::from_str::<Value>(raw) {
            Ok(mut value) => self.json(&mut value).then(|| value.to_string()),
            Err(_) => self.text(raw),
        }
    }
}

/// Replaces every range `find` finds with [`REDACTED`], searching on after each
/// replacement (so a needle found inside the marker itself cannot loop).
fn replace_all(text: &mut String, find: impl Fn(&str) -> Option<std::ops::Range<usize>>) -> bool {
    let mut from = 0;
    let mut changed = false;
    while let Some(at) = find(&text[from..]) {
        let start = from + at.start;
        text.replace_range(start..from + at.end, REDACTED);
        from = start + REDACTED.len();
        changed = true;
    }
    changed
}

/// The byte range of `needle` (lower case) in `haystack`, ignoring case.
fn find_ignoring_case(haystack: &str, needle: &str) -> Option<std::ops::Range<usize>> {
    let lower = haystack.to_lowercase();
    if lower.len() == haystack.len() {
        let at = lower.find(needle)?;
        return Some(at..at + needle.len());
    }
    // Lower-casing changed byte lengths: compare char by char.
    let needle: Vec<char> = needle.chars().collect();
    let chars: Vec<(usize, char)> = haystack.char_indices().collect();
    (0..chars.len()).find_map(|i| {
        let window = chars.get(i..i + needle.len())?;
        let same = window
            .iter()
            .zip(&needle)
            .all(|((_, c), n)| c.to_lowercase().eq(n.to_lowercase()));
        same.then(|| {
            let (last_at, last) = window[window.len() - 1];
            chars[i].0..last_at + last.len_utf8()
        })
    })
}

/// The byte range of `digits` in `text`, written with any of ` ()-.+/` between them.
fn find_digits(text: &str, digits: &str) -> Option<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let wanted = digits.as_bytes();
    (0..bytes.len()).find_map(|start| {
        if bytes[start] != wanted[0] {
            return None;
        }
        let (mut i, mut matched) = (start, 0);
        while i < bytes.len() && matched < wanted.len() {
            match bytes[i] {
                b if b == wanted[matched] => matched += 1,
                b' ' | b'(' | b')' | b'-' | b'.' | b'+' | b'/' if matched > 0 => {}
                _ => return None,
            }
            i += 1;
        }
        (matched == wanted.len()).then_some(start..i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ana() -> Scrubber {
        Scrubber::new(
            Some("ana.souza@example.com"),
            Some("Ana Souza"),
            Some("+5511987654321"),
            Some("123.456.789-09"),
        )
    }

    #[test]
    fn text_mentions_are_replaced_however_written() {
        let s = ana();
        let note = "Ligar p/ ANA SOUZA em (11) 98765-4321, CPF 12345678909, ana.souza@EXAMPLE.com";
        let out = s.text(note).unwrap();
        for gone in ["ANA SOUZA", "98765", "12345678909", "EXAMPLE"] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
        assert!(out.starts_with("Ligar p/ [removido] em "));
        assert_eq!(s.text("nada a ver"), None);
    }

    #[test]
    fn payloads_keep_their_shape_and_lose_the_person() {
        let s = ana();
        let mut body = json!({
            "id": "evt-1",
            "data": {
                "buyer": {"email": "ana.souza@example.com", "first_name": "Ana", "address": {"zipcode": "01000-000"}, "id": 77},
                "product": {"id": 5, "name": "Curso"},
                "purchase": {"price": {"value": 197.9}, "note": "cpf 123.456.789-09"}
            }
        });
        assert!(s.json(&mut body));
        assert_eq!(body["data"]["buyer"]["first_name"], REDACTED);
        assert_eq!(body["data"]["buyer"]["address"]["zipcode"], REDACTED);
        assert_eq!(body["data"]["buyer"]["id"], 77);
        assert_eq!(body["data"]["product"]["name"], "Curso");
        assert_eq!(body["data"]["purchase"]["price"]["value"], 197.9);
        assert_eq!(body["data"]["purchase"]["note"], REDACTED);
        assert!(!s.json(&mut body), "a second pass changes nothing");
    }

    #[test]
    fn a_name_inside_the_marker_does_not_loop() {
        let s = Scrubber::new(None, Some("removido"), None, None);
        assert_eq!(
            s.text("removido e removido").unwrap(),
            "[removido] e [removido]"
        );
    }

    #[test]
    fn short_values_are_not_needles() {
        let s = Scrubber::new(None, Some("Al"), Some("123"), None);
        assert_eq!(s.text("Alguém ligou 123"), None);
    }
}
