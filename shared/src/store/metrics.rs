//! Spend entries and metric rollups. Both live in day partitions (`SPEND#<day>`,
//! `ROLLUP#<day>`), and the inputs of a rollup are read through the day index (gsi1), so nothing
//! here scans the table.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};

use super::codec::{get_bool, get_n, get_s, get_time, n, s, Item};
use super::keys::{self, ts};
use super::{Store, StoreError};
use crate::metrics::{DayLead, DayTouch, GroupKey, RollupCounts, SpendEntry};
use crate::model::{Stage, Temperature, TouchKind};

impl Store {
    /// Records a day's spend for a source and campaign; a second post for the same day x source
    /// x campaign replaces the first (1 PutItem), so re-sending a feed never double counts.
    pub async fn put_spend(&self, e: &SpendEntry, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::spend_pk(&e.day)));
        item.insert(
            keys::SK.into(),
            s(keys::spend_sk(&e.source, &e.campaign, &e.currency)),
        );
        item.insert("type".into(), s("spend"));
        item.insert("day".into(), s(e.day.clone()));
        item.insert("source".into(), s(e.source.clone()));
        item.insert("channel".into(), s(e.channel.clone()));
        item.insert("campaign".into(), s(e.campaign.clone()));
        item.insert("amount_micros".into(), n(e.amount_micros));
        item.insert("currency".into(), s(e.currency.clone()));
        item.insert("updated_at".into(), s(ts(now)));
        self.put(item).await?;
        Ok(())
    }

    /// A day's spend entries (1 Query). An entry stored before issue 13 (keyed without its
    /// currency) gives way to a later post of the same source, campaign and currency.
    pub async fn spend_on(&self, day: &str) -> Result<Vec<SpendEntry>, StoreError> {
        let items = self.partition_items(&keys::spend_pk(day)).await?;
        let mut entries: BTreeMap<(String, String, String), (bool, SpendEntry)> = BTreeMap::new();
        for i in &items {
            let Some(e) = (|| {
                Some(SpendEntry {
                    day: get_s(i, "day")?,
                    source: get_s(i, "source")?,
                    channel: get_s(i, "channel").unwrap_or_else(|| "other".into()),
                    campaign: get_s(i, "campaign")?,
                    amount_micros: get_n(i, "amount_micros")?,
                    currency: get_s(i, "currency").unwrap_or_else(|| "USD".into()),
                })
            })() else {
                continue;
            };
            let current =
                get_s(i, keys::SK) == Some(keys::spend_sk(&e.source, &e.campaign, &e.currency));
            let key = (e.source.clone(), e.campaign.clone(), e.currency.clone());
            if entries
                .get(&key)
                .is_none_or(|(was_current, _)| current && !was_current)
            {
                entries.insert(key, (current, e));
            }
        }
        Ok(entries.into_values().map(|(_, e)| e).collect())
    }

    /// Which day index the rollup reads: gsi2 (sharded) once `leadflow backfill` has marked
    /// every lead and touch as carrying its keys, gsi1 before (1 GetItem per run).
    pub async fn day_index(&self) -> Result<DayIndex, StoreError> {
        let done = self
            .get_item(keys::MIGRATION_PK, keys::MIGRATION_SK)
            .await?
            .is_some_and(|i| get_s(&i, "done_at").is_some());
        Ok(if done {
            DayIndex::Sharded
        } else {
            DayIndex::Legacy
        })
    }

    /// Streams the leads created on `day` through `each`, one 1 MB page at a time (memory
    /// bounded by a page): every shard of gsi2, or the day's gsi1 partition.
    pub async fn visit_day_leads(
        &self,
        index: DayIndex,
        day: &str,
        mut each: impl FnMut(DayLead),
    ) -> Result<(), StoreError> {
        self.visit_day(index, day, keys::DayItem::Lead, |item| {
            if let Some(l) = day_lead_from(item) {
                each(l);
            }
        })
        .await
    }

    /// Streams the touchpoints that occurred on `day` through `each` (as `visit_day_leads`).
    pub async fn visit_day_touches(
        &self,
        index: DayIndex,
        day: &str,
        mut each: impl FnMut(DayTouch),
    ) -> Result<(), StoreError> {
        self.visit_day(index, day, keys::DayItem::Touch, |item| {
            if let Some(t) = day_touch_from(item) {
                each(t);
            }
        })
        .await
    }

    async fn visit_day(
        &self,
        index: DayIndex,
        day: &str,
        kind: keys::DayItem,
        mut each: impl FnMut(&Item),
    ) -> Result<(), StoreError> {
        let shards = |kind| {
            (0..keys::DAY_SHARDS).map(move |shard| {
                let pk = match kind {
                    keys::DayItem::Lead => keys::leads_day_shard_pk(day, shard),
                    keys::DayItem::Touch => keys::touches_day_shard_pk(day, shard),
                };
                (keys::GSI2, keys::GSI2_PK, pk)
            })
        };
        let mut partitions: Vec<(&str, &str, String)> = match (index, kind) {
            (DayIndex::Legacy, keys::DayItem::Lead) => {
                vec![(keys::GSI1, keys::GSI1_PK, format!("LEADS#{day}"))]
            }
            (DayIndex::Legacy, keys::DayItem::Touch) => {
                vec![(keys::GSI1, keys::GSI1_PK, format!("TOUCHES#{day}"))]
            }
            (DayIndex::Sharded, kind) => shards(kind).collect(),
        };
        // Before the backfill completed, touches written since issue 21 are in gsi2 only (no
        // gsi1 day keys) and older ones in gsi1 (some in both, once backfilled): read gsi1,
        // then gsi2's shards for the touches gsi1 did not have.
        let both = matches!((index, kind), (DayIndex::Legacy, keys::DayItem::Touch));
        if both {
            partitions.extend(shards(kind));
        }
        let mut seen: std::collections::HashSet<(String, String)> = Default::default();
        let key_of = |item: &Item| {
            (
                get_s(item, keys::PK).unwrap_or_default(),
                get_s(item, keys::SK).unwrap_or_default(),
            )
        };
        for (index_name, key, pk) in partitions {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(index_name)
                    .key_condition_expression("#k = :p")
                    .expression_attribute_names("#k", key)
                    .expression_attribute_values(":p", s(pk.clone()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("Query", e))?;
                for item in out.items() {
                    if !both {
                        each(item);
                    } else if index_name == keys::GSI1 {
                        seen.insert(key_of(item));
                        each(item);
                    } else if !seen.contains(&key_of(item)) {
                        each(item);
                    }
                }
                match out.last_evaluated_key() {
                    Some(k) if !k.is_empty() => start = Some(k.clone()),
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Replaces a day's rollups: writes every row and deletes rows of groups that no longer
    /// exist (and the day's rows in the layout before issue 13), so recomputing a day
    /// overwrites it and never adds to it. 2 Queries + 1 BatchWriteItem per 25 writes.
    pub async fn replace_day_rollups(
        &self,
        day: &str,
        rows: &BTreeMap<GroupKey, RollupCounts>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let pk = keys::rollup_pk(day);
        let prefix = format!("{day}#");
        let mut existing: Vec<(String, String)> = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :day)")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .expression_attribute_values(":day", s(prefix.clone()))
                    .projection_expression("pk, sk")
                    .consistent_read(true)
            })
            .await?
            .iter()
            .filter_map(|i| Some((get_s(i, keys::PK)?, get_s(i, keys::SK)?)))
            .collect();
        let legacy = keys::legacy_rollup_pk(day);
        existing.extend(
            self.partition_items(&legacy)
                .await?
                .iter()
                .filter_map(|i| Some((legacy.clone(), get_s(i, keys::SK)?))),
        );
        let mut writes: Vec<WriteRequest> = Vec::new();
        let mut wanted = std::collections::HashSet::new();
        for (k, c) in rows {
            let sk = keys::rollup_sk(day, &k.source, &k.channel, &k.campaign);
            wanted.insert((pk.clone(), sk.clone()));
            let mut item = rollup_item(k, c);
            item.insert(keys::PK.into(), s(pk.clone()));
            item.insert(keys::SK.into(), s(sk));
            item.insert("computed_at".into(), s(ts(now)));
            writes.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .expect("item"),
                    )
                    .build(),
            );
        }
        for (pk, sk) in existing.into_iter().filter(|k| !wanted.contains(k)) {
            let mut key = HashMap::new();
            key.insert(keys::PK.to_string(), s(pk));
            key.insert(keys::SK.to_string(), s(sk));
            writes.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key))
                            .build()
                            .expect("key"),
                    )
                    .build(),
            );
        }
        let count = writes.len();
        for chunk in writes.chunks(25) {
            self.write_batch(chunk.to_vec()).await?;
        }
        Ok(count)
    }

    /// Stored rollups of the given days (sorted `YYYY-MM-DD`): one Query per calendar month
    /// the days span (a 400-day range spans at most 15), +1 per further 1 MB of a month.
    pub async fn rollups_between(
        &self,
        days: &[String],
    ) -> Result<Vec<(GroupKey, RollupCounts)>, StoreError> {
        let mut months: BTreeMap<String, (String, String)> = BTreeMap::new();
        for day in days {
            let e = months
                .entry(keys::rollup_pk(day))
                .or_insert_with(|| (day.clone(), day.clone()));
            e.0 = e.0.clone().min(day.clone());
            e.1 = e.1.clone().max(day.clone());
        }
        let wanted: std::collections::HashSet<&str> = days.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for (pk, (first, last)) in months {
            let items = self
                .query_all(|| {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":a", s(format!("{first}#")))
                        // '$' sorts right after '#': every sort key of the last day.
                        .expression_attribute_values(":b", s(format!("{last}$")))
                })
                .await?;
            out.extend(
                items
                    .iter()
                    .filter_map(rollup_from)
                    .filter(|(k, _)| wanted.contains(k.day.as_str())),
            );
        }
        Ok(out)
    }
}

/// The day index the rollup reads (see `Store::day_index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayIndex {
    /// gsi1 `LEADS#<day>` / `TOUCHES#<day>`, before the backfill completed.
    Legacy,
    /// gsi2, `DAY_SHARDS` partitions per day and kind.
    Sharded,
}

fn day_lead_from(i: &Item) -> Option<DayLead> {
    Some(DayLead {
        source: get_s(i, "source").unwrap_or_default(),
        channel: get_s(i, "channel").unwrap_or_else(|| "other".into()),
        campaign: get_s(i, "campaign").unwrap_or_default(),
        is_test: get_bool(i, "is_test"),
        direction: super::codec::direction_from(get_s(i, "direction")),
        stage: get_s(i, "stage")
            .and_then(|s| Stage::parse(&s))
            .unwrap_or(Stage::Lead),
        score: get_n(i, "score"),
        temperature: get_s(i, "temperature").and_then(|t| Temperature::parse(&t)),
        created_at: get_time(i, "created_at")?,
        first_contacted_at: get_time(i, "first_contacted_at"),
    })
}

fn day_touch_from(i: &Item) -> Option<DayTouch> {
    let kind = get_s(i, "kind").and_then(|k| TouchKind::parse(&k))?;
    Some(DayTouch {
        source: get_s(i, "source").unwrap_or_default(),
        channel: get_s(i, "channel").unwrap_or_else(|| "other".into()),
        campaign: get_s(i, "campaign").unwrap_or_default(),
        is_test: get_bool(i, "is_test"),
        direction: super::codec::direction_from(get_s(i, "direction")),
        kind,
        // gsi2 projects `review_rating`; an item read through gsi1 before the backfill wrote
        // it still has the answer.
        rating: get_n(i, keys::REVIEW_RATING)
            .or_else(|| super::codec::review_rating(kind, &super::codec::get_str_map(i, "custom"))),
    })
}

fn rollup_item(k: &GroupKey, c: &RollupCounts) -> Item {
    let mut item = Item::new();
    item.insert("type".into(), s("rollup"));
    item.insert("day".into(), s(k.day.clone()));
    item.insert("source".into(), s(k.source.clone()));
    item.insert("channel".into(), s(k.channel.clone()));
    item.insert("campaign".into(), s(k.campaign.clone()));
    for (name, v) in counts(c) {
        item.insert(name.into(), n(v));
    }
    item.insert(
        "spend_micros".into(),
        AttributeValue::M(
            c.spend_micros
                .iter()
                .map(|(currency, micros)| (currency.clone(), n(*micros)))
                .collect(),
        ),
    );
    item.insert(
        "ttft_minutes".into(),
        AttributeValue::L(c.ttft_minutes.iter().map(|m| n(*m)).collect()),
    );
    item
}

fn counts(c: &RollupCounts) -> [(&'static str, u64); 16] {
    [
        ("new_leads", c.new_leads),
        ("outbound_leads", c.outbound_leads),
        ("cpl_leads", c.cpl_leads),
        ("submissions", c.submissions),
        ("mqls", c.mqls),
        ("sqls", c.sqls),
        ("customers", c.customers),
        ("score_sum", c.score_sum),
        ("scored", c.scored),
        ("hot", c.hot),
        ("warm", c.warm),
        ("cold", c.cold),
        ("referrals", c.referrals),
        ("reviews", c.reviews),
        ("rating_sum", c.rating_sum),
        ("rated", c.rated),
    ]
}

fn rollup_from(i: &Item) -> Option<(GroupKey, RollupCounts)> {
    let key = GroupKey {
        day: get_s(i, "day")?,
        source: get_s(i, "source")?,
        channel: get_s(i, "channel")?,
        campaign: get_s(i, "campaign")?,
    };
    let g = |name: &str| get_n::<u64>(i, name).unwrap_or(0);
    let c = RollupCounts {
        new_leads: g("new_leads"),
        outbound_leads: g("outbound_leads"),
        // Rows computed before outbound leads were counted apart: every lead was in new_leads
        // and in the cost per lead.
        cpl_leads: get_n(i, "cpl_leads").unwrap_or_else(|| g("new_leads")),
        submissions: g("submissions"),
        mqls: g("mqls"),
        sqls: g("sqls"),
        customers: g("customers"),
        spend_micros: i
            .get("spend_micros")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default(),
        score_sum: g("score_sum"),
        scored: g("scored"),
        hot: g("hot"),
        warm: g("warm"),
        cold: g("cold"),
        referrals: g("referrals"),
        reviews: g("reviews"),
        rating_sum: g("rating_sum"),
        rated: g("rated"),
        ttft_minutes: i
            .get("ttft_minutes")
            .and_then(|v| v.as_l().ok())
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    Some((key, c))
}
