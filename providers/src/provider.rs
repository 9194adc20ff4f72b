//! What a platform is: the [`Provider`] trait, and [`Platform`], the implementation every
//! platform module declares in one line (its `PLATFORM`) from its own parts; the registry
//! (`platforms!` in `lib.rs`) lists them all.

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

    /// Answers a `GET`: a subscription handshake. A platform without one answers 404 when
    /// it is not configured, else 405.
    fn handshake(
        &self,
        config: &ProvidersConfig,
        req: &InboundRequest,
    ) -> Result<Response, ProviderError>;

    /// Reads an authentic delivery: submissions, announced leads, or why it is quarantined
    /// or ignored. Never an error: an authentic body that does not parse is quarantined.
    fn parse<'a>(&'a self, req: &'a InboundRequest) -> BoxFuture<'a, ProviderOutcome>;

    /// Fetches a lead it announced by id ([`ProviderOutcome::Announced`]) from its API; a
    /// platform that announces none refuses.
    fn fetch<'a>(
        &'a self,
        providers: &'a Providers,
        lead: &'a AnnouncedLead,
        received_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Submission, FetchError>>;
}

/// A signature or shared-key check: the secret, the delivery, the time for replay windows.
pub type Verify = fn(&str, &InboundRequest, DateTime<Utc>) -> Result<(), SignatureError>;

/// A subscription handshake (`GET`), given the configuration to find its token in.
pub type Handshake = fn(&ProvidersConfig, &InboundRequest) -> Result<Response, ProviderError>;

/// A lead fetch from the platform's API.
pub type Fetch = for<'a> fn(
    &'a Providers,
    &'a AnnouncedLead,
    DateTime<Utc>,
) -> BoxFuture<'a, Result<Submission, FetchError>>;

/// How a platform reads an authentic body.
#[derive(Clone, Copy)]
pub enum Parse {
    /// In place: a JSON or form body.
    Now(fn(&InboundRequest) -> ProviderOutcome),
    /// With awaits: a multipart body is read as a stream.
    Later(for<'a> fn(&'a InboundRequest) -> BoxFuture<'a, ProviderOutcome>),
}

/// A platform made of its parts: what each platform module declares as its `PLATFORM`, in one
/// line (`Platform::new(...)`, plus `.with_handshake(...)` / `.with_fetch(...)` where the
/// platform has them). A platform needing more (state of its own) can implement [`Provider`]
/// itself.
#[derive(Clone, Copy)]
pub struct Platform {
    name: &'static str,
    secret: &'static Variable,
    variables: &'static [&'static Variable],
    verify: Verify,
    parse: Parse,
    handshake: Option<Handshake>,
    fetch: Option<Fetch>,
}

impl Platform {
    /// A platform served under `/webhooks/{name}`, authenticated by `secret` (one of its
    /// `variables`), with no handshake and no lead fetch.
    pub const fn new(
        name: &'static str,
        secret: &'static Variable,
        variables: &'static [&'static Variable],
        verify: Verify,
        parse: Parse,
    ) -> Platform {
        Platform {
            name,
            secret,
            variables,
            verify,
            parse,
            handshake: None,
            fetch: None,
        }
    }

    /// The platform answers a subscription handshake on `GET`.
    pub const fn with_handshake(self, handshake: Handshake) -> Platform {
        Platform {
            handshake: Some(handshake),
            ..self
        }
    }

    /// The platform announces leads by id, fetched with `fetch`.
    pub const fn with_fetch(self, fetch: Fetch) -> Platform {
        Platform {
            fetch: Some(fetch),
            ..self
        }
    }
}

impl Provider for Platform {
    fn name(&self) -> &'static str {
        self.name
    }

    fn variables(&self) -> &'static [&'static Variable] {
        self.variables
    }

    fn secret(&self) -> &'static Variable {
        self.secret
    }

    fn verify(
        &self,
        secret: &str,
        req: &InboundRequest,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        (self.verify)(secret, req, now)
    }

    fn handshake(
        &self,
        config: &ProvidersConfig,
        req: &InboundRequest,
    ) -> Result<Response, ProviderError> {
        match self.handshake {
            Some(handshake) => handshake(config, req),
            None => {
                config.require(self.name, self.secret)?;
                Err(ProviderError::MethodNotAllowed("GET".to_string()))
            }
        }
    }

    fn parse<'a>(&'a self, req: &'a InboundRequest) -> BoxFuture<'a, ProviderOutcome> {
        match self.parse {
            Parse::Now(parse) => Box::pin(std::future::ready(parse(req))),
            Parse::Later(parse) => parse(req),
        }
    }

    fn fetch<'a>(
        &'a self,
        providers: &'a Providers,
        lead: &'a AnnouncedLead,
        received_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Submission, FetchError>> {
        match self.fetch {
            Some(fetch) => fetch(providers, lead, received_at),
            None => Box::pin(std::future::ready(Err(FetchError::Rejected {
                status: 0,
                code: None,
            }))),
        }
    }
}

/// The shared-key scheme of platforms that cannot sign: the key appended to the webhook URL as
/// `?key=`, compared in constant time.
pub fn verify_query_key(
    secret: &str,
    req: &InboundRequest,
    _now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    leadflow::signature::verify_shared_key(req.query.get("key").map(String::as_str), secret)
}
