//! lead-api and metrics-rollup end to end on the local DynamoDB: a seeded month reconciled
//! against an independent count, reruns that change nothing, backfill, erasure, every error
//! path (the dashboard has its own tests: tests/dashboard.rs).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use integration_tests::{fresh_store, json_event, lambda_event, Answer, EventBuilder};
use lead_api::{handler, ApiState};
use leadflow::metrics::{GroupKey, RollupCounts};
use leadflow::model::{ContactInput, DeliveryKey, Stage, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::Store;
use metrics_rollup::RollupState;
use serde_json::{json, Value};

const KEY: &str = "test-api-key";
const DASHBOARD_KEY: &str = "test-dashboard-key";

fn api(store: Store) -> ApiState {
    ApiState::from_lookup(store, |k| {
        (k == "LEAD_API_KEYS")
            .then(|| format!("old-key,{KEY}:read+write+erase,{DASHBOARD_KEY}:dashboard"))
    })
    .unwrap()
}

async fn call(
    state: &ApiState,
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
    send(state, ev).await
}

/// Sends a request as API Gateway routes it to lead-api (no `{provider}` path parameter).
async fn send(state: &ApiState, ev: EventBuilder) -> Answer {
    let mut event = ev.build();
    event.path_parameters.clear();
    handler(state, lambda_event(event)).await.unwrap().into()
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

fn oct(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, day, hour, 0, 0).unwrap()
}

async fn ingest(
    store: &Store,
    i: usize,
    email: &str,
    at: DateTime<Utc>,
    source: &str,
    medium: &str,
    campaign: &str,
) -> String {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(format!("seed-{i}")),
        TouchKind::FormSubmission,
        at,
    );
    s.contact = ContactInput {
        email: Some(email.into()),
        ..Default::default()
    };
    s.attribution.utm_source = Some(source.into());
    s.attribution.utm_medium = Some(medium.into());
    s.attribution.utm_campaign = Some(campaign.into());
    if i.is_multiple_of(11) {
        s.is_test = true;
    }
    let n = normalize(s, &NormalizeConfig::default()).unwrap();
    store.ingest(&n, at).await.unwrap().lead_id
}

/// A month of leads from three sources, returning visitors, sales events and spend.
async fn seed_month(store: &Store, state: &ApiState) -> Vec<String> {
    let sources = [
        ("google", "cpc", "brand"),
        ("facebook", "paid_social", "retarget"),
        ("newsletter", "email", "nov"),
    ];
    let mut ids = Vec::new();
    for i in 0..45usize {
        let (src, med, camp) = sources[i % 3];
        let at = oct(1 + (i as u32 % 28), 9 + (i as u32 % 8));
        let id = ingest(store, i, &format!("p{i}@example.com"), at, src, med, camp).await;
        // A third of the people come back a few days later (a submission, not a new lead).
        if i.is_multiple_of(3) {
            ingest(
                store,
                1000 + i,
                &format!("p{i}@example.com"),
                at + Duration::days(2),
                "google",
                "organic",
                "(none)",
            )
            .await;
        }
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate() {
        let at = |h: i64| (oct(28, 0) + Duration::hours(h)).to_rfc3339();
        if n.is_multiple_of(2) {
            let a = call(
                state,
                "POST",
                &format!("/leads/{id}/events"),
                "",
                Some(json!({"event_id": format!("c{n}"), "type": "contacted", "at": at(n as i64)})),
            )
            .await;
            assert_eq!(a.status, 201, "{}", a.text);
        }
        if n.is_multiple_of(4) {
            call(
                state,
                "POST",
                &format!("/leads/{id}/events"),
                "",
                Some(json!({"event_id": format!("s{n}"), "type": "sql"})),
            )
            .await;
        }
        if n.is_multiple_of(8) {
            call(
                state,
                "POST",
                &format!("/leads/{id}/events"),
                "",
                Some(json!({"event_id": format!("w{n}"), "type": "won", "value": 1200})),
            )
            .await;
        }
    }
    for day in 1..=28 {
        let a = call(state, "POST", "/spend", "", Some(json!({"date": format!("2026-10-{day:02}"), "source": "google", "channel": "paid_search", "campaign": "brand", "amount": 40.5, "currency": "USD"}))).await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // Posting a day's spend again replaces it.
    call(state, "POST", "/spend", "", Some(json!({"date": "2026-10-01", "source": "google", "channel": "paid_search", "campaign": "brand", "amount": 50}))).await;
    ids
}

/// The independent count: every lead and touchpoint read by a scan, grouped by hand.
async fn independent_count(store: &Store) -> BTreeMap<GroupKey, (u64, u64, u64, u64, u64)> {
    let mut out: BTreeMap<GroupKey, (u64, u64, u64, u64, u64)> = BTreeMap::new();
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
            e.3 += u64::from(lead.stage >= Stage::Sql);
            e.4 += u64::from(lead.stage >= Stage::Customer);
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

fn october() -> Vec<String> {
    (1..=31).map(|d| format!("2026-10-{d:02}")).collect()
}

#[tokio::test]
async fn a_seeded_month_reconciles_and_reruns_change_nothing() {
    let store = fresh_store().await;
    let state = api(store.clone());
    let ids = seed_month(&store, &state).await;

    let summary = rollup(&store, json!({"from": "2026-10-01", "to": "2026-10-31"})).await;
    assert_eq!(summary["days"], 31);
    let stored: Vec<(GroupKey, RollupCounts)> = store.rollups_between(&october()).await.unwrap();
    let expected = independent_count(&store).await;
    let mut seen = 0;
    for (k, c) in &stored {
        if c.new_leads == 0 && c.submissions == 0 {
            continue; // spend-only row
        }
        let e = expected
            .get(k)
            .unwrap_or_else(|| panic!("unexpected group {k:?}"));
        assert_eq!(
            (c.new_leads, c.submissions, c.mqls, c.sqls, c.customers),
            *e,
            "{k:?}"
        );
        seen += 1;
    }
    assert_eq!(
        seen,
        expected.len(),
        "every group of the scan has a rollup row"
    );
    let spend: i64 = stored
        .iter()
        .map(|(_, c)| c.spend_micros.get("USD").copied().unwrap_or(0))
        .sum();
    assert_eq!(
        spend,
        27 * 40_500_000 + 50_000_000,
        "spend replaced, not added"
    );

    // Running it again, or overlapping with the late-data window, changes nothing.
    rollup(&store, json!({"from": "2026-10-01", "to": "2026-10-31"})).await;
    rollup(&store, json!({"from": "2026-10-10", "to": "2026-10-20"})).await;
    assert_eq!(store.rollups_between(&october()).await.unwrap(), stored);

    // The API reports the same totals, grouped any way.
    let m = call(
        &state,
        "GET",
        "/metrics",
        "from=2026-10-01&to=2026-10-31&group_by=source",
        None,
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text);
    let non_test = ids.len()
        - ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i.is_multiple_of(11))
            .count();
    assert_eq!(m.json["totals"]["new_leads"], non_test as u64);
    let sum: u64 = m.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["new_leads"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, non_test as u64);
    let google = m.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "google")
        .unwrap();
    assert!(google["cpl"].as_f64().unwrap() > 0.0);
    assert!(m.json["totals"]["ttft_p50_minutes"].as_u64().is_some());
    assert_eq!(
        m.json["conversion_rate"],
        "cohort: customers among the new leads of the period"
    );
}

#[tokio::test]
async fn backfill_of_a_past_range_and_erasure_keep_metrics_exact() {
    let store = fresh_store().await;
    let state = api(store.clone());
    let a = ingest(
        &store,
        1,
        "erase.me@example.com",
        oct(3, 10),
        "google",
        "cpc",
        "brand",
    )
    .await;
    ingest(
        &store,
        2,
        "keep@example.com",
        oct(3, 11),
        "google",
        "cpc",
        "brand",
    )
    .await;
    assert_eq!(store.rollups_between(&october()).await.unwrap().len(), 0);
    rollup(&store, json!({"from": "2026-10-01", "to": "2026-10-05"})).await;
    let before = store.rollups_between(&october()).await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].1.new_leads, 2);

    let erased = call(&state, "DELETE", &format!("/leads/{a}"), "", None).await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    // The person is unfindable...
    assert_eq!(
        call(&state, "GET", &format!("/leads/{a}"), "", None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&state, "GET", "/leads", "email=erase.me@example.com", None)
            .await
            .status,
        404
    );
    // ...the metrics are intact after a recompute...
    rollup(&store, json!({"from": "2026-10-01", "to": "2026-10-05"})).await;
    assert_eq!(store.rollups_between(&october()).await.unwrap(), before);
    // ...and the same email is a new person now.
    let again = ingest(
        &store,
        3,
        "erase.me@example.com",
        oct(4, 10),
        "google",
        "cpc",
        "brand",
    )
    .await;
    assert_ne!(again, a);
    // Erasing twice is fine; erasing nobody is 404.
    assert_eq!(
        call(&state, "DELETE", &format!("/leads/{a}"), "", None)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&state, "DELETE", "/leads/nobody", "", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn leads_by_id_email_phone_and_sales_events() {
    let store = fresh_store().await;
    let state = api(store.clone());
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform("x1".into()),
        TouchKind::FormSubmission,
        Utc::now(),
    );
    s.contact = ContactInput {
        email: Some("Sales@Example.com".into()),
        phone: Some("+1 415 555 0142".into()),
        ..Default::default()
    };
    let id = store
        .ingest(
            &normalize(s, &NormalizeConfig::default()).unwrap(),
            Utc::now(),
        )
        .await
        .unwrap()
        .lead_id;

    let by_id = call(&state, "GET", &format!("/leads/{id}"), "", None).await;
    assert_eq!(by_id.status, 200);
    for field in [
        "lead_id",
        "email",
        "phone",
        "score",
        "temperature",
        "stage",
        "referral_count",
        "touchpoints",
        "reviews",
    ] {
        assert!(
            by_id.json.get(field).is_some(),
            "contract field {field} missing"
        );
    }
    assert_eq!(by_id.json["touchpoints"].as_array().unwrap().len(), 1);
    assert_eq!(
        call(&state, "GET", "/leads", "email=sales%40example.com", None)
            .await
            .json["lead_id"],
        id.as_str()
    );
    assert_eq!(
        call(&state, "GET", "/leads", "phone=(415)%20555-0142", None)
            .await
            .json["lead_id"],
        id.as_str()
    );

    let won = call(
        &state,
        "POST",
        &format!("/leads/{id}/events"),
        "",
        Some(json!({"event_id": "deal-7", "type": "won", "value": 990})),
    )
    .await;
    assert_eq!(
        (won.status, won.json["stage"].as_str()),
        (201, Some("customer"))
    );
    let again = call(
        &state,
        "POST",
        &format!("/leads/{id}/events"),
        "",
        Some(json!({"event_id": "deal-7", "type": "won", "value": 990})),
    )
    .await;
    assert_eq!(again.json["status"], "duplicate");
    // A value DynamoDB cannot store (beyond 1e126, or a magnitude below 1e-130) was a 500
    // storage_rejected (found by scripts/api-contract): refused as the caller's 422 now, and
    // the deal keeps its value.
    for (n, value) in [json!(1e308), json!(1e126), json!(5e-324), json!(1e-200)]
        .into_iter()
        .enumerate()
    {
        let refused = call(
            &state,
            "POST",
            &format!("/leads/{id}/events"),
            "",
            Some(json!({"event_id": format!("huge-{n}"), "type": "won", "value": value})),
        )
        .await;
        assert_eq!(refused.status, 422, "{value}: {}", refused.text);
        assert_eq!(refused.json["error"]["code"], "invalid_value");
        assert_eq!(refused.json["error"]["field"], "value");
    }
    let edge = call(
        &state,
        "POST",
        &format!("/leads/{id}/events"),
        "",
        Some(json!({"event_id": "deal-8", "type": "won", "value": 1e15})),
    )
    .await;
    assert_eq!(edge.status, 201, "{:?}", edge.json);
    // Stages only move forward.
    let sql = call(
        &state,
        "POST",
        &format!("/leads/{id}/events"),
        "",
        Some(json!({"event_id": "late-sql", "type": "sql"})),
    )
    .await;
    assert_eq!(sql.json["stage"], "customer");
    let unsub = call(
        &state,
        "POST",
        &format!("/leads/{id}/events"),
        "",
        Some(json!({"event_id": "u1", "type": "unsubscribe", "channels": ["email"]})),
    )
    .await;
    assert_eq!(unsub.status, 201);
    let lead = call(&state, "GET", &format!("/leads/{id}"), "", None)
        .await
        .json;
    assert_eq!(lead["sales"]["do_not_contact"], json!(["email"]));
    assert_eq!(lead["consent"]["marketing_opt_in"], false);
}

#[tokio::test]
async fn every_error_path_is_a_documented_json_error() {
    let store = fresh_store().await;
    let state = api(store.clone());
    let check = |a: &Answer, status: u16, code: &str| {
        assert_eq!(a.status, status, "{}", a.text);
        assert_eq!(a.json["error"]["code"], code, "{}", a.text);
        assert!(a.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    };
    let no_key = send(&state, EventBuilder::new("GET", "/leads/x")).await;
    check(&no_key, 401, "missing_api_key");
    let bad_key = send(
        &state,
        EventBuilder::new("GET", "/leads/x").header("x-api-key", "nope"),
    )
    .await;
    check(&bad_key, 401, "invalid_api_key");
    // Scopes: a dashboard key cannot erase or read, a bare key cannot erase, and a key that can
    // do more than show the dashboard is refused in the query string.
    let lead = ingest(
        &store,
        900,
        "scoped@example.com",
        oct(5, 9),
        "google",
        "cpc",
        "brand",
    )
    .await;
    for (key, method, path) in [
        (DASHBOARD_KEY, "DELETE", format!("/leads/{lead}")),
        ("old-key", "DELETE", format!("/leads/{lead}")),
        (DASHBOARD_KEY, "GET", format!("/leads/{lead}")),
    ] {
        let a = send(
            &state,
            EventBuilder::new(method, &path).header("x-api-key", key),
        )
        .await;
        check(&a, 403, "insufficient_scope");
    }
    for key in [KEY, "old-key"] {
        let a = send(
            &state,
            EventBuilder::new("GET", "/dashboard").query(&format!("key={key}")),
        )
        .await;
        check(&a, 403, "api_key_in_query");
    }
    assert_eq!(
        call(&state, "GET", &format!("/leads/{lead}"), "", None)
            .await
            .status,
        200,
        "still there"
    );
    check(
        &call(&state, "GET", "/leads/missing", "", None).await,
        404,
        "lead_not_found",
    );
    check(
        &call(&state, "GET", "/leads", "", None).await,
        400,
        "missing_query",
    );
    check(
        &call(&state, "GET", "/leads", "email=nope", None).await,
        422,
        "invalid_email",
    );
    check(
        &call(&state, "PUT", "/leads/x", "", None).await,
        405,
        "method_not_allowed",
    );
    check(
        &call(&state, "GET", "/nowhere", "", None).await,
        404,
        "route_not_found",
    );
    // Paging is checked before the lookup: the same 422 whether or not someone matches.
    for query in [
        "email=nobody%40example.com&limit=0",
        "phone=%2B14155550100&cursor=nope",
    ] {
        let a = call(&state, "GET", "/leads", query, None).await;
        check(
            &a,
            422,
            if query.contains("limit") {
                "invalid_value"
            } else {
                "invalid_cursor"
            },
        );
    }
    check(
        &call(
            &state,
            "POST",
            "/leads/x/events",
            "",
            Some(json!({"type": "won"})),
        )
        .await,
        422,
        "missing_field",
    );
    check(
        &call(
            &state,
            "POST",
            "/leads/x/events",
            "",
            Some(json!({"event_id": "1", "type": "maybe"})),
        )
        .await,
        422,
        "invalid_value",
    );
    check(
        &call(
            &state,
            "POST",
            "/leads/x/events",
            "",
            Some(json!({"event_id": "1", "type": "sql"})),
        )
        .await,
        404,
        "lead_not_found",
    );
    let bad_json = send(
        &state,
        EventBuilder::new("POST", "/spend")
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .text_body("{"),
    )
    .await;
    check(&bad_json, 400, "invalid_json");
    let spend = call(
        &state,
        "POST",
        "/spend",
        "",
        Some(json!({"date": "2026-13-01", "source": "g", "amount": 1})),
    )
    .await;
    check(&spend, 422, "invalid_value");
    assert_eq!(spend.json["error"]["field"], "date");
    check(
        &call(
            &state,
            "POST",
            "/spend",
            "",
            Some(json!({"date": "2026-10-01", "source": "g", "amount": -1})),
        )
        .await,
        422,
        "invalid_value",
    );
    check(
        &call(&state, "GET", "/metrics", "group_by=planet", None).await,
        422,
        "invalid_value",
    );
    check(
        &call(
            &state,
            "GET",
            "/metrics",
            "from=2026-10-05&to=2026-10-01",
            None,
        )
        .await,
        422,
        "invalid_range",
    );
}

/// A lead posted through `cargo lambda watch` (its `timeEpoch` in seconds) is today's: the
/// rollup of today counts it and `GET /metrics` for today reports it.
#[tokio::test]
async fn a_lead_stamped_in_seconds_counts_in_todays_metrics() {
    let store = fresh_store().await;
    let forms = form_webhook::AppState::from_lookup(store.clone(), |k| {
        (k == "DEFAULT_COUNTRY").then(|| "US".to_string())
    })
    .unwrap();
    let now = Utc::now();
    let mut ev = EventBuilder::new("POST", "/webhooks/form")
        .header("accept", "application/json")
        .json(&json!({"email": "today@example.com", "utm_source": "google", "utm_medium": "cpc"}))
        .build();
    ev.request_context.time_epoch = now.timestamp();
    let posted: Answer = form_webhook::handler(&forms, lambda_event(ev))
        .await
        .unwrap()
        .into();
    assert_eq!(posted.status, 201, "{}", posted.text);

    rollup(&store, json!({"mode": "today"})).await;
    let today = now.format("%Y-%m-%d").to_string();
    let m = call(
        &api(store),
        "GET",
        "/metrics",
        &format!("from={today}&to={today}&group_by=day"),
        None,
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(m.json["totals"]["new_leads"], 1, "{}", m.text);
}
