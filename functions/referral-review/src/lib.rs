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
use leadflow::edge::{self, Auth, InboundRequest, LiveApiKeys, Route, Scope, Service};
use leadflow::normalize::NormalizeConfig;
use leadflow::privacy::Pepper;
use leadflow::store::Store;

/// Everything the handler needs, built once per cold start.
pub struct AppState {
    pub store: Store,
    pub normalize: NormalizeConfig,
    /// `REFERRAL_API_KEYS`: comma-separated, several at once so a key can be rotated.
    pub api_keys: LiveApiKeys,
    /// `TRUSTPILOT_KEY`: the secret Trustpilot sends (URL parameter or basic auth password).
    pub trustpilot_key: Option<String>,
    /// `PRIVACY_PEPPER`: keys the referral keys derived from a referee's address.
    pub pepper: Pepper,
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
    /// API keys follow the rotating secret (`SECRETS_ID`) from now on, so a key added or
    /// removed there is in force without a redeploy ([`LiveApiKeys`]).
    pub fn rotating(mut self, secrets: Option<std::sync::Arc<leadflow::secrets::Secrets>>) -> Self {
        self.api_keys = self.api_keys.rotating(secrets);
        self
    }

    /// Reads the configuration from `get` (`main.rs`: the environment; tests: a map) (see docs/api.md, "Referrals and reviews").
    pub fn from_lookup(
        store: Store,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<AppState, String> {
        let pepper = Pepper::privacy(&get)?;
        Ok(AppState {
            store: store
                .with_pepper(pepper.clone())
                .with_report_zone(leadflow::report_zone::ReportZone::from_lookup(&get)?),
            normalize: NormalizeConfig::from_lookup(&get)?,
            api_keys: LiveApiKeys::from_lookup("REFERRAL_API_KEYS", &get),
            trustpilot_key: get("TRUSTPILOT_KEY")
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
            pepper,
        })
    }
}

impl Service for AppState {
    const NAME: &'static str = "referral-review";
    const ROUTES: &'static [Route<AppState>] = &[
        Route::post("/referrals", Auth::ApiKey(Scope::Write), |s, req, m| {
            Box::pin(referrals::post(s, req, m))
        }),
        Route::get(
            "/referrals/code",
            Auth::ApiKey(Scope::Write),
            |s, req, m| Box::pin(referrals::get_code(s, req, m)),
        ),
        Route::post("/reviews", Auth::ApiKey(Scope::Write), |s, req, m| {
            Box::pin(reviews::post(s, req, m))
        }),
        // Trustpilot authenticates with its own key (`trustpilot::check_auth`).
        Route::post("/reviews/trustpilot", Auth::Public, |s, req, m| {
            Box::pin(trustpilot::post(s, req, m))
        }),
    ];

    fn store(&self) -> &Store {
        &self.store
    }

    fn normalize(&self) -> &NormalizeConfig {
        &self.normalize
    }

    fn api_keys(&self) -> Option<&LiveApiKeys> {
        Some(&self.api_keys)
    }

    /// `route`: which of the four routes, `unknown` for any other path.
    fn dimension(
        &self,
        route: Option<&Route<AppState>>,
        _req: &InboundRequest,
    ) -> Option<(&'static str, &'static str)> {
        let name = match route.map(|r| r.path) {
            Some("/referrals") => "referrals",
            Some("/referrals/code") => "referral_code",
            Some("/reviews") => "reviews",
            Some("/reviews/trustpilot") => "trustpilot",
            _ => "unknown",
        };
        Some(("route", name))
    }
}

/// The Lambda handler: the shared edge over [`AppState::ROUTES`].
pub async fn handler(
    state: &AppState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
    edge::handle(state, event).await
}
