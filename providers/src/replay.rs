//! Replaying a quarantined delivery (`leadflow replay-quarantine`): the provider's parser runs
//! again, announced leads are fetched again, and what parses is stored. Delivery ids keep a
//! replay from creating anything twice.

use chrono::Utc;
use leadflow::edge::{AppError, InboundRequest};
use leadflow::ingest::IngestError;
use leadflow::model::IngestOutcome;
use leadflow::store::{QuarantinedItem, StoreError};
use leadflow::telemetry::Metrics;

use crate::batch;
use crate::{Intake, ProviderError, ProviderOutcome};

/// What replaying a quarantined delivery did.
#[derive(Debug)]
pub enum ReplayResult {
    Stored(Vec<IngestOutcome>),
    StillUnusable(String),
}

/// Why a replay stopped: the item stays quarantined.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

/// Re-ingests a quarantined delivery. The provider's parser runs again but not its signature
/// check: the delivery was authenticated when it was received, and timestamped signatures
/// would be stale by now. Storage errors are returned so the item stays quarantined.
pub async fn replay(
    intake: Intake<'_>,
    item: &QuarantinedItem,
) -> Result<ReplayResult, ReplayError> {
    let mut req = InboundRequest {
        method: "POST".to_string(),
        path: format!("/webhooks/{}", item.provider),
        raw_query: item.raw_query.clone(),
        query: form_urlencoded::parse(item.raw_query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        body: item.body.clone(),
        received_at: item.received_at,
        ..Default::default()
    };
    if let Some(ct) = &item.content_type {
        req.headers.insert("content-type".to_string(), ct.clone());
    }
    let outcome = intake
        .providers
        .parse_authenticated(&item.provider, &req, Utc::now())
        .await?;
    let subs = match outcome {
        ProviderOutcome::Submissions(subs) => subs,
        ProviderOutcome::Announced { leads, withdrawn } => {
            // Fetched again now (the token may have been fixed since); no invocation deadline.
            let mut metrics = Metrics::new("leadflow");
            let until = batch::fetch_deadline(0, Utc::now());
            let report = batch::run(
                intake,
                &item.provider,
                &req,
                leads,
                withdrawn,
                until,
                &mut metrics,
            )
            .await?;
            if let Some(e) = report.storage_unavailable {
                return Err(e.into());
            }
            let problems: Vec<String> = report
                .auth_failures
                .iter()
                .chain(&report.transient)
                .chain(&report.unusable)
                .cloned()
                .collect();
            return Ok(if problems.is_empty() {
                ReplayResult::Stored(report.stored)
            } else {
                ReplayResult::StillUnusable(problems.join("; "))
            });
        }
        ProviderOutcome::Quarantine { reason } => return Ok(ReplayResult::StillUnusable(reason)),
        ProviderOutcome::Ignored { reason } => return Ok(ReplayResult::StillUnusable(reason)),
        ProviderOutcome::Respond(_) => {
            return Ok(ReplayResult::StillUnusable("not a delivery".to_string()))
        }
    };
    let mut stored = Vec::with_capacity(subs.len());
    let mut metrics = Metrics::new("leadflow");
    for sub in subs {
        match intake.ingest(sub, item.received_at, &mut metrics).await {
            Ok(o) => stored.push(o),
            Err(IngestError::Store(e)) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                let e = AppError::from(e);
                return Ok(ReplayResult::StillUnusable(format!("{}: {e}", e.code())));
            }
        }
    }
    Ok(ReplayResult::Stored(stored))
}
