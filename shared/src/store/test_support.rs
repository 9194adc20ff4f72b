//! Raw reads and bulk writes for tests and benchmarks (feature `test-support`): what they check
//! or seed beyond the typed API, still through the store, which keeps every key. Never compiled
//! into a function.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures_util::stream::{self, TryStreamExt};

use super::codec::{get_s, s, Item};
use super::{keys, Store, StoreError};
use crate::model::{Lead, Touchpoint};

/// BatchWriteItem takes at most 25 items per request.
const BATCH: usize = 25;

impl Store {
    /// The leads created on a reporting day (the store's zone), whole (tests: what an import or a seed stored), from a
    /// Scan: independent of the day indexes under test.
    pub async fn leads_created_on(&self, day: &str) -> Result<Vec<Lead>, StoreError> {
        Ok(self
            .scan_table()
            .await?
            .iter()
            .filter(|i| get_s(i, keys::SK).as_deref() == Some(keys::LEAD_SK))
            .filter_map(super::codec::lead_from)
            .filter(|l| self.zone.day(l.created_at).to_string() == day)
            .collect())
    }

    /// The touchpoints that occurred on a reporting day, whole, from a Scan.
    pub async fn touches_on(&self, day: &str) -> Result<Vec<Touchpoint>, StoreError> {
        Ok(self
            .scan_table()
            .await?
            .iter()
            .filter(|i| get_s(i, keys::SK).is_some_and(|sk| sk.starts_with(keys::TOUCH_SK_PREFIX)))
            .filter_map(super::codec::touchpoint_from)
            .filter(|t| self.zone.day(t.occurred_at).to_string() == day)
            .collect())
    }

    /// The lead item with every attribute, including those [`crate::model::Lead`] does not
    /// model (1 consistent GetItem).
    pub async fn raw_lead_item(&self, lead_id: &str) -> Result<Option<Item>, StoreError> {
        self.get_item(keys::lead_pk(lead_id), keys::LEAD_SK).await
    }

    /// Sets one attribute of a lead item as is (benches: a stale score to rescore).
    pub async fn set_lead_attribute(
        &self,
        lead_id: &str,
        name: &str,
        value: AttributeValue,
    ) -> Result<(), StoreError> {
        self.set_item_attribute(&keys::lead_pk(lead_id), keys::LEAD_SK, name, value)
            .await
    }

    /// Sets one attribute of any item as is (tests: an item as an older version wrote it).
    pub async fn set_item_attribute(
        &self,
        pk: &str,
        sk: &str,
        name: &str,
        value: AttributeValue,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", name)
            .expression_attribute_values(":v", value)
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }

    /// Every item of a lead's partition: the lead, its touchpoints, its records.
    pub async fn lead_partition(&self, lead_id: &str) -> Result<Vec<Item>, StoreError> {
        self.partition_items(&keys::lead_pk(lead_id)).await
    }

    /// Every item of the table (paged Scan, strongly consistent): what is left anywhere.
    pub async fn scan_table(&self) -> Result<Vec<Item>, StoreError> {
        self.scan_all(|| {
            self.client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
        })
        .await
    }

    /// Writes a copy of a lead's partition (`template`, from [`Store::lead_partition`]) under
    /// each of `lead_ids`; `edit` may change the copy's attributes first (given the copy's
    /// index). For seeding large benchmark tables: batches of 25, 8 at once, unprocessed items
    /// sent again.
    pub async fn put_lead_copies(
        &self,
        template: &[Item],
        lead_ids: &[String],
        edit: impl Fn(usize, &mut Item),
    ) -> Result<(), StoreError> {
        let writes: Vec<WriteRequest> = lead_ids
            .iter()
            .enumerate()
            .flat_map(|(i, id)| {
                template.iter().map(move |t| {
                    let mut item = t.clone();
                    item.insert(keys::PK.into(), s(keys::lead_pk(id)));
                    item.insert("lead_id".into(), AttributeValue::S(id.clone()));
                    (i, item)
                })
            })
            .map(|(i, mut item)| {
                edit(i, &mut item);
                let put = PutRequest::builder().set_item(Some(item)).build();
                put.map(|p| WriteRequest::builder().put_request(p).build())
            })
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Corrupt {
                key: "(copy)".into(),
                reason: e.to_string(),
            })?;
        stream::iter(writes.chunks(BATCH).map(|b| Ok(b.to_vec())))
            .try_for_each_concurrent(8, |batch| self.write_batch(batch))
            .await
    }

    /// Turns the table into what the version before issue 13 wrote, to test the migration:
    /// leads and touchpoints lose their gsi2 keys and `review_rating`, the review mirrors in
    /// lead partitions go, and each platform's aggregate shards are folded into the one
    /// unsharded item. Returns how many items changed.
    pub async fn rewrite_as_pre_issue13(&self) -> Result<usize, StoreError> {
        use std::collections::{BTreeMap, HashMap};
        let mut changed = 0;
        let mut legacy_aggs: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for item in self.scan_table().await? {
            let (Some(pk), Some(sk)) = (
                item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned(),
                item.get(keys::SK).and_then(|v| v.as_s().ok()).cloned(),
            ) else {
                continue;
            };
            let key = HashMap::from([
                (keys::PK.to_string(), s(pk.clone())),
                (keys::SK.to_string(), s(sk.clone())),
            ]);
            let mirror =
                pk.starts_with(keys::LEAD_PK_PREFIX) && sk.starts_with(keys::LEAD_REVIEW_SK_PREFIX);
            let shard_of = pk
                .strip_prefix("REVIEWAGG#")
                .and_then(|rest| rest.split_once('#'))
                .map(|(p, _)| p.to_string());
            if let Some(platform) = &shard_of {
                let sums = legacy_aggs.entry(platform.clone()).or_default();
                for (name, v) in &item {
                    if let Some(v) = v.as_n().ok().and_then(|n| n.parse::<i64>().ok()) {
                        *sums.entry(name.clone()).or_default() += v;
                    }
                }
            }
            if mirror || shard_of.is_some() {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("DeleteItem", e))?;
                changed += 1;
            } else if item.contains_key(keys::GSI2_PK) {
                // Touchpoints written now carry no gsi1 day keys; before issue 13 they had
                // only those: the same day (gsi2's key less its shard) and sort key.
                let gsi1 = match (item.get(keys::GSI2_PK), item.get(keys::GSI2_SK)) {
                    (Some(AttributeValue::S(p)), Some(sort))
                        if !item.contains_key(keys::GSI1_PK) =>
                    {
                        p.rsplit_once('#')
                            .map(|(day, _)| (day.to_string(), sort.clone()))
                    }
                    _ => None,
                };
                let mut update = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key));
                let set = if let Some((day, sort)) = gsi1 {
                    update = update
                        .expression_attribute_values(":g1", s(day))
                        .expression_attribute_values(":g1s", sort);
                    format!("SET {} = :g1, {} = :g1s ", keys::GSI1_PK, keys::GSI1_SK)
                } else {
                    String::new()
                };
                update
                    .update_expression(format!(
                        "{set}REMOVE {}, {}, {}",
                        keys::GSI2_PK,
                        keys::GSI2_SK,
                        keys::REVIEW_RATING
                    ))
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("UpdateItem", e))?;
                changed += 1;
            }
        }
        for (platform, sums) in legacy_aggs {
            let mut item: Item = sums
                .into_iter()
                .map(|(k, v)| (k, super::codec::n(v)))
                .collect();
            item.insert(keys::PK.into(), s(keys::legacy_review_agg_pk(&platform)));
            item.insert(keys::SK.into(), s(keys::REVIEW_AGG_SK));
            item.insert("platform".into(), s(platform));
            item.insert("type".into(), s("review_aggregate"));
            self.put(item).await?;
        }
        Ok(changed)
    }
}
