//! metrics-rollup: recomputes the daily lead metrics (shared/src/metrics.rs) and overwrites
//! each day's rollups, so reruns and overlapping schedules are safe.
//!
//! Input (EventBridge schedule `Input`, or a manual invoke):
//! - `{"mode": "today"}`: today (the hourly schedule), and yesterday too in the first hour of
//!   the day, so the run after midnight finishes yesterday's last hour;
//! - `{"mode": "late"}`: the last `LATE_DAYS` days before today (the daily schedule: late data,
//!   leads converting after their creation day);
//! - `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`: a backfill range (at most 400 days);
//! - any other event (a plain scheduled event): today and the late-data window.
//!
//! Days are reporting days: local dates in `REPORT_TIME_ZONE` (default UTC), the days the
//! leads and touches are filed under (`leadflow::report_zone`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures_util::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use leadflow::metrics::{DayRollup, FixedCpl};
use leadflow::report_zone::ReportZone;
use leadflow::store::{DayIndex, Store, StoreError};
use leadflow::telemetry::Metrics;
use serde::Deserialize;
use serde_json::{json, Value};

/// Days recomputed concurrently: each is 2 x `DAY_SHARDS` Queries (one per shard and kind,
/// more for days over 1 MB a shard) and its writes.
const DAY_CONCURRENCY: usize = 4;
const MAX_RANGE_DAYS: i64 = 400;

pub struct RollupState {
    pub store: Store,
    /// `LATE_DAYS` (default 7).
    pub late_days: i64,
    /// `FIXED_CPL`: `source=amount,...` cost per lead for sources without a spend feed, in
    /// `FIXED_CPL_CURRENCY` (ISO 4217, default USD).
    pub fixed_cpl: FixedCpl,
    /// `RETENTION_DAYS`: leads inactive this long are erased by `{"mode": "retention"}`;
    /// unset: no retention.
    pub retention_days: Option<i64>,
    /// `RETENTION_MAX_PER_RUN` (default 200): leads one run erases at most; the next run goes on.
    pub retention_max_per_run: usize,
}

impl RollupState {
    pub fn from_lookup(
        store: Store,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<RollupState, String> {
        let late_days = match get("LATE_DAYS").filter(|v| !v.trim().is_empty()) {
            None => 7,
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|d| (0..=90).contains(d))
                .ok_or_else(|| format!("LATE_DAYS {v:?} must be a whole number from 0 to 90"))?,
        };
        Ok(RollupState {
            store: store.with_report_zone(leadflow::report_zone::ReportZone::from_lookup(&get)?),
            late_days,
            fixed_cpl: FixedCpl {
                currency: match get("FIXED_CPL_CURRENCY").filter(|v| !v.trim().is_empty()) {
                    None => "USD".to_string(),
                    Some(c) => leadflow::metrics::currency(&c).ok_or_else(|| {
                        format!("FIXED_CPL_CURRENCY {c:?} is not an ISO 4217 code")
                    })?,
                },
                micros_by_source: parse_fixed_cpl(&get("FIXED_CPL").unwrap_or_default())?,
            },
            retention_days: positive(&get, "RETENTION_DAYS")?.map(|d| d as i64),
            retention_max_per_run: positive(&get, "RETENTION_MAX_PER_RUN")?.unwrap_or(200),
        })
    }
}

/// `referral=25,trustpilot=0.5` -> micros per source.
pub fn parse_fixed_cpl(v: &str) -> Result<HashMap<String, i64>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (source, amount) = pair
                .split_once('=')
                .ok_or_else(|| format!("FIXED_CPL entry {pair:?} is not source=amount"))?;
            let micros = leadflow::metrics::parse_amount_micros(amount.trim())
                .map_err(|e| format!("FIXED_CPL amount in {pair:?}: {e}"))?;
            Ok((source.trim().to_lowercase(), micros))
        })
        .collect()
}

/// What an invocation recomputes, read from the event (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub enum RollupEvent {
    /// `{"mode": "today"}`.
    Today,
    /// `{"mode": "late"}`: the late-data window before today.
    Late,
    /// `{"from", "to"}`: a backfill.
    Range { from: NaiveDate, to: NaiveDate },
    /// Any other event (a plain scheduled event): today and the late-data window.
    Scheduled,
    /// `{"mode": "retention"}` (`"dry_run": true` only counts): erases the leads inactive for
    /// `RETENTION_DAYS`, through the same erasure as `DELETE /leads/{id}`.
    Retention { dry_run: bool },
}

/// The keys an event may carry; everything else in it is ignored.
#[derive(Deserialize)]
struct RawEvent {
    mode: Option<Value>,
    dry_run: Option<bool>,
    from: Option<Value>,
    to: Option<Value>,
}

impl TryFrom<RawEvent> for RollupEvent {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<RollupEvent, String> {
        let date = |k: &str, v: Option<Value>| -> Result<Option<NaiveDate>, String> {
            match v.as_ref().and_then(Value::as_str) {
                None => Ok(None),
                Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| format!("{k} must be YYYY-MM-DD, got {s:?}")),
            }
        };
        match (date("from", raw.from)?, date("to", raw.to)?) {
            (Some(from), Some(to)) => Ok(RollupEvent::Range { from, to }),
            (Some(_), None) | (None, Some(_)) => Err("give both from and to".into()),
            (None, None) => Ok(match raw.mode.as_ref().and_then(Value::as_str) {
                Some("today") => RollupEvent::Today,
                Some("late") => RollupEvent::Late,
                Some("retention") => RollupEvent::Retention {
                    dry_run: raw.dry_run.unwrap_or(false),
                },
                _ => RollupEvent::Scheduled,
            }),
        }
    }
}

/// A positive whole number from `var`, `None` when unset or empty.
fn positive(get: impl Fn(&str) -> Option<String>, var: &str) -> Result<Option<usize>, String> {
    match get(var).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("{var} {v:?} must be a positive whole number")),
    }
}

/// Erases (or with `dry_run` only counts) the leads inactive for `RETENTION_DAYS`. Retention is
/// data minimisation, not the person's objection: this function's store has no privacy
/// pepper, so no suppression entry is written and the person may come back as a new lead.
async fn retention(
    state: &RollupState,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Value, leadflow::store::StoreError> {
    let Some(days) = state.retention_days else {
        return Ok(json!({"retention": "off", "hint": "set RETENTION_DAYS"}));
    };
    let cutoff = now - Duration::days(days);
    let inactive = state.store.inactive_leads(cutoff).await?;
    let mut erased = 0;
    if !dry_run {
        for id in inactive.iter().take(state.retention_max_per_run) {
            if state.store.erase_lead(id, now).await?.is_some() {
                erased += 1;
            }
        }
    }
    let summary = json!({
        "retention_days": days,
        "inactive_since": leadflow::store::ts(cutoff),
        "inactive": inactive.len(),
        "dry_run": dry_run,
        "erased": erased,
        "remaining": inactive.len() - erased,
    });
    tracing::info!(summary = %summary, "retention");
    Ok(summary)
}

/// The reporting days an invocation recomputes at `now`, "today" being the local date in
/// `zone`.
pub fn days_for(
    event: &RollupEvent,
    now: DateTime<Utc>,
    zone: &ReportZone,
    late_days: i64,
) -> Result<Vec<NaiveDate>, String> {
    let today = zone.day(now);
    let (from, to) = match *event {
        RollupEvent::Range { from, to } => (from, to),
        // An hourly run lands anywhere in its hour: the first run of a day also recomputes
        // the day before, whose last minutes the previous run did not see.
        RollupEvent::Today => (zone.day(now - Duration::hours(1)), today),
        RollupEvent::Late => (today - Duration::days(late_days), today - Duration::days(1)),
        RollupEvent::Scheduled => (today - Duration::days(late_days), today),
        RollupEvent::Retention { .. } => return Ok(Vec::new()),
    };
    if to < from {
        return Ok(Vec::new());
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(format!("a range covers at most {MAX_RANGE_DAYS} days"));
    }
    Ok(from.iter_days().take_while(|d| *d <= to).collect())
}

/// Attempts per day: a transient failure (throttling, a timeout, a 5xx) is retried with
/// backoff; a permanent one (a ValidationException, a corrupt item) is not.
const DAY_ATTEMPTS: u32 = 3;

/// One day recomputed: its groups and the writes that replaced its rows.
struct DayDone {
    groups: usize,
    writes: usize,
}

/// Recomputes one day, streaming its leads and touches shard by shard and page by page
/// through [`DayRollup`], then replaces the day's rows.
async fn recompute_day(
    state: &RollupState,
    index: DayIndex,
    day: &str,
    now: DateTime<Utc>,
) -> Result<DayDone, StoreError> {
    let store = &state.store;
    let mut rollup = DayRollup::new(day, &state.fixed_cpl);
    store
        .visit_day_leads(index, day, |l| rollup.add_lead(&l))
        .await?;
    store
        .visit_day_touches(index, day, |t| rollup.add_touch(&t))
        .await?;
    for s in store.spend_on(day).await? {
        rollup.add_spend(&s);
    }
    let rows = rollup.finish();
    let writes = store.replace_day_rollups(day, &rows, now).await?;
    Ok(DayDone {
        groups: rows.len(),
        writes,
    })
}

/// The day, retried while its failure is transient.
async fn recompute_day_retried(
    state: &RollupState,
    index: DayIndex,
    day: &str,
    now: DateTime<Utc>,
) -> Result<DayDone, StoreError> {
    let mut attempt = 1;
    loop {
        match recompute_day(state, index, day, now).await {
            Err(e) if e.is_transient() && attempt < DAY_ATTEMPTS => {
                tracing::warn!(day, attempt, error = %e, "rollup day failed, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Recomputes the days the event names; the result is a run summary. Every run emits one EMF
/// record with `rollup_failed` 0 or 1 (template.yaml's RollupFailedAlarm watches it).
pub async fn handler(
    state: &RollupState,
    event: LambdaEvent<RollupEvent>,
) -> Result<Value, lambda_runtime::Error> {
    let result = run(state, event).await;
    outcome_metrics(&result).emit();
    result
}

/// The run's EMF record: `rollup_failed` is 1 when the run failed (the invoke is retried and
/// then dead-lettered; the alarm fires on the first failure) or when any of its days failed
/// (the summary's `failed`: the other days were written, the failed ones need attention).
pub fn outcome_metrics(result: &Result<Value, lambda_runtime::Error>) -> Metrics {
    let failed = match result {
        Err(_) => true,
        Ok(summary) => summary["failed"].as_array().is_some_and(|f| !f.is_empty()),
    };
    let mut metrics = Metrics::new("leadflow").dimension("function", "metrics-rollup");
    metrics.count("rollup_failed", if failed { 1.0 } else { 0.0 });
    metrics
}

/// Each day stands alone: a day that fails (after retries, when transient) is reported in
/// `failed` and the EMF metric `failed_days`, and the other days are still written. The
/// invocation fails only when every day failed, so a schedule's retry has something to do.
async fn run(
    state: &RollupState,
    event: LambdaEvent<RollupEvent>,
) -> Result<Value, lambda_runtime::Error> {
    let now = Utc::now();
    if let RollupEvent::Retention { dry_run } = event.payload {
        return Ok(retention(state, dry_run, now).await?);
    }
    let days = days_for(
        &event.payload,
        now,
        state.store.report_zone(),
        state.late_days,
    )?;
    let started = state.store.round_trips();
    let index = state.store.day_index().await?;
    let results: Vec<(String, Result<DayDone, StoreError>)> =
        stream::iter(days.iter().map(|d| d.to_string()))
            .map(|day| async move {
                let r = recompute_day_retried(state, index, &day, now).await;
                (day, r)
            })
            .buffer_unordered(DAY_CONCURRENCY)
            .collect()
            .await;
    let mut failed: Vec<Value> = Vec::new();
    let (mut groups, mut writes) = (0, 0);
    for (day, r) in &results {
        match r {
            Ok(d) => {
                groups += d.groups;
                writes += d.writes;
            }
            Err(e) => {
                tracing::error!(day, error = %e, "rollup day failed");
                failed.push(
                    json!({"day": day, "error": e.to_string(), "transient": e.is_transient()}),
                );
            }
        }
    }
    failed.sort_by(|a, b| a["day"].as_str().cmp(&b["day"].as_str()));
    let round_trips = state.store.round_trips() - started;
    let summary = json!({
        "days": days.len(),
        "from": days.first().map(|d| d.to_string()),
        "to": days.last().map(|d| d.to_string()),
        "index": match index { DayIndex::Sharded => "gsi2", DayIndex::Legacy => "gsi1" },
        "zone": state.store.report_zone().name(),
        "groups": groups,
        "writes": writes,
        "failed": failed,
        "dynamodb_round_trips": round_trips,
    });
    let mut metrics = Metrics::new("leadflow").dimension("function", "metrics-rollup");
    metrics
        .count("days", days.len() as f64)
        .count("failed_days", failed.len() as f64)
        .count("groups", groups as f64)
        .count("writes", writes as f64)
        .count("dynamodb_round_trips", round_trips as f64);
    metrics.emit();
    if !days.is_empty() && failed.len() == days.len() {
        tracing::error!(summary = %summary, "rollup failed");
        return Err(format!("every day failed: {}", failed[0]["error"]).into());
    }
    tracing::info!(summary = %summary, "rollup complete");
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let days_for = |event: &Value, now, late| {
            let event: RollupEvent =
                serde_json::from_value(event.clone()).map_err(|e| e.to_string())?;
            super::days_for(&event, now, &ReportZone::utc(), late)
        };
        assert_eq!(
            days_for(&json!({"mode": "today"}), now, 7).unwrap().len(),
            1
        );
        let late = days_for(&json!({"mode": "late"}), now, 7).unwrap();
        assert_eq!(
            (late.len(), late.last().unwrap().to_string()),
            (7, "2026-11-21".into())
        );
        assert_eq!(
            days_for(&json!({"source": "aws.events"}), now, 7)
                .unwrap()
                .len(),
            8
        );
        let back = days_for(&json!({"from": "2026-10-01", "to": "2026-10-31"}), now, 7).unwrap();
        assert_eq!(back.len(), 31);
        assert!(days_for(&json!({"from": "2026-10-01"}), now, 7).is_err());
        assert!(days_for(&json!({"from": "2025-01-01", "to": "2026-10-31"}), now, 7).is_err());
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn days(event: Value, now: &str, zone: &str) -> Vec<String> {
        let event: RollupEvent = serde_json::from_value(event).unwrap();
        let zone = ReportZone::parse(zone).unwrap();
        super::days_for(&event, at(now), &zone, 7)
            .unwrap()
            .iter()
            .map(NaiveDate::to_string)
            .collect()
    }

    #[test]
    fn today_is_the_local_day_of_the_reporting_zone() {
        // 23:30 on 29 November in Los Angeles is 07:30 UTC on the 30th.
        let la_evening = "2026-11-30T07:30:00Z";
        assert_eq!(
            days(json!({"mode": "today"}), la_evening, "America/Los_Angeles"),
            ["2026-11-29"]
        );
        assert_eq!(
            days(json!({"mode": "today"}), la_evening, "UTC"),
            ["2026-11-30"]
        );
        let late = days(json!({"mode": "late"}), la_evening, "America/Los_Angeles");
        assert_eq!(
            (
                late.first().unwrap().as_str(),
                late.last().unwrap().as_str()
            ),
            ("2026-11-22", "2026-11-28")
        );
        // East of UTC: 00:30 on 1 December in Kiritimati (+14) is 10:30 UTC on 30 November;
        // the first run of the day recomputes the day before as well.
        assert_eq!(
            days(
                json!({"mode": "today"}),
                "2026-11-30T10:30:00Z",
                "Pacific/Kiritimati"
            ),
            ["2026-11-30", "2026-12-01"]
        );
        assert_eq!(
            days(
                json!({"mode": "today"}),
                "2026-11-30T11:30:00Z",
                "Pacific/Kiritimati"
            ),
            ["2026-12-01"]
        );
        // A range names reporting days as they are.
        assert_eq!(
            days(
                json!({"from": "2026-03-07", "to": "2026-03-08"}),
                la_evening,
                "America/Los_Angeles"
            ),
            ["2026-03-07", "2026-03-08"]
        );
    }

    #[test]
    fn fixed_cost_per_lead() {
        let m = parse_fixed_cpl("referral=25, Trustpilot=0.5").unwrap();
        assert_eq!(m["referral"], 25_000_000);
        assert_eq!(m["trustpilot"], 500_000);
        assert!(parse_fixed_cpl("x").is_err());
    }

    #[test]
    fn a_failed_run_is_counted_for_its_alarm() {
        let failed = outcome_metrics(&Err("table gone".into())).to_json(1);
        assert_eq!(failed["rollup_failed"], 1.0);
        assert_eq!(failed["function"], "metrics-rollup");
        assert_eq!(
            failed["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "leadflow"
        );
        let ok = outcome_metrics(&Ok(json!({"failed": []}))).to_json(1);
        assert_eq!(ok["rollup_failed"], 0.0);
        let one_day_failed = json!({"failed": [{"day": "2026-11-01", "error": "throttled"}]});
        assert_eq!(
            outcome_metrics(&Ok(one_day_failed)).to_json(1)["rollup_failed"],
            1.0
        );
    }
}
