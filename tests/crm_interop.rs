//! CRM interop end to end on the local DynamoDB: HubSpot CRM events whose contacts are fetched
//! from a local stand-in of HubSpot's CRM API (the real client code runs against it), and the
//! CSV export of lead-api paged through 10,000 leads.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use chrono::Utc;
use integration_tests::{
    fresh_store, lambda_event, local_env, Answer, EventBuilder, StandIn, StandInReply,
};
use lead_api::export::{COLUMNS, MAX_LIMIT};
use leadflow::model::{ContactInput, DeliveryKey, Submission, TouchKind};
use leadflow::normalize::NormalizeConfig;
use leadflow::signature::hmac_sha256;
use leadflow::store::Store;
use leadflow::telemetry::Metrics;
use serde_json::{json, Value};

const KEY: &str = "crm-test-key";
const PEPPER: &str = "a-random-privacy-pepper-for-crm-tests";

fn vars(extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut v = local_env();
    v.insert(
        "LEAD_API_KEYS".into(),
        format!("{KEY}:read+erase,write-only:write,dash-only:dashboard"),
    );
    v.insert("PRIVACY_PEPPER".into(), PEPPER.into());
    v.insert("PLATFORM_API_TIMEOUT_MS".into(), "1000".into());
    for (k, val) in extra {
        v.insert(k.to_string(), val.clone());
    }
    v
}

fn webhook(store: &Store, extra: &[(&str, String)]) -> form_webhook::AppState {
    let v = vars(extra);
    form_webhook::AppState::from_lookup(store.clone(), |k| v.get(k).cloned()).unwrap()
}

fn api(store: &Store) -> lead_api::ApiState {
    let v = vars(&[]);
    lead_api::ApiState::from_lookup(store.clone(), |k| v.get(k).cloned()).unwrap()
}

// --- HubSpot CRM events ---

/// HubSpot's published "Retrieve a contact" example (tests/fixtures/providers/README.md).
fn published_contact() -> Value {
    let path = format!(
        "{}/fixtures/providers/hubspot-crm-contact.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The CRM API as HubSpot answers it: the private app token checked, contacts by id (as the
/// test sets them), its error bodies. Contacts named `slow-*`-style ids are answered late so
/// concurrent requests overlap.
struct Crm {
    stand_in: StandIn,
    contacts: Arc<Mutex<HashMap<String, Value>>>,
}

impl Crm {
    async fn start() -> Crm {
        let contacts: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let seen = contacts.clone();
        let bearer = format!("Bearer {}", local_env()["HUBSPOT_ACCESS_TOKEN"]);
        let stand_in = StandIn::start_with_headers(move |req| {
            if req.headers.get("authorization") != Some(&bearer) {
                return StandInReply::Json(
                    401,
                    r#"{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}"#.into(),
                );
            }
            let id = req
                .target
                .trim_start_matches("/crm/v3/objects/contacts/")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string();
            match seen.lock().unwrap().get(&id) {
                Some(c) if id.starts_with("7") => StandInReply::Delayed(60, 200, c.to_string()),
                Some(c) => StandInReply::Json(200, c.to_string()),
                None => StandInReply::Json(
                    404,
                    r#"{"status":"error","message":"resource not found","correlationId":"x","category":"OBJECT_NOT_FOUND"}"#.into(),
                ),
            }
        })
        .await;
        Crm { stand_in, contacts }
    }

    fn set(&self, id: &str, contact: Value) {
        self.contacts
            .lock()
            .unwrap()
            .insert(id.to_string(), contact);
    }
}

/// HubSpot's webhook body: `events` as `(subscriptionType, objectId, occurredAt ms)`, in the
/// documented event shape (tests/fixtures/providers/hubspot-webhooks-events.json).
fn hubspot_events(events: &[(&str, &str, i64)]) -> String {
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (kind, object, at))| {
            let mut e = json!({"eventId": 3_816_279_340u64 + i as u64, "subscriptionId": 25,
                "portalId": 62515, "appId": 1160452, "occurredAt": at, "subscriptionType": kind,
                "attemptNumber": 0, "objectId": object.parse::<u64>().unwrap(), "changeSource": "CRM_UI"});
            if *kind == "contact.propertyChange" {
                e["propertyName"] = json!("lastname");
                e["propertyValue"] = json!("Scout");
            }
            e
        })
        .collect();
    Value::Array(events).to_string()
}

/// A delivery signed as HubSpot signs (v3: method + URL + body + timestamp).
async fn deliver(state: &form_webhook::AppState, body: &str) -> Answer {
    let ev = EventBuilder::new("POST", "/webhooks/hubspot")
        .header("content-type", "application/json")
        .text_body(body);
    let built = serde_json::to_value(ev.build()).unwrap();
    let url = format!(
        "https://{}{}",
        built["requestContext"]["domainName"].as_str().unwrap(),
        built["rawPath"].as_str().unwrap()
    );
    let now = Utc::now().timestamp_millis().to_string();
    let secret = local_env()["HUBSPOT_CLIENT_SECRET"].clone();
    let sig = hmac_sha256(
        secret.as_bytes(),
        &[b"POST", url.as_bytes(), body.as_bytes(), now.as_bytes()],
    );
    let event = EventBuilder::from_value(built)
        .header("x-hubspot-request-timestamp", &now)
        .header(
            "x-hubspot-signature-v3",
            &base64::engine::general_purpose::STANDARD.encode(sig),
        )
        .build();
    form_webhook::handler(state, lambda_event(event))
        .await
        .unwrap()
        .into()
}

const MARK: &str = "98630638716";
/// When the published example says the contact was created, and when its last name changed.
const CREATED_MS: i64 = 1_739_288_700_400;
const CHANGED_MS: i64 = 1_739_291_293_591;

#[tokio::test]
async fn a_contact_creation_becomes_a_lead_and_a_property_change_updates_it() {
    let store = fresh_store().await;
    let crm = Crm::start().await;
    crm.set(MARK, published_contact());
    let state = webhook(
        &store,
        &[("HUBSPOT_API_URL", crm.stand_in.base_url.clone())],
    );

    let creation = hubspot_events(&[("contact.creation", MARK, CREATED_MS)]);
    let a = deliver(&state, &creation).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["results"][0]["status"], "created", "{}", a.text);
    let lead_id = a.json["results"][0]["lead_id"]
        .as_str()
        .unwrap()
        .to_string();
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(
        lead.contact.email.as_deref(),
        Some("mark.s@lumon.industries")
    );
    assert_eq!(lead.contact.first_name.as_deref(), Some("Mark"));
    assert_eq!(lead.contact.last_name.as_deref(), Some("S."));
    assert_eq!(lead.source, "hubspot");
    assert_eq!(lead.custom["hubspot_contact_id"], MARK);
    assert_eq!(crm.stand_in.served(), 1);
    let asked = &crm.stand_in.requests()[0];
    assert!(asked.target.starts_with(&format!(
        "/crm/v3/objects/contacts/{MARK}?properties=email,"
    )));

    // HubSpot retries the same delivery: answered from the delivery marker, HubSpot not asked.
    let again = deliver(&state, &creation).await;
    assert_eq!(
        again.json["results"][0]["status"], "duplicate",
        "{}",
        again.text
    );
    assert_eq!(again.json["results"][0]["lead_id"], lead_id.as_str());
    assert_eq!(crm.stand_in.served(), 1);

    // The last name changes in HubSpot (the example's own history: S. -> Scout).
    let mut changed = published_contact();
    changed["properties"]["lastname"] = json!("Scout");
    changed["properties"]["lastmodifieddate"] = json!("2025-02-11T16:28:13.591Z");
    crm.set(MARK, changed);
    let change = hubspot_events(&[("contact.propertyChange", MARK, CHANGED_MS)]);
    let b = deliver(&state, &change).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json["results"][0]["status"], "merged", "{}", b.text);
    assert_eq!(b.json["results"][0]["lead_id"], lead_id.as_str());
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(lead.contact.last_name.as_deref(), Some("Scout"));
    assert_eq!(lead.contact.first_name.as_deref(), Some("Mark"));
    assert_eq!(lead.touch_count, 2);
    assert_eq!(store.scan_leads().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_batch_of_contacts_is_fetched_concurrently_each_on_its_own() {
    let store = fresh_store().await;
    let crm = Crm::start().await;
    let mut events = Vec::new();
    for i in 0..20 {
        let id = format!("7000{i:02}");
        let mut c = published_contact();
        c["id"] = json!(id);
        c["properties"]["email"] = json!(format!("person{i}@example.com"));
        c["properties"]["hs_object_id"] = json!(id);
        crm.set(&id, c);
        // Two events for each contact: still one fetch per contact.
        events.push(("contact.creation", id.clone(), CREATED_MS));
        events.push(("contact.propertyChange", id, CREATED_MS + 5));
    }
    // One contact HubSpot no longer has.
    events.push(("contact.creation", "404404".to_string(), CREATED_MS));
    let events: Vec<(&str, &str, i64)> = events
        .iter()
        .map(|(k, id, at)| (*k, id.as_str(), *at))
        .collect();
    let state = webhook(
        &store,
        &[("HUBSPOT_API_URL", crm.stand_in.base_url.clone())],
    );
    let a = deliver(&state, &hubspot_events(&events)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let results = a.json["results"].as_array().unwrap();
    let count = |s: &str| results.iter().filter(|r| r["status"] == s).count();
    assert_eq!(
        (count("created"), count("lead_gone")),
        (20, 1),
        "{}",
        a.text
    );
    assert_eq!(crm.stand_in.served(), 21);
    // Bounded: at most the configured concurrency (8) in flight, and more than one.
    let peak = crm.stand_in.max_in_flight();
    assert!((2..=8).contains(&peak), "peak {peak}");
    let gone = store.list_lead_gone(10).await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].provider, "hubspot");
    assert_eq!(gone[0].ids["contact_id"], "404404");
    assert!(
        gone[0].reason.contains("OBJECT_NOT_FOUND"),
        "{}",
        gone[0].reason
    );
    assert_eq!(store.scan_leads().await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_refused_token_quarantines_the_delivery_for_replay() {
    let store = fresh_store().await;
    let crm = Crm::start().await;
    crm.set(MARK, published_contact());
    let state = webhook(
        &store,
        &[
            ("HUBSPOT_API_URL", crm.stand_in.base_url.clone()),
            ("HUBSPOT_ACCESS_TOKEN", "revoked-token".into()),
        ],
    );
    let a = deliver(
        &state,
        &hubspot_events(&[("contact.creation", MARK, CREATED_MS)]),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.json["reason"], "platform_auth_failed");
    assert_eq!(store.list_quarantine(10).await.unwrap().len(), 1);
    assert!(store.scan_leads().await.unwrap().is_empty());
    // HubSpot down: 502, HubSpot retries the delivery.
    let down = webhook(&store, &[("HUBSPOT_API_URL", "http://127.0.0.1:9".into())]);
    let b = deliver(
        &down,
        &hubspot_events(&[("contact.creation", MARK, CREATED_MS)]),
    )
    .await;
    assert_eq!(b.status, 502, "{}", b.text);
}

#[tokio::test]
async fn an_erased_person_is_not_recreated_from_hubspot() {
    let store = fresh_store().await;
    let crm = Crm::start().await;
    crm.set(MARK, published_contact());
    let state = webhook(
        &store,
        &[("HUBSPOT_API_URL", crm.stand_in.base_url.clone())],
    );
    let a = deliver(
        &state,
        &hubspot_events(&[("contact.creation", MARK, CREATED_MS)]),
    )
    .await;
    let lead_id = a.json["results"][0]["lead_id"]
        .as_str()
        .unwrap()
        .to_string();
    let erased = lead_api_call(
        &api(&store),
        "DELETE",
        &format!("/leads/{lead_id}"),
        "",
        KEY,
    )
    .await;
    assert!(matches!(erased.status, 200 | 202), "{}", erased.text);

    // HubSpot still has the contact and announces a change: the shared ingest refuses it.
    let b = deliver(
        &state,
        &hubspot_events(&[("contact.propertyChange", MARK, CHANGED_MS)]),
    )
    .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json["results"][0]["status"], "suppressed", "{}", b.text);
    let leads = store.scan_leads().await.unwrap();
    assert_eq!(leads.len(), 1);
    assert!(leads[0].sales.erased);
}

// --- CSV export ---

async fn lead_api_call(
    state: &lead_api::ApiState,
    method: &str,
    path: &str,
    query: &str,
    key: &str,
) -> Answer {
    let mut event = EventBuilder::new(method, path)
        .header("x-api-key", key)
        .query(query)
        .build();
    event.path_parameters.clear();
    lead_api::handler(state, lambda_event(event))
        .await
        .unwrap()
        .into()
}

async fn seed(
    store: &Store,
    i: usize,
    first: &str,
    last: &str,
    company: &str,
    at: chrono::DateTime<Utc>,
) -> String {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(format!("export-seed-{i}")),
        TouchKind::FormSubmission,
        at,
    );
    s.contact = ContactInput {
        email: Some(format!("seed{i}@example.com")),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        company: Some(company.into()),
        // Each seed its own person: a shared phone would merge them into one lead.
        phone: Some(format!("+1 415 555 01{:02}", 30 + i)),
        ..Default::default()
    };
    s.custom.insert("note".into(), "=1+2, \"quoted\"".into());
    let cfg = NormalizeConfig::default();
    let out = leadflow::ingest::ingest_one(store, &cfg, s, at, &mut Metrics::new("test"))
        .await
        .unwrap();
    out.lead_id
}

/// Every page of an export, following `X-Next-Cursor` (and checking `Link` says the same).
async fn export_all(
    state: &lead_api::ApiState,
    query: &str,
) -> (Vec<Answer>, Vec<csv::StringRecord>) {
    let mut pages = Vec::new();
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) if query.is_empty() => format!("cursor={c}"),
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_string(),
        };
        let a = lead_api_call(state, "GET", "/leads/export", &q, KEY).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.headers["content-type"], "text/csv; charset=utf-8");
        assert_eq!(a.headers["cache-control"], "no-store");
        let mut reader = csv::ReaderBuilder::new().from_reader(a.text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(
            header, COLUMNS,
            "every page is a complete CSV with its header"
        );
        let page: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(a.headers["x-row-count"], page.len().to_string());
        rows.extend(page);
        cursor = a.headers.get("x-next-cursor").cloned();
        match &cursor {
            Some(c) => {
                let link = &a.headers["link"];
                assert!(link.starts_with("<https://"), "{link}");
                assert!(link.contains("/leads/export?"), "{link}");
                assert!(
                    link.ends_with(&format!("cursor={c}>; rel=\"next\"")),
                    "{link}"
                );
            }
            None => assert!(!a.headers.contains_key("link")),
        }
        pages.push(a);
        if cursor.is_none() {
            return (pages, rows);
        }
        assert!(pages.len() < 200, "the export does not end");
    }
}

fn col(name: &str) -> usize {
    COLUMNS.iter().position(|c| *c == name).unwrap()
}

#[tokio::test]
async fn ten_thousand_leads_are_exported_page_by_page() {
    let store = fresh_store().await;
    let nov = |d: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, 12, 0, 0).unwrap();
    // Hostile names: a formula, embedded quotes, a newline and a carriage return, a comma.
    let hostile = seed(
        &store,
        0,
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "Tables\r\nDROP",
        "@SUM(1+1)",
        nov(2),
    )
    .await;
    let quoted = seed(
        &store,
        1,
        "Robert \"Bobby\"",
        "O'Brien, Jr.",
        "-2+3 Ltd",
        nov(2),
    )
    .await;
    let template = seed(&store, 2, "Ada", "Lovelace", "Analytical Engines", nov(3)).await;
    let to_erase = seed(&store, 3, "Erased", "Person", "Gone Inc", nov(3)).await;

    // 10,000 more leads: copies of a real lead item, spread over November, some customers,
    // some hot.
    let lead_item = store.raw_lead_item(&template).await.unwrap().unwrap();
    let ids: Vec<String> = (0..10_000).map(|i| format!("copy-{i:05}")).collect();
    store
        .put_lead_copies(&[lead_item], &ids, |i, item| {
            let day = 1 + (i % 30) as u32;
            let at = format!("2026-11-{day:02}T08:00:00.000Z");
            item.insert("created_at".into(), AttributeValue::S(at.clone()));
            item.insert(
                "email".into(),
                AttributeValue::S(format!("copy{i}@example.com")),
            );
            item.insert("first_name".into(), AttributeValue::S(format!("N{i}")));
            item.insert(
                "stage".into(),
                AttributeValue::S(if i % 10 == 0 { "customer" } else { "lead" }.into()),
            );
            item.insert(
                "temperature".into(),
                AttributeValue::S(if i % 4 == 0 { "hot" } else { "cold" }.into()),
            );
        })
        .await
        .unwrap();
    let state = api(&store);
    let erased = lead_api_call(&state, "DELETE", &format!("/leads/{to_erase}"), "", KEY).await;
    assert!(matches!(erased.status, 200 | 202), "{}", erased.text);

    // Everything, 1,000 leads a page (the default).
    let started = std::time::Instant::now();
    let (pages, rows) = export_all(&state, "").await;
    let took = started.elapsed();
    let ids: Vec<&str> = rows.iter().map(|r| &r[col("lead_id")]).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 10_003, "every lead once, the erased one never");
    assert_eq!(unique.len(), ids.len());
    assert!(!unique.contains(to_erase.as_str()));
    assert!(!rows.iter().any(|r| r[col("email")].contains("seed3@")));
    assert!(pages.len() >= 11, "{} pages", pages.len());
    assert!(pages
        .iter()
        .all(|p| p.headers["x-row-count"].parse::<usize>().unwrap() <= 1000));
    let biggest = pages.iter().map(|p| p.text.len()).max().unwrap();
    println!(
        "exported {} leads in {} pages in {took:?} (largest page {biggest} bytes)",
        rows.len(),
        pages.len()
    );

    // The hostile cells, read back by a CSV reader: whole, neutralized where they would run.
    let row = |id: &str| rows.iter().find(|r| &r[col("lead_id")] == id).unwrap();
    let h = row(&hostile);
    assert_eq!(
        &h[col("first_name")],
        "'=HYPERLINK(\"http://evil.example\",\"x\")"
    );
    assert_eq!(&h[col("company")], "'@SUM(1+1)");
    assert!(
        h[col("last_name")].starts_with("Tables"),
        "{:?}",
        &h[col("last_name")]
    );
    assert_eq!(&h[col("phone")], "'+14155550130");
    assert_eq!(&h[col("custom")], r#"{"note":"=1+2, \"quoted\""}"#);
    let q = row(&quoted);
    assert_eq!(&q[col("first_name")], "Robert \"Bobby\"");
    assert_eq!(&q[col("last_name")], "O'Brien, Jr.");
    assert_eq!(&q[col("company")], "'-2+3 Ltd");
    // On the wire: RFC 4180 quoting, CRLF line ends.
    let raw = pages.iter().map(|p| p.text.as_str()).collect::<String>();
    assert!(raw.contains(r#""'=HYPERLINK(""http://evil.example"",""x"")""#));
    assert!(raw.contains(r#""Robert ""Bobby""""#));
    assert!(raw.starts_with(&format!("{}\r\n", COLUMNS.join(","))));

    // Filters: customers created 2026-11-10..2026-11-12 (inclusive days), hot ones, both.
    let expected = |f: &dyn Fn(usize) -> bool| (0..10_000).filter(|i| f(*i)).count();
    let in_range = |i: usize| (10..=12).contains(&(1 + i % 30));
    let (_, customers) = export_all(
        &state,
        "from=2026-11-10&to=2026-11-12&stage=customer&limit=100",
    )
    .await;
    assert_eq!(customers.len(), expected(&|i| i % 10 == 0 && in_range(i)));
    assert!(customers.iter().all(|r| &r[col("stage")] == "customer"));
    let mut hot_seeds = 0;
    for id in [&hostile, &quoted, &template] {
        let lead = store.get_lead(id).await.unwrap().unwrap();
        hot_seeds += usize::from(lead.temperature == Some(leadflow::model::Temperature::Hot));
    }
    let (_, hot) = export_all(&state, &format!("temperature=hot&limit={MAX_LIMIT}")).await;
    assert_eq!(hot.len(), expected(&|i| i % 4 == 0) + hot_seeds);
    assert!(hot.iter().all(|r| &r[col("temperature")] == "hot"));
    let (_, early) = export_all(&state, "to=2026-11-02").await;
    // Copies on days 1 and 2, and the two leads seeded on the 2nd.
    assert_eq!(early.len(), expected(&|i| i % 30 < 2) + 2);
}

#[tokio::test]
async fn export_pages_stay_inside_lambdas_answer_limit() {
    let store = fresh_store().await;
    let now = Utc::now();
    let template = seed(&store, 0, "Fat", "Lead", "Quotes \"R\" Us", now).await;
    let lead_item = store.raw_lead_item(&template).await.unwrap().unwrap();
    // 50 answers of 180 quote characters each: about 9 KB of CSV a lead, 18 KB once escaped
    // into Lambda's JSON answer.
    let fat: HashMap<String, AttributeValue> = (0..50)
        .map(|k| (format!("q{k:02}"), AttributeValue::S("\"".repeat(180))))
        .collect();
    let ids: Vec<String> = (0..700).map(|i| format!("fat-{i:03}")).collect();
    store
        .put_lead_copies(&[lead_item], &ids, |_, item| {
            item.insert("custom".into(), AttributeValue::M(fat.clone()));
        })
        .await
        .unwrap();
    let (pages, rows) = export_all(&api(&store), &format!("limit={MAX_LIMIT}")).await;
    assert_eq!(rows.len(), 701);
    assert!(pages.len() >= 2, "the byte budget splits the export");
    for p in &pages {
        let envelope = serde_json::to_string(&p.text).unwrap().len();
        assert!(
            envelope < 6_000_000,
            "a page of {envelope} bytes in the answer"
        );
    }
}

#[tokio::test]
async fn export_needs_the_read_scope_and_valid_parameters() {
    let store = fresh_store().await;
    let state = api(&store);
    for (key, status) in [
        ("", 401),
        ("wrong", 401),
        ("write-only", 403),
        ("dash-only", 403),
    ] {
        let a = lead_api_call(&state, "GET", "/leads/export", "", key).await;
        assert_eq!(a.status, status, "{key}: {}", a.text);
    }
    for (query, status, code, field) in [
        ("cursor=not-a-cursor", 400, "invalid_cursor", "cursor"),
        ("limit=0", 422, "invalid_value", "limit"),
        ("limit=5001", 422, "invalid_value", "limit"),
        ("stage=prospect", 422, "invalid_value", "stage"),
        ("temperature=lukewarm", 422, "invalid_value", "temperature"),
        ("from=2026-13-01", 422, "invalid_value", "from"),
        (
            "from=2026-11-05&to=2026-11-01",
            422,
            "invalid_range",
            "from",
        ),
    ] {
        let a = lead_api_call(&state, "GET", "/leads/export", query, KEY).await;
        assert_eq!(a.status, status, "{query}: {}", a.text);
        assert_eq!(a.json["error"]["code"], code, "{query}");
        assert_eq!(a.json["error"]["field"], field, "{query}");
    }
    // An empty table: the header alone, no cursor.
    let a = lead_api_call(&state, "GET", "/leads/export", "", KEY).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text, format!("{}\r\n", COLUMNS.join(",")));
    assert!(!a.headers.contains_key("x-next-cursor"));
}
