//! The `form` provider: plain HTML forms and sites posting JSON with `fetch`.
//!
//! Accepts `application/x-www-form-urlencoded`, `multipart/form-data` and `application/json`
//! (415 otherwise). Field names are mapped by `leadflow::fields` (`email`, `your-email`, `tel`,
//! `fname`, `utm_*`...); everything else is kept as custom answers. A filled honeypot field is
//! answered as if accepted and nothing is stored. A browser posting a plain form gets a 303 to
//! the thank-you page (`_redirect` on an allowed origin, else `FORM_REDIRECT_URL`); a request
//! that accepts JSON, or a form with no thank-you page, gets JSON.
//!
//! Retries: an `Idempotency-Key` header is scoped to the form (`?form=` or a form id field)
//! and remembered 24 hours with a fingerprint of the parsed fields: the same key with the same
//! fields is `duplicate` however it was encoded (a re-sent multipart body has a new boundary),
//! the same key with other fields is 422 `idempotency_key_reused`. Without a key the same
//! fingerprint within 24 hours is the duplicate. A submission the store rejects for good (over a
//! DynamoDB limit) is 422 `unstorable_submission`, never a 503 that would be retried forever.

use std::collections::BTreeMap;

use leadflow::consent::IpPepper;
use leadflow::edge::{redirect_response, AppError, InboundRequest, Response};
use leadflow::fields::{apply_field, apply_url_params, field_role, FieldRole};
use leadflow::limits::label;
use leadflow::model::{DeliveryKey, IngestOutcome, IngestStatus, Submission, TouchKind};
use leadflow::multipart::read_multipart_fields;
use leadflow::store::new_id;
use leadflow::telemetry::Metrics;
use serde_json::Value;

use crate::{ingest_one, outcome_response, AppState};

/// Longest client-chosen idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;

#[derive(Debug, Clone)]
pub struct FormConfig {
    /// A field real people never see or fill (`FORM_HONEYPOT_FIELD`, default `_gotcha`).
    pub honeypot_field: String,
    /// Default thank-you page (`FORM_REDIRECT_URL`).
    pub redirect_url: Option<String>,
    /// Keys the IP kept as consent evidence (`CONSENT_IP_PEPPER`); unset: no IP is kept.
    pub consent_ip_pepper: IpPepper,
}

impl FormConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<FormConfig, String> {
        Ok(FormConfig {
            consent_ip_pepper: IpPepper::from_lookup(&get)?,
            honeypot_field: get("FORM_HONEYPOT_FIELD")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "_gotcha".to_string()),
            redirect_url: get("FORM_REDIRECT_URL")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }
}

pub async fn handle(
    state: &AppState,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    if req.method != "POST" {
        return Err(AppError::MethodNotAllowed(req.method.clone()));
    }
    state.cors.check(req)?;
    let fields = read_fields(req).await?;

    let honeypot = &state.form.honeypot_field;
    let redirect_field = fields
        .iter()
        .find(|(k, _)| k == "_redirect" || k == "_next")
        .map(|(_, v)| v.trim().to_string());
    let redirect = choose_redirect(state, redirect_field.as_deref());

    if fields
        .iter()
        .any(|(k, v)| k == honeypot && !v.trim().is_empty())
    {
        // A bot filled the invisible field: answer exactly like a success, store nothing.
        metrics.count("honeypot", 1.0);
        tracing::info!("honeypot field filled; submission dropped");
        let fake = IngestOutcome {
            status: IngestStatus::Created,
            lead_id: new_id(),
            touch_id: new_id(),
        };
        return Ok(answer(req, redirect.as_deref(), &fake));
    }

    let mut sub = submission_from_fields(req, &fields, honeypot);
    if let Some(consent) = &mut sub.consent {
        consent.ip_hash = state.form.consent_ip_pepper.hash(req.source_ip.as_deref());
    }
    let outcome = match ingest_one(state, sub, req.received_at, metrics).await {
        Ok(o) => o,
        // DynamoDB rejected the write for good: the same post would fail the same way.
        Err(AppError::Storage(e)) if !e.is_transient() => {
            tracing::error!(error = %e, "form submission rejected by the store");
            return Err(AppError::Unprocessable {
                code: "unstorable_submission",
                field: None,
                message: "the submission cannot be stored as sent (a value exceeds the \
                          storage limits); it was not saved"
                    .to_string(),
            });
        }
        Err(e) => return Err(e),
    };
    Ok(answer(req, redirect.as_deref(), &outcome))
}

fn answer(req: &InboundRequest, redirect: Option<&str>, outcome: &IngestOutcome) -> Response {
    match redirect {
        Some(url) if !req.wants_json() => redirect_response(url),
        _ => outcome_response(outcome),
    }
}

/// `_redirect` is honoured only on an allowed origin (an open redirect is a phishing tool);
/// otherwise the configured default, if any.
fn choose_redirect(state: &AppState, requested: Option<&str>) -> Option<String> {
    if let Some(url) = requested.filter(|u| !u.is_empty()) {
        if state.cors.allows_url(url) {
            return Some(url.to_string());
        }
        tracing::warn!("_redirect target is not on an allowed origin; ignored");
    }
    state.form.redirect_url.clone()
}

/// The body's fields as name/value pairs, by content type.
pub async fn read_fields(req: &InboundRequest) -> Result<Vec<(String, String)>, AppError> {
    let media = req
        .media_type()
        .ok_or_else(|| AppError::UnsupportedMediaType("(none)".to_string()))?;
    if req.body.is_empty() {
        return Err(AppError::bad_request(
            "empty_body",
            "body",
            "the request has no body",
        ));
    }
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()),
        "multipart/form-data" => {
            let ct = req.header("content-type").unwrap_or_default();
            read_multipart_fields(ct, &req.body)
                .await
                .map_err(|m| AppError::bad_request("invalid_multipart", "body", m))
        }
        "application/json" => json_fields(&req.body),
        other => Err(AppError::UnsupportedMediaType(other.to_string())),
    }
}

/// A JSON object's fields; nested objects flatten to `parent.child`, arrays join with `, `.
fn json_fields(body: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(
            "invalid_json",
            "body",
            format!("body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(AppError::bad_request(
            "invalid_json",
            "body",
            "body must be a JSON object of form fields",
        ));
    };
    let mut out = Vec::new();
    flatten("", &Value::Object(map), &mut out, 0);
    Ok(out)
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>, depth: usize) {
    match value {
        Value::Object(map) if depth < 4 => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out, depth + 1);
            }
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(scalar).collect();
            out.push((prefix.to_string(), parts.join(", ")));
        }
        other => {
            if let Some(s) = scalar(other) {
                out.push((prefix.to_string(), s));
            }
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Builds the submission: fields by role, repeated custom fields (checkbox groups) joined, the
/// form id from the query (`?form=contact`), UTMs from the page the form was posted from.
pub fn submission_from_fields(
    req: &InboundRequest,
    fields: &[(String, String)],
    honeypot: &str,
) -> Submission {
    // Replaced below, once the form id (the idempotency scope) is known.
    let placeholder = DeliveryKey::BodyHash(String::new());
    let mut sub = Submission::new(
        "form",
        placeholder,
        TouchKind::FormSubmission,
        req.received_at,
    );
    if let Some(form_id) = req.query.get("form").or_else(|| req.query.get("form_id")) {
        sub.attribution.form_id = Some(label(form_id)).filter(|f| !f.is_empty());
    }
    // Group repeated names (`interests=a&interests=b`) so custom answers keep every value.
    let mut custom_multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in fields {
        if name == honeypot {
            continue;
        }
        let clean = name.trim_end_matches("[]");
        if field_role(clean) == FieldRole::Custom {
            custom_multi
                .entry(clean.to_string())
                .or_default()
                .push(value.clone());
        } else {
            apply_field(&mut sub, clean, value);
        }
    }
    for (name, values) in custom_multi {
        apply_field(&mut sub, &name, &values.join(", "));
    }
    if sub.attribution.landing_page.is_none() {
        sub.attribution.landing_page = req.header("referer").map(str::to_string);
    }
    if let Some(page) = sub.attribution.landing_page.clone() {
        apply_url_params(&mut sub, &page);
    }
    if let Some(consent) = &mut sub.consent {
        if consent.text.is_none() {
            consent.text = sub.attribution.form_id.clone();
        }
        consent.page = sub.attribution.landing_page.clone();
    }
    let scope = sub.attribution.form_id.clone().unwrap_or_default();
    let fingerprint = DeliveryKey::fields_fingerprint("form", &scope, fields);
    sub.delivery = match req.header("idempotency-key").map(str::trim) {
        Some(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => DeliveryKey::Idempotency {
            scope,
            key: k.to_string(),
            fingerprint,
        },
        _ => DeliveryKey::BodyHash(fingerprint),
    };
    sub
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_flattens_nested_and_arrays() {
        let f =
            json_fields(br#"{"contact":{"email":"a@x.io"},"interests":["a","b"],"n":3}"#).unwrap();
        assert!(f.contains(&("contact.email".into(), "a@x.io".into())));
        assert!(f.contains(&("interests".into(), "a, b".into())));
        assert!(f.contains(&("n".into(), "3".into())));
        assert_eq!(json_fields(b"[1]").unwrap_err().code(), "invalid_json");
        assert_eq!(json_fields(b"{").unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn submission_keeps_every_checkbox_and_page_utms() {
        let mut req = InboundRequest {
            body: b"x".to_vec(),
            ..Default::default()
        };
        req.headers.insert(
            "referer".into(),
            "https://acme.io/demo?utm_source=linkedin&utm_medium=paid_social".into(),
        );
        req.query.insert("form".into(), "demo-request".into());
        let fields = vec![
            ("email".to_string(), "a@example.com".to_string()),
            ("interests[]".to_string(), "crm".to_string()),
            ("interests[]".to_string(), "ads".to_string()),
            ("_gotcha".to_string(), String::new()),
            ("consent".to_string(), "on".to_string()),
        ];
        let sub = submission_from_fields(&req, &fields, "_gotcha");
        assert_eq!(
            sub.custom.get("interests").map(String::as_str),
            Some("crm, ads")
        );
        assert_eq!(sub.attribution.utm_source.as_deref(), Some("linkedin"));
        assert_eq!(sub.attribution.form_id.as_deref(), Some("demo-request"));
        let consent = sub.consent.unwrap();
        assert!(consent.marketing_opt_in);
        assert_eq!(consent.text.as_deref(), Some("demo-request"));
        assert!(matches!(sub.delivery, DeliveryKey::BodyHash(_)));
    }
}
