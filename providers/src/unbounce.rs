//! Unbounce landing pages: `POST application/x-www-form-urlencoded` with `page_id`,
//! `page_name`, `page_url`, `variant`, `data.json` (URL-encoded JSON whose values are all
//! arrays) and `data.xml`.
//!
//! Unsigned: the webhook URL carries a secret, `?key=<UNBOUNCE_KEY>`, compared in constant
//! time. Unbounce sends no submission id, so the idempotency key is page id + submission time
//! (date and minute, as Unbounce reports it) + a hash of the body.

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use leadflow::edge::InboundRequest;
use leadflow::fields::{apply_field, apply_url_params};
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use serde_json::Value;

use super::{body_hash, fill, json_error, quarantine, set_custom, value_text, ProviderOutcome};
use crate::{verify_query_key, Parse, Platform, Variable};

pub const PROVIDER: &str = "unbounce";

pub const KEY: Variable = Variable::required_secret(
    "UNBOUNCE_KEY",
    "any random string, appended to the webhook URL as `?key=<value>` (Unbounce does not sign)",
);

/// Unbounce landing pages, `/webhooks/unbounce`.
pub const PLATFORM: Platform =
    Platform::new(PROVIDER, &KEY, &[&KEY], verify_query_key, Parse::Now(parse));

/// Keys of `data.json` that are Unbounce's own metadata, not answers.
const METADATA: [&str; 7] = [
    "ip_address",
    "page_uuid",
    "variant",
    "time_submitted",
    "date_submitted",
    "page_name",
    "page_url",
];

/// `date_submitted` `2024-05-01` and `time_submitted` `04:21 PM UTC`.
fn submitted_at(date: Option<&str>, time: Option<&str>) -> Option<chrono::DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(date?.trim(), "%Y-%m-%d").ok()?;
    let time = time?.trim();
    let time = time.strip_suffix("UTC").unwrap_or(time).trim();
    let time = NaiveTime::parse_from_str(time, "%I:%M %p")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M:%S"))
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .ok()?;
    Utc.from_local_datetime(&date.and_time(time)).single()
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let Some(json) = get("data.json") else {
        return quarantine("unbounce body has no data.json field");
    };
    let data = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(d)) => d,
        Ok(_) => return quarantine("unbounce data.json is not an object"),
        Err(e) => return quarantine(format!("unbounce data.json: {}", json_error(&e))),
    };
    let Some(page_id) = get("page_id") else {
        return quarantine("unbounce body has no page_id");
    };
    let first = |name: &str| data.get(name).and_then(value_text);
    let date = first("date_submitted");
    let time = first("time_submitted");
    let key = format!(
        "{page_id}:{}T{}:{}",
        date.as_deref().unwrap_or("-"),
        time.as_deref().unwrap_or("-"),
        &body_hash(PROVIDER, &req.body)[..16]
    );
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(key),
        TouchKind::FormSubmission,
        submitted_at(date.as_deref(), time.as_deref()).unwrap_or(req.received_at),
    );
    sub.source_hint = Some(PROVIDER.to_string());
    sub.attribution.form_id = Some(page_id.to_string());
    for (name, value) in &data {
        if METADATA.contains(&name.as_str()) {
            continue;
        }
        if let Some(text) = value_text(value) {
            apply_field(&mut sub, name, &text);
        }
    }
    let page_url = get("page_url")
        .map(str::to_string)
        .or_else(|| first("page_url"));
    if let Some(url) = page_url {
        fill(&mut sub.attribution.landing_page, Some(&url));
        apply_url_params(&mut sub, &url);
    }
    if let Some(variant) = get("variant")
        .map(str::to_string)
        .or_else(|| first("variant"))
    {
        set_custom(&mut sub, "unbounce_variant", &variant);
    }
    if let Some(name) = get("page_name") {
        set_custom(&mut sub, "unbounce_page", name);
    }
    ProviderOutcome::Submissions(vec![sub])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const KEY: &str = "test-unbounce-key";

    fn providers() -> Providers {
        configured(&[("UNBOUNCE_KEY", KEY)])
    }

    fn body() -> String {
        let data = r#"{"email":["margaret@example.com"],"first_name":["Margaret"],"last_name":["Hamilton"],"company_name":["MIT"],"phone_number":["+1 617 555 0199"],"how_many_engineers":["350"],"gdpr_consent":["yes"],"ip_address":["203.0.113.9"],"page_uuid":["a1b2c3d4-0000-4000-8000-000000000000"],"variant":["a"],"time_submitted":["04:21 PM UTC"],"date_submitted":["2024-05-01"],"page_url":["https://lp.example.com/apollo?utm_source=bing&utm_medium=cpc&msclkid=xyz"],"page_name":["Apollo"]}"#;
        form_urlencoded::Serializer::new(String::new())
            .append_pair("page_id", "a1b2c3d4-0000-4000-8000-000000000000")
            .append_pair("page_name", "Apollo")
            .append_pair(
                "page_url",
                "https://lp.example.com/apollo?utm_source=bing&utm_medium=cpc&msclkid=xyz",
            )
            .append_pair("variant", "a")
            .append_pair("data.json", data)
            .append_pair("data.xml", "<?xml version=\"1.0\"?><form_data></form_data>")
            .finish()
    }

    fn req(body: &str, key: Option<&str>) -> InboundRequest {
        let query: Vec<(&str, &str)> = key.map(|k| vec![("key", k)]).unwrap_or_default();
        request(
            "POST",
            body.as_bytes(),
            &[("content-type", "application/x-www-form-urlencoded")],
            &query,
        )
    }

    #[tokio::test]
    async fn documented_payload_becomes_a_submission() {
        let b = body();
        let s = one(providers()
            .handle("unbounce", &req(&b, Some(KEY)), at(0))
            .await
            .unwrap());
        assert_eq!(s.occurred_at.to_rfc3339(), "2024-05-01T16:21:00+00:00");
        assert!(s
            .delivery
            .as_str()
            .starts_with("a1b2c3d4-0000-4000-8000-000000000000:2024-05-01T04:21 PM UTC:"));
        assert_eq!(s.contact.email.as_deref(), Some("margaret@example.com"));
        assert_eq!(s.contact.company.as_deref(), Some("MIT"));
        assert_eq!(s.contact.phone.as_deref(), Some("+1 617 555 0199"));
        assert_eq!(s.custom["how_many_engineers"], "350");
        assert!(s.consent.as_ref().is_some_and(|c| c.marketing_opt_in));
        assert!(!s.custom.contains_key("ip_address"));
        assert_eq!(s.attribution.utm_source.as_deref(), Some("bing"));
        assert_eq!(s.attribution.msclkid.as_deref(), Some("xyz"));
        assert_eq!(
            s.attribution.form_id.as_deref(),
            Some("a1b2c3d4-0000-4000-8000-000000000000")
        );
        assert_eq!(s.custom["unbounce_variant"], "a");
        // Same body, same key; another body in the same minute, another key.
        let again = one(parse(&req(&b, Some(KEY))));
        assert_eq!(again.delivery, s.delivery);
        let other = one(parse(&req(&b.replace("Margaret", "Maggie"), Some(KEY))));
        assert_ne!(other.delivery, s.delivery);
    }

    #[tokio::test]
    async fn key_failures() {
        let p = providers();
        let b = body();
        let e = p
            .handle("unbounce", &req(&b, Some("wrong")), at(0))
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "invalid_signature"));
        let e = p
            .handle("unbounce", &req(&b, None), at(0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "missing_signature");
        // The key in the body does not count.
        let with_key = format!("{b}&key={KEY}");
        let e = p
            .handle("unbounce", &req(&with_key, None), at(0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "missing_signature");
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (b, want) in [
            ("page_id=1".to_string(), "no data.json"),
            ("page_id=1&data.json=%7Bnope".to_string(), "data.json"),
            ("page_id=1&data.json=%5B1%5D".to_string(), "not an object"),
            ("data.json=%7B%7D".to_string(), "page_id"),
        ] {
            let reason = quarantine_reason(
                p.handle("unbounce", &req(&b, Some(KEY)), at(0))
                    .await
                    .unwrap(),
            );
            assert!(reason.contains(want), "{reason}");
        }
    }
}
