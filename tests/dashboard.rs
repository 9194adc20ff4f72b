//! The dashboard end to end on the local DynamoDB: leads ingested (hot, MQL, contacted, lost,
//! test, with hostile campaign and source names), spend, reviews and predictions, the rollup
//! run, then `GET /dashboard` rendered by a real browser (Chromium headless) at desktop and
//! phone widths, with screenshots kept in `target/test-artifacts/`. The sections are checked in
//! the DOM the browser built, the phone layout by measuring it in the browser; also what each
//! key may see, the query's validation and a 400-day range (round trips, size).

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use integration_tests::{fresh_store, json_event, lambda_event, Answer, EventBuilder};
use lead_api::{handler, ApiState};
use leadflow::metrics::{GroupKey, RollupCounts};
use leadflow::model::{
    ContactInput, DeliveryKey, ReviewInput, ReviewPlatform, Stage, Submission, Temperature,
    TouchKind,
};
use leadflow::normalize::{normalize, NormalizeConfig};
use leadflow::store::{ReviewChange, Store};
use metrics_rollup::RollupState;
use serde_json::{json, Value};

const WRITE_KEY: &str = "test-write-key";
const READER_KEY: &str = "test-reader-key";
const DASHBOARD_KEY: &str = "test-dashboard-key";

const SCRIPT_SOURCE: &str = "<script>alert(1)</script>";
const QUOTED_CAMPAIGN: &str = "\"spring\" 'sale' & <b>more</b>";
const RTL_CAMPAIGN: &str = "\u{202e}gnirps\u{202c} offer";
const ZERO_WIDTH_CAMPAIGN: &str = "zero\u{200b}width\u{200d}\u{feff}camp";

fn long_campaign() -> String {
    // No spaces: only wrapping anywhere keeps it inside a phone's width. Stored bounded
    // (100 bytes, `limits::label`).
    "W".repeat(300)
}

fn api(store: Store) -> ApiState {
    ApiState::from_lookup(store, |k| {
        (k == "LEAD_API_KEYS").then(|| {
            format!("{WRITE_KEY}:read+write,{READER_KEY}:read+dashboard,{DASHBOARD_KEY}:dashboard")
        })
    })
    .unwrap()
}

/// Sends a request as API Gateway routes it to lead-api.
async fn send(state: &ApiState, ev: EventBuilder) -> Answer {
    let mut event = ev.build();
    event.path_parameters.clear();
    handler(state, lambda_event(event)).await.unwrap().into()
}

async fn post(state: &ApiState, path: &str, body: Value) -> Answer {
    let a = send(
        state,
        EventBuilder::new("POST", path)
            .header("x-api-key", WRITE_KEY)
            .json(&body),
    )
    .await;
    assert!(a.status < 300, "{path}: {} {}", a.status, a.text);
    a
}

async fn dashboard(state: &ApiState, query: &str) -> Answer {
    send(
        state,
        EventBuilder::new("GET", "/dashboard").query(&format!("{query}&key={DASHBOARD_KEY}")),
    )
    .await
}

#[derive(Clone, Copy)]
enum Profile {
    /// A CEO with budget and timeline who booked a meeting: hot.
    Hot,
    /// A manager with some budget who filled a form: MQL, not hot.
    Mql,
    /// A student with a free address: cold.
    Cold,
}

struct Seeded {
    id: String,
    name: String,
    email: String,
}

async fn ingest(
    store: &Store,
    n: usize,
    profile: Profile,
    at: DateTime<Utc>,
    source: &str,
    campaign: &str,
    is_test: bool,
) -> Seeded {
    let kind = match profile {
        Profile::Hot => TouchKind::MeetingBooked,
        _ => TouchKind::FormSubmission,
    };
    let mut s = Submission::new("form", DeliveryKey::Platform(format!("d-{n}")), kind, at);
    let (title, email, budget, timeline) = match profile {
        Profile::Hot => ("CEO", format!("ceo{n}@acme-{n}.com"), "100k+", "now"),
        Profile::Mql => (
            "Marketing Manager",
            format!("mgr{n}@corp-{n}.com"),
            "50k",
            "this quarter",
        ),
        Profile::Cold => (
            "Student",
            format!("kid{n}@gmail.com"),
            "none",
            "just looking",
        ),
    };
    let name = format!("Person{n} Surname{n}");
    s.contact = ContactInput {
        email: Some(email.clone()),
        phone: Some(format!("+1 415 555 {:04}", 1000 + n)),
        full_name: Some(name.clone()),
        company: Some(format!("Company {n}")),
        job_title: Some(title.into()),
        country: Some("US".into()),
        ..Default::default()
    };
    s.custom.insert("budget".into(), budget.into());
    s.custom.insert("timeline".into(), timeline.into());
    s.attribution.utm_source = Some(source.into());
    s.attribution.utm_medium = Some("cpc".into());
    s.attribution.utm_campaign = Some(campaign.into());
    s.is_test = is_test;
    let normalized = normalize(s, &NormalizeConfig::default()).unwrap();
    let id = store.ingest(&normalized, at).await.unwrap().lead_id;
    Seeded { id, name, email }
}

struct World {
    state: ApiState,
    /// In the call list.
    waiting: Vec<Seeded>,
    /// Not in it: contacted, lost, cold, test, older than the list's days.
    not_waiting: Vec<Seeded>,
    predicted: String,
    today: String,
    month_ago: String,
}

/// Leads of the last 30 days from several sources (some named to break a page), spend,
/// reviews, a prediction on one lead, then the rollup of those days.
async fn seed() -> World {
    let store = fresh_store().await;
    let state = api(store.clone());
    let now = Utc::now();
    let ago = |d: i64, h: i64| now - Duration::days(d) - Duration::hours(h);
    let long = long_campaign();
    let sources: [(&str, &str); 6] = [
        ("google", "brand"),
        ("facebook", "retarget"),
        (SCRIPT_SOURCE, QUOTED_CAMPAIGN),
        ("linkedin", RTL_CAMPAIGN),
        ("google", ZERO_WIDTH_CAMPAIGN),
        ("bing", &long),
    ];
    let mut waiting = Vec::new();
    let mut not_waiting = Vec::new();
    let mut n = 0;
    // Thirty days of ordinary traffic: mostly cold, some MQLs, every fifth hot.
    for day in 0..30 {
        for k in 0..3 {
            n += 1;
            let (source, campaign) = sources[(day as usize + k) % sources.len()];
            let profile = match n % 5 {
                0 => Profile::Hot,
                1 | 3 => Profile::Mql,
                _ => Profile::Cold,
            };
            let at = ago(day, 2 + k as i64);
            let lead = ingest(&store, n, profile, at, source, campaign, false).await;
            let contacted = n % 4 == 0;
            if contacted {
                post(
                    &state,
                    &format!("/leads/{}/events", lead.id),
                    json!({"event_id": format!("c{n}"), "type": "contacted", "at": now.to_rfc3339()}),
                )
                .await;
            }
            // What ingest scored decides, checked against the profile.
            let stored = store.get_lead(&lead.id).await.unwrap().unwrap();
            let hot = stored.temperature == Some(Temperature::Hot);
            match profile {
                Profile::Hot => assert!(hot, "{n}: {:?}", stored.score),
                Profile::Mql => assert!(
                    !hot && stored.stage == Stage::Mql,
                    "{n}: {:?}",
                    stored.score
                ),
                Profile::Cold => assert!(
                    !hot && stored.stage == Stage::Lead,
                    "{n}: {:?}",
                    stored.score
                ),
            }
            let recent = (now.date_naive() - at.date_naive()).num_days() < 14;
            if (hot || stored.stage == Stage::Mql) && recent && !contacted {
                waiting.push(lead);
            } else {
                not_waiting.push(lead);
            }
        }
    }
    // Lost and test leads are never called, however hot.
    n += 1;
    let lost = ingest(&store, n, Profile::Hot, ago(1, 0), "google", "brand", false).await;
    post(
        &state,
        &format!("/leads/{}/events", lost.id),
        json!({"event_id": "lost-1", "type": "lost", "reason": "no budget"}),
    )
    .await;
    not_waiting.push(lost);
    n += 1;
    not_waiting.push(ingest(&store, n, Profile::Hot, ago(0, 1), "google", "brand", true).await);
    assert!(waiting.len() >= 8, "{} leads to call", waiting.len());

    // A lead the predictive model has scored (rescore writes these attributes).
    let template: Vec<_> = store
        .lead_partition(&waiting[0].id)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("#LEAD"))
        .collect();
    let predicted = leadflow::store::new_id();
    store
        .put_lead_copies(&template, std::slice::from_ref(&predicted), |_, item| {
            use aws_sdk_dynamodb::types::AttributeValue;
            item.insert(
                "predicted_conversion".into(),
                AttributeValue::N("0.4271".into()),
            );
            item.insert(
                "prediction".into(),
                AttributeValue::M(
                    [
                        ("model_version".to_string(), AttributeValue::N("3".into())),
                        ("top_features".to_string(), AttributeValue::L(vec![])),
                        (
                            "predicted_at".to_string(),
                            AttributeValue::S(now.to_rfc3339()),
                        ),
                    ]
                    .into(),
                ),
            );
        })
        .await
        .unwrap();

    for day in 0..30 {
        for (source, channel, campaign, amount) in [
            ("google", "paid_search", "brand", 40.5),
            ("facebook", "paid_social", "retarget", 25.0),
            (SCRIPT_SOURCE, "paid_search", QUOTED_CAMPAIGN, 10.0),
        ] {
            post(
                &state,
                "/spend",
                json!({"date": ago(day, 0).format("%Y-%m-%d").to_string(), "source": source,
                       "channel": channel, "campaign": campaign, "amount": amount}),
            )
            .await;
        }
    }
    for (i, (platform, rating)) in [
        (ReviewPlatform::Google, 5),
        (ReviewPlatform::Google, 5),
        (ReviewPlatform::Google, 4),
        (ReviewPlatform::Google, 1),
        (ReviewPlatform::Trustpilot, 3),
        (ReviewPlatform::Trustpilot, 5),
    ]
    .into_iter()
    .enumerate()
    {
        let review = ReviewInput {
            platform,
            external_id: format!("r{i}"),
            rating,
            title: Some("<img src=x onerror=alert(1)>".into()),
            text: None,
            name: None,
            published_at: ago(i as i64, 0),
            updated_at: None,
            reference_id: None,
        };
        store
            .write_review(ReviewChange::Upsert(&review), None, None, now)
            .await
            .unwrap();
    }

    let today = now.format("%Y-%m-%d").to_string();
    let month_ago = ago(29, 0).format("%Y-%m-%d").to_string();
    let rollup = RollupState::from_lookup(store.clone(), |_| None).unwrap();
    let out: Value =
        metrics_rollup::handler(&rollup, json_event(json!({"from": month_ago, "to": today})))
            .await
            .unwrap();
    assert!(out.is_object(), "{out}");
    World {
        state,
        waiting,
        not_waiting,
        predicted,
        today,
        month_ago,
    }
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Chromium headless on a local file with a window `width` wide; `extra` is `--dump-dom`
/// or `--screenshot=<path>`. Returns stdout.
fn chromium(file: &Path, width: u32, height: u32, extra: &str) -> String {
    let profile = file.with_extension(format!("profile-{width}-{}", std::process::id()));
    let out = Command::new(integration_tests::chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(extra)
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs (scripts/bootstrap installs it)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the browser measured on the page at a width: the document's width and height, the
/// viewport's width, and how far right any element reaches. The page has no scripts; the
/// test adds this one to a copy of it, only to read the layout back through `--dump-dom`.
struct Layout {
    scroll_width: f64,
    client_width: f64,
    widest_right: f64,
    height: f64,
    dom: String,
}

const MEASURE: &str = "<script>(function(){var d=document.documentElement,r=0;\
document.querySelectorAll('body *').forEach(function(e){var b=e.getBoundingClientRect();\
if(b.width>0&&b.right>r)r=b.right;});var m=document.createElement('pre');m.id='layout';\
m.textContent=[d.scrollWidth,d.clientWidth,r,d.scrollHeight].join(' ');\
document.body.appendChild(m);})();</script>";

fn measure(dir: &Path, name: &str, page: &str, width: u32) -> Layout {
    let file = dir.join(format!("{name}-measure-{width}.html"));
    std::fs::write(&file, page.replace("</body>", &format!("{MEASURE}</body>"))).unwrap();
    let dom = chromium(&file, width, 900, "--dump-dom");
    let numbers: Vec<f64> = dom
        .split("<pre id=\"layout\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .expect("the measurement ran")
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    Layout {
        scroll_width: numbers[0],
        client_width: numbers[1],
        widest_right: numbers[2],
        height: numbers[3],
        dom,
    }
}

/// A full-page screenshot at `width` (the window as tall as the page), kept as an artifact.
fn screenshot(dir: &Path, name: &str, page: &str, width: u32, height: f64) -> PathBuf {
    let file = dir.join(format!("{name}.html"));
    std::fs::write(&file, page).unwrap();
    let png = artifacts().join(format!("{name}-{width}px.png"));
    let _ = std::fs::remove_file(&png);
    chromium(
        &file,
        width,
        (height.ceil() as u32).clamp(600, 16_000),
        &format!("--screenshot={}", png.display()),
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot {} is {size} bytes",
        png.display()
    );
    png
}

fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("section {id} missing from the rendered DOM"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").expect("section closed")]
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser_at_desktop_and_phone_widths() {
    let w = seed().await;
    let page = dashboard(&w.state, "").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.headers["content-type"].starts_with("text/html"));
    assert!(page.headers["content-security-policy"].contains("default-src 'none'"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    let html = &page.text;
    assert!(
        !html.contains("<script"),
        "no scripts, and no injected ones"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing loaded from anywhere"
    );

    let dir = std::env::temp_dir().join(format!("leadflow-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Kept beside the screenshots: the page as served, to open in any browser.
    let plain = artifacts().join("dashboard.html");
    std::fs::write(&plain, html).unwrap();
    let dom = chromium(&plain, 1280, 900, "--dump-dom");

    // The browser built every section.
    let range = section(&dom, "range");
    for field in [
        "from", "to", "channel", "source", "campaign", "sort", "dir", "key",
    ] {
        assert!(
            range.contains(&format!("name=\"{field}\"")),
            "form field {field}"
        );
    }
    assert!(range.contains(&format!("value=\"{}\"", w.month_ago)));
    assert!(range.contains(&format!("value=\"{}\"", w.today)));
    for n in [7, 30, 90] {
        assert!(range.contains(&format!(">Last {n} days</a>")), "preset {n}");
    }
    assert!(
        range.contains("aria-current=\"page\">Last 30 days"),
        "the default range is the 30-day preset"
    );
    // Hostile names are choices of the filter, as text.
    assert!(range.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let trends = section(&dom, "trends");
    for id in ["trend-leads", "trend-mqls", "trend-cpl"] {
        assert!(trends.contains(&format!("id=\"{id}\"")), "chart {id}");
    }
    assert!(trends.matches("<polyline").count() >= 3);
    assert_eq!(trends.matches("class=\"day\"").count(), 3 * 30);

    let calls = section(&dom, "calls");
    for lead in &w.waiting {
        assert!(calls.contains(&lead.id), "{} should be called", lead.name);
    }
    for lead in &w.not_waiting {
        assert!(
            !calls.contains(&lead.id),
            "{} should not be listed",
            lead.name
        );
    }
    assert!(calls.contains(&w.predicted), "the lead with a prediction");
    assert!(calls.contains("Predicted conversion") && calls.contains("42.7%"));
    // The dashboard-only key sees no personal data.
    for lead in w.waiting.iter().chain(&w.not_waiting) {
        assert!(!dom.contains(&lead.email) && !dom.contains(&lead.name));
    }
    assert!(calls.contains("shown to keys with the read scope"));

    let campaigns = section(&dom, "campaigns");
    assert!(campaigns.contains("<table"));
    for text in ["brand", "retarget", "&lt;b&gt;more&lt;/b&gt;", "&amp;"] {
        assert!(campaigns.contains(text), "campaign table shows {text}");
    }
    assert!(
        campaigns.contains(&"W".repeat(91)),
        "the long name, bounded"
    );
    assert!(campaigns.contains("\u{202e}gnirps\u{202c} offer</bdi>"));
    assert!(campaigns.contains("aria-sort=\"descending\""));

    let reviews = section(&dom, "reviews");
    assert!(reviews.contains("id=\"reviews-google\"") && reviews.contains("4 reviews in all"));
    assert!(reviews.contains("id=\"reviews-trustpilot\""));
    assert!(!reviews.contains("reviews-yelp"), "no empty platforms");
    assert_eq!(
        reviews.matches("class=\"bar\"").count(),
        10,
        "5 ratings x 2"
    );
    assert!(reviews.contains("2 (50%)") && reviews.contains("3.75"));
    assert!(section(&dom, "kpis").contains("New leads"));
    // Only our own elements: a hostile name never became one.
    assert!(!dom.contains("<script") && !dom.contains("<b>more") && !dom.contains("<img"));

    // Desktop and phone: nothing wider than the window, screenshots kept.
    let mut shots = Vec::new();
    for width in [1280, 390] {
        let layout = measure(&dir, "dashboard", html, width);
        for id in ["range", "kpis", "trends", "calls", "campaigns", "reviews"] {
            section(&layout.dom, id);
        }
        assert!(
            layout.scroll_width <= layout.client_width,
            "{width} px: the page scrolls sideways ({} > {})",
            layout.scroll_width,
            layout.client_width
        );
        assert!(
            layout.widest_right <= layout.client_width + 0.5,
            "{width} px: an element reaches {} px",
            layout.widest_right
        );
        shots.push(screenshot(&dir, "dashboard", html, width, layout.height));
    }
    println!("screenshots: {shots:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn personal_data_only_for_a_key_that_may_read_leads() {
    let w = seed().await;
    let by_query = dashboard(&w.state, "").await;
    let by_reader = send(
        &w.state,
        EventBuilder::new("GET", "/dashboard").header("x-api-key", READER_KEY),
    )
    .await;
    assert_eq!((by_query.status, by_reader.status), (200, 200));
    for lead in &w.waiting {
        assert!(!by_query.text.contains(&lead.email));
        assert!(by_reader.text.contains(&lead.email), "{}", lead.email);
        assert!(by_reader.text.contains(&lead.name));
        assert!(by_reader
            .text
            .contains(&format!("href=\"mailto:{}\"", lead.email)));
    }
    assert!(by_reader.text.contains("href=\"tel:+1415555"));
    // The reader's page keeps no key in its links (it sent it in a header).
    assert!(!by_reader.text.contains("name=\"key\""));
    assert!(!by_reader.text.contains(READER_KEY));
    // A key that can read but has no dashboard scope is refused.
    let writer = send(
        &w.state,
        EventBuilder::new("GET", "/dashboard").header("x-api-key", WRITE_KEY),
    )
    .await;
    assert_eq!(writer.status, 403, "{}", writer.text);
    // The call list follows the filters.
    let google = dashboard(&w.state, "source=google").await;
    let facebook_lead = w
        .waiting
        .iter()
        .find(|l| !google.text.contains(&l.id))
        .expect("some waiting lead is not from google");
    assert!(by_query.text.contains(&facebook_lead.id));
}

#[tokio::test]
async fn sorting_filtering_and_bad_parameters() {
    let w = seed().await;
    let order = |html: &str| -> Vec<String> {
        let table = section(html, "campaigns");
        table
            .split("<td data-label=\"Campaign\"><bdi>")
            .skip(1)
            .map(|r| r.split("</bdi>").next().unwrap().to_string())
            .collect()
    };
    let range = format!("from={}&to={}", w.month_ago, w.today);
    let by_spend = dashboard(&w.state, &format!("{range}&sort=spend")).await;
    assert_eq!(by_spend.status, 200);
    let first = order(&by_spend.text);
    assert_eq!(
        first[0], "brand",
        "google/brand has the most spend: {first:?}"
    );
    let by_name = order(
        &dashboard(&w.state, &format!("{range}&sort=campaign&dir=asc"))
            .await
            .text,
    );
    let mut sorted = by_name.clone();
    sorted.sort();
    assert_eq!(by_name, sorted);
    let by_name_desc = order(
        &dashboard(&w.state, &format!("{range}&sort=campaign&dir=desc"))
            .await
            .text,
    );
    assert_eq!(
        by_name_desc,
        by_name.iter().rev().cloned().collect::<Vec<_>>()
    );

    // Filters narrow every section; a hostile source is a filter value like any other.
    let hostile = form_urlencoded::Serializer::new(String::new())
        .append_pair("source", SCRIPT_SOURCE)
        .finish();
    let only = dashboard(&w.state, &format!("{range}&{hostile}")).await;
    assert_eq!(only.status, 200);
    assert_eq!(
        order(&only.text),
        [lead_api::dashboard::esc(QUOTED_CAMPAIGN)]
    );
    assert!(!only.text.contains("<script>"));
    let social = order(
        &dashboard(&w.state, &format!("{range}&channel=paid_social"))
            .await
            .text,
    );
    assert!(social.contains(&"retarget".to_string()), "{social:?}");
    assert!(!social.contains(&"brand".to_string()), "{social:?}");

    for (query, field, status) in [
        ("sort=planet", "sort", 400),
        ("sort=leads&dir=sideways", "dir", 400),
        ("channel=tv", "channel", 400),
        ("from=2026-02-31", "from", 422),
        ("from=2020-01-01&to=2026-01-01", "from", 422),
    ] {
        let a = dashboard(&w.state, query).await;
        assert_eq!(a.status, status, "{query}: {}", a.text);
        assert!(a.headers["content-type"].starts_with("application/json"));
        assert_eq!(a.json["error"]["field"], field, "{query}");
        let code = a.json["error"]["code"].as_str().unwrap_or_default();
        assert!(
            ["invalid_value", "invalid_range"].contains(&code),
            "{query}: {code}"
        );
    }
}

/// 400 days of rollups, 40 groups a day with long names, through the handler: the DynamoDB
/// round trips (counted by `store::RoundTrips`) and the answer's size, printed. Lambda's
/// answer limit is 6 MB; the round trips are one Query per day of rollups (the store's read
/// function), one GetItem per review platform and one Query per call-list day.
#[tokio::test]
async fn a_400_day_range_renders_within_the_function_limits() {
    let store = fresh_store().await;
    let state = api(store.clone());
    let today = Utc::now().date_naive();
    let days: Vec<String> = (0..400)
        .rev()
        .map(|d| (today - Duration::days(d)).to_string())
        .collect();
    for (i, day) in days.iter().enumerate() {
        let rows: std::collections::BTreeMap<GroupKey, RollupCounts> = (0..40)
            .map(|g| {
                (
                    GroupKey {
                        day: day.clone(),
                        source: format!("source-{}-{}", g % 8, "s".repeat(80)),
                        channel: "paid_search".into(),
                        campaign: format!("campaign-{g}-{}", "c".repeat(80)),
                    },
                    RollupCounts {
                        new_leads: (i % 7 + g % 5) as u64,
                        mqls: (g % 3) as u64,
                        customers: (g % 11 == 0) as u64,
                        spend_micros: [("USD".to_string(), 1_000_000 * (g as i64 + 1))].into(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        store
            .replace_day_rollups(day, &rows, Utc::now())
            .await
            .unwrap();
    }
    let before = store.round_trips();
    let started = std::time::Instant::now();
    let page = dashboard(&state, &format!("from={}&to={}", days[0], days[399])).await;
    let elapsed = started.elapsed();
    let trips = store.round_trips() - before;
    assert_eq!(page.status, 200, "{}", page.text);
    let bytes = page.text.len();
    println!(
        "400-day dashboard: {trips} DynamoDB round trips (rollups of at most 15 calendar months, \
         1 for the review aggregates, {} call-list days), {bytes} bytes, {} ms on DynamoDB Local",
        lead_api::dashboard::CALL_LIST_DAYS,
        elapsed.as_millis()
    );
    assert!(bytes < 6 * 1024 * 1024, "Lambda answers at most 6 MB");
    // 400 days span at most 15 calendar months (one rollup Query each); one BatchGetItem of
    // every platform's review aggregate; the call list's days.
    let bound = 15 + 1 + lead_api::dashboard::CALL_LIST_DAYS as usize;
    assert!(
        trips as usize <= bound,
        "{trips} round trips, at most {bound} expected"
    );
    assert_eq!(
        section(&page.text, "trends")
            .matches("class=\"day\"")
            .count(),
        3 * 400
    );
    // 40 groups x 400 days are 40 campaigns: all listed; the call list is empty.
    assert_eq!(
        section(&page.text, "campaigns")
            .matches("data-label=\"Campaign\"")
            .count(),
        40
    );
    assert!(section(&page.text, "calls").contains("Nobody is waiting"));
}
