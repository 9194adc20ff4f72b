//! Typeform: `POST` JSON `{event_id, event_type, form_response{...}}`, signed with
//! `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>` (`TYPEFORM_SECRET`).
//!
//! Idempotency key: `form_response.token` (one per response; Typeform retries with the same
//! one). `form_response_partial` deliveries are partial-submission touches, not leads unless
//! they carry a contact. Answers are read by their `type` (`email`, `phone_number`, `text`,
//! `choice`...); an answer type this adapter does not know quarantines the delivery so nothing
//! is silently dropped. UTMs come only from hidden fields.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use leadflow::edge::InboundRequest;
use leadflow::fields::{apply_field, field_role, FieldRole};
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::Value;

use super::{
    ignored, parse_json, quarantine, set_custom, str_at, time_value, value_text, ProviderOutcome,
};
use crate::{Parse, Platform, Variable};

pub const PROVIDER: &str = "typeform";

pub const SECRET: Variable = Variable::required_secret(
    "TYPEFORM_SECRET",
    "the secret you set on the Typeform webhook (Connect > Webhooks > Edit > Secret)",
);

/// Typeform, `/webhooks/typeform`.
pub const PLATFORM: Platform =
    Platform::new(PROVIDER, &SECRET, &[&SECRET], verify, Parse::Now(parse));

/// Checks a delivery with the configured secret.
fn verify(secret: &str, req: &InboundRequest, _now: DateTime<Utc>) -> Result<(), SignatureError> {
    verify_typeform(secret, &req.body, req.header("typeform-signature"))
}

/// Typeform's scheme: `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, body)>`.
pub fn verify_typeform(
    secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = signature::required(header, "Typeform-Signature")?;
    let b64 = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed("Typeform-Signature"))?;
    signature::verify_hmac_base64(secret.as_bytes(), &[body], b64)
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "typeform body") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    let kind = match v.get("event_type").and_then(Value::as_str) {
        Some("form_response") => TouchKind::FormSubmission,
        Some("form_response_partial") => TouchKind::PartialSubmission,
        Some(other) => return ignored(format!("typeform event_type {other:?} is not a response")),
        None => return quarantine("typeform body has no event_type"),
    };
    let Some(resp) = v.get("form_response").filter(|r| r.is_object()) else {
        return quarantine("typeform body has no form_response object");
    };
    let Some(token) = str_at(resp, "token") else {
        return quarantine("typeform form_response has no token");
    };
    let occurred_at = time_value(resp.get("submitted_at"))
        .or_else(|| time_value(resp.get("landed_at")))
        .unwrap_or(req.received_at);
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(token.to_string()),
        kind,
        occurred_at,
    );
    sub.source_hint = Some(PROVIDER.to_string());
    sub.attribution.form_id = str_at(resp, "form_id").map(str::to_string);

    // Question titles by field id, from the form definition sent along.
    let titles: HashMap<&str, &str> = resp
        .pointer("/definition/fields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| Some((str_at(f, "id")?, str_at(f, "title")?)))
                .collect()
        })
        .unwrap_or_default();

    // Hidden fields first: they carry UTMs and sometimes a known email.
    if let Some(hidden) = resp.get("hidden").and_then(Value::as_object) {
        for (name, value) in hidden {
            if let Some(text) = value_text(value) {
                apply_field(&mut sub, name, &text);
            }
        }
    }

    let empty = Vec::new();
    let answers = match resp.get("answers") {
        None | Some(Value::Null) => &empty,
        Some(Value::Array(a)) => a,
        Some(_) => return quarantine("typeform answers is not an array"),
    };
    for (i, answer) in answers.iter().enumerate() {
        let Some(answer_type) = str_at(answer, "type") else {
            return quarantine(format!("typeform answer {i} has no type"));
        };
        let value = match answer_value(answer, answer_type) {
            AnswerValue::Text(t) => t,
            AnswerValue::Empty | AnswerValue::Skip => continue,
            AnswerValue::Unknown => {
                return quarantine(format!(
                    "typeform answer type {answer_type:?} is not supported"
                ))
            }
        };
        let field = answer.get("field");
        let field_ref = field.and_then(|f| str_at(f, "ref"));
        let title = field
            .and_then(|f| str_at(f, "id"))
            .and_then(|id| titles.get(id).copied());
        match answer_type {
            "email" => {
                apply_field(&mut sub, "email", &value);
            }
            "phone_number" => {
                apply_field(&mut sub, "phone", &value);
            }
            _ => apply_named(&mut sub, field_ref, title, &value),
        }
    }

    if let Some(score) = resp.pointer("/calculated/score").and_then(Value::as_i64) {
        if score != 0 {
            set_custom(&mut sub, "typeform_score", &score.to_string());
        }
    }
    ProviderOutcome::Submissions(vec![sub])
}

enum AnswerValue {
    Text(String),
    /// A known type with nothing in it.
    Empty,
    /// A known type we deliberately do not keep (payment details).
    Skip,
    Unknown,
}

/// The value of an answer, read from the key named after its type.
fn answer_value(answer: &Value, answer_type: &str) -> AnswerValue {
    let text = match answer_type {
        "text" | "email" | "phone_number" | "number" | "boolean" | "date" | "url" | "file_url" => {
            answer.get(answer_type).and_then(value_text)
        }
        "choice" => answer.get("choice").and_then(|c| {
            c.get("label")
                .and_then(value_text)
                .or_else(|| c.get("other").and_then(value_text))
        }),
        "choices" => answer.get("choices").and_then(|c| {
            let mut parts: Vec<String> = c
                .get("labels")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(value_text).collect())
                .unwrap_or_default();
            if let Some(other) = c.get("other").and_then(value_text) {
                parts.push(other);
            }
            Some(parts.join(", ")).filter(|s| !s.is_empty())
        }),
        "payment" => return AnswerValue::Skip,
        _ => return AnswerValue::Unknown,
    };
    match text {
        Some(t) => AnswerValue::Text(t),
        None => AnswerValue::Empty,
    }
}

/// Puts an answer where its ref or question title says it belongs (`first_name`, "Company"...),
/// else keeps it as a custom answer under the question title (refs are often generated ids).
fn apply_named(sub: &mut Submission, field_ref: Option<&str>, title: Option<&str>, value: &str) {
    for name in [field_ref, title].into_iter().flatten() {
        if !matches!(field_role(name), FieldRole::Custom | FieldRole::Control) {
            apply_field(sub, name, value);
            return;
        }
    }
    let key: String = title
        .or(field_ref)
        .unwrap_or("answer")
        .chars()
        .take(80)
        .collect();
    set_custom(sub, &key, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const SECRET: &str = "test-typeform-secret";

    // The documented example payload, trimmed to one answer of each type.
    const BODY: &str = r#"{
  "event_id": "LtWXD3crgy",
  "event_type": "form_response",
  "form_response": {
    "form_id": "lT4Z3j",
    "token": "a3a12ec67a1365927098a606107fac15",
    "submitted_at": "2018-01-18T18:17:02Z",
    "landed_at": "2018-01-18T18:07:02Z",
    "calculated": {"score": 9},
    "hidden": {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "winter"},
    "definition": {
      "id": "lT4Z3j",
      "title": "Webhooks example",
      "fields": [
        {"id": "f1", "title": "What's your first name?", "type": "short_text", "ref": "first_name"},
        {"id": "f2", "title": "Company", "type": "short_text", "ref": "01GRC8GR2QX0Y6F3BD3QEG8E1H"},
        {"id": "f3", "title": "Your email", "type": "email", "ref": "9f1c"},
        {"id": "f4", "title": "Which city?", "type": "multiple_choice", "ref": "city"},
        {"id": "f5", "title": "Interests", "type": "multiple_choice", "ref": "interests"},
        {"id": "f6", "title": "Team size", "type": "number", "ref": "team"},
        {"id": "f7", "title": "Phone", "type": "phone_number", "ref": "ph"},
        {"id": "f8", "title": "Subscribe to news?", "type": "yes_no", "ref": "newsletter"},
        {"id": "f9", "title": "Start date", "type": "date", "ref": "start"}
      ]
    },
    "answers": [
      {"type": "text", "text": "Laura", "field": {"id": "f1", "type": "short_text", "ref": "first_name"}},
      {"type": "text", "text": "Acme Inc", "field": {"id": "f2", "type": "short_text", "ref": "01GRC8GR2QX0Y6F3BD3QEG8E1H"}},
      {"type": "email", "email": "laura@example.com", "field": {"id": "f3", "type": "email", "ref": "9f1c"}},
      {"type": "choice", "choice": {"label": "Barcelona"}, "field": {"id": "f4", "type": "multiple_choice", "ref": "city"}},
      {"type": "choices", "choices": {"labels": ["London", "Sydney"], "other": "Oslo"}, "field": {"id": "f5", "type": "multiple_choice", "ref": "interests"}},
      {"type": "number", "number": 25, "field": {"id": "f6", "type": "number", "ref": "team"}},
      {"type": "phone_number", "phone_number": "+15555555555", "field": {"id": "f7", "type": "phone_number", "ref": "ph"}},
      {"type": "boolean", "boolean": true, "field": {"id": "f8", "type": "yes_no", "ref": "newsletter"}},
      {"type": "date", "date": "2018-02-01", "field": {"id": "f9", "type": "date", "ref": "start"}},
      {"type": "payment", "payment": {"amount": "1.00", "last4": "1234", "name": "Laura"}, "field": {"id": "f10", "type": "payment", "ref": "pay"}}
    ],
    "ending": {"id": "dN5FLyFpCMFo", "ref": "01GRC8GR2QX0Y6F3BD3QEG8E1H"}
  }
}"#;

    fn providers() -> Providers {
        configured(&[("TYPEFORM_SECRET", SECRET)])
    }

    fn signed(body: &str) -> leadflow::edge::InboundRequest {
        let sig = format!("sha256={}", b64_hmac(SECRET, &[body.as_bytes()]));
        request(
            "POST",
            body.as_bytes(),
            &[("Typeform-Signature", &sig)],
            &[],
        )
    }

    #[tokio::test]
    async fn documented_payload_becomes_a_submission() {
        let out = providers()
            .handle("typeform", &signed(BODY), at(1_700_000_000))
            .await
            .unwrap();
        let s = one(out);
        assert_eq!(s.provider, "typeform");
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform("a3a12ec67a1365927098a606107fac15".into())
        );
        assert_eq!(s.kind, TouchKind::FormSubmission);
        assert_eq!(s.occurred_at.to_rfc3339(), "2018-01-18T18:17:02+00:00");
        assert_eq!(s.contact.email.as_deref(), Some("laura@example.com"));
        assert_eq!(s.contact.first_name.as_deref(), Some("Laura"));
        assert_eq!(s.contact.company.as_deref(), Some("Acme Inc"));
        assert_eq!(s.contact.phone.as_deref(), Some("+15555555555"));
        assert_eq!(s.attribution.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(s.attribution.utm_campaign.as_deref(), Some("winter"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("lT4Z3j"));
        assert_eq!(s.custom["which_city"], "Barcelona");
        assert_eq!(s.custom["interests"], "London, Sydney, Oslo");
        assert_eq!(s.custom["team_size"], "25");
        assert_eq!(s.custom["start_date"], "2018-02-01");
        assert_eq!(s.custom["typeform_score"], "9");
        assert!(s.consent.as_ref().is_some_and(|c| c.marketing_opt_in));
        assert!(
            !s.custom.values().any(|v| v.contains("1234")),
            "payment kept"
        );
        assert_eq!(s.channel_hint, None);
        assert_eq!(s.source_hint.as_deref(), Some("typeform"));
    }

    #[tokio::test]
    async fn partial_response_is_a_partial_touch() {
        let body = r#"{"event_id":"p1","event_type":"form_response_partial","form_response":{"form_id":"lT4Z3j","token":"tok-partial","landed_at":"2024-05-01T10:00:00Z","answers":[{"type":"text","text":"Sam","field":{"id":"f1","type":"short_text","ref":"first_name"}}]}}"#;
        let s = one(parse(&signed(body)));
        assert_eq!(s.kind, TouchKind::PartialSubmission);
        assert_eq!(s.occurred_at.to_rfc3339(), "2024-05-01T10:00:00+00:00");
        assert_eq!(s.contact.email, None);
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers();
        let now = at(1_700_000_000);
        // Tampered body.
        let mut req = signed(BODY);
        req.body = BODY.replace("Laura", "Mallory").into_bytes();
        let e = p.handle("typeform", &req, now).await.unwrap_err();
        assert_eq!(e.code(), "invalid_signature");
        // Wrong secret.
        let sig = format!("sha256={}", b64_hmac("other", &[BODY.as_bytes()]));
        let req = request(
            "POST",
            BODY.as_bytes(),
            &[("typeform-signature", &sig)],
            &[],
        );
        let e = p.handle("typeform", &req, now).await.unwrap_err();
        assert_eq!(e.code(), "invalid_signature");
        // Missing header.
        let req = request("POST", BODY.as_bytes(), &[], &[]);
        let e = p.handle("typeform", &req, now).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "missing_signature"));
        // Malformed header (no `sha256=`).
        let sig = b64_hmac(SECRET, &[BODY.as_bytes()]);
        let req = request(
            "POST",
            BODY.as_bytes(),
            &[("typeform-signature", &sig)],
            &[],
        );
        let e = p.handle("typeform", &req, now).await.unwrap_err();
        assert_eq!(e.code(), "invalid_signature");
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        let now = at(1_700_000_000);
        for (body, want) in [
            ("{\"event_type\": \"form_response\", ", "truncated JSON"),
            (r#"{"event_type":"form_response"}"#, "no form_response"),
            (
                r#"{"event_type":"form_response","form_response":{"answers":[]}}"#,
                "no token",
            ),
            (
                r#"{"event_type":"form_response","form_response":{"token":"t","answers":[{"type":"hologram","hologram":"x","field":{"id":"a"}}]}}"#,
                "hologram",
            ),
        ] {
            let reason = quarantine_reason(p.handle("typeform", &signed(body), now).await.unwrap());
            assert!(reason.contains(want), "{reason}");
        }
    }

    #[test]
    fn other_event_types_are_ignored() {
        let body = r#"{"event_type":"form_deleted","form_response":{}}"#;
        ignored_reason(parse(&signed(body)));
    }

    // --- The signature scheme (published vectors first) ---

    #[test]
    fn typeform_failure_modes() {
        let body = br#"{"event_id":"01"}"#;
        let good = format!("sha256={}", b64(&hmac_sha256(b"tf", &[body])));
        assert_eq!(verify_typeform("tf", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_typeform("tf", br#"{"event_id":"02"}"#, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_typeform("nope", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_typeform("tf", body, Some("")),
            Err(SignatureError::Missing(_))
        ));
        // Hex where base64 is expected does not verify.
        let hex_sig = format!("sha256={}", hex::encode(hmac_sha256(b"tf", &[body])));
        assert!(verify_typeform("tf", body, Some(&hex_sig)).is_err());
        assert!(matches!(
            verify_typeform("tf", body, Some(&good[7..])),
            Err(SignatureError::Malformed(_))
        ));
    }
}
