//! The request every handler sees: an API Gateway HTTP API (payload 2.0) or Function URL event
//! decoded once, with header names lowercase, the body as the exact raw bytes the sender signed
//! (base64 already undone) and query values URL-decoded.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use http::HeaderMap;

use super::AppError;

/// The largest body any endpoint accepts; a form submission is a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An HTTP request, decoded once.
#[derive(Debug, Clone, Default)]
pub struct InboundRequest {
    pub method: String,
    /// The path routes are matched on: `rawPath` without the stage prefix (`/prod/leads` on a
    /// stage named `prod` is `/leads`; the `$default` stage adds none), e.g. `/webhooks/typeform`.
    pub path: String,
    pub raw_query: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// `https://{domainName}{rawPath}?{rawQueryString}` as received, stage included: what
    /// HubSpot signs.
    pub url: String,
    /// When API Gateway received the request (`requestContext.timeEpoch`, in seconds under
    /// `cargo lambda watch`: see `lambda_time`), else now.
    pub received_at: DateTime<Utc>,
    pub request_id: String,
    pub source_ip: Option<String>,
    /// Path parameters: the route's captures (`id` of `/leads/{id}`), else API Gateway's.
    pub path_params: BTreeMap<String, String>,
    /// The invocation's deadline (epoch ms as the Runtime API gives it; 0: none, as in tests).
    pub deadline_ms: u64,
}

impl InboundRequest {
    /// Decodes an API Gateway v2 / Function URL event. Fails with 413 above `max_body` and 400 on
    /// a body that claims base64 but is not.
    pub fn from_apigw(req: &ApiGatewayV2httpRequest, max_body: usize) -> Result<Self, AppError> {
        let method = req
            .request_context
            .http
            .method
            .as_str()
            .to_ascii_uppercase();
        let raw_path = req
            .raw_path
            .clone()
            .or_else(|| req.request_context.http.path.clone())
            .unwrap_or_else(|| "/".to_string());
        let path = without_stage(&raw_path, req.request_context.stage.as_deref()).to_string();
        let raw_query = req.raw_query_string.clone().unwrap_or_default();
        let query = form_urlencoded::parse(raw_query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let headers = header_map(&req.headers);
        let body = decode_body(req.body.as_deref(), req.is_base64_encoded, max_body)?;
        let domain = req
            .request_context
            .domain_name
            .clone()
            .or_else(|| headers.get("host").cloned())
            .unwrap_or_else(|| "localhost".to_string());
        let url = if raw_query.is_empty() {
            format!("https://{domain}{raw_path}")
        } else {
            format!("https://{domain}{raw_path}?{raw_query}")
        };
        let received_at = Utc
            .timestamp_millis_opt(crate::lambda_time::epoch_millis(
                req.request_context.time_epoch,
            ))
            .single()
            .filter(|t| t.timestamp() > 0)
            .unwrap_or_else(Utc::now);
        Ok(InboundRequest {
            method,
            path,
            raw_query,
            query,
            headers,
            body,
            url,
            received_at,
            request_id: req.request_context.request_id.clone().unwrap_or_default(),
            source_ip: req.request_context.http.source_ip.clone(),
            path_params: req
                .path_parameters
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            deadline_ms: 0,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A path parameter of the matched route (`id` of `/leads/{id}`).
    pub fn param(&self, name: &str) -> &str {
        self.path_params.get(name).map_or("", String::as_str)
    }

    /// The media type without parameters, lowercase (`application/json`).
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type")
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|s| !s.is_empty())
    }

    /// True when the client asked for JSON rather than a page (fetch/XHR callers).
    pub fn wants_json(&self) -> bool {
        self.header("accept")
            .map(|a| a.contains("application/json"))
            .unwrap_or(false)
    }
}

/// The stage prefix is handled here, once: an HTTP API stage other than `$default` prefixes
/// `rawPath` with `/{stage}`, which no route names. (`lambda_http` keeps the prefix unless
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set; a route table never wants it.)
fn without_stage<'a>(raw_path: &'a str, stage: Option<&str>) -> &'a str {
    let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") else {
        return raw_path;
    };
    match raw_path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage))
    {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => raw_path,
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_ascii_lowercase())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v)
            })
            .or_insert(v);
    }
    out
}

fn decode_body(body: Option<&str>, is_base64: bool, max: usize) -> Result<Vec<u8>, AppError> {
    let Some(body) = body else {
        return Ok(Vec::new());
    };
    // Check the encoded size first so an oversized body is never decoded.
    let encoded_limit = if is_base64 { max / 3 * 4 + 4 } else { max };
    if body.len() > encoded_limit {
        return Err(AppError::PayloadTooLarge { limit: max });
    }
    let bytes = if is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| {
                AppError::bad_request("invalid_body", "body", "body is not valid base64")
            })?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.len() > max {
        return Err(AppError::PayloadTooLarge { limit: max });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_prefix_is_removed_once() {
        assert_eq!(without_stage("/prod/leads/1", Some("prod")), "/leads/1");
        assert_eq!(without_stage("/prod", Some("prod")), "/");
        assert_eq!(without_stage("/leads", Some("$default")), "/leads");
        assert_eq!(without_stage("/leads", None), "/leads");
        // A path that only starts like the stage keeps it.
        assert_eq!(
            without_stage("/production/x", Some("prod")),
            "/production/x"
        );
        assert_eq!(without_stage("/prod/prod/x", Some("prod")), "/prod/x");
    }

    #[test]
    fn the_signed_url_keeps_the_stage() {
        let event: ApiGatewayV2httpRequest = serde_json::from_value(serde_json::json!({
            "rawPath": "/prod/webhooks/hubspot", "rawQueryString": "a=1",
            "requestContext": {"stage": "prod", "domainName": "x.example.com",
                               "http": {"method": "post"}},
            "isBase64Encoded": false
        }))
        .unwrap();
        let req = InboundRequest::from_apigw(&event, MAX_BODY_BYTES).unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/webhooks/hubspot");
        assert_eq!(req.url, "https://x.example.com/prod/webhooks/hubspot?a=1");
    }
}
