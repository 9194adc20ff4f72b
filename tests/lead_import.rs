//! lead-import end to end: list files in a local S3 (moto_server, versioning on), the function's
//! own continuation queue (moto's SQS), leads in DynamoDB Local. Each test has its own bucket,
//! queue and table; the handler is driven as Lambda would (the S3 notification through the
//! queue, then every continuation the function sends itself, until the queue is empty).

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use chrono::Utc;
use integration_tests::{events_endpoint, fresh_store, json_event, sdk_config};
use lead_import::{handler, ImportEvent, ImportState};
use leadflow::metrics::{aggregate, GroupBy, SpendEntry};
use leadflow::store::Store;
use serde_json::{json, Value};

struct Bucket {
    name: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    queue: String,
    state: ImportState,
}

const PEPPER: &str = "test-privacy-pepper";

impl Bucket {
    /// A bucket with versioning on, a queue, and the function's state over a fresh table.
    /// `max_rows`: rows per invocation (forces continuations).
    async fn new(max_rows: Option<u64>) -> Bucket {
        let sdk = sdk_config(&events_endpoint()).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let id = leadflow::store::new_id();
        let name = format!("imports-{id}");
        s3.create_bucket().bucket(&name).send().await.unwrap();
        s3.put_bucket_versioning()
            .bucket(&name)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let queue = sqs
            .create_queue()
            .queue_name(format!("imports-{id}"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let env: BTreeMap<&str, String> = [
            ("IMPORT_QUEUE_URL", queue.clone()),
            ("PRIVACY_PEPPER", PEPPER.to_string()),
            ("CHECKPOINT_ROWS", "500".to_string()),
        ]
        .into_iter()
        .chain(max_rows.map(|m| ("MAX_ROWS_PER_INVOCATION", m.to_string())))
        .collect();
        let state = ImportState::from_lookup(fresh_store().await, s3.clone(), sqs.clone(), |k| {
            env.get(k).cloned()
        })
        .unwrap();
        Bucket {
            name,
            s3,
            sqs,
            queue,
            state,
        }
    }

    fn store(&self) -> &Store {
        &self.state.store
    }

    /// Puts a file (with `x-amz-meta-*` metadata); returns its version id.
    async fn put(&self, key: &str, body: Vec<u8>, meta: &[(&str, &str)]) -> String {
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(body));
        for (k, v) in meta {
            put = put.metadata(*k, *v);
        }
        put.send().await.unwrap().version_id().unwrap().to_string()
    }

    /// The SQS event Lambda delivers for the bucket's notification of `key`'s `version`.
    fn event(&self, key: &str, version: &str) -> Value {
        let encoded: String = key
            .bytes()
            .map(|b| match b {
                b' ' => "+".to_string(),
                b if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        let notification = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "imports",
                   "bucket": {"name": self.name, "arn": format!("arn:aws:s3:::{}", self.name)},
                   "object": {"key": encoded, "size": 1, "versionId": version, "sequencer": "0A"}}
        }]});
        sqs_event(&notification.to_string())
    }

    /// Runs the handler on `event`, then on every message the function sent itself, as the
    /// queue's event source would; returns the invocations.
    async fn run(&self, event: Value) -> u64 {
        let answer = handler(&self.state, json_event::<ImportEvent>(event))
            .await
            .unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        let mut invocations = 1;
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(1)
                .send()
                .await
                .unwrap();
            let Some(m) = got.messages().first() else {
                return invocations;
            };
            self.sqs
                .delete_message()
                .queue_url(&self.queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            let answer = handler(
                &self.state,
                json_event::<ImportEvent>(sqs_event(m.body().unwrap())),
            )
            .await
            .unwrap();
            assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
            invocations += 1;
        }
    }

    async fn result(&self, key: &str, version: &str) -> Value {
        let name = key.strip_prefix("incoming/").unwrap();
        let out = self
            .s3
            .get_object()
            .bucket(&self.name)
            .key(format!("results/{name}.{version}.result.json"))
            .send()
            .await
            .unwrap();
        let bytes = out.body.collect().await.unwrap().into_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }
}

fn sqs_event(body: &str) -> Value {
    json!({"Records": [{
        "messageId": leadflow::store::new_id(),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:imports",
        "awsRegion": "us-east-1"
    }]})
}

/// What a generated row is.
enum Kind {
    New,
    Repeat,
    Bad(&'static str, &'static str),
}

/// A webinar attendee export as Excel writes it in a semicolon locale: a byte order mark,
/// `;`, CRLF, quoted notes with line breaks, separators and quotes; people listed twice (with
/// another case and spacing of their address), bad addresses, bad dates, rows without a
/// contact, and a spreadsheet's empty rows. Returns the file and each row's kind.
fn attendee_file(rows: usize) -> (Vec<u8>, Vec<Kind>) {
    let mut out = b"\xEF\xBB\xBFEmail Address;First Name;Last Name;Company;Phone Number;Registered At;Notes\r\n".to_vec();
    let mut kinds = Vec::with_capacity(rows);
    for i in 0..rows {
        // A repeat names an earlier attendee who was imported (not a bad row).
        let repeat_of = (i % 20 == 19)
            .then(|| i - 7)
            .filter(|j| matches!(kinds[*j], Kind::New));
        let (kind, line) = if i % 50 == 49 {
            (
                Kind::Bad("invalid_email", "email"),
                format!("not-an-address-{i};Bad;Row;Acme;;2026-11-02 10:00;\r\n"),
            )
        } else if let Some(j) = repeat_of {
            (
                Kind::Repeat,
                format!(
                    "  Attendee.{j}@Example.COM ;Att;{j};Acme;;2026-11-02 11:00;second listing\r\n"
                ),
            )
        } else if i % 333 == 332 {
            (
                Kind::Bad("invalid_date", "Registered At"),
                format!("late.{i}@example.com;Late;{i};Acme;;next tuesday;\r\n"),
            )
        } else if i % 997 == 996 {
            (
                Kind::Bad("missing_contact", "email,phone"),
                ";No;Contact;Acme;;2026-11-02 10:00;\r\n".to_string(),
            )
        } else if i % 10 == 3 {
            (
                Kind::New,
                format!(
                    "attendee.{i}@example.com;Ann;\"O'Neil; {i}\";\"Acme \"\"Labs\"\"\";+44 20 7946 {:04};2026-11-02 10:00;\"Met at booth 4\r\nwants a demo; budget 10k\"\r\n",
                    i % 10_000
                ),
            )
        } else {
            (
                Kind::New,
                format!("attendee.{i}@example.com;Att;{i};Acme;;2026-11-02 10:00;\r\n"),
            )
        };
        out.extend_from_slice(line.as_bytes());
        kinds.push(kind);
        if i == rows / 2 {
            // An empty spreadsheet row: not a row, and it takes a row number as it shows.
            out.extend_from_slice(b";;;;;;\r\n");
        }
    }
    (out, kinds)
}

/// The file's row number (as a spreadsheet shows it: header 1) of attendee `i`.
fn row_number(i: usize, rows: usize) -> u64 {
    i as u64 + 2 + u64::from(i > rows / 2)
}

#[tokio::test]
async fn ten_thousand_attendees_are_imported_exactly_once_per_person() {
    const ROWS: usize = 10_000;
    let b = Bucket::new(Some(3_000)).await;
    let (file, kinds) = attendee_file(ROWS);
    let key = "incoming/webinar q4 attendees.csv";
    let version = b
        .put(
            key,
            file,
            &[(
                "mapping",
                "channel=event, source=webinar-q4, direction=inbound",
            )],
        )
        .await;
    let before = b.store().round_trips();
    let invocations = b.run(b.event(key, &version)).await;
    let trips = b.store().round_trips() - before;

    let new = kinds.iter().filter(|k| matches!(k, Kind::New)).count() as u64;
    let repeats = kinds.iter().filter(|k| matches!(k, Kind::Repeat)).count() as u64;
    let bad: Vec<(u64, &str, &str)> = kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| match k {
            Kind::Bad(code, field) => Some((row_number(i, ROWS), *field, *code)),
            _ => None,
        })
        .collect();
    let result = b.result(key, &version).await;
    assert_eq!(result["status"], "done", "{result}");
    assert_eq!(result["format"], "csv");
    assert_eq!(result["delimiter"], ";");
    assert_eq!(
        result["counts"],
        json!({"rows": ROWS, "created": new, "merged": repeats, "duplicate": 0,
               "suppressed": 0, "rejected": bad.len(), "outbound": 0}),
    );
    // 10,000 rows at 3,000 per invocation: three continuations through the queue.
    assert_eq!((invocations, result["invocations"].as_u64()), (4, Some(4)));
    let errors: Vec<(u64, &str, &str)> = result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(errors, bad);
    let text = result.to_string();
    for personal in ["not-an-address", "example.com", "O'Neil", "Acme", "7946"] {
        assert!(!text.contains(personal), "the report shows {personal}");
    }

    // One lead per person, one touch per row stored, on the day the rows say.
    let leads = b.store().leads_created_on("2026-11-02").await.unwrap();
    assert_eq!(leads.len() as u64, new);
    let touches = b.store().touches_on("2026-11-02").await.unwrap();
    assert_eq!(touches.len() as u64, new + repeats);
    assert!(leads.iter().all(|l| l.channel.as_str() == "event"
        && l.source == "webinar-q4"
        && l.direction.as_str() == "inbound"
        && l.consent.is_none()));
    let with_note = leads
        .iter()
        .find(|l| l.contact.email.as_deref() == Some("attendee.3@example.com"))
        .unwrap();
    assert_eq!(
        with_note.custom.get("notes").map(String::as_str),
        Some("Met at booth 4\r\nwants a demo; budget 10k")
    );
    assert_eq!(with_note.contact.last_name.as_deref(), Some("O'Neil; 3"));
    assert_eq!(with_note.contact.company.as_deref(), Some("Acme \"Labs\""));

    let checkpoints = (ROWS as u64).div_ceil(500) + 3;
    println!(
        "import of {ROWS} rows: {new} new people, {repeats} repeats, {} bad rows, {invocations} \
         invocations, {trips} DynamoDB round trips ({:.3} per row; the ingest alone: {} new x 1 + \
         {repeats} returning x 2 = {}; checkpoints, result and progress reads: about {checkpoints})",
        bad.len(),
        trips as f64 / ROWS as f64,
        new,
        new + 2 * repeats,
    );
    assert!(trips >= new + 2 * repeats, "{trips}");
    // Rows of one person in the same batch race (the loser merges, or retries a conflict).
    assert!(trips <= new + 3 * repeats + checkpoints + 40, "{trips}");

    // The same event again (S3 and SQS deliver at least once): nothing is added.
    let before = b.store().round_trips();
    assert_eq!(b.run(b.event(key, &version)).await, 1);
    assert_eq!(
        b.store().round_trips() - before,
        1,
        "one read of the checkpoint"
    );
    assert_eq!(
        b.store()
            .leads_created_on("2026-11-02")
            .await
            .unwrap()
            .len() as u64,
        new
    );
    assert_eq!(b.result(key, &version).await, result);
}

#[tokio::test]
async fn a_new_version_of_the_same_file_imports_again() {
    let b = Bucket::new(None).await;
    let key = "incoming/partner-referrals.csv";
    let body = b"email,phone,name,channel\nada@example.com,,Ada Lovelace,referral\n,020 7946 0000,,referral\n".to_vec();
    let v1 = b
        .put(key, body.clone(), &[("source", "acme-partners")])
        .await;
    b.run(b.event(key, &v1)).await;
    assert_eq!(b.result(key, &v1).await["counts"]["created"], 1);
    assert_eq!(
        b.result(key, &v1).await["counts"]["rejected"],
        1,
        "a national number that is no US number"
    );
    let v2 = b.put(key, body, &[("source", "acme-partners")]).await;
    assert_ne!(v1, v2);
    b.run(b.event(key, &v2)).await;
    let r2 = b.result(key, &v2).await;
    assert_eq!(
        (
            r2["counts"]["created"].as_u64(),
            r2["counts"]["merged"].as_u64()
        ),
        (Some(0), Some(1))
    );
    // The first version's retried event still adds nothing.
    b.run(b.event(key, &v1)).await;
    let today = leadflow::store::ts(Utc::now())[..10].to_string();
    let touches = b.store().touches_on(&today).await.unwrap();
    assert_eq!(touches.len(), 2, "one touch per version");
    assert!(touches.iter().all(|t| t.channel.as_str() == "referral"
        && t.source == "acme-partners"
        && t.provider == "import"));
}

#[tokio::test]
async fn outbound_rows_stay_out_of_inbound_volume_and_cost_per_lead() {
    let b = Bucket::new(None).await;
    let inbound = b"email;Registered At\na@example.com;2026-11-03\nb@example.com;2026-11-03\nc@example.com;2026-11-03\n";
    let v = b
        .put(
            "incoming/trade-show.csv",
            inbound.to_vec(),
            &[
                ("channel", "event"),
                ("source", "websummit"),
                ("campaign", "ws26"),
            ],
        )
        .await;
    b.run(b.event("incoming/trade-show.csv", &v)).await;
    // An erased person stays erased: a bought list that names them again is skipped.
    let erased = b.store().leads_created_on("2026-11-03").await.unwrap();
    let c = erased
        .iter()
        .find(|l| l.contact.email.as_deref() == Some("c@example.com"))
        .unwrap();
    b.store().erase_lead(&c.lead_id, Utc::now()).await.unwrap();
    let prospects = b"email,company,opt_in,date\np1@example.com,Initech,,2026-11-03\np2@example.com,Globex,,2026-11-03\np3@example.com,Hooli,yes,2026-11-03\np4@example.com,Umbrella,,2026-11-03\nc@example.com,Erased,,2026-11-03\na@example.com,Known,,2026-11-03\n";
    let v = b
        .put(
            "incoming/prospects.csv",
            prospects.to_vec(),
            &[("direction", "outbound"), ("source", "zoominfo")],
        )
        .await;
    b.run(b.event("incoming/prospects.csv", &v)).await;
    let r = b.result("incoming/prospects.csv", &v).await;
    assert_eq!(
        r["counts"],
        json!({"rows": 6, "created": 4, "merged": 1, "duplicate": 0, "suppressed": 1,
               "rejected": 0, "outbound": 5})
    );
    let leads = b.store().leads_created_on("2026-11-03").await.unwrap();
    let p3 = leads
        .iter()
        .find(|l| l.contact.email.as_deref() == Some("p3@example.com"))
        .unwrap();
    assert!(
        p3.consent.as_ref().unwrap().marketing_opt_in,
        "a column gave consent"
    );
    let p1 = leads
        .iter()
        .find(|l| l.contact.email.as_deref() == Some("p1@example.com"))
        .unwrap();
    assert!(p1.consent.is_none(), "an outbound prospect has no consent");
    assert_eq!(p1.direction.as_str(), "outbound");
    assert_eq!(p1.first_touch.kind.as_str(), "list_import");

    // Spend on the trade show: its cost per lead counts its 3 inbound leads only (the erased
    // one keeps counting where it was created: metrics stay exact).
    b.store()
        .put_spend(
            &SpendEntry {
                day: "2026-11-03".into(),
                source: "websummit".into(),
                channel: "event".into(),
                campaign: "ws26".into(),
                amount_micros: 1_000_000_000,
                currency: "EUR".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let rollup = metrics_rollup::RollupState::from_lookup(b.store().clone(), |_| None).unwrap();
    metrics_rollup::handler(
        &rollup,
        json_event(json!({"from": "2026-11-03", "to": "2026-11-03"})),
    )
    .await
    .unwrap();
    let rows = b
        .store()
        .rollups_between(&["2026-11-03".to_string()])
        .await
        .unwrap();
    let total = &aggregate(&rows, GroupBy::Day)[0];
    assert_eq!((total.new_leads, total.outbound_leads), (3, 4), "{total:?}");
    assert_eq!(total.cpl, Some(333.33), "1,000 over the 3 inbound leads");
    let by_source = aggregate(&rows, GroupBy::Source);
    let zoominfo = by_source.iter().find(|r| r.key == "zoominfo").unwrap();
    assert_eq!(
        (zoominfo.new_leads, zoominfo.outbound_leads, zoominfo.cpl),
        (0, 4, None)
    );
    assert_eq!(
        zoominfo.submissions, 0,
        "outbound touches are not submissions"
    );

    // A price paid for the list: spend attached to its source puts its leads in its CPL.
    b.store()
        .put_spend(
            &SpendEntry {
                day: "2026-11-03".into(),
                source: "zoominfo".into(),
                channel: "direct".into(),
                campaign: "(none)".into(),
                amount_micros: 200_000_000,
                currency: "EUR".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    metrics_rollup::handler(
        &rollup,
        json_event(json!({"from": "2026-11-03", "to": "2026-11-03"})),
    )
    .await
    .unwrap();
    let rows = b
        .store()
        .rollups_between(&["2026-11-03".to_string()])
        .await
        .unwrap();
    let zoominfo = aggregate(&rows, GroupBy::Source)
        .into_iter()
        .find(|r| r.key == "zoominfo")
        .unwrap();
    assert_eq!(zoominfo.cpl, Some(50.0), "{zoominfo:?}");
    assert_eq!(aggregate(&rows, GroupBy::Day)[0].new_leads, 3);
}

#[tokio::test]
async fn file_level_problems_give_a_result_and_import_nothing() {
    let b = Bucket::new(None).await;
    // (key, body, metadata, the file error's code)
    type Case = (
        &'static str,
        Vec<u8>,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: [Case; 6] = [
        (
            "incoming/bad-channel.csv",
            b"email\na@example.com\n".to_vec(),
            &[("channel", "carrier-pigeon")],
            "invalid_mapping",
        ),
        (
            "incoming/utf16.csv",
            b"\xFF\xFEe\0m\0a\0i\0l\0\n\0".to_vec(),
            &[],
            "unsupported_encoding",
        ),
        (
            "incoming/latin1.csv",
            b"email;Stra\xDFe\na@example.com;x\n".to_vec(),
            &[],
            "unsupported_encoding",
        ),
        (
            "incoming/workbook.csv",
            b"PK\x03\x04\x14\0\x06\0".to_vec(),
            &[],
            "not_csv",
        ),
        (
            "incoming/no-contact.csv",
            b"name,company\nAda,Analytical\n".to_vec(),
            &[],
            "no_contact_column",
        ),
        ("incoming/empty.csv", Vec::new(), &[], "no_header"),
    ];
    for (key, body, meta, code) in cases {
        let v = b.put(key, body, meta).await;
        b.run(b.event(key, &v)).await;
        let r = b.result(key, &v).await;
        assert_eq!(
            (r["status"].as_str(), r["file_error"]["code"].as_str()),
            (Some("failed"), Some(code)),
            "{key}: {r}"
        );
        assert_eq!(r["counts"]["rows"], 0);
    }
    let today = leadflow::store::ts(Utc::now())[..10].to_string();
    assert!(b.store().leads_created_on(&today).await.unwrap().is_empty());
}

#[tokio::test]
async fn json_lines_and_results_and_other_objects_are_handled() {
    let b = Bucket::new(None).await;
    let key = "incoming/signups.ndjson";
    let body = b"{\"email\": \"j1@example.com\", \"first_name\": \"J\", \"employees\": 40}\n\n{\"email\": \"nope\"}\n{\"email\": {\"x\": 1}}\n{\"phone\": \"+14155550132\", \"direction\": \"outbound\"}\n".to_vec();
    let v = b.put(key, body, &[]).await;
    b.run(b.event(key, &v)).await;
    let r = b.result(key, &v).await;
    assert_eq!(r["format"], "jsonl");
    assert_eq!(
        r["counts"],
        json!({"rows": 4, "created": 2, "merged": 0, "duplicate": 0, "suppressed": 0,
               "rejected": 2, "outbound": 1})
    );
    assert_eq!(
        r["errors"],
        json!([
            {"row": 2, "field": "email", "code": "invalid_email", "message": "email is not a valid address"},
            {"row": 3, "field": "email", "code": "invalid_value", "message": "a JSON value here must be text, a number or true/false"},
        ])
    );
    // A result, or an object outside incoming/, is never imported.
    for other in ["results/signups.ndjson.x.result.json", "elsewhere/list.csv"] {
        let v = b.put(other, b"email\nz@example.com\n".to_vec(), &[]).await;
        b.run(b.event(other, &v)).await;
        assert!(b
            .store()
            .import_progress(
                &leadflow::import::FileRef {
                    bucket: b.name.clone(),
                    key: other.into(),
                    version_id: v,
                }
                .file_id()
            )
            .await
            .unwrap()
            .is_none());
    }
    // S3's test event when the notification is configured: nothing to do.
    let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-30T10:00:00.000Z",
                      "Bucket": b.name, "RequestId": "r", "HostId": "h"});
    b.run(sqs_event(&test.to_string())).await;
}

#[tokio::test]
async fn a_duplicated_event_running_at_the_same_time_counts_every_row_once() {
    let b = Bucket::new(None).await;
    let mut body = b"email\n".to_vec();
    for i in 0..300 {
        body.extend_from_slice(format!("dup.{i}@example.com\n").as_bytes());
    }
    let key = "incoming/twice.csv";
    let v = b.put(key, body, &[]).await;
    let (one, two) = tokio::join!(
        handler(&b.state, json_event::<ImportEvent>(b.event(key, &v))),
        handler(&b.state, json_event::<ImportEvent>(b.event(key, &v))),
    );
    // One imports; the other finds it started (its message is done) or claimed (its message
    // comes back later: a crashed holder's claim has lapsed by then).
    let failed: Vec<bool> = [one.unwrap(), two.unwrap()]
        .iter()
        .map(|a| a["batchItemFailures"] != json!([]))
        .collect();
    assert!(failed.iter().filter(|f| **f).count() <= 1, "{failed:?}");
    // The message again, later: the import is done, nothing is added.
    assert_eq!(b.run(b.event(key, &v)).await, 1);
    let r = b.result(key, &v).await;
    assert_eq!(r["counts"]["rows"], 300);
    assert_eq!(r["counts"]["created"], 300);
    let today = leadflow::store::ts(Utc::now())[..10].to_string();
    assert_eq!(b.store().leads_created_on(&today).await.unwrap().len(), 300);
}

#[tokio::test]
async fn the_sample_event_parses_and_routes_its_object() {
    // events/import-s3-event.json is what run-local sends (with the real version id).
    let path = format!(
        "{}/../events/import-s3-event.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body: Value = serde_json::from_str(sample["Records"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["Records"][0]["s3"]["object"]["key"],
        "incoming/webinar-q4-attendees.csv"
    );
    let _: ImportEvent = serde_json::from_value(sample).unwrap();
    let csv = std::fs::read(format!(
        "{}/../events/import-webinar.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(
        csv.starts_with(b"\xEF\xBB\xBF"),
        "the sample has a byte order mark"
    );
}
