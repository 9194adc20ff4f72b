//! The issue-13 migration (`leadflow backfill`): writes the sharded day keys (gsi2) on leads
//! and touchpoints stored before them, and mirrors linked reviews into their leads' partitions.
//!
//! One paged Scan of the table, filtered to the items still to do: leads and touchpoints
//! without `gsi2pk`, and reviews linked to a lead. Each item gets one conditional UpdateItem
//! (`attribute_exists(pk)`: an item deleted meanwhile stays deleted) setting exactly the keys a
//! live write would (`keys::day_index_keys`, from the item's own gsi1 keys), and a review its
//! mirror (`attribute_not_exists`: a live review write since is newer and wins). So a run can
//! be repeated or interrupted: what is done is filtered out or rewritten to the same value.
//!
//! After every page the checkpoint (`MIGRATION#DAYKEYS` / `#STATE`: the Scan's cursor and the
//! counts so far) is saved; the next run resumes from it. When the Scan ends, `done_at` is
//! set: from then on the rollup reads gsi2 (`Store::day_index`). Items written after this
//! version is deployed carry both keys already, so the marker never goes stale.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use super::codec::{get_bool, get_map, get_n, get_s, n, s, Item};
use super::keys::{self, ts};
use super::{Store, StoreError};
use crate::model::TouchKind;

/// Items updated at once within a page.
const CONCURRENCY: usize = 16;

/// What a backfill run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    /// Items the filtered Scan returned (still to do when the run started).
    pub scanned: u64,
    pub leads: u64,
    pub touchpoints: u64,
    pub review_mirrors: u64,
    /// Items that were deleted, or whose mirror a live write made, in the meantime.
    pub skipped: u64,
    pub pages: u64,
    /// The Scan reached the end: the marker is set and the rollup reads gsi2.
    pub done: bool,
    pub dry_run: bool,
}

impl Store {
    /// Runs the backfill (module docs) for at most `max_pages` Scan pages of `page_size`
    /// items evaluated, from the saved checkpoint; `dry_run` counts without writing anything.
    pub async fn backfill_day_keys(
        &self,
        page_size: i32,
        max_pages: Option<u64>,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<BackfillReport, StoreError> {
        let state = self
            .get_item(keys::MIGRATION_PK, keys::MIGRATION_SK)
            .await?;
        let mut report = BackfillReport {
            dry_run,
            ..Default::default()
        };
        let done = state
            .as_ref()
            .is_some_and(|s| get_s(s, "done_at").is_some());
        // Counts of earlier runs carry on (dry runs start from zero and save nothing).
        if let (Some(st), false) = (&state, dry_run && !done) {
            report.scanned = get_n(st, "scanned").unwrap_or(0);
            report.leads = get_n(st, "leads").unwrap_or(0);
            report.touchpoints = get_n(st, "touchpoints").unwrap_or(0);
            report.review_mirrors = get_n(st, "review_mirrors").unwrap_or(0);
            report.skipped = get_n(st, "skipped").unwrap_or(0);
            report.pages = get_n(st, "pages").unwrap_or(0);
        }
        if done {
            report.done = true;
            return Ok(report);
        }
        let mut cursor: Option<Item> = state
            .as_ref()
            .and_then(|s| get_map(s, "cursor"))
            .cloned()
            .filter(|c| !c.is_empty());
        let mut pages_this_run = 0;
        loop {
            if max_pages.is_some_and(|m| pages_this_run >= m) {
                return Ok(report);
            }
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .limit(page_size)
                .set_exclusive_start_key(cursor.take())
                .filter_expression(
                    "(begins_with(pk, :lead) AND (sk = :leadsk OR begins_with(sk, :tp)) \
                     AND attribute_not_exists(gsi2pk)) \
                     OR (begins_with(pk, :review) AND sk = :reviewsk AND attribute_exists(lead_id))",
                )
                .expression_attribute_values(":lead", s(keys::LEAD_PK_PREFIX))
                .expression_attribute_values(":leadsk", s(keys::LEAD_SK))
                .expression_attribute_values(":tp", s(keys::TOUCH_SK_PREFIX))
                .expression_attribute_values(":review", s("REVIEW#"))
                .expression_attribute_values(":reviewsk", s(keys::REVIEW_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| StoreError::sdk("Scan", e))?;
            pages_this_run += 1;
            report.pages += 1;
            let items = out.items().to_vec();
            report.scanned += items.len() as u64;
            let results: Vec<Result<Outcome, StoreError>> = stream::iter(items.iter())
                .map(|item| self.backfill_item(item, dry_run, now))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for r in results {
                match r? {
                    Outcome::Lead => report.leads += 1,
                    Outcome::Touch => report.touchpoints += 1,
                    Outcome::Mirror => report.review_mirrors += 1,
                    Outcome::Skipped => report.skipped += 1,
                }
            }
            cursor = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            report.done = cursor.is_none();
            if !dry_run {
                self.save_backfill_state(&report, cursor.as_ref(), now)
                    .await?;
            }
            if report.done {
                return Ok(report);
            }
        }
    }

    async fn backfill_item(
        &self,
        item: &Item,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let (Some(pk), Some(sk)) = (get_s(item, keys::PK), get_s(item, keys::SK)) else {
            return Ok(Outcome::Skipped);
        };
        if pk.starts_with("REVIEW#") {
            return self.backfill_review_mirror(item, dry_run, now).await;
        }
        let (kind, id, at_attr, outcome) = if sk == keys::LEAD_SK {
            (
                keys::DayItem::Lead,
                get_s(item, "lead_id"),
                "created_at",
                Outcome::Lead,
            )
        } else {
            (
                keys::DayItem::Touch,
                get_s(item, "touch_id"),
                "occurred_at",
                Outcome::Touch,
            )
        };
        // The instant the item's gsi1 keys were written with (`<at>#<id>`), so gsi2 files it on
        // the same day; items without them fall back to their own time.
        let at = get_s(item, keys::GSI1_SK)
            .and_then(|g| g.split('#').next().map(str::to_string))
            .or_else(|| get_s(item, at_attr))
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc));
        let (Some(id), Some(at)) = (id, at) else {
            return Ok(Outcome::Skipped);
        };
        if dry_run {
            return Ok(outcome);
        }
        let [_, _, (pk_name, gsi2pk), (sk_name, gsi2sk)] = keys::day_index_keys(kind, at, &id);
        let mut expression = format!("SET {pk_name} = :g2pk, {sk_name} = :g2sk");
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk.clone()))
            .key(keys::SK, s(sk.clone()))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":g2pk", s(gsi2pk))
            .expression_attribute_values(":g2sk", s(gsi2sk))
            .return_values(ReturnValue::None);
        let kind_of = get_s(item, "kind").and_then(|k| TouchKind::parse(&k));
        let answers = super::codec::get_str_map(item, "custom");
        if let Some(rating) = kind_of.and_then(|k| super::codec::review_rating(k, &answers)) {
            expression.push_str(&format!(", {} = :rating", keys::REVIEW_RATING));
            update = update.expression_attribute_values(":rating", n(rating));
        }
        let applied = super::txn::applied(
            update.update_expression(expression).send().await,
            "UpdateItem",
        )?;
        Ok(if applied { outcome } else { Outcome::Skipped })
    }

    /// A linked review's mirror in its lead's partition, unless a live write made one.
    async fn backfill_review_mirror(
        &self,
        review: &Item,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let (Some(lead_id), Some(platform), Some(external_id)) = (
            get_s(review, "lead_id"),
            get_s(review, "platform"),
            get_s(review, "external_id"),
        ) else {
            return Ok(Outcome::Skipped);
        };
        if dry_run {
            return Ok(Outcome::Mirror);
        }
        let deleted = get_bool(review, "deleted");
        let mut item: HashMap<String, AttributeValue> = HashMap::new();
        item.insert(keys::PK.into(), s(keys::lead_pk(&lead_id)));
        item.insert(
            keys::SK.into(),
            s(keys::lead_review_sk(&platform, &external_id)),
        );
        item.insert("type".into(), s("lead_review"));
        item.insert("platform".into(), s(platform));
        item.insert("external_id".into(), s(external_id));
        item.insert("deleted".into(), AttributeValue::Bool(deleted));
        item.insert("updated_at".into(), s(ts(now)));
        if !deleted {
            for attr in ["rating", "published_at"] {
                if let Some(v) = review.get(attr) {
                    item.insert(attr.into(), v.clone());
                }
            }
        }
        Ok(if self.put_if_absent(item).await? {
            Outcome::Mirror
        } else {
            Outcome::Skipped
        })
    }

    async fn save_backfill_state(
        &self,
        r: &BackfillReport,
        cursor: Option<&Item>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::MIGRATION_PK));
        item.insert(keys::SK.into(), s(keys::MIGRATION_SK));
        item.insert("type".into(), s("migration"));
        for (name, v) in [
            ("scanned", r.scanned),
            ("leads", r.leads),
            ("touchpoints", r.touchpoints),
            ("review_mirrors", r.review_mirrors),
            ("skipped", r.skipped),
            ("pages", r.pages),
        ] {
            item.insert(name.into(), n(v));
        }
        item.insert("updated_at".into(), s(ts(now)));
        match cursor {
            Some(c) => {
                item.insert("cursor".into(), AttributeValue::M(c.clone()));
            }
            None => {
                item.insert("done_at".into(), s(ts(now)));
            }
        }
        self.put(item).await
    }
}

enum Outcome {
    Lead,
    Touch,
    Mirror,
    Skipped,
}
