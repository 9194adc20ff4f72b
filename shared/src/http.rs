//! HTTP plumbing shared by the HTTP functions: decoding API Gateway HTTP API (payload 2.0) /
//! Function URL events into an [`InboundRequest`], and building JSON / HTML / redirect answers.
//! Errors become responses in one place: [`crate::error::AppError::to_response`].

use std::collections::BTreeMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;

use crate::error::AppError;

/// The largest body any endpoint accepts; a form submission is a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An HTTP request, decoded once: header names lowercase, body as the exact raw bytes the sender
/// signed (base64 already undone), query values URL-decoded.
#[derive(Debug, Clone, Default)]
pub struct InboundRequest {
    pub method: String,
    /// `rawPath` as received, e.g. `/webhooks/typeform`.
    pub path: String,
    pub raw_query: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// `https://{domainName}{rawPath}?{rawQueryString}`: what HubSpot signs.
    pub url: String,
    /// When API Gateway received the request (`requestContext.timeEpoch`, in seconds under
    /// `cargo lambda watch`: see `lambda_time`), else now.
    pub received_at: DateTime<Utc>,
    pub request_id: String,
    pub source_ip: Option<String>,
    /// Path parameters from the route, e.g. `provider` for `/webhooks/{provider}`.
    pub path_params: BTreeMap<String, String>,
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
        let path = req
            .raw_path
            .clone()
            .or_else(|| req.request_context.http.path.clone())
            .unwrap_or_else(|| "/".to_string());
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
            format!("https://{domain}{path}")
        } else {
            format!("https://{domain}{path}?{raw_query}")
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
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
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

/// A response under construction; headers are added by the caller (e.g. CORS).
pub fn json_response<T: Serialize>(status: u16, body: &T) -> ApiGatewayV2httpResponse {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.body = Some(Body::Text(text));
    resp
}

pub fn text_response(
    status: u16,
    content_type: &'static str,
    body: String,
) -> ApiGatewayV2httpResponse {
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    resp.body = Some(Body::Text(body));
    resp
}

pub fn empty_response(status: u16) -> ApiGatewayV2httpResponse {
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp
}

/// `303 See Other` to a thank-you page: what a browser posting a plain HTML form expects.
pub fn redirect_response(location: &str) -> ApiGatewayV2httpResponse {
    let mut resp = empty_response(303);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers.insert(http::header::LOCATION, v);
    }
    resp
}

/// Reads a response body back as text (tests and local tools).
pub fn body_text(resp: &ApiGatewayV2httpResponse) -> String {
    match &resp.body {
        Some(Body::Text(t)) => t.clone(),
        Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}
