//! DynamoDB round trips of the issue-13 reads and the rollup, counted by the store's SDK
//! interceptor against DynamoDB Local: a lead view and touchpoint pages of a 10,000-touchpoint
//! lead, a day's rollup through gsi1 (before the backfill) and gsi2 (after), a 400-day metrics
//! read and the review aggregates. Run: `bench/scale-round-trips.sh`.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use integration_tests::{fresh_store, json_event};
use leadflow::model::{ContactInput, DeliveryKey, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::{Store, TouchCursor};
use serde_json::json;

async fn ingest(store: &Store, key: &str, email: &str, at: chrono::DateTime<Utc>) -> String {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(key.into()),
        TouchKind::FormSubmission,
        at,
    );
    s.contact = ContactInput {
        email: Some(email.into()),
        ..Default::default()
    };
    s.attribution.utm_source = Some(["google", "bing", "facebook"][key.len() % 3].into());
    let n = normalize(s, &NormalizeConfig::default()).unwrap();
    store.ingest(&n, at).await.unwrap().lead_id
}

async fn count<T>(store: &Store, f: impl std::future::Future<Output = T>) -> (u64, T) {
    let before = store.round_trips();
    let out = f.await;
    (store.round_trips() - before, out)
}

#[tokio::main]
async fn main() {
    let store = fresh_store().await;
    println!("{:<58} {:>11}", "operation", "round trips");

    // A lead with 10,000 touchpoints.
    let lead = ingest(&store, "big", "big@example.com", Utc::now()).await;
    let touch = store
        .lead_partition(&lead)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i["sk"].as_s().unwrap().starts_with("TP#"))
        .unwrap();
    store
        .put_lead_copies(&[touch], &vec![lead.clone(); 9_999], |i, item| {
            let at = format!(
                "2026-01-01T00:{:02}:{:02}.{:03}Z",
                i / 60_000,
                i / 1000 % 60,
                i % 1000
            );
            item.insert("sk".into(), AttributeValue::S(format!("TP#{at}#{i:05}")));
            item.insert("touch_id".into(), AttributeValue::S(format!("{i:05}")));
            item.remove("delivery");
        })
        .await
        .unwrap();
    let (trips, view) = count(&store, store.lead_view(&lead, 50, None)).await;
    let view = view.unwrap().unwrap();
    println!(
        "{:<58} {trips:>11}",
        "lead view, 10,000 touchpoints (newest 50)"
    );
    let mut cursor: Option<TouchCursor> = view.more_touchpoints.clone();
    let (mut pages, mut total) = (0u64, 0u64);
    while let Some(c) = cursor.take() {
        let (trips, page) = count(&store, store.lead_view(&lead, 200, Some(&c))).await;
        let page = page.unwrap().unwrap();
        pages += 1;
        total += trips;
        cursor = page.more_touchpoints;
    }
    println!(
        "{:<58} {:>11}",
        format!("  every further page of 200 ({pages} pages)"),
        format!("{:.1} each", total as f64 / pages as f64)
    );
    let (trips, _) = count(&store, store.scoring_input(&lead)).await;
    println!(
        "{:<58} {trips:>11}",
        "scoring input of that lead (newest 200 touches)"
    );
    let small = ingest(&store, "small", "small@example.com", Utc::now()).await;
    let (trips, _) = count(&store, store.scoring_input(&small)).await;
    println!("{:<58} {trips:>11}", "scoring input of a one-touch lead");

    // A day of 300 leads and 300 returning touches, rolled up before and after the backfill.
    let day = Utc.with_ymd_and_hms(2026, 10, 7, 0, 0, 0).unwrap();
    for i in 0..300 {
        let at = day + Duration::minutes(i * 4);
        ingest(&store, &format!("d{i}"), &format!("d{i}@example.com"), at).await;
        ingest(
            &store,
            &format!("e{i}x"),
            &format!("d{i}@example.com"),
            at + Duration::minutes(1),
        )
        .await;
    }
    let state = metrics_rollup::RollupState::from_lookup(store.clone(), |_| None).unwrap();
    let event = || json_event(json!({"from": "2026-10-07", "to": "2026-10-07"}));
    let (trips, _) = count(&store, metrics_rollup::handler(&state, event())).await;
    println!(
        "{:<58} {trips:>11}",
        "rollup of one day (600 items) through gsi1, first run"
    );
    let (trips, _) = count(&store, metrics_rollup::handler(&state, event())).await;
    println!("{:<58} {trips:>11}", "  again (rows replaced)");
    // The table as the version before issue 13 left it, then migrated.
    store.rewrite_as_pre_issue13().await.unwrap();
    let (trips, report) = count(
        &store,
        store.backfill_day_keys(1000, None, false, Utc::now()),
    )
    .await;
    let report = report.unwrap();
    println!(
        "{:<58} {trips:>11}",
        format!(
            "backfill of that table ({} leads, {} touchpoints, {} pages)",
            report.leads, report.touchpoints, report.pages
        )
    );
    let (trips, _) = count(&store, metrics_rollup::handler(&state, event())).await;
    println!(
        "{:<58} {trips:>11}",
        "rollup of the same day through gsi2 (16 shards x 2)"
    );

    // 400 days of rollups read back.
    let from = NaiveDate::from_ymd_opt(2025, 1, 31).unwrap();
    let days: Vec<String> = from.iter_days().take(400).map(|d| d.to_string()).collect();
    let (trips, _) = count(&store, store.rollups_between(&days)).await;
    println!(
        "{:<58} {trips:>11}",
        "metrics over 400 days (2025-01-31 .. 2026-03-06, 15 months)"
    );
    let recent: Vec<String> = NaiveDate::from_ymd_opt(2025, 11, 1)
        .unwrap()
        .iter_days()
        .take(400)
        .map(|d| d.to_string())
        .collect();
    let (trips, _) = count(&store, store.rollups_between(&recent)).await;
    println!(
        "{:<58} {trips:>11}",
        "metrics over 400 days from a 1st (14 months)"
    );
    let (trips, _) = count(&store, store.review_aggregates()).await;
    println!("{:<58} {trips:>11}", "review aggregates, every platform");
}
