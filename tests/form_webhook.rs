//! form-webhook end to end: the handler, called as Lambda calls it, against AWS's
//! DynamoDB Local (a real DynamoDB engine) with a fresh table per test.

use std::collections::HashMap;
use std::sync::Arc;

use form_webhook::{handler, AppState};
use integration_tests::{
    fresh_store, lambda_event, sample_event, unreachable_store, Answer, EventBuilder,
};
use leadflow::model::{Channel, IdentityKey};
use leadflow::store::Store;
use serde_json::json;

fn state_with(store: Store, vars: &[(&str, &str)]) -> AppState {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    AppState::from_lookup(store, |k| vars.get(k).cloned()).expect("valid configuration")
}

async fn state() -> AppState {
    state_with(fresh_store().await, &[("DEFAULT_COUNTRY", "US")])
}

async fn send(state: &AppState, event: EventBuilder) -> Answer {
    handler(state, lambda_event(event.build()))
        .await
        .expect("the handler always answers")
        .into()
}

fn post_json(body: serde_json::Value) -> EventBuilder {
    EventBuilder::new("POST", "/webhooks/form")
        .header("accept", "application/json")
        .json(&body)
}

async fn lead_count(store: &Store) -> usize {
    store.scan_leads().await.expect("scan").len()
}

#[tokio::test]
async fn new_lead_is_created_with_its_touchpoint() {
    let state = state().await;
    let a = send(
        &state,
        post_json(json!({
            "email": "Ada.Lovelace@Example.com",
            "phone": "+1 (415) 555-0132",
            "first_name": "Ada", "last_name": "Lovelace",
            "company": "Analytical Engines", "job_title": "CTO",
            "consent": "yes",
            "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring-launch",
            "gclid": "EAIaIQ", "lead_magnet": "ebook:pricing-guide", "budget": "50k"
        })),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["status"], "created");
    let lead_id = a.json["lead_id"].as_str().unwrap().to_string();

    let record = state.store.lead_record(&lead_id).await.unwrap().unwrap();
    let lead = record.lead;
    assert_eq!(
        lead.contact.email.as_deref(),
        Some("Ada.Lovelace@Example.com")
    );
    assert_eq!(
        lead.contact.email_key.as_deref(),
        Some("ada.lovelace@example.com")
    );
    assert_eq!(lead.contact.phone.as_deref(), Some("+14155550132"));
    assert_eq!(lead.contact.full_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(lead.channel, Channel::PaidSearch);
    assert_eq!(lead.source, "google");
    assert_eq!(lead.campaign, "spring-launch");
    assert_eq!(lead.custom.get("budget").map(String::as_str), Some("50k"));
    assert!(lead.consent.unwrap().marketing_opt_in);
    assert_eq!(lead.touch_count, 1);
    assert_eq!(
        lead.first_touch.lead_magnet.as_deref(),
        Some("ebook:pricing-guide")
    );
    assert_eq!(record.touchpoints.len(), 1);
    assert_eq!(
        record.touchpoints[0].attribution.gclid.as_deref(),
        Some("EAIaIQ")
    );

    // Both identities lead back to the person.
    let by_email = IdentityKey::Email("ada.lovelace@example.com".into());
    let by_phone = IdentityKey::Phone("+14155550132".into());
    assert_eq!(
        state.store.lead_id_for(&by_email).await.unwrap(),
        Some(lead_id.clone())
    );
    assert_eq!(
        state.store.lead_id_for(&by_phone).await.unwrap(),
        Some(lead_id)
    );
}

#[tokio::test]
async fn same_email_in_any_case_or_spacing_merges() {
    let state = state().await;
    let first = send(&state, post_json(json!({"email": "grace@example.org"}))).await;
    assert_eq!(first.status, 201);
    for (i, variant) in [
        "  Grace@Example.org",
        "GRACE@EXAMPLE.ORG ",
        "grace@example.ORG",
    ]
    .iter()
    .enumerate()
    {
        let a = send(&state, post_json(json!({"email": variant, "n": i}))).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json["status"], "merged");
        assert_eq!(a.json["lead_id"], first.json["lead_id"]);
    }
    assert_eq!(lead_count(&state.store).await, 1);
    let id = first.json["lead_id"].as_str().unwrap();
    let record = state.store.lead_record(id).await.unwrap().unwrap();
    assert_eq!(record.lead.touch_count, 4);
    assert_eq!(record.touchpoints.len(), 4);
}

#[tokio::test]
async fn same_phone_in_three_formats_merges() {
    let state = state().await;
    let mut ids = Vec::new();
    for phone in ["(415) 555-0199", "+1 415 555 0199", "415.555.0199"] {
        let a = send(&state, post_json(json!({"phone": phone, "fname": "Linus"}))).await;
        assert!(a.status == 201 || a.status == 200, "{}", a.text);
        ids.push(a.json["lead_id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(lead_count(&state.store).await, 1);
}

#[tokio::test]
async fn gmail_dots_and_tags_are_one_person() {
    let state = state().await;
    let a = send(
        &state,
        post_json(json!({"email": "ada.lovelace@gmail.com"})),
    )
    .await;
    let b = send(
        &state,
        post_json(json!({"email": "AdaLovelace+webinar@googlemail.com"})),
    )
    .await;
    assert_eq!(a.status, 201);
    assert_eq!(b.json["status"], "merged");
    assert_eq!(a.json["lead_id"], b.json["lead_id"]);
    // The stored address is the one first given, never rewritten to the key.
    let lead = state
        .store
        .get_lead(a.json["lead_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        lead.contact.email_key.as_deref(),
        Some("adalovelace@gmail.com")
    );
    assert!(lead.contact.email.unwrap().contains('@'));
}

#[tokio::test]
async fn a_retried_delivery_is_recognised_and_writes_nothing() {
    let state = state().await;
    let event = || {
        EventBuilder::new("POST", "/webhooks/form")
            .header("accept", "application/json")
            .form(&[("email", "dup@example.com"), ("message", "hello")])
    };
    let first = send(&state, event()).await;
    assert_eq!(first.status, 201);
    for _ in 0..3 {
        let again = send(&state, event()).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json["status"], "duplicate");
        assert_eq!(again.json["lead_id"], first.json["lead_id"]);
    }
    let record = state
        .store
        .lead_record(first.json["lead_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.touchpoints.len(), 1);
    assert_eq!(record.lead.touch_count, 1);

    // An Idempotency-Key header names a submission: sent again it is the same delivery; the
    // same key with other content is refused (tests/intake_hardening.rs has the details).
    let k1 = send(
        &state,
        post_json(json!({"email": "key@example.com", "t": 1})).header("idempotency-key", "abc-1"),
    )
    .await;
    let k2 = send(
        &state,
        post_json(json!({"email": "key@example.com", "t": 1})).header("idempotency-key", "abc-1"),
    )
    .await;
    let k3 = send(
        &state,
        post_json(json!({"email": "key@example.com", "t": 2})).header("idempotency-key", "abc-1"),
    )
    .await;
    assert_eq!(
        (k1.status, k2.json["status"].as_str(), k3.status),
        (201, Some("duplicate"), 422)
    );
}

#[tokio::test]
async fn twenty_concurrent_submissions_of_one_new_person_make_one_lead() {
    let state = Arc::new(state().await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            send(
                &state,
                post_json(
                    json!({"email": "race@example.com", "phone": "+1 415 555 0100", "attempt": i}),
                ),
            )
            .await
        }));
    }
    let mut statuses = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let a = t.await.unwrap();
        assert!(a.status == 200 || a.status == 201, "{}", a.text);
        *statuses
            .entry(a.json["status"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        ids.insert(a.json["lead_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(statuses.get("created"), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get("merged"), Some(&19), "{statuses:?}");
    assert_eq!(lead_count(&state.store).await, 1);
    let record = state
        .store
        .lead_record(ids.iter().next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.touchpoints.len(), 20);
    assert_eq!(record.lead.touch_count, 20);
}

#[tokio::test]
async fn merge_policy_fills_gaps_newest_wins_and_late_arrivals_only_fill() {
    let state = state().await;
    let t0 = chrono::Utc::now();
    let at = |mins: i64| (t0 + chrono::Duration::minutes(mins)).timestamp_millis();
    let with_time = |e: EventBuilder, ms: i64| {
        let mut ev = e.build();
        ev.request_context.time_epoch = ms;
        ev
    };
    let call = |ev| async { Answer::from(handler(&state, lambda_event(ev)).await.unwrap()) };

    let a = call(with_time(
        post_json(json!({"email": "m@example.com", "company": "Old Co", "consent": "yes"})),
        at(0),
    ))
    .await;
    assert_eq!(a.status, 201);
    // Newer: a conflicting field takes the new value, an empty one is filled, consent follows
    // the newest explicit answer.
    let b = call(with_time(
        post_json(json!({"email": "m@example.com", "company": "New Co", "job_title": "VP Sales", "consent": "no"})),
        at(10),
    ))
    .await;
    assert_eq!(b.json["status"], "merged");
    // Older (arrives late): fills only what is still empty, changes nothing else.
    let c = call(with_time(
        post_json(json!({"email": "m@example.com", "company": "Ancient Co", "country": "Germany", "consent": "yes"})),
        at(5),
    ))
    .await;
    assert_eq!(c.json["status"], "merged");

    let lead = state
        .store
        .get_lead(a.json["lead_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lead.contact.company.as_deref(), Some("New Co"));
    assert_eq!(lead.contact.job_title.as_deref(), Some("VP Sales"));
    assert_eq!(lead.contact.country.as_deref(), Some("DE"));
    assert!(!lead.consent.unwrap().marketing_opt_in);
    assert_eq!(lead.touch_count, 3);
    // First touch kept, last touch is the newest one.
    assert_eq!(lead.first_touch.at.timestamp_millis() / 1000, at(0) / 1000);
    assert_eq!(lead.last_touch.at.timestamp_millis() / 1000, at(10) / 1000);
}

#[tokio::test]
async fn email_decides_when_email_and_phone_name_different_people() {
    let state = state().await;
    let a = send(&state, post_json(json!({"email": "one@example.com"}))).await;
    let b = send(&state, post_json(json!({"phone": "+1 415 555 0177"}))).await;
    assert_ne!(a.json["lead_id"], b.json["lead_id"]);
    let c = send(
        &state,
        post_json(json!({"email": "one@example.com", "phone": "+1 415 555 0177"})),
    )
    .await;
    assert_eq!(c.json["lead_id"], a.json["lead_id"]);
    // The phone stays with the lead that had it first.
    let phone = IdentityKey::Phone("+14155550177".into());
    assert_eq!(
        state.store.lead_id_for(&phone).await.unwrap().as_deref(),
        b.json["lead_id"].as_str()
    );
}

#[tokio::test]
async fn plain_html_form_gets_a_redirect_and_fetch_gets_json() {
    let store = fresh_store().await;
    let state = state_with(
        store,
        &[("FORM_ALLOWED_ORIGINS", "https://www.example.com")],
    );
    let form = |accept: &str| {
        EventBuilder::new("POST", "/webhooks/form")
            .header("origin", "https://www.example.com")
            .header("accept", accept)
            .form(&[
                ("your-email", "grace@example.org"),
                ("tel", "020 7946 0018"),
                ("_redirect", "https://www.example.com/thanks"),
            ])
    };
    let html = send(&state, form("text/html,application/xhtml+xml")).await;
    assert_eq!(html.status, 303);
    assert_eq!(html.headers["location"], "https://www.example.com/thanks");
    assert_eq!(
        html.headers["access-control-allow-origin"],
        "https://www.example.com"
    );
    let json = send(&state, form("application/json")).await;
    assert_eq!(json.status, 200);
    assert_eq!(json.json["status"], "duplicate");

    // A redirect to a foreign site is not followed: the lead is still stored, JSON answers.
    let evil = send(
        &state,
        EventBuilder::new("POST", "/webhooks/form")
            .header("origin", "https://www.example.com")
            .form(&[
                ("email", "x@example.org"),
                ("_redirect", "https://evil.example.net/"),
            ]),
    )
    .await;
    assert_eq!(evil.status, 201);
    assert!(!evil.headers.contains_key("location"));

    // Another origin may not post at all.
    let other = send(
        &state,
        EventBuilder::new("POST", "/webhooks/form")
            .header("origin", "https://evil.example.net")
            .form(&[("email", "y@example.org")]),
    )
    .await;
    assert_eq!(other.status, 403);
    assert_eq!(other.json["error"]["code"], "origin_not_allowed");
}

#[tokio::test]
async fn cors_preflight() {
    let state = state_with(
        fresh_store().await,
        &[("FORM_ALLOWED_ORIGINS", "https://www.example.com")],
    );
    let ok = send(
        &state,
        EventBuilder::new("OPTIONS", "/webhooks/form")
            .header("origin", "https://www.example.com")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(ok.status, 204);
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "https://www.example.com"
    );
    assert!(ok.headers["access-control-allow-methods"].contains("POST"));
    let denied = send(
        &state,
        EventBuilder::new("OPTIONS", "/webhooks/form").header("origin", "https://evil.example.net"),
    )
    .await;
    assert_eq!(denied.status, 403);
}

#[tokio::test]
async fn honeypot_answers_like_success_and_stores_nothing() {
    let state = state().await;
    let a = send(
        &state,
        post_json(json!({"email": "bot@example.com", "_gotcha": "http://spam.example"})),
    )
    .await;
    assert_eq!(a.status, 201);
    assert_eq!(a.json["status"], "created");
    assert_eq!(lead_count(&state.store).await, 0);
}

#[tokio::test]
async fn multipart_form_is_read() {
    let state = state().await;
    let body = "--b0undary\r\nContent-Disposition: form-data; name=\"e-mail\"\r\n\r\nkatherine@example.com\r\n\
--b0undary\r\nContent-Disposition: form-data; name=\"fname\"\r\n\r\nKatherine\r\n\
--b0undary\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nCall me\r\n--b0undary--\r\n";
    let a = send(
        &state,
        EventBuilder::new("POST", "/webhooks/form")
            .header("content-type", "multipart/form-data; boundary=b0undary")
            .base64_body(body.as_bytes()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let lead = state
        .store
        .get_lead(a.json["lead_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lead.contact.first_name.as_deref(), Some("Katherine"));
    assert_eq!(
        lead.custom.get("message").map(String::as_str),
        Some("Call me")
    );
}

#[tokio::test]
async fn bad_input_gets_a_specific_error() {
    let state = state().await;
    let check = |a: &Answer, status: u16, code: &str, field: Option<&str>| {
        assert_eq!(a.status, status, "{}", a.text);
        assert_eq!(a.json["error"]["code"], code, "{}", a.text);
        assert!(a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        if let Some(f) = field {
            assert_eq!(a.json["error"]["field"], f, "{}", a.text);
        }
    };
    let bad_json = send(
        &state,
        EventBuilder::new("POST", "/webhooks/form")
            .header("content-type", "application/json")
            .text_body("{\"email\": "),
    )
    .await;
    check(&bad_json, 400, "invalid_json", Some("body"));

    let big = "x".repeat(300 * 1024);
    let too_big = send(
        &state,
        post_json(json!({"email": "a@example.com", "notes": big})),
    )
    .await;
    check(&too_big, 413, "payload_too_large", Some("body"));

    let text = send(
        &state,
        EventBuilder::new("POST", "/webhooks/form")
            .header("content-type", "text/plain")
            .text_body("email=a@example.com"),
    )
    .await;
    check(&text, 415, "unsupported_media_type", Some("content-type"));

    let missing = send(&state, post_json(json!({"name": "No Contact"}))).await;
    check(&missing, 422, "missing_contact", Some("email,phone"));

    let invalid = send(&state, post_json(json!({"email": "not-an-address"}))).await;
    check(&invalid, 422, "invalid_email", Some("email"));

    let bad_phone = send(&state, post_json(json!({"phone": "+1 999 555 0132"}))).await;
    check(&bad_phone, 422, "invalid_phone", Some("phone"));

    let get = send(&state, EventBuilder::new("GET", "/webhooks/form")).await;
    check(&get, 405, "method_not_allowed", None);

    let unknown = send(
        &state,
        post_json(json!({"email": "a@example.com"})).build_for("/webhooks/nope"),
    )
    .await;
    assert_eq!(unknown.status, 404);

    assert_eq!(
        lead_count(&state.store).await,
        0,
        "nothing stored from bad input"
    );
}

#[tokio::test]
async fn storage_unreachable_is_a_503_so_the_sender_retries() {
    let state = state_with(unreachable_store().await, &[]);
    let a = send(&state, post_json(json!({"email": "down@example.com"}))).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "storage_unavailable");
    assert!(a.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn every_form_sample_event_is_accepted_as_documented() {
    let state = state_with(
        fresh_store().await,
        &[("FORM_ALLOWED_ORIGINS", "https://www.example.com")],
    );
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if !name.starts_with("form-") || !name.ends_with(".json") {
            continue;
        }
        seen += 1;
        let a: Answer = handler(&state, lambda_event(sample_event(&name)))
            .await
            .unwrap()
            .into();
        let expected: &[u16] = match name.as_str() {
            "form-invalid.json" => &[422],
            "form-preflight.json" => &[204],
            n if n.contains("urlencoded") => &[303],
            _ => &[200, 201],
        };
        assert!(
            expected.contains(&a.status),
            "{name}: {} {}",
            a.status,
            a.text
        );
    }
    assert!(seen >= 4, "expected the form samples in events/");
}

trait BuildFor {
    fn build_for(self, path: &str) -> EventBuilder;
}

impl BuildFor for EventBuilder {
    /// The same request sent to another path.
    fn build_for(self, path: &str) -> EventBuilder {
        let mut ev = serde_json::to_value(self.build()).unwrap();
        ev["rawPath"] = path.into();
        ev["pathParameters"]["provider"] = path.rsplit('/').next().unwrap().into();
        EventBuilder::from_value(ev)
    }
}

/// `cargo lambda watch` stamps `requestContext.timeEpoch` in seconds (API Gateway: milliseconds).
/// A request stamped in seconds is dated when it was received, not in January 1970.
#[tokio::test]
async fn a_request_stamped_in_seconds_is_dated_today() {
    let state = state().await;
    let now = chrono::Utc::now();
    let mut ev = post_json(json!({"email": "seconds@example.com"})).build();
    ev.request_context.time_epoch = now.timestamp();
    let a: Answer = handler(&state, lambda_event(ev)).await.unwrap().into();
    assert_eq!(a.status, 201, "{}", a.text);
    let lead_id = a.json["lead_id"].as_str().unwrap();
    let record = state.store.lead_record(lead_id).await.unwrap().unwrap();
    let created = record.lead.created_at;
    assert!(
        (created - now).num_seconds().abs() <= 1,
        "created at {created}, received at {now}"
    );
    assert_eq!(
        record.touchpoints[0].received_at.date_naive(),
        now.date_naive()
    );
}

/// The bench's capacity meter against DynamoDB Local: it asks for and records the consumed
/// capacity of real requests, and the formula charges a new lead's transaction 2x per started
/// KB of each item it wrote, plus its index entries (the touchpoint in gsi2 only).
#[tokio::test]
async fn a_new_lead_is_metered_by_formula_and_by_the_server() {
    use leadflow::store::capacity::{formula, CapacityMeter};
    let table = fresh_store().await.table().to_string();
    let sdk = integration_tests::sdk_config(&integration_tests::endpoint()).await;
    let meter = CapacityMeter::default();
    let store = Store::metered(&sdk, &table, meter.clone());
    let state = state_with(store.clone(), &[("DEFAULT_COUNTRY", "US")]);
    let a = send(
        &state,
        EventBuilder::from_value(serde_json::to_value(sample_event("form-json.json")).unwrap()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(store.round_trips(), 1);
    let log = meter.take();
    assert_eq!(log.len(), 1, "one request: {log:?}");
    assert_eq!(log[0].operation, "TransactWriteItems");
    assert!(log[0].ok);
    assert_eq!(log[0].request["ReturnConsumedCapacity"], "INDEXES");
    let local = log[0].consumed();
    assert!(local.table.write > 0.0, "{local:?}");
    assert!(local.indexes.contains_key("gsi2"), "{local:?}");

    let after: formula::Snapshot = store
        .scan_table()
        .await
        .unwrap()
        .iter()
        .filter_map(|i| {
            let m = leadflow::store::item_to_stream_json(i).as_object()?.clone();
            Some((formula::key_of(&m)?, m))
        })
        .collect();
    // Delivery, 2 identity markers, lead, touchpoint, consent record.
    assert_eq!(after.len(), 6, "{:?}", after.keys());
    let kb = |m: &serde_json::Map<String, serde_json::Value>| {
        formula::item_size(m).div_ceil(1024).max(1) as f64
    };
    let units = formula::units_of(&log[0], &Default::default(), &after);
    assert_eq!(units.table.write, 2.0 * after.values().map(kb).sum::<f64>());
    let lead = after.values().find(|m| m["sk"]["S"] == "#LEAD").unwrap();
    let touch = after
        .values()
        .find(|m| m["sk"]["S"].as_str().unwrap().starts_with("TP#"))
        .unwrap();
    assert!(lead.contains_key("gsi1pk") && !touch.contains_key("gsi1pk"));
    assert_eq!(units.indexes["gsi1"].write, kb(lead));
    assert_eq!(units.indexes["gsi2"].write, 2.0);
}
