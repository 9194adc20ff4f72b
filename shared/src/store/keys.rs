//! Every key of the single lead table, in one place (docs/data-model.md mirrors this file).
//!
//! | item          | pk                          | sk                          | gsi1pk              | gsi1sk                    |
//! |---------------|-----------------------------|-----------------------------|---------------------|---------------------------|
//! | lead          | `LEAD#<lead_id>`            | `#LEAD`                     | `LEADS#<yyyy-mm-dd>`| `<created_at>#<lead_id>`  |
//! | touchpoint    | `LEAD#<lead_id>`            | `TP#<occurred_at>#<touch>`  | `TOUCHES#<date>`    | `<occurred_at>#<touch>`   |
//! | identity      | `EMAIL#<sha256>` / `PHONE#<sha256>` | `#ID`               |                     |                           |
//! | delivery      | `DELIVERY#<provider>#<key>` | `#DELIVERY`                 |                     |                           |
//! | quarantine    | `QUARANTINE#<id>`           | `#Q`                        | `QUARANTINE`        | `<received_at>#<id>`      |
//!
//! Touchpoints share their lead's partition: one Query reads a lead with its history, and a
//! parallel Scan segment sees a lead and its touchpoints together (segments split by pk).

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::model::{DeliveryKey, IdentityKey};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// The table's TTL attribute (epoch seconds). TTL deletes within days, so reads filter too.
pub const EXPIRES_AT: &str = "expires_at";

pub const LEAD_SK: &str = "#LEAD";
pub const MARKER_SK: &str = "#ID";
pub const DELIVERY_SK: &str = "#DELIVERY";
pub const QUARANTINE_SK: &str = "#Q";
pub const QUARANTINE_GSI: &str = "QUARANTINE";
pub const TOUCH_SK_PREFIX: &str = "TP#";

/// Timestamps in keys and attributes: RFC 3339 UTC with milliseconds, so they sort as text.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

pub fn lead_pk(lead_id: &str) -> String {
    format!("LEAD#{lead_id}")
}

pub fn touch_sk(occurred_at: DateTime<Utc>, touch_id: &str) -> String {
    format!("{TOUCH_SK_PREFIX}{}#{touch_id}", ts(occurred_at))
}

pub fn leads_day_pk(t: DateTime<Utc>) -> String {
    format!("LEADS#{}", day(t))
}

pub fn touches_day_pk(t: DateTime<Utc>) -> String {
    format!("TOUCHES#{}", day(t))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Identity markers are keyed by a hash of the canonical value: the address itself is stored
/// only on the lead item, where it is needed, not in keys that show up in logs and metrics.
pub fn identity_pk(key: &IdentityKey) -> String {
    match key {
        IdentityKey::Email(e) => format!("EMAIL#{}", sha256_hex(e)),
        IdentityKey::Phone(p) => format!("PHONE#{}", sha256_hex(p)),
    }
}

/// Provider ids can be long or contain anything: ids over 128 bytes are hashed.
pub fn delivery_pk(provider: &str, key: &DeliveryKey) -> String {
    let raw = key.as_str();
    let id = if raw.len() > 128 {
        sha256_hex(raw)
    } else {
        raw.to_string()
    };
    let kind = match key {
        DeliveryKey::Platform(_) => "id",
        DeliveryKey::BodyHash(_) => "body",
    };
    format!("DELIVERY#{provider}#{kind}#{id}")
}

pub fn quarantine_pk(id: &str) -> String {
    format!("QUARANTINE#{id}")
}

/// Time-ordered unique ids (UUIDv7): lead ids, touch ids, quarantine ids.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A sales event of a lead, in the lead's partition: `EV#<event_id>` (idempotency per event id).
pub fn sales_event_sk(event_id: &str) -> String {
    format!("EV#{event_id}")
}

/// Ad spend of one day: `SPEND#<day>` / `<source>#<campaign>` (a second post replaces).
pub fn spend_pk(day: &str) -> String {
    format!("SPEND#{day}")
}

pub fn spend_sk(source: &str, campaign: &str) -> String {
    format!("{source}#{campaign}")
}

/// Metric rollups of one day: `ROLLUP#<day>` / `<source>#<channel>#<campaign>`.
pub fn rollup_pk(day: &str) -> String {
    format!("ROLLUP#{day}")
}

pub fn rollup_sk(source: &str, channel: &str, campaign: &str) -> String {
    format!("{source}#{channel}#{campaign}")
}
