//! Helpers the adapters share to read platform payloads: JSON values, ids, times, answers.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use leadflow::fields::{normalize_field_name, MAX_CUSTOM_FIELDS, MAX_FIELD_CHARS};
use leadflow::model::{DeliveryKey, Submission};
use serde_json::Value;

use crate::ProviderOutcome;

pub(crate) fn quarantine(reason: impl Into<String>) -> ProviderOutcome {
    ProviderOutcome::Quarantine {
        reason: reason.into(),
    }
}

pub(crate) fn ignored(reason: impl Into<String>) -> ProviderOutcome {
    ProviderOutcome::Ignored {
        reason: reason.into(),
    }
}

/// A serde_json error described by kind and position only: its `Display` can quote the input,
/// and the input is personal data that must not reach logs or quarantine reasons.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// The body as a JSON value, or a quarantine reason.
pub(crate) fn parse_json(body: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice::<Value>(body).map_err(|e| format!("{what}: {}", json_error(&e)))
}

/// An id sent as a JSON string or integer, as a string. Floats are refused: ids above 2^53 would
/// have lost digits (serde_json keeps every integer up to `u64::MAX` exact).
pub(crate) fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .or_else(|| n.as_i64().map(|i| i.to_string())),
        _ => None,
    }
}

/// `serde(deserialize_with)` form of [`id_string`]: a string or integer id, never through f64.
pub(crate) fn de_opt_id<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    d.deserialize_any(IdVisitor)
}

struct IdVisitor;

impl<'de> serde::de::Visitor<'de> for IdVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an id as a string or an integer")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.trim().to_string()).filter(|s| !s.is_empty()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, _v: f64) -> Result<Self::Value, E> {
        Err(E::custom("an id must not be a floating-point number"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

/// A scalar answer as text: strings as sent, numbers in full, booleans as `yes`/`no`, arrays of
/// scalars joined with `, `. Objects and empty values give `None`.
pub(crate) fn value_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_array() && !i.is_object())
            .filter_map(value_text)
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null | Value::Object(_) => String::new(),
    };
    Some(text).filter(|s| !s.is_empty())
}

/// `obj[key]` as a trimmed, non-empty string.
pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Adds a custom answer under a normalized key, within the limits web forms have.
pub(crate) fn set_custom(sub: &mut Submission, key: &str, value: &str) {
    let key = normalize_field_name(key);
    let value = value.trim();
    if key.is_empty() || value.is_empty() || sub.custom.len() >= MAX_CUSTOM_FIELDS {
        return;
    }
    sub.custom
        .entry(key)
        .or_insert_with(|| value.chars().take(MAX_FIELD_CHARS).collect());
}

/// `slot` gets `value` unless it already has one.
pub(crate) fn fill(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none() {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            *slot = Some(v.chars().take(MAX_FIELD_CHARS).collect());
        }
    }
}

/// A platform timestamp: RFC 3339 (`2024-05-01T10:00:00Z`, `...+02:00`), Meta's
/// `2015-11-12T15:27:06+0000`, or a naive `2024-05-01 10:00:00` taken as UTC.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// Epoch seconds or milliseconds (told apart by size: 1e11 s is the year 5138).
pub(crate) fn epoch_time(n: i64) -> Option<DateTime<Utc>> {
    if n <= 0 {
        return None;
    }
    if n >= 100_000_000_000 {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

/// A timestamp given as a JSON string (any format [`parse_time`] reads, or digits) or number.
pub(crate) fn time_value(v: Option<&Value>) -> Option<DateTime<Utc>> {
    match v? {
        Value::String(s) => {
            parse_time(s).or_else(|| s.trim().parse::<i64>().ok().and_then(epoch_time))
        }
        Value::Number(n) => n.as_i64().and_then(epoch_time),
        _ => None,
    }
}

/// Hex SHA-256 of the provider name and raw body (the store's body-hash key, reused as a
/// platform key where a platform sends no id of its own).
pub(crate) fn body_hash(provider: &str, body: &[u8]) -> String {
    DeliveryKey::body_hash(provider, body).as_str().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow::model::TouchKind;
    #[test]
    fn ids_as_strings_or_integers_never_floats() {
        let v: Value = serde_json::from_str(
            r#"{"big": 18446744073709551615, "over53": 9007199254740993, "s": " 42 ", "neg": -5, "f": 1.5, "e": 1e3}"#,
        )
        .unwrap();
        assert_eq!(
            id_string(&v["big"]).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(id_string(&v["over53"]).as_deref(), Some("9007199254740993"));
        assert_eq!(id_string(&v["s"]).as_deref(), Some("42"));
        assert_eq!(id_string(&v["neg"]).as_deref(), Some("-5"));
        assert_eq!(id_string(&v["f"]), None);
        assert_eq!(id_string(&v["e"]), None);

        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "de_opt_id")]
            id: Option<String>,
        }
        let t: T = serde_json::from_str(r#"{"id": 1234567890123456789}"#).unwrap();
        assert_eq!(t.id.as_deref(), Some("1234567890123456789"));
        let t: T = serde_json::from_str(r#"{"id": "1234567890123456789"}"#).unwrap();
        assert_eq!(t.id.as_deref(), Some("1234567890123456789"));
        let t: T = serde_json::from_str(r#"{"id": null}"#).unwrap();
        assert_eq!(t.id, None);
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.id, None);
        assert!(serde_json::from_str::<T>(r#"{"id": 1.0}"#).is_err());
    }

    #[test]
    fn json_errors_never_quote_the_input() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        let e = serde_json::from_str::<T>(r#"{"n": "ada@example.com"}"#).unwrap_err();
        let msg = json_error(&e);
        assert!(!msg.contains("ada@example.com"), "{msg}");
        assert!(msg.contains("line 1"));
    }

    #[test]
    fn times_in_platform_formats() {
        let want = Utc.with_ymd_and_hms(2015, 11, 12, 15, 27, 6).unwrap();
        assert_eq!(parse_time("2015-11-12T15:27:06+0000"), Some(want));
        assert_eq!(parse_time("2015-11-12T15:27:06Z"), Some(want));
        assert_eq!(parse_time("2015-11-12T16:27:06+01:00"), Some(want));
        assert_eq!(parse_time("2015-11-12 15:27:06"), Some(want));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(epoch_time(1447342026), Some(want));
        assert_eq!(epoch_time(1447342026000), Some(want));
        assert_eq!(epoch_time(0), None);
        assert_eq!(time_value(Some(&Value::from("1447342026000"))), Some(want));
    }

    #[test]
    fn custom_answers_are_bounded() {
        let mut sub = Submission::new(
            "tally",
            DeliveryKey::Platform("x".into()),
            TouchKind::FormSubmission,
            Utc::now(),
        );
        for i in 0..(MAX_CUSTOM_FIELDS + 10) {
            set_custom(&mut sub, &format!("Question {i}"), "answer");
        }
        assert_eq!(sub.custom.len(), MAX_CUSTOM_FIELDS);
        set_custom(&mut sub, "Question 0", "second value is ignored");
        assert_eq!(sub.custom["question_0"], "answer");
    }

    #[test]
    fn value_text_renders_scalars() {
        assert_eq!(value_text(&Value::from(" x ")).as_deref(), Some("x"));
        assert_eq!(value_text(&Value::from(12)).as_deref(), Some("12"));
        assert_eq!(value_text(&Value::from(true)).as_deref(), Some("yes"));
        assert_eq!(
            value_text(&serde_json::json!(["a", 1, {"x": 1}, ""])).as_deref(),
            Some("a, 1")
        );
        assert_eq!(value_text(&serde_json::json!({"a": 1})), None);
        assert_eq!(value_text(&Value::Null), None);
    }
}
