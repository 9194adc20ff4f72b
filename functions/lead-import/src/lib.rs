//! lead-import: lead lists put in the import bucket (webinar and trade-show attendees, a
//! partner's referrals, outbound prospect lists) become leads through the same field mapping,
//! normalization, dedupe and ingest as web forms (`leadflow::import`, `leadflow::ingest`).
//!
//! Trigger: the bucket's `ObjectCreated` notifications for `incoming/` go to an SQS queue
//! (template.yaml), which invokes this function one message at a time. The queue, rather than
//! a direct S3 invocation, gives back-pressure (the event source's maximum concurrency bounds
//! how many files are imported at once, whatever is uploaded), retries with a visibility
//! timeout, and a dead-letter queue for a file that keeps failing; it is also how a large file
//! continues: before the deadline the function saves its checkpoint and sends itself
//! `{"continue": {"bucket", "key", "version_id"}}` on the same queue. A direct S3 event
//! (`Records` with `s3`) is accepted too.
//!
//! Per file version (its id: a hash of bucket, key and version id):
//! 1. The checkpoint (`store::imports`) says where it stands: done or failed (a retried event:
//!    nothing more; the result is written if it was not), running (resume at its byte offset
//!    with a ranged GET), or absent: read the header, check the mapping (object metadata) and
//!    record the start. A file-level problem (not UTF-8, not CSV, no header, no contact column,
//!    an unknown channel) is recorded as failed, with a result naming it: nothing imported.
//! 2. Rows stream through the parser and are ingested `IMPORT_CONCURRENCY` at a time, in
//!    order; each row's delivery key is the file id and row number, so nothing is stored
//!    twice. Bad rows are listed (row, field, code), never stopping the file.
//! 3. Every `CHECKPOINT_ROWS` rows the progress and the chunk's row errors are saved in one
//!    write conditioned on the offset the chunk started from: an invocation that loses that
//!    race (a duplicated event) stops, so every row counts once.
//! 4. At the end, the result goes beside the input: `results/<key>.<version>.result.json`.
//!
//! Round trips per row: the ingest's (new person 1, returning 2, duplicate 1), plus one
//! checkpoint write per `CHECKPOINT_ROWS` rows.

mod objects;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use futures_util::future::join_all;
use lambda_runtime::LambdaEvent;
use leadflow::import::parse::{self, Parser, RawRow, Record, Shape};
use leadflow::import::rows::{self, ListMapping};
use leadflow::import::{
    FileError, FileRef, ImportCounts, ImportProgress, ImportStatus, Lease, RowError,
    INCOMING_PREFIX, NULL_VERSION, RESULTS_PREFIX,
};
use leadflow::ingest::{ingest_one, IngestError};
use leadflow::lambda_time;
use leadflow::model::{Direction, IngestStatus};
use leadflow::normalize::NormalizeConfig;
use leadflow::store::{ImportClaim, Store, StoreError};
use leadflow::telemetry::Metrics;
use serde::Deserialize;
use serde_json::{json, Value};

pub use objects::s3_client;
use objects::{Body, Objects, Opened};

/// Everything the handler needs, built once per cold start.
pub struct ImportState {
    pub store: Store,
    pub normalize: NormalizeConfig,
    pub objects: Objects,
    pub sqs: aws_sdk_sqs::Client,
    /// `IMPORT_QUEUE_URL`: the queue this function reads, where it sends its continuations.
    pub queue_url: String,
    /// `CHECKPOINT_ROWS` (default 500): rows between two checkpoints.
    pub checkpoint_rows: u64,
    /// `IMPORT_CONCURRENCY` (default 8): rows ingested at once (in order).
    pub concurrency: usize,
    /// `SAFETY_MARGIN_MS` (default 20000): no new rows are started closer than this to the
    /// deadline.
    pub safety_margin: Duration,
    /// `MAX_ROWS_PER_INVOCATION`: bounds one invocation's work independently of its deadline
    /// (default unlimited).
    pub max_rows: Option<u64>,
    /// `FUNCTION_TIMEOUT_SECONDS`: the configured timeout, for an implausible deadline
    /// (`leadflow::lambda_time`).
    pub timeout: Option<Duration>,
}

impl ImportState {
    pub fn from_lookup(
        store: Store,
        s3: aws_sdk_s3::Client,
        sqs: aws_sdk_sqs::Client,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<ImportState, String> {
        let num = |name: &str, lo, hi| leadflow::config::bounded_number(&get, name, lo, hi);
        Ok(ImportState {
            store: store
                .with_pepper(leadflow::privacy::Pepper::privacy(&get)?)
                .with_report_zone(leadflow::report_zone::ReportZone::from_lookup(&get)?),
            normalize: NormalizeConfig::from_lookup(&get)?,
            objects: Objects::new(s3),
            sqs,
            queue_url: get("IMPORT_QUEUE_URL")
                .filter(|v| !v.trim().is_empty())
                .ok_or("environment variable IMPORT_QUEUE_URL must be set")?,
            checkpoint_rows: num("CHECKPOINT_ROWS", 1, 5_000)?.unwrap_or(500),
            concurrency: num("IMPORT_CONCURRENCY", 1, 64)?.unwrap_or(8) as usize,
            safety_margin: Duration::from_millis(
                num("SAFETY_MARGIN_MS", 0, 600_000)?.unwrap_or(20_000),
            ),
            max_rows: num("MAX_ROWS_PER_INVOCATION", 1, 100_000_000)?,
            timeout: num("FUNCTION_TIMEOUT_SECONDS", 1, 900)?.map(Duration::from_secs),
        })
    }
}

/// What invokes the function: SQS messages (the template's trigger) or S3 notifications
/// delivered directly.
#[derive(Debug, Deserialize)]
pub struct ImportEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<EventRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EventRecord {
    Queue(QueueMessage),
    Object(S3Record),
}

#[derive(Debug, Deserialize)]
pub struct QueueMessage {
    #[serde(rename = "messageId")]
    pub message_id: String,
    pub body: String,
}

/// One S3 event notification record (only the fields read here).
#[derive(Debug, Clone, Deserialize)]
pub struct S3Record {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3Object {
    /// URL-encoded, as S3 notifications carry keys (`+` for a space).
    pub key: String,
    #[serde(rename = "versionId", default)]
    pub version_id: Option<String>,
}

/// A queue message's body: an S3 notification, S3's test event when the notification is
/// configured, or this function's own continuation.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MessageBody {
    Continue {
        #[serde(rename = "continue")]
        file: FileRef,
    },
    Notification {
        #[serde(rename = "Records")]
        records: Vec<S3Record>,
    },
    TestEvent {
        #[serde(rename = "Event")]
        event: String,
    },
}

/// Why an invocation could not finish its work (the message is retried, then dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("s3 {operation}: {message}")]
    Object {
        operation: &'static str,
        message: String,
    },
    #[error("sqs SendMessage: {0}")]
    Queue(String),
    #[error("unreadable message: {0}")]
    Message(String),
    #[error("another invocation is importing this file (until {0:?}); retried later")]
    Busy(Option<chrono::DateTime<Utc>>),
}

/// What one invocation did to one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// All rows read; the result is written.
    Done(ImportProgress),
    /// A file-level problem; the result names it.
    Failed(ImportProgress),
    /// Stopped before the deadline at the checkpoint; a continuation is on the queue.
    Paused(ImportProgress),
    /// Another invocation took the import over (this one outlived its lease): it carries on.
    Superseded,
    /// Not an import (outside `incoming/`, not a creation, the object is gone).
    Ignored(&'static str),
}

impl Step {
    fn summary(&self, file: &FileRef) -> Value {
        let (step, p) = match self {
            Step::Done(p) => ("done", Some(p)),
            Step::Failed(p) => ("failed", Some(p)),
            Step::Paused(p) => ("paused", Some(p)),
            Step::Superseded => ("superseded", None),
            Step::Ignored(why) => (*why, None),
        };
        json!({
            "key": file.key,
            "version_id": file.version_id,
            "step": step,
            "counts": p.map(|p| &p.counts),
            "next_row": p.map(|p| p.next_row),
            "result_key": p.and_then(|p| p.result_key.clone()),
        })
    }
}

/// When this invocation stops starting rows, and how long its claim on a file lasts.
struct Budget {
    stop_at: Option<Instant>,
    rows_left: Option<u64>,
    /// The time left in the invocation (the configured timeout without a deadline) and a
    /// minute: a crashed invocation's claim has lapsed before the queue shows its message again.
    lease: Duration,
}

impl Budget {
    fn exhausted(&self) -> bool {
        self.stop_at.is_some_and(|t| Instant::now() >= t) || self.rows_left == Some(0)
    }

    fn take(&mut self, rows: u64) {
        if let Some(left) = &mut self.rows_left {
            *left = left.saturating_sub(rows);
        }
    }

    /// Rows that may start now (at most `want`).
    fn allows(&self, want: u64) -> u64 {
        self.rows_left.map_or(want, |l| l.min(want))
    }
}

/// Answers an SQS batch with the messages to retry (`batchItemFailures`); a direct S3 event
/// fails as a whole when any file failed (Lambda retries it).
pub async fn handler(
    state: &ImportState,
    event: LambdaEvent<ImportEvent>,
) -> Result<Value, lambda_runtime::Error> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let remaining = lambda_time::remaining(event.context.deadline, now_ms, state.timeout);
    let mut budget = Budget {
        stop_at: remaining.map(|r| Instant::now() + r.saturating_sub(state.safety_margin)),
        rows_left: state.max_rows,
        lease: remaining
            .or(state.timeout)
            .unwrap_or(Duration::from_secs(900))
            + Duration::from_secs(60),
    };
    let mut failures = Vec::new();
    let mut done = Vec::new();
    let mut direct_error = None;
    for record in event.payload.records {
        match record {
            EventRecord::Queue(m) => match message(state, &m.body, &mut budget).await {
                Ok(steps) => done.extend(steps),
                Err(e) => {
                    tracing::error!(message_id = m.message_id, error = %e, "import failed; the message will be retried");
                    failures.push(json!({"itemIdentifier": m.message_id}));
                }
            },
            EventRecord::Object(r) => match notification(state, &r, &mut budget).await {
                Ok(step) => done.push(step),
                Err(e) => {
                    tracing::error!(error = %e, "import failed");
                    direct_error = Some(e);
                }
            },
        }
    }
    if let Some(e) = direct_error {
        return Err(e.into());
    }
    let files = Value::Array(done);
    tracing::info!(files = %files, "imports");
    Ok(json!({ "batchItemFailures": failures }))
}

async fn message(
    state: &ImportState,
    body: &str,
    budget: &mut Budget,
) -> Result<Vec<Value>, ImportError> {
    let parsed: MessageBody =
        serde_json::from_str(body).map_err(|e| ImportError::Message(e.to_string()))?;
    match parsed {
        MessageBody::Continue { file } => {
            let step = import(state, &file, budget).await?;
            Ok(vec![step.summary(&file)])
        }
        MessageBody::Notification { records } => {
            let mut out = Vec::new();
            for r in &records {
                out.push(notification(state, r, budget).await?);
            }
            Ok(out)
        }
        MessageBody::TestEvent { event } => {
            tracing::info!(event, "S3 test event ignored");
            Ok(Vec::new())
        }
    }
}

async fn notification(
    state: &ImportState,
    r: &S3Record,
    budget: &mut Budget,
) -> Result<Value, ImportError> {
    let file = FileRef {
        bucket: r.s3.bucket.name.clone(),
        key: decode_key(&r.s3.object.key),
        version_id: r
            .s3
            .object
            .version_id
            .clone()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| NULL_VERSION.to_string()),
    };
    let step = if !r.event_name.starts_with("ObjectCreated:") {
        Step::Ignored("not a creation")
    } else if !file.key.starts_with(INCOMING_PREFIX) || file.key.starts_with(RESULTS_PREFIX) {
        // The trigger filters on incoming/ already; a result must never be imported.
        Step::Ignored("outside incoming/")
    } else if file.key.ends_with('/') {
        Step::Ignored("a folder")
    } else {
        import(state, &file, budget).await?
    };
    Ok(step.summary(&file))
}

/// A key as S3 notifications encode it: `+` is a space, `%XX` a byte.
pub fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Imports one file version as far as the budget allows (module docs).
async fn import(
    state: &ImportState,
    file: &FileRef,
    budget: &mut Budget,
) -> Result<Step, ImportError> {
    let now = Utc::now();
    let lease = Lease {
        owner: leadflow::store::new_id(),
        until: now + chrono::Duration::from_std(budget.lease).unwrap_or(chrono::Duration::MAX),
    };
    let (mut progress, mut parser, mut body) = match state
        .store
        .claim_import(&file.file_id(), &lease, now)
        .await?
    {
        ImportClaim::Taken(p) if p.status == ImportStatus::Running => {
            // Another invocation holds it: a duplicated event (the holder finishes or
            // continues it), or one that crashed (its lease lapses before the queue shows
            // this message again, which then resumes the import).
            return Err(ImportError::Busy(p.lease.map(|l| l.until)));
        }
        ImportClaim::Taken(p) => {
            // A retried event for a finished import: nothing to add; make sure of the
            // result.
            let p = ensure_result(state, p).await?;
            return Ok(if p.status == ImportStatus::Done {
                Step::Done(p)
            } else {
                Step::Failed(p)
            });
        }
        ImportClaim::Claimed(p) => {
            let Some(opened) = state.objects.open(file, p.offset).await? else {
                return Ok(Step::Ignored("object gone"));
            };
            let parser = Parser::new(p.shape, p.offset);
            (p, parser, opened.body)
        }
        ImportClaim::Absent => {
            let Some(opened) = state.objects.open(file, 0).await? else {
                return Ok(Step::Ignored("object gone"));
            };
            match begin(file, opened, &lease).await? {
                Begun::Refused(p) => {
                    if !state.store.start_import(&p).await? {
                        return Ok(Step::Superseded);
                    }
                    tracing::warn!(key = file.key, code = ?p.file_error, "import refused");
                    let p = ensure_result(state, p).await?;
                    return Ok(Step::Failed(p));
                }
                Begun::Ready(p, parser, body) => {
                    if !state.store.start_import(&p).await? {
                        return Ok(Step::Superseded);
                    }
                    (p, *parser, body)
                }
            }
        }
    };
    let mut eof = false;
    loop {
        // One chunk: rows until CHECKPOINT_ROWS, the end of the file or the budget.
        let (from_offset, first_row) = (progress.offset, progress.next_row);
        let mut chunk = ImportCounts::default();
        let mut errors: Vec<RowError> = Vec::new();
        let mut next_row = progress.next_row;
        let mut offset = progress.offset;
        let mut read_rows = 0u64;
        while read_rows < state.checkpoint_rows && !eof && !budget.exhausted() {
            let want = budget.allows(state.concurrency as u64);
            let mut batch: Vec<(u64, Record)> = Vec::new();
            while (batch.len() as u64) < want
                && read_rows + (batch.len() as u64) < state.checkpoint_rows
            {
                match next_record(&mut parser, &mut body).await? {
                    Some(r) => {
                        batch.push((next_row, r));
                        next_row += 1;
                    }
                    None => {
                        eof = true;
                        break;
                    }
                }
            }
            if let Some((_, last)) = batch.last() {
                offset = last.end;
            }
            let n = batch.len() as u64;
            let outcomes = join_all(
                batch
                    .into_iter()
                    .map(|(row, r)| import_row(state, &progress, row, r.row)),
            )
            .await;
            for outcome in outcomes {
                match outcome? {
                    RowOutcome::Blank => {}
                    RowOutcome::Stored(status, direction) => {
                        chunk.rows += 1;
                        match status {
                            IngestStatus::Created => chunk.created += 1,
                            IngestStatus::Merged => chunk.merged += 1,
                            IngestStatus::Duplicate => chunk.duplicate += 1,
                            IngestStatus::Suppressed => chunk.suppressed += 1,
                        }
                        let stored = matches!(status, IngestStatus::Created | IngestStatus::Merged);
                        if stored && direction == Direction::Outbound {
                            chunk.outbound += 1;
                        }
                    }
                    RowOutcome::Rejected(e) => {
                        chunk.rows += 1;
                        chunk.rejected += 1;
                        errors.push(e);
                    }
                }
            }
            read_rows += n;
            budget.take(n);
        }
        let mut next = progress.clone();
        next.offset = offset;
        next.next_row = next_row;
        next.counts.add(&chunk);
        next.updated_at = Utc::now();
        if eof {
            next.status = ImportStatus::Done;
        }
        // Released when this invocation stops working on the file (decided once: the clock
        // moves on, and a pause must never keep the lease its continuation needs).
        let pausing = !eof && budget.exhausted();
        if eof || pausing {
            next.lease = None;
        }
        if !state
            .store
            .save_import(&next, &lease.owner, from_offset, first_row, &errors)
            .await?
        {
            return Ok(Step::Superseded);
        }
        progress = next;
        if eof {
            let p = ensure_result(state, progress).await?;
            emit_metrics(&p.counts);
            return Ok(Step::Done(p));
        }
        if pausing {
            continue_later(state, file).await?;
            return Ok(Step::Paused(progress));
        }
    }
}

/// The next row, reading more of the object as needed; `None` at its end.
async fn next_record(parser: &mut Parser, body: &mut Body) -> Result<Option<Record>, ImportError> {
    loop {
        if let Some(r) = parser.next_row() {
            return Ok(Some(r));
        }
        match body.next().await? {
            Some(bytes) => parser.push(&bytes),
            None => {
                parser.finish();
                return Ok(parser.next_row());
            }
        }
    }
}

enum Begun {
    Ready(ImportProgress, Box<Parser>, Body),
    Refused(ImportProgress),
}

/// A new import: the file's shape, its header and its mapping, read from the start of the
/// object; the parser is left at the first data row.
async fn begin(file: &FileRef, opened: Opened, lease: &Lease) -> Result<Begun, ImportError> {
    let Opened {
        mut body,
        metadata,
        last_modified,
    } = opened;
    let now = Utc::now();
    let json_lines = parse::is_json_lines(&file.key);
    let mut progress = ImportProgress {
        file: file.clone(),
        status: ImportStatus::Running,
        shape: Shape::Csv { delimiter: ',' },
        header: Vec::new(),
        mapping: ListMapping::default(),
        default_time: last_modified.unwrap_or(now),
        offset: 0,
        next_row: 1,
        counts: ImportCounts::default(),
        file_error: None,
        started_at: now,
        updated_at: now,
        invocations: 1,
        result_key: None,
        lease: Some(lease.clone()),
    };
    // At least the first line (or the bound), to know the separator.
    let mut start: Vec<u8> = Vec::new();
    let mut ended = false;
    while !start.contains(&b'\n') && start.len() <= parse::MAX_RECORD_BYTES {
        match body.next().await? {
            Some(b) => start.extend_from_slice(&b),
            None => {
                ended = true;
                break;
            }
        }
    }
    let refuse = |mut p: ImportProgress, e: FileError| {
        p.status = ImportStatus::Failed;
        p.lease = None;
        p.file_error = Some((e.code().to_string(), e.to_string()));
        Begun::Refused(p)
    };
    let (shape, bom) = match parse::sniff(&start, json_lines) {
        Ok(s) => s,
        Err(e) => return Ok(refuse(progress, e)),
    };
    progress.mapping = match ListMapping::from_metadata(&metadata) {
        Ok(m) => m,
        Err(e) => return Ok(refuse(progress, e)),
    };
    progress.shape = shape;
    // Rows start after the byte order mark; offsets stay absolute.
    let mut parser = Parser::new(shape, bom);
    parser.push(&start[bom as usize..]);
    if ended {
        parser.finish();
    }
    if let Shape::Csv { .. } = shape {
        let header = match next_record(&mut parser, &mut body).await? {
            Some(Record {
                row: RawRow::Cells(cells),
                ..
            }) => cells,
            Some(Record {
                row:
                    RawRow::Problem {
                        code: "row_too_large",
                        ..
                    },
                ..
            }) => return Ok(refuse(progress, FileError::HeaderTooLong)),
            Some(_) => return Ok(refuse(progress, FileError::Encoding("not UTF-8"))),
            None => return Ok(refuse(progress, FileError::Empty)),
        };
        progress.header = match rows::check_header(&header) {
            Ok(h) => h,
            Err(e) => return Ok(refuse(progress, e)),
        };
        progress.next_row = 2;
    }
    progress.offset = parser.offset();
    Ok(Begun::Ready(progress, Box::new(parser), body))
}

enum RowOutcome {
    /// Every cell empty (a spreadsheet's empty row): not a row.
    Blank,
    Stored(IngestStatus, Direction),
    Rejected(RowError),
}

/// One row through the shared ingest. A bad row is its outcome; a storage fault is the
/// invocation's error (the message is retried from the checkpoint).
async fn import_row(
    state: &ImportState,
    p: &ImportProgress,
    row: u64,
    raw: RawRow,
) -> Result<RowOutcome, ImportError> {
    let column_name = |i: usize| {
        p.header
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("column {}", i + 1))
    };
    let named: Vec<(String, String)> = match raw {
        RawRow::Problem {
            code,
            field,
            column,
        } => {
            let field = field.or(column.map(column_name)).unwrap_or_default();
            return Ok(RowOutcome::Rejected(RowError::new(row, field, code)));
        }
        RawRow::Cells(cells) => {
            if cells.iter().all(|c| c.trim().is_empty()) {
                return Ok(RowOutcome::Blank);
            }
            if let Some(extra) = cells
                .iter()
                .skip(p.header.len())
                .position(|c| !c.trim().is_empty())
            {
                let field = column_name(p.header.len() + extra);
                return Ok(RowOutcome::Rejected(RowError::new(
                    row,
                    field,
                    "too_many_fields",
                )));
            }
            p.header.iter().cloned().zip(cells).collect()
        }
        RawRow::Named(fields) => fields,
    };
    let cells = named.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let zone = state.store.report_zone();
    let sub = match rows::submission(&p.file, &p.mapping, p.default_time, zone, row, cells) {
        Ok(s) => s,
        Err(e) => return Ok(RowOutcome::Rejected(e)),
    };
    let direction = sub.direction_hint.unwrap_or(Direction::Inbound);
    // Each row's own scratch record: the invocation emits one record of the file's counts.
    let mut scratch = Metrics::new("leadflow");
    match ingest_one(
        &state.store,
        &state.normalize,
        sub,
        Utc::now(),
        &mut scratch,
    )
    .await
    {
        Ok(outcome) => Ok(RowOutcome::Stored(outcome.status, direction)),
        Err(IngestError::Normalize(e)) => Ok(RowOutcome::Rejected(RowError::new(
            row,
            e.field(),
            e.code(),
        ))),
        Err(IngestError::Store(e)) => Err(e.into()),
    }
}

/// Sends this function a continuation on its queue.
async fn continue_later(state: &ImportState, file: &FileRef) -> Result<(), ImportError> {
    let body = json!({ "continue": file }).to_string();
    state
        .sqs
        .send_message()
        .queue_url(&state.queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| ImportError::Queue(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    Ok(())
}

/// Writes the result beside the input unless the checkpoint says it was written.
async fn ensure_result(
    state: &ImportState,
    mut p: ImportProgress,
) -> Result<ImportProgress, ImportError> {
    if p.result_key.is_some() {
        return Ok(p);
    }
    let errors = state.store.import_errors(&p.file.file_id()).await?;
    let key = p.file.result_key();
    state
        .objects
        .put_json(&p.file.bucket, &key, &result_document(&p, &errors))
        .await?;
    state
        .store
        .set_import_result(&p.file.file_id(), &key)
        .await?;
    p.result_key = Some(key);
    Ok(p)
}

/// The result file: what was imported and every bad row (row, field, code, message), no
/// personal data.
pub fn result_document(p: &ImportProgress, errors: &[RowError]) -> Value {
    json!({
        "file": p.file,
        "status": p.status.as_str(),
        "format": match p.shape {
            Shape::Csv { .. } => "csv",
            Shape::JsonLines => "jsonl",
        },
        "delimiter": match p.shape {
            Shape::Csv { delimiter } => Some(delimiter.to_string()),
            Shape::JsonLines => None,
        },
        "mapping": p.mapping,
        "file_error": p.file_error.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
        "counts": p.counts,
        "errors": errors.iter().map(|e| json!({
            "row": e.row,
            "field": e.field,
            "code": e.code,
            "message": e.message(),
        })).collect::<Vec<_>>(),
        "started_at": p.started_at,
        "finished_at": p.updated_at,
        "invocations": p.invocations,
    })
}

fn emit_metrics(c: &ImportCounts) {
    let mut m = Metrics::new("leadflow").dimension("function", "lead-import");
    for (name, v) in c.named() {
        m.count(format!("import_{name}"), v as f64);
    }
    m.emit();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_s3_notifications_encode_them() {
        assert_eq!(
            decode_key("incoming/Webinar+Q4+%28EU%29.csv"),
            "incoming/Webinar Q4 (EU).csv"
        );
        assert_eq!(decode_key("incoming/a%2Bb.csv"), "incoming/a+b.csv");
        assert_eq!(decode_key("incoming/caf%C3%A9.csv"), "incoming/café.csv");
        assert_eq!(decode_key("bad%zz%"), "bad%zz%");
    }

    #[test]
    fn messages_are_continuations_notifications_or_s3_test_events() {
        let c: MessageBody = serde_json::from_str(
            r#"{"continue": {"bucket": "b", "key": "incoming/x.csv", "version_id": "v"}}"#,
        )
        .unwrap();
        assert!(matches!(c, MessageBody::Continue { .. }));
        let t: MessageBody = serde_json::from_str(
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-30T10:00:00.000Z","Bucket":"b","RequestId":"r","HostId":"h"}"#,
        )
        .unwrap();
        assert!(matches!(t, MessageBody::TestEvent { .. }));
    }
}
