//! Reviews and their per-platform aggregates (referral-review).
//!
//! One item per (platform, external id), `REVIEW#<platform>#<id>` / `#REVIEW`, carrying a
//! `version`. Every change is one TransactWriteItems: the review item, conditioned on the version
//! (or on not existing) that the change was computed from, and the aggregate
//! `REVIEWAGG#<platform>` / `#AGG` adjusted by exactly that change (`count`, `rating_sum`,
//! `d1`..`d5`). A retry, a stale read or a concurrent delivery fails the condition; the review as
//! it is now comes back with the failure and the change is recomputed from it, so the aggregate
//! always equals the sum over the live reviews:
//!
//! - new review: put (`attribute_not_exists`), count +1, sum +r, d[r] +1;
//! - changed review: put (`version = v`), sum +(r - old), d[old] -1, d[r] +1;
//! - deleted review: tombstone (`version = v`), count -1, sum -old, d[old] -1. A tombstone stays,
//!   so a late or retried "created" never brings a deleted review back;
//! - the same state again: nothing written (`duplicate`).
//!
//! Reviews rated 2 or less (and live) are in the sparse gsi1 partition `REVIEWS#FOLLOWUP`.
//!
//! The aggregate is sharded (`REVIEWAGG#<platform>#<shard>`, the shard from the review's id),
//! so a bulk import does not serialize on one item; reads sum the shards. A linked review is
//! mirrored in its lead's partition (`REVIEW#<platform>#<id>`: rating or deleted) by the same
//! transaction, so the lead view shows it as it is now.

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::codec::{get_bool, get_n, get_s, get_time, n, put_opt, s, Item};
use super::keys::{self, ts};
use super::txn::{backoff, cancellation_reasons, failed};
use super::{Store, StoreError};
use crate::model::{ReviewAggregate, ReviewInput, ReviewPlatform};

/// Ten concurrent deliveries of one review: each loser needs one re-read, conflicts a few more.
const MAX_ATTEMPTS: u32 = 12;

/// A review as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReview {
    pub platform: ReviewPlatform,
    pub external_id: String,
    /// `None` for a tombstone written by a delete that came before its review.
    pub review: Option<ReviewInput>,
    pub lead_id: Option<String>,
    pub deleted: bool,
    pub version: u64,
}

/// A change to one review.
#[derive(Debug, Clone, Copy)]
pub enum ReviewChange<'a> {
    /// The review's current state: creates it, or replaces what is stored.
    Upsert(&'a ReviewInput),
    /// A creation event (Trustpilot `service-review-created`): applies only when the review is
    /// unknown, so a retried or late creation never undoes a later update.
    Create(&'a ReviewInput),
    Delete {
        platform: ReviewPlatform,
        external_id: &'a str,
    },
}

impl ReviewChange<'_> {
    pub fn platform(&self) -> ReviewPlatform {
        match self {
            ReviewChange::Upsert(r) | ReviewChange::Create(r) => r.platform,
            ReviewChange::Delete { platform, .. } => *platform,
        }
    }

    pub fn external_id(&self) -> &str {
        match self {
            ReviewChange::Upsert(r) | ReviewChange::Create(r) => &r.external_id,
            ReviewChange::Delete { external_id, .. } => external_id,
        }
    }
}

crate::named_enum! {
    pub enum ReviewStatus {
        Created = "created", Updated = "updated", Deleted = "deleted",
        /// The same state was stored before: nothing changed.
        Duplicate = "duplicate",
        /// Older than the stored state (`updated_at`), or the review was deleted: ignored.
        Ignored = "ignored",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewWriteOutcome {
    pub status: ReviewStatus,
    /// The lead the review is linked to, if any.
    pub lead_id: Option<String>,
    /// The rating now stored (`None` when deleted).
    pub rating: Option<u8>,
    pub needs_follow_up: bool,
}

/// What to write, computed from the stored state.
enum Plan<'a> {
    Nothing(ReviewStatus),
    Create(&'a ReviewInput),
    Replace {
        review: &'a ReviewInput,
        old_rating: u8,
        version: u64,
    },
    /// Delete before the review was ever seen: a tombstone only.
    Tombstone,
    Delete {
        old_rating: u8,
        version: u64,
    },
}

impl Store {
    /// The stored review (1 consistent GetItem).
    pub async fn get_review(
        &self,
        platform: ReviewPlatform,
        external_id: &str,
    ) -> Result<Option<StoredReview>, StoreError> {
        let item = self
            .get_item(
                keys::review_pk(platform.as_str(), external_id),
                keys::REVIEW_SK,
            )
            .await?;
        Ok(item.as_ref().and_then(stored_from))
    }

    /// Applies a change to a review and its platform aggregate exactly once (see the module
    /// docs). `prev` is the review as the caller read it (`get_review`); `lead_id` links the
    /// review when known (a stored link is kept otherwise). 1 TransactWriteItems, or none when
    /// nothing changes; contention costs one more per lost race.
    pub async fn write_review(
        &self,
        change: ReviewChange<'_>,
        lead_id: Option<&str>,
        mut prev: Option<StoredReview>,
        now: DateTime<Utc>,
    ) -> Result<ReviewWriteOutcome, StoreError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let plan = plan(prev.as_ref(), change, lead_id);
            let link = lead_id
                .map(str::to_string)
                .or_else(|| prev.as_ref().and_then(|p| p.lead_id.clone()));
            let (status, items) = match plan {
                Plan::Nothing(status) => return Ok(unchanged(status, prev.as_ref())),
                Plan::Create(r) => (
                    ReviewStatus::Created,
                    vec![
                        self.review_put(r, link.as_deref(), None, now),
                        self.aggregate_update(
                            r.platform,
                            &r.external_id,
                            1,
                            i64::from(r.rating),
                            &[(r.rating, 1)],
                        ),
                    ],
                ),
                Plan::Replace {
                    review: r,
                    old_rating,
                    version,
                } => {
                    let mut items = vec![self.review_put(r, link.as_deref(), Some(version), now)];
                    if old_rating != r.rating {
                        items.push(self.aggregate_update(
                            r.platform,
                            &r.external_id,
                            0,
                            i64::from(r.rating) - i64::from(old_rating),
                            &[(old_rating, -1), (r.rating, 1)],
                        ));
                    }
                    (ReviewStatus::Updated, items)
                }
                Plan::Tombstone => (
                    ReviewStatus::Deleted,
                    vec![self.tombstone_put(change, link.as_deref(), None, now)],
                ),
                Plan::Delete {
                    old_rating,
                    version,
                } => (
                    ReviewStatus::Deleted,
                    vec![
                        self.tombstone_put(change, link.as_deref(), Some(version), now),
                        self.aggregate_update(
                            change.platform(),
                            change.external_id(),
                            -1,
                            -i64::from(old_rating),
                            &[(old_rating, -1)],
                        ),
                    ],
                ),
            };
            let mut items = items;
            items.extend(self.lead_review_writes(change, prev.as_ref(), link.as_deref(), now));
            let result = self.transact(items).await;
            let reasons = match result {
                Ok(_) => {
                    let rating = match change {
                        ReviewChange::Upsert(r) | ReviewChange::Create(r) => Some(r.rating),
                        ReviewChange::Delete { .. } => None,
                    };
                    return Ok(ReviewWriteOutcome {
                        status,
                        lead_id: link,
                        rating,
                        needs_follow_up: rating
                            .map(|r| r <= crate::model::REVIEW_FOLLOW_UP_MAX_RATING)
                            .unwrap_or(false),
                    });
                }
                Err(e) => cancellation_reasons(e, "TransactWriteItems")?,
            };
            match reasons.first().filter(|r| failed(r)) {
                // Someone changed the review since it was read; the failure carries it as it is
                // now (absent item: it was deleted from the table, i.e. never a tombstone).
                Some(reason) => prev = reason.item().and_then(stored_from),
                None => {
                    // A concurrent transaction on the review or the aggregate, or throttling.
                    backoff(attempt).await;
                    prev = self
                        .get_review(change.platform(), change.external_id())
                        .await?;
                }
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The platform's aggregate: the sum of its shards and of the unsharded item written
    /// before issue 13 (1 consistent BatchGetItem); zeros before its first review.
    pub async fn review_aggregate(
        &self,
        platform: ReviewPlatform,
    ) -> Result<ReviewAggregate, StoreError> {
        Ok(self
            .review_aggregates_of(&[platform])
            .await?
            .pop()
            .unwrap_or_else(|| ReviewAggregate::empty(platform)))
    }

    /// Every platform's aggregate, in `ReviewPlatform::ALL` order (1 consistent
    /// BatchGetItem: 7 platforms x 9 items).
    pub async fn review_aggregates(&self) -> Result<Vec<ReviewAggregate>, StoreError> {
        self.review_aggregates_of(&ReviewPlatform::ALL).await
    }

    async fn review_aggregates_of(
        &self,
        platforms: &[ReviewPlatform],
    ) -> Result<Vec<ReviewAggregate>, StoreError> {
        let mut wanted = Vec::new();
        for p in platforms {
            wanted.push((
                keys::legacy_review_agg_pk(p.as_str()),
                keys::REVIEW_AGG_SK.to_string(),
            ));
            for shard in 0..keys::REVIEW_AGG_SHARDS {
                wanted.push((
                    keys::review_agg_shard_pk(p.as_str(), shard),
                    keys::REVIEW_AGG_SK.to_string(),
                ));
            }
        }
        // A shard alone may be negative (a review counted in another shard, or in the
        // unsharded item, then deleted through this one): sum signed, then the total.
        let mut sums: std::collections::HashMap<ReviewPlatform, [i64; 7]> = Default::default();
        for item in self.batch_get(wanted).await? {
            let Some(p) = get_s(&item, "platform").and_then(|p| ReviewPlatform::parse(&p)) else {
                continue;
            };
            let sum = sums.entry(p).or_default();
            sum[0] += get_n::<i64>(&item, "count").unwrap_or(0);
            sum[1] += get_n::<i64>(&item, "rating_sum").unwrap_or(0);
            for (i, d) in sum[2..].iter_mut().enumerate() {
                *d += get_n::<i64>(&item, &format!("d{}", i + 1)).unwrap_or(0);
            }
        }
        let total = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(platforms
            .iter()
            .map(|p| {
                let mut agg = ReviewAggregate::empty(*p);
                if let Some(sum) = sums.get(p) {
                    agg.count = total(sum[0]);
                    agg.rating_sum = total(sum[1]);
                    for (i, d) in agg.distribution.iter_mut().enumerate() {
                        *d = total(sum[2 + i]);
                    }
                }
                agg
            })
            .collect())
    }

    /// The review's mirror in its lead's partition (current rating, or deleted), and the
    /// removal of the mirror from a lead the review is no longer linked to.
    fn lead_review_writes(
        &self,
        change: ReviewChange<'_>,
        prev: Option<&StoredReview>,
        link: Option<&str>,
        now: DateTime<Utc>,
    ) -> Vec<TransactWriteItem> {
        let (platform, id) = (change.platform().as_str(), change.external_id());
        let sk = keys::lead_review_sk(platform, id);
        let mut writes = Vec::new();
        if let Some(old) = prev
            .and_then(|p| p.lead_id.as_deref())
            .filter(|o| Some(*o) != link)
        {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key(keys::PK, s(keys::lead_pk(old)))
                .key(keys::SK, s(sk.clone()))
                .build()
                .expect("delete has table and key");
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        let Some(lead_id) = link else {
            return writes;
        };
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::lead_pk(lead_id)));
        item.insert(keys::SK.into(), s(sk));
        item.insert("type".into(), s("lead_review"));
        item.insert("platform".into(), s(platform));
        item.insert("external_id".into(), s(id));
        item.insert("updated_at".into(), s(ts(now)));
        match change {
            ReviewChange::Upsert(r) | ReviewChange::Create(r) => {
                item.insert("rating".into(), n(r.rating));
                item.insert("published_at".into(), s(ts(r.published_at)));
                item.insert("deleted".into(), AttributeValue::Bool(false));
            }
            ReviewChange::Delete { .. } => {
                item.insert("deleted".into(), AttributeValue::Bool(true));
            }
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("put has table and item");
        writes.push(TransactWriteItem::builder().put(put).build());
        writes
    }

    /// Live reviews rated 2 or less, oldest first (Query on gsi1, eventually consistent).
    pub async fn reviews_for_follow_up(&self) -> Result<Vec<StoredReview>, StoreError> {
        let items = self.index_partition(keys::REVIEW_FOLLOW_UP_GSI).await?;
        Ok(items.iter().filter_map(stored_from).collect())
    }

    fn review_put(
        &self,
        r: &ReviewInput,
        lead_id: Option<&str>,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
    ) -> TransactWriteItem {
        let mut item = self.review_base(r.platform, &r.external_id, lead_id, expected_version, now);
        item.insert("rating".into(), n(r.rating));
        put_opt(&mut item, "title", &r.title);
        put_opt(&mut item, "text", &r.text);
        put_opt(&mut item, "name", &r.name);
        put_opt(&mut item, "reference_id", &r.reference_id);
        item.insert("published_at".into(), s(ts(r.published_at)));
        if let Some(u) = r.updated_at {
            item.insert("source_updated_at".into(), s(ts(u)));
        }
        item.insert("deleted".into(), AttributeValue::Bool(false));
        let flagged = r.needs_follow_up();
        item.insert("needs_follow_up".into(), AttributeValue::Bool(flagged));
        if flagged {
            item.insert(keys::GSI1_PK.into(), s(keys::REVIEW_FOLLOW_UP_GSI));
            item.insert(
                keys::GSI1_SK.into(),
                s(format!(
                    "{}#{}#{}",
                    ts(r.published_at),
                    r.platform.as_str(),
                    r.external_id
                )),
            );
        }
        self.versioned_put(item, expected_version)
    }

    /// A deleted review keeps only its identity and link: the content is gone at the source.
    fn tombstone_put(
        &self,
        change: ReviewChange<'_>,
        lead_id: Option<&str>,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
    ) -> TransactWriteItem {
        let mut item = self.review_base(
            change.platform(),
            change.external_id(),
            lead_id,
            expected_version,
            now,
        );
        item.insert("deleted".into(), AttributeValue::Bool(true));
        item.insert("deleted_at".into(), s(ts(now)));
        self.versioned_put(item, expected_version)
    }

    fn review_base(
        &self,
        platform: ReviewPlatform,
        external_id: &str,
        lead_id: Option<&str>,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
    ) -> Item {
        let mut item = Item::new();
        item.insert(
            keys::PK.into(),
            s(keys::review_pk(platform.as_str(), external_id)),
        );
        item.insert(keys::SK.into(), s(keys::REVIEW_SK));
        item.insert("type".into(), s("review"));
        item.insert("platform".into(), s(platform.as_str()));
        item.insert("external_id".into(), s(external_id));
        if let Some(l) = lead_id {
            item.insert("lead_id".into(), s(l));
        }
        item.insert("updated_at".into(), s(ts(now)));
        item.insert("version".into(), n(expected_version.unwrap_or(0) + 1));
        item
    }

    fn versioned_put(&self, item: Item, expected_version: Option<u64>) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let put = match expected_version {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":v", n(v)),
        };
        TransactWriteItem::builder()
            .put(put.build().expect("put has table and item"))
            .build()
    }

    /// `ADD count :dc, rating_sum :ds, d<r> :k...` on the platform's aggregate shard of this
    /// review (created by the first ADD). Every change of one review goes to the same shard.
    fn aggregate_update(
        &self,
        platform: ReviewPlatform,
        external_id: &str,
        count_delta: i64,
        sum_delta: i64,
        distribution: &[(u8, i64)],
    ) -> TransactWriteItem {
        let mut adds = vec!["#count :dc".to_string(), "rating_sum :ds".to_string()];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(
                keys::PK,
                s(keys::review_agg_pk(platform.as_str(), external_id)),
            )
            .key(keys::SK, s(keys::REVIEW_AGG_SK))
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":dc", n(count_delta))
            .expression_attribute_values(":ds", n(sum_delta))
            .expression_attribute_values(":p", s(platform.as_str()))
            .expression_attribute_values(":t", s("review_aggregate"));
        for (i, (rating, delta)) in distribution.iter().enumerate() {
            adds.push(format!("d{rating} :k{i}"));
            update = update.expression_attribute_values(format!(":k{i}"), n(delta));
        }
        let update = update
            .update_expression(format!(
                "SET platform = :p, #type = :t ADD {}",
                adds.join(", ")
            ))
            .expression_attribute_names("#type", "type")
            .build()
            .expect("update has table, key and expression");
        TransactWriteItem::builder().update(update).build()
    }
}

fn plan<'a>(
    prev: Option<&StoredReview>,
    change: ReviewChange<'a>,
    lead_id: Option<&str>,
) -> Plan<'a> {
    match change {
        ReviewChange::Upsert(r) | ReviewChange::Create(r) => {
            let Some(p) = prev else {
                return Plan::Create(r);
            };
            if p.deleted {
                return Plan::Nothing(ReviewStatus::Ignored);
            }
            let Some(stored) = &p.review else {
                return Plan::Nothing(ReviewStatus::Ignored);
            };
            if matches!(change, ReviewChange::Create(_)) {
                return Plan::Nothing(ReviewStatus::Duplicate);
            }
            if let (Some(new), Some(old)) = (r.updated_at, stored.updated_at) {
                if new < old {
                    return Plan::Nothing(ReviewStatus::Ignored);
                }
            }
            let same_link = lead_id.is_none() || lead_id == p.lead_id.as_deref();
            if same_review(stored, r) && same_link {
                return Plan::Nothing(ReviewStatus::Duplicate);
            }
            Plan::Replace {
                review: r,
                old_rating: stored.rating,
                version: p.version,
            }
        }
        ReviewChange::Delete { .. } => match prev {
            None => Plan::Tombstone,
            Some(p) if p.deleted => Plan::Nothing(ReviewStatus::Duplicate),
            Some(p) => match &p.review {
                Some(stored) => Plan::Delete {
                    old_rating: stored.rating,
                    version: p.version,
                },
                None => Plan::Nothing(ReviewStatus::Duplicate),
            },
        },
    }
}

/// Equal as stored: times compare at the millisecond precision they are stored with.
fn same_review(a: &ReviewInput, b: &ReviewInput) -> bool {
    a.rating == b.rating
        && a.title == b.title
        && a.text == b.text
        && a.name == b.name
        && a.reference_id == b.reference_id
        && ts(a.published_at) == ts(b.published_at)
        && a.updated_at.map(ts) == b.updated_at.map(ts)
}

fn unchanged(status: ReviewStatus, prev: Option<&StoredReview>) -> ReviewWriteOutcome {
    let rating = prev
        .filter(|p| !p.deleted)
        .and_then(|p| p.review.as_ref())
        .map(|r| r.rating);
    ReviewWriteOutcome {
        status,
        lead_id: prev.and_then(|p| p.lead_id.clone()),
        rating,
        needs_follow_up: rating
            .map(|r| r <= crate::model::REVIEW_FOLLOW_UP_MAX_RATING)
            .unwrap_or(false),
    }
}

fn stored_from(item: &Item) -> Option<StoredReview> {
    let platform = get_s(item, "platform").and_then(|p| ReviewPlatform::parse(&p))?;
    let external_id = get_s(item, "external_id")?;
    let deleted = get_bool(item, "deleted");
    let review = match get_n::<u8>(item, "rating") {
        Some(rating) if !deleted => Some(ReviewInput {
            platform,
            external_id: external_id.clone(),
            rating,
            title: get_s(item, "title"),
            text: get_s(item, "text"),
            name: get_s(item, "name"),
            published_at: get_time(item, "published_at")?,
            updated_at: get_time(item, "source_updated_at"),
            reference_id: get_s(item, "reference_id"),
        }),
        _ => None,
    };
    Some(StoredReview {
        platform,
        external_id,
        review,
        lead_id: get_s(item, "lead_id"),
        deleted,
        version: get_n(item, "version").unwrap_or(0),
    })
}
