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
//!
//! The issue-20 rewrite (`leadflow backfill` after a change of `REPORT_TIME_ZONE`,
//! `rezone_day_keys`): the day keys are reporting days, so a new zone moves the items near
//! midnight to another day. The same paged, checkpointed Scan (`MIGRATION#DAYZONE`) compares
//! every lead's and touchpoint's keys with the ones its time gives in the new zone and
//! rewrites those that differ; the checkpoint then records the zone the keys are in.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
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
        let cursor: Option<Item> = state
            .as_ref()
            .and_then(|s| get_map(s, "cursor"))
            .cloned()
            .filter(|c| !c.is_empty());
        self.migrate_pages(
            page_size,
            max_pages,
            cursor,
            "(begins_with(pk, :lead) AND (sk = :leadsk OR begins_with(sk, :tp)) \
             AND attribute_not_exists(gsi2pk)) \
             OR (begins_with(pk, :review) AND sk = :reviewsk AND attribute_exists(lead_id))",
            |scan| {
                scan.expression_attribute_values(":review", s("REVIEW#"))
                    .expression_attribute_values(":reviewsk", s(keys::REVIEW_SK))
            },
            async |item: &Item| self.backfill_item(item, dry_run, now).await,
            async |scanned, outcomes, next| {
                report.pages += 1;
                report.scanned += scanned;
                for o in outcomes {
                    match o {
                        Outcome::Lead => report.leads += 1,
                        Outcome::Touch => report.touchpoints += 1,
                        Outcome::Mirror => report.review_mirrors += 1,
                        Outcome::Skipped => report.skipped += 1,
                    }
                }
                report.done = next.is_none();
                if dry_run {
                    return Ok(());
                }
                self.save_backfill_state(&report, next, now).await
            },
        )
        .await?;
        Ok(report)
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
        let Some((kind, id, at)) = day_item(item) else {
            return Ok(Outcome::Skipped);
        };
        let outcome = match kind {
            keys::DayItem::Lead => Outcome::Lead,
            keys::DayItem::Touch => Outcome::Touch,
        };
        if dry_run {
            return Ok(outcome);
        }
        let [_, _, (pk_name, gsi2pk), (sk_name, gsi2sk)] = self.day_keys(kind, at, &id);
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

    /// A checkpointed migration's Scan: pages of `page_size` items evaluated (`filter` and
    /// `bind` as in `day_items_page`) from `cursor`, at most `max_pages` this run. Each item
    /// goes through `each` (`CONCURRENCY` at once); then `page` gets the page's item count,
    /// outcomes and the next cursor (`None`: the Scan has ended), counts, and saves the
    /// checkpoint. A failed item fails the run after the page's other items are done, before
    /// the checkpoint: the next run redoes the page (every step is idempotent).
    #[allow(clippy::too_many_arguments)]
    async fn migrate_pages<O>(
        &self,
        page_size: i32,
        max_pages: Option<u64>,
        mut cursor: Option<Item>,
        filter: &str,
        bind: impl Fn(ScanFluentBuilder) -> ScanFluentBuilder,
        each: impl AsyncFn(&Item) -> Result<O, StoreError>,
        mut page: impl AsyncFnMut(u64, Vec<O>, Option<&Item>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut pages = 0;
        while max_pages.is_none_or(|m| pages < m) {
            let (items, next) = self
                .day_items_page(page_size, cursor.take(), filter, &bind)
                .await?;
            pages += 1;
            let outcomes: Vec<Result<O, StoreError>> = stream::iter(items.iter())
                .map(|item| each(item))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            let outcomes = outcomes.into_iter().collect::<Result<Vec<O>, _>>()?;
            page(items.len() as u64, outcomes, next.as_ref()).await?;
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        Ok(())
    }

    /// One page of a strongly consistent Scan from `cursor` (`filter` may use `:lead`,
    /// `:leadsk` and `:tp`, bound here to the lead and touchpoint keys, and what `more` binds):
    /// the items and the cursor of the next page (`None` at the end).
    async fn day_items_page(
        &self,
        page_size: i32,
        cursor: Option<Item>,
        filter: &str,
        more: impl FnOnce(ScanFluentBuilder) -> ScanFluentBuilder,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let scan = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(page_size)
            .set_exclusive_start_key(cursor)
            .filter_expression(filter)
            .expression_attribute_values(":lead", s(keys::LEAD_PK_PREFIX))
            .expression_attribute_values(":leadsk", s(keys::LEAD_SK))
            .expression_attribute_values(":tp", s(keys::TOUCH_SK_PREFIX))
            .consistent_read(true);
        let out = more(scan)
            .send()
            .await
            .map_err(|e| StoreError::sdk("Scan", e))?;
        let next = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        Ok((out.items().to_vec(), next))
    }

    async fn save_backfill_state(
        &self,
        r: &BackfillReport,
        cursor: Option<&Item>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let counts = [
            ("scanned", r.scanned),
            ("leads", r.leads),
            ("touchpoints", r.touchpoints),
            ("review_mirrors", r.review_mirrors),
            ("skipped", r.skipped),
            ("pages", r.pages),
        ];
        self.save_checkpoint(keys::MIGRATION_PK, Item::new(), &counts, cursor, now)
            .await
    }

    /// Saves a migration's checkpoint `<pk>` / `#STATE`: its counts, `fields`, and the cursor
    /// of the next page, or `done_at` when the Scan has ended.
    async fn save_checkpoint(
        &self,
        pk: &str,
        mut item: Item,
        counts: &[(&str, u64)],
        cursor: Option<&Item>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        item.insert(keys::PK.into(), s(pk));
        item.insert(keys::SK.into(), s(keys::MIGRATION_SK));
        item.insert("type".into(), s("migration"));
        for (name, v) in counts {
            item.insert(name.to_string(), n(*v));
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

/// A lead or touchpoint item's kind, id and the instant its day keys are computed from: the
/// one its gsi1 sort key was written with (`<at>#<id>`), else its own time (`created_at`,
/// `occurred_at`).
fn day_item(item: &Item) -> Option<(keys::DayItem, String, DateTime<Utc>)> {
    let (kind, id, at_attr) = if get_s(item, keys::SK)? == keys::LEAD_SK {
        (keys::DayItem::Lead, get_s(item, "lead_id"), "created_at")
    } else {
        (keys::DayItem::Touch, get_s(item, "touch_id"), "occurred_at")
    };
    let at = get_s(item, keys::GSI1_SK)
        .and_then(|g| g.split('#').next().map(str::to_string))
        .or_else(|| get_s(item, at_attr))
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))?;
    Some((kind, id?, at))
}

enum Outcome {
    Lead,
    Touch,
    Mirror,
    Skipped,
}

/// What a day-key rewrite for a new reporting zone did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RezoneReport {
    /// The zone the keys were in when the rewrite started (UTC before any rewrite).
    pub from_zone: String,
    /// The zone they are rewritten to: the store's (`REPORT_TIME_ZONE`).
    pub to_zone: String,
    /// Leads and touchpoints examined.
    pub scanned: u64,
    /// Items whose day keys were (dry: would be) rewritten.
    pub rewritten: u64,
    /// Items already on their day in the new zone (most: only items near midnight move).
    pub unchanged: u64,
    /// Items deleted meanwhile, or without the times their day comes from.
    pub skipped: u64,
    pub pages: u64,
    /// Every item is on its day in `to_zone`.
    pub done: bool,
    pub dry_run: bool,
}

/// Where the day keys stand (`MIGRATION#DAYZONE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayKeysZone {
    /// The zone of the keys before the last rewrite began.
    pub from_zone: String,
    /// The zone of the last rewrite.
    pub to_zone: String,
    /// The last rewrite finished: every key is a day of `to_zone`. Otherwise the keys are a
    /// mix of the two zones.
    pub done: bool,
}

impl DayKeysZone {
    /// The zone every key is in, if they agree.
    pub fn settled(&self) -> Option<&str> {
        self.done.then_some(self.to_zone.as_str())
    }
}

impl Store {
    /// Where the day keys stand (1 GetItem): `None` before any rewrite (the keys are UTC
    /// days).
    pub async fn day_keys_zone(&self) -> Result<Option<DayKeysZone>, StoreError> {
        Ok(self
            .get_item(keys::ZONE_MIGRATION_PK, keys::MIGRATION_SK)
            .await?
            .map(|st| DayKeysZone {
                from_zone: get_s(&st, "from_zone").unwrap_or_else(|| "UTC".into()),
                to_zone: get_s(&st, "to_zone").unwrap_or_else(|| "UTC".into()),
                done: get_s(&st, "done_at").is_some(),
            }))
    }

    /// Rewrites the day keys (gsi1 and gsi2) of every lead and touchpoint whose reporting day
    /// in this store's zone differs from the one its keys say, for at most `max_pages` Scan
    /// pages of `page_size` items evaluated, from the saved checkpoint; `dry_run` counts
    /// without writing. Run after the issue-13 backfill (`backfill_day_keys`) is done, so
    /// every item has its gsi2 keys.
    ///
    /// One paged Scan of leads and touchpoints (projected to their keys and times); an item
    /// whose keys differ gets one conditional UpdateItem (`attribute_exists(pk)`) setting the
    /// keys a live write in this zone would. Resumable and repeatable like the backfill: the
    /// checkpoint `MIGRATION#DAYZONE` holds the cursor, the counts and both zones; a rewrite
    /// toward another zone than the checkpoint's starts over (every item is compared, so
    /// the mix of zones is sorted out). Nothing to do when the keys are already in the zone.
    pub async fn rezone_day_keys(
        &self,
        page_size: i32,
        max_pages: Option<u64>,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<RezoneReport, StoreError> {
        let to_zone = self.zone.name().to_string();
        let state = self
            .get_item(keys::ZONE_MIGRATION_PK, keys::MIGRATION_SK)
            .await?;
        let zone_of = |attr: &str| {
            state
                .as_ref()
                .map_or(Some("UTC".to_string()), |st| get_s(st, attr))
                .unwrap_or_else(|| "UTC".into())
        };
        let (from, target) = (zone_of("from_zone"), zone_of("to_zone"));
        let done = state
            .as_ref()
            .is_none_or(|st| get_s(st, "done_at").is_some());
        let mut report = RezoneReport {
            to_zone: to_zone.clone(),
            dry_run,
            ..Default::default()
        };
        let mut cursor = None;
        if done {
            // The keys are all in `target`: nothing to do when that is the zone asked for.
            report.from_zone = target.clone();
            if target == to_zone {
                report.done = true;
                return Ok(report);
            }
        } else {
            report.from_zone = from;
            if target == to_zone {
                // Resume where the last run of this rewrite stopped.
                let st = state.as_ref().expect("a rewrite in progress has a state");
                cursor = get_map(st, "cursor").cloned().filter(|c| !c.is_empty());
                if !dry_run {
                    report.scanned = get_n(st, "scanned").unwrap_or(0);
                    report.rewritten = get_n(st, "rewritten").unwrap_or(0);
                    report.unchanged = get_n(st, "unchanged").unwrap_or(0);
                    report.skipped = get_n(st, "skipped").unwrap_or(0);
                    report.pages = get_n(st, "pages").unwrap_or(0);
                }
            }
        }
        self.migrate_pages(
            page_size,
            max_pages,
            cursor,
            "begins_with(pk, :lead) AND (sk = :leadsk OR begins_with(sk, :tp))",
            |scan| {
                scan.projection_expression(
                    "pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, lead_id, touch_id, created_at, \
                     occurred_at",
                )
            },
            async |item: &Item| self.rezone_item(item, dry_run).await,
            async |scanned, outcomes, next| {
                report.pages += 1;
                report.scanned += scanned;
                for o in outcomes {
                    match o {
                        Rezoned::Rewritten => report.rewritten += 1,
                        Rezoned::Unchanged => report.unchanged += 1,
                        Rezoned::Skipped => report.skipped += 1,
                    }
                }
                report.done = next.is_none();
                if dry_run {
                    return Ok(());
                }
                self.save_rezone_state(&report, next, now).await
            },
        )
        .await?;
        Ok(report)
    }

    async fn rezone_item(&self, item: &Item, dry_run: bool) -> Result<Rezoned, StoreError> {
        let (Some(pk), Some(sk), Some((kind, id, at))) =
            (get_s(item, keys::PK), get_s(item, keys::SK), day_item(item))
        else {
            return Ok(Rezoned::Skipped);
        };
        let wanted: Vec<_> = self.day_keys_written(kind, at, &id).collect();
        // A touchpoint's gsi1 day keys (written before issue 21) are not rewritten but
        // removed: nothing reads them once the rollup reads gsi2, which it does by now.
        let stale_gsi1 = kind == keys::DayItem::Touch && item.contains_key(keys::GSI1_PK);
        if !stale_gsi1
            && wanted
                .iter()
                .all(|(name, value)| get_s(item, name).as_deref() == Some(value.as_str()))
        {
            return Ok(Rezoned::Unchanged);
        }
        if dry_run {
            return Ok(Rezoned::Rewritten);
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::None);
        let mut sets = Vec::new();
        for (i, (name, value)) in wanted.into_iter().enumerate() {
            sets.push(format!("{name} = :k{i}"));
            update = update.expression_attribute_values(format!(":k{i}"), s(value));
        }
        let remove = if stale_gsi1 {
            format!(" REMOVE {}, {}", keys::GSI1_PK, keys::GSI1_SK)
        } else {
            String::new()
        };
        let applied = super::txn::applied(
            update
                .update_expression(format!("SET {}{remove}", sets.join(", ")))
                .send()
                .await,
            "UpdateItem",
        )?;
        Ok(if applied {
            Rezoned::Rewritten
        } else {
            Rezoned::Skipped
        })
    }

    async fn save_rezone_state(
        &self,
        r: &RezoneReport,
        cursor: Option<&Item>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut zones = Item::new();
        zones.insert("from_zone".into(), s(r.from_zone.clone()));
        zones.insert("to_zone".into(), s(r.to_zone.clone()));
        let counts = [
            ("scanned", r.scanned),
            ("rewritten", r.rewritten),
            ("unchanged", r.unchanged),
            ("skipped", r.skipped),
            ("pages", r.pages),
        ];
        self.save_checkpoint(keys::ZONE_MIGRATION_PK, zones, &counts, cursor, now)
            .await
    }
}

enum Rezoned {
    Rewritten,
    Unchanged,
    Skipped,
}
