//! `leadflow backfill`: brings the day keys of every lead and touchpoint up to date, resumably.
//!
//! 1. The issue-13 migration (`Store::backfill_day_keys`): the sharded day keys (gsi2) and the
//!    review mirrors on items stored before them.
//! 2. Once that is done, the issue-20 rewrite (`Store::rezone_day_keys`): the day keys are
//!    reporting days in `REPORT_TIME_ZONE`, so after the zone changed, the items whose local
//!    day differs in the new zone are moved to it. Nothing to do when the keys are in the zone
//!    already (one GetItem).
//!
//! The zone is the functions' variable, read the same way. An unset variable means UTC, so a
//! plain `leadflow backfill` run for the issue-13 migration could silently move every key back
//! to UTC days; it refuses instead when the keys are in another zone, and says what to set.

use chrono::{DateTime, Utc};
use leadflow::report_zone::{ReportZone, VARIABLE};
use leadflow::store::{BackfillReport, RezoneReport, Store};
use serde::Serialize;

/// How a run goes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Items evaluated per Scan page.
    pub page_size: i32,
    /// At most this many Scan pages per migration this run (the next run resumes).
    pub max_pages: Option<u64>,
    /// Count, write nothing.
    pub dry_run: bool,
}

/// What a run did: each migration's report (`zone` is absent while the day keys migration
/// has not finished).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub day_keys: BackfillReport,
    pub zone: Option<RezoneReport>,
}

/// The store's zone from the environment's `REPORT_TIME_ZONE`, and whether it was set.
pub fn zone_from(get: impl Fn(&str) -> Option<String>) -> Result<(ReportZone, bool), String> {
    let set = get(VARIABLE).is_some_and(|v| !v.trim().is_empty());
    Ok((ReportZone::from_lookup(get)?, set))
}

/// Runs both migrations on `store` (whose zone is the target; `zone_set`: the operator named
/// it rather than falling back to UTC).
pub async fn run(
    store: &Store,
    zone_set: bool,
    o: Options,
    now: DateTime<Utc>,
) -> Result<Outcome, String> {
    let day_keys = store
        .backfill_day_keys(o.page_size, o.max_pages, o.dry_run, now)
        .await
        .map_err(|e| e.to_string())?;
    if !day_keys.done {
        return Ok(Outcome {
            day_keys,
            zone: None,
        });
    }
    let target = store.report_zone().name();
    if !zone_set {
        let keys = store.day_keys_zone().await.map_err(|e| e.to_string())?;
        if let Some(k) = keys.filter(|k| k.settled() != Some(target)) {
            let now_in = match k.settled() {
                Some(z) => format!("are {z} days"),
                None => format!("are being moved from {} to {} days", k.from_zone, k.to_zone),
            };
            return Err(format!(
                "the day keys {now_in}, and {VARIABLE} is unset ({target}): set it to the \
                 stack's ReportTimeZone (or to UTC to move the keys back to UTC days)"
            ));
        }
    }
    let zone = store
        .rezone_day_keys(o.page_size, o.max_pages, o.dry_run, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Outcome {
        day_keys,
        zone: Some(zone),
    })
}
