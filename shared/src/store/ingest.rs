//! The ingest write path: one lead per person, one touchpoint per delivery, in as few round
//! trips as DynamoDB allows.
//!
//! 1. Optimistic create, one `TransactWriteItems`: delivery marker, identity markers (email,
//!    phone), the lead and its touchpoint, each marker guarded by `attribute_not_exists` and asked
//!    to return the existing item on failure (`ReturnValuesOnConditionCheckFailure = ALL_OLD`).
//!    A new person costs 1 round trip.
//! 2. If the delivery marker existed: a retry of a delivery already stored; its item names the
//!    lead. Answer `duplicate`; 1 round trip, nothing written.
//! 3. If an identity marker existed: its item names the person's lead. One more transaction:
//!    the delivery marker again, the merge update of the lead, the touchpoint, and markers for the
//!    identifiers the lead did not have yet. A returning person costs 2 round trips.
//!
//! Rare paths cost more and stay correct: a submission older than the lead's last touch only
//! fills empty fields (the update's condition tells us, one more trip); a new identifier that
//! another lead owns is left with that lead; transaction conflicts are retried with backoff.
//! Two submissions racing for the same new person: the loser's markers fail, so it merges.
//!
//! The lead item stays bounded (`limits::lead_custom`): the merge sets each custom answer by
//! path under the condition `size(custom) <= 50 - answers sent`, so a lead with room takes
//! them in the same 2 round trips. A lead whose answers would overflow fails that condition,
//! which returns the lead as it is; the bounded map (the submission's answers first, then the
//! lead's earlier ones while there is room) replaces `custom` in one more transaction,
//! conditioned on the lead's version. The touchpoint keeps every answer as sent.
//!
//! Each explicit consent answer is also written as a `CONSENT#` item in the same transaction
//! (append-only history, `consent.rs`): no extra round trip.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, Utc};

use super::codec::{
    attribution_value, consent_value, contact_fields, get_n, get_s, get_str_map, n, s, str_map,
    touch_summary_value, Item,
};
use super::keys::{self, new_id, ts};
use super::txn::{backoff, cancellation_reasons, failed};
use super::{Store, StoreError};
use crate::limits::{lead_custom, LEAD_MAX_CUSTOM_KEYS};
use crate::model::{
    DeliveryKey, IdentityKey, IngestOutcome, IngestStatus, NormalizedSubmission, TouchSummary,
};

/// How long a delivery is remembered. Unsigned bodies and client idempotency keys: 24 h (a
/// person may honestly submit the same form again tomorrow; Stripe keeps keys as long).
/// Platform ids are unique forever; 90 days outlasts every platform's retry schedule (Meta's is
/// the longest, 36 h) with a wide margin.
const BODY_HASH_TTL_SECS: i64 = 24 * 3600;
const PLATFORM_ID_TTL_SECS: i64 = 90 * 24 * 3600;
const MAX_ATTEMPTS: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MergeMode {
    /// The submission is the newest touch: its values win conflicts.
    Newer,
    /// An older submission arrived late: it only fills empty fields.
    FillOnly,
}

/// How a merge writes the custom answers of the lead.
#[derive(Debug, Clone, PartialEq)]
enum CustomWrite {
    /// Each answer by path, guarded by `size(custom) <= room`: no read needed.
    Fields,
    /// The whole bounded map computed from the lead as it was, guarded by its version.
    Replace {
        map: std::collections::BTreeMap<String, String>,
        version: u64,
    },
}

#[derive(Debug)]
enum Plan {
    Create,
    Merge(Merge),
}

/// A merge into an existing lead.
#[derive(Debug)]
struct Merge {
    lead_id: String,
    /// Identity keys to claim for the lead (not yet owned by anyone, as far as we know).
    claim: Vec<IdentityKey>,
    mode: MergeMode,
    custom: CustomWrite,
}

/// What a cancelled transaction told us, by item position.
enum Verdict {
    Duplicate {
        lead_id: String,
        touch_id: String,
    },
    /// The markers that already exist, with the lead each names.
    Existing(Vec<(IdentityKey, String)>),
    /// The merge update's condition failed: the lead's item as it is now (None: lead is gone).
    StaleMerge(Option<Item>),
    /// Markers that another lead owns (merge path).
    TakenMarkers(Vec<IdentityKey>),
    /// The delivery marker holds this idempotency key with another content fingerprint.
    KeyReused,
    /// An identity is suppressed (erased, or opted out) and the submission may not lift it.
    Suppressed,
    /// Lost a race with another transaction or got throttled: retry as is.
    Retry,
}

impl Store {
    /// Stores a submission: creates the person's lead, merges into it, or recognises a retry.
    pub async fn ingest(
        &self,
        sub: &NormalizedSubmission,
        received_at: DateTime<Utc>,
    ) -> Result<IngestOutcome, StoreError> {
        let touch_id = new_id();
        let identity = sub.identity_keys();
        let mut plan = Plan::Create;
        let mut lead_id_for_create = new_id();
        for attempt in 1..=MAX_ATTEMPTS {
            let (items, roles) = match &plan {
                Plan::Create => {
                    self.create_items(sub, &identity, &lead_id_for_create, &touch_id, received_at)
                }
                Plan::Merge(m) => self.merge_items(sub, m, &touch_id, received_at),
            };
            let result = self.transact(items).await;
            let err = match result {
                Ok(_) => {
                    let (status, lead_id) = match &plan {
                        Plan::Create => (IngestStatus::Created, lead_id_for_create.clone()),
                        Plan::Merge(m) => (IngestStatus::Merged, m.lead_id.clone()),
                    };
                    return Ok(IngestOutcome {
                        status,
                        lead_id,
                        touch_id,
                    });
                }
                Err(e) => e,
            };
            let reasons = cancellation_reasons(err, "TransactWriteItems")?;
            match read_verdict(&reasons, &roles, sub.delivery.fingerprint()) {
                Verdict::KeyReused => return Err(StoreError::IdempotencyKeyReused),
                Verdict::Suppressed => {
                    return Ok(IngestOutcome {
                        status: IngestStatus::Suppressed,
                        lead_id: String::new(),
                        touch_id: String::new(),
                    })
                }
                Verdict::Duplicate { lead_id, touch_id } => {
                    return Ok(IngestOutcome {
                        status: IngestStatus::Duplicate,
                        lead_id,
                        touch_id,
                    })
                }
                Verdict::Existing(existing) => {
                    // Email decides when email and phone name different people: the email
                    // marker comes first in `identity`, and so in `existing`.
                    let lead_id = existing[0].1.clone();
                    let claim = identity
                        .iter()
                        .filter(|k| !existing.iter().any(|(e, _)| e == *k))
                        .cloned()
                        .collect();
                    plan = Plan::Merge(Merge {
                        lead_id,
                        claim,
                        mode: MergeMode::Newer,
                        custom: CustomWrite::Fields,
                    });
                }
                Verdict::StaleMerge(Some(lead)) if lead.contains_key("erased") => {
                    // Erased between our read of its marker and the merge: start over as a
                    // new person (suppression, when configured, decides there).
                    plan = Plan::Create;
                    lead_id_for_create = new_id();
                }
                Verdict::StaleMerge(Some(lead)) => {
                    // The lead as it is now tells which condition failed: an older submission
                    // only fills gaps; answers that would overflow the lead are merged into
                    // its bounded map. Nothing changed means a race: the next attempt uses the
                    // lead's new state.
                    if let Plan::Merge(Merge { mode, custom, .. }) = &mut plan {
                        let newer = get_s(&lead, "last_touch_at")
                            .is_none_or(|last| last <= ts(sub.occurred_at));
                        if !newer {
                            *mode = MergeMode::FillOnly;
                        }
                        // The room check (`size(custom) <= 50 - answers`) fails for this lead
                        // whatever happens concurrently: write the bounded map instead. When it
                        // passes, stay with per-answer writes (no version guard to lose to
                        // concurrent merges).
                        let earlier = get_str_map(&lead, "custom");
                        let answers = lead_custom(&sub.custom, &Default::default(), true).len();
                        if answers > 0 && earlier.len() + answers > LEAD_MAX_CUSTOM_KEYS {
                            *custom = CustomWrite::Replace {
                                map: lead_custom(&sub.custom, &earlier, *mode == MergeMode::Newer),
                                version: get_n(&lead, "version").unwrap_or(0),
                            };
                        } else {
                            *custom = CustomWrite::Fields;
                        }
                    }
                }
                Verdict::StaleMerge(None) => {
                    // The lead vanished under its marker (erased a moment ago): start over.
                    plan = Plan::Create;
                    lead_id_for_create = new_id();
                }
                Verdict::TakenMarkers(taken) => {
                    if let Plan::Merge(Merge { claim, .. }) = &mut plan {
                        claim.retain(|k| !taken.contains(k));
                    }
                }
                Verdict::Retry => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    fn create_items(
        &self,
        sub: &NormalizedSubmission,
        identity: &[IdentityKey],
        lead_id: &str,
        touch_id: &str,
        received_at: DateTime<Utc>,
    ) -> (Vec<TransactWriteItem>, Vec<Role>) {
        let mut items = Vec::with_capacity(identity.len() + 3);
        let mut roles = Vec::with_capacity(identity.len() + 3);
        items.push(self.delivery_put(sub, lead_id, touch_id, received_at));
        roles.push(Role::Delivery);
        for key in identity {
            items.push(self.marker_put(key, lead_id, received_at));
            roles.push(Role::Marker(key.clone()));
        }
        items.push(self.new_lead_put(sub, identity, lead_id, touch_id, received_at));
        roles.push(Role::Lead);
        items.push(self.touch_put(sub, lead_id, touch_id, received_at));
        roles.push(Role::Touch);
        if let Some(consent) = self.consent_put(sub, lead_id, touch_id, received_at) {
            items.push(consent);
            roles.push(Role::Consent);
        }
        self.suppression_items(sub, identity, &mut items, &mut roles);
        (items, roles)
    }

    /// Per identity, in the same transaction (no extra round trip): a check that no
    /// suppression entry exists, or, for the person's own fresh consent, its removal.
    fn suppression_items(
        &self,
        sub: &NormalizedSubmission,
        identity: &[IdentityKey],
        items: &mut Vec<TransactWriteItem>,
        roles: &mut Vec<Role>,
    ) {
        let lifts = crate::privacy::lifts_suppression(sub);
        for hash in identity.iter().filter_map(|k| self.pepper.identity(k)) {
            let pk = s(keys::suppression_pk(&hash));
            let sk = s(keys::SUPPRESSION_SK);
            if lifts {
                let del = Delete::builder()
                    .table_name(&self.table)
                    .key(keys::PK, pk)
                    .key(keys::SK, sk)
                    .build()
                    .expect("delete has table and key");
                items.push(TransactWriteItem::builder().delete(del).build());
            } else {
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .key(keys::PK, pk)
                    .key(keys::SK, sk)
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("condition check has table, key and condition");
                items.push(TransactWriteItem::builder().condition_check(check).build());
            }
            roles.push(Role::Suppression);
        }
    }

    fn merge_items(
        &self,
        sub: &NormalizedSubmission,
        m: &Merge,
        touch_id: &str,
        received_at: DateTime<Utc>,
    ) -> (Vec<TransactWriteItem>, Vec<Role>) {
        let lead_id = m.lead_id.as_str();
        let mut items = Vec::with_capacity(m.claim.len() + 4);
        let mut roles = Vec::with_capacity(m.claim.len() + 4);
        items.push(self.delivery_put(sub, lead_id, touch_id, received_at));
        roles.push(Role::Delivery);
        items.push(self.merge_update(sub, m, touch_id, received_at));
        roles.push(Role::Lead);
        items.push(self.touch_put(sub, lead_id, touch_id, received_at));
        roles.push(Role::Touch);
        if let Some(consent) = self.consent_put(sub, lead_id, touch_id, received_at) {
            items.push(consent);
            roles.push(Role::Consent);
        }
        for key in &m.claim {
            items.push(self.marker_put(key, lead_id, received_at));
            roles.push(Role::Marker(key.clone()));
        }
        // An identity new to the lead must not be a suppressed person's.
        self.suppression_items(sub, &m.claim, &mut items, &mut roles);
        (items, roles)
    }

    fn delivery_put(
        &self,
        sub: &NormalizedSubmission,
        lead_id: &str,
        touch_id: &str,
        received_at: DateTime<Utc>,
    ) -> TransactWriteItem {
        let ttl = match sub.delivery {
            DeliveryKey::BodyHash(_) | DeliveryKey::Idempotency { .. } => BODY_HASH_TTL_SECS,
            DeliveryKey::Platform(_) => PLATFORM_ID_TTL_SECS,
        };
        let mut item = Item::new();
        item.insert(
            keys::PK.into(),
            s(keys::delivery_pk(&sub.provider, &sub.delivery)),
        );
        item.insert(keys::SK.into(), s(keys::DELIVERY_SK));
        item.insert("type".into(), s("delivery"));
        item.insert("lead_id".into(), s(lead_id));
        item.insert("touch_id".into(), s(touch_id));
        // Where the touchpoint is, so a later withdrawal of this delivery finds it in one read.
        item.insert(
            "touch_sk".into(),
            s(keys::touch_sk(sub.occurred_at, touch_id)),
        );
        if let Some(fp) = sub.delivery.fingerprint() {
            item.insert("fingerprint".into(), s(fp));
        }
        item.insert("received_at".into(), s(ts(received_at)));
        item.insert(keys::EXPIRES_AT.into(), n(received_at.timestamp() + ttl));
        // An expired marker that TTL has not deleted yet no longer counts.
        guarded_put(
            &self.table,
            item,
            "attribute_not_exists(pk) OR #exp < :now",
            [("#exp", keys::EXPIRES_AT)],
            [(":now", n(received_at.timestamp()))],
        )
    }

    pub(super) fn marker_put(
        &self,
        key: &IdentityKey,
        lead_id: &str,
        at: DateTime<Utc>,
    ) -> TransactWriteItem {
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::identity_pk(key)));
        item.insert(keys::SK.into(), s(keys::MARKER_SK));
        item.insert("type".into(), s("identity"));
        item.insert("lead_id".into(), s(lead_id));
        item.insert("created_at".into(), s(ts(at)));
        guarded_put(&self.table, item, "attribute_not_exists(pk)", [], [])
    }

    fn new_lead_put(
        &self,
        sub: &NormalizedSubmission,
        identity: &[IdentityKey],
        lead_id: &str,
        touch_id: &str,
        received_at: DateTime<Utc>,
    ) -> TransactWriteItem {
        let c = &sub.classification;
        let summary = touch_summary_value(&summary(sub, touch_id));
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::lead_pk(lead_id)));
        item.insert(keys::SK.into(), s(keys::LEAD_SK));
        for (name, value) in self.day_keys_written(keys::DayItem::Lead, sub.occurred_at, lead_id) {
            item.insert(name.into(), s(value));
        }
        item.insert("type".into(), s("lead"));
        item.insert("lead_id".into(), s(lead_id));
        for (name, value) in contact_fields(&sub.contact) {
            item.insert(name.into(), s(value));
        }
        if let Some(consent) = &sub.consent {
            item.insert("consent".into(), consent_value(consent));
        }
        item.insert("first_touch".into(), summary.clone());
        item.insert("last_touch".into(), summary);
        item.insert("last_touch_at".into(), s(ts(sub.occurred_at)));
        item.insert("touch_count".into(), n(1));
        item.insert("channel".into(), s(c.channel.as_str()));
        item.insert("direction".into(), s(c.direction.as_str()));
        item.insert("source".into(), s(c.source.clone()));
        item.insert("campaign".into(), s(c.campaign.clone()));
        item.insert(
            "custom".into(),
            str_map(&lead_custom(&sub.custom, &Default::default(), true)),
        );
        item.insert("is_test".into(), AttributeValue::Bool(sub.is_test));
        item.insert("created_at".into(), s(ts(sub.occurred_at)));
        item.insert("received_at".into(), s(ts(received_at)));
        item.insert("updated_at".into(), s(ts(received_at)));
        // Scored at creation with the built-in model, so a hot lead is hot the moment it arrives
        // (no read: still 1 round trip). Merges leave scoring to the scheduled rescore.
        let scored = super::rescore::score_new_lead(sub, received_at);
        item.insert("stage".into(), s(scored.stage.as_str()));
        if scored.stage == crate::model::Stage::Mql {
            item.insert("mql_at".into(), s(ts(received_at)));
        }
        for (name, value) in super::rescore::assessment_fields(&scored, received_at) {
            item.insert(name.into(), value);
        }
        item.insert("version".into(), n(1));
        if !identity.is_empty() {
            item.insert(
                "identity_keys".into(),
                AttributeValue::Ss(identity.iter().map(keys::identity_pk).collect()),
            );
        }
        guarded_put(&self.table, item, "attribute_not_exists(pk)", [], [])
    }

    fn touch_put(
        &self,
        sub: &NormalizedSubmission,
        lead_id: &str,
        touch_id: &str,
        received_at: DateTime<Utc>,
    ) -> TransactWriteItem {
        let c = &sub.classification;
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::lead_pk(lead_id)));
        item.insert(
            keys::SK.into(),
            s(keys::touch_sk(sub.occurred_at, touch_id)),
        );
        for (name, value) in self.day_keys_written(keys::DayItem::Touch, sub.occurred_at, touch_id)
        {
            item.insert(name.into(), s(value));
        }
        item.insert("type".into(), s("touch"));
        item.insert("touch_id".into(), s(touch_id));
        item.insert("lead_id".into(), s(lead_id));
        item.insert("kind".into(), s(sub.kind.as_str()));
        item.insert("provider".into(), s(sub.provider.clone()));
        item.insert("occurred_at".into(), s(ts(sub.occurred_at)));
        item.insert("received_at".into(), s(ts(received_at)));
        item.insert("channel".into(), s(c.channel.as_str()));
        item.insert("direction".into(), s(c.direction.as_str()));
        item.insert("source".into(), s(c.source.clone()));
        item.insert("campaign".into(), s(c.campaign.clone()));
        item.insert("attribution".into(), attribution_value(&sub.attribution));
        item.insert("custom".into(), str_map(&sub.custom));
        // The rollup reads a review's rating through gsi2, which projects top-level
        // attributes only (not the answers map).
        if let Some(r) = super::codec::review_rating(sub.kind, &sub.custom) {
            item.insert(keys::REVIEW_RATING.into(), n(r));
        }
        item.insert("is_test".into(), AttributeValue::Bool(sub.is_test));
        item.insert(
            "delivery".into(),
            s(keys::delivery_pk(&sub.provider, &sub.delivery)),
        );
        guarded_put(&self.table, item, "attribute_not_exists(pk)", [], [])
    }

    /// An explicit consent answer as an item of the lead's consent history (append-only).
    fn consent_put(
        &self,
        sub: &NormalizedSubmission,
        lead_id: &str,
        touch_id: &str,
        received_at: DateTime<Utc>,
    ) -> Option<TransactWriteItem> {
        let consent = sub.consent.as_ref()?;
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::lead_pk(lead_id)));
        item.insert(keys::SK.into(), s(keys::consent_sk(consent.at, touch_id)));
        item.insert("type".into(), s("consent"));
        item.insert(
            "opt_in".into(),
            AttributeValue::Bool(consent.marketing_opt_in),
        );
        item.insert("at".into(), s(ts(consent.at)));
        item.insert("source".into(), s(sub.provider.clone()));
        item.insert("touch_id".into(), s(touch_id));
        item.insert("recorded_at".into(), s(ts(received_at)));
        let page = consent
            .page
            .clone()
            .or_else(|| sub.attribution.landing_page.clone());
        for (name, value) in [
            ("form_id", sub.attribution.form_id.clone()),
            ("page", page),
            ("text", consent.text.clone()),
            ("ip_hash", consent.ip_hash.clone()),
        ] {
            if let Some(v) = value {
                item.insert(name.into(), s(v));
            }
        }
        Some(guarded_put(
            &self.table,
            item,
            "attribute_not_exists(pk)",
            [],
            [],
        ))
    }

    /// The merge policy (docs/data-model.md, "Merge policy") as one UpdateItem.
    fn merge_update(
        &self,
        sub: &NormalizedSubmission,
        m: &Merge,
        touch_id: &str,
        received_at: DateTime<Utc>,
    ) -> TransactWriteItem {
        let Merge {
            lead_id,
            claim,
            mode,
            custom,
        } = m;
        let mode = *mode;
        let fill_only = mode == MergeMode::FillOnly;
        let mut u = UpdateParts::default();
        let mut removes = Vec::new();
        for (name, value) in contact_fields(&sub.contact) {
            // An extension belongs to the number it was written with: a late, older submission
            // cannot know that its number is still the lead's, so it never sets one.
            if fill_only && name == "phone_ext" {
                continue;
            }
            let alias = u.name(name);
            u.set(alias, s(value), fill_only);
        }
        // A newer number written without an extension clears the old number's.
        if !fill_only && sub.contact.phone.is_some() && sub.contact.phone_ext.is_none() {
            removes.push(u.name("phone_ext"));
        }
        if let Some(consent) = &sub.consent {
            let alias = u.name("consent");
            u.set(alias, consent_value(consent), fill_only);
        }
        // `custom` always exists on a lead (created as an empty map), so nested SETs are safe.
        // The room check keeps the lead's answers bounded without reading the lead first.
        let mut custom_condition = None;
        match custom {
            CustomWrite::Fields => {
                let answers = lead_custom(&sub.custom, &Default::default(), true);
                if !answers.is_empty() {
                    let map = u.name("custom");
                    for (k, v) in &answers {
                        let alias = u.name(k);
                        u.set(format!("{map}.{alias}"), s(v.clone()), fill_only);
                    }
                    let room = LEAD_MAX_CUSTOM_KEYS.saturating_sub(answers.len());
                    u.values.insert(":room".into(), n(room));
                    custom_condition = Some(format!("size({map}) <= :room"));
                }
            }
            CustomWrite::Replace { map, version } => {
                let alias = u.name("custom");
                u.set(alias, str_map(map), false);
                u.values.insert(":version".into(), n(*version));
                let version_alias = u.name("version");
                custom_condition = Some(format!("{version_alias} = :version"));
            }
        }
        if mode == MergeMode::Newer {
            let alias = u.name("last_touch");
            u.set(alias, touch_summary_value(&summary(sub, touch_id)), false);
            let alias = u.name("last_touch_at");
            u.set(alias, s(ts(sub.occurred_at)), false);
        }
        let alias = u.name("updated_at");
        u.set(alias, s(ts(received_at)), false);
        let UpdateParts {
            mut names,
            mut values,
            sets,
        } = u;
        let mut adds = vec!["touch_count :one".to_string(), "version :one".to_string()];
        values.insert(":one".into(), n(1));
        if !claim.is_empty() {
            adds.push("identity_keys :ids".into());
            values.insert(
                ":ids".into(),
                AttributeValue::Ss(claim.iter().map(keys::identity_pk).collect()),
            );
        }
        let remove = if removes.is_empty() {
            String::new()
        } else {
            format!(" REMOVE {}", removes.join(", "))
        };
        let expression = format!("SET {}{remove} ADD {}", sets.join(", "), adds.join(", "));
        let mut condition = match mode {
            MergeMode::Newer => {
                names.insert("#last_touch_at".into(), "last_touch_at".into());
                values.insert(":t".into(), s(ts(sub.occurred_at)));
                "attribute_exists(pk) AND (attribute_not_exists(#last_touch_at) OR #last_touch_at <= :t)".to_string()
            }
            MergeMode::FillOnly => "attribute_exists(pk)".to_string(),
        };
        if let Some(c) = custom_condition {
            condition = format!("{condition} AND {c}");
        }
        // Never into an erased lead: its markers are gone (or going, with its erasure's
        // transaction), so the person is new again, or suppressed.
        names.insert("#erased".into(), "erased".into());
        condition = format!("{condition} AND attribute_not_exists(#erased)");
        let update = self
            .lead_update(lead_id)
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }
}

/// Accumulates `SET` clauses with generated placeholders (`#n1`, `:v1`...) so any field name,
/// including custom answer keys, is safe in an expression.
#[derive(Default)]
struct UpdateParts {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    sets: Vec<String>,
}

impl UpdateParts {
    fn name(&mut self, attribute: &str) -> String {
        let alias = format!("#n{}", self.names.len());
        self.names.insert(alias.clone(), attribute.to_string());
        alias
    }

    /// `path = value`, or `path = if_not_exists(path, value)` when only filling gaps.
    fn set(&mut self, path: String, value: AttributeValue, fill_only: bool) {
        let v = format!(":v{}", self.values.len());
        self.values.insert(v.clone(), value);
        if fill_only {
            self.sets
                .push(format!("{path} = if_not_exists({path}, {v})"));
        } else {
            self.sets.push(format!("{path} = {v}"));
        }
    }
}

/// What each item of a transaction is, to read its cancellation reason.
#[derive(Debug, Clone)]
enum Role {
    Delivery,
    Marker(IdentityKey),
    Lead,
    Touch,
    Consent,
    Suppression,
}

fn summary(sub: &NormalizedSubmission, touch_id: &str) -> TouchSummary {
    TouchSummary {
        touch_id: touch_id.to_string(),
        at: sub.occurred_at,
        kind: sub.kind,
        provider: sub.provider.clone(),
        channel: sub.classification.channel,
        source: sub.classification.source.clone(),
        campaign: sub.classification.campaign.clone(),
        form_id: sub.attribution.form_id.clone(),
        lead_magnet: sub.attribution.lead_magnet.clone(),
    }
}

/// A conditional Put that returns the existing item when its condition fails.
fn guarded_put<const N: usize, const M: usize>(
    table: &str,
    item: Item,
    condition: &str,
    names: [(&str, &str); N],
    values: [(&str, AttributeValue); M],
) -> TransactWriteItem {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    for (k, v) in names {
        put = put.expression_attribute_names(k, v);
    }
    for (k, v) in values {
        put = put.expression_attribute_values(k, v);
    }
    TransactWriteItem::builder()
        .put(put.build().expect("put has table and item"))
        .build()
}

fn read_verdict(
    reasons: &[CancellationReason],
    roles: &[Role],
    fingerprint: Option<&str>,
) -> Verdict {
    let mut existing = Vec::new();
    let mut taken = Vec::new();
    let mut stale_merge: Option<Option<Item>> = None;
    let mut suppressed = false;
    for (reason, role) in reasons.iter().zip(roles) {
        if !failed(reason) {
            continue;
        }
        match role {
            Role::Delivery => {
                let item = reason.item();
                // An idempotency key seen before with other content is not a retry.
                if fingerprint.is_some()
                    && item.and_then(|i| get_s(i, "fingerprint")).as_deref() != fingerprint
                {
                    return Verdict::KeyReused;
                }
                let lead_id = item.and_then(|i| get_s(i, "lead_id"));
                let touch_id = item.and_then(|i| get_s(i, "touch_id"));
                if let (Some(lead_id), Some(touch_id)) = (lead_id, touch_id) {
                    return Verdict::Duplicate { lead_id, touch_id };
                }
                return Verdict::Retry;
            }
            Role::Marker(key) => match reason.item().and_then(|i| get_s(i, "lead_id")) {
                Some(lead_id) => {
                    existing.push((key.clone(), lead_id));
                    taken.push(key.clone());
                }
                None => return Verdict::Retry,
            },
            Role::Lead => stale_merge = Some(reason.item().cloned()),
            // Touch ids are fresh UUIDs: a collision means a retried attempt already wrote it
            // (the consent item is keyed by the touch id too).
            Role::Touch | Role::Consent => return Verdict::Retry,
            Role::Suppression => suppressed = true,
        }
    }
    let is_merge = roles
        .iter()
        .position(|r| matches!(r, Role::Lead))
        .map(|p| p == 1)
        .unwrap_or(false);
    if let Some(item) = stale_merge {
        // In the create plan the lead put cannot fail (fresh id); in the merge plan it is the
        // update's condition.
        if is_merge {
            return Verdict::StaleMerge(item);
        }
    }
    // A suppressed identity stops a merge that would claim it; a create stops unless the person
    // still has a lead (opted out but not erased): then the merge path decides again.
    if suppressed && (is_merge || existing.is_empty()) {
        return Verdict::Suppressed;
    }
    if !existing.is_empty() {
        return if is_merge {
            Verdict::TakenMarkers(taken)
        } else {
            Verdict::Existing(existing)
        };
    }
    Verdict::Retry
}
