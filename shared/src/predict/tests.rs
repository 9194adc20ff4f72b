//! The predictive model end to end on the seeded synthetic account (pure, fast).

use chrono::{DateTime, TimeZone, Utc};

use super::evaluate::auc;
use super::features::label;
use super::synthetic::{account, Rng, SyntheticLead};
use super::*;
use crate::model::{Channel, TouchKind};
use crate::scoring::Model;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn observe(leads: &[SyntheticLead], settings: &PredictSettings) -> TrainingSet {
    let mut set = TrainingSet::new(settings.clone(), now());
    for l in leads {
        set.observe(&l.facts(), Model::builtin());
    }
    set
}

/// Predictions and outcomes of the labelled leads of a sample the model never saw.
fn predict_sample(p: &Predictor, leads: &[SyntheticLead]) -> (Vec<f64>, Vec<bool>) {
    let settings = &p.model().settings;
    leads
        .iter()
        .filter_map(|l| {
            let y = label(&l.facts(), now(), settings).ok()?.is_positive();
            Some((
                p.predict(&l.facts(), now(), Model::builtin())
                    .predicted_conversion,
                y,
            ))
        })
        .unzip()
}

#[test]
fn learns_what_converts_and_ranks_a_fresh_sample() {
    let settings = PredictSettings::default();
    let model = observe(&account(7, 4000, now()), &settings)
        .train(1)
        .expect("enough outcomes");
    assert!(model.fit.converged, "{:?}", model.fit);
    assert!(model.counts.won >= 50 && model.counts.negatives() >= 50);
    // The evaluation on the held-out newer leads is reported and meaningful.
    let held_out_auc = model.evaluation.auc.unwrap();
    assert!(held_out_auc >= 0.75, "held-out AUC {held_out_auc}");
    assert!(model.evaluation.brier.unwrap() < model.evaluation.brier_of_base_rate.unwrap());
    assert!(model.training_window.holdout_from > model.training_window.from);

    // The weights point where the synthetic account's conversions do.
    let w = |name: &str| {
        *model
            .weights
            .get(name)
            .unwrap_or_else(|| panic!("no weight {name}"))
    };
    assert!(w("title:title_vp_director") > w("title:title_junior") + 2.0);
    assert!(
        w("channel:paid_social") + w("source:linkedin")
            > w("channel:other") + w("source:display") + 1.5
    );
    assert!(w("email:business") > w("email:free") + 0.8);
    assert!(w("touches:meeting_booked") > 0.3);
    // The long tail of organic sources is bucketed, not learned one by one.
    assert!(model.vocabulary.source.len() <= settings.top_n);
    assert!(model.weights.contains_key("source:(other)"));
    assert!(!model
        .weights
        .keys()
        .any(|k| k.starts_with("campaign:promo-")));

    let p = Predictor::new(model);
    // The issue's example: VP titles from paid social convert far more than free-mail leads
    // from display.
    let vp = Snapshot {
        channel: Channel::PaidSocial,
        source: "linkedin".into(),
        campaign: "linkedin-spring".into(),
        country: Some("US".into()),
        title: Some("title_vp_director".into()),
        email: EmailKind::Business,
        company: true,
        phone: false,
        touches: [0.0; TouchKind::ALL.len()],
        first_contact: FirstContact::None,
    };
    let display = Snapshot {
        channel: Channel::Other,
        source: "display".into(),
        campaign: "display-brand".into(),
        title: None,
        email: EmailKind::Free,
        ..vp.clone()
    };
    let (hi, lo) = (
        p.predict_snapshot(&vp).predicted_conversion,
        p.predict_snapshot(&display).predicted_conversion,
    );
    assert!(hi > 0.5 && lo < 0.1 && hi > 5.0 * lo, "{hi} vs {lo}");

    let fresh = account(8, 2000, now());
    let (scores, labels) = predict_sample(&p, &fresh);
    let fresh_auc = auc(&scores, &labels).unwrap();
    // The ceiling: the true probabilities' own AUC on the same outcomes.
    let truth: Vec<f64> = fresh
        .iter()
        .filter(|l| label(&l.facts(), now(), &settings).is_ok())
        .map(|l| l.probability)
        .collect();
    let ceiling = auc(&truth, &labels).unwrap();
    assert!(
        fresh_auc >= 0.8,
        "fresh-sample AUC {fresh_auc:.3} (true-probability AUC {ceiling:.3})"
    );
    assert!(fresh_auc <= ceiling + 0.02);
}

/// Labels shuffled: nothing to learn. Evaluated on a fresh sample whose labels are shuffled too
/// (outcomes independent of the features), the ranking is a coin: AUC 0.5 ± 0.05.
///
/// "No confident scores", defined: every prediction within ±0.20 of the training base rate and
/// at least 90% of them within ±0.10. For contrast, the model trained on the true labels puts
/// more than half of the same fresh sample beyond ±0.20.
#[test]
fn shuffled_labels_give_a_coin_and_no_confident_scores() {
    let settings = PredictSettings::default();
    let (mut observations, counts) = observe(&account(7, 4000, now()), &settings).into_parts();
    let real = train(observations.clone(), counts.clone(), &settings, now(), 1).unwrap();
    let mut labels: Vec<Label> = observations.iter().map(|o| o.label).collect();
    Rng::new(20261120).shuffle(&mut labels);
    for (o, l) in observations.iter_mut().zip(labels) {
        o.label = l;
    }
    let model = train(observations, counts, &settings, now(), 1).unwrap();
    // Its own evaluation (held-out newer leads, shuffled labels) says so too.
    let held_out = model.evaluation.auc.unwrap();
    assert!((held_out - 0.5).abs() <= 0.08, "held-out AUC {held_out}");
    let base_rate = model.base_rate;
    assert_eq!(base_rate, real.base_rate, "shuffling keeps the base rate");
    let p = Predictor::new(model);
    let fresh = account(8, 2000, now());
    let (scores, mut fresh_labels) = predict_sample(&p, &fresh);
    Rng::new(8).shuffle(&mut fresh_labels);
    let a = auc(&scores, &fresh_labels).unwrap();
    assert!((a - 0.5).abs() <= 0.05, "AUC {a}");

    let share_within = |scores: &[f64], band: f64| {
        scores
            .iter()
            .filter(|s| (*s - base_rate).abs() <= band)
            .count() as f64
            / scores.len() as f64
    };
    let worst = scores
        .iter()
        .map(|s| (s - base_rate).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 0.20,
        "a prediction {worst:.3} away from the base rate {base_rate}"
    );
    assert!(share_within(&scores, 0.10) >= 0.90);
    let (real_scores, _) = predict_sample(&Predictor::new(real), &fresh);
    assert!(
        share_within(&real_scores, 0.20) < 0.5,
        "the true model is confident where it should be"
    );
}

#[test]
fn below_the_minimum_nothing_is_trained_and_the_answer_says_why() {
    let settings = PredictSettings::default();
    let leads = account(3, 100, now());
    let set = observe(&leads, &settings);
    let counts = set.counts().clone();
    assert!(
        counts.won < 50,
        "the sample is meant to be small: {counts:?}"
    );
    let refused = set.train(1).unwrap_err();
    assert!(
        refused.reason.contains(&format!(
            "too few outcomes to learn from: {} won",
            counts.won
        )),
        "{}",
        refused.reason
    );
    assert!(refused.reason.contains("at least 50 won and 50 negative"));
    assert_eq!(refused.counts, counts);
    assert_eq!(
        counts.leads,
        counts.won + counts.lost + counts.aged_out + counts.open
    );
    // The same leads with a lower minimum train.
    let lenient = PredictSettings {
        min_won: 5,
        min_lost: 5,
        ..settings
    };
    assert!(observe(&leads, &lenient).train(1).is_ok());
}

#[test]
fn training_is_deterministic_whatever_the_scan_order() {
    let settings = PredictSettings::default();
    let mut leads = account(11, 1500, now());
    let a = observe(&leads, &settings).train(1).unwrap();
    Rng::new(5).shuffle(&mut leads);
    let b = observe(&leads, &settings).train(1).unwrap();
    assert_eq!(a.to_json(), b.to_json());
}

#[test]
fn memory_is_bounded_and_the_newest_leads_are_kept() {
    let settings = PredictSettings {
        max_examples: 300,
        min_won: 10,
        min_lost: 10,
        ..PredictSettings::default()
    };
    let leads = account(13, 2000, now());
    let mut set = TrainingSet::new(settings.clone(), now());
    let mut most = 0;
    for l in &leads {
        set.observe(&l.facts(), Model::builtin());
        most = most.max(set.clone().into_parts().0.len());
    }
    assert!(most < 2 * settings.max_examples, "held {most}");
    let labelled = set.counts().won + set.counts().negatives();
    let model = set.train(1).unwrap();
    assert_eq!(model.counts.beyond_max_examples, labelled - 300);
    // The oldest learned-from lead is newer than every labelled lead left out.
    let mut created: Vec<DateTime<Utc>> = leads
        .iter()
        .filter(|l| label(&l.facts(), now(), &settings).is_ok())
        .map(|l| l.created_at)
        .collect();
    created.sort();
    assert_eq!(
        model.training_window.from,
        created[created.len() - 300],
        "the newest 300 are kept"
    );
}

#[test]
fn model_document_round_trips_and_other_formats_are_refused() {
    let settings = PredictSettings {
        min_won: 10,
        min_lost: 10,
        ..PredictSettings::default()
    };
    let model = observe(&account(17, 600, now()), &settings)
        .train(3)
        .unwrap();
    let json = model.to_json();
    assert_eq!(PredictiveModel::from_json(&json).unwrap(), model);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for field in [
        "format",
        "model_version",
        "trained_at",
        "settings",
        "training_window",
        "counts",
        "evaluation",
        "vocabulary",
        "weights",
    ] {
        assert!(v.get(field).is_some(), "no {field}");
    }
    assert_eq!(v["scoring_config_version"], 3);
    let mut old = v.clone();
    old["format"] = 0.into();
    let e = PredictiveModel::from_json(&old.to_string()).unwrap_err();
    assert!(e.contains("train again"), "{e}");
    assert!(PredictiveModel::from_json("{}").is_err());
}

#[test]
fn a_prediction_names_its_top_features_never_personal_values() {
    let settings = PredictSettings::default();
    let model = observe(&account(7, 4000, now()), &settings)
        .train(1)
        .unwrap();
    let p = Predictor::new(model);
    let leads = account(21, 50, now());
    let vp = leads
        .iter()
        .find(|l| l.job_title == Some("VP Marketing") && l.source == "linkedin")
        .or_else(|| leads.iter().find(|l| l.job_title == Some("VP Marketing")))
        .expect("a VP in 50 leads");
    let pred = p.predict(&vp.facts(), now(), Model::builtin());
    assert!((0.0..=1.0).contains(&pred.predicted_conversion));
    assert_eq!(pred.top_features.len(), settings.top_features);
    assert!(pred
        .top_features
        .windows(2)
        .all(|w| w[0].contribution.abs() >= w[1].contribution.abs()));
    assert!(pred
        .top_features
        .iter()
        .any(|c| c.feature == "title:title_vp_director" && c.contribution > 0.0));
    for c in &pred.top_features {
        let (group, _) = c.feature.split_once(':').unwrap();
        assert!(
            [
                "channel",
                "source",
                "campaign",
                "country",
                "title",
                "email",
                "company",
                "phone",
                "first_contact",
                "touches"
            ]
            .contains(&group),
            "{c:?}"
        );
        for personal in ["VP Marketing", "acme", "initech", "globex", "Some Company"] {
            assert!(!c.feature.contains(personal), "{c:?}");
        }
    }
    // The contributions and the intercept give the prediction back (to rounding) when every
    // feature is listed.
    let all = Predictor::new(PredictiveModel {
        settings: PredictSettings {
            top_features: 20,
            ..settings
        },
        ..p.model().clone()
    });
    let full = all.predict(&vp.facts(), now(), Model::builtin());
    let z = all.model().intercept
        + full
            .top_features
            .iter()
            .map(|c| c.contribution)
            .sum::<f64>();
    assert!((logistic::sigmoid(z) - full.predicted_conversion).abs() < 0.01);
}

#[test]
fn settings_are_validated_with_the_field_named() {
    assert!(PredictSettings::default().problems("p").is_empty());
    let bad = PredictSettings {
        window_days: -1.0,
        holdout_fraction: 0.9,
        l2: 0.0,
        negative_after_days: 3.0,
        ..PredictSettings::default()
    };
    let problems = bad.problems("prediction.training").join("; ");
    for needle in [
        "prediction.training.window_days must be between 0 and 90, got -1",
        "prediction.training.holdout_fraction must be between 0.05 and 0.5, got 0.9",
        "prediction.training.l2 must be between",
    ] {
        assert!(problems.contains(needle), "{needle} not in {problems}");
    }
    let parsed: PredictSettings = serde_json::from_str(r#"{"min_won": 20}"#).unwrap();
    assert_eq!(parsed.min_won, 20);
    assert_eq!(parsed.window_days, 7.0);
    assert!(serde_json::from_str::<PredictSettings>(r#"{"min_wins": 20}"#).is_err());
}

#[test]
fn a_prediction_replaces_the_stored_one_only_when_it_matters() {
    let p = |v: f64, model_version: u64| Prediction {
        predicted_conversion: v,
        top_features: Vec::new(),
        model_version,
    };
    assert!(p(0.3, 1).replaces(None));
    assert!(!p(0.3001, 1).replaces(Some(&p(0.3, 1))));
    assert!(p(0.303, 1).replaces(Some(&p(0.3, 1))));
    assert!(p(0.3, 2).replaces(Some(&p(0.3, 1))));
}
