//! Issue 13 end to end on DynamoDB Local: a 10,000-touchpoint lead read page by page, the
//! sharded day index reached through the migration of an old-format table (the rollup then
//! reconciles exactly with a scan), reviews as they are now on the lead and in the
//! aggregates, a 400-day metrics read in at most 15 round trips, rollups that isolate a bad
//! day, and spend summed per currency.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::{QueryError, QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use integration_tests::{fresh_store, json_event, lambda_event, Answer, EventBuilder};
use leadflow::metrics::{GroupKey, RollupCounts};
use leadflow::model::{ContactInput, DeliveryKey, Stage, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::Store;
use metrics_rollup::RollupState;
use serde_json::{json, Value};

const KEY: &str = "scale-key";
const REVIEW_KEY: &str = "review-key";

fn api(store: Store) -> lead_api::ApiState {
    lead_api::ApiState::from_lookup(store, |k| {
        (k == "LEAD_API_KEYS").then(|| format!("{KEY}:read+write+erase"))
    })
    .unwrap()
}

fn reviews(store: Store) -> referral_review::AppState {
    referral_review::AppState::from_lookup(store, |k| {
        (k == "REFERRAL_API_KEYS").then(|| REVIEW_KEY.to_string())
    })
    .unwrap()
}

async fn call(state: &lead_api::ApiState, method: &str, path: &str, query: &str) -> Answer {
    call_with(state, method, path, query, None).await
}

async fn call_with(
    state: &lead_api::ApiState,
    method: &str,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> Answer {
    let mut ev = EventBuilder::new(method, path)
        .header("x-api-key", KEY)
        .query(query);
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

async fn post_review(state: &referral_review::AppState, body: Value) -> Answer {
    let ev = EventBuilder::new("POST", "/reviews")
        .header("x-api-key", REVIEW_KEY)
        .json(&body)
        .build();
    referral_review::handler(state, lambda_event(ev))
        .await
        .unwrap()
        .into()
}

async fn rollup(store: &Store, input: Value) -> Value {
    let state = RollupState::from_lookup(store.clone(), |k| {
        (k == "FIXED_CPL").then(|| "referral=10".to_string())
    })
    .unwrap();
    metrics_rollup::handler(&state, json_event(input))
        .await
        .unwrap()
}

async fn ingest(store: &Store, key: &str, email: &str, at: DateTime<Utc>, source: &str) -> String {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(key.to_string()),
        TouchKind::FormSubmission,
        at,
    );
    s.contact = ContactInput {
        email: Some(email.into()),
        ..Default::default()
    };
    s.attribution.utm_source = Some(source.into());
    s.attribution.utm_medium = Some("cpc".into());
    s.attribution.utm_campaign = Some("scale".into());
    let n = normalize(s, &NormalizeConfig::default()).unwrap();
    store.ingest(&n, at).await.unwrap().lead_id
}

#[tokio::test]
async fn a_10000_touchpoint_lead_is_read_page_by_page_within_the_limits() {
    let store = fresh_store().await;
    let state = api(store.clone());
    let lead = ingest(&store, "big-0", "big@example.com", Utc::now(), "google").await;
    // 9,999 more touchpoints in the lead's partition, with the answers a long form sends.
    let touch = store
        .lead_partition(&lead)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i["sk"].as_s().unwrap().starts_with("TP#"))
        .unwrap();
    let answers: HashMap<String, AttributeValue> = (0..20)
        .map(|q| (format!("question_{q}"), AttributeValue::S("x".repeat(30))))
        .collect();
    let copies = vec![lead.clone(); 9_999];
    let edit = |i: usize, item: &mut HashMap<String, AttributeValue>| {
        let at = format!("2026-01-01T00:00:{:02}.{:03}Z", i / 1000 % 60, i % 1000);
        item.insert("sk".into(), AttributeValue::S(format!("TP#{at}#{i:05}")));
        item.insert("touch_id".into(), AttributeValue::S(format!("{i:05}")));
        item.insert("occurred_at".into(), AttributeValue::S(at));
        item.insert("custom".into(), AttributeValue::M(answers.clone()));
        item.remove("delivery");
    };
    // Seeding is idempotent (puts): on a loaded machine a batch may time out, so it is sent
    // again rather than failing the test.
    for attempt in 1.. {
        match store
            .put_lead_copies(std::slice::from_ref(&touch), &copies, &edit)
            .await
        {
            Ok(()) => break,
            Err(e) if e.is_transient() && attempt < 4 => continue,
            Err(e) => panic!("seeding: {e}"),
        }
    }

    // The lead view: 2 round trips, the newest 50 touchpoints, and a cursor.
    let before = store.round_trips();
    let first = call(&state, "GET", &format!("/leads/{lead}"), "").await;
    assert_eq!(store.round_trips() - before, 2);
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.text.len() < 200_000, "{} bytes", first.text.len());
    let touches = first.json["touchpoints"].as_array().unwrap();
    assert_eq!(touches.len(), 50);
    assert_eq!(first.json["touchpoints_truncated"], true);
    assert_eq!(
        touches[0]["touch_id"].as_str().unwrap(),
        first.json["last_touch"]["touch_id"].as_str().unwrap(),
        "newest first"
    );

    // Every page, in order, each a single answer far inside Lambda's 6 MB.
    let mut seen = HashSet::new();
    let mut last_at = String::from("9999");
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut largest = 0;
    loop {
        let query = match &cursor {
            None => "limit=200".to_string(),
            Some(c) => format!("limit=200&cursor={c}"),
        };
        let page = call(&state, "GET", &format!("/leads/{lead}"), &query).await;
        assert_eq!(page.status, 200, "{}", page.text);
        largest = largest.max(page.text.len());
        for t in page.json["touchpoints"].as_array().unwrap() {
            let at = t["occurred_at"].as_str().unwrap().to_string();
            assert!(at <= last_at, "newest first across pages");
            last_at = at;
            assert!(seen.insert(t["touch_id"].as_str().unwrap().to_string()));
        }
        pages += 1;
        match page.json["touchpoints_next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 100, "no progress");
    }
    assert_eq!(seen.len(), 10_000);
    assert!(pages >= 50);
    assert!(largest < 1_500_000, "largest page {largest} bytes");

    // Limits and cursors are checked: a cursor cannot reach another item or partition.
    for (query, code) in [
        ("limit=0", "invalid_value"),
        ("limit=201", "invalid_value"),
        ("cursor=not-base64!", "invalid_cursor"),
        // base64url of "#LEAD" and of "LEAD#other" (not a touchpoint sort key).
        ("cursor=I0xFQUQ", "invalid_cursor"),
        ("cursor=TEVBRCNvdGhlcg", "invalid_cursor"),
    ] {
        let a = call(&state, "GET", &format!("/leads/{lead}"), query).await;
        assert_eq!(
            (a.status, a.json["error"]["code"].as_str()),
            (422, Some(code)),
            "{query}: {}",
            a.text
        );
    }

    // Scoring reads the newest 200 touches whatever the history: 2 round trips.
    let before = store.round_trips();
    let input = store.scoring_input(&lead).await.unwrap().unwrap();
    assert_eq!(store.round_trips() - before, 2);
    assert_eq!(input.touches.len(), leadflow::store::MAX_SCORED_TOUCHES);
}

/// Leads and touches over three days from three sources, some returning, some tests.
async fn seed_days(store: &Store) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..60usize {
        let at = Utc.with_ymd_and_hms(2026, 10, 1 + (i as u32 % 3), 8 + (i as u32 % 9), 0, 0);
        let source = ["google", "facebook", "newsletter"][i % 3];
        let id = ingest(
            store,
            &format!("d-{i}"),
            &format!("p{i}@example.com"),
            at.unwrap(),
            source,
        )
        .await;
        if i.is_multiple_of(4) {
            ingest(
                store,
                &format!("r-{i}"),
                &format!("p{i}@example.com"),
                at.unwrap() + Duration::hours(30),
                "google",
            )
            .await;
        }
        ids.push(id);
    }
    ids
}

/// The independent count: every lead and touchpoint read by a full scan, grouped by hand.
async fn scanned_counts(store: &Store) -> BTreeMap<GroupKey, (u64, u64, u64)> {
    let mut out: BTreeMap<GroupKey, (u64, u64, u64)> = BTreeMap::new();
    for lead in store.scan_leads().await.unwrap() {
        let record = store.lead_record(&lead.lead_id).await.unwrap().unwrap();
        if !lead.is_test {
            let k = GroupKey {
                day: lead.created_at.format("%Y-%m-%d").to_string(),
                source: lead.source.clone(),
                channel: lead.channel.as_str().into(),
                campaign: lead.campaign.clone(),
            };
            let e = out.entry(k).or_default();
            e.0 += 1;
            e.2 += u64::from(lead.stage >= Stage::Mql);
        }
        for t in record.touchpoints.iter().filter(|t| !t.is_test) {
            let k = GroupKey {
                day: t.occurred_at.format("%Y-%m-%d").to_string(),
                source: t.source.clone(),
                channel: t.channel.as_str().into(),
                campaign: t.campaign.clone(),
            };
            out.entry(k).or_default().1 += 1;
        }
    }
    out
}

fn counts_of(rows: &[(GroupKey, RollupCounts)]) -> BTreeMap<GroupKey, (u64, u64, u64)> {
    rows.iter()
        .filter(|(_, c)| c.new_leads + c.submissions > 0)
        .map(|(k, c)| (k.clone(), (c.new_leads, c.submissions, c.mqls)))
        .collect()
}

fn october() -> Vec<String> {
    (1..=31).map(|d| format!("2026-10-{d:02}")).collect()
}

#[tokio::test]
async fn the_day_keys_migration_of_an_old_format_table_reconciles_with_a_scan() {
    let store = fresh_store().await;
    let review_state = reviews(store.clone());
    seed_days(&store).await;
    // A linked review, updated from 4 to 2 stars, and a deleted one, before the upgrade.
    let lead = ingest(&store, "rev", "reviewer@example.com", Utc::now(), "google").await;
    for body in [
        json!({"platform": "google", "external_id": "m-1", "rating": 4, "email": "reviewer@example.com", "published_at": "2026-10-02T10:00:00Z"}),
        json!({"platform": "google", "external_id": "m-1", "rating": 2, "email": "reviewer@example.com", "published_at": "2026-10-02T10:00:00Z"}),
        json!({"platform": "google", "external_id": "m-2", "rating": 5, "email": "reviewer@example.com", "published_at": "2026-10-02T11:00:00Z"}),
        json!({"platform": "google", "external_id": "m-2", "deleted": true}),
        json!({"platform": "google", "external_id": "m-3", "rating": 3, "published_at": "2026-10-02T12:00:00Z"}),
    ] {
        let a = post_review(&review_state, body).await;
        assert!(a.status < 300, "{}", a.text);
    }
    let aggregate_before = store
        .review_aggregate(leadflow::model::ReviewPlatform::Google)
        .await
        .unwrap();

    // The table as the previous version left it.
    let changed = store.rewrite_as_pre_issue13().await.unwrap();
    assert!(changed > 60, "{changed}");
    assert_eq!(
        store.day_index().await.unwrap(),
        leadflow::store::DayIndex::Legacy
    );
    // Aggregates read the same from the unsharded item.
    assert_eq!(
        store
            .review_aggregate(leadflow::model::ReviewPlatform::Google)
            .await
            .unwrap(),
        aggregate_before
    );

    // Before the backfill the rollup reads gsi1, and reconciles.
    let summary = rollup(&store, json!({"from": "2026-10-01", "to": "2026-10-05"})).await;
    assert_eq!(summary["index"], "gsi1");
    let expected: BTreeMap<_, _> = scanned_counts(&store)
        .await
        .into_iter()
        .filter(|(k, _)| k.day.as_str() <= "2026-10-05")
        .collect();
    let legacy = store.rollups_between(&october()).await.unwrap();
    assert_eq!(counts_of(&legacy), expected);

    // A dry run writes nothing; a run cut short resumes from its checkpoint.
    let dry = store
        .backfill_day_keys(25, None, true, Utc::now())
        .await
        .unwrap();
    assert!(dry.done && dry.dry_run);
    assert!(dry.leads >= 61 && dry.touchpoints >= 76, "{dry:?}");
    assert_eq!(
        store.day_index().await.unwrap(),
        leadflow::store::DayIndex::Legacy
    );
    let partial = store
        .backfill_day_keys(25, Some(2), false, Utc::now())
        .await
        .unwrap();
    assert!(!partial.done, "{partial:?}");
    let full = store
        .backfill_day_keys(25, None, false, Utc::now())
        .await
        .unwrap();
    assert!(full.done, "{full:?}");
    assert_eq!(
        (full.leads, full.touchpoints, full.review_mirrors),
        (dry.leads, dry.touchpoints, dry.review_mirrors),
        "counts carried across the interrupted run: {full:?}"
    );
    // Repeating it does nothing more.
    let again = store
        .backfill_day_keys(25, None, false, Utc::now())
        .await
        .unwrap();
    assert_eq!(again, full);
    assert_eq!(
        store.day_index().await.unwrap(),
        leadflow::store::DayIndex::Sharded
    );
    for item in store.scan_table().await.unwrap() {
        let sk = item["sk"].as_s().unwrap();
        if item["pk"].as_s().unwrap().starts_with("LEAD#")
            && (sk == "#LEAD" || sk.starts_with("TP#"))
        {
            let gsi2 = item["gsi2pk"].as_s().unwrap();
            let gsi1 = item["gsi1pk"].as_s().unwrap();
            assert!(gsi2.starts_with(&format!("{gsi1}#")), "{gsi2} {gsi1}");
            assert_eq!(item["gsi2sk"], item["gsi1sk"]);
        }
    }

    // After it, the rollup reads every shard of gsi2 and writes exactly the same rows.
    let summary = rollup(&store, json!({"from": "2026-10-01", "to": "2026-10-05"})).await;
    assert_eq!(summary["index"], "gsi2");
    let sharded = store.rollups_between(&october()).await.unwrap();
    assert_eq!(sharded, legacy);
    assert_eq!(counts_of(&sharded), expected);
    let reviewed: u64 = sharded.iter().map(|(_, c)| c.reviews).sum();
    assert!(reviewed >= 2, "review touchpoints counted through gsi2");

    // Leads written after the upgrade are in both indexes at once; the next rollup counts them.
    ingest(
        &store,
        "late",
        "late@example.com",
        Utc.with_ymd_and_hms(2026, 10, 2, 23, 0, 0).unwrap(),
        "bing",
    )
    .await;
    rollup(&store, json!({"from": "2026-10-02", "to": "2026-10-02"})).await;
    let expected: BTreeMap<_, _> = scanned_counts(&store)
        .await
        .into_iter()
        .filter(|(k, _)| k.day.as_str() <= "2026-10-05")
        .collect();
    assert_eq!(
        counts_of(&store.rollups_between(&october()).await.unwrap()),
        expected
    );

    // The lead shows its reviews as they are now (mirrors written by the backfill).
    let state = api(store.clone());
    let view = call(&state, "GET", &format!("/leads/{lead}"), "").await;
    assert_eq!(view.status, 200, "{}", view.text);
    let shown: Vec<(String, u64)> = view.json["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["external_id"].as_str().unwrap().into(),
                r["rating"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, vec![("m-1".to_string(), 2)]);
    // New review changes go to the shards; the sum with the old item stays exact.
    post_review(
        &review_state,
        json!({"platform": "google", "external_id": "m-1", "deleted": true}),
    )
    .await;
    let agg = store
        .review_aggregate(leadflow::model::ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(
        (agg.count, agg.rating_sum, agg.distribution),
        (1, 3, [0, 0, 1, 0, 0])
    );
}

#[tokio::test]
async fn an_updated_and_a_deleted_review_show_as_they_are_now() {
    let store = fresh_store().await;
    let review_state = reviews(store.clone());
    let state = api(store.clone());
    let lead = ingest(&store, "r", "ada@example.com", Utc::now(), "google").await;
    let review = |id: &str, rating: u8| {
        json!({"platform": "google", "external_id": id, "rating": rating, "email": "ada@example.com",
               "title": "t", "text": "x", "published_at": "2026-05-01T10:00:00Z"})
    };
    for body in [
        review("g-1", 4),
        review("g-2", 5),
        review("g-1", 2),
        json!({"platform": "google", "external_id": "g-2", "deleted": true}),
        json!({"platform": "trustpilot", "external_id": "t-1", "rating": 5, "published_at": "2026-05-02T10:00:00Z"}),
    ] {
        let a = post_review(&review_state, body).await;
        assert!(a.status < 300, "{}", a.text);
    }
    let view = call(&state, "GET", &format!("/leads/{lead}"), "").await;
    assert_eq!(view.status, 200, "{}", view.text);
    let shown = &view.json["reviews"];
    assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown[0]["external_id"], "g-1");
    assert_eq!(shown[0]["rating"], 2, "the current rating, not the first");

    let before = store.round_trips();
    let aggs = call(&state, "GET", "/reviews/aggregates", "").await;
    assert_eq!(store.round_trips() - before, 1);
    assert_eq!(aggs.status, 200, "{}", aggs.text);
    let platform = |p: &str| {
        aggs.json["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["platform"] == p)
            .unwrap()
            .clone()
    };
    let google = platform("google");
    assert_eq!(google["count"], 1);
    assert_eq!(google["average"], 2.0);
    assert_eq!(
        google["distribution"],
        json!({"1": 0, "2": 1, "3": 0, "4": 0, "5": 0})
    );
    assert_eq!(platform("trustpilot")["count"], 1);
    assert_eq!(platform("yelp")["count"], 0);
    assert!(platform("yelp")["average"].is_null());
}

#[tokio::test]
async fn a_400_day_metrics_read_takes_at_most_15_round_trips() {
    let store = fresh_store().await;
    let state = api(store.clone());
    // A lead and spend on days spread over 400 days, rolled up.
    let first = Utc.with_ymd_and_hms(2025, 10, 28, 12, 0, 0).unwrap();
    for d in (0..400).step_by(9) {
        let at = first + Duration::days(d);
        ingest(
            &store,
            &format!("m-{d}"),
            &format!("m{d}@example.com"),
            at,
            "google",
        )
        .await;
    }
    let last = first + Duration::days(399);
    let (from, to) = (
        first.format("%Y-%m-%d").to_string(),
        last.format("%Y-%m-%d").to_string(),
    );
    let summary = rollup(&store, json!({"from": from, "to": to})).await;
    assert_eq!(summary["failed"], json!([]));
    // This range spans 15 calendar months (October 2025 to December 2026), the most 400
    // days can span.
    let before = store.round_trips();
    let m = call(
        &state,
        "GET",
        "/metrics",
        &format!("from={from}&to={to}&group_by=day"),
    )
    .await;
    let trips = store.round_trips() - before;
    assert_eq!(m.status, 200, "{}", m.text);
    assert!(trips <= 15, "{trips} round trips");
    assert_eq!(m.json["totals"]["new_leads"], 45);
    assert_eq!(m.json["rows"].as_array().unwrap().len(), 45);
    let worst: Vec<String> = {
        let from = chrono::NaiveDate::from_ymd_opt(2025, 1, 31).unwrap();
        from.iter_days().take(400).map(|d| d.to_string()).collect()
    };
    let before = store.round_trips();
    store.rollups_between(&worst).await.unwrap();
    assert_eq!(store.round_trips() - before, 15);
}

#[tokio::test]
async fn spend_is_validated_and_summed_per_currency() {
    let store = fresh_store().await;
    let state = api(store.clone());
    let spend = |amount: Value, currency: &str| {
        json!({"date": "2026-10-01", "source": "google", "channel": "paid_search",
               "campaign": "brand", "amount": amount, "currency": currency})
    };
    for (body, field) in [
        (spend(json!(-1), "USD"), "amount"),
        (spend(json!(1e300), "USD"), "amount"),
        (spend(json!("12.1234567"), "USD"), "amount"),
        (spend(json!("1,5"), "USD"), "amount"),
        (spend(json!(true), "USD"), "amount"),
        (spend(json!(1), "US"), "currency"),
        (spend(json!(1), "ÜSD"), "currency"),
    ] {
        let a = call_with(&state, "POST", "/spend", "", Some(body)).await;
        assert_eq!(
            (a.status, a.json["error"]["field"].as_str()),
            (422, Some(field)),
            "{}",
            a.text
        );
    }
    for (amount, currency) in [
        (json!(40.5), "USD"),
        (json!("30.25"), "eur"),
        (json!(9.5), "USD"),
    ] {
        let a = call_with(&state, "POST", "/spend", "", Some(spend(amount, currency))).await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    ingest(
        &store,
        "s",
        "s@example.com",
        Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap(),
        "google",
    )
    .await;
    rollup(&store, json!({"from": "2026-10-01", "to": "2026-10-01"})).await;
    let m = call(
        &state,
        "GET",
        "/metrics",
        "from=2026-10-01&to=2026-10-01&group_by=source",
    )
    .await;
    let totals = &m.json["totals"];
    assert_eq!(
        totals["spend_by_currency"],
        json!({"EUR": 30.25, "USD": 9.5}),
        "{totals}"
    );
    assert_eq!(
        totals["currency"],
        Value::Null,
        "two currencies are never added"
    );
    assert_eq!(totals["spend"], 0.0);
}

fn mocked_store(rules: &[&Rule]) -> Store {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for r in rules {
        interceptor = interceptor.with_rule(r);
    }
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Store::from_client(Client::from_conf(conf), "mocked")
}

fn queries_day(req: &QueryInput, day: &str) -> bool {
    req.expression_attribute_values()
        .into_iter()
        .flatten()
        .any(|(_, v)| v.as_s().is_ok_and(|s| s.contains(day)))
}

#[tokio::test]
async fn one_failing_day_does_not_stop_the_others_and_only_transient_errors_are_retried() {
    // Day 2 fails for good (a ValidationException), day 3 is throttled every time; days 1
    // and 4 are empty and fine.
    let index = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
    let broken = mock!(Client::query)
        .match_requests(|r| queries_day(r, "2026-10-02"))
        .then_error(|| {
            QueryError::generic(
                ErrorMetadata::builder()
                    .code("ValidationException")
                    .message("bad")
                    .build(),
            )
        });
    let throttled = mock!(Client::query)
        .match_requests(|r| queries_day(r, "2026-10-03"))
        .then_error(|| {
            QueryError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("slow down")
                    .build(),
            )
        });
    let empty = mock!(Client::query).then_output(|| QueryOutput::builder().build());
    let store = mocked_store(&[&index, &broken, &throttled, &empty]);
    let state = RollupState::from_lookup(store, |_| None).unwrap();
    let summary = metrics_rollup::handler(
        &state,
        json_event(json!({"from": "2026-10-01", "to": "2026-10-04"})),
    )
    .await
    .unwrap();
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{summary}");
    assert_eq!(
        (&failed[0]["day"], &failed[0]["transient"]),
        (&json!("2026-10-02"), &json!(false))
    );
    assert_eq!(
        (&failed[1]["day"], &failed[1]["transient"]),
        (&json!("2026-10-03"), &json!(true))
    );
    assert_eq!(broken.num_calls(), 1, "a permanent error is not retried");
    assert!(
        throttled.num_calls() > 3,
        "a transient one is: {}",
        throttled.num_calls()
    );
    // Days 1 and 4 were recomputed (gsi1 before a backfill): leads, touches, spend and the
    // day's existing rows (2 Queries), each.
    assert!(empty.num_calls() >= 6, "{}", empty.num_calls());
}
