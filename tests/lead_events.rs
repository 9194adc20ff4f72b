//! Speed to lead (issue 15): a lead that arrives hot is announced within seconds, once.
//!
//! Leads are ingested for real into DynamoDB Local; the stream function is driven with stream
//! records built from the items read back (old and new images, as Lambda delivers them); events
//! are read back from a local EventBridge (moto) through a rule and an SQS queue.

use chrono::Utc;
use integration_tests::{
    free_port, fresh_store, json_event, lambda_event, lead_item, stream_record, Events,
};
use lead_events::LeadEventsState;
use leadflow::model::{ContactInput, DeliveryKey, Submission, Temperature, TouchKind};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::{ScoreWriter, Store};
use serde_json::{json, Value};

/// A CEO with a company, a business email, a US phone, booking a meeting as the first touch:
/// 15 + 6 + 10 + 5 + 4 + 25 = 65, hot (and an MQL) the moment it is stored.
async fn hot_lead(store: &Store, email: &str) -> String {
    let lead_id = submit(store, email, TouchKind::MeetingBooked).await;
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(lead.temperature, Some(Temperature::Hot));
    lead_id
}

/// A submission by that CEO, stored through the real ingest path.
async fn submit(store: &Store, email: &str, kind: TouchKind) -> String {
    let mut sub = Submission::new(
        "form",
        DeliveryKey::Platform(leadflow::store::new_id()),
        kind,
        Utc::now(),
    );
    sub.contact = ContactInput {
        email: Some(email.into()),
        job_title: Some("CEO".into()),
        company: Some("BigCo".into()),
        country: Some("US".into()),
        // A phone of its own per person (a shared one would merge them into one lead).
        phone: Some(format!(
            "+1 415 555 01{:02}",
            email.len() + email.as_bytes()[0] as usize % 50
        )),
        ..Default::default()
    };
    let n = normalize(sub, &NormalizeConfig::default()).unwrap();
    store.ingest(&n, Utc::now()).await.unwrap().lead_id
}

fn scheduled() -> Value {
    json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
           "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
           "resources": [], "detail": {}})
}

async fn rescore_run(store: &Store, events: &Events) -> Value {
    let st =
        rescore::RescoreState::from_lookup(store.clone(), Some(events.publisher()), |_: &str| {
            None::<String>
        })
        .unwrap();
    rescore::handler(&st, json_event(scheduled()))
        .await
        .unwrap()
}

fn state(store: &Store, events: &Events) -> LeadEventsState {
    LeadEventsState {
        store: store.clone(),
        publisher: Some(events.publisher()),
    }
}

/// Invokes the stream function with `records` as one batch; returns the sequence numbers it
/// reported as failed.
async fn deliver(st: &LeadEventsState, records: &[Value]) -> Vec<String> {
    leadflow::telemetry::init_tracing();
    let out = lead_events::handler(st, lambda_event(json!({"Records": records})))
        .await
        .unwrap();
    out["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

/// Events about `lead_id`, by detail type.
fn about<'a>(published: &'a [Value], lead_id: &str) -> Vec<&'a Value> {
    published
        .iter()
        .filter(|e| e["detail"]["lead_id"] == lead_id)
        .collect()
}

/// Issue 15's bug, then its fix. Before this change the first half was the whole story: ingest
/// stored the lead hot, the scheduled rescore found nothing changed, and nothing was published
/// (this test then failed with `left: 0, right: 1`).
#[tokio::test]
async fn a_new_hot_lead_is_announced_once_and_rescore_adds_nothing() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let st = state(&store, &events);
    let lead_id = hot_lead(&store, "boss@bigco.com").await;
    let item = lead_item(&store, &lead_id).await;
    let batch = [stream_record("INSERT", None, Some(&item), 100)];

    let before = store.round_trips();
    assert_eq!(deliver(&st, &batch).await, Vec::<String>::new());
    // Per announced record: 1 GetItem (marker) + 1 PutItem (marker).
    assert_eq!(store.round_trips() - before, 2);
    let published = events.drain().await;
    let mine = about(&published, &lead_id);
    assert_eq!(mine.len(), 1, "{published:?}");
    let e = mine[0];
    assert_eq!(e["source"], lead_events::EVENT_SOURCE);
    assert_eq!(e["detail-type"], "lead.created");
    assert_eq!(e["detail"]["temperature"], "hot");
    assert_eq!(e["detail"]["stage"], "mql");
    assert_eq!(e["detail"]["score"], 65);
    assert_eq!(e["detail"]["version"], 1);
    assert_eq!(e["detail"]["is_test"], false);
    assert_eq!(e["detail"]["source"], "direct");
    // The lead id and non-personal facts only.
    let text = e.to_string();
    for personal in ["@", "boss", "BigCo", "555", "CEO"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }

    // Lambda delivers the batch again (a retry after a timeout, say): nothing new.
    assert_eq!(deliver(&st, &batch).await, Vec::<String>::new());
    assert!(about(&events.drain().await, &lead_id).is_empty());

    // The scheduled rescore finds the lead as ingest scored it: it publishes nothing more.
    let run = rescore_run(&store, &events).await;
    assert_eq!(run["complete"], true, "{run}");
    assert!(about(&events.drain().await, &lead_id).is_empty(), "{run}");
}

#[tokio::test]
async fn one_failing_record_is_reported_and_the_others_are_published_once() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let st = state(&store, &events);
    let mut ids = Vec::new();
    let mut batch = Vec::new();
    for (i, email) in ["a@one.com", "b@two.com", "c@three.com"].iter().enumerate() {
        let id = hot_lead(&store, email).await;
        let item = lead_item(&store, &id).await;
        batch.push(stream_record("INSERT", None, Some(&item), 200 + i as u64));
        ids.push(id);
    }
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    // The middle record is damaged (its image lacks the version): it cannot be announced.
    let good_middle = batch[1].clone();
    batch[1]["dynamodb"]["NewImage"]
        .as_object_mut()
        .unwrap()
        .remove("version");
    let failed = deliver(&st, &batch).await;
    assert_eq!(failed, vec![format!("{:021}", 201)]);
    let published = events.drain().await;
    assert_eq!(about(&published, &ids[0]).len(), 1);
    assert!(about(&published, &ids[1]).is_empty());
    assert_eq!(about(&published, &ids[2]).len(), 1);

    // Lambda retries from the failed record on (here the whole batch, as after a bisect): the
    // others are not announced again, the middle one now is.
    batch[1] = good_middle;
    assert_eq!(deliver(&st, &batch).await, Vec::<String>::new());
    let published = events.drain().await;
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["detail"]["lead_id"], ids[1].as_str());
}

#[tokio::test]
async fn sales_stage_changes_are_announced_and_rescore_writes_are_left_to_rescore() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let st = state(&store, &events);
    let lead_id = hot_lead(&store, "sql@bigco.com").await;
    let before = lead_item(&store, &lead_id).await;
    let body = json!({"event_id": "crm-1", "type": "sql"}).to_string();
    let event = leadflow::sales::SalesEvent::from_json(body.as_bytes(), Utc::now()).unwrap();
    store
        .record_sales_event(&lead_id, &event, Utc::now())
        .await
        .unwrap();
    let after = lead_item(&store, &lead_id).await;
    let batch = [stream_record("MODIFY", Some(&before), Some(&after), 300)];
    assert_eq!(deliver(&st, &batch).await, Vec::<String>::new());
    assert_eq!(deliver(&st, &batch).await, Vec::<String>::new());
    let published = events.drain().await;
    assert_eq!(published.len(), 1, "{published:?}");
    let e = &published[0];
    assert_eq!(e["detail-type"], "lead.stage_changed");
    assert_eq!(e["detail"]["old"], "mql");
    assert_eq!(e["detail"]["new"], "sql");
    assert_eq!(e["detail"]["version"], 2);

    // A score write by rescore (here: forced to cold) is announced by rescore, not here.
    let input = store.scoring_input(&lead_id).await.unwrap().unwrap();
    let mut a = leadflow::scoring::Model::builtin().assess(
        &input.profile(),
        &input.touches,
        input.stage,
        Utc::now(),
    );
    a.temperature = Temperature::Cold;
    assert_eq!(
        store
            .write_score(&input, &a, None, ScoreWriter::Rescore, Utc::now())
            .await
            .unwrap(),
        leadflow::store::ScoreWrite::Written
    );
    let rescored = lead_item(&store, &lead_id).await;
    let batch = [stream_record("MODIFY", Some(&after), Some(&rescored), 301)];
    assert_eq!(deliver(&st, &batch).await, Vec::<String>::new());
    assert!(events.drain().await.is_empty());
}

#[tokio::test]
async fn a_merge_that_makes_a_lead_hot_is_announced_within_the_stream() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let st = state(&store, &events);
    // A form first: 15 + 6 + 10 + 5 + 4 + 15 = 55, warm (and an MQL).
    let lead_id = submit(&store, "merge@bigco.com", TouchKind::FormSubmission).await;
    let created = lead_item(&store, &lead_id).await;
    assert_eq!(
        deliver(&st, &[stream_record("INSERT", None, Some(&created), 400)])
            .await
            .len(),
        0
    );
    let first = events.drain().await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["detail"]["temperature"], "warm");

    // The same person books a meeting: ingest merges it, in the webhook's 2 round trips as
    // before (no rescore there).
    let before = store.round_trips();
    assert_eq!(
        submit(&store, "merge@bigco.com", TouchKind::MeetingBooked).await,
        lead_id
    );
    assert_eq!(store.round_trips() - before, 2);
    let merged = lead_item(&store, &lead_id).await;
    let merge_record = [stream_record("MODIFY", Some(&created), Some(&merged), 401)];
    let before = store.round_trips();
    assert_eq!(deliver(&st, &merge_record).await.len(), 0);
    // 2 GetItems (configuration, model) + 1 Query (the lead) + 1 TransactWriteItems.
    assert_eq!(store.round_trips() - before, 4);
    assert!(
        events.drain().await.is_empty(),
        "published before its own record"
    );
    let rescored = lead_item(&store, &lead_id).await;
    let score_record = [stream_record("MODIFY", Some(&merged), Some(&rescored), 402)];
    assert_eq!(deliver(&st, &score_record).await.len(), 0);
    let published = events.drain().await;
    assert_eq!(published.len(), 1, "{published:?}");
    let e = &published[0];
    assert_eq!(e["detail-type"], "lead.temperature_changed");
    assert_eq!(e["detail"]["old"], "warm");
    assert_eq!(e["detail"]["new"], "hot");
    assert_eq!(e["detail"]["temperature"], "hot");
    assert_eq!(e["detail"]["version"], 3);
    assert_eq!(e["detail"]["score"], 80);
    assert_eq!(
        e["detail"]["reasons"][0]["rule"],
        "engagement_meeting_booked"
    );

    // Both records again (a redelivery): no second write, no second event.
    assert_eq!(
        deliver(&st, &[merge_record[0].clone(), score_record[0].clone()])
            .await
            .len(),
        0
    );
    assert!(events.drain().await.is_empty());
    assert_eq!(lead_item(&store, &lead_id).await, rescored);
    // And the scheduled rescore has nothing left to say about it.
    let run = rescore_run(&store, &events).await;
    assert_eq!(run["complete"], true, "{run}");
    assert!(about(&events.drain().await, &lead_id).is_empty(), "{run}");
}

/// events/lead-stream-hot-lead.json (what scripts/run-local and `sam local invoke` send): a
/// hot lead's INSERT and its sales stage change, built from a real item.
#[tokio::test]
async fn the_sample_stream_event_announces_a_hot_lead_and_its_stage_change_once() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let st = state(&store, &events);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/lead-stream-hot-lead.json"
    );
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let records = sample["Records"].as_array().unwrap().clone();
    assert_eq!(deliver(&st, &records).await, Vec::<String>::new());
    let published = events.drain().await;
    let mut kinds: Vec<(&str, &str, u64)> = published
        .iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap(),
                e["detail"]["temperature"].as_str().unwrap(),
                e["detail"]["version"].as_u64().unwrap(),
            )
        })
        .collect();
    // SQS does not promise order; the versions do.
    kinds.sort_by_key(|k| k.2);
    assert_eq!(
        kinds,
        vec![("lead.created", "hot", 1), ("lead.stage_changed", "hot", 2)]
    );
    assert_eq!(deliver(&st, &records).await, Vec::<String>::new());
    assert!(events.drain().await.is_empty());
}

/// EventBridge down: the record is reported, nothing is marked, and the retry (EventBridge back)
/// publishes it once. Publish-then-mark: a failure never loses the announcement.
#[tokio::test]
async fn a_failed_publish_is_retried_and_announced_once() {
    let store = fresh_store().await;
    let events = Events::new().await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", free_port()))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let down = LeadEventsState {
        store: store.clone(),
        publisher: Some(leadflow::events::Publisher {
            client: aws_sdk_eventbridge::Client::new(&sdk),
            bus: events.bus.clone(),
        }),
    };
    let lead_id = hot_lead(&store, "retry@bigco.com").await;
    let item = lead_item(&store, &lead_id).await;
    let batch = [stream_record("INSERT", None, Some(&item), 500)];
    assert_eq!(deliver(&down, &batch).await, vec![format!("{:021}", 500)]);
    assert!(!store.announced(&lead_id, 1, Utc::now()).await.unwrap());
    let st = state(&store, &events);
    assert_eq!(deliver(&st, &batch).await, Vec::<String>::new());
    assert!(store.announced(&lead_id, 1, Utc::now()).await.unwrap());
    let published = events.drain().await;
    assert_eq!(about(&published, &lead_id).len(), 1, "{published:?}");
}
