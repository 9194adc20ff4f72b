//! The store side of announcing leads from the table's stream: decoding stream images (the
//! AttributeValue JSON shape DynamoDB Streams delivers to Lambda), the lead facts an
//! announcement reads from an image, who wrote a score, and the per-(lead, version) markers
//! that make each announcement idempotent.
//!
//! Markers: `ANNOUNCED#<lead_id>` / `V#<version>` (zero-padded), expiring after
//! `MARKER_TTL_DAYS`. Order: publish, then mark. A crash between the two publishes again on the
//! retry (at least once; consumers dedupe by `(lead_id, version)`); marking first could lose an
//! announcement for good when the publish then fails, which is worse than a duplicate.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::codec::{get_bool, get_n, get_s, n, s, Item};
use super::keys::{self, ts};
use super::{Store, StoreError};
use crate::model::{Stage, Temperature};
use crate::scoring::Reason;

/// Stream records are retried for at most 24 hours (the stream's retention); a week leaves room
/// for a redrive by hand and costs nothing (the marker is tiny and TTL deletes it).
const MARKER_TTL_DAYS: i64 = 7;

/// Who wrote a lead's score, recorded with the write (`score_writer`, and `scored_version`: the
/// version that write produced). The stream function skips rescore's own writes (rescore
/// announces them) by checking both: a later write by anyone else bumps the version without
/// touching `scored_version`, so it can never be mistaken for a score write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreWriter {
    /// The scheduled rescore: decay-driven changes, announced by rescore.
    Rescore,
    /// The stream function rescoring a merged lead: announced from the stream like any change.
    LeadEvents,
}

impl ScoreWriter {
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreWriter::Rescore => "rescore",
            ScoreWriter::LeadEvents => "lead-events",
        }
    }
}

/// A lead as one stream image shows it: what an announcement says (non-personal facts only).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadSnapshot {
    pub lead_id: String,
    pub version: u64,
    pub score: Option<u32>,
    pub temperature: Option<Temperature>,
    pub stage: Stage,
    pub source: String,
    pub channel: String,
    pub campaign: String,
    pub is_test: bool,
    pub erased: bool,
    pub created_at: Option<String>,
    pub touch_count: u64,
    /// The top rules of the stored score (`score_reasons`: rule names and points only).
    pub reasons: Vec<Reason>,
    /// Set when this image is the result of a score write by `writer`.
    pub score_write: Option<ScoreWriter>,
}

/// Whether a stream record's keys name a lead item (the only items announced).
pub fn is_lead_key(keys_image: &Item) -> bool {
    get_s(keys_image, keys::SK).as_deref() == Some(keys::LEAD_SK)
        && get_s(keys_image, keys::PK).is_some_and(|pk| pk.starts_with(keys::LEAD_PK_PREFIX))
}

/// A lead item's image -> its snapshot (`Corrupt` when it lacks an id or a version).
pub fn lead_snapshot(image: &Item) -> Result<LeadSnapshot, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: get_s(image, keys::PK).unwrap_or_else(|| "stream image".into()),
        reason: reason.into(),
    };
    let lead_id = get_s(image, "lead_id").ok_or_else(|| corrupt("no lead_id"))?;
    let version: u64 = get_n(image, "version").ok_or_else(|| corrupt("no version"))?;
    let writer = match get_s(image, "score_writer").as_deref() {
        Some("rescore") => Some(ScoreWriter::Rescore),
        Some("lead-events") => Some(ScoreWriter::LeadEvents),
        _ => None,
    };
    let score_write = writer.filter(|_| get_n::<u64>(image, "scored_version") == Some(version));
    Ok(LeadSnapshot {
        lead_id,
        version,
        score: get_n(image, "score"),
        temperature: get_s(image, "temperature").and_then(|t| Temperature::parse(&t)),
        stage: get_s(image, "stage")
            .and_then(|v| Stage::parse(&v))
            .unwrap_or(Stage::Lead),
        source: get_s(image, "source").unwrap_or_default(),
        channel: get_s(image, "channel").unwrap_or_default(),
        campaign: get_s(image, "campaign").unwrap_or_default(),
        is_test: get_bool(image, "is_test"),
        erased: get_bool(image, "erased"),
        created_at: get_s(image, "created_at"),
        touch_count: get_n(image, "touch_count").unwrap_or(0),
        reasons: super::rescore::reasons_from(image.get("score_reasons")),
        score_write,
    })
}

/// Decodes an image in the stream's AttributeValue JSON shape (`{"S": "..."}`, `{"N": "1"}`,
/// `{"M": {...}}`...), as Lambda delivers it, into an item. An attribute that is not in that
/// shape is left out (and logged) rather than failing the image: an announcement reads a few
/// attributes, and `lead_snapshot` fails when one of those is missing. (DynamoDB Local's stream
/// delivers an empty map, e.g. a lead's `custom` with no answers, as a typeless `{}`.)
pub fn item_from_stream_json(image: &Value) -> Result<Item, StoreError> {
    let obj = image
        .as_object()
        .ok_or_else(|| stream_corrupt("image is not an object"))?;
    let mut item = Item::with_capacity(obj.len());
    for (k, v) in obj {
        match attribute_from_json(v) {
            Ok(a) => {
                item.insert(k.clone(), a);
            }
            Err(e) => {
                tracing::warn!(attribute = k.as_str(), error = %e, "stream attribute left out")
            }
        }
    }
    Ok(item)
}

/// The same shape as `item_from_stream_json`, back: tests and sample events build stream
/// records from items read from DynamoDB, exactly as the stream would carry them.
pub fn item_to_stream_json(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attribute_to_json(v)))
            .collect(),
    )
}

fn stream_corrupt(reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: "stream image".into(),
        reason: reason.into(),
    }
}

fn attribute_from_json(v: &Value) -> Result<AttributeValue, StoreError> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| stream_corrupt("an attribute is not a one-key object"))?;
    let (tag, inner) = obj.iter().next().expect("one key");
    let text = |x: &Value| {
        x.as_str()
            .map(str::to_string)
            .ok_or_else(|| stream_corrupt("expected a string"))
    };
    let list = |x: &Value| {
        x.as_array()
            .ok_or_else(|| stream_corrupt("expected a list"))
            .and_then(|l| l.iter().map(text).collect::<Result<Vec<_>, _>>())
    };
    let blob = |x: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(text(x)?)
            .map(Blob::new)
            .map_err(|_| stream_corrupt("a binary attribute is not base64"))
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(text(inner)?),
        "BOOL" => AttributeValue::Bool(
            inner
                .as_bool()
                .ok_or_else(|| stream_corrupt("BOOL is not a boolean"))?,
        ),
        "NULL" => AttributeValue::Null(true),
        "B" => AttributeValue::B(blob(inner)?),
        "SS" => AttributeValue::Ss(list(inner)?),
        "NS" => AttributeValue::Ns(list(inner)?),
        "BS" => AttributeValue::Bs(
            inner
                .as_array()
                .ok_or_else(|| stream_corrupt("BS is not a list"))?
                .iter()
                .map(blob)
                .collect::<Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            inner
                .as_array()
                .ok_or_else(|| stream_corrupt("L is not a list"))?
                .iter()
                .map(attribute_from_json)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_stream_json(inner)?),
        _ => return Err(stream_corrupt("unknown attribute type")),
    })
}

fn attribute_to_json(v: &AttributeValue) -> Value {
    let b64 = |b: &Blob| Value::from(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
    let one = |tag: &str, inner: Value| {
        let mut m = serde_json::Map::new();
        m.insert(tag.to_string(), inner);
        Value::Object(m)
    };
    match v {
        AttributeValue::S(x) => one("S", x.clone().into()),
        AttributeValue::N(x) => one("N", x.clone().into()),
        AttributeValue::Bool(x) => one("BOOL", (*x).into()),
        AttributeValue::B(x) => one("B", b64(x)),
        AttributeValue::Ss(x) => one("SS", x.clone().into()),
        AttributeValue::Ns(x) => one("NS", x.clone().into()),
        AttributeValue::Bs(x) => one("BS", x.iter().map(b64).collect()),
        AttributeValue::L(x) => one("L", x.iter().map(attribute_to_json).collect()),
        AttributeValue::M(x) => one("M", item_to_stream_json(x)),
        _ => one("NULL", true.into()),
    }
}

fn marker_key(lead_id: &str, version: u64) -> HashMap<String, AttributeValue> {
    [
        (keys::PK.to_string(), s(keys::announcement_pk(lead_id))),
        (keys::SK.to_string(), s(keys::announcement_sk(version))),
    ]
    .into_iter()
    .collect()
}

impl Store {
    /// Whether `(lead_id, version)` was announced already (1 GetItem, strongly consistent, so
    /// a marker written by the previous attempt a moment ago counts; an expired one does not).
    pub async fn announced(
        &self,
        lead_id: &str,
        version: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(marker_key(lead_id, version)))
            .consistent_read(true)
            .projection_expression("#exp")
            .expression_attribute_names("#exp", keys::EXPIRES_AT)
            .send()
            .await
            .map_err(|e| StoreError::sdk("GetItem", e))?;
        Ok(out.item().is_some_and(|item| {
            get_n::<i64>(item, keys::EXPIRES_AT).is_none_or(|exp| exp > now.timestamp())
        }))
    }

    /// Records that `(lead_id, version)` was announced (1 PutItem, only when absent: a marker
    /// already there, from a concurrent delivery of the same record, is kept as it is).
    pub async fn mark_announced(
        &self,
        lead_id: &str,
        version: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = marker_key(lead_id, version);
        item.insert("type".into(), s("announcement"));
        item.insert("lead_id".into(), s(lead_id));
        item.insert("version".into(), n(version));
        item.insert("announced_at".into(), s(ts(now)));
        item.insert(
            keys::EXPIRES_AT.into(),
            n((now + Duration::days(MARKER_TTL_DAYS)).timestamp()),
        );
        // Already there: another delivery of the record announced it first.
        self.put_if_absent(item).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_images_round_trip_every_attribute_type() {
        let image = serde_json::json!({
            "pk": {"S": "LEAD#1"}, "version": {"N": "3"}, "is_test": {"BOOL": false},
            "gone": {"NULL": true}, "blob": {"B": "aGk="}, "tags": {"SS": ["a", "b"]},
            "nums": {"NS": ["1", "2"]}, "blobs": {"BS": ["aGk="]},
            "list": {"L": [{"S": "x"}, {"N": "1"}]},
            "map": {"M": {"inner": {"M": {"s": {"S": "y"}}}}}
        });
        let item = item_from_stream_json(&image).unwrap();
        assert_eq!(item["version"], AttributeValue::N("3".into()));
        assert_eq!(item["blob"], AttributeValue::B(Blob::new("hi")));
        assert_eq!(item_to_stream_json(&item), image);
    }

    #[test]
    fn malformed_attributes_are_left_out_not_panics() {
        assert!(item_from_stream_json(&serde_json::json!([])).is_err());
        for bad in [
            serde_json::json!({}),
            serde_json::json!("plain"),
            serde_json::json!({"S": 1}),
            serde_json::json!({"S": "x", "N": "1"}),
            serde_json::json!({"Q": "x"}),
            serde_json::json!({"B": "not base64!"}),
            serde_json::json!({"L": [{"S": 1}]}),
        ] {
            let image =
                serde_json::json!({"lead_id": {"S": "1"}, "version": {"N": "2"}, "bad": bad});
            let item = item_from_stream_json(&image).unwrap();
            assert!(!item.contains_key("bad"), "{image}");
            assert_eq!(lead_snapshot(&item).unwrap().version, 2);
        }
    }

    #[test]
    fn a_score_write_is_recognised_only_at_the_version_it_produced() {
        let mut item: Item = [
            ("lead_id", s("1")),
            ("version", n(4)),
            ("score_writer", s("rescore")),
            ("scored_version", n(4)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            lead_snapshot(&item).unwrap().score_write,
            Some(ScoreWriter::Rescore)
        );
        // A merge after it: the version moved on, the writer attribute did not.
        item.insert("version".into(), n(5));
        assert_eq!(lead_snapshot(&item).unwrap().score_write, None);
        item.remove("lead_id");
        assert!(lead_snapshot(&item).is_err());
    }
}
