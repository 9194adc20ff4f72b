//! API keys for first-party callers (`x-api-key`), compared in constant time. Several keys may be
//! configured at once (comma-separated) so a key can be rotated without downtime.

use super::{AppError, InboundRequest};
use crate::signature::keys_equal;

#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<String>,
}

/// No key at all: what a function without API keys checks against (nothing passes).
pub(crate) static NO_KEYS: ApiKeys = ApiKeys { keys: Vec::new() };

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} configured)", self.keys.len())
    }
}

impl ApiKeys {
    /// Keys from a comma-separated value (e.g. the `LEAD_API_KEYS` variable).
    pub fn parse(value: Option<&str>) -> ApiKeys {
        ApiKeys {
            keys: value
                .unwrap_or_default()
                .split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every configured key is compared (no early exit), each in constant time and without
    /// leaking its length (`signature::keys_equal` compares digests).
    pub fn matches(&self, candidate: &str) -> bool {
        let c = candidate.trim();
        self.keys
            .iter()
            .fold(false, |hit, k| hit | keys_equal(c, k))
    }

    /// 401 unless the request carries a configured key in `x-api-key`. With no key configured
    /// nothing is accepted: an endpoint is never open by omission.
    pub fn check(&self, req: &InboundRequest) -> Result<(), AppError> {
        self.check_key(req.header("x-api-key"))
    }

    /// The same, also taking the key as `?key=` for pages opened in a browser, which cannot
    /// send headers (the dashboard). The header wins when both are given.
    pub fn check_header_or_query(&self, req: &InboundRequest) -> Result<(), AppError> {
        self.check_key(
            req.header("x-api-key")
                .or_else(|| req.query.get("key").map(String::as_str)),
        )
    }

    fn check_key(&self, key: Option<&str>) -> Result<(), AppError> {
        match key {
            None => Err(AppError::unauthorized(
                "missing_api_key",
                "send your API key in the x-api-key header",
            )),
            Some(k) if !self.is_empty() && self.matches(k) => Ok(()),
            Some(_) => Err(AppError::unauthorized(
                "invalid_api_key",
                "the API key is not valid",
            )),
        }
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
        assert_eq!(keys.check(&req).unwrap_err().code(), "missing_api_key");
        req.headers.insert("x-api-key".into(), "nope".into());
        assert_eq!(keys.check(&req).unwrap_err().code(), "invalid_api_key");
        req.headers.insert("x-api-key".into(), "new-key".into());
        assert!(keys.check(&req).is_ok());
        assert!(ApiKeys::parse(None).check(&req).is_err());
    }
}
