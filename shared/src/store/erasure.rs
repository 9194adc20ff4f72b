//! GDPR erasure (Art. 17): everything of a person, wherever the table keeps it.
//!
//! What is personal, item by item, and what erasure does with it:
//! - lead: contact fields, consent, custom answers, score reasons, `lost_reason`, identity
//!   keys, referral code: removed; the non-personal facts stay so metrics stay exact.
//! - identity markers (`EMAIL#` / `PHONE#` keys are hashes anyone can recompute): deleted.
//! - touchpoints: custom answers, click ids, search term, landing page, referrer and the
//!   delivery key removed; campaign attribution kept.
//! - delivery markers (their keys hash the submitted fields or carry a platform id, and they
//!   name the lead): deleted.
//! - consent records: `page` and `ip_hash` removed; what was agreed and when stays.
//! - sales events: the free-text `reason` removed.
//! - reviews the person wrote (found through their review touchpoints): name, title, text,
//!   reference and link removed; the rating stays (the platform aggregate stays exact).
//! - referrals where the person is the referee: the referral item (keyed by a hash of the
//!   address) is re-keyed by the referee's lead id; the referrer's credit stays.
//! - referrals the person gave: the note they wrote is removed from the referee's touchpoint
//!   and lead.
//! - quarantined deliveries filed under any identity the person owned (`store::quarantine`):
//!   deleted, with their filings.
//!
//! Work outside the lead's partition runs first and the partition's own transaction last, so a
//! failure half-way leaves the lead as it was (still findable) and a retry redoes every step;
//! each step is idempotent.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::codec::{get_map, get_n, get_s, n, s, Item};
use super::keys::{self, ts};
use super::txn::{backoff, cancellation_reasons, failed};
use super::{Store, StoreError};
use crate::model::IdentityKey;

const MAX_ATTEMPTS: u32 = 6;

/// Lead attributes that are the person's data.
const PERSONAL: [&str; 16] = [
    "email",
    "email_key",
    "phone",
    "phone_raw",
    "phone_ext",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "country",
    "consent",
    "identity_keys",
    "score_reasons",
    "referral_code",
    "lost_reason",
];

/// Review attributes the reviewer wrote or that name them.
const REVIEW_PERSONAL: &str = "REMOVE #name, title, #text, reference_id, lead_id";

impl Store {
    /// Erases a lead (see the module). Idempotent; returns false when no such lead exists.
    ///
    /// Safe against a concurrent ingest: the lead's transaction (markers deleted, lead
    /// stripped) is conditioned on the version read with the identity keys, so a merge that
    /// claimed a new marker in between makes it fail, and the next attempt reads and deletes
    /// that marker too; a merge after it is refused by its own `attribute_not_exists(erased)`.
    pub async fn erase_lead(&self, lead_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut foreign = HashSet::new();
        for attempt in 1..=MAX_ATTEMPTS {
            match self.erase_attempt(lead_id, now, &mut foreign).await? {
                Some(found) => return Ok(found),
                None => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// One pass; `None` when the lead changed under it (read again).
    async fn erase_attempt(
        &self,
        lead_id: &str,
        now: DateTime<Utc>,
        foreign: &mut HashSet<String>,
    ) -> Result<Option<bool>, StoreError> {
        let items = self.partition_items(&keys::lead_pk(lead_id)).await?;
        let Some(lead_item) = items
            .iter()
            .find(|i| get_s(i, keys::SK).as_deref() == Some(keys::LEAD_SK))
            .cloned()
        else {
            return Ok(Some(false));
        };
        let version: u64 = get_n(&lead_item, "version").unwrap_or(0);
        let markers: Vec<String> = lead_item
            .get("identity_keys")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|pk| !foreign.contains(pk))
            .collect();
        let touches: Vec<&Item> = items
            .iter()
            .filter(|i| sk_starts(i, keys::TOUCH_SK_PREFIX))
            .collect();

        // Outside the partition first.
        self.delete_quarantine_of(&markers).await?;
        for t in &touches {
            let custom = get_map(t, "custom");
            let answer = |k: &str| custom.and_then(|c| get_s(c, k));
            match get_s(t, "kind").as_deref() {
                Some("review") => {
                    if let (Some(p), Some(id)) = (answer("platform"), answer("external_id")) {
                        self.redact_review(&keys::review_pk(&p, &id), now).await?;
                    }
                }
                Some("referral_received") => {
                    if let (Some(referrer), Some(delivery)) =
                        (answer("referrer_lead_id"), get_s(t, "delivery"))
                    {
                        if let Some(key) = keys::referral_key_in_delivery(&delivery, &referrer) {
                            let touch_id = get_s(t, "touch_id").unwrap_or_default();
                            self.rekey_referral(&referrer, key, lead_id, &touch_id)
                                .await?;
                        }
                    }
                }
                _ => {}
            }
            if let Some(delivery) = get_s(t, "delivery") {
                self.delete_delivery_marker(&delivery, lead_id).await?;
            }
        }
        for r in items.iter().filter(|i| {
            sk_starts(i, keys::REFERRAL_SK_PREFIX) && get_s(i, "referral_key").is_some()
        }) {
            self.remove_referral_note(lead_id, r).await?;
        }

        // Then the partition, lead and markers in the first transaction.
        let mut actions: Vec<TransactWriteItem> = Vec::new();
        for pk in &markers {
            // Only a marker that still names this lead is removed.
            let del = Delete::builder()
                .table_name(&self.table)
                .key(keys::PK, s(pk))
                .key(keys::SK, s(keys::MARKER_SK))
                .condition_expression("attribute_not_exists(pk) OR lead_id = :id")
                .expression_attribute_values(":id", s(lead_id))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
                .build()
                .expect("delete has table and key");
            actions.push(TransactWriteItem::builder().delete(del).build());
        }
        // The lead's referral code resolves to nobody once the person is erased.
        if let Some(code) = get_s(&lead_item, "referral_code") {
            let del = Delete::builder()
                .table_name(&self.table)
                .key(keys::PK, s(keys::referral_code_pk(&code)))
                .key(keys::SK, s(keys::REFERRAL_CODE_SK))
                .build()
                .expect("delete has table and key");
            actions.push(TransactWriteItem::builder().delete(del).build());
        }
        // The person stays erased: platform re-deliveries, replays and imports of the same
        // address or number are answered `suppressed` (`privacy::lifts_suppression`).
        for hash in erased_identities(&lead_item)
            .iter()
            .filter_map(|k| self.pepper.identity(k))
        {
            let mut item = Item::new();
            item.insert(keys::PK.into(), s(keys::suppression_pk(&hash)));
            item.insert(keys::SK.into(), s(keys::SUPPRESSION_SK));
            item.insert("type".into(), s("suppression"));
            item.insert("reason".into(), s("erasure"));
            item.insert("at".into(), s(ts(now)));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .expect("put has table and item");
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        let erase = self.lead_update(lead_id)
            .update_expression(format!(
                "REMOVE {} SET erased = :t, erased_at = if_not_exists(erased_at, :now), custom = :empty, updated_at = :now ADD version :one",
                PERSONAL.join(", ")
            ))
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(version) OR version = :v)")
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(ts(now)))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":one", n(1))
            .build()
            .expect("update has table, key and expression");
        actions.push(TransactWriteItem::builder().update(erase).build());
        for t in &touches {
            actions.push(self.partition_update(
                lead_id,
                t,
                "SET custom = :empty REMOVE attribution.gclid, attribution.fbclid, \
                 attribution.li_fat_id, attribution.msclkid, attribution.referrer, \
                 attribution.landing_page, attribution.utm_term, delivery",
                true,
            ));
        }
        // Consent evidence keeps what was agreed and when (non-personal once the lead is
        // erased), not where from: the page and the IP hash go.
        for c in items
            .iter()
            .filter(|i| sk_starts(i, keys::CONSENT_SK_PREFIX))
        {
            actions.push(self.partition_update(lead_id, c, "REMOVE page, ip_hash", false));
        }
        for e in items
            .iter()
            .filter(|i| sk_starts(i, keys::SALES_EVENT_SK_PREFIX))
        {
            actions.push(self.partition_update(lead_id, e, "REMOVE reason", false));
        }
        // The markers, suppression entries and the lead come first, in one transaction.
        for (i, chunk) in actions.chunks(100).enumerate() {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(chunk.to_vec()))
                .send()
                .await;
            if let Err(e) = sent {
                // A marker that names another lead now is not this person's any more: leave
                // it. Anything else (the version moved, a conflict) is read again.
                let reasons = cancellation_reasons(e, "TransactWriteItems")?;
                for (reason, pk) in reasons.iter().zip(&markers) {
                    if i == 0 && failed(reason) {
                        foreign.insert(pk.clone());
                    }
                }
                return Ok(None);
            }
        }
        Ok(Some(true))
    }

    fn partition_update(
        &self,
        lead_id: &str,
        item: &Item,
        expression: &str,
        empty: bool,
    ) -> TransactWriteItem {
        let mut u = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::lead_pk(lead_id)))
            .key(keys::SK, s(get_s(item, keys::SK).unwrap_or_default()))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        if empty {
            u = u.expression_attribute_values(":empty", AttributeValue::M(HashMap::new()));
        }
        TransactWriteItem::builder()
            .update(u.build().expect("update has table, key and expression"))
            .build()
    }

    /// Removes what a reviewer wrote; the rating stays for the aggregate (1 UpdateItem).
    async fn redact_review(&self, pk: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(keys::REVIEW_SK))
            .update_expression(format!("{REVIEW_PERSONAL} SET erased_at = :now"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#text", "text")
            .expression_attribute_values(":now", s(ts(now)))
            .send()
            .await;
        ignore_condition(out.map(|_| ()), "UpdateItem")
    }

    /// A referral whose key hashes the erased referee's address: the same facts under
    /// `REF#erased#<referee>#<touch>` (1 GetItem + 1 TransactWriteItems).
    async fn rekey_referral(
        &self,
        referrer: &str,
        key: &str,
        referee: &str,
        touch_id: &str,
    ) -> Result<(), StoreError> {
        let pk = keys::lead_pk(referrer);
        let sk = keys::referral_sk(key);
        let Some(mut item) = self.get_item(pk.clone(), sk.clone()).await? else {
            return Ok(());
        };
        if get_s(&item, "referee_lead_id").as_deref() != Some(referee) {
            return Ok(());
        }
        item.insert(
            keys::SK.into(),
            s(keys::erased_referral_sk(referee, touch_id)),
        );
        item.remove("referral_key");
        item.insert("referee_erased".into(), AttributeValue::Bool(true));
        let del = Delete::builder()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .build()
            .expect("delete has table and key");
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("put has table and item");
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(del).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await
            .map_err(|e| StoreError::sdk("TransactWriteItems", e))?;
        Ok(())
    }

    /// A delivery marker of the lead's (1 DeleteItem, only while it names the lead).
    async fn delete_delivery_marker(&self, pk: &str, lead_id: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(keys::DELIVERY_SK))
            .condition_expression("lead_id = :id")
            .expression_attribute_values(":id", s(lead_id))
            .send()
            .await;
        ignore_condition(out.map(|_| ()), "DeleteItem")
    }

    /// The note the erased person wrote when referring someone: on the referee's touch (found
    /// through its delivery marker) and on the referee's lead while it is still this referral's
    /// answer (1 GetItem + up to 2 UpdateItems).
    async fn remove_referral_note(
        &self,
        referrer: &str,
        referral: &Item,
    ) -> Result<(), StoreError> {
        let (Some(key), Some(referee)) = (
            get_s(referral, "referral_key"),
            get_s(referral, "referee_lead_id"),
        ) else {
            return Ok(());
        };
        let delivery = keys::delivery_pk(
            "referral",
            &super::referrals::referral_delivery(referrer, &key),
        );
        if let Some(marker) = self.get_item(delivery, keys::DELIVERY_SK).await? {
            if let Some(touch_sk) = get_s(&marker, "touch_sk") {
                let out = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key(keys::PK, s(keys::lead_pk(&referee)))
                    .key(keys::SK, s(touch_sk))
                    .update_expression("REMOVE custom.referral_note")
                    .condition_expression("attribute_exists(custom)")
                    .send()
                    .await;
                ignore_condition(out.map(|_| ()), "UpdateItem")?;
            }
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::lead_pk(&referee)))
            .key(keys::SK, s(keys::LEAD_SK))
            .update_expression("REMOVE custom.referral_note")
            .condition_expression("custom.referrer_lead_id = :me")
            .expression_attribute_values(":me", s(referrer))
            .send()
            .await;
        ignore_condition(out.map(|_| ()), "UpdateItem")
    }
}

/// The identities a lead item holds in clear (email match key, E.164 phone).
fn erased_identities(lead: &Item) -> Vec<IdentityKey> {
    let email = get_s(lead, "email_key").map(IdentityKey::Email);
    let phone = get_s(lead, "phone").map(IdentityKey::Phone);
    email.into_iter().chain(phone).collect()
}

fn sk_starts(item: &Item, prefix: &str) -> bool {
    get_s(item, keys::SK).is_some_and(|sk| sk.starts_with(prefix))
}

/// A conditional write whose condition failed did nothing, which is what erasure wanted.
fn ignore_condition<E, R>(
    out: Result<(), aws_sdk_dynamodb::error::SdkError<E, R>>,
    operation: &'static str,
) -> Result<(), StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata
        + std::error::Error
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match out {
        Ok(()) => Ok(()),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(())
        }
        Err(e) => Err(StoreError::sdk(operation, e)),
    }
}
