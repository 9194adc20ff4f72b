//! Leads that platforms only announce by id (Meta, LinkedIn): which of them are stored already
//! (so a retried delivery fetches only the others), the ones the platform no longer has
//! (`lead_gone`), and the ones the person withdrew (LinkedIn `leadAction: DELETED`).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::codec::{get_n, get_s, get_time, n, s, Item};
use super::keys::{self, ts};
use super::{Store, StoreError};
use crate::model::{DeliveryKey, LeadGone};

/// How long a `lead_gone` record is kept: as long as a delivery marker, longer than any
/// platform's retry schedule, long enough for an operator to look.
const LEAD_GONE_TTL_DAYS: i64 = 90;

/// Where an earlier delivery of a lead was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub lead_id: String,
    pub touch_id: String,
}

/// What withdrawing a lead did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawal {
    /// The touchpoint it became is marked withdrawn (again, for a repeated notification).
    Withdrawn { lead_id: String, touch_id: String },
    /// No delivery of that lead is known (never stored, or longer ago than the marker TTL).
    Unknown,
}

impl Store {
    /// The delivery markers that exist (and have not expired) among `keys`, by key: 1
    /// BatchGetItem per 100 keys, strongly consistent, so a lead stored a moment ago counts.
    pub async fn stored_deliveries(
        &self,
        provider: &str,
        keys: &[DeliveryKey],
        now: DateTime<Utc>,
    ) -> Result<HashMap<DeliveryKey, StoredDelivery>, StoreError> {
        let by_pk: HashMap<String, &DeliveryKey> = keys
            .iter()
            .map(|k| (keys::delivery_pk(provider, k), k))
            .collect();
        let wanted: Vec<(String, String)> = by_pk
            .keys()
            .map(|pk| (pk.clone(), keys::DELIVERY_SK.to_string()))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get(wanted).await? {
            let live =
                get_n::<i64>(&item, keys::EXPIRES_AT).is_none_or(|exp| exp >= now.timestamp());
            let (Some(pk), Some(lead_id), Some(touch_id)) = (
                get_s(&item, keys::PK),
                get_s(&item, "lead_id"),
                get_s(&item, "touch_id"),
            ) else {
                continue;
            };
            if let (true, Some(key)) = (live, by_pk.get(&pk)) {
                found.insert((*key).clone(), StoredDelivery { lead_id, touch_id });
            }
        }
        Ok(found)
    }

    /// Records a lead the platform says it does not have (deleted before we fetched it, or a
    /// made-up test id): its ids and the platform's answer, no personal data. Keyed by the
    /// platform's lead id, so a retried delivery updates the same record (1 UpdateItem).
    pub async fn record_lead_gone(&self, gone: &LeadGone) -> Result<(), StoreError> {
        let id = keys::lead_gone_pk(&gone.provider, &gone.platform_lead_id);
        let ids: HashMap<String, AttributeValue> = gone
            .ids
            .iter()
            .map(|(k, v)| (k.clone(), s(v.clone())))
            .collect();
        let expires = (gone.received_at + Duration::days(LEAD_GONE_TTL_DAYS)).timestamp();
        self.client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(id.clone()))
            .key(keys::SK, s(keys::LEAD_GONE_SK))
            .update_expression(
                "SET #type = :type, gsi1pk = :gsi, gsi1sk = :gsisk, provider = :provider, \
                 platform_lead_id = :lead, ids = :ids, http_status = :status, reason = :reason, \
                 last_received_at = :at, first_received_at = if_not_exists(first_received_at, :at), \
                 expires_at = :exp ADD deliveries :one",
            )
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", s("lead_gone"))
            .expression_attribute_values(":gsi", s(keys::LEAD_GONE_GSI))
            .expression_attribute_values(
                ":gsisk",
                s(format!("{}#{id}", ts(gone.received_at))),
            )
            .expression_attribute_values(":provider", s(gone.provider.clone()))
            .expression_attribute_values(":lead", s(gone.platform_lead_id.clone()))
            .expression_attribute_values(":ids", AttributeValue::M(ids))
            .expression_attribute_values(":status", n(gone.http_status))
            .expression_attribute_values(":reason", s(gone.reason.clone()))
            .expression_attribute_values(":at", s(ts(gone.received_at)))
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }

    /// `lead_gone` records, oldest first, expired ones left out (Query on the index).
    pub async fn list_lead_gone(&self, limit: usize) -> Result<Vec<LeadGone>, StoreError> {
        let items = self
            .live_index_partition(keys::LEAD_GONE_GSI, Utc::now())
            .await?;
        Ok(items
            .iter()
            .filter_map(lead_gone_from)
            .take(limit)
            .collect())
    }

    /// Marks the touchpoint a platform delivery became as withdrawn and drops its answers (the
    /// person deleted the lead at the platform). Finds it through the delivery marker: 1 GetItem
    /// and 1 UpdateItem (markers written before the marker named its touchpoint's key cost one
    /// Query of the lead's partition more). Idempotent.
    pub async fn withdraw_delivery(
        &self,
        provider: &str,
        delivery: &DeliveryKey,
        at: DateTime<Utc>,
    ) -> Result<Withdrawal, StoreError> {
        let Some(marker) = self
            .get_item(keys::delivery_pk(provider, delivery), keys::DELIVERY_SK)
            .await?
        else {
            return Ok(Withdrawal::Unknown);
        };
        let (Some(lead_id), Some(touch_id)) =
            (get_s(&marker, "lead_id"), get_s(&marker, "touch_id"))
        else {
            return Err(StoreError::Corrupt {
                key: keys::delivery_pk(provider, delivery),
                reason: "delivery marker without lead_id / touch_id".into(),
            });
        };
        let touch_sk = match get_s(&marker, "touch_sk") {
            Some(sk) => sk,
            None => match self.touch_sk_of(&lead_id, &touch_id).await? {
                Some(sk) => sk,
                None => return Ok(Withdrawal::Unknown),
            },
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::lead_pk(&lead_id)))
            .key(keys::SK, s(touch_sk))
            .update_expression(
                "SET withdrawn_at = if_not_exists(withdrawn_at, :at), custom = :empty",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", s(ts(at)))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Withdrawal::Withdrawn { lead_id, touch_id }),
            // The lead was erased since: nothing left to withdraw.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(Withdrawal::Unknown)
            }
            Err(e) => Err(StoreError::sdk("UpdateItem", e)),
        }
    }

    /// The sort key of a lead's touchpoint, by touch id (1 Query of the lead's touchpoints).
    async fn touch_sk_of(
        &self,
        lead_id: &str,
        touch_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :tp)")
                    .filter_expression("touch_id = :t")
                    .expression_attribute_values(":pk", s(keys::lead_pk(lead_id)))
                    .expression_attribute_values(":tp", s(keys::TOUCH_SK_PREFIX))
                    .expression_attribute_values(":t", s(touch_id))
                    .consistent_read(true)
            })
            .await?;
        Ok(items.first().and_then(|i| get_s(i, keys::SK)))
    }
}

fn lead_gone_from(item: &Item) -> Option<LeadGone> {
    Some(LeadGone {
        provider: get_s(item, "provider")?,
        platform_lead_id: get_s(item, "platform_lead_id")?,
        ids: item
            .get("ids")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
        http_status: get_n(item, "http_status").unwrap_or(0),
        reason: get_s(item, "reason").unwrap_or_default(),
        received_at: get_time(item, "last_received_at")?,
        deliveries: get_n(item, "deliveries").unwrap_or(1),
    })
}
