//! A seeded rescore run against DynamoDB Local: leads/s and DynamoDB requests
//! per lead. Every lead is a copy of a real ingested lead (lead item + 4 touchpoints, as ingest
//! writes them, so item sizes and Scan page fill are realistic); 5% carry a stale score, so the
//! run writes about 5% of the leads, as an hourly run does. DynamoDB Local's latency says little
//! about DynamoDB's: the requests per lead carry over, the leads/s here do not (see README "Rescore").
//! Per page it prints the Scan time, the scoring CPU and the rest (score writes, the
//! checkpoint), sampled (every page: RESCORE_PAGES_OUT=<file>, tab-separated), and the read and
//! write units per lead: by AWS's formula from the seeded items' sizes, and as DynamoDB Local
//! reports them (`store::capacity::CapacityMeter`, bench only).
//! Run: `bench/rescore.sh` (RESCORE_BENCH_LEADS, default 100000).

use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use integration_tests::{endpoint, fresh_store, json_event, sdk_loader};
use leadflow::model::{ContactInput, DeliveryKey, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::capacity::formula::{item_size, READ_UNIT, WRITE_UNIT};
use leadflow::store::capacity::CapacityMeter;
use leadflow::store::{item_to_stream_json, Item, Store};
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
    let size = |i: &Item| item_size(item_to_stream_json(i).as_object().unwrap());
    let bytes: usize = tpl.iter().map(size).sum();
    let lead_bytes = tpl
        .iter()
        .find(|i| i.get("sk") == Some(&AttributeValue::S("#LEAD".into())))
        .map(size)
        .unwrap_or(0);
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
    let meter = CapacityMeter::lean();
    let store = Store::metered(&patient, store.table(), meter.clone());
    let st = RescoreState::from_lookup(store.clone(), None, |k| match k {
        "SEGMENTS" => Some(segments.clone()),
        "PAGE_STATS" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    meter.take();
    let before = store.round_trips();
    let t = Instant::now();
    // A run that does not fit one invocation's budget (a slow local server) resumes from its
    // checkpoint in the next, as the hourly schedule's next invocation would.
    let mut summary = json!({});
    let mut pages = Vec::new();
    let mut invocations = 0;
    let (mut scanned, mut written) = (0, 0);
    loop {
        let s = handler(&st, json_event(json!({"mode": "scheduled"})))
            .await
            .unwrap();
        invocations += 1;
        scanned += s["scanned"].as_u64().unwrap_or(0);
        written += s["written"].as_u64().unwrap_or(0);
        pages.extend(s["page_stats"].as_array().cloned().unwrap_or_default());
        let complete = s["complete"] == true;
        summary = s;
        if complete || invocations >= 10 {
            break;
        }
    }
    summary["invocations"] = json!(invocations);
    summary["scanned"] = json!(scanned);
    summary["written"] = json!(written);
    let secs = t.elapsed().as_secs_f64();
    let requests = store.round_trips() - before;
    let scanned = scanned.max(1);
    let mut brief = summary.clone();
    brief.as_object_mut().unwrap().remove("page_stats");
    println!("run summary: {brief}");
    println!(
        "leads/s (DynamoDB Local, not DynamoDB): {:.0}; DynamoDB requests: {requests} = {:.4} per lead; \
         pages: {} ({:.0} leads per page)",
        scanned as f64 / secs,
        requests as f64 / scanned as f64,
        pages.len(),
        scanned as f64 / pages.len().max(1) as f64
    );
    print_pages(&pages);

    // Units per lead. Formula: a Scan reads each item of the partition whole (the projection
    // does not lower it), eventually consistent, 4 KB per unit; a changed lead is one
    // transaction (lead update + score-change record, 2x) plus its index entries (gsi1 projects
    // the whole lead, gsi2 a few attributes, both under 1 KB there).
    let f = |b: usize, unit: usize| b as f64 / unit as f64;
    let read_per_lead = 0.5 * f(bytes, READ_UNIT);
    let written = summary["written"].as_u64().unwrap_or(0) as f64;
    let per_write = 2.0 * (lead_bytes.div_ceil(WRITE_UNIT) as f64 + 1.0)
        + lead_bytes.div_ceil(WRITE_UNIT) as f64
        + 1.0;
    let consumed = meter.consumed_so_far().total();
    println!(
        "units per lead, AWS's formula: read {:.3} (partition {bytes} B, lead {lead_bytes} B, eventually consistent Scan), \
         write {:.3} ({:.1}% of leads changed x {per_write} WCU)",
        read_per_lead,
        written * per_write / scanned as f64,
        100.0 * written / scanned as f64
    );
    println!(
        "units per lead, DynamoDB Local's ReturnConsumedCapacity: read {:.3}, write {:.3}",
        consumed.read / scanned as f64,
        consumed.write / scanned as f64
    );
    if let Ok(path) = std::env::var("RESCORE_OUT") {
        let doc = json!({"leads": scanned, "seconds": secs, "requests_per_lead": requests as f64 / scanned as f64,
            "pages": pages.len(), "read_units_per_lead": read_per_lead,
            "write_units_per_lead": written * per_write / scanned as f64,
            "changed_fraction": written / scanned as f64, "write_units_per_changed_lead": per_write,
            "local_read_units_per_lead": consumed.read / scanned as f64,
            "local_write_units_per_lead": consumed.write / scanned as f64,
            "scan_ms_per_page": mean(&pages, "scan_ms"), "eval_ms_per_page": mean(&pages, "eval_ms"),
            "write_ms_per_page": mean(&pages, "write_ms"), "leads_per_page": mean(&pages, "leads")});
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
}

fn mean(pages: &[serde_json::Value], field: &str) -> f64 {
    pages.iter().filter_map(|p| p[field].as_f64()).sum::<f64>() / pages.len().max(1) as f64
}

/// A sample of the pages (about 20 evenly spaced), then the distribution; every page goes to
/// RESCORE_PAGES_OUT when set.
fn print_pages(pages: &[serde_json::Value]) {
    let line = |p: &serde_json::Value| {
        format!(
            "{:>7} {:>6} {:>9.1} {:>9.2} {:>9.1} {:>7}",
            p["segment"],
            p["leads"],
            p["scan_ms"].as_f64().unwrap_or(0.0),
            p["eval_ms"].as_f64().unwrap_or(0.0),
            p["write_ms"].as_f64().unwrap_or(0.0),
            p["written"]
        )
    };
    let header = format!(
        "{:>7} {:>6} {:>9} {:>9} {:>9} {:>7}",
        "segment", "leads", "scan ms", "eval ms", "write ms", "written"
    );
    println!("per page (a sample; scan: the Scan request; eval: scoring CPU; write: score writes in flight and the checkpoint)");
    println!("{header}");
    let step = pages.len().div_ceil(20).max(1);
    for p in pages.iter().step_by(step) {
        println!("{}", line(p));
    }
    let pct = |field: &str, q: f64| {
        let mut v: Vec<f64> = pages.iter().filter_map(|p| p[field].as_f64()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    for field in ["scan_ms", "eval_ms", "write_ms", "leads"] {
        println!(
            "{field:>9}: mean {:.2}, median {:.2}, p90 {:.2}, max {:.2}",
            mean(pages, field),
            pct(field, 0.5),
            pct(field, 0.9),
            pct(field, 1.0)
        );
    }
    if let Ok(path) = std::env::var("RESCORE_PAGES_OUT") {
        let body: Vec<String> = pages.iter().map(line).collect();
        std::fs::write(&path, format!("{header}\n{}\n", body.join("\n"))).unwrap();
    }
}
