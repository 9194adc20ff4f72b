//! Every key of the single lead table, in one place (docs/data-model.md mirrors this file).
//!
//! | item          | pk                          | sk                          | gsi1pk              | gsi1sk                    |
//! |---------------|-----------------------------|-----------------------------|---------------------|---------------------------|
//! | lead          | `LEAD#<lead_id>`            | `#LEAD`                     | `LEADS#<yyyy-mm-dd>`| `<created_at>#<lead_id>`  |
//! | touchpoint    | `LEAD#<lead_id>`            | `TP#<occurred_at>#<touch>`  | `TOUCHES#<date>`    | `<occurred_at>#<touch>`   |
//! | identity      | `EMAIL#<sha256>` / `PHONE#<sha256>` | `#ID`               |                     |                           |
//! | delivery      | `DELIVERY#<provider>#<key>` | `#DELIVERY`                 |                     |                           |
//! | quarantine    | `QUARANTINE#<id>`           | `#Q`                        | `QUARANTINE`        | `<received_at>#<id>`      |
//! | consent       | `LEAD#<lead_id>`            | `CONSENT#<at>#<touch>`      |                     |                           |
//! | lead gone     | `GONE#<provider>#<lead id>` | `#GONE`                     | `LEADGONE`          | `<received_at>#<pk>`      |
//! | announcement  | `ANNOUNCED#<lead_id>`       | `V#<version, 20 digits>`    |                     |                           |
//! | q. filing     | `QREF#<identity pk>`        | `Q#<quarantine id>`         |                     |                           |
//! | suppression   | `SUPPRESS#<hmac>`           | `#SUPPRESS`                 |                     |                           |
//! | erasure       | `ERASURE#<lead_id>`         | `#RECEIPT`                  |                     |                           |
//! | import        | `IMPORT#<file id>`          | `#IMPORT`, `ERR#<row>`      |                     |                           |
//!
//! Touchpoints share their lead's partition: one Query reads a lead with its history, and a
//! parallel Scan segment sees a lead and its touchpoints together (segments split by pk).
//!
//! Days in keys (`<yyyy-mm-dd>`, `<date>`, `<day>`) are reporting days: local dates in
//! `REPORT_TIME_ZONE` (`crate::report_zone`); timestamps are UTC.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
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

pub fn lead_pk(lead_id: &str) -> String {
    format!("LEAD#{lead_id}")
}

pub fn touch_sk(occurred_at: DateTime<Utc>, touch_id: &str) -> String {
    format!("{TOUCH_SK_PREFIX}{}#{touch_id}", ts(occurred_at))
}

/// The day partitions are reporting days: local dates in `REPORT_TIME_ZONE`
/// ([`crate::report_zone::ReportZone::day`]), computed by the store, never here.
pub fn leads_day_pk(day: NaiveDate) -> String {
    format!("LEADS#{day}")
}

pub fn touches_day_pk(day: NaiveDate) -> String {
    format!("TOUCHES#{day}")
}

/// The sharded day index (gsi2): a day's leads and touches spread over `DAY_SHARDS`
/// partitions, so a flood of one day's writes does not land on one index partition (about
/// 1,000 WCU/s each, and a throttled index throttles the base table). The rollup queries every
/// shard. gsi2 projects only what the rollup reads (`GSI2_PROJECTED` in the template).
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const DAY_SHARDS: u32 = 16;
/// What gsi2 projects besides the keys: exactly the attributes the rollup reads
/// (`metrics::day_lead_from`, `day_touch_from`); the template's `NonKeyAttributes` must match.
pub const DAY_INDEX_PROJECTION: [&str; 12] = [
    "source",
    "channel",
    "campaign",
    "is_test",
    "direction",
    "stage",
    "score",
    "temperature",
    "created_at",
    "first_contacted_at",
    "kind",
    REVIEW_RATING,
];

/// A review touchpoint's rating as a top-level attribute (gsi2 cannot project a map's key).
pub const REVIEW_RATING: &str = "review_rating";

/// The shard of an item (0..DAY_SHARDS), from a hash of its id: stable, so a backfill and a
/// live write agree, and uniform over UUIDv7 ids (whose leading bytes are a timestamp).
pub fn day_shard(id: &str) -> u32 {
    shard_of(id, DAY_SHARDS)
}

fn shard_of(id: &str, shards: u32) -> u32 {
    let h = Sha256::digest(id.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % shards
}

pub fn leads_day_shard_pk(day: &str, shard: u32) -> String {
    format!("LEADS#{day}#{shard:02}")
}

pub fn touches_day_shard_pk(day: &str, shard: u32) -> String {
    format!("TOUCHES#{day}#{shard:02}")
}

/// Which day partition an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayItem {
    /// A lead, on its created day.
    Lead,
    /// A touchpoint, on the day it occurred.
    Touch,
}

/// The day-index keys of a lead (keyed by its lead id) or a touchpoint (by its touch id) at
/// `at`, on its reporting `day` (`Store::day_keys` gives them): gsi1 `LEADS#<day>` /
/// `TOUCHES#<day>` (what the version before issue 13 read; see [`day_index_keys_written`] for
/// what is written now) and gsi2 `LEADS#<day>#<shard>` / `TOUCHES#<day>#<shard>`, both sorted
/// by `<at>#<id>` (UTC, so a day's items sort by time whatever the zone).
pub fn day_index_keys(
    kind: DayItem,
    day: NaiveDate,
    at: DateTime<Utc>,
    id: &str,
) -> [(&'static str, String); 4] {
    let sort = format!("{}#{id}", ts(at));
    let d = day.to_string();
    let (old, new) = match kind {
        DayItem::Lead => (leads_day_pk(day), leads_day_shard_pk(&d, day_shard(id))),
        DayItem::Touch => (touches_day_pk(day), touches_day_shard_pk(&d, day_shard(id))),
    };
    [
        (GSI1_PK, old),
        (GSI1_SK, sort.clone()),
        (GSI2_PK, new),
        (GSI2_SK, sort),
    ]
}

/// The day-index keys a writer puts on a new item: a lead's both (the dashboard's call list
/// still reads gsi1 `LEADS#<day>`), a touchpoint's gsi2 keys only. Nothing reads gsi1
/// `TOUCHES#<day>` once `leadflow backfill` has completed (the rollup then reads gsi2), and a
/// touch copied whole into gsi1 (its projection is ALL) cost as many index write units as the
/// touch has KB: a touch with long answers doubled its cost for nothing. Upgrading therefore
/// needs the backfill completed first (docs/data-model.md).
pub fn day_index_keys_written(
    kind: DayItem,
    day: NaiveDate,
    at: DateTime<Utc>,
    id: &str,
) -> impl Iterator<Item = (&'static str, String)> {
    let skip = match kind {
        DayItem::Lead => 0,
        DayItem::Touch => 2,
    };
    day_index_keys(kind, day, at, id).into_iter().skip(skip)
}

/// Written by `leadflow backfill` once every lead and touch carries its gsi2 keys: from then
/// on the rollup reads gsi2 (before, gsi1), so readers switch without a second deployment.
pub const MIGRATION_PK: &str = "MIGRATION#DAYKEYS";
pub const MIGRATION_SK: &str = "#STATE";

/// The zone the day keys are in, and the progress of rewriting them for a new
/// `REPORT_TIME_ZONE` (`leadflow backfill`, `store/migration.rs`): `MIGRATION#DAYZONE` /
/// `#STATE`. Absent: the keys are UTC days (every version before issue 20 wrote those).
pub const ZONE_MIGRATION_PK: &str = "MIGRATION#DAYZONE";

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

/// Provider ids can be long or contain anything: ids over 128 bytes are hashed. A client's
/// idempotency key is always hashed together with its form (its scope), so the same key sent to
/// two forms is two deliveries, and nothing a client chose appears in a key.
pub fn delivery_pk(provider: &str, key: &DeliveryKey) -> String {
    let (kind, id) = match key {
        DeliveryKey::Platform(raw) => ("id", bounded_id(raw)),
        DeliveryKey::BodyHash(raw) => ("body", bounded_id(raw)),
        DeliveryKey::Idempotency { scope, key, .. } => (
            "idem",
            sha256_hex(&format!("{}:{scope}\u{0}{key}", scope.len())),
        ),
    };
    format!("DELIVERY#{provider}#{kind}#{id}")
}

fn bounded_id(raw: &str) -> String {
    if raw.len() > 128 {
        sha256_hex(raw)
    } else {
        raw.to_string()
    }
}

/// A lead's consent history, in its partition: `CONSENT#<at>#<touch_id>` sorts by time.
pub const CONSENT_SK_PREFIX: &str = "CONSENT#";

pub fn consent_sk(at: DateTime<Utc>, touch_id: &str) -> String {
    format!("{CONSENT_SK_PREFIX}{}#{touch_id}", ts(at))
}

/// A lead the platform no longer has: `GONE#<provider>#<platform lead id>` (ids over 128 bytes
/// hashed) / `#GONE`, listed through gsi1 `LEADGONE`.
pub const LEAD_GONE_SK: &str = "#GONE";
pub const LEAD_GONE_GSI: &str = "LEADGONE";

pub fn lead_gone_pk(provider: &str, platform_lead_id: &str) -> String {
    format!("GONE#{provider}#{}", bounded_id(platform_lead_id))
}

pub fn quarantine_pk(id: &str) -> String {
    format!("QUARANTINE#{id}")
}

/// Files a quarantined delivery under an identity its body contains, so erasing that person
/// finds it: `QREF#<identity marker key>` / `Q#<quarantine id>` (same TTL as the delivery).
/// Keyed like the identity marker (which every live person already has), because erasure knows
/// a lead's past addresses only by their marker keys; deleted with the markers at erasure.
pub fn quarantine_ref_pk(identity_pk: &str) -> String {
    format!("QREF#{identity_pk}")
}

pub fn quarantine_ref_sk(quarantine_id: &str) -> String {
    format!("Q#{quarantine_id}")
}

/// A suppressed person: `SUPPRESS#<HMAC(pepper, identity)>` / `#SUPPRESS`. Keyed with the
/// secret pepper, so the entry cannot be matched to an address without it.
pub const SUPPRESSION_SK: &str = "#SUPPRESS";

pub fn suppression_pk(keyed_identity: &str) -> String {
    format!("SUPPRESS#{keyed_identity}")
}

/// An erasure's progress and then its receipt (audit trail, no personal data):
/// `ERASURE#<lead_id>` / `#RECEIPT`.
pub const ERASURE_SK: &str = "#RECEIPT";

pub fn erasure_pk(lead_id: &str) -> String {
    format!("ERASURE#{lead_id}")
}

/// A list import (lead-import): `IMPORT#<file id>` (SHA-256 of bucket, key and version) with
/// its checkpoint `#IMPORT` and its row errors, one item per chunk, `ERR#<first row, 12 digits>`
/// (sorted by row).
pub const IMPORT_SK: &str = "#IMPORT";
pub const IMPORT_ERRORS_SK_PREFIX: &str = "ERR#";

pub fn import_pk(file_id: &str) -> String {
    format!("IMPORT#{file_id}")
}

pub fn import_errors_sk(first_row: u64) -> String {
    format!("{IMPORT_ERRORS_SK_PREFIX}{first_row:012}")
}

/// Time-ordered unique ids (UUIDv7): lead ids, touch ids, quarantine ids.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A sales event of a lead, in the lead's partition: `EV#<event_id>` (idempotency per event id).
pub const SALES_EVENT_SK_PREFIX: &str = "EV#";

pub fn sales_event_sk(event_id: &str) -> String {
    format!("{SALES_EVENT_SK_PREFIX}{event_id}")
}

/// Ad spend of one day: `SPEND#<day>` / `<source>#<campaign>#<currency>` (a second post
/// replaces; before issue 13 the key had no currency).
pub fn spend_pk(day: &str) -> String {
    format!("SPEND#{day}")
}

pub fn spend_sk(source: &str, campaign: &str, currency: &str) -> String {
    format!("{source}#{campaign}#{currency}")
}

/// Metric rollups written before issue 13: `ROLLUP#<day>` / `<source>#<channel>#<campaign>`.
/// A recomputed day deletes them (its rows move to the month partition).
pub fn legacy_rollup_pk(day: &str) -> String {
    format!("ROLLUP#{day}")
}

/// Metric rollups, one partition per month: `ROLLUPM#<yyyy-mm>` /
/// `<day>#<source>#<channel>#<campaign>`. A 400-day read is one Query per month (at most 15
/// months), not one per day.
pub fn rollup_pk(day: &str) -> String {
    format!("ROLLUPM#{}", day.get(..7).unwrap_or(day))
}

pub fn rollup_sk(day: &str, source: &str, channel: &str, campaign: &str) -> String {
    format!("{day}#{source}#{channel}#{campaign}")
}

/// Referral code -> lead: `REFCODE#<code>` / `#REFCODE` (codes are URL-safe base64).
pub const REFERRAL_CODE_SK: &str = "#REFCODE";

pub fn referral_code_pk(code: &str) -> String {
    format!("REFCODE#{code}")
}

/// A referral given, in the referrer's partition: `LEAD#<referrer>` / `REF#<referral key>`.
pub const REFERRAL_SK_PREFIX: &str = "REF#";

pub fn referral_sk(referral_key: &str) -> String {
    format!("{REFERRAL_SK_PREFIX}{referral_key}")
}

/// A referral whose referee was erased: re-keyed by the referee's lead id (the referral key
/// was derived from the referee's address), so the referrer's list and credit stay whole.
pub fn erased_referral_sk(referee_lead_id: &str, touch_id: &str) -> String {
    format!("{REFERRAL_SK_PREFIX}erased#{referee_lead_id}#{touch_id}")
}

/// The referral key in a referee touch's delivery marker key (`referral_delivery`), given its
/// referrer.
pub fn referral_key_in_delivery<'a>(
    delivery_pk: &'a str,
    referrer_lead_id: &str,
) -> Option<&'a str> {
    delivery_pk
        .strip_prefix("DELIVERY#referral#id#")?
        .strip_prefix(referrer_lead_id)?
        .strip_prefix('#')
}

/// Marks a referee's conversion as credited to its referrer once: `REFCONV#<referee_lead_id>`,
/// in the referrer's partition.
pub fn referral_conversion_sk(referee_lead_id: &str) -> String {
    format!("REFCONV#{referee_lead_id}")
}

/// A review: `REVIEW#<platform>#<external id>` / `#REVIEW` (ids over 128 bytes are hashed).
pub const REVIEW_SK: &str = "#REVIEW";

pub fn review_pk(platform: &str, external_id: &str) -> String {
    let id = if external_id.len() > 128 {
        sha256_hex(external_id)
    } else {
        external_id.to_string()
    };
    format!("REVIEW#{platform}#{id}")
}

/// Per-platform review aggregate: `REVIEWAGG#<platform>#<shard>` / `#AGG`, one of
/// `REVIEW_AGG_SHARDS` chosen by the review's id, so a bulk import of reviews does not
/// serialize on one item; a read sums the shards and the unsharded `REVIEWAGG#<platform>`
/// written before issue 13 (counts add, so the sum stays exact).
pub const REVIEW_AGG_SK: &str = "#AGG";
pub const REVIEW_AGG_SHARDS: u32 = 8;

pub fn legacy_review_agg_pk(platform: &str) -> String {
    format!("REVIEWAGG#{platform}")
}

pub fn review_agg_pk(platform: &str, external_id: &str) -> String {
    review_agg_shard_pk(platform, shard_of(external_id, REVIEW_AGG_SHARDS))
}

pub fn review_agg_shard_pk(platform: &str, shard: u32) -> String {
    format!("REVIEWAGG#{platform}#{shard}")
}

/// A review's current state in its lead's partition (rating, deleted; no content), written
/// in the review's transaction, so the lead view shows every review as it is now without
/// reading the review items: `LEAD#<lead_id>` / `REVIEW#<platform>#<id>`.
pub const LEAD_REVIEW_SK_PREFIX: &str = "REVIEW#";

pub fn lead_review_sk(platform: &str, external_id: &str) -> String {
    review_pk(platform, external_id)
}

/// Sparse gsi1 partition of reviews flagged for follow-up (rating 2 or less, not deleted).
pub const REVIEW_FOLLOW_UP_GSI: &str = "REVIEWS#FOLLOWUP";

/// A stable, non-reversible key of a value (referral identities).
pub fn hashed(value: &str) -> String {
    sha256_hex(value)
}

/// Every lead partition starts with this (`LEAD#<lead_id>`): rescore's scan keeps only these.
pub const LEAD_PK_PREFIX: &str = "LEAD#";

/// A score change (temperature or stage), in the lead's partition:
/// `LEAD#<lead_id>` / `SCORE#<at>#<id>` (sorts by time).
pub const SCORE_CHANGE_SK_PREFIX: &str = "SCORE#";

pub fn score_change_sk(at: DateTime<Utc>, id: &str) -> String {
    format!("{SCORE_CHANGE_SK_PREFIX}{}#{id}", ts(at))
}

/// Progress of a rescore run: `RESCORE#PROGRESS` / `#RUN` for the scheduled full run,
/// `#SEG#<segment>#<total>` for a segment rescored by hand.
pub const RESCORE_PROGRESS_PK: &str = "RESCORE#PROGRESS";

pub fn rescore_progress_sk(scope: super::RunScope) -> String {
    match scope {
        super::RunScope::Full => "#RUN".to_string(),
        super::RunScope::Segment { segment, total } => format!("#SEG#{segment}#{total}"),
    }
}

/// The stored scoring configuration (overrides the built-in one): `CONFIG#SCORING` / `#CONFIG`.
pub const SCORING_CONFIG_PK: &str = "CONFIG#SCORING";
pub const SCORING_CONFIG_SK: &str = "#CONFIG";

/// The predictive model (see `predict`): `CONFIG#PREDICT` / `#CURRENT` is the model applied at
/// every rescore, `MODEL#<version>` keeps each trained version (expiring after a year), and
/// `#ATTEMPT` the last training run's outcome (trained, or why not).
pub const PREDICT_PK: &str = "CONFIG#PREDICT";
pub const PREDICT_CURRENT_SK: &str = "#CURRENT";
pub const PREDICT_ATTEMPT_SK: &str = "#ATTEMPT";

/// Zero-padded so the versions sort as text.
pub fn predict_model_sk(version: u64) -> String {
    format!("MODEL#{version:010}")
}

/// An announcement of a lead's version by the stream function: `ANNOUNCED#<lead_id>` /
/// `V#<version>` (zero-padded), outside the lead's partition so rescore's scans never read it.
pub fn announcement_pk(lead_id: &str) -> String {
    format!("ANNOUNCED#{lead_id}")
}

pub fn announcement_sk(version: u64) -> String {
    format!("V#{version:020}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;
    use crate::model::Attribution;
    use proptest::prelude::*;

    /// Strings as forms send them: printable, unicode, control characters, junk words, huge.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,40}",
            "[a-zA-Z0-9 ._+@-]{0,60}",
            Just("null".to_string()),
            "\\PC{0,3000}",
            "[\\x00-\\x1f]{0,10}",
        ]
    }

    proptest! {
        #[test]
        fn classification_keys_stay_under_dynamodbs_sort_key_limit(
            source in text(), medium in text(), campaign in text(), referrer in text(),
        ) {
            let a = Attribution {
                utm_source: Some(source), utm_medium: Some(medium),
                utm_campaign: Some(campaign), referrer: Some(referrer), ..Default::default()
            };
            let c = classify(&a, None, None, "form");
            let sk = rollup_sk("2026-11-30", &c.source, c.channel.as_str(), &c.campaign);
            prop_assert!(sk.len() < 1024, "{}", sk.len());
        }
    }
}
