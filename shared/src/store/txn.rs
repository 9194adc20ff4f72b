//! Transaction plumbing shared by every write path: what a cancelled TransactWriteItems said,
//! and how long to wait before trying again.

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;
use chrono::Utc;

use super::StoreError;

/// Whether an item's condition failed (as opposed to a conflict or throttling).
pub(crate) fn failed(r: &CancellationReason) -> bool {
    r.code() == Some("ConditionalCheckFailed")
}

/// Cancellation reason codes that no retry can clear: an item over 400 KB, a key over its size
/// limit, a local secondary index collection over 10 GB.
const PERMANENT_REASONS: [&str; 2] = ["ValidationError", "ItemCollectionSizeLimitExceeded"];

/// The cancellation reasons of a cancelled transaction (empty for "in progress": retry as is);
/// any other failure, and a cancellation for a reason no retry clears, is a storage error.
pub(crate) fn cancellation_reasons<R>(
    err: aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
    operation: &'static str,
) -> Result<Vec<CancellationReason>, StoreError>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(ex)) => {
            let reasons = ex.cancellation_reasons().to_vec();
            if let Some(r) = reasons
                .iter()
                .find(|r| r.code().is_some_and(|c| PERMANENT_REASONS.contains(&c)))
            {
                return Err(StoreError::Dynamo {
                    operation,
                    message: format!(
                        "transaction cancelled: {}: {}",
                        r.code().unwrap_or_default(),
                        r.message().unwrap_or_default()
                    ),
                    transient: false,
                });
            }
            Ok(reasons)
        }
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => Ok(Vec::new()),
        _ => Err(StoreError::sdk(operation, err)),
    }
}

/// Exponential backoff with jitter, so concurrent writers of one item spread out instead of
/// colliding again in lockstep.
pub(crate) async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(Utc::now().timestamp_subsec_nanos()) % base.max(1);
    tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
}

/// A conditional write's outcome: `true` when it was applied, `false` when its condition
/// failed (the write did nothing, which the caller may well have wanted), the error otherwise.
pub(crate) fn applied<T, E, R>(
    out: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    operation: &'static str,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata
        + std::error::Error
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match out {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(StoreError::sdk(operation, e)),
    }
}
