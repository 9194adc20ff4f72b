//! The lead export's read (`GET /leads/export`): lead items in table order, one Scan request per
//! call, filtered in DynamoDB (lead items only, never an erased one, the created range, stage,
//! temperature), resumable from the key of any item read.
//!
//! A Scan rather than the day index: an export covers any range, the index is keyed by day (a
//! range of a year is 365 Queries) and its keys and projection are being reworked for hot-key
//! sharding; a Scan reads each item of the table once per full export whatever the range, and
//! pages by key, so a caller can stop after any lead and resume exactly after it. Reads are
//! strongly consistent: a lead erased a moment ago is not exported.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::codec::{get_s, lead_from, s, Item};
use super::keys::{self, ts};
use super::{Store, StoreError};
use crate::model::{Lead, Stage, Temperature};

/// Which leads an export holds. Times bound `created_at` (from inclusive, before exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub stage: Option<Stage>,
    pub temperature: Option<Temperature>,
}

/// Where an export resumes: the table key of the last item read. Callers hold it as an opaque
/// token ([`ExportPosition::to_token`]); a token only ever names a place in the table, and the
/// filter still decides what is returned after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPosition {
    pk: String,
    sk: String,
}

/// Longest key part a token may carry (DynamoDB allows 2048 bytes for a partition key, 1024
/// for a sort key; ours are far shorter).
const MAX_KEY_PART: usize = 1024;

impl ExportPosition {
    /// URL-safe base64 (no padding) of `[pk, sk]` as JSON.
    pub fn to_token(&self) -> String {
        let json = serde_json::to_vec(&[&self.pk, &self.sk]).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// The position a token names, or `None` when it is not one this module made.
    pub fn from_token(token: &str) -> Option<ExportPosition> {
        if token.is_empty() || token.len() > 4 * MAX_KEY_PART {
            return None;
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()?;
        let [pk, sk]: [String; 2] = serde_json::from_slice(&json).ok()?;
        let part_ok = |p: &str| !p.is_empty() && p.len() <= MAX_KEY_PART;
        (part_ok(&pk) && part_ok(&sk)).then_some(ExportPosition { pk, sk })
    }

    fn of(item: &Item) -> Option<ExportPosition> {
        Some(ExportPosition {
            pk: get_s(item, keys::PK)?,
            sk: get_s(item, keys::SK)?,
        })
    }
}

/// Items one Scan request reads at most (DynamoDB also stops at 1 MB): short requests keep each
/// well inside the SDK's 3 s attempt timeout, on DynamoDB Local too.
pub const EXPORT_SCAN_ITEMS: i32 = 500;

/// One Scan request's worth of an export.
#[derive(Debug, Default)]
pub struct ExportPage {
    /// The matching leads in table order, each with the position just after it.
    pub leads: Vec<(Lead, ExportPosition)>,
    /// Where the next request starts; `None`: the table has been read to its end.
    pub next: Option<ExportPosition>,
}

impl Store {
    /// One Scan request from `start`, filtered by `filter`, reading at most `max_items` items
    /// (capped at [`EXPORT_SCAN_ITEMS`]; DynamoDB also stops at 1 MB). A caller that may take
    /// only n more leads passes n: the page then never holds more, and `next` is DynamoDB's
    /// own `LastEvaluatedKey`.
    pub async fn export_leads_page(
        &self,
        filter: &ExportFilter,
        start: Option<&ExportPosition>,
        max_items: usize,
    ) -> Result<ExportPage, StoreError> {
        let limit = i32::try_from(max_items)
            .unwrap_or(EXPORT_SCAN_ITEMS)
            .clamp(1, EXPORT_SCAN_ITEMS);
        let mut conditions = vec![
            "#t = :lead".to_string(),
            "attribute_not_exists(#erased)".to_string(),
        ];
        let mut values: Vec<(&str, AttributeValue)> = vec![(":lead", s("lead"))];
        let mut names = vec![("#t", "type"), ("#erased", "erased")];
        // created_at is RFC 3339 UTC with milliseconds: it sorts as text.
        if let Some(from) = filter.created_from {
            conditions.push("#created >= :from".into());
            values.push((":from", s(ts(from))));
        }
        if let Some(before) = filter.created_before {
            conditions.push("#created < :before".into());
            values.push((":before", s(ts(before))));
        }
        if filter.created_from.is_some() || filter.created_before.is_some() {
            names.push(("#created", "created_at"));
        }
        if let Some(stage) = filter.stage {
            // A lead item without a stage reads as `lead` (codec): keep it for that stage.
            conditions.push(if stage == Stage::Lead {
                "(attribute_not_exists(#stage) OR #stage = :stage)".into()
            } else {
                "#stage = :stage".into()
            });
            names.push(("#stage", "stage"));
            values.push((":stage", s(stage.as_str())));
        }
        if let Some(t) = filter.temperature {
            conditions.push("#temp = :temp".into());
            names.push(("#temp", "temperature"));
            values.push((":temp", s(t.as_str())));
        }
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(conditions.join(" AND "))
            .limit(limit)
            .consistent_read(true);
        for (k, v) in names {
            scan = scan.expression_attribute_names(k, v);
        }
        for (k, v) in values {
            scan = scan.expression_attribute_values(k, v);
        }
        if let Some(p) = start {
            scan = scan
                .exclusive_start_key(keys::PK, s(&p.pk))
                .exclusive_start_key(keys::SK, s(&p.sk));
        }
        let out = scan.send().await.map_err(|e| StoreError::sdk("Scan", e))?;
        let leads = out
            .items()
            .iter()
            .filter_map(|item| Some((lead_from(item)?, ExportPosition::of(item)?)))
            .filter(|(lead, _)| !lead.sales.erased)
            .collect();
        let next = out
            .last_evaluated_key()
            .filter(|k| !k.is_empty())
            .and_then(ExportPosition::of);
        Ok(ExportPage { leads, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_anything_else() {
        let p = ExportPosition {
            pk: "LEAD#0192f0c4-aaaa".into(),
            sk: "#LEAD".into(),
        };
        let token = p.to_token();
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ExportPosition::from_token(&token), Some(p));
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for bad in [
            String::new(),
            "not base64!".into(),
            b64("{}"),
            b64(r#"["only one"]"#),
            b64(r#"["a","b","c"]"#),
            b64(r##"["","#LEAD"]"##),
            b64(&format!(r#"["{}","x"]"#, "a".repeat(1025))),
            "A".repeat(5000),
        ] {
            assert_eq!(ExportPosition::from_token(&bad), None, "{bad}");
        }
    }
}
