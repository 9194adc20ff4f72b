//! The one way a function stores a submission: normalize, ingest, count and log (no PII). Shared
//! so form-webhook, the provider adapters and referral-review record leads identically.

use chrono::{DateTime, Utc};

use crate::model::{IngestOutcome, NormalizedSubmission, Submission};
use crate::normalize::{normalize, NormalizeConfig, NormalizeError};
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// Why a submission was not stored: it cannot become a lead, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

impl IngestError {
    /// True when the same submission may be stored later (a transient storage fault): the
    /// sender should retry, nothing is quarantined.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IngestError::Store(e) if e.is_transient())
    }
}

/// Normalizes and stores one submission; the status is counted in `metrics`.
pub async fn ingest_one(
    store: &Store,
    cfg: &NormalizeConfig,
    sub: Submission,
    received_at: DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<IngestOutcome, IngestError> {
    let normalized = normalize(sub, cfg)?;
    Ok(ingest_normalized(store, &normalized, received_at, metrics).await?)
}

/// Stores an already normalized submission (callers that needed its match keys first).
pub async fn ingest_normalized(
    store: &Store,
    normalized: &NormalizedSubmission,
    received_at: DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<IngestOutcome, StoreError> {
    let outcome = store.ingest(normalized, received_at).await?;
    metrics.count(outcome.status.as_str(), 1.0);
    tracing::info!(
        provider = normalized.provider,
        status = outcome.status.as_str(),
        lead_id = outcome.lead_id,
        channel = normalized.classification.channel.as_str(),
        "submission stored"
    );
    Ok(outcome)
}
