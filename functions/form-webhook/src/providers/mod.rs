//! Form and ad platforms posting to `/webhooks/{provider}`: one file per platform, each with
//! the platform's own authenticity check and its own delivery id as the idempotency key.
//!
//! Every delivery goes through the same steps, in this order:
//! 1. the provider must be configured (its secret set), else 404 `provider_not_configured`:
//!    nothing is ever accepted unverified;
//! 2. handshakes (`GET`: Meta's `hub.challenge`, LinkedIn's `challengeCode`) are answered at once;
//! 3. the signature or shared key is checked over the exact raw body (`req.body`), before
//!    anything is parsed: 401 `missing_signature` / `invalid_signature` / `stale_timestamp`;
//! 4. the body is parsed into [`Submission`]s, or, for platforms whose webhooks carry ids only
//!    (Meta, LinkedIn), into announced leads fetched one by one afterwards ([`announced`]). An
//!    authentic body that does not parse is [`ProviderOutcome::Quarantine`]d (kept for replay,
//!    answered 2xx), never an error.
//!
//! Secrets come from the environment ([`ProvidersConfig`]); `Debug` never prints them. Logs
//! name the provider, ids and reasons, never personal data.

pub mod announced;
pub mod calendly;
pub mod facebook;
pub mod google_ads;
pub mod hubspot;
pub mod jotform;
pub mod linkedin;
pub mod platform_api;
pub mod tally;
pub mod typeform;
pub mod unbounce;
pub mod webflow;

use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use leadflow::fields::{normalize_field_name, MAX_CUSTOM_FIELDS, MAX_FIELD_CHARS};
use leadflow::http::InboundRequest;
use leadflow::model::{DeliveryKey, Submission};
use leadflow::AppError;
use serde_json::Value;

use self::platform_api::PlatformApi;

/// The provider names (path segments) this module handles: every provider but `form`.
pub const PROVIDER_NAMES: [&str; 10] = [
    "typeform",
    "facebook",
    "google-ads",
    "hubspot",
    "linkedin",
    "tally",
    "webflow",
    "calendly",
    "unbounce",
    "jotform",
];

pub const DEFAULT_GRAPH_API_URL: &str = "https://graph.facebook.com/v21.0";
pub const DEFAULT_LINKEDIN_API_URL: &str = "https://api.linkedin.com/rest";
/// LinkedIn's versioned APIs take a `LinkedIn-Version: YYYYMM` header; each version is served
/// for about a year, so `LINKEDIN_API_VERSION` must be moved forward from time to time.
pub const DEFAULT_LINKEDIN_API_VERSION: &str = "202601";
/// Per-request timeout for platform API calls (`PLATFORM_API_TIMEOUT_MS`): Meta waits about
/// 20 s for our answer, LinkedIn 3 s for the challenge only.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(5);
/// Platform API calls of one batched delivery in flight at once.
pub const DEFAULT_API_CONCURRENCY: usize = 8;

/// A configured secret. Empty or blank means "not configured". `Debug` says only whether it is
/// set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Option<String>);

impl Secret {
    pub fn new(value: Option<String>) -> Secret {
        Secret(
            value
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        )
    }

    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "<set>" } else { "<unset>" })
    }
}

/// Secrets and endpoints of every platform, from environment variables named after it.
#[derive(Clone, Debug)]
pub struct ProvidersConfig {
    pub typeform_secret: Secret,
    pub facebook_app_secret: Secret,
    pub facebook_verify_token: Secret,
    pub facebook_access_token: Secret,
    pub graph_api_url: String,
    pub google_ads_key: Secret,
    pub hubspot_client_secret: Secret,
    pub linkedin_client_secret: Secret,
    pub linkedin_access_token: Secret,
    pub linkedin_api_url: String,
    pub linkedin_api_version: String,
    pub tally_secret: Secret,
    pub webflow_secret: Secret,
    pub calendly_signing_key: Secret,
    pub unbounce_key: Secret,
    pub jotform_key: Secret,
    pub api_timeout: Duration,
    pub api_concurrency: usize,
}

impl ProvidersConfig {
    pub fn from_env() -> ProvidersConfig {
        ProvidersConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// The same from any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProvidersConfig {
        let secret = |k: &str| Secret::new(get(k));
        let text = |k: &str, default: &str| {
            get(k)
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let api_timeout = get("PLATFORM_API_TIMEOUT_MS")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_API_TIMEOUT);
        ProvidersConfig {
            typeform_secret: secret("TYPEFORM_SECRET"),
            facebook_app_secret: secret("FACEBOOK_APP_SECRET"),
            facebook_verify_token: secret("FACEBOOK_VERIFY_TOKEN"),
            facebook_access_token: secret("FACEBOOK_ACCESS_TOKEN"),
            graph_api_url: text("GRAPH_API_URL", DEFAULT_GRAPH_API_URL),
            google_ads_key: secret("GOOGLE_ADS_KEY"),
            hubspot_client_secret: secret("HUBSPOT_CLIENT_SECRET"),
            linkedin_client_secret: secret("LINKEDIN_CLIENT_SECRET"),
            linkedin_access_token: secret("LINKEDIN_ACCESS_TOKEN"),
            linkedin_api_url: text("LINKEDIN_API_URL", DEFAULT_LINKEDIN_API_URL),
            linkedin_api_version: text("LINKEDIN_API_VERSION", DEFAULT_LINKEDIN_API_VERSION),
            tally_secret: secret("TALLY_SECRET"),
            webflow_secret: secret("WEBFLOW_SECRET"),
            calendly_signing_key: secret("CALENDLY_SIGNING_KEY"),
            unbounce_key: secret("UNBOUNCE_KEY"),
            jotform_key: secret("JOTFORM_KEY"),
            api_timeout,
            api_concurrency: DEFAULT_API_CONCURRENCY,
        }
    }

    /// The secret that authenticates deliveries of `provider`, when set.
    fn delivery_secret(&self, provider: &str) -> Option<&str> {
        match provider {
            "typeform" => self.typeform_secret.get(),
            "facebook" => self.facebook_app_secret.get(),
            "google-ads" => self.google_ads_key.get(),
            "hubspot" => self.hubspot_client_secret.get(),
            "linkedin" => self.linkedin_client_secret.get(),
            "tally" => self.tally_secret.get(),
            "webflow" => self.webflow_secret.get(),
            "calendly" => self.calendly_signing_key.get(),
            "unbounce" => self.unbounce_key.get(),
            "jotform" => self.jotform_key.get(),
            _ => None,
        }
    }
}

/// What to do with a platform delivery.
// One short-lived value per request; the handler takes the response out by value.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ProviderOutcome {
    /// Answer this right away, store nothing (handshakes: Meta hub.challenge, LinkedIn challengeCode).
    Respond(ApiGatewayV2httpResponse),
    /// Authentic deliveries to ingest (one POST may carry many: Meta batches, HubSpot arrays).
    Submissions(Vec<Submission>),
    /// Authentic but unparseable: the handler stores the raw body with this reason for replay
    /// and answers 2xx.
    Quarantine { reason: String },
    /// Authentic, nothing to store (an event type we don't ingest); answered 200.
    Ignored { reason: String },
    /// Leads announced by id (Meta, LinkedIn), each to fetch from the platform's API and store
    /// on its own, and leads the platform withdrew (`lib.rs`, `batch`).
    Announced {
        leads: Vec<announced::AnnouncedLead>,
        withdrawn: Vec<announced::WithdrawnLead>,
    },
}

/// The platform adapters, built once per cold start.
#[derive(Debug)]
pub struct Providers {
    config: ProvidersConfig,
    api: PlatformApi,
}

impl Providers {
    pub fn new(config: ProvidersConfig) -> Providers {
        let api = PlatformApi::new(config.api_timeout);
        Providers { config, api }
    }

    /// True for the provider names this module handles (everything but "form").
    pub fn knows(name: &str) -> bool {
        PROVIDER_NAMES.contains(&name)
    }

    pub fn config(&self) -> &ProvidersConfig {
        &self.config
    }

    /// Answers a handshake, or verifies and parses a delivery.
    pub async fn handle(
        &self,
        provider: &str,
        req: &InboundRequest,
        now: DateTime<Utc>,
    ) -> Result<ProviderOutcome, AppError> {
        if !Providers::knows(provider) {
            return Err(unknown_provider(provider));
        }
        match req.method.as_str() {
            "GET" => self.handshake(provider, req),
            "POST" => {
                self.verify(provider, req, now)?;
                self.parse_authenticated(provider, req, now).await
            }
            other => {
                self.require_secret(provider)?;
                Err(AppError::MethodNotAllowed(other.to_string()))
            }
        }
    }

    /// Checks a delivery's signature or shared key over the raw body. 404 when the provider is
    /// not configured; 401 when the delivery is not authentic.
    pub fn verify(
        &self,
        provider: &str,
        req: &InboundRequest,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let secret = self.require_secret(provider)?;
        let result = match provider {
            "typeform" => typeform::verify(secret, req),
            "facebook" => facebook::verify(secret, req),
            "google-ads" => google_ads::verify(secret, req),
            "hubspot" => hubspot::verify(secret, req, now),
            "linkedin" => linkedin::verify(secret, req),
            "tally" => tally::verify(secret, req),
            "webflow" => webflow::verify(secret, req, now),
            "calendly" => calendly::verify(secret, req, now),
            "unbounce" => unbounce::verify(secret, req),
            "jotform" => jotform::verify(secret, req),
            _ => return Err(unknown_provider(provider)),
        };
        result.map_err(|e| {
            tracing::info!(provider, reason = %e, "delivery not authentic");
            AppError::from(e)
        })
    }

    /// Parses a delivery already known to be authentic: after [`Providers::verify`], or when
    /// replaying a quarantined delivery (authenticated when it was received; timestamped
    /// signatures would be stale by now). Facebook and LinkedIn fetch the lead data here.
    pub async fn parse_authenticated(
        &self,
        provider: &str,
        req: &InboundRequest,
        _now: DateTime<Utc>,
    ) -> Result<ProviderOutcome, AppError> {
        let outcome = match provider {
            "typeform" => typeform::parse(req),
            "facebook" => facebook::parse(req),
            "google-ads" => google_ads::parse(req),
            "hubspot" => hubspot::parse(req),
            "linkedin" => linkedin::parse(req),
            "tally" => tally::parse(req),
            "webflow" => webflow::parse(req),
            "calendly" => calendly::parse(req),
            "unbounce" => unbounce::parse(req),
            "jotform" => jotform::parse(req).await,
            _ => return Err(unknown_provider(provider)),
        };
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
        match &lead.source {
            announced::Source::Meta(a) => {
                facebook::fetch(&self.config, &self.api, a, received_at).await
            }
            announced::Source::LinkedIn(a) => {
                linkedin::fetch(&self.config, &self.api, a, received_at).await
            }
        }
    }

    fn handshake(&self, provider: &str, req: &InboundRequest) -> Result<ProviderOutcome, AppError> {
        match provider {
            "facebook" => {
                let token = self
                    .config
                    .facebook_verify_token
                    .get()
                    .ok_or_else(|| not_configured(provider))?;
                facebook::handshake(token, req)
            }
            "linkedin" => {
                let secret = self
                    .config
                    .linkedin_client_secret
                    .get()
                    .ok_or_else(|| not_configured(provider))?;
                linkedin::handshake(secret, req)
            }
            _ => {
                self.require_secret(provider)?;
                Err(AppError::MethodNotAllowed("GET".to_string()))
            }
        }
    }

    fn require_secret(&self, provider: &str) -> Result<&str, AppError> {
        self.config
            .delivery_secret(provider)
            .ok_or_else(|| not_configured(provider))
    }
}

pub(crate) fn not_configured(provider: &str) -> AppError {
    AppError::not_found(
        "provider_not_configured",
        format!("webhook provider {provider:?} is not configured"),
    )
}

fn unknown_provider(provider: &str) -> AppError {
    AppError::not_found(
        "unknown_provider",
        format!("no webhook provider named {provider:?}"),
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the adapters.

pub(crate) fn quarantine(reason: impl Into<String>) -> ProviderOutcome {
    ProviderOutcome::Quarantine {
        reason: reason.into(),
    }
}

pub(crate) fn ignored(reason: impl Into<String>) -> ProviderOutcome {
    ProviderOutcome::Ignored {
        reason: reason.into(),
    }
}

/// A serde_json error described by kind and position only: its `Display` can quote the input,
/// and the input is personal data that must not reach logs or quarantine reasons.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// The body as a JSON value, or a quarantine reason.
pub(crate) fn parse_json(body: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice::<Value>(body).map_err(|e| format!("{what}: {}", json_error(&e)))
}

/// An id sent as a JSON string or integer, as a string. Floats are refused: ids above 2^53 would
/// have lost digits (serde_json keeps every integer up to `u64::MAX` exact).
pub(crate) fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .or_else(|| n.as_i64().map(|i| i.to_string())),
        _ => None,
    }
}

/// `serde(deserialize_with)` form of [`id_string`]: a string or integer id, never through f64.
pub(crate) fn de_opt_id<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    d.deserialize_any(IdVisitor)
}

struct IdVisitor;

impl<'de> serde::de::Visitor<'de> for IdVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an id as a string or an integer")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.trim().to_string()).filter(|s| !s.is_empty()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, _v: f64) -> Result<Self::Value, E> {
        Err(E::custom("an id must not be a floating-point number"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

/// A scalar answer as text: strings as sent, numbers in full, booleans as `yes`/`no`, arrays of
/// scalars joined with `, `. Objects and empty values give `None`.
pub(crate) fn value_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_array() && !i.is_object())
            .filter_map(value_text)
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null | Value::Object(_) => String::new(),
    };
    Some(text).filter(|s| !s.is_empty())
}

/// `obj[key]` as a trimmed, non-empty string.
pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Adds a custom answer under a normalized key, within the limits web forms have.
pub(crate) fn set_custom(sub: &mut Submission, key: &str, value: &str) {
    let key = normalize_field_name(key);
    let value = value.trim();
    if key.is_empty() || value.is_empty() || sub.custom.len() >= MAX_CUSTOM_FIELDS {
        return;
    }
    sub.custom
        .entry(key)
        .or_insert_with(|| value.chars().take(MAX_FIELD_CHARS).collect());
}

/// `slot` gets `value` unless it already has one.
pub(crate) fn fill(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none() {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            *slot = Some(v.chars().take(MAX_FIELD_CHARS).collect());
        }
    }
}

/// A platform timestamp: RFC 3339 (`2024-05-01T10:00:00Z`, `...+02:00`), Meta's
/// `2015-11-12T15:27:06+0000`, or a naive `2024-05-01 10:00:00` taken as UTC.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// Epoch seconds or milliseconds (told apart by size: 1e11 s is the year 5138).
pub(crate) fn epoch_time(n: i64) -> Option<DateTime<Utc>> {
    if n <= 0 {
        return None;
    }
    if n >= 100_000_000_000 {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

/// A timestamp given as a JSON string (any format [`parse_time`] reads, or digits) or number.
pub(crate) fn time_value(v: Option<&Value>) -> Option<DateTime<Utc>> {
    match v? {
        Value::String(s) => {
            parse_time(s).or_else(|| s.trim().parse::<i64>().ok().and_then(epoch_time))
        }
        Value::Number(n) => n.as_i64().and_then(epoch_time),
        _ => None,
    }
}

/// Hex SHA-256 of the provider name and raw body (the store's body-hash key, reused as a
/// platform key where a platform sends no id of its own).
pub(crate) fn body_hash(provider: &str, body: &[u8]) -> String {
    DeliveryKey::body_hash(provider, body).as_str().to_string()
}

#[cfg(test)]
mod sample_events;
#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow::model::TouchKind;
    use std::collections::HashMap;

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
        assert_eq!(c.tally_secret.get(), None);
        assert_eq!(c.graph_api_url, "http://127.0.0.1:9/v19.0");
        assert_eq!(c.linkedin_api_url, DEFAULT_LINKEDIN_API_URL);
        assert_eq!(c.api_timeout, Duration::from_millis(250));
    }

    #[test]
    fn knows_every_platform_but_form() {
        for name in PROVIDER_NAMES {
            assert!(Providers::knows(name));
        }
        assert!(!Providers::knows("form"));
        assert!(!Providers::knows("trustpilot"));
    }

    #[tokio::test]
    async fn unconfigured_provider_is_404_for_every_method() {
        let p = providers(&[]);
        for provider in PROVIDER_NAMES {
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

    #[test]
    fn ids_as_strings_or_integers_never_floats() {
        let v: Value = serde_json::from_str(
            r#"{"big": 18446744073709551615, "over53": 9007199254740993, "s": " 42 ", "neg": -5, "f": 1.5, "e": 1e3}"#,
        )
        .unwrap();
        assert_eq!(
            id_string(&v["big"]).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(id_string(&v["over53"]).as_deref(), Some("9007199254740993"));
        assert_eq!(id_string(&v["s"]).as_deref(), Some("42"));
        assert_eq!(id_string(&v["neg"]).as_deref(), Some("-5"));
        assert_eq!(id_string(&v["f"]), None);
        assert_eq!(id_string(&v["e"]), None);

        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "de_opt_id")]
            id: Option<String>,
        }
        let t: T = serde_json::from_str(r#"{"id": 1234567890123456789}"#).unwrap();
        assert_eq!(t.id.as_deref(), Some("1234567890123456789"));
        let t: T = serde_json::from_str(r#"{"id": "1234567890123456789"}"#).unwrap();
        assert_eq!(t.id.as_deref(), Some("1234567890123456789"));
        let t: T = serde_json::from_str(r#"{"id": null}"#).unwrap();
        assert_eq!(t.id, None);
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.id, None);
        assert!(serde_json::from_str::<T>(r#"{"id": 1.0}"#).is_err());
    }

    #[test]
    fn json_errors_never_quote_the_input() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        let e = serde_json::from_str::<T>(r#"{"n": "ada@example.com"}"#).unwrap_err();
        let msg = json_error(&e);
        assert!(!msg.contains("ada@example.com"), "{msg}");
        assert!(msg.contains("line 1"));
    }

    #[test]
    fn times_in_platform_formats() {
        let want = Utc.with_ymd_and_hms(2015, 11, 12, 15, 27, 6).unwrap();
        assert_eq!(parse_time("2015-11-12T15:27:06+0000"), Some(want));
        assert_eq!(parse_time("2015-11-12T15:27:06Z"), Some(want));
        assert_eq!(parse_time("2015-11-12T16:27:06+01:00"), Some(want));
        assert_eq!(parse_time("2015-11-12 15:27:06"), Some(want));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(epoch_time(1447342026), Some(want));
        assert_eq!(epoch_time(1447342026000), Some(want));
        assert_eq!(epoch_time(0), None);
        assert_eq!(time_value(Some(&Value::from("1447342026000"))), Some(want));
    }

    #[test]
    fn custom_answers_are_bounded() {
        let mut sub = Submission::new(
            "tally",
            DeliveryKey::Platform("x".into()),
            TouchKind::FormSubmission,
            Utc::now(),
        );
        for i in 0..(MAX_CUSTOM_FIELDS + 10) {
            set_custom(&mut sub, &format!("Question {i}"), "answer");
        }
        assert_eq!(sub.custom.len(), MAX_CUSTOM_FIELDS);
        set_custom(&mut sub, "Question 0", "second value is ignored");
        assert_eq!(sub.custom["question_0"], "answer");
    }

    #[test]
    fn value_text_renders_scalars() {
        assert_eq!(value_text(&Value::from(" x ")).as_deref(), Some("x"));
        assert_eq!(value_text(&Value::from(12)).as_deref(), Some("12"));
        assert_eq!(value_text(&Value::from(true)).as_deref(), Some("yes"));
        assert_eq!(
            value_text(&serde_json::json!(["a", 1, {"x": 1}, ""])).as_deref(),
            Some("a, 1")
        );
        assert_eq!(value_text(&serde_json::json!({"a": 1})), None);
        assert_eq!(value_text(&Value::Null), None);
    }
}
