//! API keys for first-party callers (`x-api-key`), compared in constant time, each with the
//! scopes it grants. Several keys may be configured at once (comma-separated) so a key can be
//! rotated without downtime.
//!
//! Format (`LEAD_API_KEYS`, `REFERRAL_API_KEYS`): `key[:scope+scope...]`, comma-separated, e.g.
//! `k1:read+write,k2:dashboard,k3:erase`. Scopes: `read` (leads, metrics), `write` (sales
//! events, spend, referrals, reviews), `erase` (GDPR erasure), `dashboard` (the dashboard page).
//! A bare key keeps what it could do before scopes existed except erasure: `read+write+dashboard`.
//! Erasure is never implied; it must be granted explicitly.
//!
//! The dashboard takes its key as `?key=` (a browser cannot send headers), and query strings end
//! up in browser history, proxy logs and Referer headers: only a key whose scopes are exactly
//! `dashboard` is accepted there.

use std::sync::{Arc, RwLock};

use super::{AppError, InboundRequest};
use crate::secrets::Secrets;
use crate::signature::keys_equal;

crate::named_enum! {
    /// What a key may do.
    #[derive(Hash)]
    pub enum Scope {
        Read = "read", Write = "write", Erase = "erase", Dashboard = "dashboard",
    }
}

/// A set of scopes (one bit per [`Scope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// What a key without `:scopes` grants.
    pub const BARE: Scopes = Scopes(bit(Scope::Read) | bit(Scope::Write) | bit(Scope::Dashboard));
    pub const DASHBOARD_ONLY: Scopes = Scopes(bit(Scope::Dashboard));

    pub fn has(self, s: Scope) -> bool {
        self.0 & bit(s) != 0
    }

    /// `read+write`; `None` when any part is not a scope.
    fn parse(text: &str) -> Option<Scopes> {
        text.split('+')
            .map(|p| Scope::parse(p.trim()).map(bit))
            .try_fold(0u8, |acc, b| b.map(|b| acc | b))
            .filter(|b| *b != 0)
            .map(Scopes)
    }
}

const fn bit(s: Scope) -> u8 {
    match s {
        Scope::Read => 1,
        Scope::Write => 2,
        Scope::Erase => 4,
        Scope::Dashboard => 8,
    }
}

#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(String, Scopes)>,
}

/// No key at all: what a function without API keys checks against (nothing passes).
pub(crate) static NO_KEYS: ApiKeys = ApiKeys { keys: Vec::new() };

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} configured)", self.keys.len())
    }
}

impl ApiKeys {
    /// Keys from a comma-separated value (see the module for the format). A `:suffix` that is
    /// not a list of scopes is part of the key.
    pub fn parse(value: Option<&str>) -> ApiKeys {
        ApiKeys {
            keys: value
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|entry| match entry.rsplit_once(':') {
                    Some((key, scopes)) if !key.trim().is_empty() => match Scopes::parse(scopes) {
                        Some(s) => (key.trim().to_string(), s),
                        None => (entry.to_string(), Scopes::BARE),
                    },
                    _ => (entry.to_string(), Scopes::BARE),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The scopes of the configured key equal to `candidate`. Every configured key is compared
    /// (no early exit), each in constant time and without leaking its length
    /// (`signature::keys_equal` compares digests).
    pub fn scopes_of(&self, candidate: &str) -> Option<Scopes> {
        let c = candidate.trim();
        self.keys.iter().fold(None, |hit, (k, scopes)| {
            let eq = keys_equal(c, k);
            if eq && hit.is_none() {
                Some(*scopes)
            } else {
                hit
            }
        })
    }

    pub fn matches(&self, candidate: &str) -> bool {
        self.scopes_of(candidate).is_some()
    }

    /// 401 unless the request carries a configured key in `x-api-key`; 403 when that key lacks
    /// `scope`. With no key configured nothing is accepted: an endpoint is never open by
    /// omission.
    pub fn check(&self, req: &InboundRequest, scope: Scope) -> Result<(), AppError> {
        let scopes = self.check_key(req.header("x-api-key"))?;
        require(scopes, scope)
    }

    /// The same, also taking the key as `?key=` for pages opened in a browser, which cannot
    /// send headers (the dashboard); there only a dashboard-only key is accepted. The header
    /// wins when both are given.
    pub fn check_header_or_query(
        &self,
        req: &InboundRequest,
        scope: Scope,
    ) -> Result<(), AppError> {
        if let Some(h) = req.header("x-api-key") {
            return require(self.check_key(Some(h))?, scope);
        }
        let scopes = self.check_key(req.query.get("key").map(String::as_str))?;
        if scopes != Scopes::DASHBOARD_ONLY {
            return Err(AppError::Forbidden {
                code: "api_key_in_query",
                message: "only a dashboard-only key may be sent as ?key= (it ends up in browser \
                          history); send this key in the x-api-key header"
                    .into(),
            });
        }
        require(scopes, scope)
    }

    /// Whether the key a request was let in with (the header, else `?key=`, as
    /// [`ApiKeys::check_header_or_query`] reads them) also grants `scope`: what a page shows
    /// beyond its route's scope (the dashboard's names and addresses need `read`). A key
    /// accepted in the query is dashboard-only, so it never grants more.
    pub fn grants(&self, req: &InboundRequest, scope: Scope) -> bool {
        let key = req
            .header("x-api-key")
            .or_else(|| req.query.get("key").map(String::as_str));
        key.and_then(|k| self.scopes_of(k))
            .is_some_and(|s| s.has(scope))
    }

    fn check_key(&self, key: Option<&str>) -> Result<Scopes, AppError> {
        match key {
            None => Err(AppError::unauthorized(
                "missing_api_key",
                "send your API key in the x-api-key header",
            )),
            Some(k) => self.scopes_of(k).ok_or_else(|| {
                AppError::unauthorized("invalid_api_key", "the API key is not valid")
            }),
        }
    }
}

/// The API keys in force for a function: fixed (the environment: local runs, tests), or
/// following the rotating secret (`SECRETS_ID`, [`crate::secrets`]). A key added to or removed
/// from the secret is in force within the secret's refresh age (5 minutes, no request per
/// call), and an unknown key forces a refresh at once (rate limited by
/// [`Secrets::refresh_now`]) so a key just added works on its first call. Unlike platform
/// secrets, a key's previous value is never accepted: a removed key is a revoked key (add the
/// new one next to the old one, move the callers, then remove the old).
pub struct LiveApiKeys {
    /// The variable holding the keys (`LEAD_API_KEYS`).
    variable: &'static str,
    secrets: Option<Arc<Secrets>>,
    /// The environment's value, in force when the secret does not hold the variable.
    fallback: Arc<ApiKeys>,
    held: RwLock<(u64, Arc<ApiKeys>)>,
}

impl std::fmt::Debug for LiveApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveApiKeys")
            .field("variable", &self.variable)
            .field("rotating", &self.secrets.is_some())
            .field("keys", &self.read_held().1)
            .finish()
    }
}

impl LiveApiKeys {
    /// The keys of `variable` as `get` reads it at cold start (the secret, then the
    /// environment); fixed until [`LiveApiKeys::rotating`].
    pub fn from_lookup(variable: &'static str, get: impl Fn(&str) -> Option<String>) -> Self {
        let keys = Arc::new(ApiKeys::parse(get(variable).as_deref()));
        LiveApiKeys {
            variable,
            secrets: None,
            fallback: keys.clone(),
            held: RwLock::new((0, keys)),
        }
    }

    /// Follows `secrets` from now on (`None` keeps the keys fixed). The environment's value
    /// stays the fallback for a secret without the variable.
    pub fn rotating(mut self, secrets: Option<Arc<Secrets>>) -> Self {
        if secrets.is_some() {
            self.fallback = Arc::new(ApiKeys::parse(std::env::var(self.variable).ok().as_deref()));
        }
        self.secrets = secrets;
        self
    }

    fn read_held(&self) -> (u64, Arc<ApiKeys>) {
        self.held.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The keys in force: refreshed from the secret when its values are stale (or at once,
    /// `forced`, rate limited).
    pub async fn current(&self, forced: bool) -> Arc<ApiKeys> {
        let Some(secrets) = &self.secrets else {
            return self.read_held().1;
        };
        let snapshot = if forced {
            secrets.refresh_now().await
        } else {
            secrets.snapshot().await
        };
        let (generation, keys) = self.read_held();
        if generation == snapshot.generation {
            return keys;
        }
        let keys = match snapshot.current(self.variable) {
            Some(value) => Arc::new(ApiKeys::parse(Some(value))),
            None => self.fallback.clone(),
        };
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = (snapshot.generation, keys.clone());
        keys
    }

    /// `check` against the keys in force; when it finds the key unknown and the keys rotate,
    /// once more after a forced refresh (a key just added to the secret).
    pub async fn check_with(
        &self,
        check: impl Fn(&ApiKeys) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let keys = self.current(false).await;
        match check(&keys) {
            Err(e) if e.code() == "invalid_api_key" && self.secrets.is_some() => {
                let again = self.current(true).await;
                if Arc::ptr_eq(&again, &keys) {
                    Err(e)
                } else {
                    check(&again)
                }
            }
            checked => checked,
        }
    }
}

fn require(scopes: Scopes, scope: Scope) -> Result<(), AppError> {
    if scopes.has(scope) {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            code: "insufficient_scope",
            message: format!("this API key does not have the {} scope", scope.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_and_rejection() {
        let keys = ApiKeys::parse(Some("old-key, new-key"));
        assert!(keys.matches("old-key") && keys.matches("new-key"));
        assert!(!keys.matches("new-ke") && !keys.matches(""));
        let mut req = InboundRequest::default();
        let check = |k: &ApiKeys, r: &InboundRequest| k.check(r, Scope::Read);
        assert_eq!(check(&keys, &req).unwrap_err().code(), "missing_api_key");
        req.headers.insert("x-api-key".into(), "nope".into());
        assert_eq!(check(&keys, &req).unwrap_err().code(), "invalid_api_key");
        req.headers.insert("x-api-key".into(), "new-key".into());
        assert!(check(&keys, &req).is_ok());
        assert!(check(&ApiKeys::parse(None), &req).is_err());
    }

    #[test]
    fn scopes_are_parsed_and_erase_is_never_implied() {
        let keys = ApiKeys::parse(Some(
            "bare, rw:read+write, dash:dashboard, e:erase, odd:key:x",
        ));
        assert_eq!(keys.scopes_of("bare"), Some(Scopes::BARE));
        assert!(!Scopes::BARE.has(Scope::Erase));
        let rw = keys.scopes_of("rw").unwrap();
        assert!(rw.has(Scope::Read) && rw.has(Scope::Write) && !rw.has(Scope::Dashboard));
        assert_eq!(keys.scopes_of("dash"), Some(Scopes::DASHBOARD_ONLY));
        assert!(keys.scopes_of("e").unwrap().has(Scope::Erase));
        // A suffix that is not scopes is part of the key.
        assert_eq!(keys.scopes_of("odd:key:x"), Some(Scopes::BARE));
        assert!(keys.scopes_of("rw:read+write").is_none());
    }

    #[test]
    fn only_a_dashboard_only_key_goes_in_the_query() {
        let keys = ApiKeys::parse(Some("bare, dash:dashboard, all:read+write+erase+dashboard"));
        let mut req = InboundRequest::default();
        for (k, code) in [("bare", "api_key_in_query"), ("all", "api_key_in_query")] {
            req.query.insert("key".into(), k.into());
            let e = keys
                .check_header_or_query(&req, Scope::Dashboard)
                .unwrap_err();
            assert_eq!((e.status(), e.code()), (403, code));
        }
        req.query.insert("key".into(), "dash".into());
        assert!(keys.check_header_or_query(&req, Scope::Dashboard).is_ok());
        // In the header any key with the scope is fine; the dashboard key can do nothing else.
        req.query.clear();
        req.headers.insert("x-api-key".into(), "bare".into());
        assert!(keys.check_header_or_query(&req, Scope::Dashboard).is_ok());
        req.headers.insert("x-api-key".into(), "dash".into());
        let e = keys.check(&req, Scope::Erase).unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "insufficient_scope"));
        assert!(keys.check(&req, Scope::Read).is_err());
    }

    #[test]
    fn what_else_the_request_key_grants() {
        let keys = ApiKeys::parse(Some("reader:read+dashboard, dash:dashboard"));
        let mut req = InboundRequest::default();
        assert!(!keys.grants(&req, Scope::Read), "no key");
        req.query.insert("key".into(), "dash".into());
        assert!(!keys.grants(&req, Scope::Read));
        assert!(keys.grants(&req, Scope::Dashboard));
        // The header wins, as when the request was let in.
        req.headers.insert("x-api-key".into(), "reader".into());
        assert!(keys.grants(&req, Scope::Read));
        req.headers.insert("x-api-key".into(), "nope".into());
        assert!(!keys.grants(&req, Scope::Dashboard));
    }
}
