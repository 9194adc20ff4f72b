//! The HTTP edge shared by form-webhook, lead-api and referral-review. Per request:
//!
//! 1. the API Gateway HTTP API (payload 2.0) or Function URL event becomes an
//!    [`InboundRequest`] (`request`): 413 above [`MAX_BODY_BYTES`], the stage prefix removed;
//! 2. the function's route table ([`Service::ROUTES`]) picks the handler by method and path
//!    (`router`); an `OPTIONS` request of a function with CORS is a preflight (`cors`); the
//!    route's [`Auth`] is checked (`auth`);
//! 3. the handler answers a [`Response`] or an [`AppError`] (`error`: the one place errors,
//!    domain errors included, become statuses and `{"error": {...}}` bodies);
//! 4. CORS headers are added, the request metrics record (EMF: `function` and the function's
//!    own dimension, `rejected_<code>`, `dynamodb_round_trips`, `duration`) and one log line are
//!    written.
//!
//! `aws_lambda_events`' HTTP types appear in this module and nowhere else in `shared`; handlers
//! see [`InboundRequest`] and [`Response`] only.

mod auth;
mod cors;
mod error;
mod request;
mod response;
mod router;

use std::time::Instant;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::{service_fn, LambdaEvent};

pub use auth::{ApiKeys, LiveApiKeys, Scope, Scopes};
pub use cors::Cors;
pub use error::AppError;
pub use request::{InboundRequest, MAX_BODY_BYTES};
pub use response::{
    body_text, empty_response, json_response, redirect_response, text_response, Response,
};
pub use router::{Auth, BoxFuture, Handler, Route};

use crate::normalize::NormalizeConfig;
use crate::store::Store;
use crate::telemetry::Metrics;
use router::Found;

/// An HTTP function: its state, built once per cold start, and its route table.
pub trait Service: Send + Sync + Sized + 'static {
    /// The `function` metric dimension (`form-webhook`).
    const NAME: &'static str;
    const ROUTES: &'static [Route<Self>];

    fn store(&self) -> &Store;

    /// The normalization settings, warmed up at cold start ([`crate::warm`]).
    fn normalize(&self) -> &NormalizeConfig;

    /// The keys of [`Auth::ApiKey`] routes. None by default: such routes then refuse everyone.
    fn api_keys(&self) -> Option<&LiveApiKeys> {
        None
    }

    /// CORS for browsers posting from other origins (`None`: no CORS headers, no preflight).
    fn cors(&self) -> Option<&Cors> {
        None
    }

    /// A metric dimension beyond `function`, from values the function knows (never a raw
    /// request value: a request must not be able to mint CloudWatch metrics). `route` is the
    /// route whose path matched, if any.
    fn dimension(
        &self,
        route: Option<&Route<Self>>,
        req: &InboundRequest,
    ) -> Option<(&'static str, &'static str)> {
        let _ = (route, req);
        None
    }
}

/// The Lambda entry point of an HTTP function: tracing, the SDK configuration, the store and
/// the secret (`SECRETS_ID`, [`crate::secrets`]) are set up once; `build` makes the state from
/// them (`AtStart::lookup` reads the secret, then the environment); every invocation then runs
/// [`handle`]. The caller picks the Tokio runtime (`main.rs`).
pub async fn run<S: Service>(
    build: impl FnOnce(Store, &crate::secrets::AtStart) -> Result<S, String>,
) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init_tracing();
    let sdk_config = crate::config::load_sdk_config().await;
    let store = Store::new(&sdk_config, crate::config::table_name()?);
    let secrets = crate::secrets::AtStart::from_env(&sdk_config).await?;
    let state = build(store, &secrets)?;
    // Phone metadata warms up without delaying the first poll (leadflow::warm).
    crate::warm::start_background_warm_up(state.store(), state.normalize());
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        handle(state, event)
    }))
    .await
}

/// One invocation: the answer, with the metrics record printed. Application errors are
/// answers; only a failure to answer at all would be a Lambda error.
pub async fn handle<S: Service>(
    state: &S,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    let (response, metrics) = respond(state, event).await;
    metrics.emit();
    Ok(response)
}

/// The answer to one request and its metrics record (tests read the record).
pub async fn respond<S: Service>(
    state: &S,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> (ApiGatewayV2httpResponse, Metrics) {
    let started = Instant::now();
    let trips = state.store().round_trips();
    let (request, context) = event.into_parts();
    let origin = request
        .headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut metrics = Metrics::new("leadflow").dimension("function", S::NAME);
    let mut line = Line::default();
    let result = match InboundRequest::from_apigw(&request, crate::edge::MAX_BODY_BYTES) {
        Ok(mut req) => {
            req.deadline_ms = context.deadline;
            let found = router::find(S::ROUTES, &req.method, &req.path);
            if let Found::Route(_, params) | Found::WrongMethod(_, params) = &found {
                req.path_params.extend(params.iter().cloned());
            }
            if let Some((name, value)) = state.dimension(found.template(), &req) {
                metrics = metrics.dimension(name, value);
            }
            line.method = req.method.clone();
            line.route = found.template().map_or("(none)", |r| r.path);
            dispatch(state, found, &req, &mut metrics).await
        }
        Err(e) => Err(e),
    };
    let mut response = result.unwrap_or_else(|e| {
        metrics.count(format!("rejected_{}", e.code()), 1.0);
        let response = e.to_response();
        line.error = Some(e);
        response
    });
    if let Some(cors) = state.cors() {
        cors.decorate(&mut response, origin.as_deref());
    }
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    metrics.count(
        "dynamodb_round_trips",
        (state.store().round_trips() - trips) as f64,
    );
    metrics.millis("duration", millis);
    line.write(response.status_code, millis);
    (response.into_apigw(), metrics)
}

async fn dispatch<S: Service>(
    state: &S,
    found: Found<'_, S>,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    let route = match found {
        Found::Nothing => {
            return Err(AppError::not_found(
                "route_not_found",
                format!(
                    "no route for {} {}; routes: {}",
                    req.method,
                    req.path,
                    router::describe(S::ROUTES)
                ),
            ))
        }
        _ if req.method == "OPTIONS" && state.cors().is_some() => {
            return state.cors().map_or_else(
                || Err(AppError::MethodNotAllowed(req.method.clone())),
                |c| c.preflight(req),
            )
        }
        Found::WrongMethod(..) => return Err(AppError::MethodNotAllowed(req.method.clone())),
        Found::Route(route, _) => route,
    };
    match route.auth {
        Auth::Public => {}
        Auth::ApiKey(scope) => check_api_key(state, |k| k.check(req, scope)).await?,
        Auth::ApiKeyOrQuery(scope) => {
            check_api_key(state, |k| k.check_header_or_query(req, scope)).await?
        }
    }
    (route.handler)(state, req, metrics).await
}

/// An API key check against the function's keys in force (none configured: everyone refused).
async fn check_api_key<S: Service>(
    state: &S,
    check: impl Fn(&ApiKeys) -> Result<(), AppError>,
) -> Result<(), AppError> {
    match state.api_keys() {
        Some(keys) => keys.check_with(check).await,
        None => check(&auth::NO_KEYS),
    }
}

/// The one log line of a request: what was asked, what was answered, how long it took. An
/// answer the caller may retry (storage, upstream) is an error with its cause; other refusals
/// are info with the code and the field. Never the body, the query or a header value.
#[derive(Default)]
struct Line {
    method: String,
    route: &'static str,
    error: Option<AppError>,
}

impl Line {
    fn write(&self, status: u16, millis: f64) {
        let (method, route) = (self.method.as_str(), self.route);
        match &self.error {
            None => tracing::info!(method, route, status, millis, "request answered"),
            Some(e @ (AppError::Storage(_) | AppError::Upstream(_))) => tracing::error!(
                method, route, status, millis, code = e.code(), error = %e, "request failed"
            ),
            Some(e) => tracing::info!(
                method,
                route,
                status,
                millis,
                code = e.code(),
                field = e.field(),
                "request rejected"
            ),
        }
    }
}
