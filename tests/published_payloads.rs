//! Every provider adapter against the platform's own published example payload
//! (`tests/fixtures/providers/`, sources in its README), end to end: signed as the platform
//! signs, through the handler, into the local DynamoDB, read back.

use std::collections::HashMap;

use base64::Engine;
use chrono::Utc;
use form_webhook::{handler, AppState};
use integration_tests::{
    fresh_store, lambda_event, local_env, Answer, EventBuilder, StandIn, StandInReply,
};
use leadflow::model::{Channel, Lead, TouchKind};
use leadflow::signature::hmac_sha256;
use leadflow::store::Store;
use serde_json::{json, Value};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/providers/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// The value events/local.env gives a secret.
fn secret(name: &str) -> Vec<u8> {
    local_env()
        .remove(name)
        .unwrap_or_else(|| panic!("events/local.env has no {name}"))
        .into_bytes()
}

fn state(store: Store, extra: &[(&str, String)]) -> AppState {
    let mut vars: HashMap<String, String> = local_env();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.clone());
    }
    AppState::from_lookup(store, |k| vars.get(k).cloned()).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn send(state: &AppState, ev: EventBuilder) -> Answer {
    handler(state, lambda_event(ev.build()))
        .await
        .unwrap()
        .into()
}

fn json_post(provider: &str, body: &[u8]) -> EventBuilder {
    EventBuilder::new("POST", &format!("/webhooks/{provider}"))
        .header("content-type", "application/json")
        .text_body(std::str::from_utf8(body).unwrap())
}

/// The lead a delivery created, read back.
async fn created_lead(store: &Store, a: &Answer) -> Lead {
    assert_eq!(a.status, 200, "{}", a.text);
    let result = &a.json["results"][0];
    assert_eq!(result["status"], "created", "{}", a.text);
    store
        .get_lead(result["lead_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn typeforms_example_payload() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let body = fixture("typeform-example-payload.json");
    let sig = format!(
        "sha256={}",
        b64(&hmac_sha256(&secret("TYPEFORM_SECRET"), &[&body]))
    );
    let a = send(
        &st,
        json_post("typeform", &body).header("typeform-signature", &sig),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert_eq!(lead.contact.email.as_deref(), Some("laura@example.com"));
    // "What is your first name?" is a question, not a field name: kept as an answer.
    assert!(
        lead.custom.values().any(|v| v == "Laura"),
        "{:?}",
        lead.custom
    );
    let record = store.lead_record(&lead.lead_id).await.unwrap().unwrap();
    let tp = &record.touchpoints[0];
    assert_eq!(tp.attribution.form_id.as_deref(), Some("lT4Z3j"));
    assert!(
        tp.custom.values().any(|v| v == "London, Sydney"),
        "{:?}",
        tp.custom
    );
}

#[tokio::test]
async fn metas_leadgen_webhook_lead_and_disclaimer_samples() {
    let store = fresh_store().await;
    // Graph answers Meta's documented lead, with its custom disclaimer responses decorated in
    // (both are fields of the one read the adapter makes).
    let mut lead = fixture_json("meta-lead.json");
    lead["custom_disclaimer_responses"] =
        fixture_json("meta-lead-custom-disclaimer.json")["custom_disclaimer_responses"].clone();
    let answer = lead.to_string();
    let graph = StandIn::start(move |_| StandInReply::Json(200, answer.clone())).await;
    let st = state(store.clone(), &[("GRAPH_API_URL", graph.base_url.clone())]);
    let body = fixture("meta-leadgen-webhook.json");
    let sig = format!(
        "sha256={}",
        hex::encode(hmac_sha256(&secret("FACEBOOK_APP_SECRET"), &[&body]))
    );
    let a = send(
        &st,
        json_post("facebook", &body).header("x-hub-signature-256", &sig),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut statuses: Vec<&str> = a.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    // Two leadgen ids, one person (the documented answer is the same for both).
    assert_eq!(statuses, ["created", "merged"], "{}", a.text);
    let leads = store.scan_leads().await.unwrap();
    assert_eq!(leads.len(), 1);
    let l = &leads[0];
    assert_eq!(l.contact.email.as_deref(), Some("joe@example.com"));
    assert_eq!(l.contact.full_name.as_deref(), Some("Joe Example"));
    assert_eq!(l.custom.get("car_make").map(String::as_str), Some("Honda"));
    assert_eq!(l.channel, Channel::PaidSocial);
    let consent = l.consent.as_ref().unwrap();
    assert!(consent.marketing_opt_in);
    assert_eq!(consent.text.as_deref(), Some("optional_1"));
    assert_eq!(graph.served(), 2);
}

#[tokio::test]
async fn google_ads_send_test_data() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let a = send(
        &st,
        json_post("google-ads", &fixture("google-ads-send-test-data.json")),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert!(lead.is_test, "send test data is flagged as a test lead");
    assert_eq!(lead.contact.email.as_deref(), Some("test@example.com"));
    assert_eq!(lead.contact.phone.as_deref(), Some("+16505550123"));
    assert_eq!(lead.channel, Channel::PaidSearch);
}

fn hubspot_v3(body: &[u8]) -> EventBuilder {
    let ev = json_post("hubspot", body);
    let built = serde_json::to_value(ev.build()).unwrap();
    let url = format!(
        "https://{}{}",
        built["requestContext"]["domainName"].as_str().unwrap(),
        built["rawPath"].as_str().unwrap()
    );
    let now = Utc::now().timestamp_millis().to_string();
    let sig = hmac_sha256(
        &secret("HUBSPOT_CLIENT_SECRET"),
        &[b"POST", url.as_bytes(), body, now.as_bytes()],
    );
    EventBuilder::from_value(built)
        .header("x-hubspot-request-timestamp", &now)
        .header("x-hubspot-signature-v3", &b64(&sig))
}

#[tokio::test]
async fn hubspots_webhook_events_and_workflow_contact() {
    let store = fresh_store().await;
    // The CRM API answers both contacts of the documented events with its documented contact
    // (tests/fixtures/providers/README.md), so both become the same person.
    let contact = String::from_utf8(fixture("hubspot-crm-contact.json")).unwrap();
    let token = format!(
        "Bearer {}",
        String::from_utf8(secret("HUBSPOT_ACCESS_TOKEN")).unwrap()
    );
    let crm = StandIn::start_with_headers(move |req| {
        let known = [
            "/crm/v3/objects/contacts/1246965?",
            "/crm/v3/objects/contacts/1246978?",
        ];
        if req.headers.get("authorization") != Some(&token) {
            StandInReply::Json(
                401,
                r#"{"status":"error","category":"INVALID_AUTHENTICATION"}"#.into(),
            )
        } else if known.iter().any(|k| req.target.starts_with(k)) {
            StandInReply::Json(200, contact.clone())
        } else {
            StandInReply::Json(
                404,
                r#"{"status":"error","category":"OBJECT_NOT_FOUND"}"#.into(),
            )
        }
    })
    .await;
    let st = state(store.clone(), &[("HUBSPOT_API_URL", crm.base_url.clone())]);
    let events = send(&st, hubspot_v3(&fixture("hubspot-webhooks-events.json"))).await;
    assert_eq!(events.status, 200, "{}", events.text);
    let mut statuses: Vec<&str> = events.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["created", "merged"], "{}", events.text);
    assert_eq!(crm.served(), 2);
    let leads = store.scan_leads().await.unwrap();
    assert_eq!(leads.len(), 1);
    assert_eq!(
        leads[0].contact.email.as_deref(),
        Some("mark.s@lumon.industries")
    );
    assert_eq!(leads[0].contact.first_name.as_deref(), Some("Mark"));

    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let a = send(
        &st,
        hubspot_v3(&fixture("hubspot-workflow-legacy-contact.json")),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert_eq!(
        lead.contact.email.as_deref(),
        Some("codey.huang@example.com")
    );
    assert_eq!(lead.contact.company.as_deref(), Some("HubSpot"));
}

#[tokio::test]
async fn tallys_example_payload_with_every_field_type() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let body = fixture("tally-webhook-payload.json");
    let sig = b64(&hmac_sha256(&secret("TALLY_SECRET"), &[&body]));
    let a = send(
        &st,
        json_post("tally", &body).header("tally-signature", &sig),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert_eq!(lead.contact.email.as_deref(), Some("alice@example.com"));
    assert_eq!(lead.contact.phone.as_deref(), Some("+32491223344"));
    assert_eq!(lead.campaign, "newsletter");
}

fn webflow(body: &[u8]) -> EventBuilder {
    let now = Utc::now().timestamp_millis().to_string();
    let sig = hmac_sha256(&secret("WEBFLOW_SECRET"), &[now.as_bytes(), b":", body]);
    json_post("webflow", body)
        .header("x-webflow-timestamp", &now)
        .header("x-webflow-signature", &hex::encode(sig))
}

#[tokio::test]
async fn webflows_v1_and_v2_form_submissions() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let v2 = send(&st, webflow(&fixture("webflow-v2-form-submission.json"))).await;
    let lead = created_lead(&store, &v2).await;
    assert_eq!(lead.contact.email.as_deref(), Some("zaphod@heartofgold.ai"));
    assert_eq!(lead.contact.first_name.as_deref(), Some("Zaphod"));
    // Webflow's two examples share one submission id: a fresh table for the v1 one.
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let v1 = send(&st, webflow(&fixture("webflow-v1-form-submission.json"))).await;
    let lead = created_lead(&store, &v1).await;
    assert_eq!(lead.contact.email.as_deref(), Some("some.one@home.com"));
    assert_eq!(lead.contact.full_name.as_deref(), Some("Some One"));
}

#[tokio::test]
async fn calendlys_invitee_created() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let body = fixture("calendly-invitee-created.json");
    let t = Utc::now().timestamp().to_string();
    let sig = hmac_sha256(
        &secret("CALENDLY_SIGNING_KEY"),
        &[t.as_bytes(), b".", &body],
    );
    let a = send(
        &st,
        json_post("calendly", &body).header(
            "calendly-webhook-signature",
            &format!("t={t},v1={}", hex::encode(sig)),
        ),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert_eq!(lead.contact.email.as_deref(), Some("test@example.com"));
    let record = store.lead_record(&lead.lead_id).await.unwrap().unwrap();
    assert_eq!(record.touchpoints[0].kind, TouchKind::MeetingBooked);
}

#[tokio::test]
async fn unbounces_urlencoded_data_json() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let a = send(
        &st,
        EventBuilder::new("POST", "/webhooks/unbounce")
            .query("key=test-unbounce-key")
            .header("content-type", "application/x-www-form-urlencoded")
            .base64_body(&fixture("unbounce-form-submission.urlencoded")),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert_eq!(lead.contact.email.as_deref(), Some("ali@tray.io"));
}

#[tokio::test]
async fn jotforms_multipart_raw_request() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let a = send(
        &st,
        EventBuilder::new("POST", "/webhooks/jotform")
            .query("key=test-jotform-key")
            .header(
                "content-type",
                "multipart/form-data; boundary=------JotformBoundary7MA4YWxk",
            )
            .base64_body(&fixture("jotform-webhook.multipart")),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert_eq!(lead.contact.email.as_deref(), Some("jane.doe@example.com"));
    assert_eq!(lead.contact.first_name.as_deref(), Some("Jane"));
    assert_eq!(lead.contact.phone.as_deref(), Some("+14155550132"));
    assert_eq!(lead.contact.company.as_deref(), Some("Example Ltd"));
}

#[tokio::test]
async fn linkedins_notification_and_lead_form_response() {
    let store = fresh_store().await;
    let answer = fixture_json("linkedin-lead-form-response.json").to_string();
    let api = StandIn::start(move |_| StandInReply::Json(200, answer.clone())).await;
    let st = state(store.clone(), &[("LINKEDIN_API_URL", api.base_url.clone())]);
    let body = fixture("linkedin-lead-notification.json");
    let sig = hex::encode(hmac_sha256(
        &secret("LINKEDIN_CLIENT_SECRET"),
        &[b"hmacsha256=", &body],
    ));
    let a = send(
        &st,
        json_post("linkedin", &body).header("x-li-signature", &sig),
    )
    .await;
    let lead = created_lead(&store, &a).await;
    assert_eq!(lead.contact.email.as_deref(), Some("kevjohonson@email.com"));
    assert_eq!(lead.contact.first_name.as_deref(), Some("Kevin"));
    let consent = lead.consent.as_ref().unwrap();
    assert!(consent.marketing_opt_in);
}

#[tokio::test]
async fn trustpilots_service_review_created() {
    let store = fresh_store().await;
    let st = referral_review::AppState::from_lookup(store.clone(), |k| {
        (k == "TRUSTPILOT_KEY").then(|| "tp-secret".to_string())
    })
    .unwrap();
    let body = fixture("trustpilot-service-review-created.json");
    let ev = EventBuilder::new("POST", "/reviews/trustpilot")
        .query("key=tp-secret")
        .header("content-type", "application/json")
        .text_body(std::str::from_utf8(&body).unwrap());
    let a: Answer = referral_review::handler(&st, lambda_event(ev.build()))
        .await
        .unwrap()
        .into();
    assert_eq!(a.status, 200, "{}", a.text);
    let agg = st
        .store
        .review_aggregate(leadflow::model::ReviewPlatform::Trustpilot)
        .await
        .unwrap();
    assert_eq!((agg.count, agg.rating_sum), (1, 5), "{}", json!(a.json));
}
