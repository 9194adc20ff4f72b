//! Meta (Facebook / Instagram) Lead Ads.
//!
//! - Handshake: `GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`: the token is
//!   compared in constant time with `FACEBOOK_VERIFY_TOKEN`; the challenge is echoed as
//!   `text/plain` 200; anything else is 403.
//! - Delivery: `POST` JSON `{"object":"page","entry":[{"changes":[{"field":"leadgen","value":
//!   {"leadgen_id",...}}]}]}` signed with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app
//!   secret, raw body)>` (`FACEBOOK_APP_SECRET`). Ids arrive as JSON strings or integers (some
//!   above 2^53): read as strings or u64, never through f64.
//! - The webhook carries ids only: [`parse`] announces each lead ([`AnnouncedLead`]), and
//!   [`fetch`] reads it from the Graph API (`GRAPH_API_URL`/{leadgen_id},
//!   `FACEBOOK_ACCESS_TOKEN` plus `appsecret_proof`), one lead at a time, each with the
//!   configured timeout. What Graph answers is sorted by `announced::classify_graph`: the App
//!   Dashboard "Test" button's ids (`444444444444`) and deleted leads are error 100 (`lead_gone`),
//!   an expired token is error 190 (`platform_auth_failed`). The delivery key is `leadgen_id`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leadflow::edge::{text_response, InboundRequest, Response};
use leadflow::fields::apply_field;
use leadflow::model::{Channel, Consent, DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde::Deserialize;
use serde_json::Value;

use crate::announced::{code_text, refusal, required_token, short_message, Fetched};

/// When a delivery was received.
type Time = chrono::DateTime<chrono::Utc>;
use crate::announced::{AnnouncedLead, FetchError};
use crate::platform_api::ApiError;
use crate::{
    de_opt_id, fill, id_string, ignored, json_error, parse_time, quarantine, set_custom, str_at,
    time_value, value_text, Parse, Platform, ProviderError, ProviderOutcome, Providers, Variable,
};

pub const PROVIDER: &str = "facebook";

pub const APP_SECRET: Variable = Variable::required_secret(
    "FACEBOOK_APP_SECRET",
    "Meta app dashboard > App settings > Basic > App secret (signs every delivery)",
);
pub const VERIFY_TOKEN: Variable = Variable::optional_secret(
    "FACEBOOK_VERIFY_TOKEN",
    "any random string, typed again in the app's Webhooks product (\"Verify token\"); \
     without it the subscription handshake is 404",
);
pub const ACCESS_TOKEN: Variable = Variable::optional_secret(
    "FACEBOOK_ACCESS_TOKEN",
    "a long-lived Page access token with leads_retrieval, to fetch the leads (without it every \
     lead is quarantined as platform_auth_failed)",
);
pub const DEFAULT_GRAPH_API_URL: &str = "https://graph.facebook.com/v21.0";
pub const GRAPH_API_URL: Variable = Variable::setting(
    "GRAPH_API_URL",
    DEFAULT_GRAPH_API_URL,
    "the Graph API base URL, version included (local stand-ins in tests and run-local)",
);

/// Meta Lead Ads (Facebook and Instagram), `/webhooks/facebook`.
pub const PLATFORM: Platform = Platform::new(
    PROVIDER,
    &APP_SECRET,
    &[&APP_SECRET, &VERIFY_TOKEN, &ACCESS_TOKEN, &GRAPH_API_URL],
    verify,
    Parse::Now(parse),
)
.with_handshake(|config, req| handshake(config.require(PROVIDER, &VERIFY_TOKEN)?, req))
.with_fetch(|providers, lead, at| Box::pin(fetch(providers, lead, at)));

/// Checks a delivery with the configured secret.
fn verify(secret: &str, req: &InboundRequest, _now: DateTime<Utc>) -> Result<(), SignatureError> {
    verify_meta(secret, &req.body, req.header("x-hub-signature-256"))
}

/// Meta's scheme (GitHub's too): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`.
pub fn verify_meta(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = signature::required(header, "X-Hub-Signature-256")?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed("X-Hub-Signature-256"))?;
    signature::verify_hmac_hex(secret.as_bytes(), &[body], hex_sig)
}

/// The lead fields asked of the Graph API.
pub const LEAD_FIELDS: &str = "field_data,created_time,ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,form_id,is_organic,platform,custom_disclaimer_responses";

/// Longest `hub.challenge` echoed back (Meta sends a short number).
const MAX_CHALLENGE: usize = 256;

pub fn handshake(verify_token: &str, req: &InboundRequest) -> Result<Response, ProviderError> {
    let mode = req.query.get("hub.mode").map(String::as_str);
    let token = req.query.get("hub.verify_token").map(String::as_str);
    let challenge = req.query.get("hub.challenge").map(String::as_str);
    let token_ok = token.is_some_and(|t| signature::keys_equal(t, verify_token));
    match (mode, challenge) {
        (Some("subscribe"), Some(challenge))
            if token_ok && !challenge.is_empty() && challenge.len() <= MAX_CHALLENGE =>
        {
            tracing::info!(provider = PROVIDER, "webhook subscription verified");
            Ok(text_response(200, "text/plain", challenge.to_string()))
        }
        _ => Err(ProviderError::Handshake {
            forbidden: true,
            code: "invalid_verify_token",
            field: None,
            message: "hub.mode must be subscribe with the configured hub.verify_token and a hub.challenge",
        }),
    }
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default, deserialize_with = "de_opt_id")]
    id: Option<String>,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Option<LeadgenValue>,
}

#[derive(Debug, Deserialize)]
struct LeadgenValue {
    #[serde(default, deserialize_with = "de_opt_id")]
    leadgen_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_id")]
    form_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_id")]
    page_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_id")]
    ad_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_id")]
    adgroup_id: Option<String>,
    #[serde(default)]
    created_time: Option<Value>,
}

/// One lead the webhook announced.
#[derive(Debug, Clone)]
struct Announced {
    leadgen_id: String,
    form_id: Option<String>,
    page_id: Option<String>,
    ad_id: Option<String>,
    adgroup_id: Option<String>,
    created_time: Option<Value>,
}

/// Graph ids are digits; anything else is not put into a URL path.
fn is_graph_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The leads a notification announces (nothing is fetched here: see [`fetch`]).
pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let notification: Notification = match serde_json::from_slice(&req.body) {
        Ok(n) => n,
        Err(e) => return quarantine(format!("meta notification: {}", json_error(&e))),
    };
    if let Some(object) = notification.object.as_deref() {
        if object != "page" {
            return ignored(format!("meta object {object:?} is not a page"));
        }
    }
    let mut seen = BTreeSet::new();
    let mut leads = Vec::new();
    let mut malformed = 0usize;
    for entry in notification.entry {
        for change in entry.changes {
            if change.field.as_deref() != Some("leadgen") {
                continue;
            }
            let Some(value) = change.value else {
                malformed += 1;
                continue;
            };
            let Some(leadgen_id) = value.leadgen_id.filter(|id| is_graph_id(id)) else {
                malformed += 1;
                continue;
            };
            if seen.insert(leadgen_id.clone()) {
                leads.push(announce(Announced {
                    leadgen_id,
                    form_id: value.form_id,
                    page_id: value.page_id.or_else(|| entry.id.clone()),
                    ad_id: value.ad_id,
                    adgroup_id: value.adgroup_id,
                    created_time: value.created_time,
                }));
            }
        }
    }
    if malformed > 0 {
        // Nothing to fetch for these: no usable leadgen_id. The others still go through.
        tracing::error!(
            provider = PROVIDER,
            malformed,
            "leadgen changes without a usable leadgen_id skipped"
        );
    }
    if leads.is_empty() {
        return if malformed > 0 {
            quarantine(format!(
                "{malformed} leadgen change(s) without a usable leadgen_id"
            ))
        } else {
            ignored("no leadgen changes in the notification")
        };
    }
    ProviderOutcome::Announced {
        leads,
        withdrawn: Vec::new(),
    }
}

fn announce(a: Announced) -> AnnouncedLead {
    let mut ids = std::collections::BTreeMap::new();
    ids.insert("leadgen_id".to_string(), a.leadgen_id.clone());
    for (k, v) in [
        ("form_id", &a.form_id),
        ("page_id", &a.page_id),
        ("ad_id", &a.ad_id),
        ("adgroup_id", &a.adgroup_id),
    ] {
        if let Some(v) = v {
            ids.insert(k.to_string(), v.chars().take(64).collect());
        }
    }
    AnnouncedLead::new(
        PROVIDER,
        DeliveryKey::Platform(a.leadgen_id.clone()),
        ids,
        a,
    )
}

/// Reads one announced lead from the Graph API. Without a configured page token the lead
/// cannot be read: that is an authorization failure (quarantined, replayable once it is set).
async fn fetch(providers: &Providers, announced: &AnnouncedLead, received_at: Time) -> Fetched {
    let lead: &Announced = announced.detail()?;
    let config = providers.config();
    let token = required_token(config.secret(&ACCESS_TOKEN))?;
    // appsecret_proof: required when the app enables "Require App Secret", harmless otherwise.
    let proof = config.secret(&APP_SECRET).map(|secret| {
        hex::encode(signature::hmac_sha256(
            secret.as_bytes(),
            &[token.as_bytes()],
        ))
    });
    let base = config.setting(&GRAPH_API_URL);
    let mut url = format!(
        "{base}/{}?fields={LEAD_FIELDS}&access_token={}",
        lead.leadgen_id,
        encode(token)
    );
    if let Some(p) = &proof {
        url.push_str("&appsecret_proof=");
        url.push_str(p);
    }
    let data = providers
        .api()
        .get_json(&url, &[])
        .await
        .map_err(classify_graph)?;
    Ok(lead_submission(lead, &data, received_at))
}

/// Graph API errors: `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`,
/// sorted by Meta's documented codes (Graph API "Handling Errors").
fn classify_graph(e: ApiError) -> FetchError {
    let (status, body) = match refusal(e) {
        Ok(r) => r,
        Err(sorted) => return sorted,
    };
    let error = body.as_ref().and_then(|b| b.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    match (status, code) {
        // 190: access token expired or invalidated; 102: session key invalid; 10 and 200-299:
        // a permission the token lacks (leads_retrieval, pages_manage_ads...).
        (401 | 403, _) | (_, Some(190 | 102 | 10 | 200..=299)) => FetchError::Auth { status, code },
        // 1, 2: unknown / temporary errors; 4, 17, 32, 613, 80000-80014: rate limits.
        (429 | 500..=599, _) | (_, Some(1 | 2 | 4 | 17 | 32 | 341 | 613 | 80_000..=80_014)) => {
            FetchError::Transient(format!(
                "graph api answered HTTP {status}{}",
                code_text(code)
            ))
        }
        // 100 with subcode 33: "Object with ID ... does not exist, cannot be loaded due to
        // missing permissions, or does not support this operation": a deleted lead, or the
        // dashboard Test button's made-up ids.
        (404, _) | (_, Some(100)) => FetchError::Gone {
            status,
            code,
            message: short_message(message),
        },
        _ => FetchError::Rejected { status, code },
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Meta's field names that `apply_field` would not place by itself.
fn meta_field_name(name: &str) -> &str {
    match name {
        "work_phone_number" => "work_phone",
        "zip_code" | "post_code" => "postal_code",
        other => other,
    }
}

/// The Submission for one lead: the Graph API's answer, the webhook's ids as fallbacks.
fn lead_submission(
    lead: &Announced,
    data: &Value,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Submission {
    let occurred_at = str_at(data, "created_time")
        .and_then(parse_time)
        .or_else(|| time_value(lead.created_time.as_ref()))
        .unwrap_or(received_at);
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(lead.leadgen_id.clone()),
        TouchKind::AdLead,
        occurred_at,
    );
    let organic = data
        .get("is_organic")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    sub.channel_hint = Some(if organic {
        Channel::OrganicSocial
    } else {
        Channel::PaidSocial
    });
    let instagram = str_at(data, "platform").is_some_and(|p| p.eq_ignore_ascii_case("ig"));
    sub.source_hint = Some(if instagram { "instagram" } else { "facebook" }.to_string());

    let mut test_lead = false;
    if let Some(fields) = data.get("field_data").and_then(Value::as_array) {
        for f in fields {
            let Some(name) = str_at(f, "name") else {
                continue;
            };
            let Some(text) = f.get("values").and_then(value_text) else {
                continue;
            };
            // Meta's lead ads testing tool fills every field with "<test lead: dummy data ...>".
            test_lead |= text.starts_with("<test lead");
            apply_field(&mut sub, meta_field_name(name), &text);
        }
    }
    sub.is_test = test_lead;

    if let Some(responses) = data
        .get("custom_disclaimer_responses")
        .and_then(Value::as_array)
    {
        // A custom disclaimer checkbox is the advertiser's own consent wording, answered
        // explicitly by the person.
        if let Some(r) = responses.first() {
            let checked = match r.get("is_checked") {
                Some(Value::Bool(b)) => Some(*b),
                Some(Value::String(s)) => Some(s == "1" || s.eq_ignore_ascii_case("true")),
                Some(Value::Number(n)) => Some(n.as_i64() == Some(1)),
                _ => None,
            };
            if let Some(checked) = checked {
                sub.consent = Some(Consent::new(
                    checked,
                    occurred_at,
                    str_at(r, "checkbox_key").map(str::to_string),
                ));
            }
        }
    }

    let graph_id = |key: &str| data.get(key).and_then(id_string);
    let form_id = graph_id("form_id").or_else(|| lead.form_id.clone());
    fill(&mut sub.attribution.form_id, form_id.as_deref());
    fill(
        &mut sub.attribution.utm_campaign,
        str_at(data, "campaign_name"),
    );
    let ad_id = graph_id("ad_id").or_else(|| lead.ad_id.clone());
    let adset_id = graph_id("adset_id").or_else(|| lead.adgroup_id.clone());
    for (key, value) in [
        ("meta_page_id", lead.page_id.clone()),
        ("meta_campaign_id", graph_id("campaign_id")),
        ("meta_adset_id", adset_id),
        (
            "meta_adset_name",
            str_at(data, "adset_name").map(str::to_string),
        ),
        ("meta_ad_id", ad_id),
        ("meta_ad_name", str_at(data, "ad_name").map(str::to_string)),
    ] {
        if let Some(v) = value {
            set_custom(&mut sub, key, &v);
        }
    }
    sub
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{Providers, ProvidersConfig};
    use std::collections::HashMap;

    const APP_SECRET: &str = "test-facebook-app-secret";
    const VERIFY_TOKEN: &str = "test-facebook-verify-token";
    const TOKEN: &str = "test-page-access-token";

    fn providers(graph: &str, timeout_ms: u64) -> Providers {
        let vars: HashMap<&str, String> = HashMap::from([
            ("FACEBOOK_APP_SECRET", APP_SECRET.to_string()),
            ("FACEBOOK_VERIFY_TOKEN", VERIFY_TOKEN.to_string()),
            ("FACEBOOK_ACCESS_TOKEN", TOKEN.to_string()),
            ("GRAPH_API_URL", format!("{graph}/v21.0")),
            ("PLATFORM_API_TIMEOUT_MS", timeout_ms.to_string()),
        ]);
        Providers::new(ProvidersConfig::from_lookup(|k| vars.get(k).cloned()))
    }

    fn signed(body: &str) -> InboundRequest {
        let sig = format!("sha256={}", hex_hmac(APP_SECRET, &[body.as_bytes()]));
        request(
            "POST",
            body.as_bytes(),
            &[("X-Hub-Signature-256", &sig)],
            &[],
        )
    }

    fn notification(ids: &[&str]) -> String {
        let changes: Vec<String> = ids
            .iter()
            .map(|id| {
                format!(
                    r#"{{"field":"leadgen","value":{{"ad_id":444444444,"form_id":"444444444444","leadgen_id":{id},"created_time":1700000000,"page_id":"444444444444","adgroup_id":44444444}}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"object":"page","entry":[{{"id":"444444444444","time":1700000000,"changes":[{}]}}]}}"#,
            changes.join(",")
        )
    }

    fn lead_json(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","created_time":"2015-11-12T15:27:06+0000","ad_id":"6045","ad_name":"Spring ad","adset_id":"6046","adset_name":"Lookalikes","campaign_id":"6047","campaign_name":"spring-launch","form_id":"555","is_organic":false,"platform":"fb","field_data":[{{"name":"full_name","values":["Ada Lovelace"]}},{{"name":"email","values":["ada+{id}@example.com"]}},{{"name":"phone_number","values":["+14155550132"]}},{{"name":"company_name","values":["Analytical Engines"]}},{{"name":"job_title","values":["CTO"]}},{{"name":"what_is_your_budget?","values":["10k-50k"]}}],"custom_disclaimer_responses":[{{"checkbox_key":"marketing_optin","is_checked":"1"}}]}}"#
        )
    }

    /// Answers `/v21.0/<id>?...` with the lead, and records nothing else.
    fn graph_handler(target: &str) -> Reply {
        let id = target
            .trim_start_matches("/v21.0/")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        match id.as_str() {
            "500500" => Reply::Json(500, r#"{"error":{"message":"boom","code":1}}"#.into()),
            "777777" => Reply::Hang,
            "888888" => Reply::Json(200, "{not json".into()),
            _ => Reply::Json(200, lead_json(&id)),
        }
    }

    #[tokio::test]
    async fn handshake_echoes_the_challenge_only_for_the_right_token() {
        let p = providers("http://127.0.0.1:9", 200);
        let ok = request(
            "GET",
            b"",
            &[],
            &[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", VERIFY_TOKEN),
                ("hub.challenge", "1158201444"),
            ],
        );
        match p.handle("facebook", &ok, at(0)).await.unwrap() {
            ProviderOutcome::Respond(r) => {
                assert_eq!(r.status_code, 200);
                assert_eq!(r.body_text(), "1158201444");
                assert_eq!(r.headers["content-type"], "text/plain");
            }
            other => panic!("{other:?}"),
        }
        for query in [
            vec![
                ("hub.mode", "subscribe"),
                ("hub.verify_token", "wrong"),
                ("hub.challenge", "1"),
            ],
            vec![
                ("hub.mode", "unsubscribe"),
                ("hub.verify_token", VERIFY_TOKEN),
                ("hub.challenge", "1"),
            ],
            vec![("hub.mode", "subscribe"), ("hub.challenge", "1")],
            vec![
                ("hub.mode", "subscribe"),
                ("hub.verify_token", VERIFY_TOKEN),
            ],
        ] {
            let req = request("GET", b"", &[], &query);
            let e = p.handle("facebook", &req, at(0)).await.unwrap_err();
            assert_eq!(e.status(), 403, "{query:?}");
        }
    }

    #[tokio::test]
    async fn handshake_without_a_verify_token_is_not_configured() {
        let p = Providers::new(ProvidersConfig::from_lookup(|k| {
            (k == "FACEBOOK_APP_SECRET").then(|| APP_SECRET.to_string())
        }));
        let req = request("GET", b"", &[], &[("hub.mode", "subscribe")]);
        let e = p.handle("facebook", &req, at(0)).await.unwrap_err();
        assert_eq!(e.code(), "provider_not_configured");
    }

    #[tokio::test]
    async fn leads_are_fetched_and_mapped() {
        let api = MockApi::start(graph_handler).await;
        let p = providers(&api.base, 2_000);
        // leadgen_id as a number above 2^53, as older deliveries send it.
        let body = notification(&["9007199254740993"]);
        let out = p
            .handle("facebook", &signed(&body), at(1_700_000_000))
            .await
            .unwrap();
        let mut subs = delivered(&p, out).await;
        assert_eq!(subs.len(), 1);
        let s = subs.remove(0);
        assert_eq!(s.delivery, DeliveryKey::Platform("9007199254740993".into()));
        assert_eq!(s.kind, TouchKind::AdLead);
        assert_eq!(s.channel_hint, Some(Channel::PaidSocial));
        assert_eq!(s.source_hint.as_deref(), Some("facebook"));
        assert_eq!(s.occurred_at.to_rfc3339(), "2015-11-12T15:27:06+00:00");
        assert_eq!(s.contact.full_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            s.contact.email.as_deref(),
            Some("ada+9007199254740993@example.com")
        );
        assert_eq!(s.contact.phone.as_deref(), Some("+14155550132"));
        assert_eq!(s.contact.company.as_deref(), Some("Analytical Engines"));
        assert_eq!(s.contact.job_title.as_deref(), Some("CTO"));
        assert_eq!(s.attribution.utm_campaign.as_deref(), Some("spring-launch"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("555"));
        assert_eq!(s.custom["what_is_your_budget"], "10k-50k");
        assert_eq!(s.custom["meta_ad_name"], "Spring ad");
        assert_eq!(s.custom["meta_page_id"], "444444444444");
        assert!(s.consent.as_ref().is_some_and(|c| c.marketing_opt_in));
        assert!(!s.is_test);

        let reqs = api.requests();
        assert_eq!(reqs.len(), 1);
        let target = &reqs[0].target;
        assert!(
            target.starts_with("/v21.0/9007199254740993?fields=field_data,"),
            "{target}"
        );
        assert!(target.contains(&format!("access_token={TOKEN}")));
        let proof = hex_hmac(APP_SECRET, &[TOKEN.as_bytes()]);
        assert!(target.contains(&format!("appsecret_proof={proof}")));
    }

    #[tokio::test]
    async fn organic_and_instagram_and_test_leads() {
        let data: Value = serde_json::from_str(
            r#"{"created_time":"2024-01-01T00:00:00+0000","is_organic":true,"platform":"ig","field_data":[{"name":"email","values":["test@fb.com"]},{"name":"full_name","values":["<test lead: dummy data for full_name>"]}]}"#,
        )
        .unwrap();
        let lead = Announced {
            leadgen_id: "1".into(),
            form_id: Some("9".into()),
            page_id: None,
            ad_id: None,
            adgroup_id: None,
            created_time: None,
        };
        let s = lead_submission(&lead, &data, at(0));
        assert_eq!(s.channel_hint, Some(Channel::OrganicSocial));
        assert_eq!(s.source_hint.as_deref(), Some("instagram"));
        assert!(s.is_test);
        assert_eq!(s.attribution.form_id.as_deref(), Some("9"));
    }

    #[tokio::test]
    async fn a_batch_of_50_gives_50_submissions() {
        let api = MockApi::start(graph_handler).await;
        let p = providers(&api.base, 5_000);
        let ids: Vec<String> = (0..50).map(|i| format!("\"{}\"", 100_000 + i)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let body = notification(&refs);
        let out = p.handle("facebook", &signed(&body), at(0)).await.unwrap();
        let subs = delivered(&p, out).await;
        assert_eq!(subs.len(), 50);
        let keys: BTreeSet<String> = subs
            .iter()
            .map(|s| s.delivery.as_str().to_string())
            .collect();
        assert_eq!(keys.len(), 50);
        assert!(keys.contains("100000") && keys.contains("100049"));
        assert_eq!(api.requests().len(), 50);
        // The same POST again gives the same 50 keys: the store sees duplicates.
        let out = p.handle("facebook", &signed(&body), at(0)).await.unwrap();
        let again = delivered(&p, out).await;
        let keys2: BTreeSet<String> = again
            .iter()
            .map(|s| s.delivery.as_str().to_string())
            .collect();
        assert_eq!(keys, keys2);
    }

    #[tokio::test]
    async fn duplicate_changes_in_one_post_are_fetched_once() {
        let api = MockApi::start(graph_handler).await;
        let p = providers(&api.base, 2_000);
        let body = notification(&["123", "\"123\"", "124"]);
        let (leads, _) = announced(p.handle("facebook", &signed(&body), at(0)).await.unwrap());
        assert_eq!(leads.len(), 2);
        assert_eq!(api.requests().len(), 0, "parsing fetches nothing");
        let ids: Vec<&str> = leads.iter().map(|l| l.platform_id()).collect();
        assert_eq!(ids, ["123", "124"]);
        assert_eq!(leads[0].ids["form_id"], "444444444444");
    }

    #[tokio::test]
    async fn each_failed_fetch_is_sorted_on_its_own() {
        let api = MockApi::start(graph_handler).await;
        let p = providers(&api.base, 300);
        let body = notification(&["1", "500500", "777777", "888888", "2"]);
        let out = p.handle("facebook", &signed(&body), at(0)).await.unwrap();
        let results = fetch_each(&p, out).await;
        assert!(results[0].is_ok() && results[4].is_ok());
        assert!(
            matches!(results[1], Err(FetchError::Transient(_))),
            "{:?}",
            results[1]
        );
        assert!(
            matches!(results[2], Err(FetchError::Transient(_))),
            "{:?}",
            results[2]
        );
        assert!(
            matches!(results[3], Err(FetchError::Rejected { .. })),
            "{:?}",
            results[3]
        );
        for r in &results {
            if let Err(e) = r {
                assert!(!e.to_string().contains(TOKEN));
            }
        }
    }

    #[tokio::test]
    async fn an_unreachable_graph_api_is_transient() {
        // Port 9 (discard) on loopback: nothing listens there.
        let p = providers("http://127.0.0.1:9", 1_000);
        let out = p
            .handle("facebook", &signed(&notification(&["1"])), at(0))
            .await
            .unwrap();
        let results = fetch_each(&p, out).await;
        assert!(matches!(results[0], Err(FetchError::Transient(_))));
    }

    #[tokio::test]
    async fn without_a_page_token_a_lead_is_an_authorization_failure() {
        let vars: HashMap<&str, String> =
            HashMap::from([("FACEBOOK_APP_SECRET", APP_SECRET.to_string())]);
        let p = Providers::new(ProvidersConfig::from_lookup(|k| vars.get(k).cloned()));
        let out = p
            .handle("facebook", &signed(&notification(&["1"])), at(0))
            .await
            .unwrap();
        let results = fetch_each(&p, out).await;
        assert!(matches!(results[0], Err(FetchError::Auth { .. })));
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers("http://127.0.0.1:9", 200);
        let body = notification(&["1"]);
        let mut req = signed(&body);
        req.body = body.replace("\"page\"", "\"user\"").into_bytes();
        assert_eq!(
            p.handle("facebook", &req, at(0)).await.unwrap_err().code(),
            "invalid_signature"
        );
        let sig = format!("sha256={}", hex_hmac("wrong", &[body.as_bytes()]));
        let req = request(
            "POST",
            body.as_bytes(),
            &[("x-hub-signature-256", &sig)],
            &[],
        );
        assert_eq!(
            p.handle("facebook", &req, at(0)).await.unwrap_err().code(),
            "invalid_signature"
        );
        // Only the legacy sha1 header: missing.
        let req = request(
            "POST",
            body.as_bytes(),
            &[("x-hub-signature", "sha1=00")],
            &[],
        );
        assert_eq!(
            p.handle("facebook", &req, at(0)).await.unwrap_err().code(),
            "missing_signature"
        );
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined_or_ignored() {
        let p = providers("http://127.0.0.1:9", 200);
        let reason = quarantine_reason(
            p.handle("facebook", &signed("{\"entry\": ["), at(0))
                .await
                .unwrap(),
        );
        assert!(reason.contains("JSON"), "{reason}");
        // A float id would have lost digits: not accepted as an id.
        let reason = quarantine_reason(
            p.handle("facebook", &signed(r#"{"object":"page","entry":[{"changes":[{"field":"leadgen","value":{"leadgen_id":1.5e20}}]}]}"#), at(0))
                .await
                .unwrap(),
        );
        assert!(reason.contains("JSON"), "{reason}");
        let reason = quarantine_reason(
            p.handle("facebook", &signed(r#"{"object":"page","entry":[{"changes":[{"field":"leadgen","value":{"form_id":"1"}}]}]}"#), at(0))
                .await
                .unwrap(),
        );
        assert!(reason.contains("leadgen_id"), "{reason}");
        ignored_reason(
            p.handle(
                "facebook",
                &signed(r#"{"object":"page","entry":[{"changes":[{"field":"feed","value":{}}]}]}"#),
                at(0),
            )
            .await
            .unwrap(),
        );
        ignored_reason(
            p.handle(
                "facebook",
                &signed(r#"{"object":"instagram","entry":[]}"#),
                at(0),
            )
            .await
            .unwrap(),
        );
    }

    // --- The signature scheme (published vectors first) ---

    #[test]
    fn github_vector_for_the_meta_scheme() {
        let secret = "It's a Secret to Everybody";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_meta(secret, b"Hello, World!", Some(header)), Ok(()));
        // Uppercase hex is the same signature.
        assert_eq!(
            verify_meta(
                secret,
                b"Hello, World!",
                Some(&header.to_uppercase().replace("SHA256=", "sha256="))
            ),
            Ok(())
        );
    }

    #[test]
    fn meta_failure_modes() {
        let body = br#"{"object":"page"}"#;
        let good = format!("sha256={}", hex::encode(hmac_sha256(b"s3cret", &[body])));
        assert_eq!(verify_meta("s3cret", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_meta("s3cret", br#"{"object":"pagE"}"#, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_meta("other", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_meta("s3cret", body, None),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_meta("s3cret", body, Some(&good[7..])),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_meta("s3cret", body, Some("sha256=zz")),
            Err(SignatureError::Malformed(_))
        ));
        // A truncated signature is a mismatch, not a prefix match.
        assert_eq!(
            verify_meta("s3cret", body, Some(&good[..good.len() - 2])),
            Err(SignatureError::Mismatch)
        );
        // An empty secret never verifies anything.
        let empty = format!("sha256={}", hex::encode(hmac_sha256(b"", &[body])));
        assert_eq!(
            verify_meta("", body, Some(&empty)),
            Err(SignatureError::Mismatch)
        );
    }

    // --- What Graph answers ---

    fn status(status: u16, body: Value) -> ApiError {
        ApiError::Status {
            status,
            body: Some(body),
        }
    }

    #[test]
    fn graph_answers_are_sorted_by_code() {
        let gone = status(
            400,
            serde_json::json!({"error": {"message": "Unsupported get request. Object with ID '444444444444' does not exist", "code": 100, "error_subcode": 33}}),
        );
        assert!(matches!(
            classify_graph(gone),
            FetchError::Gone {
                code: Some(100),
                ..
            }
        ));
        assert!(matches!(
            classify_graph(status(404, serde_json::json!({}))),
            FetchError::Gone { .. }
        ));
        let expired = status(
            400,
            serde_json::json!({"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190, "error_subcode": 463}}),
        );
        assert!(matches!(
            classify_graph(expired),
            FetchError::Auth {
                code: Some(190),
                ..
            }
        ));
        assert!(matches!(
            classify_graph(status(403, serde_json::json!({"error": {"code": 10}}))),
            FetchError::Auth { .. }
        ));
        for transient in [
            status(500, serde_json::json!({"error": {"code": 2}})),
            status(400, serde_json::json!({"error": {"code": 17}})),
            status(429, serde_json::json!({})),
        ] {
            assert!(matches!(
                classify_graph(transient),
                FetchError::Transient(_)
            ));
        }
        assert!(matches!(
            classify_graph(ApiError::Timeout(std::time::Duration::from_secs(1))),
            FetchError::Transient(_)
        ));
        assert!(matches!(
            classify_graph(status(400, serde_json::json!({"error": {"code": 803}}))),
            FetchError::Rejected { .. }
        ));
        assert!(matches!(
            classify_graph(ApiError::BadJson("x".into())),
            FetchError::Rejected { .. }
        ));
    }
}
