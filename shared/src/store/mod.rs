//! The DynamoDB store. Every key, condition and expression of the table lives under this module,
//! and nothing outside it builds a key or sends a request: callers pass ids and typed values
//! (`keys` names the items, `codec` converts them, `ingest` is the dedupe-and-merge write path,
//! `read` the lookups, `quarantine` the replay queue, `announced` the leads platforms announce
//! by id, `announcements` what the stream function announced (and decoding stream images),
//! `phones` the re-normalization of refused phone numbers, `export` the lead export's
//! paged Scan, `rescore` the scores and run
//! checkpoints, `referrals`, `reviews`, `sales`, `metrics`, `calls` the dashboard's call list,
//! `imports` the list imports' checkpoints and row errors).
//! Tests read raw items through the `test-support` feature's typed helpers (`test_support`),
//! never a client of their own.

mod announced;
mod announcements;
mod calls;
#[cfg(any(test, feature = "test-support"))]
pub mod capacity;
pub(crate) mod codec;
mod erasure;
mod export;
mod imports;
mod ingest;
pub(crate) mod keys;
mod metrics;
mod migration;
mod phones;
mod predict;
mod quarantine;
mod read;
mod referrals;
mod rescore;
mod retention;
mod reviews;
mod sales;
#[cfg(any(test, feature = "test-support"))]
mod test_support;
mod txn;
pub use announced::{StoredDelivery, Withdrawal};
pub use announcements::{
    is_lead_key, item_from_stream_json, item_to_stream_json, lead_snapshot, LeadSnapshot,
    ScoreWriter,
};
pub use calls::{CallCandidate, CallContact, CallList, MAX_PAGES_PER_DAY};
pub use erasure::ErasureReceipt;
pub use export::{ExportFilter, ExportPage, ExportPosition};
pub use imports::ImportClaim;
pub use keys::{new_id, ts, DAY_INDEX_PROJECTION};
pub use metrics::DayIndex;
pub use migration::{BackfillReport, DayKeysZone, RezoneReport};
pub use phones::{PhoneAdoption, RefusedPhone};
pub use read::{
    record_from_items, LeadRecord, LeadReview, TouchCursor, LEAD_VIEW_TOUCHPOINTS,
    MAX_TOUCHPOINT_PAGE,
};
pub use referrals::{referral_delivery, referral_key};
pub use referrals::{ReferralCredit, Referrer};
pub use rescore::{
    RescoreProgress, RunScope, ScoreChange, ScoreWrite, ScoringInput, SegmentPage, SegmentProgress,
    MAX_SCORED_TOUCHES,
};
pub use reviews::{ReviewChange, ReviewStatus, ReviewWriteOutcome, StoredReview};
pub use sales::SalesEventOutcome;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;

pub use codec::Item;
pub use quarantine::QuarantinedItem;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB answered with an error or could not be reached (already retried by the SDK).
    /// `transient` tells a failure that may pass (throttling, timeouts, 5xx, a dropped
    /// connection) from one that never will (ValidationException: an item or key over
    /// DynamoDB's limits, a missing table, access denied).
    #[error("dynamodb {operation}: {message}")]
    Dynamo {
        operation: &'static str,
        message: String,
        transient: bool,
    },
    /// Concurrent writers kept winning; the caller should answer 5xx so the sender retries.
    #[error("gave up after {attempts} conflicting attempts")]
    Contention { attempts: u32 },
    /// An item exists but does not have the shape this code writes.
    #[error("corrupt item {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The same `Idempotency-Key` (within its form) came with different content. Not a storage
    /// fault: the caller answers 422.
    #[error("the idempotency key was already used for a different submission")]
    IdempotencyKeyReused,
}

/// DynamoDB error codes that pass by themselves: throttling, conflicts, server-side faults.
/// Everything else DynamoDB answers (ValidationException, ResourceNotFoundException,
/// AccessDeniedException, ItemCollectionSizeLimitExceededException...) fails the same way
/// however often it is retried.
const TRANSIENT_CODES: [&str; 9] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// Whether a DynamoDB error code names a failure that may pass on a retry.
pub(crate) fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
}

impl StoreError {
    pub(crate) fn sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + ProvideErrorMetadata + std::fmt::Debug + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let transient = match &err {
            // No answer, or an answer that could not be read: the request may well succeed.
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(e) => {
                let err = e.err();
                match err.code() {
                    Some(code) => is_transient_code(code),
                    // A modeled error built without metadata (only in fault-injection tests;
                    // the SDK always fills the code): its variant name is the code.
                    None => {
                        let debug = format!("{err:?}");
                        is_transient_code(debug.split(['(', ' ', '{']).next().unwrap_or(""))
                    }
                }
            }
            // The request could not even be built: it never will be.
            _ => false,
        };
        StoreError::Dynamo {
            operation,
            message: DisplayErrorContext(&err).to_string(),
            transient,
        }
    }

    /// True when retrying later may succeed (answer 503 / let the sender retry); false when the
    /// same request fails the same way forever (answer without `Retry-After`, quarantine).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Dynamo { transient, .. } => *transient,
            StoreError::Contention { .. } => true,
            StoreError::Corrupt { .. } | StoreError::IdempotencyKeyReused => false,
        }
    }
}

/// Counts DynamoDB HTTP requests (every attempt, retries included): the figure that drives cost
/// and latency. Installed on every client the store builds; read by benchmarks and EMF metrics.
#[derive(Debug, Clone, Default)]
pub struct RoundTrips(Arc<AtomicU64>);

impl RoundTrips {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for RoundTrips {
    fn name(&self) -> &'static str {
        "RoundTrips"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The lead table. Cheap to clone (the SDK client is reference-counted).
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    round_trips: RoundTrips,
    /// Keys suppression entries (`PRIVACY_PEPPER`); unset: no suppression is written or checked.
    pepper: crate::privacy::Pepper,
    /// The reporting time zone (`REPORT_TIME_ZONE`, default UTC): the day partitions every
    /// lead and touchpoint is filed under, and the days the readers ask for.
    zone: crate::report_zone::ReportZone,
}

impl Store {
    /// Builds the client from the SDK configuration (endpoint, region, credentials, timeouts)
    /// with the round-trip counter installed. Call once per cold start.
    pub fn new(sdk_config: &aws_types::SdkConfig, table: impl Into<String>) -> Store {
        Store::with_config(aws_sdk_dynamodb::config::Builder::from(sdk_config), table)
    }

    /// [`Store::new`] with a [`capacity::CapacityMeter`] on its requests (benches: every
    /// request asks for and records its consumed capacity).
    #[cfg(any(test, feature = "test-support"))]
    pub fn metered(
        sdk_config: &aws_types::SdkConfig,
        table: impl Into<String>,
        meter: capacity::CapacityMeter,
    ) -> Store {
        Store::with_config(
            aws_sdk_dynamodb::config::Builder::from(sdk_config).interceptor(meter),
            table,
        )
    }

    fn with_config(builder: aws_sdk_dynamodb::config::Builder, table: impl Into<String>) -> Store {
        let round_trips = RoundTrips::default();
        let conf = builder.interceptor(round_trips.clone()).build();
        Store {
            client: Client::from_conf(conf),
            table: table.into(),
            round_trips,
            pepper: Default::default(),
            zone: Default::default(),
        }
    }

    /// One BatchWriteItem (at most 25 writes), sending unprocessed items again (DynamoDB
    /// leaves some under load) with backoff, at most `BATCH_ATTEMPTS` times: then the caller
    /// gets `Contention` (transient) rather than a spin against a throttled table.
    pub(crate) async fn write_batch(
        &self,
        batch: Vec<aws_sdk_dynamodb::types::WriteRequest>,
    ) -> Result<(), StoreError> {
        const BATCH_ATTEMPTS: u32 = 8;
        let mut pending = Some(batch);
        let mut attempt = 0;
        while let Some(b) = pending.take() {
            attempt += 1;
            if attempt > BATCH_ATTEMPTS {
                return Err(StoreError::Contention {
                    attempts: BATCH_ATTEMPTS,
                });
            }
            if attempt > 1 {
                txn::backoff(attempt - 1).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, b)
                .send()
                .await
                .map_err(|e| StoreError::sdk("BatchWriteItem", e))?;
            pending = out
                .unprocessed_items()
                .and_then(|u| u.get(&self.table).cloned())
                .filter(|v| !v.is_empty());
        }
        Ok(())
    }

    /// The privacy pepper that keys suppression entries (each function passes
    /// `PRIVACY_PEPPER`).
    pub fn with_pepper(mut self, pepper: crate::privacy::Pepper) -> Store {
        self.pepper = pepper;
        self
    }

    /// The reporting time zone (each function that writes or reads day partitions passes
    /// `REPORT_TIME_ZONE`, [`crate::report_zone::ReportZone::from_lookup`]).
    pub fn with_report_zone(mut self, zone: crate::report_zone::ReportZone) -> Store {
        self.zone = zone;
        self
    }

    pub fn report_zone(&self) -> &crate::report_zone::ReportZone {
        &self.zone
    }

    /// The day-index keys of a lead or touchpoint at `at`: its reporting day in this store's
    /// zone (`keys::day_index_keys`).
    pub(crate) fn day_keys(
        &self,
        kind: keys::DayItem,
        at: chrono::DateTime<chrono::Utc>,
        id: &str,
    ) -> [(&'static str, String); 4] {
        keys::day_index_keys(kind, self.zone.day(at), at, id)
    }

    /// The day-index keys a new item gets (`keys::day_index_keys_written`: touchpoints no
    /// longer get gsi1's), on its reporting day in this store's zone.
    pub(crate) fn day_keys_written(
        &self,
        kind: keys::DayItem,
        at: chrono::DateTime<chrono::Utc>,
        id: &str,
    ) -> impl Iterator<Item = (&'static str, String)> {
        keys::day_index_keys_written(kind, self.zone.day(at), at, id)
    }

    /// Wraps an existing client (fault-injection tests use a mocked one).
    pub fn from_client(client: Client, table: impl Into<String>) -> Store {
        Store {
            client,
            table: table.into(),
            round_trips: RoundTrips::default(),
            pepper: Default::default(),
            zone: Default::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// DynamoDB requests sent by this store so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }

    /// Writes one item whole, unconditionally (1 PutItem).
    pub(crate) async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }

    /// Writes `item` unless an item with its key exists (1 PutItem): `true` when written.
    pub(crate) async fn put_if_absent(&self, item: Item) -> Result<bool, StoreError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        txn::applied(out, "PutItem")
    }

    /// A transaction's Put of a new item: cancelled (`ConditionalCheckFailed`) when an item
    /// with its key exists.
    pub(crate) fn put_new(&self, item: Item) -> aws_sdk_dynamodb::types::Put {
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("put has table and item")
    }

    /// An Update of the lead item of `lead_id` (table and key set); the caller adds the
    /// expression, the condition and the values.
    pub(crate) fn lead_update(
        &self,
        lead_id: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key(
                keys::PK,
                aws_sdk_dynamodb::types::AttributeValue::S(keys::lead_pk(lead_id)),
            )
            .key(
                keys::SK,
                aws_sdk_dynamodb::types::AttributeValue::S(keys::LEAD_SK.to_string()),
            )
    }

    /// Sends one transaction (1 TransactWriteItems); the caller reads a cancellation
    /// (`txn::cancellation_reasons`), which means something different to each write path.
    pub(crate) async fn transact(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
        SdkError<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    > {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
    }

    /// Sends one transaction: `None` when it committed, the cancellation reasons (one per item,
    /// in order) when it was cancelled; what a failed condition means is the caller's.
    pub(crate) async fn transact_or_cancelled(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<Option<Vec<aws_sdk_dynamodb::types::CancellationReason>>, StoreError> {
        match self.transact(items).await {
            Ok(_) => Ok(None),
            Err(e) => txn::cancellation_reasons(e, "TransactWriteItems").map(Some),
        }
    }

    /// One cheap request during init so the TLS handshake and credential resolution happen
    /// before the first webhook, not during it. Failure is logged, not fatal: the first request
    /// will then report the real problem with a 5xx.
    pub async fn warm_up(&self) {
        let res = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, codec::s("WARMUP"))
            .key(keys::SK, codec::s("WARMUP"))
            .projection_expression("pk")
            .send()
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %DisplayErrorContext(&e), "dynamodb warm-up failed");
        }
    }
}
