//! Issue 10, "Intake hardening": each defect found in the intake, reproduced end to end through
//! the handlers against the local DynamoDB, with the Graph and LinkedIn APIs stood in for by a
//! local HTTP server (the real client code runs against it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use form_webhook::{handler, AppState};
use integration_tests::{
    fresh_store, json_event, lambda_event, Answer, EventBuilder, StandIn, StandInReply,
};
use lambda_runtime::{Context, LambdaEvent};
use leadflow::signature::hmac_sha256;
use leadflow::store::Store;
use serde_json::{json, Value};

const APP_SECRET: &str = "test-facebook-app-secret";
const LINKEDIN_SECRET: &str = "test-linkedin-client-secret";

fn state(store: Store, extra: &[(&str, String)]) -> AppState {
    let mut vars: HashMap<String, String> = [
        ("FACEBOOK_APP_SECRET", APP_SECRET),
        ("FACEBOOK_VERIFY_TOKEN", "test-facebook-verify-token"),
        ("FACEBOOK_ACCESS_TOKEN", "test-page-access-token"),
        ("LINKEDIN_CLIENT_SECRET", LINKEDIN_SECRET),
        ("LINKEDIN_ACCESS_TOKEN", "test-linkedin-access-token"),
        ("TYPEFORM_SECRET", "test-typeform-secret"),
        ("PLATFORM_API_TIMEOUT_MS", "500"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.clone());
    }
    AppState::from_lookup(store, |k| vars.get(k).cloned()).unwrap()
}

async fn send(state: &AppState, event: EventBuilder) -> Answer {
    handler(state, lambda_event(event.build()))
        .await
        .unwrap()
        .into()
}

fn graph_lead(id: &str) -> String {
    json!({
        "id": id, "created_time": "2026-11-22T15:27:06+0000", "form_id": "555",
        "is_organic": false, "platform": "fb",
        "field_data": [
            {"name": "full_name", "values": ["Grace Hopper"]},
            {"name": "email", "values": [format!("meta+{id}@example.com")]}
        ]
    })
    .to_string()
}

/// What the Graph API answers for an id deleted before the fetch, or for the dashboard "Test"
/// button's made-up ids (`444444444444`): error code 100.
fn graph_unknown_object(id: &str) -> String {
    json!({"error": {
        "message": format!("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"),
        "type": "GraphMethodException", "code": 100, "error_subcode": 33,
        "fbtrace_id": "AbCdEfGhIjK"}})
    .to_string()
}

/// What the Graph API answers once the page token expired: OAuthException 190.
fn graph_expired_token() -> String {
    json!({"error": {
        "message": "Error validating access token: Session has expired on Tuesday, 01-Dec-26 09:00:00 PST. The current time is Tuesday, 01-Dec-26 10:00:00 PST.",
        "type": "OAuthException", "code": 190, "error_subcode": 463,
        "fbtrace_id": "AbCdEfGhIjK"}})
    .to_string()
}

fn graph_id(target: &str) -> String {
    target
        .trim_start_matches('/')
        .split('?')
        .next()
        .unwrap_or("")
        .to_string()
}

/// A Meta leadgen notification for these ids, signed with the app secret.
fn meta_post(ids: &[&str]) -> EventBuilder {
    let changes: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"field": "leadgen", "value": {
                "leadgen_id": id, "form_id": "444444444444", "page_id": "444444444444",
                "ad_id": "444444444", "adgroup_id": "44444444", "created_time": 1_795_374_238u64}})
        })
        .collect();
    let body = json!({"object": "page", "entry": [{"id": "444444444444", "time": 1_795_374_238u64, "changes": changes}]})
        .to_string();
    let sig = hex::encode(hmac_sha256(APP_SECRET.as_bytes(), &[body.as_bytes()]));
    EventBuilder::new("POST", "/webhooks/facebook")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &format!("sha256={sig}"))
        .text_body(&body)
}

fn statuses(a: &Answer) -> Vec<String> {
    a.json["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|x| x["status"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---- 1. Batches: each lead on its own -------------------------------------------------------

#[tokio::test]
async fn a_meta_batch_with_unknown_and_deleted_leads_stores_the_others_and_answers_2xx() {
    let store = fresh_store().await;
    let graph = StandIn::start(|target| {
        let id = graph_id(target);
        match id.as_str() {
            // The App Dashboard "Test" button's id: Graph answers 400, error code 100.
            "444444444444" => StandInReply::Json(400, graph_unknown_object(&id)),
            // A lead deleted before we fetched it.
            "404404" => StandInReply::Json(404, graph_unknown_object(&id)),
            _ => StandInReply::Json(200, graph_lead(&id)),
        }
    })
    .await;
    let state = state(store.clone(), &[("GRAPH_API_URL", graph.base_url.clone())]);
    let a = send(
        &state,
        meta_post(&["1001", "444444444444", "1002", "404404"]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut got = statuses(&a);
    got.sort();
    assert_eq!(
        got,
        ["created", "created", "lead_gone", "lead_gone"],
        "{}",
        a.text
    );
    assert_eq!(store.scan_leads().await.unwrap().len(), 2);
    // Meta retries nothing, and a second delivery of the same batch stores nothing twice.
    let again = send(
        &state,
        meta_post(&["1001", "444444444444", "1002", "404404"]),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(store.scan_leads().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_expired_meta_token_quarantines_the_delivery_as_platform_auth_failed() {
    let store = fresh_store().await;
    let graph = StandIn::start(|_| StandInReply::Json(400, graph_expired_token())).await;
    let state = state(store.clone(), &[("GRAPH_API_URL", graph.base_url.clone())]);
    let a = send(&state, meta_post(&["2001", "2002"])).await;
    assert!((200..300).contains(&a.status), "{} {}", a.status, a.text);
    assert_eq!(a.json["status"], "quarantined", "{}", a.text);
    let held = store.list_quarantine(10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert!(
        held[0].reason.starts_with("platform_auth_failed"),
        "{}",
        held[0].reason
    );
    assert!(!held[0].reason.contains("test-page-access-token"));
    assert_eq!(store.scan_leads().await.unwrap().len(), 0);
    // HTTP 401 and 403 are authorization failures too.
    for status in [401, 403] {
        let graph = StandIn::start(move |_| {
            StandInReply::Json(status, r#"{"error":{"message":"no","code":10}}"#.into())
        })
        .await;
        let state = state_for(&store, &graph);
        let a = send(&state, meta_post(&["2003"])).await;
        assert_eq!(a.json["status"], "quarantined", "{status}: {}", a.text);
    }
}

fn state_for(store: &Store, graph: &StandIn) -> AppState {
    state(store.clone(), &[("GRAPH_API_URL", graph.base_url.clone())])
}

#[tokio::test]
async fn a_failing_lead_is_5xx_the_others_are_stored_and_only_it_is_fetched_again() {
    let store = fresh_store().await;
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let graph = StandIn::start(move |target| {
        let id = graph_id(target);
        if id == "500500" && !flag.load(Ordering::SeqCst) {
            StandInReply::Json(500, r#"{"error":{"message":"boom","code":2}}"#.into())
        } else {
            StandInReply::Json(200, graph_lead(&id))
        }
    })
    .await;
    let state = state_for(&store, &graph);
    let first = send(&state, meta_post(&["3001", "500500", "3002"])).await;
    assert!(first.status >= 500, "{} {}", first.status, first.text);
    assert!(first.headers.contains_key("retry-after"));
    assert_eq!(
        store.scan_leads().await.unwrap().len(),
        2,
        "the leads fetched are stored before the answer"
    );
    assert_eq!(graph.served(), 3);
    healthy.store(true, Ordering::SeqCst);
    let retry = send(&state, meta_post(&["3001", "500500", "3002"])).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(store.scan_leads().await.unwrap().len(), 3);
    assert_eq!(
        graph.served(),
        4,
        "the retry fetched only the lead not stored yet"
    );
}

#[tokio::test]
async fn a_hanging_graph_api_is_answered_before_the_lambda_deadline() {
    let store = fresh_store().await;
    let graph = StandIn::start(|target| {
        let id = graph_id(target);
        if id == "777777" {
            StandInReply::Hang
        } else {
            StandInReply::Json(200, graph_lead(&id))
        }
    })
    .await;
    // The per-request timeout alone would outlast the invocation.
    let state = state(
        store.clone(),
        &[
            ("GRAPH_API_URL", graph.base_url.clone()),
            ("PLATFORM_API_TIMEOUT_MS", "20000".to_string()),
        ],
    );
    let mut context = Context::default();
    let deadline_ms = (Utc::now().timestamp_millis() + 4_000) as u64;
    context.deadline = deadline_ms;
    let event = meta_post(&["4001", "777777"]).build();
    let a: Answer = handler(&state, LambdaEvent::new(event, context))
        .await
        .unwrap()
        .into();
    assert!(a.status >= 500, "{} {}", a.status, a.text);
    assert_eq!(store.scan_leads().await.unwrap().len(), 1);
}

// ---- 1 (LinkedIn) and 7: the same shape, deletions recorded ----------------------------------

fn linkedin_notification(id: &str, action: &str) -> Value {
    json!({"type": "LEAD_ACTION",
        "leadGenFormResponse": format!("urn:li:leadGenFormResponse:{id}"),
        "leadGenForm": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7234246,1)",
        "owner": {"sponsoredAccount": "urn:li:sponsoredAccount:1234567"},
        "associatedEntity": {"sponsoredCreative": "urn:li:sponsoredCreative:241257736"},
        "leadType": "SPONSORED", "leadAction": action, "occurredAt": 1_795_374_236_000u64})
}

fn linkedin_post(body: &Value) -> EventBuilder {
    let body = body.to_string();
    let sig = hex::encode(hmac_sha256(
        LINKEDIN_SECRET.as_bytes(),
        &[b"hmacsha256=", body.as_bytes()],
    ));
    EventBuilder::new("POST", "/webhooks/linkedin")
        .header("content-type", "application/json")
        .header("x-li-signature", &sig)
        .text_body(&body)
}

fn linkedin_lead(id: &str) -> String {
    json!({
        "id": id, "leadType": "SPONSORED", "submittedAt": 1_795_374_236_000u64, "testLead": false,
        "versionedLeadGenFormUrn": "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7234246,1)",
        "formResponse": {"answers": [
            {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": format!("li+{id}@example.com")}}},
            {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Ada"}}}
        ]},
        "form": {"content": {"questions": [
            {"questionId": 1, "name": "Email address", "predefinedField": "EMAIL"},
            {"questionId": 2, "name": "First name", "predefinedField": "FIRST_NAME"}
        ]}}
    })
    .to_string()
}

fn linkedin_id(target: &str) -> String {
    target
        .trim_start_matches("/leadFormResponses/")
        .split('?')
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_linkedin_batch_sorts_gone_leads_and_auth_failures_apart() {
    let store = fresh_store().await;
    let api = StandIn::start(|target| {
        let id = linkedin_id(target);
        match id.as_str() {
            "gone-1" => StandInReply::Json(
                404,
                r#"{"status":404,"serviceErrorCode":100,"message":"Not found"}"#.into(),
            ),
            _ => StandInReply::Json(200, linkedin_lead(&id)),
        }
    })
    .await;
    let st = state(store.clone(), &[("LINKEDIN_API_URL", api.base_url.clone())]);
    let body = json!([
        linkedin_notification("li-1", "CREATED"),
        linkedin_notification("gone-1", "CREATED")
    ]);
    let a = send(&st, linkedin_post(&body)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut got = statuses(&a);
    got.sort();
    assert_eq!(got, ["created", "lead_gone"], "{}", a.text);

    let expired = StandIn::start(|_| {
        StandInReply::Json(
            401,
            r#"{"status":401,"serviceErrorCode":65601,"code":"EXPIRED_ACCESS_TOKEN","message":"The token used in the request has expired"}"#.into(),
        )
    })
    .await;
    let st = state(
        store.clone(),
        &[("LINKEDIN_API_URL", expired.base_url.clone())],
    );
    let a = send(
        &st,
        linkedin_post(&linkedin_notification("li-2", "CREATED")),
    )
    .await;
    assert!((200..300).contains(&a.status), "{} {}", a.status, a.text);
    assert_eq!(a.json["status"], "quarantined", "{}", a.text);
    let held = store.list_quarantine(10).await.unwrap();
    assert!(held
        .iter()
        .any(|q| q.reason.starts_with("platform_auth_failed")));
}

#[tokio::test]
async fn a_linkedin_deletion_marks_the_touchpoint_withdrawn() {
    let store = fresh_store().await;
    let api =
        StandIn::start(|target| StandInReply::Json(200, linkedin_lead(&linkedin_id(target)))).await;
    let st = state(store.clone(), &[("LINKEDIN_API_URL", api.base_url.clone())]);
    let created = send(
        &st,
        linkedin_post(&linkedin_notification("del-1", "CREATED")),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let lead_id = created.json["results"][0]["lead_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = send(
        &st,
        linkedin_post(&linkedin_notification("del-1", "DELETED")),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(
        deleted.json["results"][0]["status"], "withdrawn",
        "{}",
        deleted.text
    );

    let api_state = lead_api::ApiState::from_lookup(store.clone(), |k| {
        (k == "LEAD_API_KEYS").then(|| "k".to_string())
    })
    .unwrap();
    let mut ev = EventBuilder::new("GET", &format!("/leads/{lead_id}"))
        .header("x-api-key", "k")
        .build();
    ev.path_parameters.clear();
    let lead: Answer = lead_api::handler(&api_state, lambda_event(ev))
        .await
        .unwrap()
        .into();
    assert_eq!(lead.status, 200, "{}", lead.text);
    let tp = &lead.json["touchpoints"][0];
    assert_eq!(tp["withdrawn"], true, "{}", lead.text);
    assert!(tp["withdrawn_at"].is_string());
    assert_eq!(
        tp["custom"],
        json!({}),
        "the withdrawn answers are not kept"
    );
}

// ---- 2. The LinkedIn validation GET is no signing oracle ---------------------------------------

#[tokio::test]
async fn the_linkedin_challenge_cannot_be_used_to_sign_a_post() {
    let st = state(fresh_store().await, &[]);
    // A short forged notification (the validation endpoint answered challenges up to 256 bytes).
    let forged = r#"{"type":"LEAD_ACTION","leadAction":"CREATED","leadGenFormResponse":"urn:li:leadGenFormResponse:forged-1"}"#.to_string();
    // The attack: ask the validation endpoint for HMAC("hmacsha256=" + body), then POST the body
    // with that answer as its signature.
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("challengeCode", &format!("hmacsha256={forged}"))
        .finish();
    let oracle = send(
        &st,
        EventBuilder::new("GET", "/webhooks/linkedin").query(&query),
    )
    .await;
    if let Some(stolen) = oracle.json["challengeResponse"].as_str() {
        let post = EventBuilder::new("POST", "/webhooks/linkedin")
            .header("content-type", "application/json")
            .header("x-li-signature", stolen)
            .text_body(&forged);
        let a = send(&st, post).await;
        assert_eq!(
            a.status, 401,
            "the forged POST passed: {} {}",
            a.status, a.text
        );
    }
    assert_eq!(oracle.status, 400, "{}", oracle.text);
    // Whatever an accepted challenge answers never signs a POST.
    for code in [
        "890e4f5a-4b2c-4a2e-9c3a-7e6f1c0d9b8a",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let ok = send(
            &st,
            EventBuilder::new("GET", "/webhooks/linkedin").query(&format!("challengeCode={code}")),
        )
        .await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        let answer = ok.json["challengeResponse"].as_str().unwrap().to_string();
        for header in [answer.clone(), format!("hmacsha256={answer}")] {
            let post = EventBuilder::new("POST", "/webhooks/linkedin")
                .header("content-type", "application/json")
                .header("x-li-signature", &header)
                .text_body(&forged);
            let a = send(&st, post).await;
            assert_eq!(a.status, 401, "{}", a.text);
        }
    }
}

// ---- 3. Idempotency-Key: scoped, fingerprinted ------------------------------------------------

fn form_post(form: &str, body: Value) -> EventBuilder {
    EventBuilder::new("POST", "/webhooks/form")
        .header("accept", "application/json")
        .query(&format!("form={form}"))
        .json(&body)
}

#[tokio::test]
async fn a_reused_idempotency_key_with_other_content_is_422() {
    let st = state(fresh_store().await, &[]);
    let first = send(
        &st,
        form_post("demo", json!({"email": "first@example.com"})).header("idempotency-key", "k-1"),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let other = send(
        &st,
        form_post("demo", json!({"email": "second@example.com"})).header("idempotency-key", "k-1"),
    )
    .await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(other.json["error"]["code"], "idempotency_key_reused");
    assert!(
        !other.text.contains(first.json["lead_id"].as_str().unwrap()),
        "another sender's lead id never leaks"
    );
    // The same key on another form is another submission.
    let elsewhere = send(
        &st,
        form_post("newsletter", json!({"email": "second@example.com"}))
            .header("idempotency-key", "k-1"),
    )
    .await;
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.text);
    // The same content again is a duplicate.
    let again = send(
        &st,
        form_post("demo", json!({"email": "first@example.com"})).header("idempotency-key", "k-1"),
    )
    .await;
    assert_eq!(
        (again.status, again.json["status"].as_str()),
        (200, Some("duplicate"))
    );
}

fn multipart(boundary: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

#[tokio::test]
async fn a_resent_multipart_form_with_a_new_boundary_is_a_duplicate() {
    let st = state(fresh_store().await, &[]);
    let fields = [("email", "multi@example.com"), ("message", "call me")];
    for key in [Some("mp-key-1"), None] {
        let mut statuses = Vec::new();
        for boundary in ["----WebKitFormBoundaryA1", "----WebKitFormBoundaryZ9"] {
            let mut ev = EventBuilder::new("POST", "/webhooks/form")
                .header("accept", "application/json")
                .header(
                    "content-type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .base64_body(&multipart(boundary, &fields));
            if let Some(k) = key {
                ev = ev.header("idempotency-key", k);
            }
            let a = send(&st, ev).await;
            statuses.push(a.json["status"].as_str().unwrap_or("").to_string());
        }
        assert_eq!(statuses[1], "duplicate", "key {key:?}: {statuses:?}");
    }
}

// ---- 4. Untrusted strings in keys ---------------------------------------------------------

#[tokio::test]
async fn a_form_with_2000_character_utms_is_stored_and_the_days_rollup_succeeds() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let long = |c: char| c.to_string().repeat(2_000);
    let a = send(
        &st,
        form_post(
            &"f".repeat(1_500),
            json!({"email": "utm@example.com", "utm_source": long('s'), "utm_medium": long('m'),
                   "utm_campaign": long('c'), "utm_term": long('t'), "utm_content": long('x')}),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let rollup_state = metrics_rollup::RollupState::from_lookup(store.clone(), |_| None).unwrap();
    let summary = metrics_rollup::handler(&rollup_state, json_event(json!({"mode": "today"})))
        .await
        .expect("the day's rollup succeeds");
    assert_eq!(summary["groups"], 1, "{summary}");
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let rows = store.rollups_between(&[today]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let (key, counts) = &rows[0];
    assert_eq!(counts.new_leads, 1);
    assert!(
        key.campaign.len() <= 100 && key.source.len() <= 100,
        "{key:?}"
    );
    assert!(key.campaign.starts_with("ccc"));
}

// ---- 6. A person never becomes unwritable ----------------------------------------------

#[tokio::test]
async fn six_80_kb_posts_for_one_person_are_all_2xx_and_the_person_takes_new_answers() {
    let store = fresh_store().await;
    let st = state(store.clone(), &[]);
    let mut lead_id = String::new();
    for post in 0..6 {
        let mut body = serde_json::Map::new();
        body.insert("email".into(), json!("heavy@example.com"));
        for i in 0..40 {
            let value: String = format!("{post}-{i}-").chars().cycle().take(2_000).collect();
            body.insert(format!("question_{post}_{i:02}"), json!(value));
        }
        let body = Value::Object(body);
        assert!(body.to_string().len() > 80_000);
        let a = send(&st, form_post("big", body)).await;
        assert!(
            (200..300).contains(&a.status),
            "post {post}: {} {}",
            a.status,
            a.text
        );
        lead_id = a.json["lead_id"].as_str().unwrap().to_string();
    }
    let a = send(
        &st,
        form_post(
            "big",
            json!({"email": "heavy@example.com", "final_answer": "yes"}),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(
        lead.custom.get("final_answer").map(String::as_str),
        Some("yes")
    );
    assert_eq!(lead.touch_count, 7);
}

// ---- 4 (metrics): no dimension value a request can choose ----------------------------------

#[tokio::test]
async fn a_post_to_a_random_provider_adds_no_metric_dimension() {
    let st = state(fresh_store().await, &[]);
    let mut seen = std::collections::BTreeSet::new();
    for name in [
        "x9f8e7d6",
        "typeform%00",
        "a".repeat(500).as_str(),
        "facebook",
    ] {
        let ev = EventBuilder::new("POST", &format!("/webhooks/{name}"))
            .header("content-type", "application/json")
            .text_body("{}")
            .build();
        let (resp, metrics) = form_webhook::respond(&st, lambda_event(ev)).await;
        let emf = metrics.to_json(0);
        let provider = emf["provider"].as_str().unwrap().to_string();
        if name != "facebook" {
            assert_eq!(resp.status_code, 404, "{name}");
            assert_eq!(provider, "(other)", "{name}");
        }
        seen.insert(provider);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["(other)", "facebook"],
        "only known providers are dimension values"
    );
}

// ---- 1 (records): lead_gone records are listable, without personal data -------------------

#[tokio::test]
async fn lead_gone_records_keep_ids_only_and_are_listed() {
    let store = fresh_store().await;
    let graph = StandIn::start(|target| {
        let id = graph_id(target);
        StandInReply::Json(400, graph_unknown_object(&id))
    })
    .await;
    let st = state_for(&store, &graph);
    for _ in 0..2 {
        let a = send(&st, meta_post(&["444444444444"])).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(statuses(&a), ["lead_gone"]);
    }
    let gone = store.list_lead_gone(10).await.unwrap();
    assert_eq!(
        gone.len(),
        1,
        "one record per lead, however often it is announced"
    );
    let g = &gone[0];
    assert_eq!(
        (g.provider.as_str(), g.platform_lead_id.as_str()),
        ("facebook", "444444444444")
    );
    assert_eq!(g.ids["form_id"], "444444444444");
    assert_eq!(g.deliveries, 2);
    assert!(g.reason.contains("error code 100"), "{}", g.reason);
    assert_eq!(store.scan_leads().await.unwrap().len(), 0);
}

// ---- Consent evidence ------------------------------------------------------------------------

async fn lead_json(store: &Store, lead_id: &str) -> Value {
    let api_state = lead_api::ApiState::from_lookup(store.clone(), |k| {
        (k == "LEAD_API_KEYS").then(|| "k".to_string())
    })
    .unwrap();
    let mut ev = EventBuilder::new("GET", &format!("/leads/{lead_id}"))
        .header("x-api-key", "k")
        .build();
    ev.path_parameters.clear();
    let a: Answer = lead_api::handler(&api_state, lambda_event(ev))
        .await
        .unwrap()
        .into();
    assert_eq!(a.status, 200, "{}", a.text);
    a.json
}

#[tokio::test]
async fn every_consent_answer_is_kept_and_shown_with_a_keyed_ip() {
    let store = fresh_store().await;
    let pepper = "a-random-consent-pepper-for-tests".to_string();
    let st = state(store.clone(), &[("CONSENT_IP_PEPPER", pepper)]);
    let opt_in = send(
        &st,
        form_post(
            "newsletter",
            json!({"email": "consent@example.com", "consent": "I agree to receive the newsletter"}),
        )
        .header("referer", "https://acme.example/newsletter?utm_source=x"),
    )
    .await;
    assert_eq!(opt_in.status, 201, "{}", opt_in.text);
    let lead_id = opt_in.json["lead_id"].as_str().unwrap().to_string();
    let opt_out = send(
        &st,
        form_post(
            "preferences",
            json!({"email": "consent@example.com", "newsletter": "no"}),
        ),
    )
    .await;
    assert_eq!(opt_out.status, 200, "{}", opt_out.text);
    let lead = lead_json(&store, &lead_id).await;
    let history = lead["consent_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{lead}");
    assert_eq!(history[0]["opt_in"], true);
    assert_eq!(history[0]["text"], "I agree to receive the newsletter");
    assert_eq!(history[0]["form_id"], "newsletter");
    assert_eq!(history[0]["source"], "form");
    assert_eq!(
        history[0]["page"],
        "https://acme.example/newsletter?utm_source=x"
    );
    assert_eq!(history[1]["opt_in"], false);
    assert_eq!(history[1]["form_id"], "preferences");
    for h in history {
        let ip = h["ip_hash"].as_str().unwrap();
        assert!(
            ip.starts_with("hmac-sha256:") && !ip.contains("203.0.113.7"),
            "{ip}"
        );
    }
    // The latest answer is the lead's current consent.
    assert_eq!(lead["consent"]["marketing_opt_in"], false);

    // Without a pepper no IP is kept at all.
    let st = state(store.clone(), &[]);
    let a = send(
        &st,
        form_post(
            "other",
            json!({"email": "nopepper@example.com", "consent": "yes"}),
        ),
    )
    .await;
    let lead = lead_json(&store, a.json["lead_id"].as_str().unwrap()).await;
    assert!(lead["consent_history"][0]["ip_hash"].is_null(), "{lead}");
}

#[tokio::test]
async fn a_batch_fetches_a_bounded_number_of_leads_at_once() {
    let store = fresh_store().await;
    // Each answer takes long enough (300 ms) for the first fetches to be still in flight when
    // the last of a full window starts, even on a loaded machine.
    let graph =
        StandIn::start(|target| StandInReply::Delayed(300, 200, graph_lead(&graph_id(target))))
            .await;
    let st = state_for(&store, &graph);
    let ids: Vec<String> = (0..24).map(|i| format!("{}", 5_000 + i)).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let a = send(&st, meta_post(&refs)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(store.scan_leads().await.unwrap().len(), 24);
    // The bound is reached (the fetches really run concurrently) and never passed.
    assert_eq!(
        graph.max_in_flight(),
        leadflow_providers::DEFAULT_API_CONCURRENCY
    );
}

/// DynamoDB round trips of a Meta delivery, as the handler's metrics record counts them: the
/// markers of the batch in one BatchGetItem, then one transaction per new lead; delivered
/// again, only the BatchGetItem (nothing is fetched or written).
#[tokio::test]
async fn round_trips_of_a_meta_batch_first_and_retried() {
    let store = fresh_store().await;
    let graph =
        StandIn::start(|target| StandInReply::Json(200, graph_lead(&graph_id(target)))).await;
    let st = state_for(&store, &graph);
    let trips =
        |m: &leadflow::telemetry::Metrics| m.to_json(0)["dynamodb_round_trips"].as_f64().unwrap();
    let (first, m1) = form_webhook::respond(
        &st,
        lambda_event(meta_post(&["6001", "6002", "6003"]).build()),
    )
    .await;
    assert_eq!(first.status_code, 200);
    assert_eq!(trips(&m1), 4.0, "1 BatchGetItem + 3 new leads");
    let (again, m2) = form_webhook::respond(
        &st,
        lambda_event(meta_post(&["6001", "6002", "6003"]).build()),
    )
    .await;
    assert_eq!(again.status_code, 200);
    assert_eq!(trips(&m2), 1.0, "the retry only reads the markers");
    assert_eq!(graph.served(), 3);
}
