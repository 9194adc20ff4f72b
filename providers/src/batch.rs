//! Deliveries that announce leads by id (Meta, LinkedIn, HubSpot CRM events): each lead of a batch is handled on
//! its own and stored as soon as it is fetched, within the invocation's time budget.
//!
//! 1. The delivery markers of every announced lead are read first (1 BatchGetItem per 100):
//!    a lead a previous attempt stored is answered `duplicate` without calling the platform, so
//!    a retried delivery fetches only the leads not stored yet.
//! 2. The others are fetched, at most `api_concurrency` at a time, each bounded by the platform
//!    API timeout and by the budget (the Lambda deadline less [`DEADLINE_RESERVE`]); each lead
//!    fetched is stored at once.
//! 3. The platform's refusals are sorted (`announced`): a lead it does not have is a
//!    `lead_gone` record; an authorization failure quarantines the delivery as
//!    `platform_auth_failed` (2xx: replay it once the token is fixed); a lead that could not be
//!    fetched in time, or a 5xx, makes the answer 5xx so the platform retries.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use leadflow::edge::{AppError, InboundRequest};
use leadflow::ingest::IngestError;
use leadflow::model::{IngestOutcome, LeadGone};
use leadflow::store::{StoreError, Withdrawal};
use leadflow::telemetry::Metrics;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::announced::{AnnouncedLead, FetchError, WithdrawnLead};
use crate::Intake;

/// Time kept back from the Lambda deadline to store what was fetched, quarantine and answer.
pub const DEADLINE_RESERVE: Duration = Duration::from_millis(1_500);
/// The budget of a batch when the invocation has no deadline (tests, local runs, replays).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(25);

/// When fetching must stop: now plus [`fetch_budget`].
pub fn fetch_deadline(deadline_ms: u64, now: DateTime<Utc>) -> Instant {
    Instant::now() + fetch_budget(deadline_ms, now)
}

/// The time left for fetching: the Lambda context's deadline (`deadline_ms`, epoch ms; 0 when
/// unknown) less [`DEADLINE_RESERVE`], read by `leadflow::lambda_time`'s rules (seconds scaled;
/// an implausible, already past deadline, as emulators send, and no deadline at all give
/// [`DEFAULT_BUDGET`]).
pub fn fetch_budget(deadline_ms: u64, now: DateTime<Utc>) -> Duration {
    let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    leadflow::lambda_time::budget(deadline_ms, now_ms, DEADLINE_RESERVE, DEFAULT_BUDGET)
}

/// What became of every lead of a delivery.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// One entry per announced or withdrawn lead, for the answer.
    pub results: Vec<Value>,
    /// What was stored (new, merged or already there).
    pub stored: Vec<IngestOutcome>,
    /// Authorization failures: the delivery is quarantined as `platform_auth_failed`.
    pub auth_failures: Vec<String>,
    /// Failures that may pass: the delivery is answered 5xx.
    pub transient: Vec<String>,
    /// A transient storage failure among them (answered 503 rather than 502).
    pub storage_unavailable: Option<StoreError>,
    /// Leads that cannot be stored as they are: the delivery is quarantined for replay.
    pub unusable: Vec<String>,
}

enum LeadResult {
    Stored(IngestOutcome),
    Gone,
    Failed(FetchError),
    Unusable(String),
    StorageDown(StoreError),
}

/// Fetches and stores every announced lead, and records every withdrawal.
pub async fn run(
    intake: Intake<'_>,
    provider: &str,
    req: &InboundRequest,
    leads: Vec<AnnouncedLead>,
    withdrawn: Vec<WithdrawnLead>,
    until: Instant,
    metrics: &mut Metrics,
) -> Result<BatchReport, StoreError> {
    let mut report = BatchReport::default();
    let keys: Vec<_> = leads.iter().map(|l| l.delivery.clone()).collect();
    let stored = if keys.is_empty() {
        Default::default()
    } else {
        intake
            .store
            .stored_deliveries(provider, &keys, req.received_at)
            .await?
    };
    let mut pending = Vec::with_capacity(leads.len());
    for lead in leads {
        match stored.get(&lead.delivery) {
            Some(s) => {
                metrics.count("duplicate", 1.0);
                report.results.push(json!({
                    "lead_id": s.lead_id, "status": "duplicate", "platform_id": lead.platform_id()
                }));
            }
            None => pending.push(lead),
        }
    }
    let concurrency = intake.providers.config().api_concurrency.max(1);
    let outcomes: Vec<(AnnouncedLead, LeadResult)> = stream::iter(pending)
        .map(|lead| async move {
            let result = fetch_and_store(intake, provider, req, &lead, until).await;
            (lead, result)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (lead, result) in outcomes {
        let id = lead.platform_id().to_string();
        match result {
            LeadResult::Stored(o) => {
                metrics.count(o.status.as_str(), 1.0);
                report.results.push(
                    json!({"lead_id": o.lead_id, "status": o.status.as_str(), "platform_id": id}),
                );
                report.stored.push(o);
            }
            LeadResult::Gone => {
                metrics.count("lead_gone", 1.0);
                report
                    .results
                    .push(json!({"status": "lead_gone", "platform_id": id}));
            }
            LeadResult::Failed(FetchError::Auth { status, code }) => {
                report
                    .results
                    .push(json!({"status": "platform_auth_failed", "platform_id": id}));
                report.auth_failures.push(format!(
                    "lead {id}: HTTP {status}{}",
                    code.map(|c| format!(" code {c}")).unwrap_or_default()
                ));
            }
            LeadResult::Failed(FetchError::Transient(reason)) => {
                report
                    .results
                    .push(json!({"status": "retry", "platform_id": id}));
                report.transient.push(format!("lead {id}: {reason}"));
            }
            LeadResult::Failed(e @ (FetchError::Rejected { .. } | FetchError::Gone { .. })) => {
                report
                    .results
                    .push(json!({"status": "quarantined", "platform_id": id}));
                report.unusable.push(format!("lead {id}: {e}"));
            }
            LeadResult::Unusable(reason) => {
                report
                    .results
                    .push(json!({"status": "quarantined", "platform_id": id}));
                report.unusable.push(format!("lead {id}: {reason}"));
            }
            LeadResult::StorageDown(e) => {
                report
                    .results
                    .push(json!({"status": "retry", "platform_id": id}));
                report
                    .transient
                    .push(format!("lead {id}: storage failed: {e}"));
                report.storage_unavailable = Some(e);
            }
        }
    }
    for w in withdrawn {
        let id = w.delivery.as_str().to_string();
        match intake
            .store
            .withdraw_delivery(provider, &w.delivery, w.at)
            .await
        {
            Ok(Withdrawal::Withdrawn { lead_id, .. }) => {
                metrics.count("withdrawn", 1.0);
                report
                    .results
                    .push(json!({"lead_id": lead_id, "status": "withdrawn", "platform_id": id}));
            }
            Ok(Withdrawal::Unknown) => {
                metrics.count("withdrawn_unknown", 1.0);
                report
                    .results
                    .push(json!({"status": "unknown_lead", "platform_id": id}));
            }
            Err(e) if e.is_transient() => {
                report
                    .results
                    .push(json!({"status": "retry", "platform_id": id}));
                report.transient.push(format!("withdrawal {id}: {e}"));
                report.storage_unavailable = Some(e);
            }
            Err(e) => {
                report
                    .results
                    .push(json!({"status": "quarantined", "platform_id": id}));
                report.unusable.push(format!("withdrawal {id}: {e}"));
            }
        }
    }
    Ok(report)
}

async fn fetch_and_store(
    intake: Intake<'_>,
    provider: &str,
    req: &InboundRequest,
    lead: &AnnouncedLead,
    until: Instant,
) -> LeadResult {
    let fetched =
        match tokio::time::timeout_at(until, intake.providers.fetch_lead(lead, req.received_at))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(FetchError::Transient(
                "not fetched within the invocation's time budget".to_string(),
            )),
        };
    match fetched {
        Ok(sub) => {
            let mut m = Metrics::new("leadflow");
            match intake.ingest(sub, req.received_at, &mut m).await {
                Ok(o) => LeadResult::Stored(o),
                Err(IngestError::Store(e)) if e.is_transient() => LeadResult::StorageDown(e),
                Err(e) => {
                    // The reason names the answer's code, as a web form would get it.
                    let e = AppError::from(e);
                    LeadResult::Unusable(format!("{}: {e}", e.code()))
                }
            }
        }
        Err(FetchError::Gone {
            status,
            code,
            message,
        }) => {
            let gone = LeadGone {
                provider: provider.to_string(),
                platform_lead_id: lead.platform_id().to_string(),
                ids: lead.ids.clone(),
                http_status: status,
                reason: format!(
                    "{}{}",
                    code.map(|c| format!("error code {c}: "))
                        .unwrap_or_default(),
                    message
                ),
                received_at: req.received_at,
                deliveries: 1,
            };
            tracing::warn!(
                provider,
                platform_id = lead.platform_id(),
                status,
                ?code,
                "lead gone at the platform"
            );
            match intake.store.record_lead_gone(&gone).await {
                Ok(()) => LeadResult::Gone,
                Err(e) if e.is_transient() => LeadResult::StorageDown(e),
                Err(e) => LeadResult::Unusable(format!("lead_gone not recorded: {e}")),
            }
        }
        Err(e) => {
            tracing::error!(provider, platform_id = lead.platform_id(), error = %e, "lead fetch failed");
            LeadResult::Failed(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_budget_ends_before_the_lambda_deadline() {
        let now = Utc.timestamp_millis_opt(1_796_035_643_000).unwrap();
        let in_ten_s = 1_796_035_653_000;
        assert_eq!(
            fetch_budget(in_ten_s, now),
            Duration::from_secs(10) - DEADLINE_RESERVE
        );
        // A deadline in seconds (an emulator's) is read as seconds.
        assert_eq!(
            fetch_budget(in_ten_s / 1000, now),
            Duration::from_secs(10) - DEADLINE_RESERVE
        );
        // Closer than the reserve: nothing more is fetched.
        assert_eq!(fetch_budget(1_796_035_643_500, now), Duration::ZERO);
    }

    #[test]
    fn no_or_an_implausible_deadline_gets_the_default_budget() {
        let now = Utc.timestamp_millis_opt(1_796_035_643_000).unwrap();
        assert_eq!(fetch_budget(0, now), DEFAULT_BUDGET);
        // cargo lambda watch sends 600000 (January 1970) as every deadline.
        assert_eq!(fetch_budget(600_000, now), DEFAULT_BUDGET);
    }
}
