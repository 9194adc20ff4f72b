//! Every error an HTTP function can answer with, and the one place that maps them to a status.
//! The domain answers in its own errors ([`NormalizeError`], [`SalesError`], [`IngestError`],
//! [`StoreError`], [`SignatureError`]); they become answers here, through `From`.
//!
//! The body is always `{"error": {"code", "message", "field"?}}` so callers can script against
//! `code` and show `message`.

use http::HeaderValue;
use serde_json::json;

use super::response::{json_response, Response};
use crate::ingest::IngestError;
use crate::normalize::NormalizeError;
use crate::sales::SalesError;
use crate::signature::SignatureError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed request: the body cannot be read as what its content type says.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// Authentication failed (bad, missing or stale signature; wrong key).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("content type {0} is not supported")]
    UnsupportedMediaType(String),
    /// Well-formed but unusable: a missing contact, an invalid email...
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("conflict: {message}")]
    Conflict { code: &'static str, message: String },
    /// Storage failed. Transient failures (throttling, timeouts, 5xx) are 503 so the sender
    /// retries later; permanent ones (DynamoDB rejected the write) are 500 without
    /// `Retry-After`: a retry would fail the same way. Callers that can do better (quarantine a
    /// platform delivery, 422 a web form) check [`StoreError::is_transient`] first.
    #[error("storage failed: {0}")]
    Storage(#[source] StoreError),
    /// A dependency (e.g. a platform API we fetch lead data from) failed: 502, the sender retries.
    #[error("upstream failure: {0}")]
    Upstream(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::IdempotencyKeyReused => AppError::Unprocessable {
                code: "idempotency_key_reused",
                field: Some("Idempotency-Key".to_string()),
                message: "this Idempotency-Key was already used for a different submission \
                          of this form; use a new key for new content"
                    .to_string(),
            },
            other => AppError::Storage(other),
        }
    }
}

impl From<NormalizeError> for AppError {
    fn from(e: NormalizeError) -> AppError {
        AppError::Unprocessable {
            code: e.code(),
            field: Some(e.field().to_string()),
            message: e.to_string(),
        }
    }
}

impl From<SalesError> for AppError {
    fn from(e: SalesError) -> AppError {
        let field = Some(e.field().to_string());
        match e {
            SalesError::Unreadable(_) => AppError::BadRequest {
                code: e.code(),
                field,
                message: e.to_string(),
            },
            SalesError::Missing { .. } | SalesError::Invalid { .. } => AppError::Unprocessable {
                code: e.code(),
                field,
                message: e.to_string(),
            },
        }
    }
}

impl From<IngestError> for AppError {
    fn from(e: IngestError) -> AppError {
        match e {
            IngestError::Normalize(e) => e.into(),
            IngestError::Store(e) => e.into(),
        }
    }
}

impl From<SignatureError> for AppError {
    fn from(e: SignatureError) -> AppError {
        let code = match e {
            SignatureError::Missing(_) => "missing_signature",
            SignatureError::Malformed(_) | SignatureError::Mismatch => "invalid_signature",
            SignatureError::Stale => "stale_timestamp",
        };
        AppError::unauthorized(code, e.to_string())
    }
}

impl AppError {
    /// True for failures a later retry of the same request may get past: transient storage
    /// faults and upstream (platform API) failures. Those are answered 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            AppError::Storage(e) => e.is_transient(),
            AppError::Upstream(_) => true,
            _ => false,
        }
    }

    pub fn bad_request(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        AppError::Unprocessable {
            code,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        AppError::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest { .. } => 400,
            AppError::Unauthorized { .. } => 401,
            AppError::Forbidden { .. } => 403,
            AppError::NotFound { .. } => 404,
            AppError::MethodNotAllowed(_) => 405,
            AppError::Conflict { .. } => 409,
            AppError::PayloadTooLarge { .. } => 413,
            AppError::UnsupportedMediaType(_) => 415,
            AppError::Unprocessable { .. } => 422,
            AppError::Upstream(_) => 502,
            AppError::Storage(e) if e.is_transient() => 503,
            AppError::Storage(_) => 500,
        }
    }

    /// The stable machine-readable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Unauthorized { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::NotFound { code, .. }
            | AppError::Unprocessable { code, .. }
            | AppError::Conflict { code, .. } => code,
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Upstream(_) => "upstream_unavailable",
            AppError::Storage(e) if e.is_transient() => "storage_unavailable",
            AppError::Storage(_) => "storage_rejected",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::BadRequest { field, .. } | AppError::Unprocessable { field, .. } => {
                field.as_deref()
            }
            AppError::PayloadTooLarge { .. } => Some("body"),
            AppError::UnsupportedMediaType(_) => Some("content-type"),
            _ => None,
        }
    }

    /// The JSON answer. Storage and upstream details stay in the logs, not in the answer.
    pub fn to_response(&self) -> Response {
        let message = match self {
            AppError::Storage(e) if e.is_transient() => {
                "storage is unavailable, retry later".to_string()
            }
            AppError::Storage(_) => {
                "the store rejected this data permanently; retrying will not help".to_string()
            }
            AppError::Upstream(_) => "an upstream service failed, retry later".to_string(),
            other => other.to_string(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let Some(field) = self.field() {
            error["field"] = json!(field);
        }
        let mut resp = json_response(self.status(), &json!({ "error": error }));
        if self.is_retryable() {
            resp.headers
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_errors_map_to_distinct_codes() {
        let code = |e: SignatureError| AppError::from(e).code();
        assert_eq!(code(SignatureError::Missing("x")), "missing_signature");
        assert_eq!(code(SignatureError::Malformed("x")), "invalid_signature");
        assert_eq!(code(SignatureError::Mismatch), "invalid_signature");
        assert_eq!(code(SignatureError::Stale), "stale_timestamp");
        assert_eq!(AppError::from(SignatureError::Stale).status(), 401);
    }

    #[test]
    fn domain_errors_keep_their_code_and_field() {
        let e = AppError::from(NormalizeError::MissingContact);
        assert_eq!(
            (e.status(), e.code(), e.field()),
            (422, "missing_contact", Some("email,phone"))
        );
        let e = AppError::from(SalesError::Unreadable("x".into()));
        assert_eq!(
            (e.status(), e.code(), e.field()),
            (400, "invalid_json", Some("body"))
        );
        let e = AppError::from(IngestError::Store(StoreError::IdempotencyKeyReused));
        assert_eq!((e.status(), e.code()), (422, "idempotency_key_reused"));
        let e = AppError::from(StoreError::Contention { attempts: 3 });
        assert_eq!((e.status(), e.code()), (503, "storage_unavailable"));
        assert_eq!(e.to_response().headers["retry-after"], "30");
    }
}
