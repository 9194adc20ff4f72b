//! The reporting time zone (`REPORT_TIME_ZONE`) end to end on the local DynamoDB: a lead posted
//! at 23:30 in Los Angeles counts on that local day in the rollup, `/metrics` and the
//! dashboard (and on the next day without the zone), around both DST changes; a zone that is
//! not a zone refuses to start; and changing the zone is a resumable backfill after which the
//! rollup counts as if the leads had been stored in the new zone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use integration_tests::{fresh_store, json_event, lambda_event, Answer, EventBuilder};
use leadflow::model::{ContactInput, DeliveryKey, Submission, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::report_zone::ReportZone;
use leadflow::store::Store;
use leadflow_tools::backfill;
use serde_json::{json, Value};

const KEY: &str = "test-api-key";
const LA: &str = "America/Los_Angeles";

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// The variables of a function configured with `zone` (`None`: unset, UTC).
fn env(zone: Option<&str>) -> impl Fn(&str) -> Option<String> + '_ {
    move |k| match k {
        "REPORT_TIME_ZONE" => zone.map(str::to_string),
        "LEAD_API_KEYS" => Some(format!("{KEY}:read+write+dashboard")),
        "DEFAULT_COUNTRY" => Some("US".into()),
        _ => None,
    }
}

async fn rollup(store: &Store, zone: Option<&str>, from: &str, to: &str) -> Value {
    let state = metrics_rollup::RollupState::from_lookup(store.clone(), env(zone)).unwrap();
    metrics_rollup::handler(&state, json_event(json!({"from": from, "to": to})))
        .await
        .unwrap()
}

/// `GET <path>?<query>` on lead-api configured with `zone`, received at `now`.
async fn get(
    store: &Store,
    zone: Option<&str>,
    path: &str,
    query: &str,
    now: DateTime<Utc>,
) -> Answer {
    let state = lead_api::ApiState::from_lookup(store.clone(), env(zone)).unwrap();
    let mut event = EventBuilder::new("GET", path)
        .header("x-api-key", KEY)
        .query(query)
        .build();
    event.path_parameters.clear();
    event.request_context.time_epoch = now.timestamp_millis();
    lead_api::handler(&state, lambda_event(event))
        .await
        .unwrap()
        .into()
}

/// New leads per reporting day of `/metrics` over `from..=to` (days without any left out).
async fn leads_per_day(
    store: &Store,
    zone: Option<&str>,
    from: &str,
    to: &str,
) -> BTreeMap<String, (u64, u64)> {
    let m = get(
        store,
        zone,
        "/metrics",
        &format!("from={from}&to={to}&group_by=day"),
        Utc::now(),
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(m.json["time_zone"], zone.unwrap_or("UTC"), "{}", m.text);
    m.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                (
                    r["new_leads"].as_u64().unwrap(),
                    r["submissions"].as_u64().unwrap(),
                ),
            )
        })
        .filter(|(_, (leads, subs))| leads + subs > 0)
        .collect()
}

/// Posts the web form as a browser would, API Gateway receiving it at `at`.
async fn post_form(store: &Store, zone: Option<&str>, email: &str, at: DateTime<Utc>) -> String {
    let forms = form_webhook::AppState::from_lookup(store.clone(), env(zone)).unwrap();
    let mut ev = EventBuilder::new("POST", "/webhooks/form")
        .header("accept", "application/json")
        .json(&json!({"email": email, "utm_source": "google", "utm_medium": "cpc"}))
        .build();
    ev.request_context.time_epoch = at.timestamp_millis();
    let posted: Answer = form_webhook::handler(&forms, lambda_event(ev))
        .await
        .unwrap()
        .into();
    assert_eq!(posted.status, 201, "{}", posted.text);
    posted.json["lead_id"].as_str().unwrap().to_string()
}

/// A submission of `email` at `at` stored through `store` (its zone files it).
async fn ingest(store: &Store, i: usize, email: &str, at: DateTime<Utc>) -> String {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(format!("zone-{i}")),
        TouchKind::FormSubmission,
        at,
    );
    s.contact = ContactInput {
        email: Some(email.into()),
        ..Default::default()
    };
    s.attribution.utm_source = Some("google".into());
    s.attribution.utm_medium = Some("cpc".into());
    let n = normalize(s, &NormalizeConfig::default()).unwrap();
    store.ingest(&n, at).await.unwrap().lead_id
}

fn days(pairs: &[(&str, (u64, u64))]) -> BTreeMap<String, (u64, u64)> {
    pairs.iter().map(|(d, c)| (d.to_string(), *c)).collect()
}

#[tokio::test]
async fn a_lead_posted_at_2330_in_los_angeles_counts_on_that_local_day() {
    // 23:30 PST on Sunday 29 November 2026 is 07:30 UTC on Monday the 30th.
    let evening = at("2026-11-30T07:30:00Z");
    for (zone, day) in [(Some(LA), "2026-11-29"), (None, "2026-11-30")] {
        let store = fresh_store().await;
        let lead_id = post_form(&store, zone, "evening@example.com", evening).await;
        let item = integration_tests::lead_item(&store, &lead_id).await;
        assert_eq!(
            item["gsi1pk"].as_s().unwrap(),
            &format!("LEADS#{day}"),
            "{zone:?}"
        );

        let summary = rollup(&store, zone, "2026-11-28", "2026-12-01").await;
        assert_eq!(summary["zone"], zone.unwrap_or("UTC"));
        assert!(
            summary["failed"].as_array().unwrap().is_empty(),
            "{summary}"
        );
        let rows = store
            .rollups_between(&["2026-11-29".into(), "2026-11-30".into()])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].0.day.as_str(), rows[0].1.new_leads), (day, 1));

        assert_eq!(
            leads_per_day(&store, zone, "2026-11-28", "2026-12-01").await,
            days(&[(day, (1, 1))]),
            "{zone:?}"
        );
        // The day alone, as a marketer asks for "yesterday evening's" leads.
        let m = get(
            &store,
            zone,
            "/metrics",
            &format!("from={day}&to={day}"),
            Utc::now(),
        )
        .await;
        assert_eq!(m.json["totals"]["new_leads"], 1, "{}", m.text);

        // The dashboard opened a quarter of an hour later: today is the local day, its
        // default range ends on it, and the times show the local clock.
        let page = get(&store, zone, "/dashboard", "", at("2026-11-30T07:45:00Z")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let (range, generated) = match zone {
            Some(_) => (
                "<title>Leads 2026-10-31 to 2026-11-29",
                "Generated 2026-11-29 23:45 PST",
            ),
            None => (
                "<title>Leads 2026-11-01 to 2026-11-30",
                "Generated 2026-11-30 07:45 UTC",
            ),
        };
        assert!(page.text.contains(range), "{}", &page.text[..600]);
        assert!(page.text.contains(generated), "{}", &page.text[..600]);
        assert!(page.text.contains(zone.unwrap_or("UTC")));
    }
}

#[tokio::test]
async fn days_hold_around_both_daylight_saving_changes() {
    // (instant, its day in Los Angeles, its day in UTC)
    let moments = [
        ("2026-03-08T07:30:00Z", "2026-03-07", "2026-03-08"), // 23:30 PST, the night before
        ("2026-03-08T10:30:00Z", "2026-03-08", "2026-03-08"), // 03:30 PDT, just after the jump
        ("2026-03-09T06:30:00Z", "2026-03-08", "2026-03-09"), // 23:30 PDT, a 23-hour day's end
        ("2026-11-01T06:30:00Z", "2026-10-31", "2026-11-01"), // 23:30 PDT, the night before
        ("2026-11-01T08:30:00Z", "2026-11-01", "2026-11-01"), // 01:30 PDT
        ("2026-11-01T09:30:00Z", "2026-11-01", "2026-11-01"), // 01:30 PST, the hour again
        ("2026-11-02T07:30:00Z", "2026-11-01", "2026-11-02"), // 23:30 PST, a 25-hour day's end
    ];
    for zone in [Some(LA), None] {
        let parsed = ReportZone::from_lookup(env(zone)).unwrap();
        let store = fresh_store().await.with_report_zone(parsed);
        let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (i, (t, la_day, utc_day)) in moments.iter().enumerate() {
            let day = if zone.is_some() { la_day } else { utc_day };
            // A new person each time, and the first of them back at each moment: a touch.
            ingest(&store, i, &format!("dst{i}@example.com"), at(t)).await;
            let e = want.entry(day.to_string()).or_default();
            e.0 += 1;
            e.1 += 1;
            if i > 0 {
                ingest(&store, 100 + i, "dst0@example.com", at(t)).await;
                want.entry(day.to_string()).or_default().1 += 1;
            }
        }
        rollup(&store, zone, "2026-03-06", "2026-03-10").await;
        rollup(&store, zone, "2026-10-30", "2026-11-03").await;
        let mut got = leads_per_day(&store, zone, "2026-03-06", "2026-03-10").await;
        got.extend(leads_per_day(&store, zone, "2026-10-30", "2026-11-03").await);
        assert_eq!(got, want, "{zone:?}");
        // Independently of the day index: what a scan of the table finds on each day.
        for (day, (leads, subs)) in &want {
            assert_eq!(
                store.leads_created_on(day).await.unwrap().len() as u64,
                *leads
            );
            assert_eq!(store.touches_on(day).await.unwrap().len() as u64, *subs);
        }
    }
}

#[tokio::test]
async fn a_zone_that_is_not_a_zone_refuses_to_start() {
    let store = fresh_store().await;
    let bad = |k: &str| match k {
        "REPORT_TIME_ZONE" => Some("America/Los_Angles".to_string()),
        "IMPORT_QUEUE_URL" => Some("http://127.0.0.1:9/queue".to_string()),
        _ => None,
    };
    let sdk = integration_tests::sdk_config(&integration_tests::endpoint()).await;
    let errors = [
        form_webhook::AppState::from_lookup(store.clone(), bad).err(),
        lead_api::ApiState::from_lookup(store.clone(), bad).err(),
        referral_review::AppState::from_lookup(store.clone(), bad).err(),
        metrics_rollup::RollupState::from_lookup(store.clone(), bad).err(),
        lead_import::ImportState::from_lookup(
            store.clone(),
            aws_sdk_s3::Client::new(&sdk),
            aws_sdk_sqs::Client::new(&sdk),
            bad,
        )
        .err(),
        backfill::zone_from(bad).err(),
    ];
    for e in errors {
        let e = e.expect("refused");
        assert_eq!(
            e,
            "REPORT_TIME_ZONE: \"America/Los_Angles\" is not a time zone of the IANA database \
             (names look like America/Los_Angeles, Europe/Berlin, Asia/Kolkata or UTC)"
        );
    }
    // Unset and blank are UTC; a name in another case is the database's zone.
    assert_eq!(backfill::zone_from(|_| None).unwrap().0.name(), "UTC");
    assert_eq!(
        backfill::zone_from(|_| Some(" asia/kolkata ".into())).unwrap(),
        (ReportZone::parse("Asia/Kolkata").unwrap(), true)
    );
}

#[tokio::test]
async fn changing_the_zone_is_a_resumable_backfill() {
    let utc = fresh_store().await;
    let la = utc.clone().with_report_zone(ReportZone::parse(LA).unwrap());
    // Stored in UTC days.
    seed_week(&utc).await;
    let utc_days = leads_after_rollup(&utc, None).await;
    assert_eq!(utc_days["2026-10-01"], (3, 4), "{utc_days:?}");

    // The same leads stored by functions configured for Los Angeles: the reference.
    let reference = fresh_store()
        .await
        .with_report_zone(ReportZone::parse(LA).unwrap());
    seed_week(&reference).await;
    let want = leads_after_rollup(&reference, Some(LA)).await;
    assert_eq!(want["2026-09-30"], (2, 2), "{want:?}");
    assert_ne!(want, utc_days);

    // Before the backfill the table is in UTC days: the rollup in Los Angeles is wrong.
    assert_ne!(leads_after_rollup(&la, Some(LA)).await, want);

    // A dry run counts the items to move (the evening leads and their touches) and writes
    // nothing.
    let options = |max_pages, dry_run| backfill::Options {
        page_size: 10,
        max_pages,
        dry_run,
    };
    let dry = backfill::run(&la, true, options(None, true), Utc::now())
        .await
        .unwrap();
    let zone = dry.zone.unwrap();
    assert_eq!(
        (zone.from_zone.as_str(), zone.to_zone.as_str()),
        ("UTC", LA)
    );
    // 6 evening leads, their 6 touches, regular's 6 evening touches and regular's lead.
    assert_eq!(zone.rewritten, 19);
    assert_eq!(la.day_keys_zone().await.unwrap(), None);

    // Two pages at a time: interrupted runs resume from the checkpoint.
    let mut runs = 0;
    let last = loop {
        runs += 1;
        let out = backfill::run(&la, true, options(Some(2), false), Utc::now())
            .await
            .unwrap();
        // The day keys migration (nothing to write on a table this version wrote) pages
        // through the table first.
        let Some(zone) = out.zone else {
            continue;
        };
        if zone.done {
            break zone;
        }
        // Meanwhile the keys are a mix; an operator who forgot the variable is stopped.
        let e = backfill::run(&utc, false, options(None, false), Utc::now())
            .await
            .unwrap_err();
        assert!(
            e.contains("being moved from UTC to America/Los_Angeles"),
            "{e}"
        );
        assert!(runs < 50);
    };
    assert!(runs > 1, "resumed over several runs");
    // Every lead (12 people and regular) and touchpoint (24) examined.
    assert_eq!((last.rewritten, last.scanned), (19, 13 + 24));
    assert_eq!(
        la.day_keys_zone().await.unwrap().unwrap().settled(),
        Some(LA)
    );
    assert_eq!(leads_after_rollup(&la, Some(LA)).await, want);

    // Done: again is nothing (one read); without the variable it refuses rather than move
    // every key back to UTC days.
    let again = backfill::run(&la, true, options(None, false), Utc::now())
        .await
        .unwrap()
        .zone
        .unwrap();
    assert!(again.done && again.scanned == 0, "{again:?}");
    let e = backfill::run(&utc, false, options(None, false), Utc::now())
        .await
        .unwrap_err();
    assert!(
        e.contains("are America/Los_Angeles days") && e.contains("REPORT_TIME_ZONE is unset"),
        "{e}"
    );

    // And back to UTC, asked for by name.
    let back = backfill::run(&utc, true, options(None, false), Utc::now())
        .await
        .unwrap()
        .zone
        .unwrap();
    assert_eq!((back.from_zone.as_str(), back.rewritten), (LA, 19));
    assert_eq!(leads_after_rollup(&utc, None).await, utc_days);
}

/// The touchpoint item of a lead's partition (one touch).
async fn touch_item(
    store: &Store,
    lead_id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let items = store.lead_partition(lead_id).await.unwrap();
    items
        .into_iter()
        .find(|i| i["sk"].as_s().unwrap().starts_with("TP#"))
        .expect("a touchpoint")
}

/// A touchpoint stored before issue 21 also carried gsi1 day keys (`TOUCHES#<day>`); moving
/// the zone removes them (nothing reads them since the rollup reads gsi2) instead of
/// rewriting them, and the lead keeps its gsi1 key on the new local day (the call list).
#[tokio::test]
async fn rezoning_removes_a_touchpoints_old_gsi1_day_keys() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let utc = fresh_store().await;
    let lead_id = ingest(&utc, 1, "old@example.com", at("2026-10-01T06:30:00Z")).await;
    let touch = touch_item(&utc, &lead_id).await;
    assert!(
        !touch.contains_key("gsi1pk"),
        "new touchpoints have no gsi1 keys"
    );
    let (pk, sk) = (touch["pk"].as_s().unwrap(), touch["sk"].as_s().unwrap());
    let sort = touch["gsi2sk"].clone();
    utc.set_item_attribute(pk, sk, "gsi1pk", S("TOUCHES#2026-10-01".into()))
        .await
        .unwrap();
    utc.set_item_attribute(pk, sk, "gsi1sk", sort)
        .await
        .unwrap();

    let la = utc.clone().with_report_zone(ReportZone::parse(LA).unwrap());
    let options = backfill::Options {
        page_size: 10,
        max_pages: None,
        dry_run: false,
    };
    let zone = backfill::run(&la, true, options, Utc::now())
        .await
        .unwrap()
        .zone
        .unwrap();
    assert!(zone.done && zone.rewritten == 2, "{zone:?}");
    let touch = touch_item(&utc, &lead_id).await;
    assert!(
        !touch.contains_key("gsi1pk") && !touch.contains_key("gsi1sk"),
        "{touch:?}"
    );
    assert!(touch["gsi2pk"]
        .as_s()
        .unwrap()
        .starts_with("TOUCHES#2026-09-30#"));
    let lead = integration_tests::lead_item(&utc, &lead_id).await;
    assert_eq!(lead["gsi1pk"].as_s().unwrap(), "LEADS#2026-09-30");
}

/// Six days of evening leads in Los Angeles (06:30 UTC is 23:30 PDT the day before), daytime
/// ones (the same day in both zones) and a returning visitor at each of those moments.
async fn seed_week(store: &Store) {
    let mut n = 0;
    for day in 1..=6 {
        for (hour, who) in [("06:30", "evening"), ("19:00", "day")] {
            let t = at(&format!("2026-10-{day:02}T{hour}:00Z"));
            ingest(store, n, &format!("{who}{day}@example.com"), t).await;
            ingest(store, 1000 + n, "regular@example.com", t).await;
            n += 1;
        }
    }
}

/// Recomputes the rollups of 29 September to 7 October (the seeded week and the days around
/// it) in `zone` and reads them back per day.
async fn leads_after_rollup(store: &Store, zone: Option<&str>) -> BTreeMap<String, (u64, u64)> {
    rollup(store, zone, "2026-09-29", "2026-10-07").await;
    leads_per_day(store, zone, "2026-09-29", "2026-10-07").await
}
