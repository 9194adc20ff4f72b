//! Lookups: a lead by id or by identity, a lead's touchpoints, and a paged scan of leads.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::{consent_record_from, get_n, get_s, lead_from, s, touchpoint_from, Item};
use super::keys;
use super::{Store, StoreError};
use crate::model::{ConsentRecord, IdentityKey, Lead, Touchpoint};
use crate::predict::Prediction;

/// A lead with its touchpoints and its consent history, oldest first: one Query.
#[derive(Debug, Clone)]
pub struct LeadRecord {
    pub lead: Lead,
    pub touchpoints: Vec<Touchpoint>,
    pub consents: Vec<ConsentRecord>,
    /// The predictive score rescore stored beside the rules score, if a model was applied.
    pub prediction: Option<Prediction>,
}

impl Store {
    /// One item by key, strongly consistent (1 GetItem).
    pub(crate) async fn get_item(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk("GetItem", e))?;
        Ok(out.item)
    }

    /// The lead's id for an identity key (1 GetItem), if anyone has it.
    pub async fn lead_id_for(&self, key: &IdentityKey) -> Result<Option<String>, StoreError> {
        let item = self
            .get_item(keys::identity_pk(key), keys::MARKER_SK)
            .await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "lead_id")))
    }

    /// The lead item alone (1 GetItem).
    pub async fn get_lead(&self, lead_id: &str) -> Result<Option<Lead>, StoreError> {
        let item = self.get_item(keys::lead_pk(lead_id), keys::LEAD_SK).await?;
        match item.as_ref() {
            None => Ok(None),
            Some(item) => lead_from(item)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt {
                    key: keys::lead_pk(lead_id),
                    reason: "lead item lacks required attributes".into(),
                }),
        }
    }

    /// The lead with every touchpoint (Query on the lead's partition, paged).
    pub async fn lead_record(&self, lead_id: &str) -> Result<Option<LeadRecord>, StoreError> {
        let items = self.partition_items(&keys::lead_pk(lead_id)).await?;
        Ok(record_from_items(&items))
    }

    /// Every item of one partition (paged Query, strongly consistent).
    pub(crate) async fn partition_items(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(|| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
        })
        .await
    }

    /// The items of one partition whose sort key starts with `prefix`, in order (consistent,
    /// paged).
    pub(crate) async fn partition_prefix(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_all(|| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":p", s(prefix))
                .consistent_read(true)
        })
        .await
    }

    /// Every item of one gsi1 partition, in gsi1sk order (paged Query on the index, eventually
    /// consistent like every index read).
    pub(crate) async fn index_partition(&self, gsi1pk: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(|| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI1)
                .key_condition_expression("gsi1pk = :g")
                .expression_attribute_values(":g", s(gsi1pk))
        })
        .await
    }

    /// The same, without items whose TTL has passed (TTL deletes within days, not at once).
    pub(crate) async fn live_index_partition(
        &self,
        gsi1pk: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Item>, StoreError> {
        let now = now.timestamp();
        let mut items = self.index_partition(gsi1pk).await?;
        items.retain(|i| get_n::<i64>(i, keys::EXPIRES_AT).is_none_or(|e| e >= now));
        Ok(items)
    }

    /// Runs a Query to the end, page after page (1 request per 1 MB page).
    pub(crate) async fn query_all(
        &self,
        query: impl Fn() -> QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = query()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::sdk("Query", e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// Runs a Scan to the end, page after page (1 request per 1 MB page).
    pub(crate) async fn scan_all(
        &self,
        scan: impl Fn() -> ScanFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = scan()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::sdk("Scan", e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// Lead items matching `filter` (besides `type = lead`), with only `projection`: a paged,
    /// filtered Scan for operators' tools and daily jobs, not a request path.
    pub(crate) async fn scan_lead_items(
        &self,
        filter: &str,
        projection: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<Item>, StoreError> {
        self.scan_all(|| {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(format!("#t = :lead AND {filter}"))
                .projection_expression(projection)
                .expression_attribute_names("#t", "type")
                .expression_attribute_values(":lead", s("lead"))
                .consistent_read(true);
            for (k, v) in values {
                scan = scan.expression_attribute_values(*k, v.clone());
            }
            scan
        })
        .await
    }

    /// Every lead, via a paged Scan filtered to lead items (tools and small tables only: the
    /// scheduled jobs use parallel segments).
    pub async fn scan_leads(&self) -> Result<Vec<Lead>, StoreError> {
        let items = self
            .scan_all(|| {
                self.client
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("#t = :lead")
                    .expression_attribute_names("#t", "type")
                    .expression_attribute_values(":lead", s("lead"))
            })
            .await?;
        let mut leads: Vec<Lead> = items.iter().filter_map(lead_from).collect();
        leads.sort_by_key(|l| l.created_at);
        Ok(leads)
    }
}

/// Groups one partition's items into a lead record.
pub fn record_from_items(items: &[Item]) -> Option<LeadRecord> {
    let lead_item = items
        .iter()
        .find(|i| get_s(i, keys::SK).as_deref() == Some(keys::LEAD_SK))?;
    let lead = lead_from(lead_item)?;
    let mut touchpoints: Vec<Touchpoint> = items
        .iter()
        .filter(|i| {
            get_s(i, keys::SK)
                .map(|sk| sk.starts_with(keys::TOUCH_SK_PREFIX))
                .unwrap_or(false)
        })
        .filter_map(touchpoint_from)
        .collect();
    touchpoints.sort_by_key(|t| t.occurred_at);
    let mut consents: Vec<ConsentRecord> = items
        .iter()
        .filter(|i| get_s(i, keys::SK).is_some_and(|sk| sk.starts_with(keys::CONSENT_SK_PREFIX)))
        .filter_map(consent_record_from)
        .collect();
    consents.sort_by_key(|c| (c.at, c.recorded_at));
    Some(LeadRecord {
        lead,
        touchpoints,
        consents,
        prediction: super::predict::prediction_from(lead_item),
    })
}
