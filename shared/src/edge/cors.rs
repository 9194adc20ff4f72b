//! CORS for sites that post with `fetch`, from a comma-separated list of origins (form-webhook's
//! `FORM_ALLOWED_ORIGINS`, e.g. `https://www.example.com,https://example.com`). With no list,
//! no CORS headers are sent (plain HTML form posts need none) and any origin may post. With a
//! list, a request whose `Origin` is not on it is refused with 403: another site cannot post
//! into your pipeline. The edge answers preflights and decorates every answer of a function
//! that has a [`Cors`] (`Service::cors`).

use http::HeaderValue;

use super::{empty_response, AppError, InboundRequest, Response};

#[derive(Debug, Clone, Default)]
pub struct Cors {
    allowed: Vec<String>,
}

impl Cors {
    /// The allowed origins from a comma-separated list (unset or blank: unrestricted).
    pub fn parse(list: Option<&str>) -> Cors {
        let allowed = list
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        Cors { allowed }
    }

    pub fn is_restricted(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Whether `origin` may post. Without a configured list every origin may.
    pub fn allows(&self, origin: &str) -> bool {
        let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        self.allowed.is_empty() || self.allowed.iter().any(|a| a == "*" || *a == o)
    }

    /// Whether a URL (e.g. a `_redirect` target) is on an allowed origin.
    pub fn allows_url(&self, url: &str) -> bool {
        let lower = url.trim().to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return false;
        };
        if scheme != "https" && scheme != "http" {
            return false;
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let origin = format!("{scheme}://{host}");
        self.allowed.contains(&origin)
    }

    /// Refuses a request from an origin that is not allowed.
    pub fn check(&self, req: &InboundRequest) -> Result<(), AppError> {
        match req.header("origin") {
            Some(origin) if !self.allows(origin) => Err(AppError::Forbidden {
                code: "origin_not_allowed",
                message: "this origin may not post to this form endpoint".to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Answers a preflight `OPTIONS` request.
    pub fn preflight(&self, req: &InboundRequest) -> Result<Response, AppError> {
        self.check(req)?;
        let mut resp = empty_response(204);
        resp.headers.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("POST, OPTIONS"),
        );
        resp.headers.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("content-type, accept, idempotency-key"),
        );
        resp.headers
            .insert("access-control-max-age", HeaderValue::from_static("86400"));
        Ok(resp)
    }

    /// Adds `Access-Control-Allow-Origin` for an allowed origin (every answer, errors included,
    /// so the page's script can read them).
    pub fn decorate(&self, resp: &mut Response, origin: Option<&str>) {
        let Some(origin) = origin else { return };
        if !self.is_restricted() || !self.allows(origin) {
            return;
        }
        if let Ok(v) = HeaderValue::from_str(origin.trim()) {
            resp.headers.insert("access-control-allow-origin", v);
            resp.headers
                .insert("vary", HeaderValue::from_static("Origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(list: &str) -> Cors {
        Cors::parse(Some(list))
    }

    #[test]
    fn origins_and_redirects() {
        let c = cors("https://www.example.com, https://example.com/");
        assert!(c.allows("https://example.com"));
        assert!(!c.allows("https://evil.example.net"));
        assert!(c.allows_url("https://www.example.com/thanks?x=1"));
        assert!(!c.allows_url("https://www.example.com.evil.net/thanks"));
        assert!(!c.allows_url("javascript:alert(1)"));
        assert!(cors("").allows("https://anything.io"));
    }
}
