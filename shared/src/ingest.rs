//! The one way a function stores a submission: normalize, ingest, count and log (no PII). Shared
//! so form-webhook and referral-review record leads identically.

use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::model::{IngestOutcome, NormalizedSubmission, Submission};
use crate::normalize::{normalize, NormalizeConfig};
use crate::store::Store;
use crate::telemetry::Metrics;

/// Normalizes and stores one submission; the status is counted in `metrics`.
pub async fn ingest_one(
    store: &Store,
    cfg: &NormalizeConfig,
    sub: Submission,
    received_at: DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<IngestOutcome, AppError> {
    let normalized = normalize(sub, cfg)?;
    ingest_normalized(store, &normalized, received_at, metrics).await
}

/// Stores an already normalized submission (callers that needed its match keys first).
pub async fn ingest_normalized(
    store: &Store,
    normalized: &NormalizedSubmission,
    received_at: DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<IngestOutcome, AppError> {
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
