//! form-webhook: `POST /webhooks/form` for web forms and `/webhooks/{provider}` for the form and
//! ad platforms of `leadflow-providers`, over the shared edge (`leadflow::edge`).
//!
//! The handler is a plain async function over [`AppState`] so tests call it directly with
//! `LambdaEvent::new(event, Context::default())`; `main.rs` only builds the state once and runs it.

pub mod form;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use leadflow::edge::{
    self, empty_response, json_response, AppError, Auth, Cors, InboundRequest, Response, Route,
    Service,
};
use leadflow::model::{IngestOutcome, IngestStatus, Submission, TouchKind};
use leadflow::normalize::NormalizeConfig;
use leadflow::store::Store;
use leadflow::telemetry::Metrics;
use serde_json::json;

use leadflow_providers::batch;
use leadflow_providers::{Intake, ProviderOutcome, Providers, ProvidersConfig};

use crate::form::FormConfig;

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
    /// What the provider adapters need to store a delivery.
    pub fn intake(&self) -> Intake<'_> {
        Intake {
            store: &self.store,
            normalize: &self.normalize,
            providers: &self.providers,
        }
    }

    /// Reads the configuration from `get` (`main.rs`: the environment; tests: a map) (see README, "Configuration").
    pub fn from_lookup(
        store: Store,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<AppState, String> {
        Ok(AppState {
            store: store
                .with_pepper(leadflow::privacy::Pepper::privacy(&get)?)
                .with_report_zone(leadflow::report_zone::ReportZone::from_lookup(&get)?),
            normalize: NormalizeConfig::from_lookup(&get)?,
            form: FormConfig::from_lookup(&get)?,
            cors: Cors::parse(get("FORM_ALLOWED_ORIGINS").as_deref()),
            providers: Providers::new(ProvidersConfig::from_lookup(&get)),
        })
    }
}

impl AppState {
    /// Provider secrets that rotate (`SECRETS_ID`; `None`: as read at cold start).
    pub fn rotating(mut self, secrets: Option<std::sync::Arc<leadflow::secrets::Secrets>>) -> Self {
        self.providers = self.providers.rotating(secrets);
        self
    }
}

impl Service for AppState {
    const NAME: &'static str = "form-webhook";
    const ROUTES: &'static [Route<AppState>] = &[
        Route::post("/webhooks/form", Auth::Public, |s, req, m| {
            Box::pin(form::handle(s, req, m))
        }),
        // Every method: a platform's handshake is a GET, its deliveries POSTs, and an
        // unconfigured platform is 404 whatever the method (`providers`).
        Route::any("/webhooks/{provider}", Auth::Public, |s, req, m| {
            Box::pin(platform(s, req, m))
        }),
    ];

    fn store(&self) -> &Store {
        &self.store
    }

    fn normalize(&self) -> &NormalizeConfig {
        &self.normalize
    }

    fn cors(&self) -> Option<&Cors> {
        Some(&self.cors)
    }

    /// `provider`: only known providers become dimension values.
    fn dimension(
        &self,
        _route: Option<&Route<AppState>>,
        req: &InboundRequest,
    ) -> Option<(&'static str, &'static str)> {
        Some(("provider", provider_dimension(&provider_name(req))))
    }
}

/// The Lambda handler: the shared edge over [`AppState::ROUTES`].
pub async fn handler(
    state: &AppState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    edge::handle(state, event).await
}

/// The answer to one request and its metrics record (the handler prints it; tests read it).
pub async fn respond(
    state: &AppState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> (ApiGatewayV2httpResponse, Metrics) {
    edge::respond(state, event).await
}

/// The `provider` metric dimension: the provider's name when it is one this function serves,
/// else `(other)` (`POST /webhooks/<anything>` must not create CloudWatch metrics).
pub fn provider_dimension(name: &str) -> &'static str {
    if name == "form" {
        "form"
    } else {
        leadflow_providers::dimension(name)
    }
}

/// `form`, `typeform`...: the route's path parameter, else the last path segment.
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

/// `/webhooks/{provider}` for the form and ad platforms: handshake, or verify, parse and store.
async fn platform(
    state: &AppState,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    let provider = provider_name(req);
    if !Providers::knows(&provider) {
        return Err(AppError::not_found(
            "unknown_provider",
            format!("no webhook provider named {provider:?}"),
        ));
    }
    let until = batch::fetch_deadline(req.deadline_ms, Utc::now());
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
            let report = batch::run(
                state.intake(),
                &provider,
                req,
                leads,
                withdrawn,
                until,
                metrics,
            )
            .await?;
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
) -> Result<Response, AppError> {
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
        return Err(report
            .storage_unavailable
            .map(AppError::from)
            .unwrap_or_else(|| {
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
/// (`leadflow::ingest::ingest_one`, shared with the adapters and referral-review). Its errors
/// are answers.
pub async fn ingest_one(
    state: &AppState,
    sub: Submission,
    received_at: chrono::DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<IngestOutcome, AppError> {
    Ok(state.intake().ingest(sub, received_at, metrics).await?)
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

/// The answer to a stored web-form submission: 201 for a new lead, 200 otherwise.
pub fn outcome_response(outcome: &IngestOutcome) -> Response {
    let status = if outcome.status == IngestStatus::Created {
        201
    } else {
        200
    };
    if outcome.status == IngestStatus::Suppressed {
        // Nothing was stored, and nothing names the erased lead.
        return json_response(status, &json!({"status": outcome.status.as_str()}));
    }
    json_response(
        status,
        &json!({"lead_id": outcome.lead_id, "status": outcome.status.as_str()}),
    )
}

/// `204 No Content`, for answers that need only headers.
pub fn no_content() -> Response {
    empty_response(204)
}
