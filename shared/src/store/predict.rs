//! The store side of the predictive score (`crate::predict`): the versioned model document,
//! the last training run's outcome, and the prediction stored on a lead beside its rules score.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};

use super::codec::{get_map, get_n, get_s, n, s, Item};
use super::keys::{self, ts};
use super::txn::{backoff, cancellation_reasons};
use super::{Store, StoreError};
use crate::predict::{Contribution, Prediction, PredictiveModel};

/// Concurrent training runs (a schedule and a manual invoke) racing for the next version.
const MAX_ATTEMPTS: u32 = 5;
/// Past versions are kept a year (TTL), for comparing a model with its predecessors.
const HISTORY_DAYS: i64 = 365;

/// The attributes a prediction sets on a lead: `predicted_conversion` (a number, beside
/// `score`) and `prediction` (the model version, the top features, when).
pub(crate) fn prediction_fields(
    p: &Prediction,
    at: DateTime<Utc>,
) -> Vec<(&'static str, AttributeValue)> {
    let top = p
        .top_features
        .iter()
        .map(|c| {
            let mut m = HashMap::new();
            m.insert("feature".to_string(), s(c.feature.clone()));
            m.insert("contribution".to_string(), n(c.contribution));
            AttributeValue::M(m)
        })
        .collect();
    let mut m = HashMap::new();
    m.insert("model_version".to_string(), n(p.model_version));
    m.insert("top_features".to_string(), AttributeValue::L(top));
    m.insert("predicted_at".to_string(), s(ts(at)));
    vec![
        ("predicted_conversion", n(p.predicted_conversion)),
        ("prediction", AttributeValue::M(m)),
    ]
}

/// The prediction stored on a lead item, if any.
pub fn prediction_from(item: &Item) -> Option<Prediction> {
    let p = get_map(item, "prediction")?;
    let top_features = p
        .get("top_features")
        .and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .filter_map(|c| c.as_m().ok())
                .filter_map(|c| {
                    Some(Contribution {
                        feature: get_s(c, "feature")?,
                        contribution: get_n(c, "contribution")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Prediction {
        predicted_conversion: get_n(item, "predicted_conversion")?,
        top_features,
        model_version: get_n(p, "model_version")?,
    })
}

impl Store {
    /// The model applied at every rescore, as its JSON document (1 GetItem).
    pub async fn predictive_model_json(&self) -> Result<Option<String>, StoreError> {
        let item = self
            .get_item(keys::PREDICT_PK, keys::PREDICT_CURRENT_SK)
            .await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "model")))
    }

    /// The last training run's outcome, as the JSON the run answered (1 GetItem).
    pub async fn training_attempt_json(&self) -> Result<Option<String>, StoreError> {
        let item = self
            .get_item(keys::PREDICT_PK, keys::PREDICT_ATTEMPT_SK)
            .await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "outcome")))
    }

    /// Records a training run that did not train (why, with its counts): the model in force,
    /// if any, stays (1 PutItem).
    pub async fn put_training_attempt(
        &self,
        outcome_json: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .set_item(Some(attempt_item(outcome_json, now)))
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }

    /// Saves a trained model as the next version and makes it current, with its history item
    /// and the attempt record, in one transaction conditioned on the version read (a concurrent
    /// run gets the version after). Returns the version given. 1 GetItem + 1 TransactWriteItems.
    pub async fn save_predictive_model(
        &self,
        model: &mut PredictiveModel,
        outcome_json: impl Fn(&PredictiveModel) -> String,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let current = self
                .get_item(keys::PREDICT_PK, keys::PREDICT_CURRENT_SK)
                .await?;
            let previous: Option<u64> = current.as_ref().and_then(|i| get_n(i, "model_version"));
            model.model_version = previous.unwrap_or(0) + 1;
            let doc = model.to_json();
            let item = |sk: String| {
                let mut item = Item::new();
                item.insert(keys::PK.into(), s(keys::PREDICT_PK));
                item.insert(keys::SK.into(), s(sk));
                item.insert("type".into(), s("predictive_model"));
                item.insert("model".into(), s(doc.clone()));
                item.insert("model_version".into(), n(model.model_version));
                item.insert("trained_at".into(), s(ts(model.trained_at)));
                item
            };
            let mut current_put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item(keys::PREDICT_CURRENT_SK.to_string())));
            current_put = match previous {
                None => current_put.condition_expression("attribute_not_exists(pk)"),
                Some(v) => current_put
                    .condition_expression("model_version = :prev")
                    .expression_attribute_values(":prev", n(v)),
            };
            let mut history = item(keys::predict_model_sk(model.model_version));
            history.insert(
                keys::EXPIRES_AT.into(),
                n((now + Duration::days(HISTORY_DAYS)).timestamp()),
            );
            let puts = [
                current_put.build(),
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(history))
                    .build(),
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(attempt_item(&outcome_json(model), now)))
                    .build(),
            ];
            let items = puts
                .into_iter()
                .map(|p| {
                    p.map(|p| TransactWriteItem::builder().put(p).build())
                        .map_err(|e| StoreError::Corrupt {
                            key: keys::PREDICT_PK.into(),
                            reason: e.to_string(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => return Ok(model.model_version),
                Err(e) => {
                    // Cancelled: another run saved a version meanwhile (its condition failed),
                    // or a conflict; read again and take the next version. Anything else is
                    // a storage error.
                    cancellation_reasons(e, "TransactWriteItems")?;
                    backoff(attempt).await;
                }
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }
}

fn attempt_item(outcome_json: &str, now: DateTime<Utc>) -> Item {
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(keys::PREDICT_PK));
    item.insert(keys::SK.into(), s(keys::PREDICT_ATTEMPT_SK));
    item.insert("type".into(), s("predictive_training"));
    item.insert("outcome".into(), s(outcome_json));
    item.insert("at".into(), s(ts(now)));
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prediction_round_trips_through_the_lead_item() {
        let p = Prediction {
            predicted_conversion: 0.4321,
            top_features: vec![
                Contribution {
                    feature: "title:title_vp_director".into(),
                    contribution: 1.234,
                },
                Contribution {
                    feature: "email:free".into(),
                    contribution: -0.5,
                },
            ],
            model_version: 3,
        };
        let item: Item = prediction_fields(&p, Utc::now())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(prediction_from(&item), Some(p));
        assert_eq!(prediction_from(&Item::new()), None);
    }
}
