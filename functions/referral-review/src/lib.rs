//! referral-review: referrals from customers and reviews, linked to leads and credited.
//!
//! | route | what | auth |
//! |---|---|---|
//! | `POST /referrals` | the referee becomes (or merges into) a lead; the referrer is credited once | `x-api-key` |
//! | `GET /referrals/code?email=` / `?lead_id=` | the lead's stable referral code (created on first request) | `x-api-key` |
//! | `POST /reviews` | a review, linked to its lead when one matches; exact per-platform aggregates | `x-api-key` |
//! | `POST /reviews/trustpilot` | Trustpilot's service review webhook | `TRUSTPILOT_KEY` (`?key=` or basic auth) |
//!
//! The handler is a plain async function over [`AppState`] so tests call it directly; `main.rs`
//! only builds the state once and runs it.

pub mod input;
pub mod referrals;
pub mod reviews;
pub mod trustpilot;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::LambdaEvent;
use leadflow::auth::ApiKeys;
use leadflow::http::{InboundRequest, MAX_BODY_BYTES};
use leadflow::normalize::NormalizeConfig;
use leadflow::store::Store;
use leadflow::telemetry::Metrics;
use leadflow::AppError;

/// Everything the handler needs, built once per cold start.
pub struct AppState {
    pub store: Store,
    pub normalize: NormalizeConfig,
    /// `REFERRAL_API_KEYS`: comma-separated, several at once so a key can be rotated.
    pub api_keys: ApiKeys,
    /// `TRUSTPILOT_KEY`: the secret Trustpilot sends (URL parameter or basic auth password).
    pub trustpilot_key: Option<String>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("api_keys", &self.api_keys)
            .field(
                "trustpilot_key",
                &self.trustpilot_key.as_ref().map(|_| "***"),
            )
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Reads the configuration from the environment (see README, "Referrals and reviews").
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
            api_keys: ApiKeys::parse(get("REFERRAL_API_KEYS").as_deref()),
            trustpilot_key: get("TRUSTPILOT_KEY")
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Referrals,
    ReferralCode,
    Reviews,
    Trustpilot,
}

impl Route {
    /// By path suffix, so a custom domain's base path or a stage prefix does not matter.
    fn of(path: &str) -> Option<Route> {
        let p = path.trim_end_matches('/');
        if p.ends_with("/referrals/code") {
            Some(Route::ReferralCode)
        } else if p.ends_with("/referrals") {
            Some(Route::Referrals)
        } else if p.ends_with("/reviews/trustpilot") {
            Some(Route::Trustpilot)
        } else if p.ends_with("/reviews") {
            Some(Route::Reviews)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Referrals => "referrals",
            Route::ReferralCode => "referral_code",
            Route::Reviews => "reviews",
            Route::Trustpilot => "trustpilot",
        }
    }
}

/// The Lambda handler. Application errors become JSON answers here; only a failure to answer
/// at all is a Lambda error.
pub async fn handler(
    state: &AppState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    let (request, _context) = event.into_parts();
    let started = state.store.round_trips();
    let mut metrics = Metrics::new("leadflow").dimension("function", "referral-review");
    let response = match InboundRequest::from_apigw(&request, MAX_BODY_BYTES) {
        Ok(req) => {
            let route = Route::of(&req.path);
            metrics = metrics.dimension("route", route.map(Route::name).unwrap_or("unknown"));
            dispatch(state, &req, route, &mut metrics).await
        }
        Err(e) => Err(e),
    };
    let response = response.unwrap_or_else(|e| {
        match &e {
            AppError::Storage(_) | AppError::Upstream(_) => {
                tracing::error!(code = e.code(), error = %e, "request failed")
            }
            _ => tracing::info!(code = e.code(), field = e.field(), "request rejected"),
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

async fn dispatch(
    state: &AppState,
    req: &InboundRequest,
    route: Option<Route>,
    metrics: &mut Metrics,
) -> Result<ApiGatewayV2httpResponse, AppError> {
    let Some(route) = route else {
        return Err(AppError::not_found(
            "route_not_found",
            format!(
                "no route for {}; use /referrals, /referrals/code, /reviews or /reviews/trustpilot",
                req.path
            ),
        ));
    };
    let method = req.method.as_str();
    match (route, method) {
        (Route::Referrals, "POST") => {
            state.api_keys.check(req)?;
            referrals::post(state, req, metrics).await
        }
        (Route::ReferralCode, "GET") => {
            state.api_keys.check(req)?;
            referrals::get_code(state, req, metrics).await
        }
        (Route::Reviews, "POST") => {
            state.api_keys.check(req)?;
            reviews::post(state, req, metrics).await
        }
        (Route::Trustpilot, "POST") => {
            trustpilot::check_auth(state, req)?;
            trustpilot::post(state, req, metrics).await
        }
        _ => Err(AppError::MethodNotAllowed(req.method.clone())),
    }
}
