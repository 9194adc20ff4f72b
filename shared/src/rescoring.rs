//! The scoring in force, as stored: the rules (the stored configuration, else the built-in
//! one) and the predictive model when one was trained. Rescore scores every lead by it; the
//! stream function `lead-events` rescores a merged lead by it, so both agree on every lead.

use chrono::{DateTime, Utc};

use crate::predict::{Prediction, PredictiveModel, Predictor};
use crate::scoring::{Assessment, ConfigError, Model, ScoringConfig};
use crate::store::{ScoringInput, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored configuration no longer validates: the error names the field to fix.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The rules and, when a model is trained, the predictive score: what every lead is scored by.
pub struct Scorer {
    pub rules: Model,
    pub predictor: Option<Predictor>,
}

impl Scorer {
    /// The stored rules and model (2 GetItems).
    pub async fn load(store: &Store) -> Result<Scorer, ScorerError> {
        Ok(Scorer {
            rules: load_rules(store).await?,
            predictor: load_predictor(store).await?,
        })
    }

    /// The rules' assessment and the prediction, the temperature raised by the prediction
    /// where the configuration says so. Erased leads get no prediction (their facts are gone).
    pub fn assess(
        &self,
        lead: &ScoringInput,
        now: DateTime<Utc>,
    ) -> (Assessment, Option<Prediction>) {
        let mut a = self
            .rules
            .assess(&lead.profile(), &lead.touches, lead.stage, now);
        let prediction = self
            .predictor
            .as_ref()
            .zip(lead.facts())
            .filter(|_| !lead.erased)
            .map(|(p, facts)| p.predict(&facts, now, &self.rules));
        if let Some(p) = &prediction {
            self.rules.apply_prediction(&mut a, p.predicted_conversion);
        }
        (a, prediction)
    }
}

/// The stored configuration when there is one, else the built-in one. A stored configuration
/// that no longer validates is an error: scoring with rules nobody chose is worse than a delay.
pub async fn load_rules(store: &Store) -> Result<Model, ScorerError> {
    match store.scoring_config_json().await? {
        None => Ok(Model::new(ScoringConfig::default())?),
        Some(text) => Ok(Model::new(ScoringConfig::from_json(&text)?)?),
    }
}

/// The model in force, if one was trained. A document this code cannot read (another format)
/// is logged and not applied: the rules score goes on, and the next training replaces it.
pub async fn load_predictor(store: &Store) -> Result<Option<Predictor>, StoreError> {
    let Some(text) = store.predictive_model_json().await? else {
        return Ok(None);
    };
    match PredictiveModel::from_json(&text) {
        Ok(m) => Ok(Some(Predictor::new(m))),
        Err(e) => {
            tracing::error!(error = %e, "stored predictive model not applied");
            Ok(None)
        }
    }
}
