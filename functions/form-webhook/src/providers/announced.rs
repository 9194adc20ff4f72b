//! Leads a webhook only announces by id (Meta's `leadgen_id`, LinkedIn's lead response URN):
//! each is fetched from the platform's API on its own, and the platform's answer is sorted into
//! what the delivery does next (lib.rs, `batch`):
//!
//! | platform answer | [`FetchError`] | what happens |
//! |---|---|---|
//! | the lead | (none) | stored at once |
//! | unknown or deleted lead (HTTP 404, Graph error 100) | `Gone` | a `lead_gone` record with the ids, the delivery goes on |
//! | token expired or lacks permission (401, 403, Graph 190, 102, 10, 200-299) | `Auth` | the delivery is quarantined as `platform_auth_failed`, 2xx |
//! | 5xx, 429, Graph rate limits and temporary errors, timeouts, connection failures | `Transient` | 5xx after the others are stored: the platform retries, only the leads not stored yet are fetched again |
//! | anything else (another 4xx, an unreadable 2xx) | `Rejected` | the delivery is quarantined for replay, 2xx |

use std::collections::BTreeMap;

use leadflow::model::DeliveryKey;
use serde_json::Value;

use super::platform_api::ApiError;
use super::{facebook, linkedin};

/// One lead a webhook announced, with what is needed to fetch it.
#[derive(Debug, Clone)]
pub struct AnnouncedLead {
    /// The delivery key the lead is stored under: the platform's own lead id.
    pub delivery: DeliveryKey,
    /// The platform's ids (lead, form, page, ad...): all a `lead_gone` record keeps.
    pub ids: BTreeMap<String, String>,
    pub(crate) source: Source,
}

/// The platform-specific part of an announcement.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Meta(facebook::Announced),
    LinkedIn(linkedin::Announced),
}

impl AnnouncedLead {
    /// The platform's id of the lead.
    pub fn platform_id(&self) -> &str {
        self.delivery.as_str()
    }
}

/// A lead the platform says was withdrawn (LinkedIn `leadAction: DELETED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawnLead {
    pub delivery: DeliveryKey,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Why a lead could not be fetched, sorted by what the delivery must do about it. Messages
/// carry no token and no personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the platform has no such lead (HTTP {status}{})", code_text(*code))]
    Gone {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    #[error("the platform refused our token (HTTP {status}{})", code_text(*code))]
    Auth { status: u16, code: Option<i64> },
    #[error("{0}")]
    Transient(String),
    #[error("the platform refused the request (HTTP {status}{})", code_text(*code))]
    Rejected { status: u16, code: Option<i64> },
}

fn code_text(code: Option<i64>) -> String {
    code.map(|c| format!(", error code {c}"))
        .unwrap_or_default()
}

/// Longest platform error message kept on a `lead_gone` record.
const MAX_MESSAGE_CHARS: usize = 300;

/// A platform error message, cut to a length fit for a record.
pub(crate) fn short_message(message: Option<&str>) -> String {
    message
        .unwrap_or_default()
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

/// The access token a platform API call needs; without one configured every lead is an
/// authorization failure (quarantined, replayable once it is set).
pub(crate) fn required_token(token: &super::Secret) -> Result<&str, FetchError> {
    token.get().ok_or(FetchError::Auth {
        status: 0,
        code: None,
    })
}

/// The status and error body of a refusal; what is not a refusal is sorted here already
/// (no answer or a broken connection may pass; an unusable 2xx or URL will not).
fn refusal(e: ApiError) -> Result<(u16, Option<Value>), FetchError> {
    match e {
        ApiError::Status { status, body } => Ok((status, body)),
        ApiError::BadUrl | ApiError::BadJson(_) => Err(FetchError::Rejected {
            status: 200,
            code: None,
        }),
        other => Err(FetchError::Transient(other.to_string())),
    }
}

/// Graph API errors: `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`,
/// sorted by Meta's documented codes (Graph API "Handling Errors").
pub(crate) fn classify_graph(e: ApiError) -> FetchError {
    let (status, body) = match refusal(e) {
        Ok(r) => r,
        Err(sorted) => return sorted,
    };
    let error = body.as_ref().and_then(|b| b.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    match (status, code) {
        // 190: access token expired or invalidated; 102: session key invalid; 10 and 200-299:
        // a permission the token lacks (leads_retrieval, pages_manage_ads...).
        (401 | 403, _) | (_, Some(190 | 102 | 10 | 200..=299)) => FetchError::Auth { status, code },
        // 1, 2: unknown / temporary errors; 4, 17, 32, 613, 80000-80014: rate limits.
        (429 | 500..=599, _) | (_, Some(1 | 2 | 4 | 17 | 32 | 341 | 613 | 80_000..=80_014)) => {
            FetchError::Transient(format!(
                "graph api answered HTTP {status}{}",
                code_text(code)
            ))
        }
        // 100 with subcode 33: "Object with ID ... does not exist, cannot be loaded due to
        // missing permissions, or does not support this operation": a deleted lead, or the
        // dashboard Test button's made-up ids.
        (404, _) | (_, Some(100)) => FetchError::Gone {
            status,
            code,
            message: short_message(message),
        },
        _ => FetchError::Rejected { status, code },
    }
}

/// LinkedIn REST errors: `{"status", "serviceErrorCode", "code", "message"}`, sorted by status.
pub(crate) fn classify_linkedin(e: ApiError) -> FetchError {
    let (status, body) = match refusal(e) {
        Ok(r) => r,
        Err(sorted) => return sorted,
    };
    let code = body
        .as_ref()
        .and_then(|b| b.get("serviceErrorCode"))
        .and_then(Value::as_i64);
    let message = body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str);
    match status {
        401 | 403 => FetchError::Auth { status, code },
        404 | 410 => FetchError::Gone {
            status,
            code,
            message: short_message(message),
        },
        429 | 500..=599 => FetchError::Transient(format!(
            "linkedin api answered HTTP {status}{}",
            code_text(code)
        )),
        _ => FetchError::Rejected { status, code },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(status: u16, body: Value) -> ApiError {
        ApiError::Status {
            status,
            body: Some(body),
        }
    }

    #[test]
    fn graph_answers_are_sorted_by_code() {
        let gone = status(
            400,
            json!({"error": {"message": "Unsupported get request. Object with ID '444444444444' does not exist", "code": 100, "error_subcode": 33}}),
        );
        assert!(matches!(
            classify_graph(gone),
            FetchError::Gone {
                code: Some(100),
                ..
            }
        ));
        assert!(matches!(
            classify_graph(status(404, json!({}))),
            FetchError::Gone { .. }
        ));
        let expired = status(
            400,
            json!({"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190, "error_subcode": 463}}),
        );
        assert!(matches!(
            classify_graph(expired),
            FetchError::Auth {
                code: Some(190),
                ..
            }
        ));
        assert!(matches!(
            classify_graph(status(403, json!({"error": {"code": 10}}))),
            FetchError::Auth { .. }
        ));
        for transient in [
            status(500, json!({"error": {"code": 2}})),
            status(400, json!({"error": {"code": 17}})),
            status(429, json!({})),
        ] {
            assert!(matches!(
                classify_graph(transient),
                FetchError::Transient(_)
            ));
        }
        assert!(matches!(
            classify_graph(ApiError::Timeout(std::time::Duration::from_secs(1))),
            FetchError::Transient(_)
        ));
        assert!(matches!(
            classify_graph(status(400, json!({"error": {"code": 803}}))),
            FetchError::Rejected { .. }
        ));
        assert!(matches!(
            classify_graph(ApiError::BadJson("x".into())),
            FetchError::Rejected { .. }
        ));
    }

    #[test]
    fn linkedin_answers_are_sorted_by_status() {
        let s = |code| status(code, json!({"status": code, "message": "m"}));
        assert!(matches!(classify_linkedin(s(401)), FetchError::Auth { .. }));
        assert!(matches!(classify_linkedin(s(403)), FetchError::Auth { .. }));
        assert!(matches!(classify_linkedin(s(404)), FetchError::Gone { .. }));
        assert!(matches!(
            classify_linkedin(s(503)),
            FetchError::Transient(_)
        ));
        assert!(matches!(
            classify_linkedin(s(429)),
            FetchError::Transient(_)
        ));
        assert!(matches!(
            classify_linkedin(s(400)),
            FetchError::Rejected { .. }
        ));
    }

    #[test]
    fn messages_are_bounded() {
        let long = "x".repeat(5_000);
        assert_eq!(
            short_message(Some(&long)).chars().count(),
            MAX_MESSAGE_CHARS
        );
        assert_eq!(short_message(None), "");
    }
}
