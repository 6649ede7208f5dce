//! Reading Hotmart's JSON: nested values by path, and text fields.

use serde_json::Value;

/// The value at a path of object keys, if every step is an object.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |current, key| current.as_object()?.get(*key))
}

/// A non-empty string, or a number rendered as one (ids come as either).
pub fn text(value: &Value) -> Option<String> {
    let s = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= 1024).then_some(s)
}
