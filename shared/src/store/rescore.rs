//! The store side of rescoring: parallel-scan segment pages that carry each lead together with
//! its touches, conditional score writes, score-change records, run progress checkpoints and the
//! stored scoring configuration.
//!
//! A Scan segment covers a range of partition keys, and a touchpoint lives in its lead's
//! partition, so one page yields whole leads with their touches: no Query per lead. A page may
//! end inside a partition; that lead is completed with one Query (`sk >` the last key seen), and
//! the next page (which starts right after that key) skips the rest of the partition. The scan
//! keeps only `LEAD#` partitions (a filter: it saves transfer and parsing, not read capacity).
//!
//! Writes are `UpdateItem`s conditioned on the `version` read with the lead, so a concurrent
//! ingest, sales event or erasure is never overwritten: the caller re-reads that lead and retries.
//! A temperature or stage change also writes a score-change record in the same transaction.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::codec::{get_bool, get_n, get_s, get_str_map, get_time, n, s, Item};
use super::keys::{self, ts};
use super::{Store, StoreError};
use crate::model::{Channel, NormalizedSubmission, Stage, Temperature, TouchKind};
use crate::predict::{LeadFacts, Prediction};
use crate::scoring::{Assessment, Model, Profile, Reason, Touch};

/// The attributes rescoring reads (lead items, touchpoints, referrals given).
const PROJECTED: [&str; 28] = [
    "pk",
    "sk",
    "lead_id",
    "job_title",
    "company",
    "email_key",
    "email",
    "country",
    "phone",
    "phone_raw",
    "custom",
    "stage",
    "score",
    "temperature",
    "version",
    "erased",
    "is_test",
    "kind",
    "occurred_at",
    "created_at",
    // The predictive score's facts (channel, source, campaign, outcomes, first contact) and
    // the prediction stored, to write only when it changed.
    "channel",
    "source",
    "campaign",
    "customer_at",
    "lost_at",
    "first_contacted_at",
    "predicted_conversion",
    "prediction",
];

/// A lead as the model needs it, with its touches.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringInput {
    pub lead_id: String,
    pub job_title: Option<String>,
    pub company: Option<String>,
    pub email_domain: Option<String>,
    pub country: Option<String>,
    pub has_phone: bool,
    pub custom: BTreeMap<String, String>,
    pub stage: Stage,
    pub score: Option<u32>,
    pub temperature: Option<Temperature>,
    pub version: u64,
    pub erased: bool,
    pub is_test: bool,
    /// Touchpoints and referrals given.
    pub touches: Vec<Touch>,
    /// What the predictive score reads besides the profile and the touches.
    /// `None` only on a damaged lead item: such a lead gets no prediction.
    pub created_at: Option<DateTime<Utc>>,
    pub channel: Channel,
    pub source: String,
    pub campaign: String,
    pub customer_at: Option<DateTime<Utc>>,
    pub lost_at: Option<DateTime<Utc>>,
    pub first_contacted_at: Option<DateTime<Utc>>,
    /// The prediction stored on the lead, if any.
    pub prediction: Option<Prediction>,
}

impl ScoringInput {
    pub fn profile(&self) -> Profile<'_> {
        Profile {
            job_title: self.job_title.as_deref(),
            company: self.company.as_deref(),
            email_domain: self.email_domain.as_deref(),
            country: self.country.as_deref(),
            has_phone: self.has_phone,
            custom: &self.custom,
        }
    }

    /// What the predictive score may read of this lead (`None` without a creation time).
    pub fn facts(&self) -> Option<LeadFacts<'_>> {
        Some(LeadFacts {
            lead_id: &self.lead_id,
            created_at: self.created_at?,
            channel: self.channel,
            source: &self.source,
            campaign: &self.campaign,
            profile: self.profile(),
            touches: &self.touches,
            first_contacted_at: self.first_contacted_at,
            won_at: self.customer_at,
            lost_at: self.lost_at,
            is_test: self.is_test,
            erased: self.erased,
        })
    }

    /// The assessment differs from what is stored (score, temperature or stage), or the
    /// prediction replaces the stored one (another model, or a change worth a write).
    pub fn differs(&self, a: &Assessment, prediction: Option<&Prediction>) -> bool {
        self.score != Some(a.score)
            || self.temperature != Some(a.temperature)
            || self.stage != a.stage
            || prediction.is_some_and(|p| p.replaces(self.prediction.as_ref()))
    }
}

/// One page of a scan segment.
#[derive(Debug, Clone)]
pub struct SegmentPage {
    pub leads: Vec<ScoringInput>,
    /// Where the next page starts; `None` when the segment is finished.
    pub next: Option<Item>,
}

/// What a conditional score write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreWrite {
    Written,
    /// The lead changed since it was read (or is gone): re-read and retry.
    Conflict,
}

/// A recorded temperature or stage change.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreChange {
    pub at: DateTime<Utc>,
    pub old_score: Option<u32>,
    pub new_score: u32,
    pub old_temperature: Option<Temperature>,
    pub new_temperature: Temperature,
    pub old_stage: Stage,
    pub new_stage: Stage,
    pub reasons: Vec<Reason>,
    pub config_version: u32,
}

/// Progress of one segment within a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentProgress {
    /// Where to resume (`None` with `done == false`: from the start).
    pub cursor: Option<Item>,
    pub done: bool,
}

/// Which run a checkpoint belongs to: the scheduled full run, or one segment rescored by hand
/// (each has its own checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunScope {
    Full,
    Segment { segment: u32, total: u32 },
}

/// A rescore run's checkpoint: which segments are finished and where the others resume.
#[derive(Debug, Clone, PartialEq)]
pub struct RescoreProgress {
    pub run_id: String,
    pub total_segments: u32,
    pub started_at: DateTime<Utc>,
    pub segments: BTreeMap<u32, SegmentProgress>,
}

impl RescoreProgress {
    /// A new run over `segments` of `total_segments`, none of them started.
    pub fn start(total_segments: u32, segments: &[u32], started_at: DateTime<Utc>) -> Self {
        RescoreProgress {
            run_id: keys::new_id(),
            total_segments,
            started_at,
            segments: segments
                .iter()
                .map(|s| (*s, SegmentProgress::default()))
                .collect(),
        }
    }
}

/// The attributes a score sets on a lead: used by ingest (new leads) and by rescore.
pub(crate) fn assessment_fields(
    a: &Assessment,
    at: DateTime<Utc>,
) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("score", n(a.score)),
        ("temperature", s(a.temperature.as_str())),
        ("score_reasons", reasons_value(&a.reasons)),
        ("score_config_version", n(a.config_version)),
        ("scored_at", s(ts(at))),
    ]
}

/// A new lead's assessment from its first submission, with the built-in model (pure: ingest
/// stays one round trip; a stored configuration applies from the next scheduled rescore).
pub(crate) fn score_new_lead(sub: &NormalizedSubmission, at: DateTime<Utc>) -> Assessment {
    let c = &sub.contact;
    let email = c.email_key.as_deref().or(c.email.as_deref());
    let profile = Profile {
        job_title: c.job_title.as_deref(),
        company: c.company.as_deref(),
        email_domain: email.and_then(Profile::domain_of),
        country: c.country.as_deref(),
        has_phone: c.phone.is_some() || c.phone_raw.is_some(),
        custom: &sub.custom,
    };
    let touch = Touch {
        kind: sub.kind,
        at: sub.occurred_at,
    };
    Model::builtin().assess(&profile, &[touch], Stage::Lead, at)
}

fn reasons_value(reasons: &[Reason]) -> AttributeValue {
    AttributeValue::L(
        reasons
            .iter()
            .map(|r| {
                let mut m = HashMap::new();
                m.insert("rule".to_string(), s(r.rule.clone()));
                m.insert("points".to_string(), n(r.points));
                AttributeValue::M(m)
            })
            .collect(),
    )
}

pub(crate) fn reasons_from(v: Option<&AttributeValue>) -> Vec<Reason> {
    v.and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .filter_map(|r| r.as_m().ok())
                .filter_map(|m| {
                    Some(Reason {
                        rule: get_s(m, "rule")?,
                        points: get_n(m, "points")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Groups consecutive items of one partition (scan order) into scoring inputs.
fn inputs_from(items: &[Item]) -> Vec<ScoringInput> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let pk = get_s(&items[i], keys::PK);
        let mut j = i + 1;
        while j < items.len() && get_s(&items[j], keys::PK) == pk {
            j += 1;
        }
        if let Some(input) = input_from_partition(&items[i..j]) {
            out.push(input);
        }
        i = j;
    }
    out
}

/// One partition's items -> the lead's scoring input (`None` when the lead item is missing).
fn input_from_partition(items: &[Item]) -> Option<ScoringInput> {
    let mut lead: Option<&Item> = None;
    let mut touches = Vec::new();
    for item in items {
        let Some(sk) = get_s(item, keys::SK) else {
            continue;
        };
        if sk == keys::LEAD_SK {
            lead = Some(item);
        } else if sk.starts_with(keys::TOUCH_SK_PREFIX) {
            let kind = get_s(item, "kind").and_then(|k| TouchKind::parse(&k));
            if let (Some(kind), Some(at)) = (kind, get_time(item, "occurred_at")) {
                touches.push(Touch { kind, at });
            }
        } else if sk.starts_with(keys::REFERRAL_SK_PREFIX) {
            // A referral this lead gave, recorded once per referral whatever the retries.
            if let Some(at) = get_time(item, "created_at") {
                touches.push(Touch {
                    kind: TouchKind::ReferralGiven,
                    at,
                });
            }
        }
    }
    let lead = lead?;
    keep_newest(&mut touches);
    let email = get_s(lead, "email_key").or_else(|| get_s(lead, "email"));
    Some(ScoringInput {
        lead_id: get_s(lead, "lead_id")?,
        job_title: get_s(lead, "job_title"),
        company: get_s(lead, "company"),
        email_domain: email
            .as_deref()
            .and_then(Profile::domain_of)
            .map(str::to_string),
        country: get_s(lead, "country"),
        has_phone: lead.contains_key("phone") || lead.contains_key("phone_raw"),
        custom: get_str_map(lead, "custom"),
        stage: get_s(lead, "stage")
            .and_then(|s| Stage::parse(&s))
            .unwrap_or(Stage::Lead),
        score: get_n(lead, "score"),
        temperature: get_s(lead, "temperature").and_then(|t| Temperature::parse(&t)),
        version: get_n(lead, "version").unwrap_or(0),
        erased: get_bool(lead, "erased"),
        is_test: get_bool(lead, "is_test"),
        touches,
        created_at: get_time(lead, "created_at"),
        channel: get_s(lead, "channel")
            .and_then(|c| Channel::parse(&c))
            .unwrap_or(Channel::Other),
        source: get_s(lead, "source").unwrap_or_default(),
        campaign: get_s(lead, "campaign").unwrap_or_default(),
        customer_at: get_time(lead, "customer_at"),
        lost_at: get_time(lead, "lost_at"),
        first_contacted_at: get_time(lead, "first_contacted_at"),
        prediction: super::predict::prediction_from(lead),
    })
}

/// Touches a lead is scored on at most: the newest. Engagement decays by half every
/// `half_life_days` (30 by default) and is capped, so older touches add little; the bound
/// keeps a lead's scoring read and memory constant however long its history (docs/scoring).
pub const MAX_SCORED_TOUCHES: usize = 200;

/// Keeps the newest `MAX_SCORED_TOUCHES` touches, oldest first.
fn keep_newest(touches: &mut Vec<Touch>) {
    touches.sort_by_key(|t| t.at);
    let excess = touches.len().saturating_sub(MAX_SCORED_TOUCHES);
    touches.drain(..excess);
}

/// `#p0, #p1...` for the projected attributes (several are reserved words).
fn projection() -> (String, HashMap<String, String>) {
    let mut names = HashMap::new();
    let mut parts = Vec::with_capacity(PROJECTED.len() + 1);
    for (i, a) in PROJECTED.iter().enumerate() {
        let alias = format!("#p{i}");
        names.insert(alias.clone(), (*a).to_string());
        parts.push(alias);
    }
    (parts.join(", "), names)
}

impl Store {
    /// One page of scan segment `segment` of `total`, from `start` (`None`: the beginning).
    /// `limit` caps the items evaluated per page (`None`: DynamoDB's 1 MB pages).
    /// 1 Scan, plus 1 Query when the page ends inside a lead's partition.
    pub async fn scan_segment_page(
        &self,
        segment: u32,
        total: u32,
        start: Option<Item>,
        limit: Option<i32>,
    ) -> Result<SegmentPage, StoreError> {
        let (proj, names) = projection();
        // The page starting after a key inside a partition: that lead was completed by the
        // previous page's Query, so the rest of its partition is skipped here.
        let skip_pk = start.as_ref().and_then(|k| get_s(k, keys::PK));
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(total as i32)
            .set_limit(limit)
            .set_exclusive_start_key(start)
            .projection_expression(proj)
            .set_expression_attribute_names(Some(names))
            .filter_expression("begins_with(#p0, :lead)")
            .expression_attribute_values(":lead", s(keys::LEAD_PK_PREFIX))
            .send()
            .await
            .map_err(|e| StoreError::sdk("Scan", e))?;
        let mut items: Vec<Item> = out
            .items()
            .iter()
            .filter(|i| skip_pk.is_none() || get_s(i, keys::PK) != skip_pk)
            .cloned()
            .collect();
        let next = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        if let Some(next_key) = &next {
            let (Some(next_pk), Some(next_sk)) =
                (get_s(next_key, keys::PK), get_s(next_key, keys::SK))
            else {
                return Err(StoreError::Corrupt {
                    key: "scan LastEvaluatedKey".into(),
                    reason: "lacks pk or sk".into(),
                });
            };
            let ends_inside = items
                .last()
                .map(|i| get_s(i, keys::PK).as_deref() == Some(next_pk.as_str()))
                .unwrap_or(false);
            if ends_inside && next_pk.starts_with(keys::LEAD_PK_PREFIX) {
                let rest = self.partition_after(&next_pk, &next_sk).await?;
                items.extend(rest);
            }
        }
        Ok(SegmentPage {
            leads: inputs_from(&items),
            next,
        })
    }

    /// The items of partition `pk` after sort key `after` (projected as the scan is).
    async fn partition_after(&self, pk: &str, after: &str) -> Result<Vec<Item>, StoreError> {
        let (proj, names) = projection();
        self.query_all(|| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#p0 = :pk AND #p1 > :sk")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":sk", s(after))
                .projection_expression(proj.clone())
                .set_expression_attribute_names(Some(names.clone()))
        })
        .await
    }

    /// One lead's scoring input, read consistently: targeted rescores, the stream function
    /// and retries after a conflict. 1 Query when the partition fits in one 1 MB page (nearly
    /// every lead); for a longer history, the rest of the items sorted before the score
    /// changes (lead, referrals given) and the newest `MAX_SCORED_TOUCHES` touchpoints (one
    /// page): 2-3 Queries whatever the history.
    pub async fn scoring_input(&self, lead_id: &str) -> Result<Option<ScoringInput>, StoreError> {
        let (proj, names) = projection();
        let pk = keys::lead_pk(lead_id);
        let query = |condition: &str| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .expression_attribute_values(":pk", s(pk.clone()))
                .projection_expression(proj.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .consistent_read(true)
        };
        let first = query("#p0 = :pk")
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        let mut items = first.items().to_vec();
        let Some(next) = first.last_evaluated_key().filter(|k| !k.is_empty()) else {
            return Ok(input_from_partition(&items));
        };
        if get_s(next, keys::SK).is_some_and(|sk| sk.as_str() < keys::SCORE_CHANGE_SK_PREFIX) {
            let next = next.clone();
            let mut start = Some(next);
            while let Some(from) = start.take() {
                let out = query("#p0 = :pk AND #p1 < :score")
                    .expression_attribute_values(":score", s(keys::SCORE_CHANGE_SK_PREFIX))
                    .set_exclusive_start_key(Some(from))
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("Query", e))?;
                items.extend(out.items().iter().cloned());
                start = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            }
        }
        // The oldest touches the first page held give way to the newest.
        items.retain(|i| {
            !get_s(i, keys::SK).is_some_and(|sk| sk.starts_with(keys::TOUCH_SK_PREFIX))
        });
        let newest = query("#p0 = :pk AND begins_with(#p1, :tp)")
            .expression_attribute_values(":tp", s(keys::TOUCH_SK_PREFIX))
            .scan_index_forward(false)
            .limit(MAX_SCORED_TOUCHES as i32)
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        items.extend(newest.items().iter().cloned());
        Ok(input_from_partition(&items))
    }

    /// Writes a new assessment (and the prediction, when a model is in force) if the lead is
    /// still at `input.version` (bumping it), recording `writer`. A temperature or stage change also appends a
    /// score-change record, in the same transaction.
    pub async fn write_score(
        &self,
        input: &ScoringInput,
        a: &Assessment,
        prediction: Option<&Prediction>,
        writer: super::ScoreWriter,
        now: DateTime<Utc>,
    ) -> Result<ScoreWrite, StoreError> {
        let mut sets = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let predicted = prediction
            .map(|p| super::predict::prediction_fields(p, now))
            .unwrap_or_default();
        for (i, (name, value)) in assessment_fields(a, now)
            .into_iter()
            .chain(predicted)
            .enumerate()
        {
            names.insert(format!("#a{i}"), name.to_string());
            values.insert(format!(":a{i}"), value);
            sets.push(format!("#a{i} = :a{i}"));
        }
        if a.stage != input.stage {
            names.insert("#stage".into(), "stage".into());
            values.insert(":stage".into(), s(a.stage.as_str()));
            sets.push("#stage = :stage".into());
            if a.stage == Stage::Mql {
                // The moment it qualified: MQL-to-SQL reporting measures from it.
                names.insert("#mql_at".into(), "mql_at".into());
                values.insert(":mql_at".into(), s(ts(now)));
                sets.push("#mql_at = if_not_exists(#mql_at, :mql_at)".into());
            }
        }
        // Who wrote this score, at the version the write produces: the stream function tells
        // rescore's writes (announced by rescore) from every other change by these two.
        names.insert("#writer".into(), "score_writer".into());
        values.insert(":writer".into(), s(writer.as_str()));
        names.insert("#scored_version".into(), "scored_version".into());
        values.insert(":next".into(), n(input.version + 1));
        sets.push("#writer = :writer, #scored_version = :next".into());
        names.insert("#version".into(), "version".into());
        values.insert(":v".into(), n(input.version));
        values.insert(":one".into(), n(1));
        let expression = format!("SET {} ADD #version :one", sets.join(", "));
        let condition = "#version = :v";
        let key: Item = [
            (keys::PK.to_string(), s(keys::lead_pk(&input.lead_id))),
            (keys::SK.to_string(), s(keys::LEAD_SK)),
        ]
        .into_iter()
        .collect();
        let record = input.temperature != Some(a.temperature) || input.stage != a.stage;
        if !record {
            // A score-only change is one plain conditional UpdateItem (half a transaction's cost).
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(ScoreWrite::Written),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                        Ok(ScoreWrite::Conflict)
                    }
                    _ => Err(StoreError::sdk("UpdateItem", e)),
                },
            };
        }
        let update = self
            .lead_update(&input.lead_id)
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Corrupt {
                key: keys::lead_pk(&input.lead_id),
                reason: e.to_string(),
            })?;
        let mut change = Item::new();
        change.insert(keys::PK.into(), s(keys::lead_pk(&input.lead_id)));
        change.insert(
            keys::SK.into(),
            s(keys::score_change_sk(now, &keys::new_id())),
        );
        change.insert("type".into(), s("score_change"));
        change.insert("lead_id".into(), s(input.lead_id.clone()));
        change.insert("at".into(), s(ts(now)));
        if let Some(old) = input.score {
            change.insert("old_score".into(), n(old));
        }
        change.insert("new_score".into(), n(a.score));
        if let Some(old) = input.temperature {
            change.insert("old_temperature".into(), s(old.as_str()));
        }
        change.insert("new_temperature".into(), s(a.temperature.as_str()));
        change.insert("old_stage".into(), s(input.stage.as_str()));
        change.insert("new_stage".into(), s(a.stage.as_str()));
        change.insert("reasons".into(), reasons_value(&a.reasons));
        change.insert("config_version".into(), n(a.config_version));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(change))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Corrupt {
                key: keys::lead_pk(&input.lead_id),
                reason: e.to_string(),
            })?;
        let result = self
            .transact(vec![
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().put(put).build(),
            ])
            .await;
        match result {
            Ok(_) => Ok(ScoreWrite::Written),
            Err(e) => match e.as_service_error() {
                // The version condition failed, or another transaction held the lead: both mean
                // "read it again".
                Some(TransactWriteItemsError::TransactionCanceledException(_))
                | Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                    Ok(ScoreWrite::Conflict)
                }
                _ => Err(StoreError::sdk("TransactWriteItems", e)),
            },
        }
    }

    /// A lead's score changes, oldest first (1 Query).
    pub async fn score_changes(&self, lead_id: &str) -> Result<Vec<ScoreChange>, StoreError> {
        let items = self
            .partition_prefix(&keys::lead_pk(lead_id), keys::SCORE_CHANGE_SK_PREFIX)
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                Some(ScoreChange {
                    at: get_time(i, "at")?,
                    old_score: get_n(i, "old_score"),
                    new_score: get_n(i, "new_score")?,
                    old_temperature: get_s(i, "old_temperature")
                        .and_then(|t| Temperature::parse(&t)),
                    new_temperature: get_s(i, "new_temperature")
                        .and_then(|t| Temperature::parse(&t))?,
                    old_stage: get_s(i, "old_stage").and_then(|t| Stage::parse(&t))?,
                    new_stage: get_s(i, "new_stage").and_then(|t| Stage::parse(&t))?,
                    reasons: reasons_from(i.get("reasons")),
                    config_version: get_n(i, "config_version").unwrap_or(0),
                })
            })
            .collect())
    }

    /// The checkpoint of the run of `scope`, if one is under way.
    pub async fn rescore_progress(
        &self,
        scope: RunScope,
    ) -> Result<Option<RescoreProgress>, StoreError> {
        let sk = keys::rescore_progress_sk(scope);
        let item = self.get_item(keys::RESCORE_PROGRESS_PK, &sk).await?;
        let Some(item) = item.as_ref() else {
            return Ok(None);
        };
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: format!("{}/{sk}", keys::RESCORE_PROGRESS_PK),
            reason: reason.to_string(),
        };
        let segments = item
            .get("segments")
            .and_then(|v| v.as_m().ok())
            .ok_or_else(|| corrupt("no segments"))?
            .iter()
            .filter_map(|(k, v)| {
                let m = v.as_m().ok()?;
                Some((
                    k.parse::<u32>().ok()?,
                    SegmentProgress {
                        cursor: m.get("cursor").and_then(|c| c.as_m().ok()).cloned(),
                        done: get_bool(m, "done"),
                    },
                ))
            })
            .collect();
        Ok(Some(RescoreProgress {
            run_id: get_s(item, "run_id").ok_or_else(|| corrupt("no run_id"))?,
            total_segments: get_n(item, "total_segments")
                .ok_or_else(|| corrupt("no total_segments"))?,
            started_at: get_time(item, "started_at").ok_or_else(|| corrupt("no started_at"))?,
            segments,
        }))
    }

    /// Starts (or restarts) the run of `scope`: replaces its checkpoint.
    pub async fn start_rescore_run(
        &self,
        scope: RunScope,
        progress: &RescoreProgress,
    ) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::RESCORE_PROGRESS_PK));
        item.insert(keys::SK.into(), s(keys::rescore_progress_sk(scope)));
        item.insert("type".into(), s("rescore_progress"));
        item.insert("run_id".into(), s(progress.run_id.clone()));
        item.insert("total_segments".into(), n(progress.total_segments));
        item.insert("started_at".into(), s(ts(progress.started_at)));
        item.insert(
            "segments".into(),
            AttributeValue::M(
                progress
                    .segments
                    .iter()
                    .map(|(k, p)| (k.to_string(), segment_value(p)))
                    .collect(),
            ),
        );
        self.put(item).await?;
        Ok(())
    }

    /// Saves one segment's progress (1 UpdateItem). Segments save concurrently: each sets only
    /// its own entry. Conditioned on the run id, so a stale invocation cannot overwrite a newer
    /// run's checkpoint; returns false when the run is no longer current.
    pub async fn save_segment_progress(
        &self,
        scope: RunScope,
        run_id: &str,
        segment: u32,
        progress: &SegmentProgress,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::RESCORE_PROGRESS_PK))
            .key(keys::SK, s(keys::rescore_progress_sk(scope)))
            .update_expression("SET #segments.#seg = :p")
            .condition_expression("run_id = :run")
            .expression_attribute_names("#segments", "segments")
            .expression_attribute_names("#seg", segment.to_string())
            .expression_attribute_values(":p", segment_value(progress))
            .expression_attribute_values(":run", s(run_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(StoreError::sdk("UpdateItem", e)),
            },
        }
    }

    /// Ends the run of `scope`: the next invocation starts a new one.
    pub async fn finish_rescore_run(
        &self,
        scope: RunScope,
        run_id: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::RESCORE_PROGRESS_PK))
            .key(keys::SK, s(keys::rescore_progress_sk(scope)))
            .condition_expression("run_id = :run")
            .expression_attribute_values(":run", s(run_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .map(|e| e.is_conditional_check_failed_exception())
                    == Some(true) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::sdk("DeleteItem", e)),
        }
    }

    /// The stored scoring configuration's JSON, if one was stored (1 GetItem).
    pub async fn scoring_config_json(&self) -> Result<Option<String>, StoreError> {
        let item = self
            .get_item(keys::SCORING_CONFIG_PK, keys::SCORING_CONFIG_SK)
            .await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "config")))
    }

    /// Stores a scoring configuration (the caller validated it) replacing the built-in one.
    pub async fn put_scoring_config(
        &self,
        json: &str,
        version: u32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(keys::PK, s(keys::SCORING_CONFIG_PK))
            .item(keys::SK, s(keys::SCORING_CONFIG_SK))
            .item("type", s("scoring_config"))
            .item("config", s(json))
            .item("config_version", n(version))
            .item("updated_at", s(ts(now)))
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }
}

fn segment_value(p: &SegmentProgress) -> AttributeValue {
    let mut m = HashMap::new();
    m.insert("done".to_string(), AttributeValue::Bool(p.done));
    if let Some(c) = &p.cursor {
        m.insert("cursor".to_string(), AttributeValue::M(c.clone()));
    }
    AttributeValue::M(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), s(*v))).collect()
    }

    #[test]
    fn partitions_become_inputs_with_their_touches() {
        let items = vec![
            item(&[
                ("pk", "LEAD#a"),
                ("sk", "#LEAD"),
                ("lead_id", "a"),
                ("email_key", "x@acme.com"),
                ("stage", "mql"),
            ]),
            item(&[
                ("pk", "LEAD#a"),
                ("sk", "REF#k"),
                ("created_at", "2026-11-01T00:00:00.000Z"),
            ]),
            item(&[
                ("pk", "LEAD#a"),
                ("sk", "TP#2026-11-02T00:00:00.000Z#t"),
                ("kind", "visit"),
                ("occurred_at", "2026-11-02T00:00:00.000Z"),
            ]),
            // A partition whose lead item is elsewhere (another page): skipped.
            item(&[
                ("pk", "LEAD#b"),
                ("sk", "TP#2026-11-02T00:00:00.000Z#u"),
                ("kind", "visit"),
                ("occurred_at", "2026-11-02T00:00:00.000Z"),
            ]),
            item(&[("pk", "LEAD#c"), ("sk", "#LEAD"), ("lead_id", "c")]),
        ];
        let inputs = inputs_from(&items);
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[0].lead_id, "a");
        assert_eq!(inputs[0].email_domain.as_deref(), Some("acme.com"));
        assert_eq!(inputs[0].stage, Stage::Mql);
        assert_eq!(inputs[0].touches.len(), 2);
        assert_eq!(inputs[0].touches[0].kind, TouchKind::ReferralGiven);
        assert_eq!(inputs[1].lead_id, "c");
        assert!(inputs[1].touches.is_empty());
    }
}
