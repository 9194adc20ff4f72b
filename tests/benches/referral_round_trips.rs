//! DynamoDB round trips per referral-review operation, counted by the store's SDK interceptor
//! against a real DynamoDB engine (AWS's DynamoDB Local on loopback), through the Lambda
//! handler exactly as deployed. Run: `bench/referral-round-trips.sh`.

use chrono::Utc;
use integration_tests::{fresh_store, lambda_event, Answer, EventBuilder};
use leadflow::model::{ContactInput, DeliveryKey, Submission, TouchKind};
use leadflow::store::new_id;
use leadflow::telemetry::Metrics;
use referral_review::{handler, AppState};
use serde_json::{json, Value};

const N: usize = 20;

struct Row {
    name: &'static str,
    status: u16,
    trips: Vec<u64>,
}

impl Row {
    fn new(name: &'static str, status: u16) -> Row {
        Row {
            name,
            status,
            trips: Vec::new(),
        }
    }
}

async fn measure(state: &AppState, row: &mut Row, event: EventBuilder) -> Answer {
    let before = state.store.round_trips();
    let a: Answer = handler(state, lambda_event(event.build()))
        .await
        .expect("answer")
        .into();
    row.trips.push(state.store.round_trips() - before);
    assert_eq!(a.status, row.status, "{}: {}", row.name, a.text);
    a
}

fn post(path: &str, body: Value) -> EventBuilder {
    EventBuilder::new("POST", path)
        .header("x-api-key", "bench")
        .json(&body)
}

async fn seed(state: &AppState, email: &str) -> String {
    let mut sub = Submission::new(
        "form",
        DeliveryKey::Platform(new_id()),
        TouchKind::FormSubmission,
        Utc::now(),
    );
    sub.contact = ContactInput {
        email: Some(email.to_string()),
        ..Default::default()
    };
    leadflow::ingest::ingest_one(
        &state.store,
        &state.normalize,
        sub,
        Utc::now(),
        &mut Metrics::new("bench"),
    )
    .await
    .expect("seed")
    .lead_id
}

fn review(id: &str, rating: u8, email: Option<&str>) -> Value {
    json!({"platform": "google", "external_id": id, "rating": rating, "title": "t",
           "email": email, "published_at": "2026-05-01T10:00:00Z"})
}

#[tokio::main]
async fn main() {
    let store = fresh_store().await;
    let state = AppState::from_lookup(store, |k| match k {
        "REFERRAL_API_KEYS" => Some("bench".into()),
        "TRUSTPILOT_KEY" => Some("tp".into()),
        _ => None,
    })
    .expect("config");

    let mut rows = vec![
        Row::new("referral: new referee, referrer by lead_id", 201),
        Row::new("referral: new referee, referrer by email", 201),
        Row::new("referral: referee already a lead", 201),
        Row::new("referral: retried delivery", 200),
        Row::new("referral code: first request", 200),
        Row::new("referral code: existing", 200),
        Row::new("review: new, unlinked", 201),
        Row::new("review: new, linked by email", 201),
        Row::new("review: new, new lead (email + consent)", 201),
        Row::new("review: retried delivery", 200),
        Row::new("review: rating changed", 200),
        Row::new("review: deleted", 200),
        Row::new("trustpilot: created, linked by referenceId", 200),
    ];
    for i in 0..N {
        let referrer_email = format!("referrer{i}@example.com");
        let referrer = seed(&state, &referrer_email).await;
        let body = json!({"referrer": {"lead_id": referrer},
                          "referee": {"email": format!("new{i}@example.org")}, "program": "p"});
        measure(&state, &mut rows[0], post("/referrals", body.clone())).await;
        let by_email = json!({"referrer": {"email": referrer_email},
                              "referee": {"email": format!("other{i}@example.org")}});
        measure(&state, &mut rows[1], post("/referrals", by_email)).await;
        let existing = format!("existing{i}@example.org");
        seed(&state, &existing).await;
        let existing_body =
            json!({"referrer": {"lead_id": referrer}, "referee": {"email": existing}});
        measure(&state, &mut rows[2], post("/referrals", existing_body)).await;
        measure(&state, &mut rows[3], post("/referrals", body)).await;
        let code = || {
            EventBuilder::new("GET", "/referrals/code")
                .header("x-api-key", "bench")
                .query(&format!("lead_id={referrer}"))
        };
        measure(&state, &mut rows[4], code()).await;
        measure(&state, &mut rows[5], code()).await;

        let id = format!("r{i}");
        measure(&state, &mut rows[6], post("/reviews", review(&id, 4, None))).await;
        let linked = format!("l{i}");
        let body = review(&linked, 5, Some(&referrer_email));
        measure(&state, &mut rows[7], post("/reviews", body)).await;
        let mut fresh = review(
            &format!("n{i}"),
            5,
            Some(&format!("reviewer{i}@example.net")),
        );
        fresh["consent"] = json!(true);
        measure(&state, &mut rows[8], post("/reviews", fresh)).await;
        measure(&state, &mut rows[9], post("/reviews", review(&id, 4, None))).await;
        measure(
            &state,
            &mut rows[10],
            post("/reviews", review(&id, 2, None)),
        )
        .await;
        let delete = json!({"platform": "google", "external_id": id, "deleted": true});
        measure(&state, &mut rows[11], post("/reviews", delete)).await;
        let tp = json!({"events": [{"eventName": "service-review-created", "eventData": {
            "id": format!("tp{i}"), "stars": 5, "referenceId": referrer,
            "createdAt": "2026-05-01T10:00:00Z"}}]});
        let event = EventBuilder::new("POST", "/reviews/trustpilot")
            .query("key=tp")
            .json(&tp);
        measure(&state, &mut rows[12], event).await;
    }

    println!("{:<46} {:>4} {:>4} {:>4}", "operation", "min", "med", "max");
    for row in &mut rows {
        row.trips.sort_unstable();
        println!(
            "{:<46} {:>4} {:>4} {:>4}",
            row.name,
            row.trips[0],
            row.trips[row.trips.len() / 2],
            row.trips[row.trips.len() - 1]
        );
    }
}
