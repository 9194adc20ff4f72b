//! Referrals and referral codes (referral-review).
//!
//! - A referral is an item in the referrer's partition, `LEAD#<referrer>` / `REF#<referral key>`,
//!   written with `attribute_not_exists` in the SAME transaction as the referrer's credit
//!   (`ADD referral_count`, the referee added to `referee_lead_ids`) and the referee's
//!   `referrer_lead_id`. `ADD` alone is not idempotent; the marker makes the whole credit happen
//!   once per referral key whatever the retries.
//! - A referral code is an item `REFCODE#<code>` naming the lead, plus `referral_code` on the lead,
//!   both written in one transaction whose lead update requires `attribute_not_exists
//!   (referral_code)`: concurrent first requests agree on one code.
//! - A referee's conversion is credited to its referrer once, guarded by `REFCONV#<referee>`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, Utc};

use super::codec::{get_bool, get_s, get_time, lead_from, n, s, Item};
use super::keys::{self, ts};
use super::txn::{backoff, failed};
use super::{Store, StoreError};
use crate::model::{DeliveryKey, IdentityKey, Lead, Referral};
use crate::privacy::Pepper;

const MAX_ATTEMPTS: u32 = 8;

/// A referrer's lead with what the referral rules need beyond [`Lead`].
#[derive(Debug, Clone)]
pub struct Referrer {
    pub lead: Lead,
    /// The identity marker keys the lead owns (`EMAIL#<sha256>`...): self-referral is decided on
    /// them, so every address the person ever used counts, not only the one on the lead.
    identity_keys: Vec<String>,
    pub referral_code: Option<String>,
}

impl Referrer {
    /// Whether the referrer owns any of these identities (an address or number it ever used):
    /// a referral of oneself.
    pub fn owns_any(&self, identities: &[IdentityKey]) -> bool {
        identities
            .iter()
            .any(|k| self.identity_keys.contains(&keys::identity_pk(k)))
    }
}

/// The referral's idempotency key within its referrer: the sender's `referral_id`, else the
/// program and the referee's match key (email key first, as identity decides), keyed with the
/// privacy pepper (`k#`) so the key cannot be recomputed from an address without the secret.
/// Without a pepper (an older deployment) the historical unkeyed form `p#<sha256>` is used, and
/// erasure re-keys those items.
pub fn referral_key(
    pepper: &Pepper,
    referral_id: Option<&str>,
    program: Option<&str>,
    referee: &[IdentityKey],
) -> String {
    match referral_id {
        Some(id) => format!("id#{}", keys::hashed(id)),
        None => {
            let who = match referee.first() {
                Some(IdentityKey::Email(e)) => format!("email:{e}"),
                Some(IdentityKey::Phone(p)) => format!("phone:{p}"),
                None => String::new(),
            };
            let program = program.unwrap_or("");
            match pepper.keyed(&["referral", program, &who]) {
                Some(k) => format!("k#{k}"),
                None => format!("p#{}", keys::hashed(&format!("{program}\u{0}{who}"))),
            }
        }
    }
}

/// The delivery key of a referee's touch: one per referrer and referral key, so a retried
/// referral is a duplicate and the same person referred by two referrers is two touches.
pub fn referral_delivery(referrer_lead_id: &str, referral_key: &str) -> DeliveryKey {
    DeliveryKey::Platform(format!("{referrer_lead_id}#{referral_key}"))
}

/// What crediting a referral did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferralCredit {
    /// First time this referral was seen: recorded (and credited unless `existing_lead`).
    Recorded(Referral),
    /// Recorded before (a retry): nothing changed; the referral as first recorded.
    Duplicate(Referral),
    /// The referrer or the referee lead no longer exists (erased meanwhile).
    LeadGone,
}

impl Store {
    /// The raw lead item (1 consistent GetItem).
    async fn lead_item(&self, lead_id: &str) -> Result<Option<Item>, StoreError> {
        let item = self.get_item(keys::lead_pk(lead_id), keys::LEAD_SK).await?;
        Ok(item)
    }

    /// A lead that can refer or be given a code: present and not erased (1 GetItem).
    pub async fn referrer(&self, lead_id: &str) -> Result<Option<Referrer>, StoreError> {
        let Some(item) = self.lead_item(lead_id).await? else {
            return Ok(None);
        };
        let lead = lead_from(&item).ok_or_else(|| StoreError::Corrupt {
            key: keys::lead_pk(lead_id),
            reason: "lead item lacks required attributes".into(),
        })?;
        if lead.sales.erased {
            return Ok(None);
        }
        Ok(Some(Referrer {
            lead,
            identity_keys: item
                .get("identity_keys")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
            referral_code: get_s(&item, "referral_code"),
        }))
    }

    /// The lead a referral code belongs to (1 GetItem).
    pub async fn lead_id_for_referral_code(
        &self,
        code: &str,
    ) -> Result<Option<String>, StoreError> {
        let item = self
            .get_item(keys::referral_code_pk(code), keys::REFERRAL_CODE_SK)
            .await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "lead_id")))
    }

    /// The lead's referral code, created on first request as `candidate` (from the caller's
    /// CSPRNG).
    /// `None` when there is no such lead. An existing code costs 1 GetItem; a new one 1 GetItem
    /// + 1 TransactWriteItems. Concurrent first requests: one transaction wins, the others fail
    ///   on `attribute_not_exists(referral_code)` and answer the winner's code (returned with the
    ///   failure, no extra read).
    pub async fn referral_code(
        &self,
        lead_id: &str,
        candidate: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let Some(referrer) = self.referrer(lead_id).await? else {
                return Ok(None);
            };
            if let Some(code) = referrer.referral_code {
                return Ok(Some(code));
            }
            let code = candidate.to_string();
            let mut code_item = Item::new();
            code_item.insert(keys::PK.into(), s(keys::referral_code_pk(&code)));
            code_item.insert(keys::SK.into(), s(keys::REFERRAL_CODE_SK));
            code_item.insert("type".into(), s("referral_code"));
            code_item.insert("lead_id".into(), s(lead_id));
            code_item.insert("created_at".into(), s(ts(now)));
            let put = self.put_new(code_item);
            let update = self
                .lead_update(lead_id)
                .update_expression("SET referral_code = :c")
                .condition_expression(
                    "attribute_exists(pk) AND attribute_not_exists(referral_code)",
                )
                .expression_attribute_values(":c", s(code.clone()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .expect("update has table, key and expression");
            let items = vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder().update(update).build(),
            ];
            let Some(reasons) = self.transact_or_cancelled(items).await? else {
                return Ok(Some(code));
            };
            // Another request gave the lead its code first: that one is the lead's code.
            if let Some(existing) = reasons
                .get(1)
                .filter(|r| failed(r))
                .and_then(|r| r.item())
                .and_then(|i| get_s(i, "referral_code"))
            {
                return Ok(Some(existing));
            }
            // A code collision (2^-128) or a conflicting writer: read again and retry.
            backoff(attempt).await;
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// One recorded referral (1 consistent GetItem).
    pub async fn get_referral(
        &self,
        referrer_lead_id: &str,
        referral_key: &str,
    ) -> Result<Option<Referral>, StoreError> {
        let item = self
            .get_item(
                keys::lead_pk(referrer_lead_id),
                keys::referral_sk(referral_key),
            )
            .await?;
        Ok(item.as_ref().and_then(referral_from))
    }

    /// Every referral a lead gave, credited or not (Query on its partition, `REF#` prefix).
    pub async fn referrals_of(&self, referrer_lead_id: &str) -> Result<Vec<Referral>, StoreError> {
        let pk = keys::lead_pk(referrer_lead_id);
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :ref)")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .expression_attribute_values(":ref", s(keys::REFERRAL_SK_PREFIX))
                    .consistent_read(true)
            })
            .await?;
        let mut out: Vec<Referral> = items.iter().filter_map(referral_from).collect();
        out.sort_by_key(|r| r.created_at);
        Ok(out)
    }

    /// Records a referral once and credits it, in one TransactWriteItems (1 round trip):
    /// the referral item (`attribute_not_exists`), and unless the referee was already a lead the
    /// referrer's `referral_count` +1 and `referee_lead_ids` += referee, and the referee's
    /// `referrer_lead_id` (first referrer kept). A retry fails on the referral item, which comes
    /// back with the failure: the answer is the referral as first recorded.
    pub async fn credit_referral(
        &self,
        referral: &Referral,
        now: DateTime<Utc>,
    ) -> Result<ReferralCredit, StoreError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let items = self.credit_items(referral, now);
            let Some(reasons) = self.transact_or_cancelled(items).await? else {
                return Ok(ReferralCredit::Recorded(referral.clone()));
            };
            if let Some(first) = reasons.first().filter(|r| failed(r)) {
                match first.item().and_then(referral_from) {
                    Some(existing) => return Ok(ReferralCredit::Duplicate(existing)),
                    None => {
                        backoff(attempt).await;
                        continue;
                    }
                }
            }
            if reasons.iter().skip(1).any(failed) {
                return Ok(ReferralCredit::LeadGone);
            }
            // Conflict with a concurrent writer of one of the items, or throttling: retry.
            backoff(attempt).await;
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    fn credit_items(&self, r: &Referral, now: DateTime<Utc>) -> Vec<TransactWriteItem> {
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::lead_pk(&r.referrer_lead_id)));
        item.insert(keys::SK.into(), s(keys::referral_sk(&r.referral_key)));
        item.insert("type".into(), s("referral"));
        item.insert("referral_key".into(), s(r.referral_key.clone()));
        item.insert("referrer_lead_id".into(), s(r.referrer_lead_id.clone()));
        item.insert("referee_lead_id".into(), s(r.referee_lead_id.clone()));
        item.insert(
            "existing_lead".into(),
            AttributeValue::Bool(r.existing_lead),
        );
        if let Some(p) = &r.program {
            item.insert("program".into(), s(p.clone()));
        }
        item.insert("touch_id".into(), s(r.touch_id.clone()));
        item.insert("created_at".into(), s(ts(r.created_at)));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("put has table and item");
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if r.existing_lead {
            // Not credited; the referrer must still exist for the referral to be recorded.
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(lead_key(&r.referrer_lead_id)))
                .condition_expression("attribute_exists(pk)")
                .build()
                .expect("condition check has table, key and condition");
            items.push(TransactWriteItem::builder().condition_check(check).build());
            return items;
        }
        let referrer = self.lead_update(&r.referrer_lead_id)
            .update_expression(
                "SET updated_at = :now ADD referral_count :one, referee_lead_ids :referee, version :one",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", s(ts(now)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(
                ":referee",
                AttributeValue::Ss(vec![r.referee_lead_id.clone()]),
            )
            .build()
            .expect("update has table, key and expression");
        let referee = self.lead_update(&r.referee_lead_id)
            .update_expression(
                "SET referrer_lead_id = if_not_exists(referrer_lead_id, :referrer), updated_at = :now ADD version :one",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":referrer", s(r.referrer_lead_id.clone()))
            .expression_attribute_values(":now", s(ts(now)))
            .expression_attribute_values(":one", n(1))
            .build()
            .expect("update has table, key and expression");
        items.push(TransactWriteItem::builder().update(referrer).build());
        items.push(TransactWriteItem::builder().update(referee).build());
        items
    }

    /// Credits a referee's conversion to its referrer once (`converted_referral_count` +1,
    /// guarded by a `REFCONV#<referee>` marker in the same transaction). For the stage-change
    /// path (lead-api) to call when a referred lead becomes a customer. Returns false when the
    /// lead has no referrer, or the conversion was credited before.
    pub async fn credit_referral_conversion(
        &self,
        referee_lead_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(item) = self.lead_item(referee_lead_id).await? else {
            return Ok(false);
        };
        let Some(referrer) = get_s(&item, "referrer_lead_id") else {
            return Ok(false);
        };
        for attempt in 1..=MAX_ATTEMPTS {
            let mut marker = Item::new();
            marker.insert(keys::PK.into(), s(keys::lead_pk(&referrer)));
            marker.insert(
                keys::SK.into(),
                s(keys::referral_conversion_sk(referee_lead_id)),
            );
            marker.insert("type".into(), s("referral_conversion"));
            marker.insert("referee_lead_id".into(), s(referee_lead_id));
            marker.insert("created_at".into(), s(ts(now)));
            let put = self.put_new(marker);
            let update = self
                .lead_update(&referrer)
                .update_expression(
                    "SET updated_at = :now ADD converted_referral_count :one, version :one",
                )
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":now", s(ts(now)))
                .expression_attribute_values(":one", n(1))
                .build()
                .expect("update has table, key and expression");
            let items = vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder().update(update).build(),
            ];
            let Some(reasons) = self.transact_or_cancelled(items).await? else {
                return Ok(true);
            };
            if reasons.iter().any(failed) {
                // Credited before, or the referrer is gone: nothing to do either way.
                return Ok(false);
            }
            backoff(attempt).await;
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }
}

fn lead_key(lead_id: &str) -> HashMap<String, AttributeValue> {
    let mut key = HashMap::new();
    key.insert(keys::PK.to_string(), s(keys::lead_pk(lead_id)));
    key.insert(keys::SK.to_string(), s(keys::LEAD_SK));
    key
}

fn referral_from(item: &Item) -> Option<Referral> {
    Some(Referral {
        referral_key: get_s(item, "referral_key")?,
        referrer_lead_id: get_s(item, "referrer_lead_id")?,
        referee_lead_id: get_s(item, "referee_lead_id")?,
        existing_lead: get_bool(item, "existing_lead"),
        program: get_s(item, "program"),
        touch_id: get_s(item, "touch_id").unwrap_or_default(),
        created_at: get_time(item, "created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_keys() {
        let email = [IdentityKey::Email("a@x.com".into())];
        for pepper in [Pepper::default(), Pepper::new("a-long-random-pepper")] {
            let k1 = referral_key(&pepper, None, Some("p1"), &email);
            assert_eq!(k1, referral_key(&pepper, None, Some("p1"), &email));
            assert_ne!(k1, referral_key(&pepper, None, Some("p2"), &email));
            assert_ne!(k1, referral_key(&pepper, Some("r-1"), Some("p1"), &email));
            assert!(!k1.contains("a@x.com"));
        }
        // With the pepper the key is not the plain hash anyone can recompute.
        let keyed = referral_key(
            &Pepper::new("a-long-random-pepper"),
            None,
            Some("p1"),
            &email,
        );
        assert_ne!(
            keyed,
            referral_key(&Pepper::default(), None, Some("p1"), &email)
        );
        assert!(keyed.starts_with("k#"));
    }
}
