//! DynamoDB capacity units per operation, beside its round trips: computed from AWS's published
//! formula over the items each request wrote or read (sizes taken from the table before and
//! after the operation), and as DynamoDB Local reports them (`ReturnConsumedCapacity=INDEXES`,
//! asked for by the bench's `store::capacity::CapacityMeter` only). Every operation goes through
//! the function's handler (or the store call the handler makes) exactly as deployed, with
//! `PRIVACY_PEPPER` set as in production (suppression checks in the ingest transaction).
//! Run: `bench/units.sh`. `UNITS_OUT=<file>` also writes the figures as JSON (bench/cost.sh
//! reads them).

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use integration_tests::{
    endpoint, fresh_store, json_event, lambda_event, local_env, sample_event, sdk_config, Answer,
    EventBuilder,
};
use leadflow::model::{ContactInput, DeliveryKey, IngestStatus, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::capacity::formula::{self, Snapshot};
use leadflow::store::capacity::{CapacityMeter, Split};
use leadflow::store::{item_to_stream_json, Store};
use serde_json::{json, Value};

const KEY: &str = "bench-key";
const RUNS: usize = 3;

struct Bench {
    store: Store,
    plain: Store,
    meter: CapacityMeter,
    rows: Vec<Row>,
}

#[derive(Default)]
struct Row {
    name: &'static str,
    runs: usize,
    trips: u64,
    formula: Split,
    local: Split,
    /// Write units of refused requests (cancelled transactions, failed conditions), included in
    /// `formula`: the part that depends on how DynamoDB bills a cancelled transaction.
    refused: f64,
    /// Net bytes stored (table and index entries, with AWS's 100 bytes of overhead each).
    stored: i64,
}

/// Bytes the table bills for storage: every item and every index entry, each with 100 bytes
/// of overhead (AWS, "DynamoDB item sizes").
fn stored_bytes(snap: &Snapshot) -> i64 {
    use leadflow::store::capacity::TABLE_INDEXES;
    snap.values()
        .map(|item| {
            let entries: usize = TABLE_INDEXES
                .iter()
                .filter_map(|idx| formula::index_entry(item, idx))
                .map(|e| formula::item_size(&e) + 100)
                .sum();
            (formula::item_size(item) + 100 + entries) as i64
        })
        .sum()
}

impl Bench {
    async fn snapshot(&self) -> Snapshot {
        self.plain
            .scan_table()
            .await
            .expect("scan")
            .iter()
            .filter_map(|i| {
                let m = item_to_stream_json(i).as_object()?.clone();
                Some((formula::key_of(&m)?, m))
            })
            .collect()
    }

    /// Runs one operation and adds what it cost to its row.
    async fn measure<T>(&mut self, name: &'static str, op: impl Future<Output = T>) -> T {
        let before = self.snapshot().await;
        self.meter.take();
        let trips = self.store.round_trips();
        let out = op.await;
        let trips = self.store.round_trips() - trips;
        let log = self.meter.take();
        if std::env::var("UNITS_DEBUG").is_ok() {
            for m in &log {
                eprintln!(
                    "{} ok={} req={} resp={:?}",
                    m.operation, m.ok, m.request, m.response
                );
            }
        }
        let after = self.snapshot().await;
        if std::env::var("UNITS_DEBUG").is_ok() {
            for (k, item) in &after {
                if before.get(k) != Some(item) {
                    eprintln!(
                        "SIZE {name}: {} {} = {} bytes",
                        k.0,
                        k.1,
                        formula::item_size(item)
                    );
                    if std::env::var("UNITS_DEBUG").as_deref() == Ok("items") {
                        for (a, v) in item {
                            eprintln!("  {a}: {} {}", a.len() + formula::value_size(v), v);
                        }
                    }
                }
            }
        }
        let i = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    name,
                    ..Default::default()
                });
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[i];
        row.runs += 1;
        row.trips += trips;
        row.stored += stored_bytes(&after) - stored_bytes(&before);
        for m in &log {
            let units = formula::units_of(m, &before, &after);
            if !m.ok {
                row.refused += units.total().write;
            }
            row.formula.add(&units);
            row.local.add(&m.consumed());
        }
        out
    }
}

fn vars() -> HashMap<String, String> {
    let mut v = local_env();
    v.insert(
        "PRIVACY_PEPPER".into(),
        "bench-pepper-0123456789abcdef".into(),
    );
    v.insert("LEAD_API_KEYS".into(), format!("{KEY}:read+write+erase"));
    v.insert("REFERRAL_API_KEYS".into(), KEY.into());
    v
}

/// The web form sample (`events/form-json.json`: contact, consent, UTMs, a click id, a landing
/// page, a lead magnet, one answer) for person `i`; `answer` varies the body.
fn web_form(i: usize, answer: &str) -> EventBuilder {
    let mut ev = serde_json::to_value(sample_event("form-json.json")).unwrap();
    let mut body: Value = serde_json::from_str(ev["body"].as_str().unwrap()).unwrap();
    body["email"] = json!(format!("ada.{i}@example.com"));
    body["phone"] = json!(format!("+1 (415) 555-{:04}", 1000 + i));
    body["budget"] = json!(answer);
    ev["body"] = json!(body.to_string());
    EventBuilder::from_value(ev)
}

async fn webhook(state: &form_webhook::AppState, ev: EventBuilder) -> Answer {
    form_webhook::handler(state, lambda_event(ev.build()))
        .await
        .unwrap()
        .into()
}

async fn api(state: &lead_api::ApiState, method: &str, path: &str, body: Option<Value>) -> Answer {
    let mut ev = EventBuilder::new(method, path).header("x-api-key", KEY);
    if let Some(b) = body {
        ev = ev.json(&b);
    }
    let mut event = ev.build();
    event.path_parameters.clear();
    lead_api::handler(state, lambda_event(event))
        .await
        .unwrap()
        .into()
}

async fn referral_review(state: &referral_review::AppState, path: &str, body: Value) -> Answer {
    let ev = EventBuilder::new("POST", path)
        .header("x-api-key", KEY)
        .json(&body);
    referral_review::handler(state, lambda_event(ev.build()))
        .await
        .unwrap()
        .into()
}

fn lead_id(a: &Answer) -> String {
    let v: Value = serde_json::from_str(&a.text).unwrap_or(Value::Null);
    v["lead_id"].as_str().unwrap_or_default().to_string()
}

fn announced(i: usize, n: usize) -> Submission {
    let mut s = Submission::new(
        "facebook",
        DeliveryKey::Platform(format!("meta-{i}-{n}")),
        TouchKind::AdLead,
        Utc::now(),
    );
    s.contact = ContactInput {
        email: Some(format!("meta.{i}.{n}@example.com")),
        full_name: Some("Meta Person".into()),
        ..Default::default()
    };
    s.custom.insert("when_to_call".into(), "mornings".into());
    s
}

#[tokio::main]
async fn main() {
    let table = fresh_store().await.table().to_string();
    let sdk = sdk_config(&endpoint()).await;
    let meter = CapacityMeter::default();
    let v = vars();
    let get = |k: &str| v.get(k).cloned();
    let store = Store::metered(&sdk, &table, meter.clone());
    let forms = form_webhook::AppState::from_lookup(store.clone(), get).unwrap();
    let leads = lead_api::ApiState::from_lookup(store.clone(), get).unwrap();
    let refs = referral_review::AppState::from_lookup(store.clone(), get).unwrap();
    let rescore = rescore::RescoreState::from_lookup(store.clone(), None, get).unwrap();
    let rollup = metrics_rollup::RollupState::from_lookup(store.clone(), get).unwrap();
    let normalize_cfg = NormalizeConfig::default();
    let mut b = Bench {
        plain: Store::new(&sdk, &table),
        store: store.clone(),
        meter,
        rows: Vec::new(),
    };
    // A new stack's one-off backfill: the rollup reads the sharded day index (gsi2).
    store
        .backfill_day_keys(1000, None, false, Utc::now())
        .await
        .unwrap();

    for i in 0..RUNS {
        let a = b
            .measure("new lead (web form)", webhook(&forms, web_form(i, "50k")))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        let lead = lead_id(&a);
        let a = b
            .measure("returning lead", webhook(&forms, web_form(i, "100k")))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let a = b
            .measure("retried delivery", webhook(&forms, web_form(i, "100k")))
            .await;
        assert!(a.text.contains("duplicate"), "{}", a.text);

        // Meta announces two leads by id: the markers in one BatchGetItem, then each ingest
        // (what `providers::batch` does after fetching them from the Graph API).
        let subs = [announced(i, 0), announced(i, 1)];
        b.measure("Meta batch of 2 new leads", async {
            let keys: Vec<DeliveryKey> = subs.iter().map(|s| s.delivery.clone()).collect();
            store
                .stored_deliveries("facebook", &keys, Utc::now())
                .await
                .unwrap();
            for s in &subs {
                let n = normalize(s.clone(), &normalize_cfg).unwrap();
                store.ingest(&n, Utc::now()).await.unwrap();
            }
        })
        .await;

        let a = b
            .measure(
                "referral (new referee)",
                referral_review(
                    &refs,
                    "/referrals",
                    json!({"referrer": {"lead_id": lead},
                       "referee": {"email": format!("grace.{i}@example.org"), "name": "Grace Hopper",
                                   "company": "Navy Labs"},
                       "consent": true, "note": "Looking for a CRM integration",
                       "program": "customer-referral-2026"}),
                ),
            )
            .await;
        assert!(a.status < 300, "{}", a.text);
        let a = b
            .measure(
                "review (new, unlinked)",
                referral_review(
                    &refs,
                    "/reviews",
                    json!({"platform": "google", "external_id": format!("rev-{i}"), "rating": 5,
                       "title": "Fast onboarding", "text": "The team had us live in a week.",
                       "name": "Ada L.", "published_at": "2026-11-20T09:15:00Z"}),
                ),
            )
            .await;
        assert!(a.status < 300, "{}", a.text);
        let a = b
            .measure(
                "sales event (contacted)",
                api(
                    &leads,
                    "POST",
                    &format!("/leads/{lead}/events"),
                    Some(json!({"event_id": format!("c{i}"), "type": "contacted"})),
                ),
            )
            .await;
        assert!(a.status < 300, "{}", a.text);
        let a = b
            .measure(
                "spend entry",
                api(
                    &leads,
                    "POST",
                    "/spend",
                    Some(
                        json!({"date": Utc::now().date_naive().to_string(), "source": "google",
                            "channel": "paid_search", "campaign": format!("c{i}"),
                            "amount": 125.4, "currency": "USD"}),
                    ),
                ),
            )
            .await;
        assert!(a.status < 300, "{}", a.text);
        // One lead by hand after its score went stale (a scheduled run's changed lead costs the
        // same write; its read is the Scan page, see bench/rescore.sh).
        b.plain
            .set_lead_attribute(&lead, "score", AttributeValue::N("1".into()))
            .await
            .unwrap();
        b.measure(
            "rescore one lead (changed)",
            rescore::handler(&rescore, json_event(json!({"lead_id": lead}))),
        )
        .await
        .unwrap();
        // An import row: the same ingest as a web form, keyed by file and row.
        let mut row = Submission::new(
            "import",
            DeliveryKey::Platform(format!("import#id#file#{i}")),
            TouchKind::FormSubmission,
            Utc::now() - Duration::days(2),
        );
        row.contact = ContactInput {
            email: Some(format!("row.{i}@example.net")),
            full_name: Some("Row Person".into()),
            company: Some("Import Co".into()),
            ..Default::default()
        };
        let n = normalize(row, &normalize_cfg).unwrap();
        let out = b
            .measure("import row (new lead)", store.ingest(&n, Utc::now()))
            .await
            .unwrap();
        assert_eq!(out.status, IngestStatus::Created);
    }
    let day = Utc::now().date_naive().to_string();
    b.measure(
        "rollup of one day (this table's day)",
        metrics_rollup::handler(&rollup, json_event(json!({"from": day, "to": day}))),
    )
    .await
    .unwrap();
    for i in 0..RUNS {
        let lead = {
            let a = webhook(&forms, web_form(100 + i, "erase me")).await;
            lead_id(&a)
        };
        webhook(&forms, web_form(100 + i, "again")).await;
        let a = b
            .measure(
                "erasure (lead, 2 touches)",
                api(&leads, "DELETE", &format!("/leads/{lead}"), None),
            )
            .await;
        assert!(a.status < 300, "{}", a.text);
    }

    print(&b.rows);
    if let Ok(path) = std::env::var("UNITS_OUT") {
        let doc: Vec<Value> = b
            .rows
            .iter()
            .map(|r| {
                let n = r.runs as f64;
                let f = r.formula.total();
                let l = r.local.total();
                json!({"operation": r.name, "round_trips": r.trips as f64 / n,
                       "write_units": f.write / n, "read_units": f.read / n,
                       "index_write_units": r.formula.index_total().write / n,
                       "local_write_units": l.write / n, "local_read_units": l.read / n,
                       "stored_bytes": r.stored as f64 / n,
                       "refused_write_units": r.refused / n})
            })
            .collect();
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        println!("(written to {path})");
    }
}

fn print(rows: &[Row]) {
    println!(
        "DynamoDB capacity units per operation (mean of the runs; DynamoDB Local on loopback)"
    );
    println!(
        "{:<38} {:>5} | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>7} {:>7}",
        "operation", "trips", "WCU", "table", "gsi1", "gsi2", "RCU", "local W", "local R"
    );
    for r in rows {
        let n = r.runs as f64;
        let idx = |name: &str| r.formula.indexes.get(name).map_or(0.0, |u| u.write) / n;
        let f = r.formula.total();
        let l = r.local.total();
        println!(
            "{:<38} {:>5.1} | {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} | {:>7.1} {:>7.1}",
            r.name,
            r.trips as f64 / n,
            f.write / n,
            r.formula.table.write / n,
            idx("gsi1"),
            idx("gsi2"),
            f.read / n,
            l.write / n,
            l.read / n
        );
    }
    println!(
        "WCU/RCU: AWS's formula (1 WCU per started KB of the larger of the item before and after, 2x in a \
         transaction; index writes by projected entry size, not doubled; 4 KB per RCU, eventually consistent half). \
         local: what DynamoDB Local reports (its own accounting: e.g. for a new lead's transaction table 9, gsi1 6, gsi2 4, i.e. the index writes doubled and the table's not; nothing for a cancelled transaction)."
    );
}
