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
use leadflow::store::keys;
use leadflow::store::{
    RescoreProgress, ScoreWrite, ScoreWriter, ScoringInput, SegmentProgress, Store, StoreError,
};
use leadflow::telemetry::Metrics;
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
}

impl RescoreState {
    pub fn from_lookup(
        store: Store,
        publisher: Option<Publisher>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<RescoreState, String> {
        let num = |name: &str, lo: u64, hi: u64| -> Result<Option<u64>, String> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|x| (lo..=hi).contains(x))
                    .map(Some)
                    .ok_or_else(|| {
                        format!("{name} {v:?} must be a whole number from {lo} to {hi}")
                    }),
            }
        };
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
}

impl Counters {
    fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Ordering::Relaxed);
    }

    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
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

/// The handler: dispatches on the event's shape; the result is the run summary.
pub async fn handler(
    state: &RescoreState,
    event: LambdaEvent<Value>,
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

    if let Some(cfg) = input.get("set_config") {
        return set_config(state, cfg, now).await;
    }
    let model = load_rules(&state.store).await?;
    if let Some(answer) = predictive::dispatch(state, &input, &model, stop_at, now).await? {
        return Ok(answer);
    }
    if input.get("get_config").is_some() {
        return Ok(json!({"config": model.config(), "source": config_source(&state.store).await?}));
    }
    let model = Scorer {
        predictor: load_predictor(&state.store).await?,
        rules: model,
    };
    let counters = Counters::default();
    let round_trips = state.store.round_trips();
    let complete = if let Some(lead_id) = input.get("lead_id") {
        let lead_id = lead_id
            .as_str()
            .filter(|s| !s.trim().is_empty() && s.len() <= 64)
            .ok_or("lead_id must be a non-empty string")?;
        match state.store.scoring_input(lead_id).await? {
            None => return Err(format!("no lead {lead_id}").into()),
            Some(lead) => {
                Counters::add(&counters.scanned, 1);
                let events = rescore_lead(state, &model, lead, now, &counters).await;
                publish(state, events, &counters).await;
            }
        }
        true
    } else {
        let target = match (input.get("segment"), input.get("total_segments")) {
            (None, None) => None,
            (Some(s), Some(t)) => {
                let (s, t) = (s.as_u64(), t.as_u64());
                match (s, t) {
                    (Some(s), Some(t)) if (1..=64).contains(&t) && s < t => {
                        Some((s as u32, t as u32))
                    }
                    _ => {
                        return Err("segment must be a number below total_segments (1 to 64)".into())
                    }
                }
            }
            _ => return Err("give both segment and total_segments".into()),
        };
        let budget = Budget {
            stop_at,
            pages_left: state.max_pages.map(|p| AtomicI64::new(p as i64)),
        };
        run(state, &model, target, &budget, now, &counters).await?
    };

    let summary = json!({
        "scanned": Counters::get(&counters.scanned),
        "changed": Counters::get(&counters.changed),
        "written": Counters::get(&counters.written),
        "conflicts": Counters::get(&counters.conflicts),
        "errors": Counters::get(&counters.errors),
        "published": Counters::get(&counters.published),
        "pages": Counters::get(&counters.pages),
        "complete": complete,
        "duration_ms": started.elapsed().as_millis() as u64,
        "dynamodb_round_trips": state.store.round_trips() - round_trips,
        "config_version": model.rules.config().version,
        "model_version": model.predictor.as_ref().map(|p| p.model().model_version),
    });
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
    target: Option<(u32, u32)>,
    budget: &Budget,
    now: DateTime<Utc>,
    counters: &Counters,
) -> Result<bool, lambda_runtime::Error> {
    let sk = keys::rescore_progress_sk(target);
    let total = target.map(|(_, t)| t).unwrap_or(state.segments);
    let wanted: Vec<u32> = match target {
        Some((s, _)) => vec![s],
        None => (0..total).collect(),
    };
    let progress = match state.store.rescore_progress(&sk).await? {
        // Resume, unless the segment count changed: cursors of another split mean nothing.
        Some(p) if p.total_segments == total && p.segments.len() == wanted.len() => p,
        _ => {
            let p = RescoreProgress {
                run_id: keys::new_id(),
                total_segments: total,
                started_at: now,
                segments: wanted
                    .iter()
                    .map(|s| (*s, SegmentProgress::default()))
                    .collect(),
            };
            state.store.start_rescore_run(&sk, &p).await?;
            p
        }
    };
    let results = join_all(progress.segments.iter().filter(|(_, p)| !p.done).map(
        |(segment, p)| {
            run_segment(
                state,
                model,
                &sk,
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
            .finish_rescore_run(&sk, &progress.run_id)
            .await?;
    }
    Ok(complete)
}

/// Processes a segment page by page until it ends or the budget is spent; true when it ended.
#[allow(clippy::too_many_arguments)]
async fn run_segment(
    state: &RescoreState,
    model: &Scorer,
    sk: &str,
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
        let page = state
            .store
            .scan_segment_page(segment, total, cursor.clone(), state.page_size)
            .await?;
        Counters::add(&counters.pages, 1);
        Counters::add(&counters.scanned, page.leads.len() as u64);
        let events: Vec<ChangeEvent> = stream::iter(page.leads)
            .map(|lead| rescore_lead(state, model, lead, now, counters))
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
                sk,
                run_id,
                segment,
                &SegmentProgress {
                    cursor: cursor.clone(),
                    done,
                },
            )
            .await?;
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
) -> Vec<ChangeEvent> {
    let mut counted = false;
    for _ in 0..MAX_ATTEMPTS {
        // Erased leads keep their last non-personal score: their fit facts are gone.
        if lead.erased {
            return Vec::new();
        }
        let (a, prediction) = model.assess(&lead, now);
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
