//! Spend entries and metric rollups. Both live in day partitions (`SPEND#<day>`,
//! `ROLLUP#<day>`), and the inputs of a rollup are read through the day index (gsi1), so nothing
//! here scans the table.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};

use super::codec::{get_n, get_s, lead_from, n, s, touchpoint_from, Item};
use super::keys::{self, ts};
use super::{Store, StoreError};
use crate::metrics::{GroupKey, RollupCounts, SpendEntry};
use crate::model::{Lead, Touchpoint};

impl Store {
    /// Records a day's spend for a source and campaign; a second post for the same day x source
    /// x campaign replaces the first (1 PutItem), so re-sending a feed never double counts.
    pub async fn put_spend(&self, e: &SpendEntry, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::spend_pk(&e.day)));
        item.insert(keys::SK.into(), s(keys::spend_sk(&e.source, &e.campaign)));
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

    pub async fn spend_on(&self, day: &str) -> Result<Vec<SpendEntry>, StoreError> {
        let items = self.partition_items(&keys::spend_pk(day)).await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                Some(SpendEntry {
                    day: get_s(i, "day")?,
                    source: get_s(i, "source")?,
                    channel: get_s(i, "channel").unwrap_or_else(|| "other".into()),
                    campaign: get_s(i, "campaign")?,
                    amount_micros: get_n(i, "amount_micros")?,
                    currency: get_s(i, "currency").unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Leads created on a day (Query on the day index).
    pub async fn leads_created_on(&self, day: &str) -> Result<Vec<Lead>, StoreError> {
        let items = self.index_partition(&format!("LEADS#{day}")).await?;
        Ok(items.iter().filter_map(lead_from).collect())
    }

    /// Touchpoints that occurred on a day (Query on the day index).
    pub async fn touches_on(&self, day: &str) -> Result<Vec<Touchpoint>, StoreError> {
        let items = self.index_partition(&format!("TOUCHES#{day}")).await?;
        Ok(items.iter().filter_map(touchpoint_from).collect())
    }

    /// Replaces a day's rollups: writes every row and deletes rows of groups that no longer
    /// exist, so recomputing a day overwrites it and never adds to it.
    pub async fn replace_day_rollups(
        &self,
        day: &str,
        rows: &BTreeMap<GroupKey, RollupCounts>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let pk = keys::rollup_pk(day);
        let existing: Vec<String> = self
            .partition_items(&pk)
            .await?
            .iter()
            .filter_map(|i| get_s(i, keys::SK))
            .collect();
        let mut writes: Vec<WriteRequest> = Vec::new();
        let mut wanted = std::collections::HashSet::new();
        for (k, c) in rows {
            let sk = keys::rollup_sk(&k.source, &k.channel, &k.campaign);
            wanted.insert(sk.clone());
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
        for sk in existing.into_iter().filter(|sk| !wanted.contains(sk)) {
            let mut key = HashMap::new();
            key.insert(keys::PK.to_string(), s(pk.clone()));
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
            let mut pending = chunk.to_vec();
            // BatchWriteItem may leave items unprocessed under load: resend them, bounded.
            for attempt in 0..8u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.clone(), pending.clone())
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items()
                    .and_then(|m| m.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Contention { attempts: 8 });
            }
        }
        Ok(count)
    }

    /// Stored rollups of the days from `from` to `to` inclusive (one Query per day).
    pub async fn rollups_between(
        &self,
        days: &[String],
    ) -> Result<Vec<(GroupKey, RollupCounts)>, StoreError> {
        let mut out = Vec::new();
        for day in days {
            for item in self.partition_items(&keys::rollup_pk(day)).await? {
                if let Some(row) = rollup_from(&item) {
                    out.push(row);
                }
            }
        }
        Ok(out)
    }
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
    item.insert("spend_micros".into(), n(c.spend_micros));
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
        spend_micros: get_n(i, "spend_micros").unwrap_or(0),
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
