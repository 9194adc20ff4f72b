//! referral-review end to end: the handler, called as Lambda calls it, against AWS's
//! DynamoDB Local (a real DynamoDB engine) with a fresh table per test.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use integration_tests::{
    fresh_store, lambda_event, sample_event, unreachable_store, Answer, EventBuilder,
};
use leadflow::model::{Channel, ContactInput, DeliveryKey, ReviewPlatform, Submission, TouchKind};
use leadflow::store::Store;
use leadflow::telemetry::Metrics;
use referral_review::{handler, AppState};
use serde_json::{json, Value};

const KEY: &str = "rotated-new-key";

fn state_with(store: Store) -> AppState {
    let vars: HashMap<&str, &str> = [
        ("REFERRAL_API_KEYS", "old-key, rotated-new-key"),
        ("TRUSTPILOT_KEY", "tp-secret"),
        ("DEFAULT_COUNTRY", "US"),
    ]
    .into_iter()
    .collect();
    AppState::from_lookup(store, |k| vars.get(k).map(|v| v.to_string())).expect("valid config")
}

async fn state() -> AppState {
    state_with(fresh_store().await)
}

async fn send(state: &AppState, event: EventBuilder) -> Answer {
    handler(state, lambda_event(event.build()))
        .await
        .expect("the handler always answers")
        .into()
}

fn post(path: &str, body: Value) -> EventBuilder {
    EventBuilder::new("POST", path)
        .header("x-api-key", KEY)
        .json(&body)
}

fn get(path: &str, query: &str) -> EventBuilder {
    EventBuilder::new("GET", path)
        .header("x-api-key", KEY)
        .query(query)
}

/// A lead that came in through a web form.
async fn seed_lead(state: &AppState, email: &str, phone: Option<&str>) -> String {
    let mut sub = Submission::new(
        "form",
        DeliveryKey::Platform(leadflow::store::new_id()),
        TouchKind::FormSubmission,
        Utc::now(),
    );
    sub.contact = ContactInput {
        email: Some(email.to_string()),
        phone: phone.map(str::to_string),
        first_name: Some("Seed".into()),
        ..Default::default()
    };
    let mut m = Metrics::new("test");
    leadflow::ingest::ingest_one(&state.store, &state.normalize, sub, Utc::now(), &mut m)
        .await
        .expect("seed lead")
        .lead_id
}

/// Attributes of the lead item that `Lead` does not model.
async fn raw_lead(
    store: &Store,
    lead_id: &str,
) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    store
        .raw_lead_item(lead_id)
        .await
        .unwrap()
        .unwrap_or_default()
}

fn referral(referrer: Value, referee_email: &str) -> Value {
    json!({
        "referrer": referrer,
        "referee": {"email": referee_email, "name": "Grace Hopper", "company": "Navy",
                    "phone": "+1 415 555 0199"},
        "consent": true,
        "note": "met at the conference",
        "program": "spring-2026"
    })
}

// ---------------------------------------------------------------- auth and routing

#[tokio::test]
async fn first_party_routes_need_a_configured_key_and_accept_rotated_ones() {
    let state = state().await;
    let body = referral(json!({"email": "nobody@example.com"}), "x@example.com");
    let missing = send(&state, EventBuilder::new("POST", "/referrals").json(&body)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json["error"]["code"], "missing_api_key");
    let wrong = send(
        &state,
        EventBuilder::new("POST", "/reviews")
            .header("x-api-key", "rotated-new-ke")
            .json(&body),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json["error"]["code"], "invalid_api_key");
    for key in ["old-key", "rotated-new-key"] {
        let a = send(
            &state,
            EventBuilder::new("POST", "/referrals")
                .header("x-api-key", key)
                .json(&body),
        )
        .await;
        // Authenticated: the referrer is unknown, which is the next rule.
        assert_eq!(a.status, 422, "{}", a.text);
        assert_eq!(a.json["error"]["code"], "referrer_not_found");
        assert_eq!(a.json["error"]["field"], "referrer");
    }
    let code = send(
        &state,
        EventBuilder::new("GET", "/referrals/code").query("email=a@b.co"),
    )
    .await;
    assert_eq!(code.status, 401);
    let nowhere = send(&state, post("/elsewhere", json!({}))).await;
    assert_eq!(nowhere.status, 404);
    let method = send(&state, get("/reviews", "")).await;
    assert_eq!(method.status, 405);
}

#[tokio::test]
async fn no_configured_key_accepts_nothing() {
    let state = AppState::from_lookup(fresh_store().await, |_| None).unwrap();
    let a = send(&state, post("/reviews", json!({}))).await;
    assert_eq!(a.status, 401);
    let tp = send(
        &state,
        EventBuilder::new("POST", "/reviews/trustpilot")
            .query("key=")
            .json(&json!({"events": []})),
    )
    .await;
    assert_eq!(tp.status, 401);
}

// ---------------------------------------------------------------- referrals

#[tokio::test]
async fn a_new_referee_becomes_a_referral_lead_and_credits_the_referrer() {
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let a = send(
        &state,
        post(
            "/referrals",
            referral(json!({"email": "ADA@example.com"}), "grace@example.org"),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["status"], "recorded");
    assert_eq!(a.json["existing_lead"], false);
    assert_eq!(a.json["credited"], true);
    assert_eq!(a.json["referrer_lead_id"], referrer.as_str());
    let referee = a.json["lead_id"].as_str().unwrap().to_string();

    let record = state.store.lead_record(&referee).await.unwrap().unwrap();
    assert_eq!(record.lead.channel, Channel::Referral);
    assert_eq!(record.lead.source, "referral");
    assert_eq!(record.lead.campaign, "spring-2026");
    assert_eq!(
        record.lead.contact.full_name.as_deref(),
        Some("Grace Hopper")
    );
    assert!(record.lead.consent.as_ref().unwrap().marketing_opt_in);
    assert_eq!(record.touchpoints.len(), 1);
    let touch = &record.touchpoints[0];
    assert_eq!(touch.kind, TouchKind::ReferralReceived);
    assert_eq!(touch.custom["referrer_lead_id"], referrer);
    let raw = raw_lead(&state.store, &referee).await;
    assert_eq!(raw["referrer_lead_id"].as_s().unwrap(), &referrer);

    let credited = state.store.get_lead(&referrer).await.unwrap().unwrap();
    assert_eq!(credited.referral_count, 1);
    let raw = raw_lead(&state.store, &referrer).await;
    assert_eq!(
        raw["referee_lead_ids"].as_ss().unwrap(),
        &vec![referee.clone()]
    );
    let given = state.store.referrals_of(&referrer).await.unwrap();
    assert_eq!(given.len(), 1);
    assert_eq!(given[0].referee_lead_id, referee);
    assert!(!given[0].existing_lead);
}

#[tokio::test]
async fn a_referral_retried_five_times_credits_once() {
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let body = referral(json!({"lead_id": referrer}), "grace@example.org");
    let first = send(&state, post("/referrals", body.clone())).await;
    assert_eq!(first.status, 201, "{}", first.text);
    for _ in 0..5 {
        let again = send(&state, post("/referrals", body.clone())).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.json["status"], "duplicate");
        assert_eq!(again.json["lead_id"], first.json["lead_id"]);
        assert_eq!(again.json["existing_lead"], false);
    }
    let lead = state.store.get_lead(&referrer).await.unwrap().unwrap();
    assert_eq!(lead.referral_count, 1);
    let referee = first.json["lead_id"].as_str().unwrap();
    let record = state.store.lead_record(referee).await.unwrap().unwrap();
    assert_eq!(record.touchpoints.len(), 1, "a retry adds no touchpoint");
    assert_eq!(state.store.referrals_of(&referrer).await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_referral_credit_once() {
    let state = Arc::new(state().await);
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let body = referral(json!({"lead_id": referrer}), "grace@example.org");
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let state = state.clone();
            let body = body.clone();
            tokio::spawn(async move { send(&state, post("/referrals", body)).await })
        })
        .collect();
    let mut recorded = 0;
    for t in tasks {
        let a = t.await.unwrap();
        assert!(a.status == 200 || a.status == 201, "{}", a.text);
        assert_eq!(a.json["existing_lead"], false, "{}", a.text);
        recorded += usize::from(a.status == 201);
    }
    assert_eq!(recorded, 1);
    let lead = state.store.get_lead(&referrer).await.unwrap().unwrap();
    assert_eq!(lead.referral_count, 1);
}

#[tokio::test]
async fn an_explicit_referral_id_is_the_identity() {
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let mut body = referral(json!({"lead_id": referrer}), "grace@example.org");
    body["referral_id"] = json!("ref-001");
    let a = send(&state, post("/referrals", body.clone())).await;
    assert_eq!(a.status, 201, "{}", a.text);
    // The same id with edited details is the same referral.
    body["note"] = json!("edited");
    let b = send(&state, post("/referrals", body)).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json["status"], "duplicate");
    assert_eq!(
        state
            .store
            .get_lead(&referrer)
            .await
            .unwrap()
            .unwrap()
            .referral_count,
        1
    );
}

#[tokio::test]
async fn a_referee_who_was_already_a_lead_is_flagged_not_credited() {
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let existing = seed_lead(&state, "grace@example.org", None).await;
    let a = send(
        &state,
        post(
            "/referrals",
            referral(json!({"email": "ada@example.com"}), "Grace@Example.org"),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["lead_id"], existing.as_str());
    assert_eq!(a.json["existing_lead"], true);
    assert_eq!(a.json["credited"], false);
    // Recorded...
    let given = state.store.referrals_of(&referrer).await.unwrap();
    assert_eq!(given.len(), 1);
    assert!(given[0].existing_lead);
    let record = state.store.lead_record(&existing).await.unwrap().unwrap();
    assert_eq!(record.touchpoints.len(), 2);
    assert!(record
        .touchpoints
        .iter()
        .any(|t| t.kind == TouchKind::ReferralReceived));
    // ...not credited, and the lead keeps its own acquisition channel.
    assert_eq!(record.lead.channel, Channel::Direct);
    let lead = state.store.get_lead(&referrer).await.unwrap().unwrap();
    assert_eq!(lead.referral_count, 0);
    assert!(!raw_lead(&state.store, &existing)
        .await
        .contains_key("referrer_lead_id"));
    // A retry says the same.
    let again = send(
        &state,
        post(
            "/referrals",
            referral(json!({"email": "ada@example.com"}), "grace@example.org"),
        ),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["existing_lead"], true);
}

#[tokio::test]
async fn unknown_referrers_are_422() {
    let state = state().await;
    for referrer in [
        json!({"email": "nobody@example.com"}),
        json!({"lead_id": "0190f000-0000-7000-8000-000000000000"}),
        json!({"referral_code": "AAAAAAAAAAAAAAAAAAAAAA"}),
    ] {
        let a = send(
            &state,
            post("/referrals", referral(referrer, "g@example.org")),
        )
        .await;
        assert_eq!(a.status, 422, "{}", a.text);
        assert_eq!(a.json["error"]["code"], "referrer_not_found");
    }
    assert!(
        state.store.scan_leads().await.unwrap().is_empty(),
        "nothing stored"
    );
    let none = send(
        &state,
        post(
            "/referrals",
            json!({"referrer": {}, "referee": {"email": "g@example.org"}}),
        ),
    )
    .await;
    assert_eq!(none.status, 422);
    assert_eq!(none.json["error"]["code"], "missing_referrer");
}

#[tokio::test]
async fn self_referral_is_422_by_email_or_phone() {
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", Some("+1 415 555 0132")).await;
    let by_email = send(
        &state,
        post(
            "/referrals",
            json!({"referrer": {"lead_id": referrer}, "referee": {"email": " ADA@example.com "}}),
        ),
    )
    .await;
    assert_eq!(by_email.status, 422, "{}", by_email.text);
    assert_eq!(by_email.json["error"]["code"], "self_referral");
    let by_phone = send(
        &state,
        post(
            "/referrals",
            json!({"referrer": {"email": "ada@example.com"},
                   "referee": {"email": "other@example.com", "phone": "(415) 555-0132"}}),
        ),
    )
    .await;
    assert_eq!(by_phone.status, 422, "{}", by_phone.text);
    assert_eq!(by_phone.json["error"]["code"], "self_referral");
    assert_eq!(state.store.scan_leads().await.unwrap().len(), 1);
}

#[tokio::test]
async fn referral_validation_names_the_field() {
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let cases = [
        (
            json!({"referrer": {"lead_id": referrer}}),
            "missing_referee",
            "referee",
        ),
        (
            json!({"referrer": {"lead_id": referrer}, "referee": {"name": "No Contact"}}),
            "missing_contact",
            "referee.email,referee.phone",
        ),
        (
            json!({"referrer": {"lead_id": referrer}, "referee": {"email": "not-an-email"}}),
            "invalid_email",
            "referee.email",
        ),
        (
            json!({"referrer": {"lead_id": referrer}, "referee": {"email": "g@example.org"}, "consent": "maybe"}),
            "invalid_field",
            "consent",
        ),
        (
            json!({"referrer": {"email": "bad@"}, "referee": {"email": "g@example.org"}}),
            "invalid_email",
            "referrer.email",
        ),
    ];
    for (body, code, field) in cases {
        let a = send(&state, post("/referrals", body)).await;
        assert_eq!(a.status, 422, "{}", a.text);
        assert_eq!(a.json["error"]["code"], code, "{}", a.text);
        assert_eq!(a.json["error"]["field"], field, "{}", a.text);
    }
    let bad_json = send(
        &state,
        EventBuilder::new("POST", "/referrals")
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .text_body("{not json"),
    )
    .await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.json["error"]["field"], "body");
}

#[tokio::test]
async fn referral_codes_are_stable_unguessable_and_resolve_to_the_lead() {
    let state = Arc::new(state().await);
    let lead = seed_lead(&state, "ada@example.com", None).await;
    // Concurrent first requests agree on one code.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move {
                send(&state, get("/referrals/code", "email=Ada%40Example.com")).await
            })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json["lead_id"], lead.as_str());
        codes.push(a.json["code"].as_str().unwrap().to_string());
    }
    codes.dedup();
    assert_eq!(codes.len(), 1, "{codes:?}");
    let code = &codes[0];
    assert_eq!(code.len(), 22);
    assert!(code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    let by_id = send(&state, get("/referrals/code", &format!("lead_id={lead}"))).await;
    assert_eq!(by_id.json["code"], code.as_str());
    assert_eq!(
        state.store.lead_id_for_referral_code(code).await.unwrap(),
        Some(lead.clone())
    );
    let another = seed_lead(&state, "grace@example.org", None).await;
    let other = send(
        &state,
        get("/referrals/code", &format!("lead_id={another}")),
    )
    .await;
    assert_ne!(other.json["code"], code.as_str());

    // The code names the referrer of a referral.
    let a = send(
        &state,
        post(
            "/referrals",
            referral(json!({"referral_code": code}), "linus@example.net"),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["referrer_lead_id"], lead.as_str());

    let unknown = send(&state, get("/referrals/code", "email=nobody%40example.com")).await;
    assert_eq!(unknown.status, 404);
    let missing = send(&state, get("/referrals/code", "")).await;
    assert_eq!(missing.status, 400);
}

#[tokio::test]
async fn a_converted_referee_is_credited_to_its_referrer_once() {
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let a = send(
        &state,
        post(
            "/referrals",
            referral(json!({"lead_id": referrer}), "grace@example.org"),
        ),
    )
    .await;
    let referee = a.json["lead_id"].as_str().unwrap().to_string();
    assert!(state
        .store
        .credit_referral_conversion(&referee, Utc::now())
        .await
        .unwrap());
    assert!(!state
        .store
        .credit_referral_conversion(&referee, Utc::now())
        .await
        .unwrap());
    let raw = raw_lead(&state.store, &referrer).await;
    assert_eq!(raw["converted_referral_count"].as_n().unwrap(), "1");
    // A lead nobody referred has nothing to credit.
    assert!(!state
        .store
        .credit_referral_conversion(&referrer, Utc::now())
        .await
        .unwrap());
}

// ---------------------------------------------------------------- reviews

fn review(external_id: &str, rating: u8) -> Value {
    json!({
        "platform": "google", "external_id": external_id, "rating": rating,
        "title": "Solid", "text": "Helped us a lot", "name": "Ada L.",
        "published_at": "2026-05-01T10:00:00Z"
    })
}

#[tokio::test]
async fn ten_concurrent_deliveries_of_one_review_count_once() {
    let state = Arc::new(state().await);
    let lead = seed_lead(&state, "ada@example.com", None).await;
    let mut body = review("g-1", 5);
    body["email"] = json!("ada@example.com");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let state = state.clone();
            let body = body.clone();
            tokio::spawn(async move { send(&state, post("/reviews", body)).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let a = t.await.unwrap();
        assert!(a.status == 200 || a.status == 201, "{}", a.text);
        assert_eq!(a.json["lead_id"], lead.as_str(), "{}", a.text);
        created += usize::from(a.json["status"] == "created");
    }
    assert_eq!(created, 1);
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(agg.count, 1);
    assert_eq!(agg.rating_sum, 5);
    assert_eq!(agg.distribution, [0, 0, 0, 0, 1]);
    let record = state.store.lead_record(&lead).await.unwrap().unwrap();
    let reviews: Vec<_> = record
        .touchpoints
        .iter()
        .filter(|t| t.kind == TouchKind::Review)
        .collect();
    assert_eq!(reviews.len(), 1, "one touchpoint per review");
    assert_eq!(reviews[0].custom["rating"], "5");
    assert_eq!(reviews[0].custom["platform"], "google");
}

#[tokio::test]
async fn create_update_delete_keep_the_aggregate_exact() {
    let state = state().await;
    let other = send(&state, post("/reviews", review("g-other", 3))).await;
    assert_eq!(other.status, 201, "{}", other.text);

    let created = send(&state, post("/reviews", review("g-1", 4))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["needs_follow_up"], false);
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(
        (agg.count, agg.rating_sum, agg.distribution),
        (2, 7, [0, 0, 1, 1, 0])
    );

    // 4 -> 2 stars replaces the rating, and flags the review.
    let updated = send(&state, post("/reviews", review("g-1", 2))).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["status"], "updated");
    assert_eq!(updated.json["needs_follow_up"], true);
    let again = send(&state, post("/reviews", review("g-1", 2))).await;
    assert_eq!(again.json["status"], "duplicate");
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(
        (agg.count, agg.rating_sum, agg.distribution),
        (2, 5, [0, 1, 1, 0, 0])
    );
    assert_eq!(agg.average(), Some(2.5));
    let follow_up = state.store.reviews_for_follow_up().await.unwrap();
    assert_eq!(follow_up.len(), 1);
    assert_eq!(follow_up[0].external_id, "g-1");

    // Deleted: removed from the aggregate, and a retried or late creation does not return it.
    let delete = json!({"platform": "google", "external_id": "g-1", "deleted": true});
    let deleted = send(&state, post("/reviews", delete.clone())).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json["status"], "deleted");
    let deleted_again = send(&state, post("/reviews", delete)).await;
    assert_eq!(deleted_again.json["status"], "duplicate");
    let late = send(&state, post("/reviews", review("g-1", 4))).await;
    assert_eq!(late.json["status"], "ignored");
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(
        (agg.count, agg.rating_sum, agg.distribution),
        (1, 3, [0, 0, 1, 0, 0])
    );
    assert!(state
        .store
        .reviews_for_follow_up()
        .await
        .unwrap()
        .is_empty());
    // Other platforms are separate.
    let trustpilot = state
        .store
        .review_aggregate(ReviewPlatform::Trustpilot)
        .await
        .unwrap();
    assert_eq!(trustpilot.count, 0);
}

#[tokio::test]
async fn concurrent_updates_and_deletes_keep_the_aggregate_exact() {
    let state = Arc::new(state().await);
    let created = send(&state, post("/reviews", review("g-1", 4))).await;
    assert_eq!(created.status, 201);
    // Ten racing changes of one review, each delivered twice: whatever order wins, the
    // aggregate must equal the stored review's rating.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move {
                send(
                    &state,
                    post("/reviews", review("g-1", (i % 10 / 2) as u8 + 1)),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let stored = state
        .store
        .get_review(ReviewPlatform::Google, "g-1")
        .await
        .unwrap()
        .unwrap();
    let rating = u64::from(stored.review.unwrap().rating);
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(agg.count, 1);
    assert_eq!(agg.rating_sum, rating);
    assert_eq!(agg.distribution.iter().sum::<u64>(), 1);
    assert_eq!(agg.distribution[rating as usize - 1], 1);
}

#[tokio::test]
async fn reviewers_are_linked_created_or_left_unlinked() {
    let state = state().await;
    let known = seed_lead(&state, "ada@example.com", None).await;
    let mut by_email = review("g-1", 5);
    by_email["email"] = json!("Ada@Example.com");
    let a = send(&state, post("/reviews", by_email)).await;
    assert_eq!(a.json["lead_id"], known.as_str(), "{}", a.text);
    assert_eq!(a.json["lead_status"], "merged");
    let lead = state.store.get_lead(&known).await.unwrap().unwrap();
    assert_eq!(
        lead.contact.full_name.as_deref(),
        Some("Seed"),
        "a review name does not overwrite"
    );

    // Unknown, with an email and consent: a new lead from the review channel.
    let mut with_consent = review("g-2", 4);
    with_consent["email"] = json!("new@example.net");
    with_consent["consent"] = json!(true);
    let b = send(&state, post("/reviews", with_consent)).await;
    assert_eq!(b.status, 201, "{}", b.text);
    assert_eq!(b.json["lead_status"], "created");
    let new_lead = state
        .store
        .get_lead(b.json["lead_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new_lead.channel, Channel::Review);
    assert_eq!(new_lead.source, "google");
    assert_eq!(new_lead.contact.full_name.as_deref(), Some("Ada L."));

    // Unknown without consent, or anonymous: stored unlinked, still counted.
    let mut no_consent = review("g-3", 3);
    no_consent["email"] = json!("someone@example.net");
    let c = send(&state, post("/reviews", no_consent)).await;
    assert_eq!(c.status, 201, "{}", c.text);
    assert_eq!(c.json["linked"], false);
    assert_eq!(c.json["lead_id"], Value::Null);
    let d = send(&state, post("/reviews", review("g-4", 1))).await;
    assert_eq!(d.json["linked"], false);
    assert_eq!(d.json["needs_follow_up"], true);
    assert_eq!(state.store.scan_leads().await.unwrap().len(), 2);
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!((agg.count, agg.rating_sum), (4, 13));

    // By reference id (the lead id in the review invitation).
    let mut by_ref = review("g-5", 5);
    by_ref["reference_id"] = json!(known);
    let e = send(&state, post("/reviews", by_ref)).await;
    assert_eq!(e.json["lead_id"], known.as_str(), "{}", e.text);
    let record = state.store.lead_record(&known).await.unwrap().unwrap();
    assert_eq!(
        record
            .touchpoints
            .iter()
            .filter(|t| t.kind == TouchKind::Review)
            .count(),
        2
    );
}

#[tokio::test]
async fn review_validation_names_the_field() {
    let state = state().await;
    let cases = [
        (
            json!({"platform": "myspace", "external_id": "1", "rating": 5}),
            "invalid_platform",
            "platform",
        ),
        (
            json!({"platform": "google", "rating": 5}),
            "missing_field",
            "external_id",
        ),
        (
            json!({"platform": "google", "external_id": "1", "rating": 6}),
            "invalid_rating",
            "rating",
        ),
        (
            json!({"platform": "google", "external_id": "1", "rating": 4.5}),
            "invalid_rating",
            "rating",
        ),
        (
            json!({"platform": "google", "external_id": "1"}),
            "missing_field",
            "rating",
        ),
        (
            json!({"platform": "google", "external_id": "1", "rating": 3, "published_at": "yesterday"}),
            "invalid_timestamp",
            "published_at",
        ),
        (
            json!({"platform": "google", "external_id": "1", "rating": 3, "email": "nope"}),
            "invalid_email",
            "email",
        ),
    ];
    for (body, code, field) in cases {
        let a = send(&state, post("/reviews", body)).await;
        assert_eq!(a.status, 422, "{}", a.text);
        assert_eq!(a.json["error"]["code"], code, "{}", a.text);
        assert_eq!(a.json["error"]["field"], field, "{}", a.text);
    }
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(agg.count, 0);
}

// ---------------------------------------------------------------- Trustpilot

fn trustpilot_event(name: &str, id: &str, stars: u8, reference: Option<&str>) -> Value {
    json!({
        "eventName": name, "version": "1",
        "eventData": {
            "id": id, "language": "en", "title": "Great", "text": "Great service",
            "referenceId": reference, "stars": stars, "createdAt": "2026-05-02T08:30:00Z",
            "isVerified": true, "link": "https://www.trustpilot.com/reviews/x",
            "consumer": {"id": "c1", "name": "Grace H."}, "tags": []
        }
    })
}

fn trustpilot(events: Vec<Value>) -> EventBuilder {
    EventBuilder::new("POST", "/reviews/trustpilot")
        .query("key=tp-secret")
        .json(&json!({ "events": events }))
}

#[tokio::test]
async fn trustpilot_authenticates_with_the_key_or_basic_auth() {
    let state = state().await;
    let body = json!({"events": [trustpilot_event("service-review-created", "tp-1", 5, None)]});
    let none = send(
        &state,
        EventBuilder::new("POST", "/reviews/trustpilot").json(&body),
    )
    .await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json["error"]["code"], "missing_credentials");
    let wrong = send(
        &state,
        EventBuilder::new("POST", "/reviews/trustpilot")
            .query("key=tp-secreT")
            .json(&body),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json["error"]["code"], "invalid_credentials");
    // The API key of first-party routes is not the Trustpilot secret.
    let api_key = send(
        &state,
        EventBuilder::new("POST", "/reviews/trustpilot")
            .header("x-api-key", KEY)
            .json(&body),
    )
    .await;
    assert_eq!(api_key.status, 401);
    let basic = base64::engine::general_purpose::STANDARD.encode("trustpilot:tp-secret");
    let ok = send(
        &state,
        EventBuilder::new("POST", "/reviews/trustpilot")
            .header("authorization", &format!("Basic {basic}"))
            .json(&body),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["results"][0]["status"], "created");
}

#[tokio::test]
async fn trustpilot_events_create_update_delete_exactly() {
    let state = state().await;
    let lead = seed_lead(&state, "grace@example.org", None).await;
    let created = trustpilot_event("service-review-created", "tp-1", 4, Some(&lead));
    let a = send(&state, trustpilot(vec![created.clone(), created.clone()])).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["results"][0]["status"], "created");
    assert_eq!(a.json["results"][0]["lead_id"], lead.as_str());
    assert_eq!(a.json["results"][1]["status"], "duplicate");

    let updated = trustpilot_event("service-review-updated", "tp-1", 2, Some(&lead));
    let b = send(&state, trustpilot(vec![updated])).await;
    assert_eq!(b.json["results"][0]["status"], "updated", "{}", b.text);
    assert_eq!(b.json["results"][0]["needs_follow_up"], true);
    // A retried creation after the update does not bring 4 stars back.
    let c = send(&state, trustpilot(vec![created])).await;
    assert_eq!(c.json["results"][0]["status"], "duplicate");
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Trustpilot)
        .await
        .unwrap();
    assert_eq!(
        (agg.count, agg.rating_sum, agg.distribution),
        (1, 2, [0, 1, 0, 0, 0])
    );

    let deleted = json!({"eventName": "service-review-deleted", "eventData": {"id": "tp-1"}});
    let unknown = json!({"eventName": "service-review-reply-created", "eventData": {"id": "x"}});
    let invalid = trustpilot_event("service-review-created", "tp-2", 9, None);
    let d = send(&state, trustpilot(vec![deleted, unknown, invalid])).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.json["results"][0]["status"], "deleted");
    assert_eq!(d.json["results"][1]["status"], "ignored");
    assert_eq!(d.json["results"][2]["status"], "rejected");
    assert_eq!(d.json["results"][2]["error"]["field"], "eventData.stars");
    let agg = state
        .store
        .review_aggregate(ReviewPlatform::Trustpilot)
        .await
        .unwrap();
    assert_eq!(
        (agg.count, agg.rating_sum, agg.distribution),
        (0, 0, [0; 5])
    );

    // The linked lead got one review touchpoint.
    let record = state.store.lead_record(&lead).await.unwrap().unwrap();
    assert_eq!(
        record
            .touchpoints
            .iter()
            .filter(|t| t.kind == TouchKind::Review)
            .count(),
        1
    );
    let bad = send(
        &state,
        EventBuilder::new("POST", "/reviews/trustpilot")
            .query("key=tp-secret")
            .json(&json!({"nope": 1})),
    )
    .await;
    assert_eq!(bad.status, 400);
}

// ---------------------------------------------------------------- storage and samples

#[tokio::test]
async fn storage_down_is_503_never_2xx() {
    let state = state_with(unreachable_store().await);
    for event in [
        post(
            "/referrals",
            referral(json!({"email": "ada@example.com"}), "g@example.org"),
        ),
        post("/reviews", review("g-1", 5)),
        get("/referrals/code", "email=ada%40example.com"),
        trustpilot(vec![trustpilot_event(
            "service-review-created",
            "tp-1",
            5,
            None,
        )]),
    ] {
        let a = send(&state, event).await;
        assert_eq!(a.status, 503, "{}", a.text);
        assert_eq!(a.json["error"]["code"], "storage_unavailable");
        assert_eq!(a.headers.get("retry-after").map(String::as_str), Some("30"));
    }
}

#[tokio::test]
async fn every_sample_event_is_answered_as_documented() {
    // The keys scripts/run-local configures.
    let vars: HashMap<&str, &str> = [
        ("REFERRAL_API_KEYS", "local-dev-key"),
        ("TRUSTPILOT_KEY", "local-trustpilot-key"),
    ]
    .into_iter()
    .collect();
    let state =
        AppState::from_lookup(fresh_store().await, |k| vars.get(k).map(|v| v.to_string())).unwrap();
    // The referral sample names this referrer (the form samples create it in run-local).
    seed_lead(&state, "ada.lovelace@example.com", None).await;
    for (name, status) in [
        ("referral-post.json", 201),
        ("referral-code.json", 200),
        ("review-post.json", 201),
        ("review-trustpilot.json", 200),
    ] {
        let event = sample_event(name);
        let a: Answer = handler(&state, lambda_event(event)).await.unwrap().into();
        assert_eq!(a.status, status, "{name}: {}", a.text);
    }
}

#[tokio::test]
async fn a_retry_after_a_failed_credit_finishes_it_with_the_right_flag() {
    // The first attempt stored the referee (ingest) and failed before the credit transaction.
    let state = state().await;
    let referrer = seed_lead(&state, "ada@example.com", None).await;
    let email_key = leadflow::model::IdentityKey::Email("grace@example.org".into());
    let key = leadflow::store::referral_key(&state.pepper, None, Some("spring-2026"), &[email_key]);
    let mut sub = Submission::new(
        "referral",
        leadflow::store::referral_delivery(&referrer, &key),
        TouchKind::ReferralReceived,
        Utc::now(),
    );
    sub.contact.email = Some("grace@example.org".into());
    let mut m = Metrics::new("test");
    let stored =
        leadflow::ingest::ingest_one(&state.store, &state.normalize, sub, Utc::now(), &mut m)
            .await
            .unwrap();
    assert_eq!(stored.status, leadflow::model::IngestStatus::Created);

    let a = send(
        &state,
        post(
            "/referrals",
            referral(json!({"lead_id": referrer}), "grace@example.org"),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["lead_id"], stored.lead_id.as_str());
    assert_eq!(
        a.json["existing_lead"], false,
        "the referee was new when first stored"
    );
    assert_eq!(
        state
            .store
            .get_lead(&referrer)
            .await
            .unwrap()
            .unwrap()
            .referral_count,
        1
    );
}

mod faults {
    use super::*;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};

    #[tokio::test]
    async fn a_review_that_keeps_conflicting_is_a_503_after_retries() {
        let get = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let conflict = mock!(Client::transact_write_items).then_error(|| {
            let reason = |code: &str| CancellationReason::builder().code(code).build();
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .message("conflict")
                    .set_cancellation_reasons(Some(vec![
                        reason("None"),
                        reason("TransactionConflict"),
                    ]))
                    .build(),
            )
        });
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .http_client(create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&get)
                    .with_rule(&conflict),
            )
            .build();
        let state = state_with(Store::from_client(Client::from_conf(conf), "mocked"));
        let a = send(&state, post("/reviews", review("g-1", 5))).await;
        assert_eq!(a.status, 503, "{}", a.text);
        assert_eq!(a.json["error"]["code"], "storage_unavailable");
        assert!(
            conflict.num_calls() > 1,
            "retried: {}",
            conflict.num_calls()
        );
    }
}
