//! Webflow form submissions, signed with `x-webflow-signature = hex(HMAC-SHA256(secret,
//! timestamp + ":" + raw body))` and `x-webflow-timestamp` (ms) within 5 minutes
//! (`WEBFLOW_SECRET`: the OAuth app's client secret, or the webhook secret of a site token).
//! Webhooks created in the Webflow dashboard are unsigned and therefore refused: create the
//! webhook through the API so it is signed.
//!
//! Payloads: v2 `{"triggerType": "form_submission", "payload": {name, siteId, data{...}, schema[],
//! submittedAt, id, formId}}` and the older v1 `{name, site, data, d, _id}`. `data` maps field
//! names to values. Idempotency key: the submission id (`payload.id` / `_id`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use leadflow::edge::InboundRequest;
use leadflow::fields::{apply_field, apply_url_params};
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::Value;

use super::{
    fill, ignored, parse_json, quarantine, str_at, time_value, value_text, ProviderOutcome,
};
use crate::{Parse, Platform, Variable};

pub const PROVIDER: &str = "webflow";

pub const SECRET: Variable = Variable::required_secret(
    "WEBFLOW_SECRET",
    "the OAuth app's client secret, or the secret of a webhook created with a site token; \
     dashboard-made Webflow webhooks are unsigned and refused",
);

/// Webflow refuses requests older than 5 minutes; so does this.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Webflow forms, `/webhooks/webflow`.
pub const PLATFORM: Platform =
    Platform::new(PROVIDER, &SECRET, &[&SECRET], verify, Parse::Now(parse));

/// Checks a delivery with the configured secret.
fn verify(secret: &str, req: &InboundRequest, now: DateTime<Utc>) -> Result<(), SignatureError> {
    verify_webflow(
        secret,
        &req.body,
        req.header("x-webflow-timestamp"),
        req.header("x-webflow-signature"),
        now,
    )
}

/// Webflow's scheme: `x-webflow-signature = hex(HMAC-SHA256(secret, timestamp + ":" + body))`,
/// `x-webflow-timestamp` in milliseconds, at most 5 minutes old.
pub fn verify_webflow(
    secret: &str,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let signature = signature::required(signature, "x-webflow-signature")?;
    let ts = signature::required(timestamp, "x-webflow-timestamp")?;
    let signed_at = signature::timestamp_millis(ts)?;
    signature::verify_hmac_hex(secret.as_bytes(), &[ts.as_bytes(), b":", body], signature)?;
    signature::check_window(signed_at, now, TOLERANCE)
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "webflow body") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    // v2 wraps the submission in `payload`; v1 is the submission itself.
    let (submission, id, submitted) = match str_at(&v, "triggerType") {
        Some("form_submission") => {
            let Some(p) = v.get("payload").filter(|p| p.is_object()) else {
                return quarantine("webflow form_submission has no payload object");
            };
            (p, str_at(p, "id"), p.get("submittedAt"))
        }
        Some(other) => {
            return ignored(format!(
                "webflow triggerType {other:?} is not a form submission"
            ))
        }
        None => (&v, str_at(&v, "_id"), v.get("d")),
    };
    let Some(id) = id else {
        return quarantine("webflow submission has no id");
    };
    let Some(data) = submission.get("data").and_then(Value::as_object) else {
        return quarantine("webflow submission has no data object");
    };
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(id.to_string()),
        TouchKind::FormSubmission,
        time_value(submitted).unwrap_or(req.received_at),
    );
    sub.source_hint = Some(PROVIDER.to_string());
    let form_id = str_at(submission, "formId").or_else(|| str_at(submission, "name"));
    fill(&mut sub.attribution.form_id, form_id);
    for (name, value) in data {
        if let Some(text) = value_text(value) {
            apply_field(&mut sub, name, &text);
        }
    }
    // Some sites add the page URL as a field; its query carries the UTMs.
    if let Some(url) = sub.attribution.landing_page.clone() {
        apply_url_params(&mut sub, &url);
    }
    ProviderOutcome::Submissions(vec![sub])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const SECRET: &str = "test-webflow-secret";
    const TS_MS: i64 = 1_700_000_000_000;

    const V2: &str = r#"{"triggerType":"form_submission","payload":{"name":"Contact Us","siteId":"65427cf400e02b306eaa049c","data":{"First Name":"Katherine","Last Name":"Johnson","email":"katherine@example.com","Company":"NASA","Message":"Orbit maths","page_url":"https://www.example.com/contact?utm_source=google&utm_medium=cpc&gclid=abc"},"schema":[{"fieldName":"First Name","fieldType":"FormTextInput","fieldElementId":"a"}],"submittedAt":"2023-11-14T22:13:20.000Z","id":"6321a6d7f9f1c3a4f0e2b5c9","formId":"65429eadebe8a9f3a30f62d0","formElementId":"4e038d2c-6a1e-4953-7be9-a59a2b453177"}}"#;
    const V1: &str = r#"{"name":"Newsletter","site":"62749158efef318abc8d5a0f","data":{"Email":"dorothy@example.com","Name":"Dorothy Vaughan"},"d":"2023-11-14T22:13:20.000Z","_id":"6290f8fa2d58d00e2d22c1fa"}"#;

    fn providers() -> Providers {
        configured(&[("WEBFLOW_SECRET", SECRET)])
    }

    fn signed(body: &str, ts_ms: i64) -> InboundRequest {
        let ts = ts_ms.to_string();
        let sig = hex_hmac(SECRET, &[ts.as_bytes(), b":", body.as_bytes()]);
        request(
            "POST",
            body.as_bytes(),
            &[("x-webflow-timestamp", &ts), ("x-webflow-signature", &sig)],
            &[],
        )
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        at(TS_MS / 1000 + 10)
    }

    #[tokio::test]
    async fn v2_payload() {
        let s = one(providers()
            .handle("webflow", &signed(V2, TS_MS), now())
            .await
            .unwrap());
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform("6321a6d7f9f1c3a4f0e2b5c9".into())
        );
        assert_eq!(s.occurred_at.to_rfc3339(), "2023-11-14T22:13:20+00:00");
        assert_eq!(s.contact.first_name.as_deref(), Some("Katherine"));
        assert_eq!(s.contact.email.as_deref(), Some("katherine@example.com"));
        assert_eq!(s.contact.company.as_deref(), Some("NASA"));
        assert_eq!(s.custom["message"], "Orbit maths");
        assert_eq!(
            s.attribution.form_id.as_deref(),
            Some("65429eadebe8a9f3a30f62d0")
        );
        assert_eq!(s.attribution.utm_source.as_deref(), Some("google"));
        assert_eq!(s.attribution.gclid.as_deref(), Some("abc"));
    }

    #[tokio::test]
    async fn v1_payload() {
        let s = one(providers()
            .handle("webflow", &signed(V1, TS_MS), now())
            .await
            .unwrap());
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform("6290f8fa2d58d00e2d22c1fa".into())
        );
        assert_eq!(s.contact.email.as_deref(), Some("dorothy@example.com"));
        assert_eq!(s.contact.full_name.as_deref(), Some("Dorothy Vaughan"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("Newsletter"));
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers();
        let mut req = signed(V2, TS_MS);
        req.body = V2.replace("NASA", "ESA").into_bytes();
        assert_eq!(
            p.handle("webflow", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        let ts = TS_MS.to_string();
        let sig = hex_hmac("other", &[ts.as_bytes(), b":", V2.as_bytes()]);
        let req = request(
            "POST",
            V2.as_bytes(),
            &[("x-webflow-timestamp", &ts), ("x-webflow-signature", &sig)],
            &[],
        );
        assert_eq!(
            p.handle("webflow", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        let e = p
            .handle("webflow", &signed(V2, TS_MS - 301_000), now())
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "stale_timestamp"));
        // Unsigned (dashboard-created) webhook.
        let req = request("POST", V2.as_bytes(), &[], &[]);
        assert_eq!(
            p.handle("webflow", &req, now()).await.unwrap_err().code(),
            "missing_signature"
        );
        let mut req = signed(V2, TS_MS);
        req.headers
            .insert("x-webflow-timestamp".into(), "soon".into());
        assert_eq!(
            p.handle("webflow", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (body, want) in [
            ("{\"triggerType\"", "JSON"),
            (r#"{"triggerType":"form_submission"}"#, "payload"),
            (
                r#"{"triggerType":"form_submission","payload":{"data":{}}}"#,
                "no id",
            ),
            (r#"{"_id":"x","data":"email=a"}"#, "data object"),
        ] {
            let reason = quarantine_reason(
                p.handle("webflow", &signed(body, TS_MS), now())
                    .await
                    .unwrap(),
            );
            assert!(reason.contains(want), "{reason}");
        }
        ignored_reason(
            p.handle(
                "webflow",
                &signed(r#"{"triggerType":"site_publish","payload":{}}"#, TS_MS),
                now(),
            )
            .await
            .unwrap(),
        );
    }

    // --- The signature scheme (published vectors first) ---

    #[test]
    fn webflow_failure_modes() {
        let body = br#"{"triggerType":"form_submission"}"#;
        let ts = "1700000000000";
        let sig = hex::encode(hmac_sha256(b"wf", &[ts.as_bytes(), b":", body]));
        let now = at_ms(1_700_000_000_000 + 1_000);
        assert_eq!(
            verify_webflow("wf", body, Some(ts), Some(&sig), now),
            Ok(())
        );
        assert_eq!(
            verify_webflow("wf", b"{}", Some(ts), Some(&sig), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webflow("wx", body, Some(ts), Some(&sig), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webflow(
                "wf",
                body,
                Some(ts),
                Some(&sig),
                at_ms(1_700_000_000_000 + 301_000)
            ),
            Err(SignatureError::Stale)
        );
        assert!(matches!(
            verify_webflow("wf", body, None, Some(&sig), now),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_webflow("wf", body, Some(ts), None, now),
            Err(SignatureError::Missing(_))
        ));
        // Seconds where milliseconds are expected: a 1970 timestamp, stale once authentic.
        let sig_s = hex::encode(hmac_sha256(b"wf", &[b"1700000000", b":", body]));
        assert_eq!(
            verify_webflow("wf", body, Some("1700000000"), Some(&sig_s), now),
            Err(SignatureError::Stale)
        );
    }
}
