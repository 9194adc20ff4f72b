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

use crate::error::AppError;
use crate::model::{Lead, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesEventKind {
    Contacted,
    Sql,
    Won,
    Lost,
    Unsubscribe,
}

impl SalesEventKind {
    pub fn parse(s: &str) -> Option<SalesEventKind> {
        Some(match s {
            "contacted" => SalesEventKind::Contacted,
            "sql" => SalesEventKind::Sql,
            "won" => SalesEventKind::Won,
            "lost" => SalesEventKind::Lost,
            "unsubscribe" => SalesEventKind::Unsubscribe,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SalesEventKind::Contacted => "contacted",
            SalesEventKind::Sql => "sql",
            SalesEventKind::Won => "won",
            SalesEventKind::Lost => "lost",
            SalesEventKind::Unsubscribe => "unsubscribe",
        }
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

impl SalesEvent {
    /// Reads and validates the JSON body; every error names its field.
    pub fn from_json(body: &[u8], now: DateTime<Utc>) -> Result<SalesEvent, AppError> {
        let b: Body = serde_json::from_slice(body).map_err(|e| {
            AppError::bad_request(
                "invalid_json",
                "body",
                format!("body is not a valid event: {e}"),
            )
        })?;
        let event_id = b
            .event_id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or_else(|| {
                AppError::unprocessable(
                    "missing_field",
                    "event_id",
                    "event_id (1-128 chars) is required",
                )
            })?;
        let kind_s = b
            .kind
            .ok_or_else(|| AppError::unprocessable("missing_field", "type", "type is required"))?;
        let kind = SalesEventKind::parse(&kind_s).ok_or_else(|| {
            AppError::unprocessable(
                "invalid_value",
                "type",
                "type must be one of contacted, sql, won, lost, unsubscribe",
            )
        })?;
        let at = match b.at {
            None => now,
            Some(t) => DateTime::parse_from_rfc3339(&t)
                .map_err(|_| {
                    AppError::unprocessable(
                        "invalid_value",
                        "at",
                        "at must be an RFC 3339 timestamp",
                    )
                })?
                .with_timezone(&Utc),
        };
        if let Some(v) = b.value {
            if !v.is_finite() || v < 0.0 {
                return Err(AppError::unprocessable(
                    "invalid_value",
                    "value",
                    "value must be a non-negative number",
                ));
            }
        }
        let channels = b.channels.unwrap_or_else(|| vec!["all".to_string()]);
        if let Some(bad) = channels.iter().find(|c| !CHANNELS.contains(&c.as_str())) {
            return Err(AppError::unprocessable(
                "invalid_value",
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
