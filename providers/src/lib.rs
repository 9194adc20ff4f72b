//! The form and ad platforms posting to form-webhook's `/webhooks/{provider}`: one module per
//! platform, each declaring its [`Platform`] (a [`Provider`]: its name, its variables, its
//! signature check, its handshake, its parser, its lead fetch) in one line, and one list of them,
//! [`PROVIDERS`] (`platforms!` below). Adding a platform is a new module and a line in that list
//! (docs/architecture.md, "Adding a provider").
//!
//! Every delivery goes through the same steps, in this order ([`Providers::handle`]):
//! 1. the provider must be configured (its [`Provider::secret`] set), else 404
//!    `provider_not_configured`: nothing is ever accepted unverified;
//! 2. handshakes (`GET`: Meta's `hub.challenge`, LinkedIn's `challengeCode`) are answered at once;
//! 3. the signature or shared key is checked over the exact raw body (`req.body`), before
//!    anything is parsed: 401 `missing_signature` / `invalid_signature` / `stale_timestamp`;
//! 4. the body is parsed into [`Submission`]s, or, for platforms whose webhooks carry ids only
//!    (Meta, LinkedIn), into announced leads fetched one by one afterwards ([`batch`]). An
//!    authentic body that does not parse is [`ProviderOutcome::Quarantine`]d (kept for replay,
//!    answered 2xx), never an error.
//!
//! The crate is a library so the `leadflow` CLI replays quarantined deliveries through the same
//! parsers ([`replay()`]). Secrets come from the environment ([`ProvidersConfig`]); `Debug` never
//! prints them. Logs name the provider, ids and reasons, never personal data.

pub mod announced;
pub mod batch;
mod config;
mod error;
pub mod oauth;
mod parse;
pub mod platform_api;
mod provider;
mod registry;
mod replay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use leadflow::edge::{AppError, InboundRequest, Response};
use leadflow::ingest::IngestError;
use leadflow::model::{IngestOutcome, Submission};
use leadflow::normalize::NormalizeConfig;
use leadflow::secrets::Secrets;
use leadflow::store::Store;
use leadflow::telemetry::Metrics;

pub use config::{
    Kind, Need, ProvidersConfig, Secret, Variable, DEFAULT_API_CONCURRENCY, DEFAULT_API_TIMEOUT,
    PLATFORM_API_TIMEOUT_MS, SHARED_VARIABLES,
};
pub use error::ProviderError;
pub(crate) use parse::*;
pub use provider::{verify_query_key, Fetch, Handshake, Parse, Platform, Provider, Verify};
pub use registry::{dimension, find};
pub use replay::{replay, ReplayError, ReplayResult};

use self::platform_api::PlatformApi;

/// Declares each platform's module (`src/<name>.rs`, which declares its `PLATFORM`) and lists
/// it in [`PROVIDERS`], from one list of names.
macro_rules! platforms {
    ($($module:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// Every platform served under `/webhooks/{name}` (the web form, `form`, is
        /// form-webhook's own), in the order `leadflow providers` lists them.
        pub const PROVIDERS: &[&dyn Provider] = &[$(&$module::PLATFORM),+];
    };
}

// The registry: adding a platform is its module and its name here (docs/architecture.md).
platforms![
    typeform, facebook, google_ads, hubspot, linkedin, tally, webflow, calendly, unbounce, jotform,
];

/// One check of a delivery under `config`: the current secret, then the previous one.
fn verify_with(
    config: &ProvidersConfig,
    p: &dyn Provider,
    req: &InboundRequest,
    now: DateTime<Utc>,
) -> Result<(), ProviderError> {
    let secret = config.require(p.name(), p.secret())?;
    p.verify(secret, req, now)
        .or_else(|e| match config.previous_secret(p.secret()) {
            Some(previous) if p.verify(previous, req, now).is_ok() => Ok(()),
            _ => Err(ProviderError::Signature(e)),
        })
}

/// What to do with a platform delivery.
// One short-lived value per request; the handler takes the response out by value.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ProviderOutcome {
    /// Answer this right away, store nothing (handshakes: Meta hub.challenge, LinkedIn challengeCode).
    Respond(Response),
    /// Authentic deliveries to ingest (one POST may carry many: Meta batches, HubSpot arrays).
    Submissions(Vec<Submission>),
    /// Authentic but unparseable: the handler stores the raw body with this reason for replay
    /// and answers 2xx.
    Quarantine { reason: String },
    /// Authentic, nothing to store (an event type we don't ingest); answered 200.
    Ignored { reason: String },
    /// Leads announced by id (Meta, LinkedIn), each to fetch from the platform's API and store
    /// on its own, and leads the platform withdrew ([`batch`]).
    Announced {
        leads: Vec<announced::AnnouncedLead>,
        withdrawn: Vec<announced::WithdrawnLead>,
    },
}

/// The platform adapters with their configuration and API client, built once per cold start.
#[derive(Debug)]
pub struct Providers {
    /// The configuration in force; replaced when the secret rotates.
    config: RwLock<Arc<ProvidersConfig>>,
    rotation: Option<Rotation>,
    api: PlatformApi,
    /// Access tokens minted with a refresh token ([`oauth`]).
    tokens: oauth::Tokens,
}

/// Where rotated secrets come from: the secret, and the configuration it is laid over (read at
/// cold start), with the generation of the values in force.
#[derive(Debug)]
struct Rotation {
    secrets: Arc<Secrets>,
    base: ProvidersConfig,
    generation: AtomicU64,
}

impl Providers {
    pub fn new(config: ProvidersConfig) -> Providers {
        let api = PlatformApi::new(config.api_timeout);
        Providers {
            config: RwLock::new(Arc::new(config)),
            rotation: None,
            api,
            tokens: oauth::Tokens::default(),
        }
    }

    /// Secrets that rotate: the configuration follows `secrets` (refreshed on its schedule,
    /// and at once after a signature failure); the previous value of each secret stays
    /// accepted during a rotation. `None` keeps the configuration as built.
    pub fn rotating(mut self, secrets: Option<Arc<Secrets>>) -> Providers {
        self.rotation = secrets.map(|secrets| Rotation {
            secrets,
            base: self.config().as_ref().clone(),
            generation: AtomicU64::new(0),
        });
        self
    }

    /// The secret's values, refreshed when stale (no request otherwise), laid over the
    /// configuration when they changed. `forced`: after a signature failure (rate limited by
    /// [`Secrets::refresh_now`]). True when the configuration changed.
    async fn follow_secrets(&self, forced: bool) -> bool {
        let Some(rotation) = &self.rotation else {
            return false;
        };
        let snapshot = if forced {
            rotation.secrets.refresh_now().await
        } else {
            rotation.secrets.snapshot().await
        };
        if rotation
            .generation
            .swap(snapshot.generation, Ordering::Relaxed)
            == snapshot.generation
        {
            return false;
        }
        let next = Arc::new(rotation.base.overlay(&snapshot));
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = next;
        true
    }

    /// True for the provider names this crate handles (everything but "form").
    pub fn knows(name: &str) -> bool {
        find(name).is_some()
    }

    /// The configuration in force (a rotation replaces it; holders keep the one they took).
    pub fn config(&self) -> Arc<ProvidersConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The access tokens this process minted ([`Providers::access_token`]).
    pub fn tokens(&self) -> &oauth::Tokens {
        &self.tokens
    }

    /// The secret the configuration follows, when it rotates (minted tokens are written there).
    fn rotating_secret(&self) -> Option<&Arc<Secrets>> {
        self.rotation.as_ref().map(|r| &r.secrets)
    }

    /// Takes the secret's values in force now (after this process wrote to it).
    async fn follow_rotation(&self) {
        self.follow_secrets(false).await;
    }

    /// The platform API client (for [`Provider::fetch`]).
    pub fn api(&self) -> &PlatformApi {
        &self.api
    }

    /// Answers a handshake, or verifies and parses a delivery: the HTTP entry point, so its
    /// refusals are answers ([`ProviderError`] converted once, here).
    pub async fn handle(
        &self,
        provider: &str,
        req: &InboundRequest,
        now: DateTime<Utc>,
    ) -> Result<ProviderOutcome, AppError> {
        let p = find(provider).ok_or_else(|| ProviderError::Unknown(provider.to_string()))?;
        self.follow_secrets(false).await;
        match req.method.as_str() {
            "GET" => Ok(ProviderOutcome::Respond(p.handshake(&self.config(), req)?)),
            "POST" => {
                self.verify(provider, req, now).await?;
                Ok(self.parse_authenticated(provider, req, now).await?)
            }
            other => {
                self.config().require(p.name(), p.secret())?;
                Err(ProviderError::MethodNotAllowed(other.to_string()).into())
            }
        }
    }

    /// Checks a delivery's signature or shared key over the raw body: not configured (404),
    /// or not authentic (401). The current secret, else its previous value during a rotation;
    /// when both fail and the secret is rotating, it is read again at once (rate limited) and
    /// the delivery checked once more, so a secret rotated at the platform works without
    /// waiting for the next refresh.
    pub async fn verify(
        &self,
        provider: &str,
        req: &InboundRequest,
        now: DateTime<Utc>,
    ) -> Result<(), ProviderError> {
        let p = find(provider).ok_or_else(|| ProviderError::Unknown(provider.to_string()))?;
        let mut checked = verify_with(&self.config(), p, req, now);
        if matches!(checked, Err(ProviderError::Signature(_))) && self.follow_secrets(true).await {
            checked = verify_with(&self.config(), p, req, now);
        }
        checked.inspect_err(|e| {
            if let ProviderError::Signature(e) = e {
                tracing::info!(provider, reason = %e, "delivery not authentic");
            }
        })
    }

    /// Parses a delivery already known to be authentic: after [`Providers::verify`], or when
    /// replaying a quarantined delivery (authenticated when it was received; timestamped
    /// signatures would be stale by now). Leads announced by id are fetched later
    /// ([`Providers::fetch_lead`]).
    pub async fn parse_authenticated(
        &self,
        provider: &str,
        req: &InboundRequest,
        _now: DateTime<Utc>,
    ) -> Result<ProviderOutcome, ProviderError> {
        let p = find(provider).ok_or_else(|| ProviderError::Unknown(provider.to_string()))?;
        let outcome = p.parse(req).await;
        match &outcome {
            ProviderOutcome::Submissions(subs) => {
                tracing::info!(provider, submissions = subs.len(), "delivery parsed")
            }
            ProviderOutcome::Quarantine { reason } => {
                tracing::warn!(provider, reason, "authentic delivery did not parse")
            }
            ProviderOutcome::Ignored { reason } => {
                tracing::info!(provider, reason, "authentic delivery has nothing to store")
            }
            ProviderOutcome::Announced { leads, withdrawn } => tracing::info!(
                provider,
                announced = leads.len(),
                withdrawn = withdrawn.len(),
                "delivery parsed"
            ),
            ProviderOutcome::Respond(_) => {}
        }
        Ok(outcome)
    }

    /// Fetches one announced lead from its platform's API (one request, bounded by the API
    /// timeout), sorting a refusal into [`announced::FetchError`].
    pub async fn fetch_lead(
        &self,
        lead: &announced::AnnouncedLead,
        received_at: DateTime<Utc>,
    ) -> Result<Submission, announced::FetchError> {
        match find(lead.provider) {
            Some(p) => p.fetch(self, lead, received_at).await,
            None => Err(announced::FetchError::Rejected {
                status: 0,
                code: None,
            }),
        }
    }
}

/// What storing a delivery needs: the store, the normalization settings and the adapters
/// (form-webhook's state lends them; the CLI builds its own to replay).
#[derive(Clone, Copy)]
pub struct Intake<'a> {
    pub store: &'a Store,
    pub normalize: &'a NormalizeConfig,
    pub providers: &'a Providers,
}

impl Intake<'_> {
    /// Normalizes and stores one submission (`leadflow::ingest`), counted in `metrics`.
    pub async fn ingest(
        &self,
        sub: Submission,
        received_at: DateTime<Utc>,
        metrics: &mut Metrics,
    ) -> Result<IngestOutcome, IngestError> {
        leadflow::ingest::ingest_one(self.store, self.normalize, sub, received_at, metrics).await
    }
}

#[cfg(test)]
mod sample_events;
#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn providers(vars: &[(&str, &str)]) -> Providers {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Providers::new(ProvidersConfig::from_lookup(|k| map.get(k).cloned()))
    }

    fn post(body: &str) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/webhooks/x".into(),
            body: body.as_bytes().to_vec(),
            received_at: Utc::now(),
            ..Default::default()
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let p = providers(&[
            ("TYPEFORM_SECRET", "tf-super-secret"),
            ("FACEBOOK_ACCESS_TOKEN", "EAAB-token"),
            ("GOOGLE_ADS_KEY", "gkey-123"),
        ]);
        let shown = format!("{:?}", p);
        assert!(!shown.contains("tf-super-secret"));
        assert!(!shown.contains("EAAB-token"));
        assert!(!shown.contains("gkey-123"));
        assert!(shown.contains("<set>"));
        assert!(shown.contains("<unset>"));
    }

    #[test]
    fn config_defaults_and_blank_values() {
        let p = providers(&[
            ("TALLY_SECRET", "   "),
            ("GRAPH_API_URL", "http://127.0.0.1:9/v19.0/"),
            ("PLATFORM_API_TIMEOUT_MS", "250"),
        ]);
        let c = p.config();
        assert_eq!(c.secret(&tally::SECRET), None);
        assert_eq!(
            c.setting(&facebook::GRAPH_API_URL),
            "http://127.0.0.1:9/v19.0"
        );
        assert_eq!(
            c.setting(&linkedin::API_URL),
            linkedin::DEFAULT_LINKEDIN_API_URL
        );
        assert_eq!(c.api_timeout, Duration::from_millis(250));
    }

    #[test]
    fn knows_every_platform_but_form() {
        for p in PROVIDERS {
            assert!(Providers::knows(p.name()));
        }
        assert!(!Providers::knows("form"));
        assert!(!Providers::knows("trustpilot"));
    }

    #[tokio::test]
    async fn unconfigured_provider_is_404_for_every_method() {
        let p = providers(&[]);
        for provider in PROVIDERS.iter().map(|p| p.name()) {
            for method in ["POST", "GET", "PUT"] {
                let mut req = post("{}");
                req.method = method.into();
                let err = p.handle(provider, &req, Utc::now()).await.unwrap_err();
                assert_eq!(err.code(), "provider_not_configured", "{provider} {method}");
                assert_eq!(err.status(), 404);
            }
        }
    }

    #[tokio::test]
    async fn configured_provider_refuses_other_methods() {
        let p = providers(&[("TALLY_SECRET", "t")]);
        let mut req = post("{}");
        req.method = "PUT".into();
        let err = p.handle("tally", &req, Utc::now()).await.unwrap_err();
        assert_eq!(err.status(), 405);
        req.method = "GET".into();
        let err = p.handle("tally", &req, Utc::now()).await.unwrap_err();
        assert_eq!(err.status(), 405);
    }

    #[tokio::test]
    async fn unknown_provider_is_404() {
        let p = providers(&[]);
        let err = p
            .handle("myspace", &post("{}"), Utc::now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unknown_provider");
        let err = p
            .parse_authenticated("myspace", &post("{}"), Utc::now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unknown_provider");
    }

    #[tokio::test]
    async fn signature_is_checked_before_parsing() {
        // Garbage that would be quarantined if it were authentic is a 401 when it is not.
        let p = providers(&[("TALLY_SECRET", "t")]);
        let mut req = post("not json");
        req.headers.insert("tally-signature".into(), "AAAA".into());
        let err = p.handle("tally", &req, Utc::now()).await.unwrap_err();
        assert_eq!(err.code(), "invalid_signature");
    }
}
