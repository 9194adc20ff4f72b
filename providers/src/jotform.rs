//! Jotform: `POST multipart/form-data` with `formID`, `submissionID`, `rawRequest` (a JSON
//! string keyed `q<N>_<name>`: `q3_email`, `q4_name` as `{first, last}`, `q5_phoneNumber` as
//! `{full}` or `{area, phone}`, addresses as objects, checkboxes as arrays) and `pretty`.
//!
//! Unsigned: the webhook URL carries a secret, `?key=<JOTFORM_KEY>`, compared in constant time.
//! Idempotency key: `submissionID`. Only `q<N>_` keys of `rawRequest` are answers; the rest is
//! Jotform's bookkeeping (`slug`, `event_id`, `jsExecutionTracker`...).

use leadflow::edge::InboundRequest;
use leadflow::fields::{apply_field, field_role, FieldRole};
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::multipart::read_multipart_fields;
use serde_json::{Map, Value};

use super::{json_error, quarantine, set_custom, time_value, value_text, ProviderOutcome};
use crate::{verify_query_key, Parse, Platform, Variable};

pub const PROVIDER: &str = "jotform";

pub const KEY: Variable = Variable::required_secret(
    "JOTFORM_KEY",
    "any random string, appended to the webhook URL as `?key=<value>` (Jotform does not sign)",
);

/// Jotform, `/webhooks/jotform`.
pub const PLATFORM: Platform = Platform::new(
    PROVIDER,
    &KEY,
    &[&KEY],
    verify_query_key,
    Parse::Later(|req| Box::pin(parse(req))),
);

/// The form fields of the body: multipart as Jotform sends it, urlencoded as a fallback.
async fn read_fields(req: &InboundRequest) -> Result<Vec<(String, String)>, String> {
    let content_type = req.header("content-type").unwrap_or("");
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        read_multipart_fields(content_type, &req.body).await
    } else {
        Ok(form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect())
    }
}

/// `q12_email3` -> `email3`; `None` for keys that are not answers.
fn question_name(key: &str) -> Option<&str> {
    let rest = key.strip_prefix('q')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    rest[digits..].strip_prefix('_').filter(|n| !n.is_empty())
}

/// Jotform numbers repeated field names (`email3`, `phoneNumber12`): the role is that of the
/// name without its trailing digits when the full name has none.
fn role_name(name: &str) -> String {
    if field_role(name) != FieldRole::Custom {
        return name.to_string();
    }
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if !trimmed.is_empty() && field_role(trimmed) != FieldRole::Custom {
        trimmed.to_string()
    } else {
        name.to_string()
    }
}

fn apply_object(sub: &mut Submission, name: &str, obj: &Map<String, Value>) {
    let part = |k: &str| obj.get(k).and_then(value_text);
    let role = field_role(&role_name(name));
    // Names: {prefix, first, middle, last, suffix}.
    if obj.contains_key("first") || obj.contains_key("last") {
        if let Some(first) = part("first") {
            apply_field(sub, "first_name", &first);
        }
        if let Some(last) = part("last") {
            apply_field(sub, "last_name", &last);
        }
        return;
    }
    // Phones: {full} or {area, phone}.
    if role == FieldRole::Phone || obj.contains_key("full") || obj.contains_key("area") {
        let number = part("full").or_else(|| {
            let joined = [part("country"), part("area"), part("phone")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            Some(joined).filter(|s| !s.is_empty())
        });
        if let Some(number) = number {
            apply_field(sub, "phone", &number);
        }
        return;
    }
    // Addresses and anything else: country placed, the other parts kept as custom answers.
    for (k, v) in obj {
        let Some(text) = value_text(v) else {
            continue;
        };
        if k == "country" {
            apply_field(sub, "country", &text);
        } else {
            set_custom(sub, &format!("{name}_{k}"), &text);
        }
    }
}

pub async fn parse(req: &InboundRequest) -> ProviderOutcome {
    let fields = match read_fields(req).await {
        Ok(f) => f,
        Err(reason) => return quarantine(format!("jotform body: {reason}")),
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let Some(submission_id) = get("submissionID") else {
        return quarantine("jotform body has no submissionID");
    };
    let Some(raw) = get("rawRequest") else {
        return quarantine("jotform body has no rawRequest");
    };
    let raw = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return quarantine("jotform rawRequest is not an object"),
        Err(e) => return quarantine(format!("jotform rawRequest: {}", json_error(&e))),
    };
    let occurred_at = time_value(raw.get("submitDate")).unwrap_or(req.received_at);
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(submission_id.to_string()),
        TouchKind::FormSubmission,
        occurred_at,
    );
    sub.source_hint = Some(PROVIDER.to_string());
    sub.attribution.form_id = get("formID").map(str::to_string);

    // Answers in question order (q2 before q10), as the form shows them.
    let mut answers: Vec<(u64, &str, &Value)> = raw
        .iter()
        .filter_map(|(k, v)| {
            let name = question_name(k)?;
            let n = k[1..].split('_').next()?.parse::<u64>().ok()?;
            Some((n, name, v))
        })
        .collect();
    answers.sort_by_key(|(n, _, _)| *n);
    for (_, name, value) in answers {
        match value {
            Value::Object(obj) => apply_object(&mut sub, name, obj),
            other => {
                if let Some(text) = value_text(other) {
                    let key = role_name(name);
                    apply_field(&mut sub, &key, &text);
                }
            }
        }
    }
    if let Some(title) = get("formTitle") {
        set_custom(&mut sub, "jotform_form", title);
    }
    ProviderOutcome::Submissions(vec![sub])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const KEY: &str = "test-jotform-key";
    const BOUNDARY: &str = "------------------------jotformBoundary1a2b";

    fn providers() -> Providers {
        configured(&[("JOTFORM_KEY", KEY)])
    }

    const RAW: &str = r#"{"slug":"submit/231234567890123","jsExecutionTracker":"build-date-1700000000000","submitSource":"form","submitDate":"1700000000000","buildDate":"1700000000000","uploadServerUrl":"https://upload.jotform.com/upload","eventObserver":"1","q3_email":"annie@example.com","q4_name":{"first":"Annie","last":"Easley"},"q5_phoneNumber":{"full":"(216) 555-0143"},"q6_company":"NASA Lewis","q7_address":{"addr_line1":"21000 Brookpark Rd","city":"Cleveland","state":"OH","postal":"44135","country":"United States"},"q8_interests":["Rockets","Batteries"],"q9_utm_source":"facebook","q10_utm_medium":"paid_social","q11_typeA":"Fuel cells","q12_email12":"second@example.com","event_id":"1700000000000_231234567890123_abc","timeToSubmit":"31","path":"/submit/231234567890123","validatedNewRequiredFieldIDs":"{\"new\":1}"}"#;

    fn multipart(parts: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (name, value) in parts {
            out.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        out.push_str(&format!("--{BOUNDARY}--\r\n"));
        out
    }

    fn body() -> String {
        multipart(&[
            ("formID", "231234567890123"),
            ("submissionID", "5790123456789012345"),
            (
                "webhookURL",
                "https://hooks.example.com/webhooks/jotform?key=redacted",
            ),
            ("ip", "203.0.113.50"),
            ("formTitle", "Contact Us"),
            ("pretty", "E-mail:annie@example.com, Name:Annie Easley"),
            ("username", "acme"),
            ("rawRequest", RAW),
            ("type", "WEB"),
        ])
    }

    fn req(body: &str, key: Option<&str>) -> InboundRequest {
        let query: Vec<(&str, &str)> = key.map(|k| vec![("key", k)]).unwrap_or_default();
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        request("POST", body.as_bytes(), &[("content-type", &ct)], &query)
    }

    #[tokio::test]
    async fn documented_payload_becomes_a_submission() {
        let s = one(providers()
            .handle("jotform", &req(&body(), Some(KEY)), at(0))
            .await
            .unwrap());
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform("5790123456789012345".into())
        );
        assert_eq!(s.occurred_at.timestamp(), 1_700_000_000);
        assert_eq!(s.contact.email.as_deref(), Some("annie@example.com"));
        assert_eq!(s.contact.first_name.as_deref(), Some("Annie"));
        assert_eq!(s.contact.last_name.as_deref(), Some("Easley"));
        assert_eq!(s.contact.phone.as_deref(), Some("(216) 555-0143"));
        assert_eq!(s.contact.company.as_deref(), Some("NASA Lewis"));
        assert_eq!(s.contact.country.as_deref(), Some("United States"));
        assert_eq!(s.custom["address_city"], "Cleveland");
        assert_eq!(s.custom["interests"], "Rockets, Batteries");
        assert_eq!(s.custom["typea"], "Fuel cells");
        assert_eq!(s.attribution.utm_source.as_deref(), Some("facebook"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("231234567890123"));
        assert!(!s.custom.contains_key("slug"));
        assert!(!s.custom.contains_key("event_id"));
        assert!(
            !s.custom.values().any(|v| v.contains("second@example.com")),
            "email12 went to custom"
        );
    }

    #[tokio::test]
    async fn key_failures() {
        let p = providers();
        let e = p
            .handle("jotform", &req(&body(), Some("nope")), at(0))
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "invalid_signature"));
        let e = p
            .handle("jotform", &req(&body(), None), at(0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "missing_signature");
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (b, want) in [
            ("not multipart at all".to_string(), "body"),
            (multipart(&[("rawRequest", "{}")]), "submissionID"),
            (multipart(&[("submissionID", "1")]), "rawRequest"),
            (
                multipart(&[("submissionID", "1"), ("rawRequest", "{\"q3_email\":")]),
                "rawRequest",
            ),
            (
                multipart(&[("submissionID", "1"), ("rawRequest", "[]")]),
                "not an object",
            ),
        ] {
            let reason = quarantine_reason(
                p.handle("jotform", &req(&b, Some(KEY)), at(0))
                    .await
                    .unwrap(),
            );
            assert!(reason.contains(want), "{reason}");
        }
    }

    #[test]
    fn question_names() {
        assert_eq!(question_name("q3_email"), Some("email"));
        assert_eq!(question_name("q12_phoneNumber12"), Some("phoneNumber12"));
        assert_eq!(question_name("q_x"), None);
        assert_eq!(question_name("q3_"), None);
        assert_eq!(question_name("slug"), None);
        assert_eq!(role_name("email12"), "email");
        assert_eq!(role_name("budget2"), "budget2");
    }
}
