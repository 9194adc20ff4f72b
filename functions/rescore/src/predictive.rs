//! The predictive score's part of rescore (the model itself is `leadflow::predict`):
//! `{"train": true}` (the weekly schedule, or by hand; `{"train": {"min_won": 20, ...}}` overrides
//! training settings of the scoring configuration for that run) trains a model from every lead
//! and stores it as the next version; `{"get_model": true}` answers the model in force with its
//! evaluation, and the last training run's outcome (why nothing was trained, when it was not).
//! Every rescore then applies the model in force (`leadflow::rescoring::load_predictor`).

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use leadflow::predict::{PredictSettings, PredictiveModel, TrainingSet};
use leadflow::scoring::Model;
use leadflow::store::{Store, StoreError};
use serde_json::{json, Value};

use crate::{Counters, RescoreEvent, RescoreState};

/// `{"train": ...}` and `{"get_model": true}`; `None` for every other event.
pub async fn dispatch(
    state: &RescoreState,
    input: &RescoreEvent,
    rules: &Model,
    stop_at: Option<Instant>,
    now: DateTime<Utc>,
) -> Result<Option<Value>, lambda_runtime::Error> {
    match input {
        RescoreEvent::Train(train_input) => {
            let settings = settings(rules, train_input)?;
            Ok(Some(train(state, rules, settings, stop_at, now).await?))
        }
        RescoreEvent::GetModel => Ok(Some(describe(&state.store).await?)),
        _ => Ok(None),
    }
}

/// The scoring configuration's `prediction.training`, with the fields of a `{"train": {...}}`
/// object laid over it.
fn settings(rules: &Model, train_input: &Value) -> Result<PredictSettings, lambda_runtime::Error> {
    let configured = &rules.config().prediction.training;
    match train_input {
        Value::Bool(true) | Value::Null => Ok(configured.clone()),
        Value::Object(over) => {
            let mut v = serde_json::to_value(configured)?;
            if let Value::Object(base) = &mut v {
                base.extend(over.clone());
            }
            let s: PredictSettings =
                serde_json::from_value(v).map_err(|e| format!("train: {e}"))?;
            let problems = s.problems("train");
            if problems.is_empty() {
                Ok(s)
            } else {
                Err(problems.join("; ").into())
            }
        }
        _ => Err("train must be true or an object of training settings".into()),
    }
}

/// Reads every lead (the same parallel scan rescore uses, all segments at once; memory bounded
/// by `max_examples`), trains, and stores the model as the next version, or records why not.
async fn train(
    state: &RescoreState,
    rules: &Model,
    settings: PredictSettings,
    stop_at: Option<Instant>,
    now: DateTime<Utc>,
) -> Result<Value, lambda_runtime::Error> {
    let set = Mutex::new(TrainingSet::new(settings.clone(), now));
    let counters = Counters::default();
    let total = state.segments;
    let results = join_all((0..total).map(|segment| {
        let (set, counters) = (&set, &counters);
        async move {
            let mut cursor = None;
            loop {
                if stop_at.is_some_and(|stop| Instant::now() >= stop) {
                    return Ok::<bool, StoreError>(false);
                }
                let page = state
                    .store
                    .scan_segment_page(segment, total, cursor, state.page_size)
                    .await?;
                Counters::add(&counters.pages, 1);
                Counters::add(&counters.scanned, page.leads.len() as u64);
                {
                    let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
                    for lead in &page.leads {
                        if let Some(facts) = lead.facts() {
                            set.observe(&facts, rules);
                        }
                    }
                }
                cursor = page.next;
                if cursor.is_none() {
                    return Ok(true);
                }
            }
        }
    }))
    .await;
    let mut complete = true;
    for r in results {
        complete &= r?;
    }
    let set = set.into_inner().unwrap_or_else(|e| e.into_inner());
    let outcome = if complete {
        set.train(rules.config().version)
    } else {
        // Training on part of the table would learn from whichever segments were read first.
        Err(Box::new(leadflow::predict::NotTrained {
            attempted_at: now,
            reason: format!(
                "the scan of the leads did not finish within the invocation ({} leads read): \
                 nothing trained; raise the function's timeout or lower max_examples",
                Counters::get(&counters.scanned)
            ),
            counts: set.counts().clone(),
            settings,
        }))
    };
    let answer = match outcome {
        Ok(mut model) => {
            let version = state
                .store
                .save_predictive_model(&mut model, |m| summary(m).to_string(), now)
                .await?;
            tracing::info!(
                model_version = version,
                auc = ?model.evaluation.auc,
                won = model.counts.won,
                negatives = model.counts.negatives(),
                "predictive model trained"
            );
            summary(&model)
        }
        Err(refused) => {
            let answer = json!({"trained": false, "not_trained": refused});
            state
                .store
                .put_training_attempt(&answer.to_string(), now)
                .await?;
            tracing::warn!(reason = refused.reason, "predictive model not trained");
            answer
        }
    };
    Ok(answer)
}

/// A trained model as answered and recorded: everything but the weights.
fn summary(m: &PredictiveModel) -> Value {
    json!({
        "trained": true,
        "model_version": m.model_version,
        "trained_at": m.trained_at,
        "algorithm": m.algorithm,
        "evaluation": m.evaluation,
        "counts": m.counts,
        "base_rate": m.base_rate,
        "training_window": m.training_window,
        "fit": m.fit,
        "features": m.weights.len(),
        "scoring_config_version": m.scoring_config_version,
        "settings": m.settings,
    })
}

/// `{"get_model": true}`: the model in force (its evaluation, not its weights) and the last
/// training run's outcome; without a model, `reason` says why.
async fn describe(store: &Store) -> Result<Value, lambda_runtime::Error> {
    let model = store
        .predictive_model_json()
        .await?
        .map(|text| PredictiveModel::from_json(&text));
    let last_attempt: Value = match store.training_attempt_json().await? {
        None => Value::Null,
        Some(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
    };
    Ok(match model {
        Some(Ok(m)) => json!({"model": summary(&m), "last_attempt": last_attempt}),
        Some(Err(e)) => json!({
            "model": null,
            "reason": format!("the stored model is not applied: {e}"),
            "last_attempt": last_attempt,
        }),
        None => {
            let reason = last_attempt["not_trained"]["reason"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    "no model trained yet: training runs weekly, or invoke with {\"train\": true}"
                        .to_string()
                });
            json!({"model": null, "reason": reason, "last_attempt": last_attempt})
        }
    })
}
