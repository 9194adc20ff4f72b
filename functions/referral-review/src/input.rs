//! Reading JSON bodies with errors that name the field (`referee.email`, `rating`...).

use chrono::{DateTime, Utc};
use leadflow::edge::AppError;
use leadflow::edge::InboundRequest;
use leadflow::fields::{parse_yes_no, MAX_FIELD_CHARS};
use serde_json::{Map, Value};

/// Longest id or reference accepted (platform ids, referral ids, lead ids).
pub const MAX_ID_CHARS: usize = 200;
/// Longest review text accepted; review bodies are longer than form fields.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// The body as a JSON object: 415 for another declared type, 400 when it is not a JSON object.
pub fn json_object(req: &InboundRequest) -> Result<Map<String, Value>, AppError> {
    if let Some(mt) = req.media_type() {
        if mt != "application/json" && !mt.ends_with("+json") {
            return Err(AppError::UnsupportedMediaType(mt));
        }
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(AppError::bad_request(
            "invalid_body",
            "body",
            "the body must be a JSON object",
        )),
        Err(_) => Err(AppError::bad_request(
            "invalid_json",
            "body",
            "the body is not valid JSON",
        )),
    }
}

fn wrong_type(path: &str, expected: &str) -> AppError {
    AppError::unprocessable("invalid_field", path, format!("{path} must be {expected}"))
}

/// An optional text field: absent, null or blank is `None`; numbers are accepted as text
/// (phone numbers); anything longer than `max` characters is 422.
pub fn text(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    max: usize,
) -> Result<Option<String>, AppError> {
    let v = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(wrong_type(path, "a string")),
    };
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > max {
        return Err(AppError::unprocessable(
            "too_long",
            path,
            format!("{path} is longer than {max} characters"),
        ));
    }
    Ok(Some(v))
}

/// A form-sized text field.
pub fn field(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, AppError> {
    text(obj, key, path, MAX_FIELD_CHARS)
}

/// A required id.
pub fn required_id(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, AppError> {
    text(obj, key, path, MAX_ID_CHARS)?.ok_or_else(|| {
        AppError::unprocessable("missing_field", path, format!("{path} is required"))
    })
}

/// An optional yes/no: JSON booleans or the usual form words (`yes`, `on`, `1`...).
pub fn yes_no(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, AppError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => parse_yes_no(s)
            .map(Some)
            .ok_or_else(|| wrong_type(path, "true or false")),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(wrong_type(path, "true or false")),
        },
        Some(_) => Err(wrong_type(path, "true or false")),
    }
}

/// An optional nested object.
pub fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, AppError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(wrong_type(key, "an object")),
    }
}

/// An optional RFC 3339 time, truncated to the milliseconds the store keeps.
pub fn time(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(raw) = text(obj, key, path, 64)? else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(&raw)
        .map_err(|_| {
            AppError::unprocessable(
                "invalid_timestamp",
                path,
                format!("{path} must be an RFC 3339 time, e.g. 2026-05-01T12:00:00Z"),
            )
        })?
        .with_timezone(&Utc);
    Ok(Some(millis(t)))
}

pub fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A star rating 1..=5: an integer, an integer-valued number (`4.0`) or its text (`"4"`).
pub fn rating(obj: &Map<String, Value>, key: &str, path: &str) -> Result<u8, AppError> {
    let invalid = || {
        AppError::unprocessable(
            "invalid_rating",
            path,
            format!("{path} must be a whole number from 1 to 5"),
        )
    };
    let value = match obj.get(key) {
        None | Some(Value::Null) => {
            return Err(AppError::unprocessable(
                "missing_field",
                path,
                format!("{path} is required"),
            ))
        }
        Some(Value::Number(n)) => n.as_f64().ok_or_else(invalid)?,
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| invalid())?,
        Some(_) => return Err(invalid()),
    };
    if value.fract() != 0.0 || !(1.0..=5.0).contains(&value) {
        return Err(invalid());
    }
    Ok(value as u8)
}

/// Prefixes the field of a normalization error (`email` -> `referee.email`).
pub fn in_object(prefix: &str, e: AppError) -> AppError {
    match e {
        AppError::Unprocessable {
            code,
            field,
            message,
        } => AppError::Unprocessable {
            code,
            field: field.map(|f| {
                f.split(',')
                    .map(|part| format!("{prefix}.{part}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            message,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn ratings() {
        for ok in [json!(1), json!(5), json!("4"), json!(3.0)] {
            assert!(rating(&obj(json!({ "r": ok })), "r", "r").is_ok());
        }
        for bad in [
            json!(0),
            json!(6),
            json!(4.5),
            json!("x"),
            json!(true),
            json!(-1),
        ] {
            let e = rating(&obj(json!({ "r": bad })), "r", "r").unwrap_err();
            assert_eq!(e.code(), "invalid_rating");
        }
        assert_eq!(
            rating(&obj(json!({})), "r", "r").unwrap_err().code(),
            "missing_field"
        );
    }

    #[test]
    fn normalization_errors_name_the_nested_field() {
        let e = AppError::Unprocessable {
            code: "missing_contact",
            field: Some("email,phone".into()),
            message: "m".into(),
        };
        assert_eq!(
            in_object("referee", e).field(),
            Some("referee.email,referee.phone")
        );
    }

    #[test]
    fn text_limits_and_types() {
        let o = obj(json!({"a": "  x ", "b": 415, "c": [], "d": ""}));
        assert_eq!(field(&o, "a", "a").unwrap().as_deref(), Some("x"));
        assert_eq!(field(&o, "b", "b").unwrap().as_deref(), Some("415"));
        assert_eq!(field(&o, "c", "c").unwrap_err().code(), "invalid_field");
        assert_eq!(field(&o, "d", "d").unwrap(), None);
        assert_eq!(text(&o, "a", "a", 0).unwrap_err().code(), "too_long");
    }
}
