//! List imports (lead-import): the checkpoint of each file version and its row errors, in the
//! file's own partition `IMPORT#<file id>`.
//!
//! | operation | requests |
//! |---|---|
//! | claim an import (start or resume), or find it finished, leased or absent | 1 UpdateItem |
//! | start (header read), or record a file-level failure | 1 PutItem `attribute_not_exists` |
//! | save a chunk of rows without errors | 1 PutItem conditioned on the offset it started from |
//! | save a chunk with row errors | 1 TransactWriteItems: that Put + the chunk's error page |
//! | note the result written | 1 UpdateItem |
//! | the row errors, for the result | Query `begins_with(sk, "ERR#")`, 1 per 1 MB |
//!
//! One invocation at a time works on a file: the claim is conditioned on no live lease, and
//! every save on the offset the chunk started from and the claimant's lease, so a duplicated
//! event (or an invocation that outlived its lease) never stores or counts the same rows twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::codec::{get_map, get_n, get_s, get_time, n, s, Item};
use super::keys::{self, ts};
use super::txn::{backoff, failed};
use super::{Store, StoreError};
use crate::import::parse::Shape;
use crate::import::rows::ListMapping;
use crate::import::{FileRef, ImportCounts, ImportProgress, ImportStatus, Lease, RowError};
use crate::model::{Channel, Direction};

const MAX_ATTEMPTS: u32 = 4;

/// What a claim on an import found.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportClaim {
    /// Running and now ours (its lease set, `invocations` counted).
    Claimed(ImportProgress),
    /// Finished (done, failed), or running under another invocation's live lease.
    Taken(ImportProgress),
    /// Never started.
    Absent,
}

impl Store {
    /// Claims a running import for `lease` (1 UpdateItem, conditioned on no live lease);
    /// otherwise says what it found, from the same request.
    pub async fn claim_import(
        &self,
        file_id: &str,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> Result<ImportClaim, StoreError> {
        let pk = keys::import_pk(file_id);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk.clone()))
            .key(keys::SK, s(keys::IMPORT_SK))
            .update_expression(
                "SET #owner = :me, #until = :until, #updated = :now ADD #invocations :one",
            )
            .condition_expression(
                "attribute_exists(pk) AND #status = :running AND \
                 (attribute_not_exists(#until) OR #until < :now)",
            )
            .expression_attribute_names("#owner", "lease_owner")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_names("#invocations", "invocations")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":me", s(lease.owner.clone()))
            .expression_attribute_values(":until", s(ts(lease.until)))
            .expression_attribute_values(":now", s(ts(now)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":running", s(ImportStatus::Running.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        let corrupt = || StoreError::Corrupt {
            key: pk.clone(),
            reason: "not an import checkpoint".into(),
        };
        match res {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(progress_from)
                .map(ImportClaim::Claimed)
                .ok_or_else(corrupt),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ex)) => match ex.item() {
                    None => Ok(ImportClaim::Absent),
                    Some(item) => progress_from(item)
                        .map(ImportClaim::Taken)
                        .ok_or_else(corrupt),
                },
                _ => Err(StoreError::sdk("UpdateItem", e)),
            },
        }
    }

    /// Where the import of a file version stands (`None`: never started).
    pub async fn import_progress(
        &self,
        file_id: &str,
    ) -> Result<Option<ImportProgress>, StoreError> {
        let pk = keys::import_pk(file_id);
        match self.get_item(pk.clone(), keys::IMPORT_SK).await? {
            None => Ok(None),
            Some(item) => progress_from(&item).map(Some).ok_or(StoreError::Corrupt {
                key: pk,
                reason: "not an import checkpoint".into(),
            }),
        }
    }

    /// Records a new import (running, or failed at its header); false when it exists already
    /// (another attempt started it first).
    pub async fn start_import(&self, p: &ImportProgress) -> Result<bool, StoreError> {
        self.put_if(progress_item(p), "attribute_not_exists(pk)", &[], &[])
            .await
    }

    /// One PutItem under `condition`: false when the condition failed.
    async fn put_if(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (k, v) in names {
            put = put.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            put = put.expression_attribute_values(*k, v.clone());
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::sdk("PutItem", e)),
        }
    }

    /// Saves a chunk: the progress after it, conditioned on the checkpoint still being at
    /// `from_offset`, running and leased to `owner`, with the chunk's row errors (one item,
    /// keyed by the chunk's first row) in the same transaction. False: another invocation saved
    /// these rows first.
    pub async fn save_import(
        &self,
        p: &ImportProgress,
        owner: &str,
        from_offset: u64,
        first_row: u64,
        errors: &[RowError],
    ) -> Result<bool, StoreError> {
        let condition = "#offset = :from AND #status = :running AND #owner = :me";
        let names = [
            ("#offset", "offset"),
            ("#status", "status"),
            ("#owner", "lease_owner"),
        ];
        let values = [
            (":from", n(from_offset)),
            (":running", s(ImportStatus::Running.as_str())),
            (":me", s(owner)),
        ];
        if errors.is_empty() {
            return self
                .put_if(progress_item(p), condition, &names, &values)
                .await;
        }
        let mut progress = Put::builder()
            .table_name(&self.table)
            .set_item(Some(progress_item(p)))
            .condition_expression(condition);
        for (k, v) in names {
            progress = progress.expression_attribute_names(k, v);
        }
        for (k, v) in values {
            progress = progress.expression_attribute_values(k, v);
        }
        let progress = progress.build().expect("put has table and item");
        let page = Put::builder()
            .table_name(&self.table)
            .set_item(Some(errors_item(&p.file.file_id(), first_row, errors)))
            .build()
            .expect("put has table and item");
        for attempt in 1..=MAX_ATTEMPTS {
            let items = vec![
                TransactWriteItem::builder().put(progress.clone()).build(),
                TransactWriteItem::builder().put(page.clone()).build(),
            ];
            match self.transact_or_cancelled(items).await? {
                None => return Ok(true),
                Some(reasons) if reasons.first().is_some_and(failed) => return Ok(false),
                Some(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Notes that the result object was written (a retried event then only reads).
    pub async fn set_import_result(
        &self,
        file_id: &str,
        result_key: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::import_pk(file_id)))
            .key(keys::SK, s(keys::IMPORT_SK))
            .update_expression("SET result_key = :k")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":k", s(result_key))
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }

    /// Every row error of an import, in row order.
    pub async fn import_errors(&self, file_id: &str) -> Result<Vec<RowError>, StoreError> {
        let items = self
            .partition_prefix(&keys::import_pk(file_id), keys::IMPORT_ERRORS_SK_PREFIX)
            .await?;
        let mut out = Vec::new();
        for item in &items {
            for e in item
                .get("errors")
                .and_then(|v| v.as_l().ok())
                .into_iter()
                .flatten()
            {
                let Ok(m) = e.as_m() else { continue };
                if let (Some(row), Some(field), Some(code)) =
                    (get_n(m, "row"), get_s(m, "field"), get_s(m, "code"))
                {
                    out.push(RowError { row, field, code });
                }
            }
        }
        Ok(out)
    }
}

fn progress_item(p: &ImportProgress) -> Item {
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(keys::import_pk(&p.file.file_id())));
    item.insert(keys::SK.into(), s(keys::IMPORT_SK));
    item.insert("type".into(), s("import"));
    item.insert("bucket".into(), s(p.file.bucket.clone()));
    item.insert("object_key".into(), s(p.file.key.clone()));
    item.insert("version_id".into(), s(p.file.version_id.clone()));
    item.insert("status".into(), s(p.status.as_str()));
    match p.shape {
        Shape::Csv { delimiter } => {
            item.insert("shape".into(), s("csv"));
            item.insert("delimiter".into(), s(delimiter.to_string()));
        }
        Shape::JsonLines => {
            item.insert("shape".into(), s("jsonl"));
        }
    }
    item.insert(
        "header".into(),
        AttributeValue::L(p.header.iter().map(|h| s(h.clone())).collect()),
    );
    let mut mapping = HashMap::new();
    let m = &p.mapping;
    for (name, v) in [
        ("direction", m.direction.map(|d| d.as_str().to_string())),
        ("channel", m.channel.map(|c| c.as_str().to_string())),
        ("source", m.source.clone()),
        ("campaign", m.campaign.clone()),
    ] {
        if let Some(v) = v {
            mapping.insert(name.to_string(), s(v));
        }
    }
    item.insert("mapping".into(), AttributeValue::M(mapping));
    item.insert("default_time".into(), s(ts(p.default_time)));
    item.insert("offset".into(), n(p.offset));
    item.insert("next_row".into(), n(p.next_row));
    item.insert(
        "counts".into(),
        AttributeValue::M(
            p.counts
                .named()
                .iter()
                .map(|(k, v)| (k.to_string(), n(*v)))
                .collect(),
        ),
    );
    if let Some((code, message)) = &p.file_error {
        item.insert("file_error_code".into(), s(code.clone()));
        item.insert("file_error_message".into(), s(message.clone()));
    }
    item.insert("started_at".into(), s(ts(p.started_at)));
    item.insert("updated_at".into(), s(ts(p.updated_at)));
    item.insert("invocations".into(), n(p.invocations));
    if let Some(k) = &p.result_key {
        item.insert("result_key".into(), s(k.clone()));
    }
    if let Some(lease) = &p.lease {
        item.insert("lease_owner".into(), s(lease.owner.clone()));
        item.insert("lease_until".into(), s(ts(lease.until)));
    }
    item
}

fn progress_from(item: &Item) -> Option<ImportProgress> {
    let shape = match get_s(item, "shape")?.as_str() {
        "jsonl" => Shape::JsonLines,
        _ => Shape::Csv {
            delimiter: get_s(item, "delimiter")?.chars().next()?,
        },
    };
    let m = get_map(item, "mapping");
    let mapped = |name: &str| m.and_then(|m| get_s(m, name));
    let counts = get_map(item, "counts");
    let time = |name: &str| get_time(item, name);
    let started_at: DateTime<Utc> = time("started_at")?;
    Some(ImportProgress {
        file: FileRef {
            bucket: get_s(item, "bucket")?,
            key: get_s(item, "object_key")?,
            version_id: get_s(item, "version_id")?,
        },
        status: ImportStatus::parse(&get_s(item, "status")?)?,
        shape,
        header: item
            .get("header")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        mapping: ListMapping {
            direction: mapped("direction").and_then(|d| Direction::parse(&d)),
            channel: mapped("channel").and_then(|c| Channel::parse(&c)),
            source: mapped("source"),
            campaign: mapped("campaign"),
        },
        default_time: time("default_time")?,
        offset: get_n(item, "offset")?,
        next_row: get_n(item, "next_row")?,
        counts: ImportCounts::from_named(|k| counts.and_then(|c| get_n(c, k)).unwrap_or(0)),
        file_error: get_s(item, "file_error_code")
            .map(|c| (c, get_s(item, "file_error_message").unwrap_or_default())),
        started_at,
        updated_at: time("updated_at").unwrap_or(started_at),
        invocations: get_n(item, "invocations").unwrap_or(0),
        result_key: get_s(item, "result_key"),
        lease: match (get_s(item, "lease_owner"), time("lease_until")) {
            (Some(owner), Some(until)) => Some(Lease { owner, until }),
            _ => None,
        },
    })
}

fn errors_item(file_id: &str, first_row: u64, errors: &[RowError]) -> Item {
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(keys::import_pk(file_id)));
    item.insert(keys::SK.into(), s(keys::import_errors_sk(first_row)));
    item.insert("type".into(), s("import_errors"));
    item.insert(
        "errors".into(),
        AttributeValue::L(
            errors
                .iter()
                .map(|e| {
                    AttributeValue::M(HashMap::from([
                        ("row".to_string(), n(e.row)),
                        ("field".to_string(), s(e.field.clone())),
                        ("code".to_string(), s(e.code.clone())),
                    ]))
                })
                .collect(),
        ),
    );
    item
}
