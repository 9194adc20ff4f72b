//! A seeded rescore run against DynamoDB Local: leads/s and DynamoDB requests
//! per lead. Every lead is a copy of a real ingested lead (lead item + 4 touchpoints, as ingest
//! writes them, so item sizes and Scan page fill are realistic); 5% carry a stale score, so the
//! run writes about 5% of the leads, as an hourly run does. DynamoDB Local's latency says little
//! about DynamoDB's: the requests per lead carry over, the leads/s here do not (see README "Rescore").
//! Run: `bench/rescore.sh` (RESCORE_BENCH_LEADS, default 100000).

use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use integration_tests::{endpoint, fresh_store, json_event, sdk_loader};
use leadflow::model::{ContactInput, DeliveryKey, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::{Item, Store};
use rescore::{handler, RescoreState};
use serde_json::json;

async fn template(store: &Store) -> Vec<Item> {
    let now = Utc::now();
    let mut lead_id = String::new();
    for (i, kind) in [
        TouchKind::FormSubmission,
        TouchKind::Visit,
        TouchKind::Event,
        TouchKind::Visit,
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = Submission::new(
            "form",
            DeliveryKey::Platform(format!("tpl-{i}")),
            kind,
            now - Duration::days(i as i64 * 3),
        );
        s.contact = ContactInput {
            email: Some("template.person@example-corp.com".into()),
            phone: Some("+1 415 555 0132".into()),
            first_name: Some("Template".into()),
            last_name: Some("Person".into()),
            company: Some("Example Corp".into()),
            job_title: Some("Head of Growth".into()),
            country: Some("US".into()),
            ..Default::default()
        };
        s.attribution.utm_source = Some("google".into());
        s.attribution.utm_medium = Some("cpc".into());
        s.attribution.utm_campaign = Some("spring-launch".into());
        s.attribution.gclid = Some("EAIaIQobChMI".into());
        s.custom.insert("budget".into(), "50k-100k".into());
        let n = normalize(s, &NormalizeConfig::default()).unwrap();
        lead_id = store.ingest(&n, now).await.unwrap().lead_id;
    }
    // Score it once so copies start up to date.
    let st = RescoreState::from_lookup(store.clone(), None, |_| None).unwrap();
    handler(&st, json_event(json!({"lead_id": lead_id})))
        .await
        .unwrap();
    store.lead_partition(&lead_id).await.unwrap()
}

async fn seed(store: &Store, tpl: &[Item], leads: usize) {
    let ids: Vec<String> = (0..leads).map(|i| format!("bench-{i:08}")).collect();
    // Every 20th copy carries a stale score: the run rewrites those.
    store
        .put_lead_copies(tpl, &ids, |i, item| {
            if i % 20 == 0 && item.contains_key("score") {
                item.insert("score".into(), AttributeValue::N("1".into()));
            }
        })
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let leads: usize = std::env::var("RESCORE_BENCH_LEADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let segments = std::env::var("RESCORE_BENCH_SEGMENTS").unwrap_or_else(|_| "8".into());
    let store = fresh_store().await;
    let tpl = template(&store).await;
    let bytes: usize = tpl
        .iter()
        .map(|i| {
            i.iter()
                .map(|(k, v)| k.len() + format!("{v:?}").len() / 2)
                .sum::<usize>()
        })
        .sum();
    let t = Instant::now();
    seed(&store, &tpl, leads).await;
    println!(
        "seeded {leads} leads ({} items, ~{} bytes per lead partition) in {:.1} s",
        leads * tpl.len(),
        bytes,
        t.elapsed().as_secs_f64()
    );

    // A local server on 2 shared cores can be slow to answer a large Scan page under load:
    // production's 3 s attempt timeout is not meant for it (DynamoDB answers a 1 MB page in well
    // under that).
    let patient = sdk_loader(&endpoint())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(600))
                .operation_timeout(std::time::Duration::from_secs(600))
                .build(),
        )
        .load()
        .await;
    let store = Store::new(&patient, store.table());
    let st = RescoreState::from_lookup(store.clone(), None, |k| match k {
        "SEGMENTS" => Some(segments.clone()),
        _ => None,
    })
    .unwrap();
    let before = store.round_trips();
    let t = Instant::now();
    let summary = handler(&st, json_event(json!({"mode": "scheduled"})))
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let requests = store.round_trips() - before;
    let scanned = summary["scanned"].as_u64().unwrap_or(0).max(1);
    println!("run summary: {summary}");
    println!(
        "leads/s (DynamoDB Local, not DynamoDB): {:.0}; DynamoDB requests: {requests} = {:.4} per lead; \
         pages: {} ({:.0} leads per page)",
        scanned as f64 / secs,
        requests as f64 / scanned as f64,
        summary["pages"],
        scanned as f64 / summary["pages"].as_u64().unwrap_or(1).max(1) as f64
    );
}
