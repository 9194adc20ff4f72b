//! Lookups: a lead by id or by identity, a lead's touchpoints, and a paged scan of leads.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::codec::{
    consent_record_from, get_bool, get_n, get_s, get_time, lead_from, s, touchpoint_from, Item,
};
use super::keys;
use super::{Store, StoreError};
use crate::model::{ConsentRecord, IdentityKey, Lead, Touchpoint};
use crate::predict::Prediction;

/// A lead with touchpoints, its consent history (oldest first) and its reviews as they are
/// now. From `lead_record`: every touchpoint, oldest first; from `lead_view`: one page,
/// newest first, with `more_touchpoints` the cursor of the next page.
#[derive(Debug, Clone)]
pub struct LeadRecord {
    pub lead: Lead,
    pub touchpoints: Vec<Touchpoint>,
    pub consents: Vec<ConsentRecord>,
    /// The predictive score rescore stored beside the rules score, if a model was applied.
    pub prediction: Option<Prediction>,
    /// The lead's reviews in their current state (deleted ones left out), from the review
    /// mirrors in its partition.
    pub reviews: Vec<LeadReview>,
    /// More (older) touchpoints than `touchpoints` holds: the cursor of the next page.
    pub more_touchpoints: Option<TouchCursor>,
}

/// A review of the lead as it is now (`LEAD#<id>` / `REVIEW#<platform>#<id>`, written with
/// the review).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadReview {
    pub platform: String,
    pub external_id: String,
    pub rating: u8,
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Touchpoints one page returns at most; a lead view embeds `LEAD_VIEW_TOUCHPOINTS`. A
/// touchpoint item is bounded (answers, labels, attribution), and a Query page is at most
/// 1 MB anyway, so a page's answer stays far inside Lambda's 6 MB.
pub const MAX_TOUCHPOINT_PAGE: usize = 200;
pub const LEAD_VIEW_TOUCHPOINTS: usize = 50;

/// Where the next page of a lead's touchpoints starts: the sort key of the last touchpoint
/// returned, base64url on the wire. Parsed only as a touchpoint sort key, and always paired
/// with the partition of the lead being read, so it cannot address another item or lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchCursor(String);

impl TouchCursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// `None` for anything that is not a cursor this API gave.
    pub fn parse(wire: &str) -> Option<TouchCursor> {
        use base64::Engine;
        if wire.len() > 256 {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(wire)
            .ok()?;
        let sk = String::from_utf8(raw).ok()?;
        let rest = sk.strip_prefix(keys::TOUCH_SK_PREFIX)?;
        // `TP#<RFC 3339 ms>#<uuid>`: printable ASCII only, nothing else.
        (rest.len() <= 80 && rest.contains('#') && rest.bytes().all(|b| b.is_ascii_graphic()))
            .then_some(TouchCursor(sk))
    }
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

    /// The lead with every touchpoint (Query on the lead's partition, paged): tools and
    /// tests. The API reads `lead_view`, whose size does not grow with the lead's history.
    pub async fn lead_record(&self, lead_id: &str) -> Result<Option<LeadRecord>, StoreError> {
        let items = self.partition_items(&keys::lead_pk(lead_id)).await?;
        Ok(record_from_items(&items))
    }

    /// The lead with one page of touchpoints, newest first (`limit` at most
    /// `MAX_TOUCHPOINT_PAGE`, from `cursor`), its consent history and reviews: 1 Query of the
    /// items sorted before the score changes (`#LEAD`, `CONSENT#`, `EV#`, `REF#`, `REVIEW#`;
    /// 1 per MB) + 1 Query of the touchpoints (one page, at most 1 MB). 2 round trips.
    pub async fn lead_view(
        &self,
        lead_id: &str,
        limit: usize,
        cursor: Option<&TouchCursor>,
    ) -> Result<Option<LeadRecord>, StoreError> {
        let pk = keys::lead_pk(lead_id);
        let head = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk < :score")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .expression_attribute_values(":score", s(keys::SCORE_CHANGE_SK_PREFIX))
                    .consistent_read(true)
            })
            .await?;
        if !head
            .iter()
            .any(|i| get_s(i, keys::SK).as_deref() == Some(keys::LEAD_SK))
        {
            return Ok(None);
        }
        let (touches, next) = self.touchpoint_page(lead_id, limit, cursor).await?;
        let mut record = match record_from_items(&head) {
            Some(r) => r,
            None => return Ok(None),
        };
        record.touchpoints = touches;
        record.more_touchpoints = next;
        Ok(Some(record))
    }

    /// One page of a lead's touchpoints, newest first, and the cursor of the next (1 Query,
    /// at most `MAX_TOUCHPOINT_PAGE` items and 1 MB).
    pub async fn touchpoint_page(
        &self,
        lead_id: &str,
        limit: usize,
        cursor: Option<&TouchCursor>,
    ) -> Result<(Vec<Touchpoint>, Option<TouchCursor>), StoreError> {
        let pk = keys::lead_pk(lead_id);
        let start = cursor.map(|c| {
            std::collections::HashMap::from([
                (keys::PK.to_string(), s(pk.clone())),
                (keys::SK.to_string(), s(c.0.clone())),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :tp)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":tp", s(keys::TOUCH_SK_PREFIX))
            .scan_index_forward(false)
            .limit(limit.clamp(1, MAX_TOUCHPOINT_PAGE) as i32)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        let touches = out.items().iter().filter_map(touchpoint_from).collect();
        let next = out
            .last_evaluated_key()
            .and_then(|k| get_s(k, keys::SK))
            .map(TouchCursor);
        Ok((touches, next))
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

    /// The items with the given keys that exist, read consistently: 1 BatchGetItem per 100
    /// keys (and per 16 MB), unprocessed keys sent again with backoff (at most 6 attempts).
    pub(crate) async fn batch_get(
        &self,
        wanted: Vec<(String, String)>,
    ) -> Result<Vec<Item>, StoreError> {
        const BATCH_GET_MAX: usize = 100;
        const BATCH_GET_ATTEMPTS: u32 = 6;
        let mut items = Vec::new();
        for chunk in wanted.chunks(BATCH_GET_MAX) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                request = request.keys(std::collections::HashMap::from([
                    (keys::PK.to_string(), s(pk.clone())),
                    (keys::SK.to_string(), s(sk.clone())),
                ]));
            }
            let mut pending = Some(request.build().expect("keys are set"));
            for attempt in 0..BATCH_GET_ATTEMPTS {
                let Some(req) = pending.take() else { break };
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.table.clone(), req)
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("BatchGetItem", e))?;
                if let Some(found) = out.responses().and_then(|r| r.get(&self.table)) {
                    items.extend(found.iter().cloned());
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|m| m.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                if pending.is_some() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
            if pending.is_some() {
                return Err(StoreError::Contention {
                    attempts: BATCH_GET_ATTEMPTS,
                });
            }
        }
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
    let reviews = items
        .iter()
        .filter(|i| {
            get_s(i, keys::SK).is_some_and(|sk| sk.starts_with(keys::LEAD_REVIEW_SK_PREFIX))
        })
        .filter(|i| !get_bool(i, "deleted"))
        .filter_map(|i| {
            Some(LeadReview {
                platform: get_s(i, "platform")?,
                external_id: get_s(i, "external_id")?,
                rating: get_n(i, "rating")?,
                published_at: get_time(i, "published_at"),
                updated_at: get_time(i, "updated_at"),
            })
        })
        .collect();
    Some(LeadRecord {
        lead,
        touchpoints,
        consents,
        prediction: super::predict::prediction_from(lead_item),
        reviews,
        more_touchpoints: None,
    })
}
