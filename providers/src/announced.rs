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

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use leadflow::model::{DeliveryKey, Submission};
use serde_json::Value;

use crate::platform_api::ApiError;

/// One lead a webhook announced, with what its platform needs to fetch it.
#[derive(Clone)]
pub struct AnnouncedLead {
    /// The platform that announced it (its [`crate::Provider::fetch`] reads it).
    pub provider: &'static str,
    /// The delivery key the lead is stored under: the platform's own lead id.
    pub delivery: DeliveryKey,
    /// The platform's ids (lead, form, page, ad...): all a `lead_gone` record keeps.
    pub ids: BTreeMap<String, String>,
    /// The platform's own announcement, read back by its `fetch`.
    detail: Arc<dyn Any + Send + Sync>,
}

impl AnnouncedLead {
    pub(crate) fn new<T: Any + Send + Sync>(
        provider: &'static str,
        delivery: DeliveryKey,
        ids: BTreeMap<String, String>,
        detail: T,
    ) -> AnnouncedLead {
        AnnouncedLead {
            provider,
            delivery,
            ids,
            detail: Arc::new(detail),
        }
    }

    /// The platform's id of the lead.
    pub fn platform_id(&self) -> &str {
        self.delivery.as_str()
    }

    /// The announcement as its platform made it (`None` for another platform's type).
    /// The announcing platform's own record of the lead. A lead is only ever fetched by the
    /// platform that announced it; any other type is refused.
    pub(crate) fn detail<T: Any>(&self) -> Result<&T, FetchError> {
        self.detail.downcast_ref().ok_or(FetchError::Rejected {
            status: 0,
            code: None,
        })
    }
}

impl std::fmt::Debug for AnnouncedLead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnouncedLead")
            .field("provider", &self.provider)
            .field("delivery", &self.delivery)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
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

pub(crate) fn code_text(code: Option<i64>) -> String {
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

/// What a lead fetch answers.
pub(crate) type Fetched = Result<Submission, FetchError>;

/// The access token a platform API call needs; without one configured every lead is an
/// authorization failure (quarantined, replayable once it is set).
pub(crate) fn required_token(token: Option<&str>) -> Result<&str, FetchError> {
    token.ok_or(FetchError::Auth {
        status: 0,
        code: None,
    })
}

/// The status and error body of a refusal; what is not a refusal is sorted here already
/// (no answer or a broken connection may pass; an unusable 2xx or URL will not).
pub(crate) fn refusal(e: ApiError) -> Result<(u16, Option<Value>), FetchError> {
    match e {
        ApiError::Status { status, body } => Ok((status, body)),
        ApiError::BadUrl | ApiError::BadJson(_) => Err(FetchError::Rejected {
            status: 200,
            code: None,
        }),
        other => Err(FetchError::Transient(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
