//! form-webhook: `POST /webhooks/{provider}` for web forms (`form`) and form/ad platforms.
//!
//! The handler is a plain async function over [`AppState`] so tests call it directly with
//! `LambdaEvent::new(event, Context::default())`; `main.rs` only builds the state once and runs it.

pub mod batch;
pub mod cors;
pub mod form;
pub mod providers;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use leadflow::http::{empty_response, json_response, InboundRequest, MAX_BODY_BYTES};
use leadflow::limits;
use leadflow::model::{IngestOutcome, IngestStatus, Submission, TouchKind};
use leadflow::normalize::NormalizeConfig;
use leadflow::store::Store;
use leadflow::telemetry::Metrics;
use leadflow::AppError;
use serde_json::json;

use crate::cors::Cors;
use crate::form::FormConfig;
use crate::providers::{ProviderOutcome, Providers, ProvidersConfig, PROVIDER_NAMES};

/// Ingests of one batched delivery (a Meta POST may carry many leads) run this many at a time.
const INGEST_CONCURRENCY: usize = 8;

/// Everything the handler needs, built once per cold start.
pub struct AppState {
    pub store: Store,
    pub normalize: NormalizeConfig,
    pub form: FormConfig,
    pub cors: Cors,
    pub providers: Providers,
}

impl AppState {
    /// Reads the configuration from the environment (see README, "Configuration").
    pub fn from_env(store: Store) -> Result<AppState, String> {
        AppState::from_lookup(store, |k| std::env::var(k).ok())
    }

    /// The same from any variable source (tests pass a map).
    pub fn from_lookup(
        store: Store,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<AppState, String> {
        Ok(AppState {
            store,
            normalize: NormalizeConfig::from_lookup(&get)?,
            form: FormConfig::from_lookup(&get)?,
            cors: Cors::from_lookup(&get),
            providers: Providers::new(ProvidersConfig::from_lookup(&get)),
        })
    }
}

/// The Lambda handler. Application errors become JSON answers here; only a failure to answer
/// at all is a Lambda error.
pub async fn handler(
    state: &AppState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    let (response, metrics) = respond(state, event).await;
    metrics.emit();
    Ok(response)
}

/// The answer to one request and its metrics record (the handler prints it; tests read it).
pub async fn respond(
    state: &AppState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> (ApiGatewayV2httpResponse, Metrics) {
    let (request, context) = event.into_parts();
    let origin = request
        .headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let started = state.store.round_trips();
    let mut metrics = Metrics::new("leadflow").dimension("function", "form-webhook");
    let response = match InboundRequest::from_apigw(&request, MAX_BODY_BYTES) {
        Ok(req) => {
            // Only known providers become dimension values: a request cannot mint metrics.
            metrics = metrics.dimension("provider", provider_dimension(&provider_name(&req)));
            let until = batch::fetch_deadline(context.deadline, Utc::now());
            route(state, &req, until, &mut metrics).await
        }
        Err(e) => Err(e),
    };
    let mut response = response.unwrap_or_else(|e| {
        match &e {
            AppError::Storage(_) | AppError::Upstream(_) => {
                tracing::error!(code = e.code(), error = %e, "request failed")
            }
            _ => tracing::info!(code = e.code(), field = e.field(), "request rejected"),
        }
        metrics.count(format!("rejected_{}", e.code()), 1.0);
        e.to_response()
    });
    state.cors.decorate(&mut response, origin.as_deref());
    metrics.count(
        "dynamodb_round_trips",
        (state.store.round_trips() - started) as f64,
    );
    (response, metrics)
}

/// The `provider` metric dimension: the provider's name when it is one this function serves,
/// else `(other)` (`POST /webhooks/<anything>` must not create CloudWatch metrics).
pub fn provider_dimension(name: &str) -> &'static str {
    if name == "form" {
        "form"
    } else {
        limits::dimension(name, &PROVIDER_NAMES)
    }
}

/// `form`, `typeform`...: the route's path parameter, or the last path segment when the event
/// comes from a Function URL (`cargo lambda watch`) without path parameters.
fn provider_name(req: &InboundRequest) -> String {
    req.path_params
        .get("provider")
        .cloned()
        .unwrap_or_else(|| {
            req.path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .to_ascii_lowercase()
}

async fn route(
    state: &AppState,
    req: &InboundRequest,
    until: tokio::time::Instant,
    metrics: &mut Metrics,
) -> Result<ApiGatewayV2httpResponse, AppError> {
    let provider = provider_name(req);
    if !req.path.contains("/webhooks/") && req.path_params.is_empty() {
        return Err(AppError::not_found(
            "route_not_found",
            format!("no route for {}; POST to /webhooks/{{provider}}", req.path),
        ));
    }
    if req.method == "OPTIONS" {
        return state.cors.preflight(req);
    }
    if provider == "form" {
        return form::handle(state, req, metrics).await;
    }
    if !Providers::knows(&provider) {
        return Err(AppError::not_found(
            "unknown_provider",
            format!("no webhook provider named {provider:?}"),
        ));
    }
    match state.providers.handle(&provider, req, Utc::now()).await? {
        ProviderOutcome::Respond(resp) => Ok(resp),
        ProviderOutcome::Ignored { reason } => {
            tracing::info!(provider, reason, "delivery ignored");
            metrics.count("ignored", 1.0);
            Ok(json_response(
                200,
                &json!({"status": "ignored", "reason": reason}),
            ))
        }
        ProviderOutcome::Quarantine { reason } => {
            let id = quarantine(state, &provider, req, &reason).await?;
            metrics.count("quarantined", 1.0);
            Ok(json_response(
                202,
                &json!({"status": "quarantined", "quarantine_id": id}),
            ))
        }
        ProviderOutcome::Submissions(subs) => {
            let results = ingest_platform_batch(state, &provider, req, subs, metrics).await?;
            Ok(json_response(200, &json!({ "results": results })))
        }
        ProviderOutcome::Announced { leads, withdrawn } => {
            let report =
                batch::run(state, &provider, req, leads, withdrawn, until, metrics).await?;
            answer_batch(state, &provider, req, report, metrics).await
        }
    }
}

/// The answer to a delivery of announced leads (`batch`): an authorization failure
/// quarantines the delivery as `platform_auth_failed` (2xx, a metric an alarm watches);
/// otherwise a lead that may still come is a 5xx so the platform retries (what was stored is
/// a `duplicate` then, and not fetched again); leads that cannot be stored as they are
/// quarantine the delivery for replay; the rest is 200 with a result per lead.
async fn answer_batch(
    state: &AppState,
    provider: &str,
    req: &InboundRequest,
    report: batch::BatchReport,
    metrics: &mut Metrics,
) -> Result<ApiGatewayV2httpResponse, AppError> {
    if !report.auth_failures.is_empty() {
        let reason = format!(
            "{PLATFORM_AUTH_FAILED}: the {provider} API refused our access token ({})",
            report.auth_failures.join("; ")
        );
        let id = quarantine(state, provider, req, &reason).await?;
        metrics.count(PLATFORM_AUTH_FAILED, 1.0);
        metrics.count("quarantined", 1.0);
        tracing::error!(provider, quarantine_id = %id, "platform access token refused: fix it, then replay the quarantine");
        return Ok(json_response(
            202,
            &json!({"status": "quarantined", "reason": PLATFORM_AUTH_FAILED,
                    "quarantine_id": id, "results": report.results}),
        ));
    }
    if !report.transient.is_empty() {
        metrics.count("deferred", report.transient.len() as f64);
        return Err(report.storage_unavailable.unwrap_or_else(|| {
            AppError::Upstream(format!(
                "{} lead(s) not stored yet: {}",
                report.transient.len(),
                report.transient.join("; ")
            ))
        }));
    }
    if !report.unusable.is_empty() {
        quarantine(state, provider, req, &report.unusable.join("; ")).await?;
        metrics.count("quarantined", 1.0);
    }
    Ok(json_response(200, &json!({ "results": report.results })))
}

/// The quarantine reason (and metric) of a delivery whose platform refused our access token.
pub const PLATFORM_AUTH_FAILED: &str = "platform_auth_failed";

/// Keeps an authentic delivery that could not be used, for replay; the platform gets a 2xx so
/// it does not disable the webhook.
async fn quarantine(
    state: &AppState,
    provider: &str,
    req: &InboundRequest,
    reason: &str,
) -> Result<String, AppError> {
    let id = state
        .store
        .quarantine(
            provider,
            reason,
            &req.body,
            req.header("content-type"),
            &req.raw_query,
            req.received_at,
        )
        .await?;
    tracing::error!(provider, reason, quarantine_id = %id, "authentic delivery quarantined for replay");
    Ok(id)
}

/// Normalizes and stores one submission; the status is counted in `metrics`
/// (`leadflow::ingest::ingest_one`, shared with referral-review).
pub async fn ingest_one(
    state: &AppState,
    sub: Submission,
    received_at: chrono::DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<IngestOutcome, AppError> {
    leadflow::ingest::ingest_one(&state.store, &state.normalize, sub, received_at, metrics).await
}

/// Stores every submission of an authentic platform delivery. A submission the platform sent
/// without a usable contact, or one the store rejects for good (over a DynamoDB limit), cannot
/// become a lead; the delivery is quarantined for replay (once) instead of being refused, since
/// a 4xx would only make the platform retry or disable the hook. A transient storage failure
/// fails the whole delivery with 503: the platform retries it, and delivery ids make the
/// stored part a no-op the second time.
async fn ingest_platform_batch(
    state: &AppState,
    provider: &str,
    req: &InboundRequest,
    subs: Vec<Submission>,
    metrics: &mut Metrics,
) -> Result<Vec<serde_json::Value>, AppError> {
    let results: Vec<(Option<TouchKind>, Result<IngestOutcome, AppError>)> = stream::iter(subs)
        .map(|sub| async move {
            let kind = sub.kind;
            let mut m = Metrics::new("leadflow");
            (
                Some(kind),
                ingest_one(state, sub, req.received_at, &mut m).await,
            )
        })
        .buffered(INGEST_CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    let mut unusable = Vec::new();
    for (kind, result) in results {
        match result {
            Ok(o) => {
                metrics.count(o.status.as_str(), 1.0);
                out.push(json!({"lead_id": o.lead_id, "status": o.status.as_str()}));
            }
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) if kind == Some(TouchKind::PartialSubmission) => {
                // A partial response without a contact is an anonymous touch: nothing to keep.
                metrics.count("partial_without_contact", 1.0);
                out.push(json!({"status": "ignored", "reason": e.to_string()}));
            }
            Err(e) => {
                unusable.push(format!("{}: {}", e.code(), e));
                out.push(json!({"status": "quarantined", "reason": e.code()}));
            }
        }
    }
    if !unusable.is_empty() {
        quarantine(state, provider, req, &unusable.join("; ")).await?;
        metrics.count("quarantined", 1.0);
    }
    Ok(out)
}

/// What replaying a quarantined delivery did.
#[derive(Debug)]
pub enum ReplayResult {
    Stored(Vec<IngestOutcome>),
    StillUnusable(String),
}

/// Re-ingests a quarantined delivery. The provider's parser runs again but not its signature
/// check: the delivery was authenticated when it was received, and timestamped signatures
/// would be stale by now. Storage errors are returned so the item stays quarantined.
pub async fn replay(
    state: &AppState,
    item: &leadflow::store::QuarantinedItem,
) -> Result<ReplayResult, AppError> {
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
    let outcome = state
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
                state,
                &item.provider,
                &req,
                leads,
                withdrawn,
                until,
                &mut metrics,
            )
            .await?;
            if let Some(e) = report.storage_unavailable {
                return Err(e);
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
        match ingest_one(state, sub, item.received_at, &mut metrics).await {
            Ok(o) => stored.push(o),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => return Ok(ReplayResult::StillUnusable(format!("{}: {e}", e.code()))),
        }
    }
    Ok(ReplayResult::Stored(stored))
}

/// The answer to a stored web-form submission: 201 for a new lead, 200 otherwise.
pub fn outcome_response(outcome: &IngestOutcome) -> ApiGatewayV2httpResponse {
    let status = if outcome.status == IngestStatus::Created {
        201
    } else {
        200
    };
    json_response(
        status,
        &json!({"lead_id": outcome.lead_id, "status": outcome.status.as_str()}),
    )
}

/// `204 No Content`, for answers that need only headers.
pub fn no_content() -> ApiGatewayV2httpResponse {
    empty_response(204)
}
