//! Training (labelled leads in, a versioned model document or the reason there is none out) and
//! scoring with a trained model.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::evaluate::{round, Evaluation};
use super::features::{self, Label, LeadFacts, Snapshot, Unlabelled, Vocabulary};
use super::logistic::{self, sigmoid, Fit, Options, Row};
use super::PredictSettings;
use crate::scoring::Model;

/// The model document's format: bumped when a field changes meaning, so an old document is
/// refused instead of misread.
pub const MODEL_FORMAT: u32 = 1;
const ALGORITHM: &str = "logistic_regression_l2_newton";
/// Weights are stored with six decimals (a millionth of a log-odds is far below anything the
/// data can tell): short decimals read back from JSON as exactly the same numbers.
const WEIGHT_DECIMALS: i32 = 6;

/// One labelled lead, reduced to what training needs (about 300 bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub lead_id: String,
    pub created_at: DateTime<Utc>,
    pub label: Label,
    pub snapshot: Snapshot,
}

/// What the training run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Leads read.
    pub leads: u64,
    pub won: u64,
    pub lost: u64,
    /// Older than `negative_after_days` without a win.
    pub aged_out: u64,
    /// No outcome yet: not learned from.
    pub open: u64,
    pub test: u64,
    pub erased: u64,
    /// Labelled leads beyond `max_examples` (the oldest), not learned from.
    pub beyond_max_examples: u64,
}

impl Counts {
    /// Negatives: lost, or aged out without a win.
    pub fn negatives(&self) -> u64 {
        self.lost + self.aged_out
    }
}

/// Labelled leads gathered lead by lead (the scan feeds it), memory-bounded: at most
/// `2 × max_examples` observations are held; the newest `max_examples` are trained on.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    settings: PredictSettings,
    now: DateTime<Utc>,
    observations: Vec<Observation>,
    counts: Counts,
}

/// Newest first, ties by lead id: the order that decides which leads `max_examples` keeps.
fn newest_first(a: &Observation, b: &Observation) -> std::cmp::Ordering {
    b.created_at
        .cmp(&a.created_at)
        .then_with(|| a.lead_id.cmp(&b.lead_id))
}

impl TrainingSet {
    /// Labels are decided at `now` (aged-out negatives).
    pub fn new(settings: PredictSettings, now: DateTime<Utc>) -> TrainingSet {
        TrainingSet {
            settings,
            now,
            observations: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Counts the lead and keeps it when it is labelled.
    pub fn observe(&mut self, facts: &LeadFacts<'_>, lexicon: &Model) {
        self.counts.leads += 1;
        let label = match features::label(facts, self.now, &self.settings) {
            Ok(l) => l,
            Err(why) => {
                match why {
                    Unlabelled::Test => self.counts.test += 1,
                    Unlabelled::Erased => self.counts.erased += 1,
                    Unlabelled::Open => self.counts.open += 1,
                }
                return;
            }
        };
        match label {
            Label::Won => self.counts.won += 1,
            Label::Lost => self.counts.lost += 1,
            Label::AgedOut => self.counts.aged_out += 1,
        }
        self.observations.push(Observation {
            lead_id: facts.lead_id.to_string(),
            created_at: facts.created_at,
            label,
            snapshot: Snapshot::of(facts, self.now, &self.settings, lexicon),
        });
        if self.observations.len() >= 2 * self.settings.max_examples {
            // Dropping the oldest now never drops one of the final newest `max_examples`.
            self.observations.sort_by(newest_first);
            self.observations.truncate(self.settings.max_examples);
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The observations and counts, for [`train`].
    pub fn into_parts(self) -> (Vec<Observation>, Counts) {
        (self.observations, self.counts)
    }

    /// Trains on what was observed (see [`train`]).
    pub fn train(self, scoring_config_version: u32) -> Result<PredictiveModel, Box<NotTrained>> {
        let (settings, now) = (self.settings.clone(), self.now);
        let (observations, counts) = self.into_parts();
        train(observations, counts, &settings, now, scoring_config_version)
    }
}

/// Why no model was trained, with what the run saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotTrained {
    pub attempted_at: DateTime<Utc>,
    pub reason: String,
    pub counts: Counts,
    pub settings: PredictSettings,
}

/// The oldest and newest creation time learned from, and where the held-out part starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Leads created at or after this were held out for the evaluation.
    pub holdout_from: DateTime<Utc>,
    /// The older part the evaluated fit learned from.
    pub train_leads: u64,
    pub train_won: u64,
}

/// How the fit went (of the weights served).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    pub features: usize,
    pub iterations: u32,
    pub converged: bool,
    pub last_change: f64,
}

impl FitReport {
    fn of(fit: &Fit) -> FitReport {
        FitReport {
            features: fit.weights.len(),
            iterations: fit.iterations,
            converged: fit.converged,
            // Three significant digits, for the same exact round trip.
            last_change: format!("{:.2e}", fit.last_change)
                .parse()
                .unwrap_or(fit.last_change),
        }
    }
}

/// The trained model as stored: a versioned JSON document with everything needed to score a
/// lead and to judge whether to trust it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictiveModel {
    /// [`MODEL_FORMAT`].
    pub format: u32,
    /// Assigned by the store when saved (1, 2, ...); 0 before.
    pub model_version: u64,
    pub algorithm: String,
    pub trained_at: DateTime<Utc>,
    pub settings: PredictSettings,
    /// The scoring configuration whose job-title rules and free-mail list gave the seniority
    /// and email features.
    pub scoring_config_version: u32,
    pub training_window: TrainingWindow,
    pub counts: Counts,
    /// Share of wins among the labelled leads learned from.
    pub base_rate: f64,
    /// On the held-out newer leads, of the fit on the older ones.
    pub evaluation: Evaluation,
    pub fit: FitReport,
    pub intercept: f64,
    pub vocabulary: Vocabulary,
    /// Feature name -> weight (log-odds per unit).
    pub weights: BTreeMap<String, f64>,
}

impl PredictiveModel {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored document; refuses another format.
    pub fn from_json(text: &str) -> Result<PredictiveModel, String> {
        let m: PredictiveModel =
            serde_json::from_str(text).map_err(|e| format!("model document: {e}"))?;
        if m.format != MODEL_FORMAT {
            return Err(format!(
                "model document format {} (this code reads {MODEL_FORMAT}): train again",
                m.format
            ));
        }
        if !m.intercept.is_finite() || m.weights.values().any(|w| !w.is_finite()) {
            return Err("model document has a non-finite weight".into());
        }
        Ok(m)
    }
}

/// Weights by feature name: scoring a snapshot's encoding.
struct Weights {
    intercept: f64,
    by_name: HashMap<String, f64>,
}

impl Weights {
    /// The log-odds and each known feature's part of it.
    fn margin(&self, encoded: &[(String, f64)]) -> f64 {
        self.intercept
            + encoded
                .iter()
                .filter_map(|(n, x)| self.by_name.get(n).map(|w| w * x))
                .sum::<f64>()
    }
}

/// A fit on some observations, with the vocabulary and feature names it used.
struct Fitted {
    vocabulary: Vocabulary,
    names: Vec<String>,
    fit: Fit,
}

impl Fitted {
    fn on(observations: &[Observation], settings: &PredictSettings) -> Fitted {
        let vocabulary = Vocabulary::build(
            observations.iter().map(|o| &o.snapshot),
            settings.top_n,
            settings.min_count,
        );
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut rows: Vec<Row> = Vec::with_capacity(observations.len());
        for o in observations {
            let row = o
                .snapshot
                .encode(&vocabulary)
                .into_iter()
                .map(|(name, x)| {
                    let next = names.len();
                    let i = *index.entry(name).or_insert_with_key(|n| {
                        names.push(n.clone());
                        next
                    });
                    (i, x)
                })
                .collect();
            rows.push(row);
        }
        let labels: Vec<bool> = observations.iter().map(|o| o.label.is_positive()).collect();
        let fit = logistic::fit(&rows, &labels, names.len(), &Options::with_l2(settings.l2));
        Fitted {
            vocabulary,
            names,
            fit,
        }
    }

    fn weights(&self) -> Weights {
        Weights {
            intercept: self.fit.intercept,
            by_name: self
                .names
                .iter()
                .cloned()
                .zip(self.fit.weights.iter().copied())
                .collect(),
        }
    }
}

fn base_rate(observations: &[Observation]) -> f64 {
    let won = observations
        .iter()
        .filter(|o| o.label.is_positive())
        .count();
    won as f64 / observations.len().max(1) as f64
}

/// Trains a model from labelled observations (any order): checks the minimum of outcomes,
/// splits by creation time, fits on the older part and evaluates on the newer one, then refits
/// on all of them for the weights served (see the module documentation).
pub fn train(
    mut observations: Vec<Observation>,
    mut counts: Counts,
    settings: &PredictSettings,
    now: DateTime<Utc>,
    scoring_config_version: u32,
) -> Result<PredictiveModel, Box<NotTrained>> {
    // Boxed: the refusal carries the counts and settings, and is the rare path.
    let refuse = |reason: String, counts: &Counts| {
        Box::new(NotTrained {
            attempted_at: now,
            reason,
            counts: counts.clone(),
            settings: settings.clone(),
        })
    };
    let problems = settings.problems("settings");
    if !problems.is_empty() {
        return Err(refuse(problems.join("; "), &counts));
    }
    observations.sort_by(newest_first);
    let labelled = counts.won + counts.negatives();
    observations.truncate(settings.max_examples);
    counts.beyond_max_examples = labelled.saturating_sub(observations.len() as u64);
    // Oldest first from here on: the split and the row order of the fit.
    observations.reverse();

    let won = observations
        .iter()
        .filter(|o| o.label.is_positive())
        .count() as u64;
    let negatives = observations.len() as u64 - won;
    if won < settings.min_won || negatives < settings.min_lost {
        return Err(refuse(
            format!(
                "too few outcomes to learn from: {won} won and {negatives} negative leads \
                 (lost, or no win within {} days); at least {} won and {} negative are needed",
                settings.negative_after_days, settings.min_won, settings.min_lost
            ),
            &counts,
        ));
    }
    let n = observations.len();
    let held = ((n as f64 * settings.holdout_fraction).round() as usize).clamp(1, n - 1);
    let (older, newer) = observations.split_at(n - held);
    let older_won = older.iter().filter(|o| o.label.is_positive()).count() as u64;
    if older_won == 0 || older_won == older.len() as u64 {
        return Err(refuse(
            format!(
                "the older {} labelled leads (the training part of the split by time) are all {}: \
                 nothing to learn the difference from",
                older.len(),
                if older_won == 0 { "negative" } else { "won" }
            ),
            &counts,
        ));
    }

    let evaluated = Fitted::on(older, settings);
    let w = evaluated.weights();
    let scores: Vec<f64> = newer
        .iter()
        .map(|o| sigmoid(w.margin(&o.snapshot.encode(&evaluated.vocabulary))))
        .collect();
    let labels: Vec<bool> = newer.iter().map(|o| o.label.is_positive()).collect();
    let evaluation = Evaluation::of(&scores, &labels, base_rate(older));

    let served = Fitted::on(&observations, settings);
    Ok(PredictiveModel {
        format: MODEL_FORMAT,
        model_version: 0,
        algorithm: ALGORITHM.to_string(),
        trained_at: now,
        settings: settings.clone(),
        scoring_config_version,
        training_window: TrainingWindow {
            from: observations[0].created_at,
            to: observations[n - 1].created_at,
            holdout_from: newer[0].created_at,
            train_leads: older.len() as u64,
            train_won: older_won,
        },
        counts,
        base_rate: round(base_rate(&observations), 4),
        evaluation,
        fit: FitReport::of(&served.fit),
        intercept: round(served.fit.intercept, WEIGHT_DECIMALS),
        vocabulary: served.vocabulary.clone(),
        weights: served
            .names
            .iter()
            .cloned()
            .zip(
                served
                    .fit
                    .weights
                    .iter()
                    .map(|w| round(*w, WEIGHT_DECIMALS)),
            )
            .collect(),
    })
}

/// One feature's part of a prediction, in log-odds (positive raises the odds of a win).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub contribution: f64,
}

/// A lead's predicted conversion and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// P(won | the lead as it was at its cut-off), 0-1, four decimals.
    pub predicted_conversion: f64,
    /// Largest absolute contribution first, at most `top_features`.
    pub top_features: Vec<Contribution>,
    pub model_version: u64,
}

/// Below this change of `predicted_conversion` (with the same model) a stored prediction is
/// kept: a young lead's engagement decays a little every hour, and rewriting every such lead
/// at every rescore for a change nobody can act on would cost a write each.
pub const PREDICTION_TOLERANCE: f64 = 0.002;

impl Prediction {
    /// Whether this prediction should replace `stored`: another model, or a change of at least
    /// [`PREDICTION_TOLERANCE`].
    pub fn replaces(&self, stored: Option<&Prediction>) -> bool {
        match stored {
            None => true,
            Some(old) => {
                old.model_version != self.model_version
                    || (old.predicted_conversion - self.predicted_conversion).abs()
                        >= PREDICTION_TOLERANCE
            }
        }
    }
}

/// A stored model ready to score many leads.
pub struct Predictor {
    model: PredictiveModel,
    weights: Weights,
}

impl Predictor {
    pub fn new(model: PredictiveModel) -> Predictor {
        let weights = Weights {
            intercept: model.intercept,
            by_name: model.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        Predictor { model, weights }
    }

    pub fn model(&self) -> &PredictiveModel {
        &self.model
    }

    /// Scores a lead at `now`: its snapshot at the cut-off, through the weights.
    pub fn predict(
        &self,
        facts: &LeadFacts<'_>,
        now: DateTime<Utc>,
        lexicon: &Model,
    ) -> Prediction {
        self.predict_snapshot(&Snapshot::of(facts, now, &self.model.settings, lexicon))
    }

    pub fn predict_snapshot(&self, snapshot: &Snapshot) -> Prediction {
        let encoded = snapshot.encode(&self.model.vocabulary);
        let z = self.weights.margin(&encoded);
        let mut parts: Vec<Contribution> = encoded
            .iter()
            .filter_map(|(name, x)| {
                let c = round(self.weights.by_name.get(name)? * x, 3);
                (c != 0.0).then(|| Contribution {
                    feature: name.clone(),
                    contribution: c,
                })
            })
            .collect();
        parts.sort_by(|a, b| {
            b.contribution
                .abs()
                .total_cmp(&a.contribution.abs())
                .then_with(|| a.feature.cmp(&b.feature))
        });
        parts.truncate(self.model.settings.top_features);
        Prediction {
            predicted_conversion: round(sigmoid(z), 4),
            top_features: parts,
            model_version: self.model.model_version,
        }
    }
}
