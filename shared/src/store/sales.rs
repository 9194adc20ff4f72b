//! Sales events: the writes lead-api makes to a lead (erasure is `erasure`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::codec::{n, s, Item};
use super::keys::{self, ts};
use super::txn::{cancellation_reasons, failed};
use super::{Store, StoreError};
use crate::model::Lead;
use crate::sales::{apply, SalesEvent};

const MAX_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, PartialEq)]
pub enum SalesEventOutcome {
    /// No such lead (or it was erased).
    NotFound,
    /// Applied; the lead as it is now.
    Applied(Box<Lead>),
    /// This event id was recorded before: nothing changed.
    Duplicate(Box<Lead>),
}

impl Store {
    /// Records a sales event once per event id and applies it to the lead (forward-only stage).
    /// 1 GetItem + 1 TransactWriteItems; the write is conditional on the lead's version, so a
    /// concurrent ingest or rescore is never overwritten (the event is re-applied on top).
    pub async fn record_sales_event(
        &self,
        lead_id: &str,
        event: &SalesEvent,
        now: DateTime<Utc>,
    ) -> Result<SalesEventOutcome, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(lead) = self.get_lead(lead_id).await? else {
                return Ok(SalesEventOutcome::NotFound);
            };
            if lead.sales.erased {
                return Ok(SalesEventOutcome::NotFound);
            }
            let change = apply(&lead, event);
            let mut event_item = Item::new();
            event_item.insert(keys::PK.into(), s(keys::lead_pk(lead_id)));
            event_item.insert(keys::SK.into(), s(keys::sales_event_sk(&event.event_id)));
            event_item.insert("type".into(), s("sales_event"));
            event_item.insert("event_id".into(), s(event.event_id.clone()));
            event_item.insert("event".into(), s(event.kind.as_str()));
            event_item.insert("at".into(), s(ts(event.at)));
            event_item.insert("recorded_at".into(), s(ts(now)));
            if let Some(v) = event.value {
                event_item.insert("value".into(), n(v));
            }
            if let Some(r) = &event.reason {
                event_item.insert("reason".into(), s(r.clone()));
            }
            let put = self.put_new(event_item);

            let mut sets = vec!["updated_at = :now".to_string()];
            let mut values: HashMap<String, AttributeValue> = HashMap::new();
            values.insert(":now".into(), s(ts(now)));
            values.insert(":v".into(), n(lead.version));
            values.insert(":one".into(), n(1));
            let mut add = vec!["version :one".to_string()];
            let mut set_time = |name: &str, t: Option<DateTime<Utc>>| {
                if let Some(t) = t {
                    values.insert(format!(":{name}"), s(ts(t)));
                    sets.push(format!("{name} = :{name}"));
                }
            };
            set_time("sql_at", change.sql_at);
            set_time("customer_at", change.customer_at);
            set_time("first_contacted_at", change.first_contacted_at);
            set_time("lost_at", change.lost_at);
            if let Some(stage) = change.stage {
                values.insert(":stage".into(), s(stage.as_str()));
                sets.push("stage = :stage".into());
            }
            if let Some(r) = &change.lost_reason {
                values.insert(":lost_reason".into(), s(r.clone()));
                sets.push("lost_reason = :lost_reason".into());
            }
            if let Some(v) = change.won_value {
                values.insert(":won_value".into(), n(v));
                sets.push("won_value = :won_value".into());
            }
            if !change.do_not_contact.is_empty() {
                values.insert(
                    ":dnc".into(),
                    AttributeValue::Ss(change.do_not_contact.clone()),
                );
                add.push("do_not_contact :dnc".into());
            }
            if change.withdraw_consent {
                let mut consent = HashMap::new();
                consent.insert("opt_in".to_string(), AttributeValue::Bool(false));
                consent.insert("at".to_string(), s(ts(event.at)));
                consent.insert("text".to_string(), s("withdrawn via lead-api"));
                values.insert(":consent".into(), AttributeValue::M(consent));
                sets.push("consent = :consent".into());
            }
            let update = self
                .lead_update(lead_id)
                .update_expression(format!("SET {} ADD {}", sets.join(", "), add.join(", ")))
                .condition_expression("version = :v")
                .set_expression_attribute_values(Some(values))
                .build()
                .expect("update has table, key and expression");
            let mut txn = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(TransactWriteItem::builder().update(update).build());
            if change.withdraw_consent {
                // The opt-out joins the consent history, like every answer a form carried.
                let mut consent = Item::new();
                consent.insert(keys::PK.into(), s(keys::lead_pk(lead_id)));
                consent.insert(
                    keys::SK.into(),
                    s(keys::consent_sk(event.at, &event.event_id)),
                );
                consent.insert("type".into(), s("consent"));
                consent.insert("opt_in".into(), AttributeValue::Bool(false));
                consent.insert("at".into(), s(ts(event.at)));
                consent.insert("source".into(), s("lead-api"));
                consent.insert("text".into(), s("withdrawn via lead-api"));
                consent.insert("touch_id".into(), s(event.event_id.clone()));
                consent.insert("recorded_at".into(), s(ts(now)));
                let put = self.put_new(consent);
                txn = txn.transact_items(TransactWriteItem::builder().put(put).build());
            }
            let result = txn.send().await;
            match result {
                Ok(_) => {
                    let lead = self.get_lead(lead_id).await?.unwrap_or(lead);
                    return Ok(SalesEventOutcome::Applied(Box::new(lead)));
                }
                Err(e) => {
                    let reasons = cancellation_reasons(e, "TransactWriteItems")?;
                    let ccf = |i: usize| reasons.get(i).is_some_and(failed);
                    if ccf(0) {
                        return Ok(SalesEventOutcome::Duplicate(Box::new(lead)));
                    }
                    // The lead changed under us (version): read it again and re-apply.
                }
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }
}
