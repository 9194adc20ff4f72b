//! Every platform end to end: its documented sample (events/) through the handler into the local
//! DynamoDB, read back; Meta and LinkedIn against local stand-ins for their APIs, including a
//! failing and a hanging one; retries that store nothing twice; quarantine and replay.

use std::collections::HashMap;

use base64::Engine;
use chrono::Utc;
use form_webhook::{handler, AppState};
use integration_tests::{fresh_store, lambda_event, local_env, Answer, StandIn, StandInReply};
use leadflow::signature::hmac_sha256;
use leadflow::store::Store;
use leadflow_providers::{replay, ReplayResult};
use serde_json::Value;

fn state(store: Store, extra: &[(&str, String)]) -> AppState {
    // The test values the samples were signed with (events/PROVIDERS.md).
    let mut vars: HashMap<String, String> = local_env();
    vars.insert("PLATFORM_API_TIMEOUT_MS".into(), "500".into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.clone());
    }
    AppState::from_lookup(store, |k| vars.get(k).cloned()).unwrap()
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn raw_body(ev: &Value) -> Vec<u8> {
    let body = ev["body"].as_str().unwrap_or_default();
    if ev["isBase64Encoded"].as_bool().unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

/// Timestamped schemes reject old signatures: sign the sample again with the current time,
/// exactly as the platform would (events/PROVIDERS.md).
fn resign(name: &str, mut ev: Value) -> Value {
    let body = raw_body(&ev);
    let now_ms = Utc::now().timestamp_millis().to_string();
    let env = local_env();
    let key = |k: &str| env[k].as_bytes();
    let headers = ev["headers"].as_object_mut().unwrap();
    if name.starts_with("webflow") {
        let sig = hmac_sha256(key("WEBFLOW_SECRET"), &[now_ms.as_bytes(), b":", &body]);
        headers.insert("x-webflow-timestamp".into(), now_ms.clone().into());
        headers.insert("x-webflow-signature".into(), hex::encode(sig).into());
    } else if name.starts_with("calendly") {
        let t = Utc::now().timestamp().to_string();
        let sig = hmac_sha256(key("CALENDLY_SIGNING_KEY"), &[t.as_bytes(), b".", &body]);
        headers.insert(
            "calendly-webhook-signature".into(),
            format!("t={t},v1={}", hex::encode(sig)).into(),
        );
    } else if name == "hubspot-events.json" {
        let ctx = &ev["requestContext"];
        let mut url = format!(
            "https://{}{}",
            ctx["domainName"].as_str().unwrap(),
            ev["rawPath"].as_str().unwrap()
        );
        if let Some(q) = ev["rawQueryString"].as_str().filter(|q| !q.is_empty()) {
            url = format!("{url}?{q}");
        }
        let sig = hmac_sha256(
            key("HUBSPOT_CLIENT_SECRET"),
            &[b"POST", url.as_bytes(), &body, now_ms.as_bytes()],
        );
        let headers = ev["headers"].as_object_mut().unwrap();
        headers.insert("x-hubspot-request-timestamp".into(), now_ms.into());
        headers.insert(
            "x-hubspot-signature-v3".into(),
            base64::engine::general_purpose::STANDARD.encode(sig).into(),
        );
    }
    ev
}

async fn send(state: &AppState, ev: Value) -> Answer {
    let event = serde_json::from_value(ev).unwrap();
    handler(state, lambda_event(event)).await.unwrap().into()
}

fn graph_lead(id: &str) -> String {
    serde_json::json!({
        "id": id, "created_time": "2026-11-22T15:27:06+0000", "ad_id": "6045",
        "campaign_id": "6047", "campaign_name": "spring-launch", "form_id": "555",
        "is_organic": false, "platform": "fb",
        "field_data": [
            {"name": "full_name", "values": ["Ada Lovelace"]},
            {"name": "email", "values": [format!("meta+{id}@example.com")]},
            {"name": "company_name", "values": ["Analytical Engines"]}
        ]
    })
    .to_string()
}

async fn graph_stand_in() -> StandIn {
    StandIn::start(|target| {
        let id = target
            .trim_start_matches('/')
            .split('?')
            .next()
            .unwrap_or("");
        match id {
            "500500" => StandInReply::Json(500, r#"{"error":{"message":"boom"}}"#.into()),
            "777777" => StandInReply::Hang,
            _ => StandInReply::Json(200, graph_lead(id)),
        }
    })
    .await
}

/// A Meta leadgen notification for these ids, signed with the app secret.
fn meta_post(ids: &[String]) -> Value {
    let changes: Vec<Value> = ids
        .iter()
        .map(|id| {
            serde_json::json!({"field": "leadgen", "value": {
                "leadgen_id": id, "form_id": "555", "page_id": "444", "ad_id": "6045",
                "adgroup_id": "6046", "created_time": 1_795_374_238u64}})
        })
        .collect();
    let body = serde_json::json!({"object": "page", "entry": [{"id": "444", "time": 1_795_374_238u64, "changes": changes}]})
        .to_string();
    let sig = hmac_sha256(b"test-facebook-app-secret", &[body.as_bytes()]);
    let mut ev = sample("facebook-leadgen.json");
    ev["body"] = body.into();
    ev["isBase64Encoded"] = false.into();
    ev["headers"]["x-hub-signature-256"] = format!("sha256={}", hex::encode(sig)).into();
    ev
}

#[tokio::test]
async fn every_platform_sample_lands_as_a_lead_once() {
    let store = fresh_store().await;
    let graph = graph_stand_in().await;
    let linkedin = StandIn::start(|_| {
        StandInReply::Json(
            200,
            serde_json::json!({
                "id": "249592fc-d272-44ba-a7db-c2bdce579507-6", "leadType": "SPONSORED",
                "submittedAt": 1_795_374_236_000u64, "testLead": false,
                "versionedLeadGenFormUrn": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7234246,1)",
                "formResponse": {"answers": [
                    {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "kevin@example.com"}}},
                    {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Kevin"}}}
                ]},
                "form": {"content": {"questions": [
                    {"questionId": 1, "name": "Email address", "predefinedField": "EMAIL"},
                    {"questionId": 2, "name": "First name", "predefinedField": "FIRST_NAME"}
                ]}}
            })
            .to_string(),
        )
    })
    .await;
    let state = state(
        store.clone(),
        &[
            ("GRAPH_API_URL", graph.base_url.clone()),
            ("LINKEDIN_API_URL", linkedin.base_url.clone()),
        ],
    );
    let leads_from = [
        ("typeform-response.json", 1),
        ("google-ads-lead.json", 1),
        ("hubspot-workflow.json", 1),
        ("tally-response.json", 1),
        ("webflow-form.json", 1),
        ("calendly-invitee-created.json", 1),
        ("unbounce-form.json", 1),
        ("jotform-submission.json", 1),
        ("facebook-leadgen.json", 2),
        ("linkedin-lead.json", 1),
    ];
    let mut expected_leads = 0;
    for (name, n) in leads_from {
        let ev = resign(name, sample(name));
        let first = send(&state, ev.clone()).await;
        assert_eq!(first.status, 200, "{name}: {}", first.text);
        let results = first.json["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {}", first.text));
        assert_eq!(results.len(), n, "{name}: {}", first.text);
        assert!(
            results
                .iter()
                .all(|r| r["status"] == "created" || r["status"] == "merged"),
            "{name}: {}",
            first.text
        );
        expected_leads += results.iter().filter(|r| r["status"] == "created").count();
        // The platform retries the same delivery: nothing new is written.
        let again = send(&state, ev).await;
        assert_eq!(again.status, 200, "{name}: {}", again.text);
        assert!(
            again.json["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == "duplicate"),
            "{name}: {}",
            again.text
        );
    }
    let leads = store.scan_leads().await.unwrap();
    assert_eq!(leads.len(), expected_leads);
    let google = leads
        .iter()
        .find(|l| l.source == "google_ads" || l.channel.as_str() == "paid_search");
    assert!(
        google.is_some(),
        "the Google Ads lead is classified as paid search"
    );
    let meta: Vec<_> = leads
        .iter()
        .filter(|l| {
            l.contact
                .email
                .as_deref()
                .is_some_and(|e| e.starts_with("meta+"))
        })
        .collect();
    assert_eq!(meta.len(), 2);
    assert!(meta.iter().all(|l| l.channel.as_str() == "paid_social"));
    assert!(leads
        .iter()
        .any(|l| l.contact.email.as_deref() == Some("kevin@example.com")));
    // Each lead holds exactly one touchpoint per delivery.
    for lead in &leads {
        let r = store.lead_record(&lead.lead_id).await.unwrap().unwrap();
        assert_eq!(r.touchpoints.len() as u64, r.lead.touch_count);
    }
}

/// The HubSpot CRM API stand-in serving the contacts of events/platform-apis/ (as
/// scripts/platform-apis does for the local stack), for the test token only.
async fn hubspot_stand_in() -> StandIn {
    let path = format!(
        "{}/../events/platform-apis/hubspot-contacts.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let bearer = format!("Bearer {}", local_env()["HUBSPOT_ACCESS_TOKEN"]);
    StandIn::start_with_headers(move |req| {
        let id = req
            .target
            .trim_start_matches("/crm/v3/objects/contacts/")
            .split('?')
            .next()
            .unwrap_or_default();
        match (
            req.headers.get("authorization") == Some(&bearer),
            &data["contacts"][id],
        ) {
            (false, _) => StandInReply::Json(
                401,
                r#"{"status":"error","category":"INVALID_AUTHENTICATION"}"#.into(),
            ),
            (true, Value::Null) => StandInReply::Json(
                404,
                r#"{"status":"error","category":"OBJECT_NOT_FOUND"}"#.into(),
            ),
            (true, contact) => StandInReply::Json(200, contact.to_string()),
        }
    })
    .await
}

#[tokio::test]
async fn handshakes_and_hubspot_crm_events() {
    let crm = hubspot_stand_in().await;
    let state = state(
        fresh_store().await,
        &[("HUBSPOT_API_URL", crm.base_url.clone())],
    );
    let fb = send(&state, sample("facebook-verify.json")).await;
    assert_eq!(fb.status, 200, "{}", fb.text);
    assert!(!fb.text.is_empty() && fb.json.is_number());
    let li = send(&state, sample("linkedin-challenge.json")).await;
    assert_eq!(li.status, 200, "{}", li.text);
    assert!(li.json["challengeResponse"].is_string());
    let hs = send(
        &state,
        resign("hubspot-events.json", sample("hubspot-events.json")),
    )
    .await;
    // A creation and a property change of one contact: one fetch, one lead.
    assert_eq!(hs.status, 200, "{}", hs.text);
    assert_eq!(hs.json["results"][0]["status"], "created", "{}", hs.text);
    assert_eq!(crm.served(), 1);
    let leads = state.store.scan_leads().await.unwrap();
    assert_eq!(leads.len(), 1);
    assert_eq!(
        leads[0].contact.email.as_deref(),
        Some("codey.huang@example.com")
    );
    assert_eq!(leads[0].source, "newsletter");
}

#[tokio::test]
async fn a_meta_batch_of_50_delivered_twice_is_50_leads() {
    let store = fresh_store().await;
    let graph = graph_stand_in().await;
    let state = state(store.clone(), &[("GRAPH_API_URL", graph.base_url.clone())]);
    let ids: Vec<String> = (0..50).map(|i| format!("9007199254741{i:03}")).collect();
    let first = send(&state, meta_post(&ids)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["results"].as_array().unwrap().len(), 50);
    let again = send(&state, meta_post(&ids)).await;
    assert_eq!(again.status, 200);
    assert!(again.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "duplicate"));
    assert_eq!(store.scan_leads().await.unwrap().len(), 50);
    assert_eq!(
        graph.served(),
        50,
        "the second delivery fetched nothing: every lead was stored already"
    );
}

#[tokio::test]
async fn a_failing_or_hanging_graph_api_is_a_502_and_the_good_lead_is_kept() {
    let store = fresh_store().await;
    let graph = graph_stand_in().await;
    let state = state(store.clone(), &[("GRAPH_API_URL", graph.base_url.clone())]);
    for bad in ["500500", "777777"] {
        let a = send(&state, meta_post(&["123".to_string(), bad.to_string()])).await;
        assert_eq!(a.status, 502, "{bad}: {}", a.text);
        assert_eq!(a.json["error"]["code"], "upstream_unavailable");
    }
    // The lead that was fetched is stored at once; Meta's retry finds it as a duplicate.
    assert_eq!(store.scan_leads().await.unwrap().len(), 1);
    assert_eq!(
        graph.served(),
        3,
        "the second delivery did not fetch 123 again"
    );
}

#[tokio::test]
async fn forged_and_unconfigured_deliveries_store_nothing() {
    let store = fresh_store().await;
    let state = state(store.clone(), &[]);
    let mut forged = sample("typeform-response.json");
    forged["body"] = forged["body"].as_str().unwrap().replace("@", "+x@").into();
    let a = send(&state, forged).await;
    assert_eq!(
        (a.status, a.json["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    let stale = send(&state, sample("webflow-form.json")).await;
    assert_eq!(
        (stale.status, stale.json["error"]["code"].as_str()),
        (401, Some("stale_timestamp"))
    );
    let unconfigured = AppState::from_lookup(store.clone(), |_| None).unwrap();
    let b = send(&unconfigured, sample("tally-response.json")).await;
    assert_eq!(
        (b.status, b.json["error"]["code"].as_str()),
        (404, Some("provider_not_configured"))
    );
    assert_eq!(store.scan_leads().await.unwrap().len(), 0);
}

#[tokio::test]
async fn authentic_unparseable_deliveries_are_quarantined_and_replayable() {
    let store = fresh_store().await;
    let state = state(store.clone(), &[]);
    // An authentic Typeform delivery with an answer type the parser does not know.
    let mut ev = sample("typeform-response.json");
    let body = ev["body"]
        .as_str()
        .unwrap()
        .replace("\"type\":\"text\"", "\"type\":\"hologram\"");
    let sig = hmac_sha256(b"test-typeform-secret", &[body.as_bytes()]);
    ev["body"] = body.clone().into();
    ev["headers"]["typeform-signature"] = format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
    .into();
    let a = send(&state, ev).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.json["status"], "quarantined");
    let held = store.list_quarantine(10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].body, body.as_bytes(), "the exact bytes are kept");
    assert!(matches!(
        replay(state.intake(), &held[0]).await.unwrap(),
        ReplayResult::StillUnusable(_)
    ));

    // Once the parser understands a delivery, replay stores it (once).
    let good = raw_body(&sample("typeform-response.json"));
    let id = store
        .quarantine(
            "typeform",
            "test: parser fixed since",
            &good,
            Some("application/json"),
            "",
            Utc::now(),
        )
        .await
        .unwrap();
    let item = store
        .list_quarantine(10)
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.id == id)
        .unwrap();
    match replay(state.intake(), &item).await.unwrap() {
        ReplayResult::Stored(outcomes) => assert_eq!(outcomes.len(), 1),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(replay(state.intake(), &item).await.unwrap(), ReplayResult::Stored(o) if o[0].status.as_str() == "duplicate")
    );
    assert_eq!(store.scan_leads().await.unwrap().len(), 1);
}
