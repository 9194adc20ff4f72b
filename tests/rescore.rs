//! rescore end to end: the handler, called as Lambda calls it, against DynamoDB Local and a
//! local EventBridge (moto_server, which DynamoDB Local is not): a rule on a per-test bus forwards
//! published events to an SQS queue the test reads back.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use integration_tests::{fresh_store, json_event, Events};
use lambda_runtime::{Context, LambdaEvent};
use leadflow::model::{ContactInput, DeliveryKey, Stage, Submission, Temperature, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::scoring::{Model, ScoringConfig};
use leadflow::store::{ScoreWrite, Store};
use rescore::{handler, Publisher, RescoreState};
use serde_json::{json, Value};

fn state(store: Store, publisher: Option<Publisher>, vars: &[(&str, &str)]) -> RescoreState {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    RescoreState::from_lookup(store, publisher, |k| vars.get(k).cloned()).unwrap()
}

async fn invoke(state: &RescoreState, payload: Value) -> Value {
    leadflow::telemetry::init_tracing();
    handler(state, json_event(payload)).await.unwrap()
}

fn scheduled() -> Value {
    json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
           "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
           "resources": [], "detail": {}})
}

struct Person<'a> {
    email: &'a str,
    title: Option<&'a str>,
    company: Option<&'a str>,
}

async fn touch(store: &Store, p: &Person<'_>, kind: TouchKind, at: DateTime<Utc>) -> String {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(leadflow::store::new_id()),
        kind,
        at,
    );
    s.contact = ContactInput {
        email: Some(p.email.into()),
        job_title: p.title.map(str::to_string),
        company: p.company.map(str::to_string),
        country: Some("US".into()),
        ..Default::default()
    };
    let n = normalize(s, &NormalizeConfig::default()).unwrap();
    store.ingest(&n, Utc::now()).await.unwrap().lead_id
}

/// Scores as the store has them, by lead id.
async fn scores(store: &Store) -> BTreeMap<String, (Option<u32>, Option<Temperature>, Stage)> {
    store
        .scan_leads()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.lead_id, (l.score, l.temperature, l.stage)))
        .collect()
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[tokio::test]
async fn only_changed_leads_are_written_and_tier_changes_are_published() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let now = Utc::now();
    let exec = |i: usize| format!("exec{i}@acme-{i}.com");
    let loud = |i: usize| format!("loud{i}@initech.com");
    let cold = |i: usize| format!("cold{i}@gmail.com");
    let mut ids = HashMap::new();
    for i in 0..6 {
        for (email, title, company, at) in [
            (exec(i), Some("CEO"), Some("Acme"), now),
            (loud(i), Some("CEO"), Some("Initech"), now),
            (cold(i), None, None, now - Duration::days(200)),
        ] {
            let p = Person {
                email: &email,
                title,
                company,
            };
            let id = touch(&store, &p, TouchKind::FormSubmission, at).await;
            ids.insert(email.clone(), id);
        }
    }
    let st = state(
        store.clone(),
        Some(events.publisher()),
        &[("SEGMENTS", "3"), ("PAGE_SIZE", "5")],
    );
    // First run: every lead gets (or keeps) its score; writes match changes exactly.
    let first = invoke(&st, scheduled()).await;
    assert_eq!(first["complete"], true, "{first}");
    assert_eq!(n(&first, "scanned"), 18, "{first}");
    assert_eq!(n(&first, "written"), n(&first, "changed"), "{first}");
    assert_eq!(n(&first, "errors"), 0, "{first}");
    let before = scores(&store).await;
    for i in 0..6 {
        // CEO 15 + company 6 + business email 10 + US 5 + form 15 = 51: warm, MQL.
        assert_eq!(
            before[&ids[&exec(i)]],
            (Some(51), Some(Temperature::Warm), Stage::Mql)
        );
        // Free mail -3, US +5, a form 200 days ago (15 * 0.5^(200/30) = 0.15): 2, cold.
        assert_eq!(
            before[&ids[&cold(i)]],
            (Some(2), Some(Temperature::Cold), Stage::Lead)
        );
    }
    events.drain().await;

    // The "loud" leads book a meeting (merged, not scored at ingest): +25 -> 76, hot. The exec
    // leads do nothing and the cold ones stay cold.
    for i in 0..6 {
        let p = Person {
            email: &loud(i),
            title: None,
            company: None,
        };
        touch(&store, &p, TouchKind::MeetingBooked, now).await;
    }
    let second = invoke(&st, scheduled()).await;
    assert_eq!(n(&second, "scanned"), 18, "{second}");
    assert_eq!(n(&second, "changed"), 6, "{second}");
    assert_eq!(n(&second, "written"), 6, "{second}");
    assert_eq!(n(&second, "conflicts"), 0, "{second}");
    assert_eq!(n(&second, "published"), 6, "{second}");
    let after = scores(&store).await;
    for (id, s) in &after {
        let loud_lead = (0..6).any(|i| &ids[&loud(i)] == id);
        if loud_lead {
            assert_eq!(*s, (Some(76), Some(Temperature::Hot), Stage::Mql));
        } else {
            assert_eq!(s, &before[id], "an unchanged lead was rewritten");
        }
    }
    let published = events.drain().await;
    assert_eq!(published.len(), 6);
    for e in &published {
        assert_eq!(e["source"], rescore::EVENT_SOURCE);
        assert_eq!(e["detail-type"], "lead.temperature_changed");
        assert_eq!(e["detail"]["old"], "warm");
        assert_eq!(e["detail"]["new"], "hot");
        assert_eq!(e["detail"]["score"], 76);
        assert_eq!(
            e["detail"]["reasons"][0]["rule"],
            "engagement_meeting_booked"
        );
        let lead_id = e["detail"]["lead_id"].as_str().unwrap();
        assert!((0..6).any(|i| ids[&loud(i)] == lead_id));
        // Lead ids and rule names only: no contact data leaves in events.
        assert!(!e.to_string().contains('@'));
    }
    let changes = store.score_changes(&ids[&loud(0)]).await.unwrap();
    let last = changes.last().unwrap();
    assert_eq!(
        (last.old_temperature, last.new_temperature, last.new_score),
        (Some(Temperature::Warm), Temperature::Hot, 76)
    );

    // Nothing changed since: nothing is written, nothing is published.
    let third = invoke(&st, scheduled()).await;
    assert_eq!(
        (
            n(&third, "changed"),
            n(&third, "written"),
            n(&third, "published")
        ),
        (0, 0, 0),
        "{third}"
    );
}

/// Leads with 1 to 5 touches of mixed kinds, created fresh and merged (merges are scored by the
/// next rescore).
async fn seed_mixed(store: &Store, now: DateTime<Utc>) {
    let kinds = [
        TouchKind::Visit,
        TouchKind::Event,
        TouchKind::MeetingBooked,
        TouchKind::Review,
    ];
    for i in 0..14 {
        let email = format!("mixed{i}@corp{i}.com");
        let p = Person {
            email: &email,
            title: if i % 3 == 0 { Some("VP Sales") } else { None },
            company: if i % 2 == 0 { Some("Corp") } else { None },
        };
        touch(
            store,
            &p,
            TouchKind::FormSubmission,
            now - Duration::days(i),
        )
        .await;
        for k in 0..(i % 5) {
            touch(
                store,
                &p,
                kinds[(i as usize + k as usize) % kinds.len()],
                now - Duration::hours(k * 7),
            )
            .await;
        }
    }
}

async fn by_email(store: &Store) -> BTreeMap<String, (Option<u32>, Option<Temperature>, Stage)> {
    store
        .scan_leads()
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            (
                l.contact.email.clone().unwrap_or_default(),
                (l.score, l.temperature, l.stage),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_interrupted_run_resumes_and_ends_like_an_uninterrupted_one() {
    let now = Utc::now();
    let whole = fresh_store().await;
    let parts = fresh_store().await;
    seed_mixed(&whole, now).await;
    seed_mixed(&parts, now).await;
    // Small pages so partitions straddle page boundaries.
    let vars = [("SEGMENTS", "3"), ("PAGE_SIZE", "3")];
    let uninterrupted = invoke(&state(whole.clone(), None, &vars), scheduled()).await;
    assert_eq!(uninterrupted["complete"], true);
    assert_eq!(n(&uninterrupted, "scanned"), 14);

    // One page per invocation: many invocations, each resuming from the saved checkpoint.
    let limited = state(
        parts.clone(),
        None,
        &[("SEGMENTS", "3"), ("PAGE_SIZE", "3"), ("MAX_PAGES", "1")],
    );
    let mut invocations = 0;
    let (mut scanned, mut written, mut changed) = (0, 0, 0);
    loop {
        let r = invoke(&limited, scheduled()).await;
        invocations += 1;
        scanned += n(&r, "scanned");
        written += n(&r, "written");
        changed += n(&r, "changed");
        assert_eq!(n(&r, "errors"), 0, "{r}");
        if r["complete"] == true {
            break;
        }
        assert!(invocations < 200, "the run never completed");
    }
    assert!(
        invocations > 3,
        "the run was not interrupted ({invocations})"
    );
    assert_eq!(scanned, 14, "every lead exactly once");
    assert_eq!(written, n(&uninterrupted, "written"));
    assert_eq!(changed, n(&uninterrupted, "changed"));
    assert_eq!(by_email(&parts).await, by_email(&whole).await);

    // A deadline already passed (and no configured timeout to fall back on): nothing is read,
    // the checkpoint stays, the run is incomplete.
    let mut ctx = Context::default();
    ctx.deadline = 1;
    let st = state(parts.clone(), None, &vars);
    let r = handler(
        &st,
        LambdaEvent::new(serde_json::from_value(scheduled()).unwrap(), ctx),
    )
    .await
    .unwrap();
    assert_eq!((r["complete"].clone(), n(&r, "scanned")), (json!(false), 0));
    // The next invocation with time left finishes that run.
    let r = invoke(&st, scheduled()).await;
    assert_eq!(
        (r["complete"].clone(), n(&r, "changed")),
        (json!(true), 0),
        "{r}"
    );
}

/// Emulators' deadlines (see `leadflow::lambda_time`) leave the run its time: a deadline in
/// seconds is scaled, and `cargo lambda watch`'s constant `600000` (1970 as epoch milliseconds)
/// means the configured timeout, so the run scans and completes as on Lambda.
#[tokio::test]
async fn emulator_deadlines_leave_the_run_its_time() {
    let now = Utc::now();
    let store = fresh_store().await;
    seed_mixed(&store, now).await;
    let vars = [
        ("SEGMENTS", "3"),
        ("PAGE_SIZE", "3"),
        ("FUNCTION_TIMEOUT_SECONDS", "900"),
    ];
    let st = state(store.clone(), None, &vars);

    let in_seconds = (now.timestamp() + 900) as u64;
    for deadline in [in_seconds, 600_000] {
        let mut ctx = Context::default();
        ctx.deadline = deadline;
        let r = handler(
            &st,
            LambdaEvent::new(serde_json::from_value(scheduled()).unwrap(), ctx),
        )
        .await
        .unwrap();
        assert_eq!(r["complete"], true, "deadline {deadline}: {r}");
        assert!(n(&r, "pages") > 0, "deadline {deadline}: {r}");
        assert_eq!(n(&r, "scanned"), 14, "deadline {deadline}: {r}");
    }
}

#[tokio::test]
async fn a_concurrent_ingest_is_never_lost() {
    let store = fresh_store().await;
    let now = Utc::now();
    let p = Person {
        email: "race@acme.com",
        title: Some("Director"),
        company: Some("Acme"),
    };
    let lead_id = touch(&store, &p, TouchKind::FormSubmission, now).await;

    // Deterministic interleaving at the store: read, a merge lands, the stale write is refused.
    let stale = store.scoring_input(&lead_id).await.unwrap().unwrap();
    touch(&store, &p, TouchKind::MeetingBooked, now).await;
    let a = Model::new(ScoringConfig::default()).unwrap().assess(
        &stale.profile(),
        &stale.touches,
        stale.stage,
        now,
    );
    let mut forced = stale.clone();
    forced.score = Some(a.score + 1); // make the stale input look changed
    assert_eq!(
        store
            .write_score(
                &forced,
                &a,
                None,
                leadflow::store::ScoreWriter::Rescore,
                now
            )
            .await
            .unwrap(),
        ScoreWrite::Conflict
    );
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(lead.touch_count, 2);

    // The function under real concurrency: merges race the run; all of them stay, and every
    // lead ends scored on its full history.
    let mut emails = Vec::new();
    for i in 0..8 {
        let email = format!("busy{i}@acme.com");
        let q = Person {
            email: &email,
            title: Some("Manager"),
            company: None,
        };
        touch(&store, &q, TouchKind::Visit, now).await;
        emails.push(email);
    }
    let st = state(
        store.clone(),
        None,
        &[("SEGMENTS", "2"), ("PAGE_SIZE", "2")],
    );
    let ingests = async {
        for round in 0..3 {
            for email in &emails {
                let q = Person {
                    email,
                    title: None,
                    company: None,
                };
                let kind = if round == 2 {
                    TouchKind::MeetingBooked
                } else {
                    TouchKind::Event
                };
                touch(&store, &q, kind, now).await;
            }
        }
    };
    // A lead that kept changing under the run may be left to the next run (counted in
    // `errors`); what matters is that nothing the ingests wrote is lost.
    let (summary, ()) = tokio::join!(invoke(&st, scheduled()), ingests);
    assert_eq!(summary["complete"], true, "{summary}");
    for lead in store.scan_leads().await.unwrap() {
        if lead
            .contact
            .email
            .as_deref()
            .unwrap_or("")
            .starts_with("busy")
        {
            assert_eq!(lead.touch_count, 4, "a merged touch was lost");
        }
    }
    // Whatever the interleaving, a follow-up run settles every lead on its full history.
    invoke(&st, scheduled()).await;
    let model = Model::builtin();
    for lead in store.scan_leads().await.unwrap() {
        let input = store.scoring_input(&lead.lead_id).await.unwrap().unwrap();
        let a = model.assess(&input.profile(), &input.touches, Stage::Lead, Utc::now());
        assert_eq!(lead.score, Some(a.score));
        assert_eq!(lead.temperature, Some(a.temperature));
    }
}

#[tokio::test]
async fn targeted_rescore_and_stored_configuration() {
    let store = fresh_store().await;
    let now = Utc::now();
    let p = Person {
        email: "one@acme.com",
        title: Some("Intern"),
        company: None,
    };
    let lead_id = touch(&store, &p, TouchKind::FormSubmission, now).await;
    // Scored at ingest with the built-in model: intern -5, business email +10, US +5, form +15.
    let fresh = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(
        (fresh.score, fresh.temperature, fresh.stage),
        (Some(25), Some(Temperature::Cold), Stage::Lead)
    );
    // A hot lead is hot the moment it arrives: CEO 15, company 6, business email 10, US 5,
    // meeting booked 25 = 61... plus a phone (4) = 65, hot and an MQL at once.
    let ceo = Person {
        email: "boss@bigco.com",
        title: Some("CEO"),
        company: Some("BigCo"),
    };
    let mut sub = Submission::new(
        "form",
        DeliveryKey::Platform("boss-1".into()),
        TouchKind::MeetingBooked,
        now,
    );
    sub.contact = ContactInput {
        email: Some(ceo.email.into()),
        job_title: ceo.title.map(str::to_string),
        company: ceo.company.map(str::to_string),
        country: Some("US".into()),
        phone: Some("+1 415 555 0199".into()),
        ..Default::default()
    };
    let normalized = normalize(sub, &NormalizeConfig::default()).unwrap();
    let before = store.round_trips();
    let hot_id = store.ingest(&normalized, now).await.unwrap().lead_id;
    assert_eq!(
        store.round_trips() - before,
        1,
        "scoring adds no round trip"
    );
    let hot = store.get_lead(&hot_id).await.unwrap().unwrap();
    assert_eq!(
        (hot.score, hot.temperature, hot.stage),
        (Some(65), Some(Temperature::Hot), Stage::Mql)
    );
    assert!(hot.sales.mql_at.is_some());
    let st = state(store.clone(), None, &[]);

    // An invalid configuration is refused with a message naming the field; nothing is stored.
    let mut bad = serde_json::to_value(ScoringConfig::default()).unwrap();
    bad["thresholds"]["hot"] = 500.into();
    let err = handler(&st, json_event(json!({"set_config": bad})))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("thresholds.hot must be between 1 and 100"),
        "{err}"
    );
    let mut typo = serde_json::to_value(ScoringConfig::default()).unwrap();
    typo["half_lif_days"] = 7.into();
    let err = handler(&st, json_event(json!({"set_config": typo})))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `half_lif_days`"), "{err}");
    let cfg = invoke(&st, json!({"get_config": true})).await;
    assert_eq!(cfg["source"], "builtin");

    // A stored configuration where every form submission is worth 60 makes this lead hot.
    let mut cfg = ScoringConfig {
        version: 2,
        ..ScoringConfig::default()
    };
    cfg.engagement.max = 90.0;
    cfg.fit.max = 10.0;
    cfg.engagement
        .kinds
        .get_mut(&TouchKind::FormSubmission)
        .unwrap()
        .points = 60.0;
    cfg.engagement
        .kinds
        .get_mut(&TouchKind::FormSubmission)
        .unwrap()
        .daily_cap = 60.0;
    let stored = invoke(
        &st,
        json!({"set_config": serde_json::to_value(&cfg).unwrap()}),
    )
    .await;
    assert_eq!(stored["config_version"], 2);

    let r = invoke(&st, json!({"lead_id": lead_id})).await;
    assert_eq!((n(&r, "scanned"), n(&r, "written")), (1, 1), "{r}");
    assert_eq!(r["config_version"], 2);
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    // Intern -5, business email +10, US +5 = 10 (fit max 10) + 60 engagement.
    assert_eq!(lead.score, Some(70));
    assert_eq!(lead.temperature, Some(Temperature::Hot));
    assert_eq!(lead.stage, Stage::Mql);
    assert!(lead.sales.mql_at.is_some());
    let changes = store.score_changes(&lead_id).await.unwrap();
    assert_eq!(changes.last().unwrap().new_stage, Stage::Mql);
    assert_eq!(changes.last().unwrap().config_version, 2);

    // One segment by hand: its own checkpoint, finished in one go.
    // (The CEO lead, scored at ingest with the built-in model, moves to configuration 2.)
    let r = invoke(&st, json!({"segment": 0, "total_segments": 1})).await;
    assert_eq!(
        (r["complete"].clone(), n(&r, "scanned"), n(&r, "written")),
        (json!(true), 2, 1),
        "{r}"
    );
    let r = invoke(&st, json!({"segment": 0, "total_segments": 1})).await;
    assert_eq!(n(&r, "changed"), 0, "{r}");
    let err = handler(&st, json_event(json!({"segment": 3, "total_segments": 2})))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("segment must be"), "{err}");
}

#[tokio::test]
async fn sample_events_are_accepted() {
    let store = fresh_store().await;
    let st = state(store, None, &[]);
    let sample = |name: &str| -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    for name in ["rescore-scheduled.json", "rescore-segment.json"] {
        let r = invoke(&st, sample(name)).await;
        assert_eq!(r["complete"], true, "{name}: {r}");
    }
    let r = invoke(&st, sample("rescore-get-config.json")).await;
    assert_eq!(r["source"], "builtin");
    // An empty table trains nothing and both answers say why.
    let r = invoke(&st, sample("rescore-train.json")).await;
    assert_eq!(r["trained"], false, "{r}");
    let r = invoke(&st, sample("rescore-get-model.json")).await;
    assert!(
        r["reason"].as_str().unwrap().contains("too few outcomes"),
        "{r}"
    );
    // The lead sample names a lead this empty table does not have: a clear error, no panic.
    let err = handler(&st, json_event(sample("rescore-lead.json")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("no lead "), "{err}");
}

#[tokio::test]
async fn a_failed_publish_is_counted_and_the_scores_still_land() {
    use aws_sdk_eventbridge::operation::put_events::PutEventsError;
    use aws_sdk_eventbridge::types::error::InternalException;
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};

    let rule = mock!(aws_sdk_eventbridge::Client::put_events).then_error(|| {
        PutEventsError::InternalException(InternalException::builder().message("down").build())
    });
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .http_client(create_mock_http_client())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&rule),
        )
        .build();
    let publisher = Publisher {
        client: aws_sdk_eventbridge::Client::from_conf(conf),
        bus: "down".into(),
    };
    let store = fresh_store().await;
    let now = Utc::now();
    let p = Person {
        email: "warm@acme.com",
        title: Some("CEO"),
        company: Some("Acme"),
    };
    let id = touch(&store, &p, TouchKind::FormSubmission, now).await;
    touch(&store, &p, TouchKind::MeetingBooked, now).await;
    let st = state(store.clone(), Some(publisher), &[]);
    let r = invoke(&st, scheduled()).await;
    assert_eq!(
        (n(&r, "written"), n(&r, "published"), n(&r, "errors")),
        (1, 0, 1),
        "{r}"
    );
    assert_eq!(r["complete"], true);
    assert!(rule.num_calls() >= 1);
    let lead = store.get_lead(&id).await.unwrap().unwrap();
    assert_eq!(lead.temperature, Some(Temperature::Hot));
    // The durable history has the change even though the event was not delivered.
    assert_eq!(store.score_changes(&id).await.unwrap().len(), 1);
}

/// A lead of the predictive-score account: a VP from LinkedIn paid social with a business
/// address, or a free-mail lead without a title from display.
async fn seed_predict_lead(store: &Store, i: usize, vp: bool, at: DateTime<Utc>) -> String {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(format!("predict-{i}")),
        TouchKind::FormSubmission,
        at,
    );
    let (email, title, source, medium) = if vp {
        (
            format!("vp{i}@acme-{i}.com"),
            Some("VP Marketing"),
            "linkedin",
            "paid_social",
        )
    } else {
        (format!("someone{i}@gmail.com"), None, "adnet", "display")
    };
    s.contact = ContactInput {
        email: Some(email),
        job_title: title.map(str::to_string),
        country: Some("US".into()),
        ..Default::default()
    };
    s.attribution.utm_source = Some(source.into());
    s.attribution.utm_medium = Some(medium.into());
    s.attribution.utm_campaign = Some(format!("c{}", i % 3));
    let n = normalize(s, &NormalizeConfig::default()).unwrap();
    store.ingest(&n, at).await.unwrap().lead_id
}

async fn sales_event(store: &Store, lead_id: &str, kind: &str, at: DateTime<Utc>) {
    let event = leadflow::sales::SalesEvent {
        event_id: format!("{lead_id}-{kind}"),
        kind: leadflow::sales::SalesEventKind::parse(kind).unwrap(),
        at,
        value: None,
        reason: None,
        channels: Vec::new(),
    };
    store.record_sales_event(lead_id, &event, at).await.unwrap();
}

async fn get_lead_api(store: &Store, lead_id: &str) -> Value {
    let state = lead_api::ApiState::from_lookup(store.clone(), |k| {
        (k == "LEAD_API_KEYS").then(|| "predict-key".to_string())
    })
    .unwrap();
    let mut event = integration_tests::EventBuilder::new("GET", &format!("/leads/{lead_id}"))
        .header("x-api-key", "predict-key")
        .build();
    event.path_parameters.clear();
    let answer: integration_tests::Answer =
        lead_api::handler(&state, integration_tests::lambda_event(event))
            .await
            .unwrap()
            .into();
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json
}

/// The predictive score end to end on DynamoDB Local: leads and their outcomes written through
/// the real ingest and sales-event paths; below the minimum nothing is trained and both answers
/// say why; trained on demand, stored as version 1, applied by the next rescore (beside the
/// rules score, raising the temperature as configured, in the published event) and read back
/// through lead-api; a second rescore writes nothing.
#[tokio::test]
async fn the_predictive_score_trains_on_demand_and_scores_every_lead() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let now = Utc::now();
    // 90 leads created 30 to 210 days ago: VPs from paid social mostly won, free-mail leads
    // from display mostly lost (one in three the other way: 45 won, 45 negative); every fifth
    // loss never reported (older than 90 days: a negative all the same).
    let mut vp_won = 0;
    for i in 0..90usize {
        let vp = i % 2 == 0;
        let created = now - Duration::days(30 + 2 * i as i64);
        let id = seed_predict_lead(&store, i, vp, created).await;
        let won = vp != (i % 6 == 1 || i % 6 == 4);
        if won {
            vp_won += usize::from(vp);
            sales_event(&store, &id, "won", created + Duration::days(3)).await;
        } else if i % 5 != 0 || created > now - Duration::days(90) {
            sales_event(&store, &id, "lost", created + Duration::days(10)).await;
        }
    }
    assert_eq!(vp_won, 30);
    let st = state(
        store.clone(),
        Some(events.publisher()),
        &[("SEGMENTS", "3"), ("PAGE_SIZE", "25")],
    );

    let none = invoke(&st, json!({"get_model": true})).await;
    assert_eq!(none["model"], Value::Null);
    assert!(
        none["reason"]
            .as_str()
            .unwrap()
            .contains("no model trained yet"),
        "{none}"
    );

    // The default minimum (50 won and 50 negative) is not reached: nothing is trained.
    let refused = invoke(&st, json!({"train": true})).await;
    assert_eq!(refused["trained"], false, "{refused}");
    let reason = refused["not_trained"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("too few outcomes to learn from"),
        "{reason}"
    );
    assert!(
        reason.contains("at least 50 won and 50 negative"),
        "{reason}"
    );
    assert_eq!(refused["not_trained"]["counts"]["leads"], 90);
    assert_eq!(refused["not_trained"]["counts"]["won"], 45);
    let why = invoke(&st, json!({"get_model": true})).await;
    assert_eq!(why["model"], Value::Null);
    assert_eq!(why["reason"], reason);
    // A rescore without a model stores no prediction.
    invoke(&st, scheduled()).await;
    let probe = store.scan_leads().await.unwrap()[0].lead_id.clone();
    assert_eq!(
        get_lead_api(&store, &probe).await["predicted_conversion"],
        Value::Null
    );

    // A bad override is refused with the field named.
    let bad = handler(&st, json_event(json!({"train": {"min_wins": 5}}))).await;
    assert!(bad.unwrap_err().to_string().contains("min_wins"));

    let trained = invoke(&st, json!({"train": {"min_won": 20, "min_lost": 20}})).await;
    assert_eq!(trained["trained"], true, "{trained}");
    assert_eq!(trained["model_version"], 1);
    assert_eq!(trained["counts"]["leads"], 90);
    assert_eq!(
        n(&trained["counts"], "won")
            + n(&trained["counts"], "lost")
            + n(&trained["counts"], "aged_out"),
        90
    );
    let auc = trained["evaluation"]["auc"].as_f64().unwrap();
    assert!(auc > 0.6, "{trained}");
    assert!(trained["evaluation"]["brier"].as_f64().is_some());
    assert!(trained["evaluation"]["reliability"].as_array().is_some());
    assert!(
        trained.get("weights").is_none(),
        "the answer is the evaluation, not the weights"
    );
    let described = invoke(&st, json!({"get_model": true})).await;
    assert_eq!(described["model"]["model_version"], 1);
    assert_eq!(described["model"]["evaluation"], trained["evaluation"]);
    assert_eq!(described["last_attempt"]["trained"], true);

    // Hot when the rules say 65 or the prediction says 0.5.
    let mut cfg = serde_json::to_value(ScoringConfig::default()).unwrap();
    cfg["version"] = 2.into();
    cfg["prediction"] = json!({"hot_at": 0.5});
    invoke(&st, json!({"set_config": cfg})).await;
    events.drain().await;

    // New leads: a VP from paid social and a free-mail lead from display, both just arrived.
    let vp = seed_predict_lead(&store, 1000, true, now).await;
    let display = seed_predict_lead(&store, 1001, false, now).await;
    let run = invoke(&st, scheduled()).await;
    assert_eq!(run["model_version"], 1, "{run}");
    assert_eq!(n(&run, "errors"), 0, "{run}");
    // Every lead gains its prediction (the old ones were scored before the model existed).
    assert_eq!(n(&run, "written"), 92, "{run}");

    let vp_json = get_lead_api(&store, &vp).await;
    let display_json = get_lead_api(&store, &display).await;
    let (p_vp, p_display) = (
        vp_json["predicted_conversion"].as_f64().unwrap(),
        display_json["predicted_conversion"].as_f64().unwrap(),
    );
    // The account's rates: two in three VPs from paid social won, one in three of the others.
    assert!(p_vp > 0.6 && p_display < 0.4, "{p_vp} vs {p_display}");
    // Beside the rules score, not in its place: the VP's rules score alone is below hot (65),
    // the prediction makes it hot.
    assert!(vp_json["score"].as_u64().unwrap() < 65, "{vp_json}");
    assert_eq!(vp_json["temperature"], "hot");
    assert_eq!(display_json["temperature"], "cold");
    let pred = &vp_json["prediction"];
    assert_eq!(pred["model_version"], 1);
    let top = pred["top_features"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 5, "{pred}");
    for f in top {
        let name = f["feature"].as_str().unwrap();
        assert!(f["contribution"].is_number());
        for personal in ["acme", "VP Marketing", "vp1000"] {
            assert!(!name.contains(personal), "{name}");
        }
    }

    // The temperature change was published with the prediction in its detail.
    let published = events.drain().await;
    let vp_event = published
        .iter()
        .find(|e| e["detail"]["lead_id"] == vp.as_str())
        .unwrap_or_else(|| panic!("no event for the VP: {published:?}"));
    assert_eq!(vp_event["detail-type"], "lead.temperature_changed");
    assert_eq!(vp_event["detail"]["new"], "hot");
    assert_eq!(vp_event["detail"]["predicted_conversion"], p_vp);
    assert!(vp_event["detail"]["top_features"].is_array());

    // Nothing changed: nothing written.
    let again = invoke(&st, scheduled()).await;
    assert_eq!(n(&again, "written"), 0, "{again}");

    // Retraining stores the next version; the last one stays readable in its history item.
    let next = invoke(&st, json!({"train": {"min_won": 20, "min_lost": 20}})).await;
    assert_eq!(next["model_version"], 2, "{next}");
    let described = invoke(&st, json!({"get_model": true})).await;
    assert_eq!(described["model"]["model_version"], 2);
}

#[tokio::test]
async fn page_stats_account_for_every_page_and_lead() {
    let store = fresh_store().await;
    let now = Utc::now();
    for i in 0..12 {
        let email = format!("paged{i}@acme-{i}.com");
        let p = Person {
            email: &email,
            title: Some("CEO"),
            company: Some("Acme"),
        };
        touch(&store, &p, TouchKind::FormSubmission, now).await;
    }
    let vars = [("SEGMENTS", "2"), ("PAGE_SIZE", "4")];
    // Off by default: the totals only.
    let quiet = invoke(&state(store.clone(), None, &vars), scheduled()).await;
    assert!(quiet.get("page_stats").is_none(), "{quiet}");
    for total in ["scan_ms", "eval_ms", "write_ms"] {
        assert!(quiet[total].is_u64(), "{total} in {quiet}");
    }
    let st = state(
        store.clone(),
        None,
        &[vars[0], vars[1], ("PAGE_STATS", "1")],
    );
    let run = invoke(&st, scheduled()).await;
    assert_eq!(run["complete"], true, "{run}");
    let pages = run["page_stats"].as_array().expect("page_stats");
    assert_eq!(pages.len() as u64, n(&run, "pages"), "{run}");
    let sum = |k: &str| pages.iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("leads"), n(&run, "scanned"));
    assert_eq!(sum("written"), n(&run, "written"));
    for p in pages {
        assert!(p["segment"].as_u64().unwrap() < 2, "{p}");
        for k in ["scan_ms", "eval_ms", "write_ms"] {
            assert!(p[k].as_f64().unwrap() >= 0.0, "{k} in {p}");
        }
    }
}
