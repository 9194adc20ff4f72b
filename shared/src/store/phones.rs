//! Re-normalizing stored phones: leads whose number was refused by an older parser (kept as
//! `phone_raw`, no `phone`) get the number once it parses, with its identity marker claimed in
//! the same transaction, exactly as ingest claims markers. Never merges two leads: when another
//! lead owns the number, nothing is written and the caller reports it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, Utc};

use super::codec::{get_s, n, s};
use super::keys::{self, ts};
use super::txn::{backoff, failed};
use super::{Store, StoreError};
use crate::model::IdentityKey;
use crate::normalize::Phone;

const MAX_ATTEMPTS: u32 = 6;

/// A lead whose phone did not parse when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedPhone {
    pub lead_id: String,
    /// The number as it was sent.
    pub phone_raw: String,
    /// The lead's `country`, the region its number is read in when written in national form.
    pub country: Option<String>,
}

/// What [`Store::adopt_phone`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneAdoption {
    /// The lead has the number now and owns its identity marker.
    Adopted,
    /// Another lead owns the number's marker: nothing written (two leads may be one person;
    /// that is for a person to decide, not this command).
    HeldBy(String),
    /// The lead is not as it was read (it has a phone now, another `phone_raw`, was erased or
    /// deleted): nothing written.
    LeadChanged,
}

impl Store {
    /// Leads with a `phone_raw` and no `phone` (a paged, filtered Scan: an operator's tool, not a
    /// request path).
    pub async fn leads_with_refused_phone(&self) -> Result<Vec<RefusedPhone>, StoreError> {
        let items = self
            .scan_lead_items(
                "attribute_exists(phone_raw) AND attribute_not_exists(phone) \
                 AND attribute_not_exists(erased)",
                "lead_id, phone_raw, country",
                &[],
            )
            .await?;
        let mut found: Vec<RefusedPhone> = items
            .iter()
            .filter_map(|item| {
                Some(RefusedPhone {
                    lead_id: get_s(item, "lead_id")?,
                    phone_raw: get_s(item, "phone_raw")?,
                    country: get_s(item, "country"),
                })
            })
            .collect();
        found.sort_by(|a, b| a.lead_id.cmp(&b.lead_id));
        Ok(found)
    }

    /// Gives `lead` the number its `phone_raw` parses to, in one transaction: the identity
    /// marker (`attribute_not_exists`, as ingest writes it) and the lead update, conditioned on
    /// the lead still having this `phone_raw` and no `phone` (so a rerun, or a lead changed in
    /// between, writes nothing). The lead drops `phone_raw`, gains `phone` (and `phone_ext`),
    /// lists the marker in `identity_keys` and bumps `version`.
    pub async fn adopt_phone(
        &self,
        lead: &RefusedPhone,
        phone: &Phone,
        at: DateTime<Utc>,
    ) -> Result<PhoneAdoption, StoreError> {
        let key = IdentityKey::Phone(phone.e164.clone());
        // Set when the marker turns out to name this lead already (a marker written by hand or
        // by an interrupted repair): then only the lead is updated.
        let mut marker_is_ours = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut items = vec![self.adopt_update(lead, phone, &key, at)];
            if !marker_is_ours {
                items.push(self.marker_put(&key, &lead.lead_id, at));
            }
            let Some(reasons) = self.transact_or_cancelled(items).await? else {
                return Ok(PhoneAdoption::Adopted);
            };
            if reasons.first().is_some_and(failed) {
                return Ok(PhoneAdoption::LeadChanged);
            }
            if let Some(marker) = reasons.get(1).filter(|r| failed(r)) {
                match marker.item().and_then(|i| get_s(i, "lead_id")) {
                    Some(owner) if owner == lead.lead_id => {
                        marker_is_ours = true;
                        continue;
                    }
                    Some(owner) => return Ok(PhoneAdoption::HeldBy(owner)),
                    // Failed without naming its lead (being erased): ask again after a pause.
                    None => {}
                }
            }
            // A conflict with another transaction, or throttling: try again.
            backoff(attempt).await;
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    fn adopt_update(
        &self,
        lead: &RefusedPhone,
        phone: &Phone,
        key: &IdentityKey,
        at: DateTime<Utc>,
    ) -> TransactWriteItem {
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":phone".into(), s(phone.e164.clone())),
            (":raw".into(), s(lead.phone_raw.clone())),
            (":now".into(), s(ts(at))),
            (":one".into(), n(1)),
            (
                ":ids".into(),
                AttributeValue::Ss(vec![keys::identity_pk(key)]),
            ),
        ]);
        let mut sets = vec!["phone = :phone", "updated_at = :now"];
        if let Some(ext) = &phone.extension {
            values.insert(":ext".into(), s(ext.clone()));
            sets.push("phone_ext = :ext");
        }
        let update = self
            .lead_update(&lead.lead_id)
            .update_expression(format!(
                "SET {} REMOVE phone_raw ADD identity_keys :ids, version :one",
                sets.join(", ")
            ))
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(phone) AND phone_raw = :raw \
                 AND attribute_not_exists(erased)",
            )
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }
}
