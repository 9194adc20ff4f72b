//! lead-api: the HTTP API sales and marketing use (API key in `x-api-key`, keys from
//! `LEAD_API_KEYS`). Routes:
//!
//! | route | what |
//! |---|---|
//! | `GET /leads/{id}` | a lead with touchpoints, score, stage, referrals, reviews |
//! | `GET /leads?email=` / `?phone=` | the same, found by identity |
//! | `POST /leads/{id}/events` | sales events: contacted, sql, won, lost, unsubscribe |
//! | `DELETE /leads/{id}` | GDPR erasure |
//! | `POST /spend` | ad spend per day x source x campaign (a repost replaces) |
//! | `GET /metrics` | rollups grouped by day, source, channel or campaign |
//! | `GET /dashboard` | one self-contained HTML page (the key may be given as `?key=`) |

pub mod dashboard;
pub mod leads;
pub mod reports;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::LambdaEvent;
use leadflow::auth::ApiKeys;
use leadflow::http::{InboundRequest, MAX_BODY_BYTES};
use leadflow::normalize::NormalizeConfig;
use leadflow::store::Store;
use leadflow::telemetry::Metrics;
use leadflow::AppError;

pub struct ApiState {
    pub store: Store,
    pub keys: ApiKeys,
    pub normalize: NormalizeConfig,
}

impl ApiState {
    pub fn from_lookup(
        store: Store,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiState, String> {
        Ok(ApiState {
            store,
            keys: ApiKeys::parse(get("LEAD_API_KEYS").as_deref()),
            normalize: NormalizeConfig::from_lookup(&get)?,
        })
    }
}

pub async fn handler(
    state: &ApiState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    let started = state.store.round_trips();
    let mut metrics = Metrics::new("leadflow").dimension("function", "lead-api");
    let result = match InboundRequest::from_apigw(&event.payload, MAX_BODY_BYTES) {
        Ok(req) => route(state, &req).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if matches!(e, AppError::Storage(_)) {
            tracing::error!(code = e.code(), error = %e, "request failed");
        } else {
            tracing::info!(code = e.code(), "request rejected");
        }
        metrics.count(format!("rejected_{}", e.code()), 1.0);
        e.to_response()
    });
    metrics.count(
        "dynamodb_round_trips",
        (state.store.round_trips() - started) as f64,
    );
    metrics.emit();
    Ok(response)
}

async fn route(
    state: &ApiState,
    req: &InboundRequest,
) -> Result<ApiGatewayV2httpResponse, AppError> {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    // The dashboard is opened in a browser, which cannot send headers: it also takes ?key=.
    if segments == ["dashboard"] {
        let mut authed = req.clone();
        if let Some(k) = req.query.get("key") {
            authed
                .headers
                .entry("x-api-key".into())
                .or_insert_with(|| k.clone());
        }
        state.keys.check(&authed)?;
    } else {
        state.keys.check(req)?;
    }
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["leads"]) => leads::find(state, req).await,
        ("GET", ["leads", id]) => leads::get(state, id).await,
        ("DELETE", ["leads", id]) => leads::erase(state, id).await,
        ("POST", ["leads", id, "events"]) => leads::event(state, id, req).await,
        ("POST", ["spend"]) => reports::post_spend(state, req).await,
        ("GET", ["metrics"]) => reports::get_metrics(state, req).await,
        ("GET", ["dashboard"]) => dashboard::get(state, req).await,
        (
            _,
            ["leads"]
            | ["leads", _]
            | ["leads", _, "events"]
            | ["spend"]
            | ["metrics"]
            | ["dashboard"],
        ) => Err(AppError::MethodNotAllowed(req.method.clone())),
        _ => Err(AppError::not_found(
            "route_not_found",
            format!("no route for {} {}", req.method, req.path),
        )),
    }
}
