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

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::codec::{get_map, get_n, get_s, n, s, Item};
use super::keys::{self, ts};
use super::txn::{applied, backoff, cancellation_reasons, failed};
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

/// An erasure's progress, then its receipt: `ERASURE#<lead_id>` / `#RECEIPT`. No personal
/// data: the lead id, times and counts by item type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErasureReceipt {
    pub lead_id: String,
    pub started_at: String,
    /// Set once every item of the lead's partition was processed.
    pub finished_at: Option<String>,
    /// Items erased, deleted or redacted, by item type.
    pub counts: BTreeMap<String, u64>,
}

impl ErasureReceipt {
    pub fn done(&self) -> bool {
        self.finished_at.is_some()
    }
}

/// Items of the lead's partition processed per page (one Query, then transactions of at most
/// 100 writes, then one checkpoint).
const PAGE_ITEMS: i32 = 100;

impl Store {
    /// Erases a lead completely (see the module), however many invocations of work that is
    /// (for tools, tests and retention). Idempotent; `None` when no such lead exists.
    pub async fn erase_lead(
        &self,
        lead_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ErasureReceipt>, StoreError> {
        let Some(mut receipt) = self.start_erasure(lead_id, now).await? else {
            return Ok(None);
        };
        while !receipt.done() {
            receipt = self.continue_erasure(lead_id, usize::MAX, now).await?;
        }
        Ok(Some(receipt))
    }

    /// The erasure's progress or receipt (1 GetItem).
    pub async fn erasure_receipt(
        &self,
        lead_id: &str,
    ) -> Result<Option<ErasureReceipt>, StoreError> {
        let item = self
            .get_item(keys::erasure_pk(lead_id), keys::ERASURE_SK)
            .await?;
        Ok(item.as_ref().map(receipt_from))
    }

    /// Step 1, once: the person becomes unfindable and stays erased. Deletes the quarantined
    /// deliveries filed under the lead's identities, then in one transaction deletes its
    /// identity markers and referral code, writes the suppression entries, strips the lead and
    /// creates the receipt. `None` when no such lead exists; the receipt when step 1 was done
    /// before.
    ///
    /// Safe against a concurrent ingest: the transaction is conditioned on the version read
    /// with the identity keys, so a merge that claimed a new marker in between makes it fail
    /// and the next attempt reads and deletes that marker too; a merge after it is refused by
    /// its own `attribute_not_exists(erased)`.
    pub async fn start_erasure(
        &self,
        lead_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ErasureReceipt>, StoreError> {
        let mut foreign = HashSet::new();
        for attempt in 1..=MAX_ATTEMPTS {
            if let Some(r) = self.erasure_receipt(lead_id).await? {
                return Ok(Some(r));
            }
            match self.start_attempt(lead_id, now, &mut foreign).await? {
                Some(false) => return Ok(None),
                Some(true) => return self.erasure_receipt(lead_id).await,
                None => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// One try at step 1; `None` when the lead changed under it (read again).
    async fn start_attempt(
        &self,
        lead_id: &str,
        now: DateTime<Utc>,
        foreign: &mut HashSet<String>,
    ) -> Result<Option<bool>, StoreError> {
        let Some(lead_item) = self.get_item(keys::lead_pk(lead_id), keys::LEAD_SK).await? else {
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
        let quarantined = self.delete_quarantine_of(&markers).await?;

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
        let suppressions: Vec<String> = erased_identities(&lead_item)
            .iter()
            .filter_map(|k| self.pepper.identity(k))
            .collect();
        for hash in &suppressions {
            let mut item = Item::new();
            item.insert(keys::PK.into(), s(keys::suppression_pk(hash)));
            item.insert(keys::SK.into(), s(keys::SUPPRESSION_SK));
            item.insert("type".into(), s("suppression"));
            item.insert("reason".into(), s("erasure"));
            item.insert("at".into(), s(ts(now)));
            actions.push(put(&self.table, item, None));
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
        let mut receipt = Item::new();
        receipt.insert(keys::PK.into(), s(keys::erasure_pk(lead_id)));
        receipt.insert(keys::SK.into(), s(keys::ERASURE_SK));
        receipt.insert("type".into(), s("erasure"));
        receipt.insert("lead_id".into(), s(lead_id));
        receipt.insert("started_at".into(), s(ts(now)));
        receipt.insert("cursor".into(), s(keys::LEAD_SK));
        let counts: HashMap<String, AttributeValue> = [
            ("lead", 1),
            ("identity_markers", markers.len() as u64),
            ("quarantined_deliveries", quarantined),
            ("suppression_entries", suppressions.len() as u64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), n(v)))
        .collect();
        receipt.insert("counts".into(), AttributeValue::M(counts));
        actions.push(put(&self.table, receipt, Some("attribute_not_exists(pk)")));
        if actions.len() > 100 {
            return Err(StoreError::Corrupt {
                key: keys::lead_pk(lead_id),
                reason: format!(
                    "{} identity markers: more than one transaction",
                    markers.len()
                ),
            });
        }
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        if let Err(e) = sent {
            // A marker that names another lead now is not this person's any more: leave it.
            // Anything else (the version moved, a conflict, a concurrent start) is read again.
            let reasons = cancellation_reasons(e, "TransactWriteItems")?;
            for (reason, pk) in reasons.iter().zip(&markers) {
                if failed(reason) {
                    foreign.insert(pk.clone());
                }
            }
            return Ok(None);
        }
        Ok(Some(true))
    }

    /// Step 2, resumable: processes the lead's partition after the checkpoint, a page at a
    /// time, until `budget` items are done or none are left (then the receipt is finished).
    /// Each page's writes are idempotent, and its checkpoint moves the cursor and adds the
    /// page's counts in one update conditioned on the cursor it started from: a retry of a page
    /// redoes harmless writes, and a page is counted exactly once.
    pub async fn continue_erasure(
        &self,
        lead_id: &str,
        budget: usize,
        now: DateTime<Utc>,
    ) -> Result<ErasureReceipt, StoreError> {
        let mut done = 0usize;
        loop {
            let item = self
                .get_item(keys::erasure_pk(lead_id), keys::ERASURE_SK)
                .await?
                .ok_or_else(|| StoreError::Corrupt {
                    key: keys::erasure_pk(lead_id),
                    reason: "erasure not started".into(),
                })?;
            let receipt = receipt_from(&item);
            let Some(cursor) = get_s(&item, "cursor") else {
                return Ok(receipt);
            };
            if done >= budget {
                return Ok(receipt);
            }
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk > :c")
                .expression_attribute_values(":pk", s(keys::lead_pk(lead_id)))
                .expression_attribute_values(":c", s(cursor.clone()))
                .consistent_read(true)
                .limit(PAGE_ITEMS)
                .send()
                .await
                .map_err(|e| StoreError::sdk("Query", e))?;
            let items = page.items();
            let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
            let mut actions = Vec::new();
            for i in items {
                self.erase_item(lead_id, i, now, &mut actions, &mut counts)
                    .await?;
            }
            for chunk in actions.chunks(100) {
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("TransactWriteItems", e))?;
            }
            let last = items.last().and_then(|i| get_s(i, keys::SK));
            let finished = page.last_evaluated_key().is_none();
            self.checkpoint(lead_id, &cursor, last.as_deref(), finished, &counts, now)
                .await?;
            done += items.len().max(1);
        }
    }

    /// Moves the cursor past a page and adds its counts, once (conditioned on the cursor the
    /// page started from; a lost race means another invocation did this page).
    async fn checkpoint(
        &self,
        lead_id: &str,
        from: &str,
        last: Option<&str>,
        finished: bool,
        counts: &BTreeMap<&'static str, u64>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut sets = Vec::new();
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::erasure_pk(lead_id)))
            .key(keys::SK, s(keys::ERASURE_SK))
            .condition_expression("#cursor = :from")
            .expression_attribute_names("#cursor", "cursor")
            .expression_attribute_values(":from", s(from));
        for (i, (k, v)) in counts.iter().enumerate() {
            sets.push(format!(
                "counts.#c{i} = if_not_exists(counts.#c{i}, :zero) + :n{i}"
            ));
            u = u
                .expression_attribute_names(format!("#c{i}"), *k)
                .expression_attribute_values(format!(":n{i}"), n(*v));
        }
        if !counts.is_empty() {
            u = u.expression_attribute_values(":zero", n(0));
        }
        let expression = if finished {
            sets.push("finished_at = :now".into());
            u = u.expression_attribute_values(":now", s(ts(now)));
            format!("SET {} REMOVE #cursor", sets.join(", "))
        } else {
            sets.push("#cursor = :last".into());
            u = u.expression_attribute_values(":last", s(last.unwrap_or(from)));
            format!("SET {}", sets.join(", "))
        };
        // A condition that failed did nothing, which is what erasure wanted (here and below).
        applied(u.update_expression(expression).send().await, "UpdateItem").map(|_| ())
    }

    /// What erasure does with one item of the lead's partition (see the module): writes
    /// outside the partition now, the item's own write into `actions`.
    async fn erase_item(
        &self,
        lead_id: &str,
        item: &Item,
        now: DateTime<Utc>,
        actions: &mut Vec<TransactWriteItem>,
        counts: &mut BTreeMap<&'static str, u64>,
    ) -> Result<(), StoreError> {
        let mut count = |k: &'static str| *counts.entry(k).or_default() += 1;
        if sk_starts(item, keys::TOUCH_SK_PREFIX) {
            let custom = get_map(item, "custom");
            let answer = |k: &str| custom.and_then(|c| get_s(c, k));
            match get_s(item, "kind").as_deref() {
                Some("review") => {
                    if let (Some(p), Some(id)) = (answer("platform"), answer("external_id")) {
                        self.redact_review(&keys::review_pk(&p, &id), now).await?;
                        count("reviews");
                    }
                }
                Some("referral_received") => {
                    if let (Some(referrer), Some(delivery)) =
                        (answer("referrer_lead_id"), get_s(item, "delivery"))
                    {
                        if let Some(key) = keys::referral_key_in_delivery(&delivery, &referrer) {
                            let touch_id = get_s(item, "touch_id").unwrap_or_default();
                            self.rekey_referral(&referrer, key, lead_id, &touch_id)
                                .await?;
                            count("referrals_received");
                        }
                    }
                }
                _ => {}
            }
            if let Some(delivery) = get_s(item, "delivery") {
                self.delete_delivery_marker(&delivery, lead_id).await?;
                count("delivery_markers");
            }
            actions.push(self.partition_update(
                lead_id,
                item,
                "SET custom = :empty REMOVE attribution.gclid, attribution.fbclid, \
                 attribution.li_fat_id, attribution.msclkid, attribution.referrer, \
                 attribution.landing_page, attribution.utm_term, delivery",
                true,
            ));
            count("touchpoints");
        } else if sk_starts(item, keys::CONSENT_SK_PREFIX) {
            // Consent evidence keeps what was agreed and when (non-personal once the lead is
            // erased), not where from: the page and the IP hash go.
            actions.push(self.partition_update(lead_id, item, "REMOVE page, ip_hash", false));
            count("consent_records");
        } else if sk_starts(item, keys::SALES_EVENT_SK_PREFIX) {
            actions.push(self.partition_update(lead_id, item, "REMOVE reason", false));
            count("sales_events");
        } else if sk_starts(item, keys::REFERRAL_SK_PREFIX) && get_s(item, "referral_key").is_some()
        {
            self.remove_referral_note(lead_id, item).await?;
            count("referrals_given");
        }
        Ok(())
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
        applied(out, "UpdateItem").map(|_| ())
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
        applied(out, "DeleteItem").map(|_| ())
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
                applied(out, "UpdateItem").map(|_| ())?;
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
        applied(out, "UpdateItem").map(|_| ())
    }
}

/// The identities a lead item holds in clear (email match key, E.164 phone).
fn erased_identities(lead: &Item) -> Vec<IdentityKey> {
    let email = get_s(lead, "email_key").map(IdentityKey::Email);
    let phone = get_s(lead, "phone").map(IdentityKey::Phone);
    email.into_iter().chain(phone).collect()
}

fn put(table: &str, item: Item, condition: Option<&str>) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_string))
        .build()
        .expect("put has table and item");
    TransactWriteItem::builder().put(put).build()
}

fn receipt_from(item: &Item) -> ErasureReceipt {
    ErasureReceipt {
        lead_id: get_s(item, "lead_id").unwrap_or_default(),
        started_at: get_s(item, "started_at").unwrap_or_default(),
        finished_at: get_s(item, "finished_at"),
        counts: get_map(item, "counts")
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn sk_starts(item: &Item, prefix: &str) -> bool {
    get_s(item, keys::SK).is_some_and(|sk| sk.starts_with(prefix))
}
