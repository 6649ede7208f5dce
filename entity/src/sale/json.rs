//! Reading checkouts' JSON leniently: nested values by path, text fields, and times.

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

/// São Paulo's offset from UTC: −3 h all year (no daylight saving since 2019).
pub const SAO_PAULO_OFFSET_SECS: i32 = -3 * 3600;

/// A date as epoch ms: RFC 3339 / ISO 8601 with a zone as given, and the zone-less forms
/// (`YYYY-MM-DD HH:MM[:SS]`, with `T` or a space, or a bare date) as São Paulo time.
/// Dates before 2000 or after 2100 are not dates.
pub fn sao_paulo_time(value: &Value) -> Option<i64> {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
    let text = value.as_str()?.trim();
    let ms = if let Ok(zoned) = DateTime::parse_from_rfc3339(text) {
        zoned.timestamp_millis()
    } else {
        let zone = FixedOffset::east_opt(SAO_PAULO_OFFSET_SECS).expect("a valid offset");
        let naive = [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
        zone.from_local_datetime(&naive)
            .single()?
            .timestamp_millis()
    };
    (946_684_800_000..4_102_444_800_000)
        .contains(&ms)
        .then_some(ms)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::sao_paulo_time;

    #[test]
    fn zone_less_times_are_sao_paulo_time_and_zoned_ones_keep_their_zone() {
        // 2026-03-10 14:05 in São Paulo is 17:05 UTC.
        let utc = 1_773_162_300_000;
        assert_eq!(sao_paulo_time(&json!("2026-03-10 14:05")), Some(utc));
        assert_eq!(sao_paulo_time(&json!("2026-03-10T14:05:00")), Some(utc));
        assert_eq!(sao_paulo_time(&json!("2026-03-10T17:05:00Z")), Some(utc));
        assert_eq!(
            sao_paulo_time(&json!("2026-03-10T14:05:00-03:00")),
            Some(utc)
        );
        // No daylight saving: January is −3 too.
        assert_eq!(
            sao_paulo_time(&json!("2026-01-10 14:05")),
            Some(utc - 59 * 86_400_000)
        );
        for bad in [
            json!("10/03/2026"),
            json!(""),
            json!(17),
            json!("1970-01-01 00:00"),
        ] {
            assert_eq!(sao_paulo_time(&bad), None, "{bad}");
        }
    }
}
