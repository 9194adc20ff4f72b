//! Tally: `POST` JSON `{eventId, eventType: "FORM_RESPONSE", createdAt, data: {responseId,
//! submissionId, respondentId, formId, formName, createdAt, fields: [{key, label, type, value,
//! options?}]}}`, signed with `Tally-Signature: <base64 HMAC-SHA256(signing secret, raw body)>`
//! (`TALLY_SECRET`). Idempotency key: `data.responseId`.
//!
//! Values are read generically (string, number, boolean, or an array of option ids resolved
//! through `options[].text`); email and phone inputs are placed by their type, everything else
//! by its label (`First name`, `utm_source` hidden fields...). File uploads, signatures and
//! payments are not kept.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use leadflow::edge::InboundRequest;
use leadflow::fields::apply_field;
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::Value;

use super::{
    fill, ignored, parse_json, quarantine, str_at, time_value, value_text, ProviderOutcome,
};
use crate::{Parse, Platform, Variable};

pub const PROVIDER: &str = "tally";

pub const SECRET: Variable = Variable::required_secret(
    "TALLY_SECRET",
    "the webhook's signing secret in Tally (form > Integrations > Webhooks)",
);

/// Tally, `/webhooks/tally`.
pub const PLATFORM: Platform =
    Platform::new(PROVIDER, &SECRET, &[&SECRET], verify, Parse::Now(parse));

/// Checks a delivery with the configured secret.
fn verify(secret: &str, req: &InboundRequest, _now: DateTime<Utc>) -> Result<(), SignatureError> {
    verify_tally(secret, &req.body, req.header("tally-signature"))
}

/// Tally's scheme: `Tally-Signature: <base64 HMAC-SHA256(signing secret, body)>`.
pub fn verify_tally(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = signature::required(header, "Tally-Signature")?;
    signature::verify_hmac_base64(secret.as_bytes(), &[body], header)
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "tally body") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    match str_at(&v, "eventType") {
        Some("FORM_RESPONSE") => {}
        Some(other) => return ignored(format!("tally eventType {other:?} is not a response")),
        None => return quarantine("tally body has no eventType"),
    }
    let Some(data) = v.get("data").filter(|d| d.is_object()) else {
        return quarantine("tally body has no data object");
    };
    let Some(response_id) = str_at(data, "responseId") else {
        return quarantine("tally data has no responseId");
    };
    let fields = match data.get("fields") {
        Some(Value::Array(f)) => f.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return quarantine("tally data.fields is not an array"),
    };
    let occurred_at = time_value(data.get("createdAt"))
        .or_else(|| time_value(v.get("createdAt")))
        .unwrap_or(req.received_at);
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(response_id.to_string()),
        TouchKind::FormSubmission,
        occurred_at,
    );
    sub.source_hint = Some(PROVIDER.to_string());
    fill(&mut sub.attribution.form_id, str_at(data, "formId"));

    for field in fields {
        let field_type = str_at(field, "type").unwrap_or("");
        if matches!(field_type, "FILE_UPLOAD" | "SIGNATURE" | "PAYMENT") {
            continue;
        }
        let Some(text) = field_text(field) else {
            continue;
        };
        let label = str_at(field, "label").or_else(|| str_at(field, "key"));
        match field_type {
            "INPUT_EMAIL" => {
                apply_field(&mut sub, "email", &text);
            }
            "INPUT_PHONE_NUMBER" => {
                apply_field(&mut sub, "phone", &text);
            }
            _ => {
                if let Some(label) = label {
                    let name: String = label.chars().take(80).collect();
                    apply_field(&mut sub, &name, &text);
                }
            }
        }
    }
    ProviderOutcome::Submissions(vec![sub])
}

/// A field's value as text; option ids (choices, dropdowns) become the option texts.
fn field_text(field: &Value) -> Option<String> {
    let value = field.get("value")?;
    if let (Value::Array(ids), Some(options)) =
        (value, field.get("options").and_then(Value::as_array))
    {
        let names: HashMap<&str, &str> = options
            .iter()
            .filter_map(|o| Some((str_at(o, "id")?, str_at(o, "text")?)))
            .collect();
        let parts: Vec<String> = ids
            .iter()
            .filter_map(|id| match id {
                Value::String(s) => Some(
                    names
                        .get(s.as_str())
                        .map_or_else(|| s.clone(), |n| n.to_string()),
                ),
                other => value_text(other),
            })
            .collect();
        return Some(parts.join(", ")).filter(|s| !s.is_empty());
    }
    value_text(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const SECRET: &str = "test-tally-secret";

    const BODY: &str = r#"{"eventId":"a4cb511e-d513-4fa5-baee-b815d718dfd1","eventType":"FORM_RESPONSE","createdAt":"2023-06-28T15:00:21.889Z","data":{"responseId":"2wgx4n","submissionId":"2wgx4n","respondentId":"dwQKYm","formId":"VwbNEw","formName":"Webhook payload","createdAt":"2023-06-28T15:00:21.000Z","fields":[{"key":"question_mVGEg3","label":"First name","type":"INPUT_TEXT","value":"Alan"},{"key":"question_nPpW6z","label":"Work address","type":"INPUT_EMAIL","value":"alan@example.com"},{"key":"question_3EKz4n","label":"Phone","type":"INPUT_PHONE_NUMBER","value":"+44 20 7946 0018"},{"key":"question_w4Q4Xe","label":"Budget","type":"MULTIPLE_CHOICE","value":["5c1b7a59-1b3d-4b0a-9d5f-3c2f6a0b1c11"],"options":[{"id":"5c1b7a59-1b3d-4b0a-9d5f-3c2f6a0b1c11","text":"10k-50k"},{"id":"0f6a4d1e-0d6c-4f0b-8c1f-7a9d2e3b4c55","text":"50k+"}]},{"key":"question_3jZaa6","label":"Newsletter","type":"CHECKBOX","value":true},{"key":"question_wMZxQ9","label":"Seats","type":"INPUT_NUMBER","value":12},{"key":"question_n0xPRa","label":"utm_source","type":"HIDDEN_FIELDS","value":"producthunt"},{"key":"question_file","label":"Deck","type":"FILE_UPLOAD","value":[{"id":"1","name":"deck.pdf","url":"https://storage.tally.so/x"}]},{"key":"question_empty","label":"Comments","type":"TEXTAREA","value":null}]}}"#;

    fn providers() -> Providers {
        configured(&[("TALLY_SECRET", SECRET)])
    }

    fn signed(body: &str) -> InboundRequest {
        let sig = b64_hmac(SECRET, &[body.as_bytes()]);
        request("POST", body.as_bytes(), &[("Tally-Signature", &sig)], &[])
    }

    #[tokio::test]
    async fn documented_payload_becomes_a_submission() {
        let s = one(providers()
            .handle("tally", &signed(BODY), at(0))
            .await
            .unwrap());
        assert_eq!(s.delivery, DeliveryKey::Platform("2wgx4n".into()));
        assert_eq!(s.kind, TouchKind::FormSubmission);
        assert_eq!(s.occurred_at.to_rfc3339(), "2023-06-28T15:00:21+00:00");
        assert_eq!(s.contact.first_name.as_deref(), Some("Alan"));
        assert_eq!(s.contact.email.as_deref(), Some("alan@example.com"));
        assert_eq!(s.contact.phone.as_deref(), Some("+44 20 7946 0018"));
        assert_eq!(s.custom["budget"], "10k-50k");
        assert_eq!(s.custom["seats"], "12");
        assert!(s.consent.as_ref().is_some_and(|c| c.marketing_opt_in));
        assert_eq!(s.attribution.utm_source.as_deref(), Some("producthunt"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("VwbNEw"));
        assert!(!s.custom.contains_key("deck"));
        assert_eq!(s.source_hint.as_deref(), Some("tally"));
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers();
        let mut req = signed(BODY);
        req.body = BODY.replace("Alan", "Mallory").into_bytes();
        assert_eq!(
            p.handle("tally", &req, at(0)).await.unwrap_err().code(),
            "invalid_signature"
        );
        let req = request(
            "POST",
            BODY.as_bytes(),
            &[("tally-signature", &b64_hmac("x", &[BODY.as_bytes()]))],
            &[],
        );
        assert_eq!(
            p.handle("tally", &req, at(0)).await.unwrap_err().code(),
            "invalid_signature"
        );
        let req = request("POST", BODY.as_bytes(), &[], &[]);
        assert_eq!(
            p.handle("tally", &req, at(0)).await.unwrap_err().code(),
            "missing_signature"
        );
        // Hex instead of base64: not Tally's encoding.
        let req = request(
            "POST",
            BODY.as_bytes(),
            &[("tally-signature", &hex_hmac(SECRET, &[BODY.as_bytes()]))],
            &[],
        );
        assert!(p.handle("tally", &req, at(0)).await.is_err());
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (body, want) in [
            ("{\"eventType\":\"FORM_RESP", "JSON"),
            (r#"{"eventType":"FORM_RESPONSE"}"#, "no data"),
            (
                r#"{"eventType":"FORM_RESPONSE","data":{"fields":[]}}"#,
                "responseId",
            ),
            (
                r#"{"eventType":"FORM_RESPONSE","data":{"responseId":"r","fields":{"a":1}}}"#,
                "not an array",
            ),
        ] {
            let reason = quarantine_reason(p.handle("tally", &signed(body), at(0)).await.unwrap());
            assert!(reason.contains(want), "{reason}");
        }
        ignored_reason(
            p.handle("tally", &signed(r#"{"eventType":"FORM_DELETED"}"#), at(0))
                .await
                .unwrap(),
        );
    }

    // --- The signature scheme (published vectors first) ---

    #[test]
    fn tally_failure_modes() {
        let body = br#"{"eventId":"e"}"#;
        let good = b64(&hmac_sha256(b"ta", &[body]));
        assert_eq!(verify_tally("ta", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_tally("ta", b"{}", Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_tally("tb", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_tally("ta", body, None),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_tally("ta", body, Some("not base64!")),
            Err(SignatureError::Malformed(_))
        ));
    }
}
