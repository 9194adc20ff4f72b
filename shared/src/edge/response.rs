//! Answers as handlers build them; the edge turns them into the API Gateway shape.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;

/// An HTTP answer: status, headers and a text body (every answer here is JSON, HTML or plain
/// text; none is binary).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub status_code: u16,
    pub headers: HeaderMap,
    pub body: Option<String>,
}

impl Response {
    /// The body as text (empty when there is none).
    pub fn body_text(&self) -> &str {
        self.body.as_deref().unwrap_or_default()
    }

    pub(crate) fn into_apigw(self) -> ApiGatewayV2httpResponse {
        let mut resp = ApiGatewayV2httpResponse::default();
        resp.status_code = i64::from(self.status_code);
        resp.headers = self.headers;
        resp.body = self.body.map(Body::Text);
        resp
    }
}

/// A JSON answer; headers are added by the caller (e.g. CORS).
pub fn json_response<T: Serialize>(status: u16, body: &T) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    text_response(status, "application/json", text)
}

pub fn text_response(status: u16, content_type: &'static str, body: String) -> Response {
    let mut resp = empty_response(status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    resp.body = Some(body);
    resp
}

pub fn empty_response(status: u16) -> Response {
    Response {
        status_code: status,
        ..Response::default()
    }
}

/// `303 See Other` to a thank-you page: what a browser posting a plain HTML form expects.
pub fn redirect_response(location: &str) -> Response {
    let mut resp = empty_response(303);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers.insert(http::header::LOCATION, v);
    }
    resp
}

/// Reads an API Gateway answer's body back as text (tests and local tools).
pub fn body_text(resp: &ApiGatewayV2httpResponse) -> String {
    match &resp.body {
        Some(Body::Text(t)) => t.clone(),
        Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}
