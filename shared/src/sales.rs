//! Sales events reported back by sales (lead-api `POST /leads/{id}/events`) and what each does to
//! a lead. Pure: the store applies the resulting [`LeadChange`] conditionally.
//!
//! | event | effect |
//! |---|---|
//! | `contacted` | first outreach time (kept once: time to first touch is measured to it) |
//! | `sql` | stage SQL (forward only), `sql_at` |
//! | `won` | stage customer (forward only), `customer_at`, optional deal value |
//! | `lost` | `lost_at`, reason; the stage stays where it was (it only moves forward) |
//! | `unsubscribe` | consent withdrawn: do-not-contact on the given channels (default all) |

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{Lead, Stage};

crate::named_enum! {
    pub enum SalesEventKind {
        Contacted = "contacted", Sql = "sql", Won = "won", Lost = "lost",
        Unsubscribe = "unsubscribe",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SalesEvent {
    /// The caller's id for the event: the same id twice is applied once.
    pub event_id: String,
    pub kind: SalesEventKind,
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    pub reason: Option<String>,
    pub channels: Vec<String>,
}

#[derive(Deserialize)]
struct Body {
    event_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    at: Option<String>,
    value: Option<f64>,
    reason: Option<String>,
    channels: Option<Vec<String>>,
}

const CHANNELS: &[&str] = &["all", "email", "phone", "sms", "ads"];

/// The largest deal `value` accepted: beyond any currency's plausible deal, and far inside
/// what DynamoDB stores (numbers up to 1e126; a larger one is refused by the store for good).
pub const MAX_VALUE: f64 = 1e15;

/// The smallest non-zero `value` accepted: a millionth of a currency unit (DynamoDB refuses
/// magnitudes below 1e-130 as an underflow; such a value is no amount anyway).
pub const MIN_NONZERO_VALUE: f64 = 1e-6;

/// Why a sales event was refused; every variant names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SalesError {
    /// The body is not an event object (`invalid_json`, field `body`).
    #[error("body is not a valid event: {0}")]
    Unreadable(String),
    /// A required field is absent (`missing_field`).
    #[error("{message}")]
    Missing {
        field: &'static str,
        message: &'static str,
    },
    /// A field has a value outside what it takes (`invalid_value`).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl SalesError {
    pub fn code(&self) -> &'static str {
        match self {
            SalesError::Unreadable(_) => "invalid_json",
            SalesError::Missing { .. } => "missing_field",
            SalesError::Invalid { .. } => "invalid_value",
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            SalesError::Unreadable(_) => "body",
            SalesError::Missing { field, .. } | SalesError::Invalid { field, .. } => field,
        }
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> SalesError {
        SalesError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl SalesEvent {
    /// Reads and validates the JSON body; every error names its field.
    pub fn from_json(body: &[u8], now: DateTime<Utc>) -> Result<SalesEvent, SalesError> {
        let b: Body =
            serde_json::from_slice(body).map_err(|e| SalesError::Unreadable(e.to_string()))?;
        let event_id = b
            .event_id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or(SalesError::Missing {
                field: "event_id",
                message: "event_id (1-128 chars) is required",
            })?;
        let kind_s = b.kind.ok_or(SalesError::Missing {
            field: "type",
            message: "type is required",
        })?;
        let kind = SalesEventKind::parse(&kind_s).ok_or_else(|| {
            SalesError::invalid(
                "type",
                "type must be one of contacted, sql, won, lost, unsubscribe",
            )
        })?;
        let at = match b.at {
            None => now,
            Some(t) => DateTime::parse_from_rfc3339(&t)
                .map_err(|_| SalesError::invalid("at", "at must be an RFC 3339 timestamp"))?
                .with_timezone(&Utc),
        };
        if let Some(v) = b.value {
            // Checked here, not left to the store: an out-of-range number is a permanent
            // DynamoDB refusal (500), never the caller's 422.
            if !v.is_finite() || !(v == 0.0 || (MIN_NONZERO_VALUE..=MAX_VALUE).contains(&v)) {
                return Err(SalesError::invalid(
                    "value",
                    "value must be 0 or a number from 0.000001 to 1000000000000000",
                ));
            }
        }
        let channels = b.channels.unwrap_or_else(|| vec!["all".to_string()]);
        if let Some(bad) = channels.iter().find(|c| !CHANNELS.contains(&c.as_str())) {
            return Err(SalesError::invalid(
                "channels",
                format!("unknown channel {bad:?}; use all, email, phone, sms, ads"),
            ));
        }
        Ok(SalesEvent {
            event_id,
            kind,
            at,
            value: b.value,
            reason: b.reason.map(|r| r.chars().take(500).collect()),
            channels,
        })
    }
}

/// The attribute changes an event makes to a lead (absent = unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadChange {
    pub stage: Option<Stage>,
    pub sql_at: Option<DateTime<Utc>>,
    pub customer_at: Option<DateTime<Utc>>,
    pub first_contacted_at: Option<DateTime<Utc>>,
    pub lost_at: Option<DateTime<Utc>>,
    pub lost_reason: Option<String>,
    pub won_value: Option<f64>,
    pub do_not_contact: Vec<String>,
    pub withdraw_consent: bool,
}

/// What `event` does to `lead`. Stages only move forward; the first outreach is kept.
pub fn apply(lead: &Lead, event: &SalesEvent) -> LeadChange {
    let mut c = LeadChange::default();
    let forward = |to: Stage| (lead.stage < to).then_some(to);
    match event.kind {
        SalesEventKind::Contacted => {
            if lead.sales.first_contacted_at.is_none() {
                c.first_contacted_at = Some(event.at);
            }
        }
        SalesEventKind::Sql => {
            c.stage = forward(Stage::Sql);
            if c.stage.is_some() {
                c.sql_at = Some(event.at);
            }
        }
        SalesEventKind::Won => {
            c.stage = forward(Stage::Customer);
            if c.stage.is_some() {
                c.customer_at = Some(event.at);
                // A lead won straight from MQL went through SQL at the same moment.
                if lead.sales.sql_at.is_none() {
                    c.sql_at = Some(event.at);
                }
            }
            c.won_value = event.value;
        }
        SalesEventKind::Lost => {
            c.lost_at = Some(event.at);
            c.lost_reason = event.reason.clone();
        }
        SalesEventKind::Unsubscribe => {
            c.do_not_contact = event.channels.clone();
            c.withdraw_consent = event.channels.iter().any(|ch| ch == "all" || ch == "email");
        }
    }
    c
}
