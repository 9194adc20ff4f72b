//! `POST /reviews/trustpilot`: Trustpilot's service review webhook.
//!
//! `{"events": [{"eventName": "service-review-created" | "-updated" | "-deleted", "eventData":
//! {id, stars, title, text, referenceId, consumer{name}, createdAt}}]}`. Trustpilot sends no
//! consumer email: the review is linked through `referenceId`, the lead id leadflow put into the
//! invitation. Authenticated with `TRUSTPILOT_KEY`, given as `?key=` in the webhook URL or as
//! the basic auth password, compared in constant time.
//!
//! Events are applied in order. An authentic delivery is answered 200 even when one of its
//! events is unusable (reported per event): a 4xx would only make Trustpilot retry or disable
//! the webhook. Any storage failure is 503 for the whole delivery; the retry is exact because
//! every review change is idempotent.

use base64::Engine;
use leadflow::edge::{json_response, AppError, InboundRequest, Response};
use leadflow::model::{ReviewInput, ReviewPlatform};
use leadflow::signature::keys_equal;
use leadflow::store::ReviewChange;
use leadflow::telemetry::Metrics;
use serde_json::{json, Map, Value};

use crate::input::{
    field, json_object, object, rating, required_id, text, time, MAX_ID_CHARS, MAX_TEXT_CHARS,
};
use crate::reviews::{apply, Reviewer};
use crate::AppState;

/// At most this many events per delivery (Trustpilot batches a handful).
const MAX_EVENTS: usize = 100;

/// The password of a `Basic` authorization header.
fn basic_password(header: &str) -> Option<String> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_string())
}

/// 401 unless the request carries `TRUSTPILOT_KEY`. With no key configured nothing is accepted.
pub fn check_auth(state: &AppState, req: &InboundRequest) -> Result<(), AppError> {
    let candidate = req
        .query
        .get("key")
        .cloned()
        .or_else(|| req.header("authorization").and_then(basic_password));
    let Some(candidate) = candidate else {
        return Err(AppError::unauthorized(
            "missing_credentials",
            "pass the Trustpilot key as ?key= or as the basic auth password",
        ));
    };
    match &state.trustpilot_key {
        // Both sides hashed before the constant-time compare: neither the key's content nor
        // its length leaks through timing (a plain slice compare returns early on a length
        // mismatch).
        Some(expected) if keys_equal(&candidate, expected) => Ok(()),
        _ => Err(AppError::unauthorized(
            "invalid_credentials",
            "the Trustpilot key is not valid",
        )),
    }
}

enum Kind {
    Created,
    Updated,
    Deleted,
}

enum Event {
    Upsert(ReviewInput, /* created */ bool),
    Delete(String),
}

fn parse_event(
    e: &Value,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Event>, AppError> {
    let Some(e) = e.as_object() else {
        return Err(AppError::unprocessable(
            "invalid_event",
            "events",
            "an event must be an object",
        ));
    };
    let name = field(e, "eventName", "eventName")?.unwrap_or_default();
    let kind = match name.as_str() {
        "service-review-created" => Kind::Created,
        "service-review-updated" => Kind::Updated,
        "service-review-deleted" => Kind::Deleted,
        // Other events (replies, invitations...) are not ours to store.
        _ => return Ok(None),
    };
    let data: &Map<String, Value> = object(e, "eventData")?.ok_or_else(|| {
        AppError::unprocessable("missing_field", "eventData", "eventData is required")
    })?;
    let id = required_id(data, "id", "eventData.id")?;
    let created = match kind {
        Kind::Created => true,
        Kind::Updated => false,
        Kind::Deleted => return Ok(Some(Event::Delete(id))),
    };
    let name = match object(data, "consumer")? {
        Some(c) => field(c, "name", "eventData.consumer.name")?,
        None => None,
    };
    Ok(Some(Event::Upsert(
        ReviewInput {
            platform: ReviewPlatform::Trustpilot,
            external_id: id,
            rating: rating(data, "stars", "eventData.stars")?,
            title: field(data, "title", "eventData.title")?,
            text: text(data, "text", "eventData.text", MAX_TEXT_CHARS)?,
            name,
            published_at: time(data, "createdAt", "eventData.createdAt")?
                .unwrap_or_else(|| crate::input::millis(received_at)),
            updated_at: time(data, "updatedAt", "eventData.updatedAt")?,
            reference_id: text(data, "referenceId", "eventData.referenceId", MAX_ID_CHARS)?,
        },
        created,
    )))
}

pub async fn post(
    state: &AppState,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    check_auth(state, req)?;
    let body = json_object(req)?;
    let events = match body.get("events") {
        Some(Value::Array(events)) => events,
        _ => {
            return Err(AppError::bad_request(
                "invalid_body",
                "events",
                "expected {\"events\": [...]}",
            ))
        }
    };
    if events.len() > MAX_EVENTS {
        return Err(AppError::unprocessable(
            "too_many_events",
            "events",
            format!("at most {MAX_EVENTS} events per delivery"),
        ));
    }
    let mut results = Vec::with_capacity(events.len());
    for event in events {
        let parsed = match parse_event(event, req.received_at) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    field = e.field(),
                    "trustpilot event unusable"
                );
                metrics.count("trustpilot_event_rejected", 1.0);
                results.push(json!({"status": "rejected", "error": {
                    "code": e.code(), "message": e.to_string(), "field": e.field()}}));
                continue;
            }
        };
        let change = match &parsed {
            None => {
                metrics.count("trustpilot_event_ignored", 1.0);
                results.push(json!({"status": "ignored", "reason": "not a service review event"}));
                continue;
            }
            Some(Event::Upsert(review, true)) => ReviewChange::Create(review),
            Some(Event::Upsert(review, false)) => ReviewChange::Upsert(review),
            Some(Event::Delete(id)) => ReviewChange::Delete {
                platform: ReviewPlatform::Trustpilot,
                external_id: id,
            },
        };
        let result = apply(
            state,
            change,
            &Reviewer::default(),
            req.received_at,
            metrics,
        )
        .await?;
        results.push(result.to_json());
    }
    Ok(json_response(200, &json!({ "results": results })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_compared_by_the_shared_length_hiding_helper() {
        // A raw slice compare (`subtle`'s `ct_eq` on the bytes) answers a length mismatch at
        // once, so response times tell the key's length. `keys_equal` compares SHA-256 digests
        // of both sides: equal lengths, constant time. Timing itself is not asserted (tests never
        // measure wall-clock time); this pins the implementation to the helper.
        let source = include_str!("trustpilot.rs");
        let raw_compare = concat!(".ct_", "eq(");
        assert!(
            !source.contains(raw_compare),
            "compare keys with keys_equal"
        );
        assert!(source.contains("keys_equal(&candidate, expected)"));
        assert!(keys_equal("tp-secret", "tp-secret"));
        assert!(!keys_equal("tp-secret-but-longer", "tp-secret"));
        assert!(!keys_equal("", ""));
    }

    #[test]
    fn basic_auth_password() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("trustpilot:s3cret:x")
        );
        assert_eq!(basic_password(&h).as_deref(), Some("s3cret:x"));
        assert_eq!(basic_password("Bearer abc"), None);
        assert_eq!(basic_password("Basic !!!"), None);
        assert!(keys_equal("abc", "abc"));
        assert!(!keys_equal("abd", "abc") && !keys_equal("ab", "abc"));
    }
}
