//! lead-api: the HTTP API sales and marketing use (API key in `x-api-key`, keys from
//! `LEAD_API_KEYS`). Routes:
//!
//! | route | what |
//! |---|---|
//! | `GET /leads/{id}` | a lead with a page of touchpoints (`limit`, `cursor`), score, stage, referrals, reviews |
//! | `GET /leads?email=` / `?phone=` | the same, found by identity |
//! | `GET /leads/export` | the leads as CSV, a page per request (`export`) |
//! | `POST /leads/{id}/events` | sales events: contacted, sql, won, lost, unsubscribe |
//! | `DELETE /leads/{id}` | GDPR erasure |
//! | `POST /spend` | ad spend per day x source x campaign (a repost replaces) |
//! | `GET /metrics` | rollups grouped by day, source, channel or campaign |
//! | `GET /reviews/aggregates` | per-platform review count, average and 1-5 distribution |
//! | `GET /dashboard` | one self-contained HTML page: range, filters, trends, call list, campaigns, reviews (the key may be given as `?key=`) |

pub mod dashboard;
pub mod export;
pub mod leads;
pub mod reports;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::LambdaEvent;
use leadflow::edge::{self, Auth, LiveApiKeys, Route, Scope, Service};
use leadflow::normalize::NormalizeConfig;
use leadflow::store::Store;

pub struct ApiState {
    pub store: Store,
    pub keys: LiveApiKeys,
    pub normalize: NormalizeConfig,
    /// Items of a lead's partition one `DELETE /leads/{id}` call erases at most
    /// (`ERASURE_ITEMS_PER_CALL`, default 1000: well inside the function's timeout).
    pub erasure_items_per_call: usize,
}

impl ApiState {
    /// API keys follow the rotating secret (`SECRETS_ID`) from now on, so a key added or
    /// removed there is in force without a redeploy ([`LiveApiKeys`]).
    pub fn rotating(mut self, secrets: Option<std::sync::Arc<leadflow::secrets::Secrets>>) -> Self {
        self.keys = self.keys.rotating(secrets);
        self
    }

    pub fn from_lookup(
        store: Store,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiState, String> {
        Ok(ApiState {
            store: store
                .with_pepper(leadflow::privacy::Pepper::privacy(&get)?)
                .with_report_zone(leadflow::report_zone::ReportZone::from_lookup(&get)?),
            keys: LiveApiKeys::from_lookup("LEAD_API_KEYS", &get),
            normalize: NormalizeConfig::from_lookup(&get)?,
            erasure_items_per_call: match get("ERASURE_ITEMS_PER_CALL") {
                None => 1000,
                Some(v) => v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("ERASURE_ITEMS_PER_CALL must be a positive number")?,
            },
        })
    }
}

impl Service for ApiState {
    const NAME: &'static str = "lead-api";
    const ROUTES: &'static [Route<ApiState>] = &[
        Route::get("/leads", Auth::ApiKey(Scope::Read), |s, req, _| {
            Box::pin(leads::find(s, req))
        }),
        // A literal segment wins over `{id}` (router.rs): `export` is never taken for an id.
        Route::get("/leads/export", Auth::ApiKey(Scope::Read), |s, req, m| {
            Box::pin(export::get(s, req, m))
        }),
        Route::get("/leads/{id}", Auth::ApiKey(Scope::Read), |s, req, _| {
            Box::pin(leads::get(s, req.param("id"), req))
        }),
        Route::delete("/leads/{id}", Auth::ApiKey(Scope::Erase), |s, req, _| {
            Box::pin(leads::erase(s, req.param("id")))
        }),
        // Progress, then the receipt, of an erasure (no personal data).
        Route::get(
            "/leads/{id}/erasure",
            Auth::ApiKey(Scope::Read),
            |s, req, _| Box::pin(leads::erasure(s, req.param("id"))),
        ),
        Route::post(
            "/leads/{id}/events",
            Auth::ApiKey(Scope::Write),
            |s, req, _| Box::pin(leads::event(s, req.param("id"), req)),
        ),
        Route::post("/spend", Auth::ApiKey(Scope::Write), |s, req, _| {
            Box::pin(reports::post_spend(s, req))
        }),
        Route::get(
            "/reviews/aggregates",
            Auth::ApiKey(Scope::Read),
            |s, req, _| Box::pin(reports::get_review_aggregates(s, req)),
        ),
        Route::get("/metrics", Auth::ApiKey(Scope::Read), |s, req, _| {
            Box::pin(reports::get_metrics(s, req))
        }),
        // The dashboard is opened in a browser, which cannot send headers: it also takes ?key=.
        Route::get(
            "/dashboard",
            Auth::ApiKeyOrQuery(Scope::Dashboard),
            |s, req, _| Box::pin(dashboard::get(s, req)),
        ),
    ];

    fn store(&self) -> &Store {
        &self.store
    }

    fn normalize(&self) -> &NormalizeConfig {
        &self.normalize
    }

    fn api_keys(&self) -> Option<&LiveApiKeys> {
        Some(&self.keys)
    }
}

/// The Lambda handler: the shared edge over [`ApiState::ROUTES`].
pub async fn handler(
    state: &ApiState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    edge::handle(state, event).await
}
