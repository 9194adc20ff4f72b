//! HubSpot: Webhooks API subscriptions and workflow "Send a webhook" actions.
//!
//! Authenticity (`HUBSPOT_CLIENT_SECRET`): v3, `X-HubSpot-Signature-v3 = base64(HMAC-SHA256(
//! secret, method + uri + body + timestamp))` with `X-HubSpot-Request-Timestamp` (ms) within 5
//! minutes, `uri` being the full URL called; or v2 (`X-HubSpot-Signature-Version: v2`,
//! `hex(SHA256(secret + method + uri + body))`). v1 (`SHA256(secret + body)`) is refused: it
//! binds neither URL nor time and is open to length extension; HubSpot sends v3 alongside it.
//!
//! Known replay limit of v2: it signs no timestamp, so a captured v2 delivery verifies forever
//! and can be replayed at will. The damage is bounded (workflow bodies dedupe on their content
//! hash for 24 hours, and a replay only repeats a touch the contact really made), but v3 is
//! preferred whenever both headers are present, and apps should send v3 (workflow webhooks
//! signed with the app's secret do). A v2-only delivery is counted in the logs ("hubspot v2
//! signature: no replay window").
//!
//! Bodies:
//! - an array of CRM events (`contact.creation`, `contact.propertyChange`...): object ids only,
//!   no contact properties, so nothing that can make a lead: answered as ignored (a workflow
//!   webhook is the way to send contacts);
//! - an object: a workflow webhook carrying the record's properties, either under `properties`
//!   (values plain or `{"value": ...}` as in the legacy contact format) or as a flat map. It
//!   becomes one submission keyed by a hash of the body (workflow webhooks carry no delivery id).

use leadflow::fields::{apply_field, apply_url_params};
use leadflow::http::InboundRequest;
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::{Map, Value};

use super::{
    body_hash, fill, ignored, parse_json, quarantine, set_custom, value_text, ProviderOutcome,
};

pub const PROVIDER: &str = "hubspot";

pub fn verify(
    secret: &str,
    req: &InboundRequest,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), SignatureError> {
    if let Some(v3) = req.header("x-hubspot-signature-v3") {
        return signature::verify_hubspot_v3(
            secret,
            &req.method,
            &req.url,
            &req.body,
            Some(v3),
            req.header("x-hubspot-request-timestamp"),
            now,
        );
    }
    match (
        req.header("x-hubspot-signature"),
        req.header("x-hubspot-signature-version").map(str::trim),
    ) {
        (Some(sig), Some(v)) if v.eq_ignore_ascii_case("v2") => {
            tracing::warn!(
                provider = PROVIDER,
                "hubspot v2 signature: no replay window (send v3)"
            );
            signature::verify_hubspot_v2(secret, &req.method, &req.url, &req.body, Some(sig))
        }
        (Some(_), _) => Err(SignatureError::Malformed(
            "X-HubSpot-Signature-Version (v1 is not accepted)",
        )),
        (None, _) => Err(SignatureError::Missing("X-HubSpot-Signature-v3")),
    }
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "hubspot body") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    match &v {
        Value::Array(events) => crm_events(events),
        Value::Object(obj) => workflow(req, obj),
        _ => quarantine("hubspot body is neither an event array nor an object"),
    }
}

fn crm_events(events: &[Value]) -> ProviderOutcome {
    let mut types: Vec<&str> = events
        .iter()
        // Deliveries name the type `subscriptionType`; HubSpot's documented example body names
        // it `eventType` (tests/fixtures/providers/hubspot-webhooks-events.json): both count.
        .filter_map(|e| {
            e.get("subscriptionType")
                .or_else(|| e.get("eventType"))
                .and_then(Value::as_str)
        })
        .collect();
    types.sort_unstable();
    types.dedup();
    if types.is_empty() && !events.is_empty() {
        return quarantine("hubspot array holds no webhook events (no subscriptionType)");
    }
    ignored(format!(
        "{} hubspot CRM event(s) ({}) carry object ids only, no contact properties; send contacts with a workflow webhook",
        events.len(),
        types.join(", ")
    ))
}

/// HubSpot's internal property names for what `apply_field` knows under other names.
fn hubspot_field(name: &str) -> Option<&'static str> {
    Some(match name {
        "email" | "work_email" => "email",
        "firstname" => "first_name",
        "lastname" => "last_name",
        "phone" | "mobilephone" => "phone",
        "company" => "company",
        "jobtitle" => "job_title",
        "country" => "country",
        "utm_source" => "utm_source",
        "utm_medium" => "utm_medium",
        "utm_campaign" => "utm_campaign",
        "utm_term" => "utm_term",
        "utm_content" => "utm_content",
        "hs_google_click_id" => "gclid",
        "hs_facebook_click_id" => "fbclid",
        "hs_analytics_first_referrer" => "referrer",
        _ => return None,
    })
}

/// Record bookkeeping, not answers: never kept as custom fields.
fn is_bookkeeping(name: &str) -> bool {
    name.starts_with("hs_")
        || matches!(
            name,
            "createdate"
                | "lastmodifieddate"
                | "lifecyclestage"
                | "hubspot_owner_id"
                | "associatedcompanyid"
                | "vid"
                | "canonical-vid"
                | "portal-id"
                | "portalId"
                | "is-contact"
                | "objectId"
                | "objectType"
                | "recent_conversion_date"
                | "first_conversion_date"
                | "num_conversion_events"
                | "num_unique_conversion_events"
        )
}

/// A property's value: plain, or `{"value": ...}` in the legacy contact format.
fn property_text(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => o.get("value").and_then(value_text),
        other => value_text(other),
    }
}

fn workflow(req: &InboundRequest, obj: &Map<String, Value>) -> ProviderOutcome {
    let props = match obj.get("properties") {
        Some(Value::Object(p)) => p,
        Some(_) => return quarantine("hubspot properties is not an object"),
        None => obj,
    };
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(body_hash(PROVIDER, &req.body)),
        TouchKind::FormSubmission,
        req.received_at,
    );
    sub.source_hint = Some(PROVIDER.to_string());
    // Contact fields first, in a fixed order, so `email` wins over `work_email` and `phone`
    // over `mobilephone` whatever the JSON order.
    for name in [
        "email",
        "work_email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "company",
        "jobtitle",
        "country",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "hs_google_click_id",
        "hs_facebook_click_id",
        "hs_analytics_first_referrer",
    ] {
        if let (Some(field), Some(text)) =
            (hubspot_field(name), props.get(name).and_then(property_text))
        {
            apply_field(&mut sub, field, &text);
        }
    }
    if let Some(url) = props.get("hs_analytics_first_url").and_then(property_text) {
        fill(&mut sub.attribution.landing_page, Some(&url));
        apply_url_params(&mut sub, &url);
    }
    if let Some(form) = props
        .get("recent_conversion_event_name")
        .and_then(property_text)
    {
        fill(&mut sub.attribution.form_id, Some(&form));
    }
    for (name, value) in props {
        if hubspot_field(name).is_some()
            || is_bookkeeping(name)
            || name == "recent_conversion_event_name"
        {
            continue;
        }
        if let Some(text) = property_text(value) {
            set_custom(&mut sub, name, &text);
        }
    }
    if sub.contact.email.is_none() && sub.contact.phone.is_none() {
        return quarantine("hubspot workflow payload has no email or phone property");
    }
    ProviderOutcome::Submissions(vec![sub])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::*;
    use crate::providers::{Providers, ProvidersConfig};

    const SECRET: &str = "test-hubspot-client-secret";
    const URL: &str = "https://hooks.example.com/webhooks/test";
    const NOW_MS: i64 = 1_700_000_000_000;

    fn providers() -> Providers {
        Providers::new(ProvidersConfig::from_lookup(|k| {
            (k == "HUBSPOT_CLIENT_SECRET").then(|| SECRET.to_string())
        }))
    }

    fn v3(body: &str, ts_ms: i64) -> InboundRequest {
        let ts = ts_ms.to_string();
        let sig = b64_hmac(
            SECRET,
            &[b"POST", URL.as_bytes(), body.as_bytes(), ts.as_bytes()],
        );
        request(
            "POST",
            body.as_bytes(),
            &[
                ("X-HubSpot-Signature-v3", &sig),
                ("X-HubSpot-Request-Timestamp", &ts),
                ("content-type", "application/json"),
            ],
            &[],
        )
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        at(NOW_MS / 1000)
    }

    const EVENTS: &str = r#"[{"eventId":1,"subscriptionId":25,"portalId":33,"appId":1160452,"occurredAt":1700000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW"},{"eventId":2,"subscriptionId":26,"portalId":33,"appId":1160452,"occurredAt":1700000000000,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":123,"propertyName":"email","propertyValue":"x@example.com","changeSource":"CRM"}]"#;

    const LEGACY_CONTACT: &str = r#"{"vid":3234574,"canonical-vid":3234574,"portal-id":62515,"is-contact":true,"properties":{"email":{"value":"brian@example.com","versions":[{"value":"brian@example.com","source-type":"FORM"}]},"firstname":{"value":"Brian"},"lastname":{"value":"Halligan"},"company":{"value":"HubSpot"},"phone":{"value":"+1 617 555 0100"},"hs_analytics_first_url":{"value":"https://www.example.com/pricing?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q3"},"recent_conversion_event_name":{"value":"Pricing form"},"numemployees":{"value":"51-200"},"createdate":{"value":"1700000000000"},"hs_object_id":{"value":"3234574"}},"form-submissions":[],"identity-profiles":[]}"#;

    const FLAT: &str = r#"{"email":"ada@example.com","firstname":"Ada","mobilephone":"+44 20 7946 0958","jobtitle":"Analyst","industry":"Computing","hs_object_id":"51","utm_source":"newsletter"}"#;

    #[tokio::test]
    async fn crm_events_are_ignored() {
        let reason = ignored_reason(
            providers()
                .handle("hubspot", &v3(EVENTS, NOW_MS), now())
                .await
                .unwrap(),
        );
        assert!(
            reason.contains("contact.creation, contact.propertyChange"),
            "{reason}"
        );
        assert!(!reason.contains("x@example.com"));
    }

    #[tokio::test]
    async fn workflow_webhook_with_legacy_properties() {
        let s = one(providers()
            .handle("hubspot", &v3(LEGACY_CONTACT, NOW_MS), now())
            .await
            .unwrap());
        assert_eq!(s.contact.email.as_deref(), Some("brian@example.com"));
        assert_eq!(s.contact.first_name.as_deref(), Some("Brian"));
        assert_eq!(s.contact.company.as_deref(), Some("HubSpot"));
        assert_eq!(s.contact.phone.as_deref(), Some("+1 617 555 0100"));
        assert_eq!(s.attribution.utm_source.as_deref(), Some("linkedin"));
        assert_eq!(s.attribution.utm_campaign.as_deref(), Some("q3"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("Pricing form"));
        assert_eq!(
            s.attribution.landing_page.as_deref(),
            Some("https://www.example.com/pricing?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q3")
        );
        assert_eq!(
            s.custom.get("numemployees").map(String::as_str),
            Some("51-200")
        );
        assert!(!s.custom.contains_key("createdate"));
        assert!(!s.custom.contains_key("hs_object_id"));
        // Keyed by the body: the same delivery again has the same key.
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform(body_hash("hubspot", LEGACY_CONTACT.as_bytes()))
        );
        assert_eq!(s.kind, TouchKind::FormSubmission);
    }

    #[tokio::test]
    async fn workflow_webhook_with_flat_properties_and_v2() {
        use sha2::{Digest, Sha256};
        let sig = hex::encode(Sha256::digest(
            [SECRET.as_bytes(), b"POST", URL.as_bytes(), FLAT.as_bytes()].concat(),
        ));
        let req = request(
            "POST",
            FLAT.as_bytes(),
            &[
                ("X-HubSpot-Signature", &sig),
                ("X-HubSpot-Signature-Version", "v2"),
            ],
            &[],
        );
        let s = one(providers().handle("hubspot", &req, now()).await.unwrap());
        assert_eq!(s.contact.email.as_deref(), Some("ada@example.com"));
        assert_eq!(s.contact.phone.as_deref(), Some("+44 20 7946 0958"));
        assert_eq!(s.contact.job_title.as_deref(), Some("Analyst"));
        assert_eq!(s.attribution.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(s.custom["industry"], "Computing");
        // v2 over another method does not verify.
        let mut get = req.clone();
        get.method = "PUT".into();
        assert!(verify(SECRET, &get, now()).is_err());
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers();
        // Tampered body.
        let mut req = v3(FLAT, NOW_MS);
        req.body = FLAT.replace("Ada", "Eve").into_bytes();
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        // Wrong secret.
        let ts = NOW_MS.to_string();
        let sig = b64_hmac(
            "other",
            &[b"POST", URL.as_bytes(), FLAT.as_bytes(), ts.as_bytes()],
        );
        let req = request(
            "POST",
            FLAT.as_bytes(),
            &[
                ("X-HubSpot-Signature-v3", &sig),
                ("X-HubSpot-Request-Timestamp", &ts),
            ],
            &[],
        );
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        // Another URL (a different query string) does not verify.
        let mut req = v3(FLAT, NOW_MS);
        req.url = format!("{URL}?x=1");
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        // Stale: authentic but signed 6 minutes ago.
        let e = p
            .handle("hubspot", &v3(FLAT, NOW_MS - 360_000), now())
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "stale_timestamp"));
        // Missing.
        let req = request("POST", FLAT.as_bytes(), &[], &[]);
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "missing_signature"
        );
        // v3 without its timestamp.
        let mut req = v3(FLAT, NOW_MS);
        req.headers.remove("x-hubspot-request-timestamp");
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "missing_signature"
        );
        // v1 alone is refused.
        let req = request(
            "POST",
            FLAT.as_bytes(),
            &[
                ("X-HubSpot-Signature", "00"),
                ("X-HubSpot-Signature-Version", "v1"),
            ],
            &[],
        );
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (body, want) in [
            ("[{\"eventId\":", "JSON"),
            ("\"just a string\"", "neither"),
            (r#"{"properties":[1,2]}"#, "not an object"),
            (
                r#"{"firstname":"No","lastname":"Contact"}"#,
                "no email or phone",
            ),
            (r#"[{"hello":"world"}]"#, "no webhook events"),
        ] {
            let reason =
                quarantine_reason(p.handle("hubspot", &v3(body, NOW_MS), now()).await.unwrap());
            assert!(reason.contains(want), "{reason}");
        }
    }
}
