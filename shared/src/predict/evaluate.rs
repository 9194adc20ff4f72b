//! How good the predictions are on leads the model did not learn from: ranking (AUC) and
//! calibration (Brier score, reliability bins, expected calibration error).

use serde::{Deserialize, Serialize};

/// Reliability bins: predictions grouped in tenths (0-0.1, 0.1-0.2, ...).
pub const BINS: usize = 10;

/// Area under the ROC curve: the probability that a random positive is scored above a random
/// negative, ties counted half (the Mann-Whitney U statistic with mid-ranks). `None` when either
/// class is absent. 0.5 is a coin; 1.0 ranks every positive first.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|y| **y).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    // Sum of the positives' ranks (1-based), tied scores sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let mid_rank = (i + 1 + j) as f64 / 2.0;
        let tied_pos = order[i..j].iter().filter(|k| labels[**k]).count();
        rank_sum += mid_rank * tied_pos as f64;
        i = j;
    }
    let (pos, neg) = (pos as f64, neg as f64);
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Mean squared difference between the predicted probability and the outcome (0 or 1): lower is
/// better; always answering 0.5 scores 0.25.
pub fn brier(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let sum: f64 = scores
        .iter()
        .zip(labels)
        .map(|(p, y)| (p - if *y { 1.0 } else { 0.0 }).powi(2))
        .sum();
    Some(sum / scores.len() as f64)
}

/// One reliability bin: leads whose prediction fell in `[from, to)` (the last bin includes 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub from: f64,
    pub to: f64,
    pub leads: u64,
    pub mean_predicted: f64,
    /// Share of them that were won: close to `mean_predicted` when the model is calibrated.
    pub observed_rate: f64,
}

/// The non-empty bins of [`BINS`] equal-width bins.
pub fn reliability(scores: &[f64], labels: &[bool]) -> Vec<Bin> {
    let mut sums = [(0u64, 0.0f64, 0u64); BINS];
    for (p, y) in scores.iter().zip(labels) {
        let b = ((p * BINS as f64) as usize).min(BINS - 1);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += u64::from(*y);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(i, (n, p, won))| Bin {
            from: i as f64 / BINS as f64,
            to: (i + 1) as f64 / BINS as f64,
            leads: *n,
            mean_predicted: round(p / *n as f64, 4),
            observed_rate: round(*won as f64 / *n as f64, 4),
        })
        .collect()
}

/// Expected calibration error: the bins' |mean predicted - observed rate|, weighted by leads.
pub fn calibration_error(bins: &[Bin]) -> Option<f64> {
    let total: u64 = bins.iter().map(|b| b.leads).sum();
    (total > 0).then(|| {
        bins.iter()
            .map(|b| b.leads as f64 * (b.mean_predicted - b.observed_rate).abs())
            .sum::<f64>()
            / total as f64
    })
}

pub(crate) fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// The evaluation stored with a model: how it did on the held-out newer leads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Held-out leads, and how many of them were won.
    pub leads: u64,
    pub won: u64,
    pub auc: Option<f64>,
    pub brier: Option<f64>,
    /// The Brier score of answering the training base rate for every lead: the model is worth
    /// something only below it.
    pub brier_of_base_rate: Option<f64>,
    pub calibration_error: Option<f64>,
    pub reliability: Vec<Bin>,
    /// Why a figure is missing (e.g. no won lead among the held-out ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Evaluation {
    /// Evaluates `scores` against `labels`; `base_rate` is the training set's share of wins.
    pub fn of(scores: &[f64], labels: &[bool], base_rate: f64) -> Evaluation {
        let won = labels.iter().filter(|y| **y).count() as u64;
        let bins = reliability(scores, labels);
        let note = match (won, labels.len() as u64 - won) {
            (0, _) => Some("no won lead among the held-out leads: AUC undefined".to_string()),
            (_, 0) => Some("no negative among the held-out leads: AUC undefined".to_string()),
            _ => None,
        };
        Evaluation {
            leads: labels.len() as u64,
            won,
            auc: auc(scores, labels).map(|v| round(v, 4)),
            brier: brier(scores, labels).map(|v| round(v, 4)),
            brier_of_base_rate: brier(&vec![base_rate; labels.len()], labels).map(|v| round(v, 4)),
            calibration_error: calibration_error(&bins).map(|v| round(v, 4)),
            reliability: bins,
            note,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn's documented example: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    /// is 0.75.
    #[test]
    fn auc_of_the_documented_example() {
        let auc = auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_half_and_needs_both_classes() {
        assert_eq!(
            auc(&[0.3; 6], &[true, false, true, false, false, true]),
            Some(0.5)
        );
        // One tie between a positive and a negative, the rest ranked right: (3 + 0.5) / 4.
        let a = auc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).unwrap();
        assert!((a - 3.5 / 4.0).abs() < 1e-12);
        assert_eq!(auc(&[0.9, 0.1], &[false, false]), None);
        assert_eq!(auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
    }

    /// scikit-learn's documented example: brier_score_loss([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3])
    /// is 0.0375.
    #[test]
    fn brier_of_the_documented_example() {
        let b = brier(&[0.1, 0.9, 0.8, 0.3], &[false, true, true, false]).unwrap();
        assert!((b - 0.0375).abs() < 1e-12);
        assert_eq!(brier(&[], &[]), None);
    }

    #[test]
    fn reliability_bins_and_calibration_error() {
        let scores = [0.05, 0.05, 0.15, 0.95, 1.0, 0.91];
        let labels = [false, true, false, true, true, false];
        let bins = reliability(&scores, &labels);
        assert_eq!(bins.len(), 3);
        assert_eq!((bins[0].from, bins[0].to, bins[0].leads), (0.0, 0.1, 2));
        assert_eq!(bins[0].observed_rate, 0.5);
        // 1.0 falls in the last bin.
        assert_eq!((bins[2].from, bins[2].leads), (0.9, 3));
        assert!((bins[2].mean_predicted - 0.9533).abs() < 1e-9);
        // |0.05-0.5|*2 + |0.15-0|*1 + |0.9533-0.6667|*3, over 6.
        let e = calibration_error(&bins).unwrap();
        let want = (0.45 * 2.0 + 0.15 + (0.9533f64 - 0.6667).abs() * 3.0) / 6.0;
        assert!((e - want).abs() < 1e-9, "{e} vs {want}");
        let ev = Evaluation::of(&scores, &labels, 0.5);
        assert_eq!((ev.leads, ev.won), (6, 3));
        assert_eq!(ev.brier_of_base_rate, Some(0.25));
        assert!(ev.note.is_none());
        let none_won = Evaluation::of(&[0.2, 0.3], &[false, false], 0.5);
        assert_eq!(none_won.auc, None);
        assert!(none_won.note.unwrap().contains("no won lead"));
    }
}
