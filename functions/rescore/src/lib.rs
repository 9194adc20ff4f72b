//! rescore: keeps every lead's score, temperature and stage current (shared/src/scoring.rs).
//!
//! Input (EventBridge schedule, or a manual invoke):
//! - any scheduled event: the full run. Leads are read with a parallel Scan of `SEGMENTS`
//!   segments processed concurrently; each page's progress is saved, and before the Lambda
//!   deadline (minus `SAFETY_MARGIN_MS`) the invocation stops and the next one resumes, so a
//!   table of any size completes across invocations;
//! - `{"lead_id": "..."}`: that lead only;
//! - `{"segment": n, "total_segments": m}`: one segment, with its own checkpoint;
//! - `{"set_config": {...}}`: validates and stores a scoring configuration (replacing the
//!   built-in one); `{"get_config": true}` answers the configuration in force;
//! - `{"train": true}` (weekly schedule) and `{"get_model": true}`: the predictive score
//!   (`predictive`). Every rescore applies the model in force: `predicted_conversion` and its
//!   top features are stored beside the rules score (never in its place), may raise the
//!   temperature when the configuration says so, and ride in the published events.
//!
//! Only leads whose score, temperature or stage changed are written, conditioned on the lead's
//! version (a concurrent ingest is never clobbered: the lead is re-read and rescored). Temperature
//! and stage changes get a score-change record and an EventBridge event
//! (`lead.temperature_changed`, `lead.stage_changed`; `leadflow::events`: rescore announces the
//! changes its own writes make, the stream function `lead-events` every other change). The result, also logged and emitted as EMF
//! metrics, is the run summary `{"scanned", "changed", "written", "conflicts", "errors",
//! "complete", ...}`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
pub use leadflow::events::Publisher;
use leadflow::events::{change_events, ChangeEvent};
use leadflow::lambda_time;
pub use leadflow::rescoring::Scorer;
use leadflow::rescoring::{load_predictor, load_rules};
use leadflow::scoring::ScoringConfig;
use leadflow::store::{
    RescoreProgress, RunScope, ScoreWrite, ScoreWriter, ScoringInput, SegmentProgress, Store,
    StoreError,
};
use leadflow::telemetry::Metrics;
use serde::Deserialize;
use serde_json::{json, Value};

mod predictive;

/// The `source` of every published event.
pub const EVENT_SOURCE: &str = "leadflow.rescore";
/// Conditional writes per lead before giving up on it for this run (counted as an error).
const MAX_ATTEMPTS: u32 = 3;
/// Score writes in flight per segment.
const WRITE_CONCURRENCY: usize = 16;

/// Everything the handler needs, built once per cold start.
pub struct RescoreState {
    pub store: Store,
    /// `None`: changes are recorded but not published (`EVENT_BUS_NAME` empty).
    pub publisher: Option<Publisher>,
    /// `SEGMENTS` (default 8, 1..=64): parallel scan segments, processed concurrently.
    pub segments: u32,
    /// `PAGE_SIZE`: items evaluated per Scan page (default: DynamoDB's 1 MB pages).
    pub page_size: Option<i32>,
    /// `SAFETY_MARGIN_MS` (default 20000): no new page starts closer than this to the deadline.
    pub safety_margin: Duration,
    /// `MAX_PAGES`: pages per invocation across all segments (default unlimited); bounds the work
    /// of one invocation independently of its deadline.
    pub max_pages: Option<u64>,
    /// `FUNCTION_TIMEOUT_SECONDS`: the function's configured timeout (the template sets it next
    /// to `Timeout`), used when the invocation's deadline is implausible (already past at the
    /// start, as under `cargo lambda watch`): see `leadflow::lambda_time`.
    pub timeout: Option<Duration>,
    /// `PAGE_STATS` (`1`/`true`): the summary lists every page's figures (`page_stats`: scan,
    /// evaluation and write times, leads, writes). Off by default: a full run has hundreds of
    /// pages; the totals (`scan_ms`, `eval_ms`, `write_ms`) are always in the summary.
    pub page_stats: bool,
}

impl RescoreState {
    pub fn from_lookup(
        store: Store,
        publisher: Option<Publisher>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<RescoreState, String> {
        let num = |name: &str, lo, hi| leadflow::config::bounded_number(&get, name, lo, hi);
        Ok(RescoreState {
            store,
            publisher,
            segments: num("SEGMENTS", 1, 64)?.unwrap_or(8) as u32,
            page_size: num("PAGE_SIZE", 1, 10_000)?.map(|p| p as i32),
            safety_margin: Duration::from_millis(
                num("SAFETY_MARGIN_MS", 0, 600_000)?.unwrap_or(20_000),
            ),
            max_pages: num("MAX_PAGES", 1, 1_000_000)?,
            timeout: num("FUNCTION_TIMEOUT_SECONDS", 1, 900)?.map(Duration::from_secs),
            page_stats: matches!(get("PAGE_STATS").as_deref(), Some("1" | "true")),
        })
    }
}

/// What one invocation did.
#[derive(Debug, Default)]
pub struct Counters {
    pub scanned: AtomicU64,
    pub changed: AtomicU64,
    pub written: AtomicU64,
    pub conflicts: AtomicU64,
    pub errors: AtomicU64,
    pub published: AtomicU64,
    pub pages: AtomicU64,
    /// Time waiting for Scan pages (and the Query completing a partition a page cut), µs.
    pub scan_us: AtomicU64,
    /// Time scoring leads (the rules and the predictive model: CPU), µs.
    pub eval_us: AtomicU64,
    /// Time of the rest of each page: score writes in flight, publishing, the checkpoint, µs.
    pub write_us: AtomicU64,
    /// Per page, when `PAGE_STATS` is on.
    pub page_log: std::sync::Mutex<Vec<Value>>,
}

impl Counters {
    fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Ordering::Relaxed);
    }

    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One page's own share of the counters (segments run concurrently).
#[derive(Debug, Default)]
struct PageTally {
    eval_us: AtomicU64,
    written: AtomicU64,
}

/// When to stop starting new pages.
struct Budget {
    stop_at: Option<Instant>,
    pages_left: Option<AtomicI64>,
}

impl Budget {
    /// Takes one page from the budget; false when none is left.
    fn take_page(&self) -> bool {
        if let Some(stop) = self.stop_at {
            if Instant::now() >= stop {
                return false;
            }
        }
        match &self.pages_left {
            None => true,
            Some(left) => left.fetch_sub(1, Ordering::Relaxed) > 0,
        }
    }
}

/// What an invocation is asked to do, read from the event's shape (module docs). Any event
/// that names none of these keys (an EventBridge schedule, `{}`) is the full run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub enum RescoreEvent {
    /// `{"set_config": {...}}`: validate and store a scoring configuration.
    SetConfig(Value),
    /// `{"get_config": true}`: the configuration in force.
    GetConfig,
    /// `{"train": true}` or `{"train": {settings}}`: train the predictive model now.
    Train(Value),
    /// `{"get_model": true}`: the predictive model's evaluation, or why none is trained.
    GetModel,
    /// `{"lead_id": "..."}`: that lead only.
    Lead(String),
    /// `{"segment": n, "total_segments": m}`: one segment, with its own checkpoint.
    Segment { segment: u64, total_segments: u64 },
    /// The full run (or its resumption).
    Run,
}

/// The keys an event may carry; everything else in it (a schedule's `source`, `detail`...)
/// is ignored.
#[derive(Deserialize)]
struct RawEvent {
    set_config: Option<Value>,
    get_config: Option<serde::de::IgnoredAny>,
    train: Option<Value>,
    get_model: Option<serde::de::IgnoredAny>,
    lead_id: Option<Value>,
    segment: Option<Value>,
    total_segments: Option<Value>,
}

/// `segment` and `total_segments` take whole numbers; their range is checked when the run
/// starts.
const SEGMENT_RANGE: &str = "segment must be a number below total_segments (1 to 64)";

impl TryFrom<RawEvent> for RescoreEvent {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<RescoreEvent, String> {
        if let Some(cfg) = raw.set_config {
            return Ok(RescoreEvent::SetConfig(cfg));
        }
        if let Some(settings) = raw.train {
            return Ok(RescoreEvent::Train(settings));
        }
        if raw.get_model.is_some() {
            return Ok(RescoreEvent::GetModel);
        }
        if raw.get_config.is_some() {
            return Ok(RescoreEvent::GetConfig);
        }
        if let Some(id) = raw.lead_id {
            return id
                .as_str()
                .filter(|s| !s.trim().is_empty() && s.len() <= 64)
                .map(|s| RescoreEvent::Lead(s.to_string()))
                .ok_or_else(|| "lead_id must be a non-empty string".to_string());
        }
        match (raw.segment, raw.total_segments) {
            (None, None) => Ok(RescoreEvent::Run),
            (Some(s), Some(t)) => match (s.as_u64(), t.as_u64()) {
                (Some(segment), Some(total_segments)) => Ok(RescoreEvent::Segment {
                    segment,
                    total_segments,
                }),
                _ => Err(SEGMENT_RANGE.to_string()),
            },
            _ => Err("give both segment and total_segments".to_string()),
        }
    }
}

/// The handler: does what the event asks; the result is the run summary.
pub async fn handler(
    state: &RescoreState,
    event: LambdaEvent<RescoreEvent>,
) -> Result<Value, lambda_runtime::Error> {
    let (input, context) = event.into_parts();
    let started = Instant::now();
    let now = Utc::now();
    // The Lambda deadline (epoch ms; 0 means none: a test context), read as `lambda_time` says:
    // seconds scaled, an implausible one replaced by the configured timeout.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let stop_at = lambda_time::remaining(context.deadline, now_ms, state.timeout)
        .map(|remaining| started + remaining.saturating_sub(state.safety_margin));

    if let RescoreEvent::SetConfig(cfg) = &input {
        return set_config(state, cfg, now).await;
    }
    let model = load_rules(&state.store).await?;
    if let Some(answer) = predictive::dispatch(state, &input, &model, stop_at, now).await? {
        return Ok(answer);
    }
    if let RescoreEvent::GetConfig = &input {
        return Ok(json!({"config": model.config(), "source": config_source(&state.store).await?}));
    }
    let model = Scorer {
        predictor: load_predictor(&state.store).await?,
        rules: model,
    };
    let counters = Counters::default();
    let round_trips = state.store.round_trips();
    let target = match input {
        RescoreEvent::SetConfig(_)
        | RescoreEvent::GetConfig
        | RescoreEvent::Train(_)
        | RescoreEvent::GetModel => unreachable!("answered above"),
        RescoreEvent::Lead(lead_id) => {
            match state.store.scoring_input(&lead_id).await? {
                None => return Err(format!("no lead {lead_id}").into()),
                Some(lead) => {
                    Counters::add(&counters.scanned, 1);
                    let events =
                        rescore_lead(state, &model, lead, now, &counters, &PageTally::default())
                            .await;
                    publish(state, events, &counters).await;
                }
            }
            None
        }
        RescoreEvent::Segment {
            segment,
            total_segments,
        } => {
            if !(1..=64).contains(&total_segments) || segment >= total_segments {
                return Err(SEGMENT_RANGE.into());
            }
            Some(RunScope::Segment {
                segment: segment as u32,
                total: total_segments as u32,
            })
        }
        RescoreEvent::Run => Some(RunScope::Full),
    };
    let complete = match target {
        // One lead: done.
        None => true,
        Some(scope) => {
            let budget = Budget {
                stop_at,
                pages_left: state.max_pages.map(|p| AtomicI64::new(p as i64)),
            };
            run(state, &model, scope, &budget, now, &counters).await?
        }
    };

    let summary = json!({
        "scanned": Counters::get(&counters.scanned),
        "changed": Counters::get(&counters.changed),
        "written": Counters::get(&counters.written),
        "conflicts": Counters::get(&counters.conflicts),
        "errors": Counters::get(&counters.errors),
        "published": Counters::get(&counters.published),
        "pages": Counters::get(&counters.pages),
        "scan_ms": Counters::get(&counters.scan_us) / 1000,
        "eval_ms": Counters::get(&counters.eval_us) / 1000,
        "write_ms": Counters::get(&counters.write_us) / 1000,
        "complete": complete,
        "duration_ms": started.elapsed().as_millis() as u64,
        "dynamodb_round_trips": state.store.round_trips() - round_trips,
        "config_version": model.rules.config().version,
        "model_version": model.predictor.as_ref().map(|p| p.model().model_version),
    });
    let mut summary = summary;
    if state.page_stats {
        let pages = std::mem::take(&mut *counters.page_log.lock().expect("page log"));
        summary["page_stats"] = Value::Array(pages);
    }
    let mut metrics = Metrics::new("leadflow").dimension("function", "rescore");
    for name in [
        "scanned",
        "changed",
        "written",
        "conflicts",
        "errors",
        "published",
        "dynamodb_round_trips",
    ] {
        metrics.count(name, summary[name].as_u64().unwrap_or(0) as f64);
    }
    metrics.count("complete", if complete { 1.0 } else { 0.0 });
    metrics.millis(
        "duration",
        summary["duration_ms"].as_u64().unwrap_or(0) as f64,
    );
    metrics.emit();
    tracing::info!(summary = %summary, "rescore finished");
    Ok(summary)
}

async fn config_source(store: &Store) -> Result<&'static str, StoreError> {
    Ok(if store.scoring_config_json().await?.is_some() {
        "stored"
    } else {
        "builtin"
    })
}

async fn set_config(
    state: &RescoreState,
    cfg: &Value,
    now: DateTime<Utc>,
) -> Result<Value, lambda_runtime::Error> {
    let text = cfg.to_string();
    let parsed = ScoringConfig::from_json(&text)?;
    state
        .store
        .put_scoring_config(&parsed.to_json(), parsed.version, now)
        .await?;
    tracing::info!(
        config_version = parsed.version,
        "scoring configuration stored"
    );
    Ok(json!({"stored": true, "config_version": parsed.version}))
}

/// Runs (or resumes) the full run or one targeted segment; true when every segment finished.
async fn run(
    state: &RescoreState,
    model: &Scorer,
    scope: RunScope,
    budget: &Budget,
    now: DateTime<Utc>,
    counters: &Counters,
) -> Result<bool, lambda_runtime::Error> {
    let (total, wanted): (u32, Vec<u32>) = match scope {
        RunScope::Segment { segment, total } => (total, vec![segment]),
        RunScope::Full => (state.segments, (0..state.segments).collect()),
    };
    let progress = match state.store.rescore_progress(scope).await? {
        // Resume, unless the segment count changed: cursors of another split mean nothing.
        Some(p) if p.total_segments == total && p.segments.len() == wanted.len() => p,
        _ => {
            let p = RescoreProgress::start(total, &wanted, now);
            state.store.start_rescore_run(scope, &p).await?;
            p
        }
    };
    let results = join_all(progress.segments.iter().filter(|(_, p)| !p.done).map(
        |(segment, p)| {
            run_segment(
                state,
                model,
                scope,
                &progress.run_id,
                (*segment, total),
                p.cursor.clone(),
                budget,
                now,
                counters,
            )
        },
    ))
    .await;
    let mut complete = true;
    for r in results {
        match r {
            Ok(done) => complete &= done,
            Err(e) => {
                // One segment's failure does not stop the others; it resumes next time.
                tracing::error!(error = %e, "segment failed");
                Counters::add(&counters.errors, 1);
                complete = false;
            }
        }
    }
    if complete {
        state
            .store
            .finish_rescore_run(scope, &progress.run_id)
            .await?;
    }
    Ok(complete)
}

/// Processes a segment page by page until it ends or the budget is spent; true when it ended.
#[allow(clippy::too_many_arguments)]
async fn run_segment(
    state: &RescoreState,
    model: &Scorer,
    scope: RunScope,
    run_id: &str,
    (segment, total): (u32, u32),
    mut cursor: Option<leadflow::store::Item>,
    budget: &Budget,
    now: DateTime<Utc>,
    counters: &Counters,
) -> Result<bool, StoreError> {
    loop {
        if !budget.take_page() {
            return Ok(false);
        }
        let scan_started = Instant::now();
        let page = state
            .store
            .scan_segment_page(segment, total, cursor.clone(), state.page_size)
            .await?;
        let scan_us = scan_started.elapsed().as_micros() as u64;
        let rest_started = Instant::now();
        let tally = PageTally::default();
        let leads = page.leads.len() as u64;
        Counters::add(&counters.pages, 1);
        Counters::add(&counters.scanned, leads);
        let events: Vec<ChangeEvent> = stream::iter(page.leads)
            .map(|lead| rescore_lead(state, model, lead, now, counters, &tally))
            .buffer_unordered(WRITE_CONCURRENCY)
            .flat_map(stream::iter)
            .collect()
            .await;
        publish(state, events, counters).await;
        cursor = page.next;
        let done = cursor.is_none();
        let saved = state
            .store
            .save_segment_progress(
                scope,
                run_id,
                segment,
                &SegmentProgress {
                    cursor: cursor.clone(),
                    done,
                },
            )
            .await?;
        // Segments run concurrently on one thread: the page's wall time also holds other
        // segments' work, so its write time is what is left after its own scoring (bounded).
        let rest_us = rest_started.elapsed().as_micros() as u64;
        let eval_us = Counters::get(&tally.eval_us).min(rest_us);
        Counters::add(&counters.scan_us, scan_us);
        Counters::add(&counters.write_us, rest_us - eval_us);
        if state.page_stats {
            counters.page_log.lock().expect("page log").push(json!({
                "segment": segment,
                "leads": leads,
                "scan_ms": scan_us as f64 / 1000.0,
                "eval_ms": eval_us as f64 / 1000.0,
                "write_ms": (rest_us - eval_us) as f64 / 1000.0,
                "written": Counters::get(&tally.written),
            }));
        }
        if !saved {
            // A newer run replaced this one's checkpoint: leave the rest to it.
            return Ok(false);
        }
        if done {
            return Ok(true);
        }
    }
}

/// Rescores one lead; writes it when something changed (retrying on a version conflict with a
/// fresh read). Returns the events to publish.
async fn rescore_lead(
    state: &RescoreState,
    model: &Scorer,
    mut lead: ScoringInput,
    now: DateTime<Utc>,
    counters: &Counters,
    page: &PageTally,
) -> Vec<ChangeEvent> {
    let mut counted = false;
    for _ in 0..MAX_ATTEMPTS {
        // Erased leads keep their last non-personal score: their fit facts are gone.
        if lead.erased {
            return Vec::new();
        }
        let started = Instant::now();
        let (a, prediction) = model.assess(&lead, now);
        let spent = started.elapsed().as_micros() as u64;
        Counters::add(&counters.eval_us, spent);
        Counters::add(&page.eval_us, spent);
        if !lead.differs(&a, prediction.as_ref()) {
            return Vec::new();
        }
        if !counted {
            Counters::add(&counters.changed, 1);
            counted = true;
        }
        match state
            .store
            .write_score(&lead, &a, prediction.as_ref(), ScoreWriter::Rescore, now)
            .await
        {
            Ok(ScoreWrite::Written) => {
                Counters::add(&counters.written, 1);
                Counters::add(&page.written, 1);
                return change_events(&lead, &a, prediction.as_ref(), lead.version + 1);
            }
            Ok(ScoreWrite::Conflict) => {
                Counters::add(&counters.conflicts, 1);
                match state.store.scoring_input(&lead.lead_id).await {
                    Ok(Some(fresh)) => lead = fresh,
                    // Gone (erased and deleted) meanwhile: nothing to score.
                    Ok(None) => return Vec::new(),
                    Err(e) => {
                        tracing::error!(lead_id = lead.lead_id, error = %e, "re-read failed");
                        Counters::add(&counters.errors, 1);
                        return Vec::new();
                    }
                }
            }
            Err(e) => {
                tracing::error!(lead_id = lead.lead_id, error = %e, "score write failed");
                Counters::add(&counters.errors, 1);
                return Vec::new();
            }
        }
    }
    tracing::warn!(
        lead_id = lead.lead_id,
        "lead kept changing; left for the next run"
    );
    Counters::add(&counters.errors, 1);
    Vec::new()
}

/// Publishes events from rescore. A failed publish is counted and logged with the lead ids; the
/// score-change records remain the durable history.
async fn publish(state: &RescoreState, events: Vec<ChangeEvent>, counters: &Counters) {
    let Some(p) = &state.publisher else {
        return;
    };
    let done = p.publish(EVENT_SOURCE, &events).await;
    Counters::add(&counters.published, done.accepted);
    Counters::add(&counters.errors, done.failed);
}
