//! lead-events: speed to lead. The table's stream (NEW_AND_OLD_IMAGES, lead items only) feeds
//! this function, off the webhook's path: the sender's answer never waits for it.
//!
//! Per record, in stream order:
//! - a new lead (INSERT): `lead.created`, with the temperature, score and stage ingest gave it;
//! - a change to a lead (MODIFY) by ingest (a merge), a sales event or this function's rescore
//!   of a merge: `lead.temperature_changed` / `lead.stage_changed` when they changed;
//! - rescore's own score writes (recognised by `score_writer` at the version they produced) are
//!   skipped: rescore announces those. One publisher per kind of change;
//! - a merge (a MODIFY that added a touch: ingest does not rescore a returning person, that
//!   would cost the webhook a read) is rescored here by the scoring in force, as rescore would
//!   (one Query of the lead's partition, a write conditioned on its version). That write comes
//!   back through the stream as its own record and is announced like any other change, so a
//!   merge that makes a lead hot or an MQL is announced within seconds, not at the next hourly
//!   rescore, and a retried merge record finds the score written and does nothing.
//!
//! Every event's detail carries the lead's `version`. An announcement is published, then marked
//! (`ANNOUNCED#<lead>` / `V#<version>`); a record whose marker exists is not published again,
//! so a redelivered batch announces nothing twice (a crash between publish and mark publishes
//! again: at least once, dedupable by `(lead_id, version)`).
//!
//! A record that fails (storage or EventBridge fault, a corrupt image) is reported in
//! `batchItemFailures`; later records of the same lead in the batch are reported too, unread,
//! so one lead's announcements never overtake each other. Lambda retries from the first
//! reported record (bisecting, up to the configured retries, then the on-failure destination).
//! Round trips per announced record: 1 GetItem (marker) + 1 PutEvents + 1 PutItem (marker);
//! per merge record: 1 Query + 1 UpdateItem (score only) or TransactWriteItems (temperature or
//! stage changed, with its score-change record), plus 2 GetItems per batch for the scoring
//! configuration and model; a record with nothing to announce: none.

use std::collections::HashSet;

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use leadflow::events::{image_changes, lead_created, ChangeEvent, Publisher};
use leadflow::rescoring::{Scorer, ScorerError};
use leadflow::store::{
    is_lead_key, item_from_stream_json, lead_snapshot, LeadSnapshot, ScoreWrite, ScoreWriter,
    Store, StoreError,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// The `source` of every event this function publishes.
pub const EVENT_SOURCE: &str = "leadflow.leads";
/// Conditional score writes per merged lead before the record is failed (and retried).
const MAX_ATTEMPTS: u32 = 3;

/// Everything the handler needs, built once per cold start.
pub struct LeadEventsState {
    pub store: Store,
    /// `None`: records are read and nothing is published (`EVENT_BUS_NAME` empty).
    pub publisher: Option<Publisher>,
}

/// A DynamoDB stream event as Lambda delivers it (only the fields read here).
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub dynamodb: StreamData,
}

#[derive(Debug, Deserialize)]
pub struct StreamData {
    #[serde(rename = "SequenceNumber")]
    pub sequence_number: String,
    #[serde(rename = "Keys", default)]
    pub keys: Value,
    #[serde(rename = "NewImage")]
    pub new_image: Option<Value>,
    #[serde(rename = "OldImage")]
    pub old_image: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Shape(&'static str),
    #[error("publishing failed: {0}")]
    Publish(String),
    #[error(transparent)]
    Scorer(#[from] ScorerError),
    #[error("the lead kept changing while it was rescored")]
    Contention,
}

/// What one record came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a lead item, a removal, an erased lead, rescore's own write, or nothing changed.
    Skipped,
    /// Announced before (a redelivery): not published again.
    AlreadyAnnounced,
    /// Published `n` events and marked the version.
    Announced(usize),
    /// A merge was rescored and the new score written (its own record announces it).
    Rescored,
}

/// What a record announces, decided from its images alone (pure).
pub fn announcements(
    event_name: &str,
    old: Option<&LeadSnapshot>,
    new: Option<&LeadSnapshot>,
) -> Vec<ChangeEvent> {
    let Some(new) = new else {
        return Vec::new();
    };
    if new.erased {
        return Vec::new();
    }
    match (event_name, old) {
        ("INSERT", _) => vec![lead_created(new)],
        ("MODIFY", Some(old)) => {
            if new.score_write == Some(ScoreWriter::Rescore) {
                return Vec::new();
            }
            image_changes(old, new)
        }
        _ => Vec::new(),
    }
}

/// The handler: every record in order; the answer names the records to retry.
pub async fn handler(
    state: &LeadEventsState,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let started = state.store.round_trips();
    let batch: StreamEvent = serde_json::from_value(event.payload)?;
    let mut failures: Vec<Value> = Vec::new();
    let mut failed_keys: HashSet<String> = HashSet::new();
    let (mut announced, mut redelivered, mut skipped, mut rescored) = (0u64, 0u64, 0u64, 0u64);
    // Loaded at the first merge of the batch, if any.
    let mut scorer: Option<Scorer> = None;
    for record in &batch.records {
        let seq = record.dynamodb.sequence_number.clone();
        let key = record.dynamodb.keys.to_string();
        if failed_keys.contains(&key) {
            failures.push(json!({"itemIdentifier": seq}));
            continue;
        }
        match process(state, &mut scorer, record).await {
            Ok(Outcome::Announced(_)) => announced += 1,
            Ok(Outcome::Rescored) => rescored += 1,
            Ok(Outcome::AlreadyAnnounced) => redelivered += 1,
            Ok(Outcome::Skipped) => skipped += 1,
            Err(e) => {
                tracing::error!(sequence_number = seq, error = %e, "stream record failed");
                failed_keys.insert(key);
                failures.push(json!({"itemIdentifier": seq}));
            }
        }
    }
    tracing::info!(
        records = batch.records.len(),
        announced,
        redelivered,
        skipped,
        rescored,
        failed = failures.len(),
        round_trips = state.store.round_trips() - started,
        "stream batch done"
    );
    Ok(json!({"batchItemFailures": failures}))
}

/// One record: decode, decide, announce once.
pub async fn process(
    state: &LeadEventsState,
    scorer: &mut Option<Scorer>,
    record: &StreamRecord,
) -> Result<Outcome, RecordError> {
    let keys = item_from_stream_json(&record.dynamodb.keys)?;
    if !is_lead_key(&keys) || record.event_name == "REMOVE" {
        return Ok(Outcome::Skipped);
    }
    let image = |v: &Option<Value>| -> Result<Option<LeadSnapshot>, RecordError> {
        v.as_ref()
            .map(|v| Ok(lead_snapshot(&item_from_stream_json(v)?)?))
            .transpose()
    };
    let new = image(&record.dynamodb.new_image)?
        .ok_or(RecordError::Shape("a lead record without its new image"))?;
    let old = image(&record.dynamodb.old_image)?;
    if record.event_name == "MODIFY" && old.is_none() {
        // The stream must carry both images (NEW_AND_OLD_IMAGES); without the old one a change
        // cannot be told from a non-change. Fail loudly rather than guess.
        return Err(RecordError::Shape("a MODIFY record without its old image"));
    }
    let events = announcements(&record.event_name, old.as_ref(), Some(&new));
    let outcome = if events.is_empty() {
        Outcome::Skipped
    } else {
        announce(state, &new.lead_id, new.version, &events).await?
    };
    let merged = old
        .as_ref()
        .is_some_and(|old| new.touch_count > old.touch_count)
        && new.score_write.is_none()
        && !new.erased;
    if merged {
        let rescored = rescore_merged(state, scorer, &new.lead_id).await?;
        if outcome == Outcome::Skipped {
            return Ok(rescored);
        }
    }
    Ok(outcome)
}

/// Rescores a merged lead by the scoring in force and writes the result when it differs
/// (conditioned on the version read; a conflict re-reads). Nothing is published here: the write
/// comes back as its own stream record.
async fn rescore_merged(
    state: &LeadEventsState,
    scorer: &mut Option<Scorer>,
    lead_id: &str,
) -> Result<Outcome, RecordError> {
    if scorer.is_none() {
        *scorer = Some(Scorer::load(&state.store).await?);
    }
    let scorer = scorer.as_ref().expect("loaded above");
    let now = Utc::now();
    for _ in 0..MAX_ATTEMPTS {
        let Some(lead) = state.store.scoring_input(lead_id).await? else {
            return Ok(Outcome::Skipped);
        };
        if lead.erased {
            return Ok(Outcome::Skipped);
        }
        let (a, prediction) = scorer.assess(&lead, now);
        if !lead.differs(&a, prediction.as_ref()) {
            // Already scored (a retried record, or rescore got there first).
            return Ok(Outcome::Skipped);
        }
        match state
            .store
            .write_score(&lead, &a, prediction.as_ref(), ScoreWriter::LeadEvents, now)
            .await?
        {
            ScoreWrite::Written => return Ok(Outcome::Rescored),
            ScoreWrite::Conflict => continue,
        }
    }
    Err(RecordError::Contention)
}

/// Publishes `events` for `(lead_id, version)` unless announced before, then marks it.
async fn announce(
    state: &LeadEventsState,
    lead_id: &str,
    version: u64,
    events: &[ChangeEvent],
) -> Result<Outcome, RecordError> {
    let Some(publisher) = &state.publisher else {
        return Ok(Outcome::Skipped);
    };
    let now = Utc::now();
    if state.store.announced(lead_id, version, now).await? {
        return Ok(Outcome::AlreadyAnnounced);
    }
    let done = publisher.publish(EVENT_SOURCE, events).await;
    if done.failed > 0 {
        // Some of this version's events may have gone out: the retry publishes them all again
        // (at least once; consumers dedupe by lead id and version).
        return Err(RecordError::Publish(
            done.error.unwrap_or_else(|| "refused".into()),
        ));
    }
    state.store.mark_announced(lead_id, version, now).await?;
    tracing::info!(
        lead_id,
        version,
        events = ?events.iter().map(|e| e.detail_type).collect::<Vec<_>>(),
        "announced"
    );
    Ok(Outcome::Announced(events.len()))
}

#[cfg(test)]
mod tests {
    use leadflow::model::{Stage, Temperature};

    use super::*;

    fn lead(version: u64, t: Option<Temperature>, stage: Stage) -> LeadSnapshot {
        LeadSnapshot {
            lead_id: "l1".into(),
            version,
            score: Some(40),
            temperature: t,
            stage,
            source: "google".into(),
            channel: "paid_search".into(),
            campaign: "spring".into(),
            is_test: false,
            erased: false,
            created_at: None,
            touch_count: 1,
            reasons: Vec::new(),
            score_write: None,
        }
    }

    fn kinds(events: &[ChangeEvent]) -> Vec<&str> {
        events.iter().map(|e| e.detail_type).collect()
    }

    #[test]
    fn what_each_record_announces() {
        use Temperature::*;
        let warm = lead(1, Some(Warm), Stage::Lead);
        assert_eq!(
            kinds(&announcements("INSERT", None, Some(&warm))),
            ["lead.created"]
        );
        let mut hot = lead(2, Some(Hot), Stage::Mql);
        assert_eq!(
            kinds(&announcements("MODIFY", Some(&warm), Some(&hot))),
            ["lead.temperature_changed", "lead.stage_changed"]
        );
        // The same change written by rescore: rescore announces it.
        hot.score_write = Some(ScoreWriter::Rescore);
        assert!(announcements("MODIFY", Some(&warm), Some(&hot)).is_empty());
        // Written here (a merge rescored): announced from the stream.
        hot.score_write = Some(ScoreWriter::LeadEvents);
        assert_eq!(announcements("MODIFY", Some(&warm), Some(&hot)).len(), 2);
        // Nothing moved, a removal, an erased lead, an unscored lead scored cold: no news.
        let same = lead(3, Some(Warm), Stage::Lead);
        assert!(announcements("MODIFY", Some(&warm), Some(&same)).is_empty());
        assert!(announcements("REMOVE", Some(&warm), None).is_empty());
        let mut erased = lead(4, None, Stage::Lead);
        erased.erased = true;
        assert!(announcements("INSERT", None, Some(&erased)).is_empty());
        let unscored = lead(1, None, Stage::Lead);
        let cold = lead(2, Some(Cold), Stage::Lead);
        assert!(announcements("MODIFY", Some(&unscored), Some(&cold)).is_empty());
    }

    #[test]
    fn details_carry_the_version_and_no_personal_data() {
        let hot = lead(7, Some(Temperature::Hot), Stage::Mql);
        let e = &announcements("INSERT", None, Some(&hot))[0];
        assert_eq!(e.detail["version"], 7);
        assert_eq!(e.detail["temperature"], "hot");
        let keys: Vec<&String> = e.detail.as_object().unwrap().keys().collect();
        for k in keys {
            assert!(
                [
                    "lead_id",
                    "version",
                    "score",
                    "temperature",
                    "stage",
                    "source",
                    "channel",
                    "campaign",
                    "is_test",
                    "created_at"
                ]
                .contains(&k.as_str()),
                "{k}"
            );
        }
    }
}
