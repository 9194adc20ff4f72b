//! Platform access tokens kept alive with their refresh token (OAuth 2.0 `refresh_token` grant,
//! RFC 6749 section 6). LinkedIn's access tokens live 60 days and its programmatic refresh
//! tokens a year from the member's authorization; refreshing mints a new 60-day access token
//! and leaves the refresh token's own deadline as it was ("Programmatic Refresh Tokens",
//! LinkedIn's authentication docs).
//!
//! - Before a call: a token that expires within the grant's margin is refreshed first (a
//!   refresh that fails then keeps the old token while it lasts, logged).
//! - After a refusal (401): refreshed once and the call repeated, so a token whose expiry
//!   nobody recorded (set by hand, no `..._EXPIRES_AT`) recovers on first use.
//! - One refresh at a time per process; callers that waited take the token it minted.
//! - The minted token and its expiry are written into the rotating secret when there is one
//!   (`leadflow::secrets::Secrets::update`), so other instances and the next cold start use
//!   it; without a secret (local runs) it lives in the process only.
//! - No token, refresh token or client secret is ever logged or put in an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;

use crate::announced::FetchError;
use crate::platform_api::ApiError;
use crate::{Providers, ProvidersConfig, Variable};

/// Where a platform's OAuth credentials are configured (variables of its provider module).
#[derive(Debug)]
pub struct RefreshGrant {
    pub provider: &'static str,
    pub access_token: &'static Variable,
    /// RFC 3339 expiry of `access_token`, written with each refresh; blank = unknown.
    pub access_expires_at: &'static Variable,
    pub refresh_token: &'static Variable,
    /// RFC 3339 expiry of `refresh_token`, written with each refresh; blank = unknown.
    pub refresh_expires_at: &'static Variable,
    pub client_id: &'static Variable,
    pub client_secret: &'static Variable,
    /// The token endpoint (a setting, so tests and run-local can point at a stand-in).
    pub token_url: &'static Variable,
    /// Refresh this long before the access token expires.
    pub margin: Duration,
    /// Warn this long before the refresh token itself expires (then a person must authorize
    /// the app again).
    pub reauthorize_warning: Duration,
}

/// A token this process minted, in force while the configuration still names the token it
/// replaced (once the secret carries a newer one, from this or another instance, that wins).
#[derive(Clone)]
struct Minted {
    token: String,
    expires_at: Option<DateTime<Utc>>,
    replaced: Option<String>,
}

/// The tokens minted by this process, per provider.
#[derive(Default)]
pub struct Tokens {
    minted: tokio::sync::Mutex<HashMap<&'static str, Minted>>,
    refreshes: AtomicU64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("refreshes", &self.refreshes())
            .finish()
    }
}

impl Tokens {
    /// Token requests made so far (tests and benchmarks).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }
}

/// The token in force and its expiry, if any.
fn in_force(
    config: &ProvidersConfig,
    grant: &RefreshGrant,
    minted: Option<&Minted>,
) -> Option<(String, Option<DateTime<Utc>>)> {
    let configured = config.secret(grant.access_token);
    match minted {
        Some(m) if m.replaced.as_deref() == configured => Some((m.token.clone(), m.expires_at)),
        _ => configured.map(|t| (t.to_string(), expiry(config, grant.access_expires_at))),
    }
}

fn expiry(config: &ProvidersConfig, var: &Variable) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(config.setting(var).trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether the configuration can refresh at all (refresh token, client id and secret set).
fn can_refresh(config: &ProvidersConfig, grant: &RefreshGrant) -> bool {
    config.secret(grant.refresh_token).is_some()
        && config.secret(grant.client_id).is_some()
        && config.secret(grant.client_secret).is_some()
}

fn no_token() -> FetchError {
    FetchError::Auth {
        status: 0,
        code: None,
    }
}

impl Providers {
    /// The access token to call `grant.provider`'s API with, refreshed first when it expires
    /// within the margin. Without one (and no way to mint one): an authorization failure
    /// (the lead is quarantined, replayable once a token is set).
    pub async fn access_token(&self, grant: &RefreshGrant) -> Result<String, FetchError> {
        let mut minted = self.tokens().minted.lock().await;
        let config = self.config();
        let current = in_force(&config, grant, minted.get(grant.provider));
        let due = match &current {
            None => true,
            Some((_, Some(expires_at))) => Utc::now() + grant.margin >= *expires_at,
            Some((_, None)) => false,
        };
        if !due || !can_refresh(&config, grant) {
            return current.map(|(t, _)| t).ok_or_else(no_token);
        }
        match self.refresh(&config, grant).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                minted.insert(grant.provider, fresh);
                Ok(token)
            }
            // The old token may still work until it expires; the refusal, if it comes, is
            // the API's.
            Err(e) => match current {
                Some((token, expires_at)) if expires_at.is_none_or(|at| at > Utc::now()) => {
                    tracing::warn!(provider = grant.provider, error = %e, "token refresh failed; using the current token while it lasts");
                    Ok(token)
                }
                _ => Err(e),
            },
        }
    }

    /// After the API refused `refused` (HTTP 401): a new token, minted once however many
    /// callers saw the refusal (those that waited get the token minted meanwhile). `None`
    /// when nothing can be minted (no refresh token configured): the refusal stands.
    pub async fn refreshed_token(
        &self,
        grant: &RefreshGrant,
        refused: &str,
    ) -> Result<Option<String>, FetchError> {
        let mut minted = self.tokens().minted.lock().await;
        let config = self.config();
        if let Some((token, _)) = in_force(&config, grant, minted.get(grant.provider)) {
            if token != refused {
                return Ok(Some(token));
            }
        }
        if !can_refresh(&config, grant) {
            return Ok(None);
        }
        let fresh = self.refresh(&config, grant).await?;
        let token = fresh.token.clone();
        minted.insert(grant.provider, fresh);
        Ok(Some(token))
    }

    /// One token request, and the minted token written into the secret.
    async fn refresh(
        &self,
        config: &ProvidersConfig,
        grant: &RefreshGrant,
    ) -> Result<Minted, FetchError> {
        let (Some(refresh_token), Some(client_id), Some(client_secret)) = (
            config.secret(grant.refresh_token),
            config.secret(grant.client_id),
            config.secret(grant.client_secret),
        ) else {
            return Err(no_token());
        };
        self.tokens().refreshes.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        let answer = self
            .api()
            .post_form(
                config.setting(grant.token_url),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                ],
            )
            .await
            .map_err(|e| refresh_error(grant.provider, e))?;
        let grant_answer = TokenAnswer::read(&answer, now).ok_or_else(|| {
            FetchError::Transient(format!(
                "{} token endpoint answered without an access_token",
                grant.provider
            ))
        })?;
        tracing::info!(
            provider = grant.provider,
            expires_at = ?grant_answer.expires_at,
            "platform access token refreshed"
        );
        let refresh_expires_at = grant_answer
            .refresh_expires_at
            .or_else(|| expiry(config, grant.refresh_expires_at));
        if let Some(at) = refresh_expires_at.filter(|at| *at - now < grant.reauthorize_warning) {
            tracing::warn!(
                provider = grant.provider,
                refresh_token_expires_at = %at,
                "the platform's refresh token expires soon: authorize the app again and put the new tokens in the secret"
            );
        }
        self.persist(grant, &grant_answer).await;
        Ok(Minted {
            token: grant_answer.access_token,
            expires_at: grant_answer.expires_at,
            replaced: config.secret(grant.access_token).map(str::to_string),
        })
    }

    /// Writes a minted token into the rotating secret (when the function has one). A failed
    /// write is logged and the token used anyway: the next refresh will try again.
    async fn persist(&self, grant: &RefreshGrant, answer: &TokenAnswer) {
        let Some(secrets) = self.rotating_secret() else {
            return;
        };
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let access_expires = answer.expires_at.map(stamp).unwrap_or_default();
        let refresh_expires = answer.refresh_expires_at.map(stamp);
        let mut updates = vec![
            (grant.access_token.name, answer.access_token.as_str()),
            (grant.access_expires_at.name, access_expires.as_str()),
        ];
        if let Some(refresh) = &answer.refresh_token {
            updates.push((grant.refresh_token.name, refresh.as_str()));
        }
        if let Some(at) = &refresh_expires {
            updates.push((grant.refresh_expires_at.name, at.as_str()));
        }
        match secrets.update(&updates).await {
            Ok(_) => {
                self.follow_rotation().await;
            }
            Err(e) => tracing::error!(
                provider = grant.provider,
                error = %e,
                "refreshed token could not be written to the secret; other instances will refresh on their own"
            ),
        }
    }
}

/// What a token endpoint answered: `{"access_token", "expires_in", "refresh_token"?,
/// "refresh_token_expires_in"?}` (seconds).
struct TokenAnswer {
    access_token: String,
    expires_at: Option<DateTime<Utc>>,
    refresh_token: Option<String>,
    refresh_expires_at: Option<DateTime<Utc>>,
}

impl TokenAnswer {
    fn read(answer: &Value, now: DateTime<Utc>) -> Option<TokenAnswer> {
        let text = |k: &str| {
            answer
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        // Bounded: a token endpoint's lifetime in seconds, at most ten years.
        let at = |k: &str| {
            answer
                .get(k)
                .and_then(Value::as_i64)
                .filter(|s| (1..=10 * 366 * 86_400).contains(s))
                .map(|s| now + Duration::seconds(s))
        };
        Some(TokenAnswer {
            access_token: text("access_token")?,
            expires_at: at("expires_in"),
            refresh_token: text("refresh_token"),
            refresh_expires_at: at("refresh_token_expires_in"),
        })
    }
}

/// A token endpoint's refusal: 400/401 (`invalid_grant`: the refresh token expired or was
/// revoked; `invalid_client`) need a person, so they are authorization failures; the rest may
/// pass on a retry.
fn refresh_error(provider: &str, e: ApiError) -> FetchError {
    match e {
        ApiError::Status {
            status: status @ (400 | 401 | 403),
            ..
        } => FetchError::Auth { status, code: None },
        ApiError::Status { status, .. } => {
            FetchError::Transient(format!("{provider} token endpoint answered HTTP {status}"))
        }
        other => FetchError::Transient(format!("{provider} token endpoint: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_are_read_with_bounded_lifetimes() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = TokenAnswer::read(
            &serde_json::json!({"access_token": "AQV", "expires_in": 5_184_000,
                "refresh_token": "AQX", "refresh_token_expires_in": 525_600}),
            now,
        )
        .unwrap();
        assert_eq!(a.access_token, "AQV");
        assert_eq!(a.expires_at, Some(now + Duration::days(60)));
        assert_eq!(a.refresh_token.as_deref(), Some("AQX"));
        assert_eq!(a.refresh_expires_at, Some(now + Duration::seconds(525_600)));
        let odd = TokenAnswer::read(
            &serde_json::json!({"access_token": "t", "expires_in": -5, "refresh_token": " ",
                "refresh_token_expires_in": i64::MAX}),
            now,
        )
        .unwrap();
        assert_eq!(odd.expires_at, None);
        assert_eq!(odd.refresh_token, None);
        assert_eq!(odd.refresh_expires_at, None);
        assert!(TokenAnswer::read(&serde_json::json!({"expires_in": 60}), now).is_none());
        assert!(TokenAnswer::read(&serde_json::json!({"access_token": ""}), now).is_none());
    }

    #[test]
    fn refusals_of_the_token_endpoint_are_sorted() {
        let status = |status| ApiError::Status { status, body: None };
        assert!(matches!(
            refresh_error("linkedin", status(400)),
            FetchError::Auth { status: 400, .. }
        ));
        assert!(matches!(
            refresh_error("linkedin", status(401)),
            FetchError::Auth { .. }
        ));
        assert!(matches!(
            refresh_error("linkedin", status(503)),
            FetchError::Transient(_)
        ));
        assert!(matches!(
            refresh_error(
                "linkedin",
                ApiError::Timeout(std::time::Duration::from_secs(1))
            ),
            FetchError::Transient(_)
        ));
    }
}
