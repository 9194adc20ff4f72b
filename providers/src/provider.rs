//! What a platform is: the [`Provider`] trait. One unit struct per platform implements it in
//! the platform's own module; the registry (`registry.rs`) lists them all.

use chrono::{DateTime, Utc};
use leadflow::edge::{BoxFuture, InboundRequest, Response};
use leadflow::model::Submission;
use leadflow::signature::SignatureError;

use crate::announced::{AnnouncedLead, FetchError};
use crate::config::{ProvidersConfig, Variable};
use crate::{ProviderError, ProviderOutcome, Providers};

/// One form or ad platform posting to `/webhooks/{name}`. Object safe: the registry is a
/// `&[&dyn Provider]`, and the async steps return boxed futures.
pub trait Provider: Send + Sync + 'static {
    /// The path segment it is served under, and its name in metrics and records
    /// (`google-ads`).
    fn name(&self) -> &'static str;

    /// Every environment variable it reads, each declared once, in its module.
    fn variables(&self) -> &'static [&'static Variable];

    /// The variable that authenticates its deliveries. Unset: the provider is not configured,
    /// and every request to it is 404 (nothing is ever accepted unverified).
    fn secret(&self) -> &'static Variable;

    /// Checks a `POST` delivery with that secret, over the exact raw body, before anything is
    /// parsed. `now` bounds the replay window of timestamped schemes.
    fn verify(
        &self,
        secret: &str,
        req: &InboundRequest,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError>;

    /// Answers a `GET`: a subscription handshake. By default the platform has none: 404 when
    /// it is not configured, else 405.
    fn handshake(
        &self,
        config: &ProvidersConfig,
        req: &InboundRequest,
    ) -> Result<Response, ProviderError> {
        let _ = req;
        config.require(self.name(), self.secret())?;
        Err(ProviderError::MethodNotAllowed("GET".to_string()))
    }

    /// Reads an authentic delivery: submissions, announced leads, or why it is quarantined
    /// or ignored. Never an error: an authentic body that does not parse is quarantined.
    fn parse<'a>(&'a self, req: &'a InboundRequest) -> BoxFuture<'a, ProviderOutcome>;

    /// Fetches a lead it announced by id ([`ProviderOutcome::Announced`]) from its API. Only
    /// platforms that announce leads implement it.
    fn fetch<'a>(
        &'a self,
        providers: &'a Providers,
        lead: &'a AnnouncedLead,
        received_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Submission, FetchError>> {
        let _ = (providers, lead, received_at);
        Box::pin(std::future::ready(Err(FetchError::Rejected {
            status: 0,
            code: None,
        })))
    }
}

/// A parse that needs no I/O, as a [`Provider::parse`] future.
pub(crate) fn ready(outcome: ProviderOutcome) -> BoxFuture<'static, ProviderOutcome> {
    Box::pin(std::future::ready(outcome))
}
