//! Quarantine: authentic deliveries that could not be parsed are kept (30 days) with the reason,
//! so nothing is lost and `leadflow replay-quarantine` can ingest them once the parser learns.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Duration, Utc};

use super::codec::{get_s, get_time, n, s, Item};
use super::keys::{self, new_id, ts};
use super::{Store, StoreError};

const QUARANTINE_TTL_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedItem {
    pub id: String,
    pub provider: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    /// The exact bytes received (after API Gateway's base64 was undone).
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    /// The raw query string (form providers carry their form id there).
    pub raw_query: String,
}

impl Store {
    /// Keeps a delivery for replay (1 PutItem). Returns its id.
    pub async fn quarantine(
        &self,
        provider: &str,
        reason: &str,
        body: &[u8],
        content_type: Option<&str>,
        raw_query: &str,
        received_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(keys::quarantine_pk(&id)));
        item.insert(keys::SK.into(), s(keys::QUARANTINE_SK));
        item.insert(keys::GSI1_PK.into(), s(keys::QUARANTINE_GSI));
        item.insert(keys::GSI1_SK.into(), s(format!("{}#{id}", ts(received_at))));
        item.insert("type".into(), s("quarantine"));
        item.insert("id".into(), s(id.clone()));
        item.insert("provider".into(), s(provider));
        item.insert(
            "reason".into(),
            s(reason.chars().take(1000).collect::<String>()),
        );
        item.insert("received_at".into(), s(ts(received_at)));
        item.insert("body".into(), AttributeValue::B(Blob::new(body.to_vec())));
        if let Some(ct) = content_type {
            item.insert("content_type".into(), s(ct));
        }
        // Secret-in-URL providers carry their key in the query: never store it.
        let query = redact_query(raw_query);
        if !query.is_empty() {
            item.insert("raw_query".into(), s(query));
        }
        let expires = n((received_at + Duration::days(QUARANTINE_TTL_DAYS)).timestamp());
        item.insert(keys::EXPIRES_AT.into(), expires.clone());
        // Filed under every identity the raw body names, so that erasing the person finds the
        // delivery (crate::privacy says what is and is not found). The filings are written
        // first: a failure in between leaves a filing of nothing, never an unfiled body.
        let refs: Vec<WriteRequest> = crate::privacy::identities_in(body)
            .iter()
            .map(|k| {
                let mut r = Item::new();
                r.insert(
                    keys::PK.into(),
                    s(keys::quarantine_ref_pk(&keys::identity_pk(k))),
                );
                r.insert(keys::SK.into(), s(keys::quarantine_ref_sk(&id)));
                r.insert("type".into(), s("quarantine_ref"));
                r.insert("quarantine_id".into(), s(id.clone()));
                r.insert(keys::EXPIRES_AT.into(), expires.clone());
                let put = PutRequest::builder()
                    .set_item(Some(r))
                    .build()
                    .expect("put request has an item");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        if !refs.is_empty() {
            self.write_batch(refs).await?;
        }
        self.put(item).await?;
        Ok(id)
    }

    /// Deletes every quarantined delivery filed under one of these identity marker keys, and
    /// the filing (Query per identity, then a delete per item). Returns how many deliveries.
    pub(crate) async fn delete_quarantine_of(
        &self,
        identity_pks: &[String],
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for pk in identity_pks {
            let ref_pk = keys::quarantine_ref_pk(pk);
            for r in self.partition_items(&ref_pk).await? {
                if let Some(qid) = get_s(&r, "quarantine_id") {
                    self.delete_quarantine(&qid).await?;
                    deleted += 1;
                }
                if let Some(sk) = get_s(&r, keys::SK) {
                    self.delete_key(&ref_pk, &sk).await?;
                }
            }
        }
        Ok(deleted)
    }

    /// Quarantined deliveries, oldest first, expired ones left out (Query on the index).
    pub async fn list_quarantine(&self, limit: usize) -> Result<Vec<QuarantinedItem>, StoreError> {
        let items = self
            .live_index_partition(keys::QUARANTINE_GSI, Utc::now())
            .await?;
        Ok(items
            .iter()
            .filter_map(quarantined_from)
            .take(limit)
            .collect())
    }

    /// Removes a quarantined delivery once replayed (1 DeleteItem).
    pub async fn delete_quarantine(&self, id: &str) -> Result<(), StoreError> {
        self.delete_key(&keys::quarantine_pk(id), keys::QUARANTINE_SK)
            .await
    }

    /// Deletes one item by key (1 DeleteItem; deleting nothing is fine).
    pub(crate) async fn delete_key(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .send()
            .await
            .map_err(|e| StoreError::sdk("DeleteItem", e))?;
        Ok(())
    }
}

fn quarantined_from(item: &Item) -> Option<QuarantinedItem> {
    Some(QuarantinedItem {
        id: get_s(item, "id")?,
        provider: get_s(item, "provider")?,
        reason: get_s(item, "reason").unwrap_or_default(),
        received_at: get_time(item, "received_at")?,
        body: item
            .get("body")
            .and_then(|b| b.as_b().ok())
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default(),
        content_type: get_s(item, "content_type"),
        raw_query: get_s(item, "raw_query").unwrap_or_default(),
    })
}

/// Drops query parameters that carry secrets (`key`, `secret`, `token`...).
fn redact_query(raw: &str) -> String {
    form_urlencoded::parse(raw.as_bytes())
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !(k.contains("key") || k.contains("secret") || k.contains("token") || k == "sig")
        })
        .fold(
            form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(&k, &v);
                s
            },
        )
        .finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_not_kept_from_the_query() {
        assert_eq!(super::redact_query("key=abc&form=7&api_token=x"), "form=7");
    }
}
