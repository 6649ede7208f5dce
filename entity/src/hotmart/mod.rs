//! Hotmart's adapter: its wire formats, parsed leniently into neutral sale events: webhook v2 deliveries, and the deal details
//! they (and Sales History items) carry, and the REST lists that complete imported sales.

pub mod details;
pub use crate::sale::json;
pub mod payload;
pub mod rest;

/// The body with every `"hottok"` string value emptied (`"hottok": ""`), byte for byte
/// otherwise: a delivery is stored without the secret that authenticated it.
pub fn without_hottok(body: &str) -> std::borrow::Cow<'_, str> {
    const KEY: &str = "\"hottok\"";
    if !body.contains(KEY) {
        return std::borrow::Cow::Borrowed(body);
    }
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = body[from..].find(KEY) {
        let key_end = from + found + KEY.len();
        from = key_end;
        let mut i = key_end;
        let skip_space = |mut i: usize| {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        i = skip_space(i);
        if bytes.get(i) != Some(&b':') {
            continue;
        }
        i = skip_space(i + 1);
        if bytes.get(i) != Some(&b'"') {
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        if i >= bytes.len() {
            break;
        }
        out.push_str(&body[copied..start]);
        out.push_str("\"\"");
        copied = i + 1;
        from = copied;
    }
    out.push_str(&body[copied..]);
    std::borrow::Cow::Owned(out)
}
