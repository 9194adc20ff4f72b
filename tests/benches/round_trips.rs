//! DynamoDB round trips per ingest outcome, counted by the store's SDK interceptor against a
//! real DynamoDB engine (AWS's DynamoDB Local on loopback). Round trips, not DynamoDB Local's
//! latency, are the figure that carries over to production cost and latency. Run: `bench/round-trips.sh`.

use std::time::Instant;

use chrono::{Duration, Utc};
use integration_tests::fresh_store;
use leadflow::model::{Consent, ContactInput, DeliveryKey, IngestStatus, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::Store;

const N: usize = 50;

fn submission(i: usize, email: &str, phone: Option<&str>, delivery: &str, mins: i64) -> Submission {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(delivery.to_string()),
        TouchKind::FormSubmission,
        Utc::now() + Duration::minutes(mins),
    );
    s.contact = ContactInput {
        email: Some(email.to_string()),
        phone: phone.map(str::to_string),
        first_name: Some(format!("Person{i}")),
        company: Some("Acme".into()),
        ..Default::default()
    };
    s.custom.insert("budget".into(), "10k".into());
    s
}

struct Row {
    name: &'static str,
    expected: IngestStatus,
    trips: Vec<u64>,
    micros: Vec<u128>,
}

async fn measure(store: &Store, row: &mut Row, sub: Submission) {
    let cfg = NormalizeConfig::default();
    let n = normalize(sub, &cfg).expect("valid submission");
    let before = store.round_trips();
    let t = Instant::now();
    let out = store.ingest(&n, Utc::now()).await.expect("ingest");
    row.micros.push(t.elapsed().as_micros());
    row.trips.push(store.round_trips() - before);
    assert_eq!(out.status, row.expected, "{}", row.name);
}

#[tokio::main]
async fn main() {
    let store = fresh_store().await;
    let mut rows = vec![
        Row {
            name: "new lead",
            expected: IngestStatus::Created,
            trips: vec![],
            micros: vec![],
        },
        Row {
            name: "returning lead (same email)",
            expected: IngestStatus::Merged,
            trips: vec![],
            micros: vec![],
        },
        Row {
            name: "returning lead + new phone",
            expected: IngestStatus::Merged,
            trips: vec![],
            micros: vec![],
        },
        Row {
            name: "duplicate delivery",
            expected: IngestStatus::Duplicate,
            trips: vec![],
            micros: vec![],
        },
        Row {
            name: "late, older submission",
            expected: IngestStatus::Merged,
            trips: vec![],
            micros: vec![],
        },
        Row {
            name: "new lead with consent",
            expected: IngestStatus::Created,
            trips: vec![],
            micros: vec![],
        },
        Row {
            name: "returning lead with consent",
            expected: IngestStatus::Merged,
            trips: vec![],
            micros: vec![],
        },
        Row {
            name: "returning, answers overflow",
            expected: IngestStatus::Merged,
            trips: vec![],
            micros: vec![],
        },
    ];
    let with_consent = |mut s: Submission| {
        s.consent = Some(Consent::new(true, s.occurred_at, Some("newsletter".into())));
        s
    };
    // 40 answers each time: the second post for a person does not fit next to the first.
    let with_answers = |mut s: Submission, tag: &str| {
        for q in 0..40 {
            s.custom.insert(format!("{tag}_q{q:02}"), "x".repeat(200));
        }
        s
    };
    for i in 0..N {
        let email = format!("bench{i}@example.com");
        let phone = format!("+1 415 555 {:04}", 1000 + i);
        measure(
            &store,
            &mut rows[0],
            submission(i, &email, None, &format!("new-{i}"), 0),
        )
        .await;
        measure(
            &store,
            &mut rows[1],
            submission(i, &email, None, &format!("again-{i}"), 1),
        )
        .await;
        measure(
            &store,
            &mut rows[2],
            submission(i, &email, Some(&phone), &format!("phone-{i}"), 2),
        )
        .await;
        measure(
            &store,
            &mut rows[3],
            submission(i, &email, None, &format!("again-{i}"), 1),
        )
        .await;
        measure(
            &store,
            &mut rows[4],
            submission(i, &email, None, &format!("late-{i}"), -60),
        )
        .await;
        let consenting = format!("consent{i}@example.com");
        measure(
            &store,
            &mut rows[5],
            with_consent(submission(i, &consenting, None, &format!("c-new-{i}"), 0)),
        )
        .await;
        measure(
            &store,
            &mut rows[6],
            with_consent(submission(i, &consenting, None, &format!("c-again-{i}"), 1)),
        )
        .await;
        let heavy = format!("heavy{i}@example.com");
        measure(
            &store,
            &mut rows[0],
            with_answers(submission(i, &heavy, None, &format!("h-new-{i}"), 0), "a"),
        )
        .await;
        measure(
            &store,
            &mut rows[7],
            with_answers(submission(i, &heavy, None, &format!("h-again-{i}"), 1), "b"),
        )
        .await;
    }
    println!("DynamoDB round trips per ingest ({N} runs each, DynamoDB Local on loopback)");
    println!(
        "{:<30} {:>8} {:>8} {:>8}   {:>14}",
        "outcome", "min", "mean", "max", "local µs (mean)"
    );
    for r in &rows {
        let mean = r.trips.iter().sum::<u64>() as f64 / r.trips.len() as f64;
        let us = r.micros.iter().sum::<u128>() / r.micros.len() as u128;
        println!(
            "{:<30} {:>8} {:>8.2} {:>8}   {:>14}",
            r.name,
            r.trips.iter().min().unwrap(),
            mean,
            r.trips.iter().max().unwrap(),
            us
        );
    }
    println!("targets: new lead 1, returning lead <= 2, duplicate 1 (late submissions and answers that overflow the lead take one more by design)");
    println!(
        "DynamoDB Local's latency is not a speed reference: count round trips, multiply by DynamoDB's ~5-10 ms"
    );
}
