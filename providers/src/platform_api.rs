//! A small JSON client for the platform APIs that hold the lead data a webhook only points at
//! (Meta's Graph API, LinkedIn's Lead Sync API): `GET` for the data, a form `POST` for OAuth
//! token refreshes ([`crate::oauth`]).
//!
//! Built on the stack the AWS SDK already links into this binary: hyper 1 through hyper-util's
//! pooled client, rustls with the aws-lc-rs provider through hyper-rustls, the system's root
//! certificates. No second TLS or HTTP implementation. `http://` base URLs work too (tests point
//! the client at a local server); production URLs are `https://`.
//!
//! The client is built on first use, not at cold start: most invocations (web forms, signed
//! platforms) never call out, and loading the root store costs a few milliseconds.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A lead is a few KiB; anything far larger is not the answer we asked for.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a platform API call gave no usable answer. Messages carry no URL (URLs may hold tokens)
/// and no response content (it is personal data).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request URL is invalid")]
    BadUrl,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Transport(String),
    /// A non-2xx answer, with its JSON error body when it has one (platform error bodies carry
    /// codes and messages, no lead data; they are never logged whole).
    #[error("answered HTTP {status}")]
    Status { status: u16, body: Option<Value> },
    #[error("answer is not readable JSON: {0}")]
    BadJson(String),
    #[error("answer body unreadable: {0}")]
    Body(String),
}

/// The platform API client; one per process, connections pooled across invocations.
pub struct PlatformApi {
    client: OnceLock<Option<HttpClient>>,
    timeout: Duration,
}

impl std::fmt::Debug for PlatformApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformApi")
            .field("timeout", &self.timeout)
            .field("built", &self.client.get().is_some())
            .finish()
    }
}

impl PlatformApi {
    /// `timeout` bounds each whole request: connect, TLS, headers and body.
    pub fn new(timeout: Duration) -> PlatformApi {
        PlatformApi {
            client: OnceLock::new(),
            timeout,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn client(&self) -> Option<&HttpClient> {
        self.client.get_or_init(build_client).as_ref()
    }

    /// `GET url` with `headers`, expecting a 2xx JSON answer.
    pub async fn get_json(&self, url: &str, headers: &[(&str, &str)]) -> Result<Value, ApiError> {
        let builder = http::Request::get(parse_url(url)?);
        self.send(builder, headers, Bytes::new()).await
    }

    /// `POST url` with an `application/x-www-form-urlencoded` body of `form` (an OAuth token
    /// request), expecting a 2xx JSON answer.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Value, ApiError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let builder = http::Request::post(parse_url(url)?)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(builder, &[], Bytes::from(body)).await
    }

    async fn send(
        &self,
        builder: http::request::Builder,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Value, ApiError> {
        let mut builder = builder
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, "leadflow-form-webhook");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|_| ApiError::BadUrl)?;
        let client = self
            .client()
            .ok_or_else(|| ApiError::Transport("TLS client could not be set up".to_string()))?;
        let call = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| ApiError::Transport(error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| ApiError::Body(e.to_string()))?
                .to_bytes();
            if !status.is_success() {
                // The error body tells an unknown lead from an expired token (Graph error
                // codes); an unreadable one is just absent.
                return Err(ApiError::Status {
                    status: status.as_u16(),
                    body: serde_json::from_slice(&body).ok(),
                });
            }
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| ApiError::BadJson(super::json_error(&e)))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ApiError::Timeout(self.timeout))?
    }
}

/// An `http://` or `https://` URL, else [`ApiError::BadUrl`].
fn parse_url(url: &str) -> Result<http::Uri, ApiError> {
    let uri: http::Uri = url.parse().map_err(|_| ApiError::BadUrl)?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(ApiError::BadUrl);
    }
    Ok(uri)
}

/// The error and its causes on one line ("client error (Connect): tcp connect error: ...").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn build_client() -> Option<HttpClient> {
    // The provider is named explicitly: no reliance on a process-wide default that another
    // crate feature could make ambiguous (which would panic inside rustls).
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(b) => b,
        Err(e) => {
            // No system roots (a stripped container): plain http still works, https fails
            // per request with a certificate error, which surfaces as a 502.
            tracing::error!(error = %e, "no root certificates found; https platform API calls will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| tracing::error!(error = %e, "TLS configuration failed"))
                .ok()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(3)));
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Some(
        Client::builder(TokioExecutor::new())
            // Lambda freezes between invocations; do not keep connections the far end has
            // long since dropped.
            .pool_idle_timeout(Duration::from_secs(20))
            .pool_timer(TokioTimer::new())
            .build(connector),
    )
}
