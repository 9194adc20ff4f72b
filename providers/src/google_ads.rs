//! Google Ads lead form webhook: `POST` JSON with `lead_id`, `user_column_data[]`
//! (`{column_id, string_value, column_name?}`), `form_id`/`campaign_id`/`adgroup_id`/
//! `creative_id` (int64 JSON numbers), `gcl_id`, `is_test` and `google_key`.
//!
//! Authenticity: `google_key` equals `GOOGLE_ADS_KEY` (constant time); there is no HMAC, so
//! the key has to be read from the body. Idempotency key: `lead_id` (Google says to dedupe on
//! it). Test deliveries (`is_test`, "send test data" leads whose id starts `TeSter-123-`) are
//! stored flagged as test. Channel: paid search; `gcl_id` kept as gclid.

use chrono::{DateTime, Utc};
use leadflow::edge::InboundRequest;
use leadflow::fields::apply_field;
use leadflow::model::{Channel, DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::Value;

use super::{
    fill, id_string, parse_json, quarantine, set_custom, str_at, time_value, ProviderOutcome,
};
use crate::{Parse, Platform, Variable};

pub const PROVIDER: &str = "google-ads";

pub const KEY: Variable = Variable::required_secret(
    "GOOGLE_ADS_KEY",
    "the \"Key\" of the lead form's webhook integration in Google Ads",
);

/// Google Ads lead forms, `/webhooks/google-ads`.
pub const PLATFORM: Platform = Platform::new(PROVIDER, &KEY, &[&KEY], verify, Parse::Now(parse));

/// Checks a delivery with the configured secret.
fn verify(secret: &str, req: &InboundRequest, _now: DateTime<Utc>) -> Result<(), SignatureError> {
    // The key travels inside the JSON: a body that is not JSON has no key to check.
    let given = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| {
            v.get("google_key")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    signature::verify_shared_key(given.as_deref(), secret)
}

/// Where a column goes: a field name `apply_field` places, or `None` for a custom answer.
fn column_field(column_id: &str) -> Option<&'static str> {
    Some(match column_id {
        "FULL_NAME" => "full_name",
        "FIRST_NAME" => "first_name",
        "LAST_NAME" => "last_name",
        "EMAIL" => "email",
        "WORK_EMAIL" => "work_email",
        "PHONE_NUMBER" => "phone",
        "WORK_PHONE" => "work_phone",
        "COUNTRY" => "country",
        "COMPANY_NAME" => "company",
        "JOB_TITLE" => "job_title",
        _ => return None,
    })
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "google ads body") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    let Some(lead_id) = v.get("lead_id").and_then(id_string) else {
        return quarantine("google ads lead has no lead_id");
    };
    let columns = match v.get("user_column_data") {
        Some(Value::Array(c)) => c.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return quarantine("google ads user_column_data is not an array"),
    };
    let occurred_at = time_value(v.get("lead_submit_time")).unwrap_or(req.received_at);
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(lead_id.clone()),
        TouchKind::AdLead,
        occurred_at,
    );
    sub.channel_hint = Some(Channel::PaidSearch);
    sub.source_hint = Some("google_ads".to_string());
    sub.is_test = v.get("is_test").and_then(Value::as_bool).unwrap_or(false)
        || lead_id.starts_with("TeSter-123-");

    for (i, col) in columns.iter().enumerate() {
        let Some(column_id) = str_at(col, "column_id") else {
            return quarantine(format!("google ads column {i} has no column_id"));
        };
        let Some(value) = str_at(col, "string_value") else {
            continue;
        };
        match column_field(column_id) {
            Some(field) => {
                apply_field(&mut sub, field, value);
            }
            None => {
                // Address parts, qualifying and custom questions: custom answers, by the
                // column's name when it has one (custom questions may not).
                let key = str_at(col, "column_name").unwrap_or(column_id);
                set_custom(&mut sub, key, value);
            }
        }
    }

    let a = &mut sub.attribution;
    fill(&mut a.gclid, str_at(&v, "gcl_id"));
    let form_id = v.get("form_id").and_then(id_string);
    fill(&mut a.form_id, form_id.as_deref());
    let campaign_id = v.get("campaign_id").and_then(id_string);
    // No campaign name in the payload: the id stands in for it when no UTM names one.
    fill(&mut a.utm_campaign, campaign_id.as_deref());
    for (key, field) in [
        ("google_campaign_id", "campaign_id"),
        ("google_adgroup_id", "adgroup_id"),
        ("google_creative_id", "creative_id"),
        ("google_asset_group_id", "asset_group_id"),
    ] {
        if let Some(id) = v.get(field).and_then(id_string) {
            set_custom(&mut sub, key, &id);
        }
    }
    ProviderOutcome::Submissions(vec![sub])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const KEY: &str = "test-google-ads-key";

    fn providers() -> Providers {
        configured(&[("GOOGLE_ADS_KEY", KEY)])
    }

    fn body(key: &str) -> String {
        format!(
            r#"{{"lead_id":"Cj0KCQjw-example-lead-1","user_column_data":[{{"column_name":"Full Name","string_value":"Grace Hopper","column_id":"FULL_NAME"}},{{"column_name":"User Email","string_value":"grace@example.com","column_id":"EMAIL"}},{{"column_name":"User Phone","string_value":"+16505550123","column_id":"PHONE_NUMBER"}},{{"column_name":"Company Name","string_value":"Navy","column_id":"COMPANY_NAME"}},{{"column_name":"Job Title","string_value":"Rear Admiral","column_id":"JOB_TITLE"}},{{"column_name":"Postal Code","string_value":"94043","column_id":"POSTAL_CODE"}},{{"string_value":"Next quarter","column_id":"WHEN_DO_YOU_PLAN_TO_BUY"}},{{"column_name":"Fleet size","string_value":"12","column_id":"Q1"}}],"api_version":"1.0","form_id":40000000000,"campaign_id":9223372036854775807,"google_key":"{key}","is_test":false,"gcl_id":"EAIaIQobChMI-gclid","adgroup_id":20000000000,"creative_id":30000000000,"lead_submit_time":"2024-05-01 10:00:00.123456+00:00"}}"#
        )
    }

    fn req(body: &str) -> InboundRequest {
        request(
            "POST",
            body.as_bytes(),
            &[("content-type", "application/json")],
            &[],
        )
    }

    #[tokio::test]
    async fn documented_payload_becomes_a_lead() {
        let s = one(providers()
            .handle("google-ads", &req(&body(KEY)), at(0))
            .await
            .unwrap());
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform("Cj0KCQjw-example-lead-1".into())
        );
        assert_eq!(s.kind, TouchKind::AdLead);
        assert_eq!(s.channel_hint, Some(Channel::PaidSearch));
        assert_eq!(s.source_hint.as_deref(), Some("google_ads"));
        assert_eq!(
            s.occurred_at.to_rfc3339(),
            "2024-05-01T10:00:00.123456+00:00"
        );
        assert_eq!(s.contact.full_name.as_deref(), Some("Grace Hopper"));
        assert_eq!(s.contact.email.as_deref(), Some("grace@example.com"));
        assert_eq!(s.contact.phone.as_deref(), Some("+16505550123"));
        assert_eq!(s.contact.company.as_deref(), Some("Navy"));
        assert_eq!(s.contact.job_title.as_deref(), Some("Rear Admiral"));
        assert_eq!(s.custom["postal_code"], "94043");
        assert_eq!(s.custom["when_do_you_plan_to_buy"], "Next quarter");
        assert_eq!(s.custom["fleet_size"], "12");
        assert_eq!(s.attribution.gclid.as_deref(), Some("EAIaIQobChMI-gclid"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("40000000000"));
        // int64 ids kept exactly.
        assert_eq!(s.custom["google_campaign_id"], "9223372036854775807");
        assert_eq!(
            s.attribution.utm_campaign.as_deref(),
            Some("9223372036854775807")
        );
        assert!(!s.is_test);
    }

    #[tokio::test]
    async fn test_leads_are_flagged() {
        let b = body(KEY)
            .replace("\"is_test\":false", "\"is_test\":true")
            .replace("Cj0KCQjw-example-lead-1", "TeSter-123-ABCDEF");
        let s = one(providers()
            .handle("google-ads", &req(&b), at(0))
            .await
            .unwrap());
        assert!(s.is_test);
        let b = body(KEY).replace("Cj0KCQjw-example-lead-1", "TeSter-123-ABCDEF");
        assert!(one(parse(&req(&b))).is_test);
    }

    #[tokio::test]
    async fn key_failures() {
        let p = providers();
        let e = p
            .handle("google-ads", &req(&body("wrong-key")), at(0))
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "invalid_signature"));
        let e = p
            .handle(
                "google-ads",
                &req(&body(KEY).replace("\"google_key\"", "\"other\"")),
                at(0),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "missing_signature");
        // A key prefix is not the key.
        let e = p
            .handle("google-ads", &req(&body(&KEY[..10])), at(0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_signature");
        // Not JSON: no key to find.
        let e = p
            .handle("google-ads", &req("lead_id=1"), at(0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "missing_signature");
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (b, want) in [
            (
                format!(r#"{{"google_key":"{KEY}","user_column_data":[]}}"#),
                "lead_id",
            ),
            (
                format!(
                    r#"{{"google_key":"{KEY}","lead_id":"x","user_column_data":{{"EMAIL":"a"}}}}"#
                ),
                "not an array",
            ),
            (
                format!(
                    r#"{{"google_key":"{KEY}","lead_id":"x","user_column_data":[{{"string_value":"a"}}]}}"#
                ),
                "column_id",
            ),
        ] {
            let reason = quarantine_reason(p.handle("google-ads", &req(&b), at(0)).await.unwrap());
            assert!(reason.contains(want), "{reason}");
        }
    }
}
