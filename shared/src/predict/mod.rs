//! The predictive score: P(customer | lead), learned from this account's own won and lost leads.
//! Pure: no I/O, no AWS types. rescore trains it (weekly and on demand) from the leads its
//! parallel scan reads, stores the document ([`PredictiveModel`]) and applies it at every rescore
//! as `predicted_conversion` beside the rules score, never in its place.
//!
//! The method, end to end (every number below is a [`PredictSettings`] field):
//!
//! 1. **Labels** ([`features::label`]). A lead that was won is a positive; a lead marked lost, or
//!    created more than `negative_after_days` (90) ago without a win, is a negative; every other
//!    lead is unlabelled and not learned from. Test leads and erased leads (their fit facts are
//!    gone) are left out.
//! 2. **Features, as the lead was** ([`features::Snapshot`]). Everything is read as it stood at
//!    the *cut-off*: `created_at + window_days` (7), or earlier when the lead was won or lost
//!    before that, or now for a lead younger than the window. Nothing after the cut-off is seen
//!    (no touch after a win, no first contact measured after the fact), so the model learns what
//!    was knowable when a salesperson would have acted on the number. The features: channel,
//!    source and campaign (the `top_n` most frequent values of the training set with at least
//!    `min_count` leads each, the long tail bucketed as `(other)`), seniority (the job-title rule
//!    of the scoring configuration that matches), business vs free email, company given, phone
//!    given, country (top-N as well), engagement per touch kind (`ln(1 + Σ 0.5^(age/half-life))`
//!    over the touches up to the cut-off, ages measured to the window's end so that neither
//!    the outcome's timing nor the hour of the rescore moves them), and time to first sales
//!    contact in buckets (within 1 hour, 1 day, the window; none within the window).
//! 3. **Split by time.** The labelled leads are ordered by creation; the newest
//!    `holdout_fraction` (20%) are held out and the older rest trains. Never a random split: a
//!    random split lets the model learn from leads created after the ones it is judged on.
//! 4. **Fit** ([`logistic`]): L2-regularized logistic regression (`l2`, intercept not
//!    penalized) by Newton's method (IRLS) with step halving. Deterministic: no random start, no
//!    sampling; the same leads give the same weights whatever order the scan returned them in.
//! 5. **Evaluate** ([`evaluate`]) on the held-out newer leads: AUC (rank-based, ties counted
//!    half), Brier score beside the Brier score of always answering the training base rate,
//!    reliability bins and the expected calibration error.
//! 6. **Serve.** The weights stored are refit on every labelled lead (older and newer, the same
//!    settings), so the newest outcomes count; the evaluation describes the same procedure
//!    trained on the older part only. Below `min_won` won leads or `min_lost` negatives nothing
//!    is trained and [`NotTrained`] says why.
//!
//! Scoring a lead ([`Predictor::predict`]) reads the same snapshot (cut-off as above) and
//! answers `predicted_conversion` (0-1) with the top contributing features: the feature's name
//! (`title:title_vp_director`, `channel:paid_social`...) and the log-odds it adds, never a
//! personal value (no email, no job title as typed, no company name).

pub mod evaluate;
pub mod features;
pub mod logistic;
pub mod synthetic;
mod train;

pub use evaluate::{Bin, Evaluation};
pub use features::{EmailKind, FirstContact, Label, LeadFacts, Snapshot, Vocabulary};
pub use train::{
    train, Contribution, Counts, FitReport, NotTrained, Observation, Prediction, PredictiveModel,
    Predictor, TrainingSet, TrainingWindow, MODEL_FORMAT, PREDICTION_TOLERANCE,
};

use serde::{Deserialize, Serialize};

/// How the model is trained and applied. Every field has a default; a stored document may set
/// any subset. Unknown fields are refused, so a typo never trains with a default silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictSettings {
    /// Features are read as they were this many days after the lead's creation (or at its
    /// outcome, when earlier).
    pub window_days: f64,
    /// A lead older than this without a win counts as a negative.
    pub negative_after_days: f64,
    /// Fewer won leads than this: nothing is trained.
    pub min_won: u64,
    /// Fewer negatives (lost, or aged out without a win) than this: nothing is trained.
    pub min_lost: u64,
    /// The newest share of labelled leads held out for the evaluation.
    pub holdout_fraction: f64,
    /// Sources, campaigns and countries with a feature of their own (most frequent first).
    pub top_n: usize,
    /// A value needs at least this many training leads for a feature of its own.
    pub min_count: u64,
    /// L2 penalty on the weights (not the intercept): larger shrinks every weight towards 0.
    pub l2: f64,
    /// Engagement halves every this many days, counted back from the cut-off.
    pub engagement_half_life_days: f64,
    /// The newest labelled leads kept for training (memory bound of the training run).
    pub max_examples: usize,
    /// How many contributing features are stored with a prediction.
    pub top_features: usize,
}

impl Default for PredictSettings {
    fn default() -> Self {
        PredictSettings {
            window_days: 7.0,
            negative_after_days: 90.0,
            min_won: 50,
            min_lost: 50,
            holdout_fraction: 0.2,
            top_n: 20,
            min_count: 20,
            l2: 2.0,
            engagement_half_life_days: 7.0,
            max_examples: 200_000,
            top_features: 5,
        }
    }
}

impl PredictSettings {
    /// Every out-of-range value, each message prefixed with `path` (e.g. `prediction.training`).
    pub fn problems(&self, path: &str) -> Vec<String> {
        let mut errs = Vec::new();
        let mut range = |name: &str, v: f64, lo: f64, hi: f64| {
            if !(v.is_finite() && v >= lo && v <= hi) {
                errs.push(format!(
                    "{path}.{name} must be between {lo} and {hi}, got {v}"
                ));
            }
        };
        range("window_days", self.window_days, 0.0, 90.0);
        range("negative_after_days", self.negative_after_days, 1.0, 3650.0);
        range("min_won", self.min_won as f64, 1.0, 1_000_000.0);
        range("min_lost", self.min_lost as f64, 1.0, 1_000_000.0);
        range("holdout_fraction", self.holdout_fraction, 0.05, 0.5);
        range("top_n", self.top_n as f64, 1.0, 200.0);
        range("min_count", self.min_count as f64, 1.0, 1_000_000.0);
        range("l2", self.l2, 1e-6, 1e6);
        range(
            "engagement_half_life_days",
            self.engagement_half_life_days,
            0.1,
            3650.0,
        );
        range("max_examples", self.max_examples as f64, 100.0, 2_000_000.0);
        range("top_features", self.top_features as f64, 0.0, 20.0);
        if self.negative_after_days < self.window_days {
            errs.push(format!(
                "{path}.negative_after_days ({}) must not be below {path}.window_days ({})",
                self.negative_after_days, self.window_days
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests;
