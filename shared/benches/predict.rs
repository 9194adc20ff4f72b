//! CPU of the predictive model: a whole training run per 10,000 leads (label, snapshot, split
//! by time, fit and evaluate on the older part, refit on all: what `{"train": true}` spends
//! besides reading the leads), and scoring one lead (what every rescore adds per lead).

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use leadflow::predict::synthetic::account;
use leadflow::predict::{PredictSettings, Predictor, TrainingSet};
use leadflow::scoring::Model;

fn bench(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let lexicon = Model::builtin();
    let leads = account(1, 10_000, now);
    let train = || {
        let mut set = TrainingSet::new(PredictSettings::default(), now);
        for l in &leads {
            set.observe(&l.facts(), lexicon);
        }
        set.train(1).expect("enough outcomes")
    };
    let model = train();
    eprintln!(
        "trained on {} labelled leads: {} features, {} Newton iterations, held-out AUC {:?}",
        model.counts.won + model.counts.negatives(),
        model.fit.features,
        model.fit.iterations,
        model.evaluation.auc
    );
    let mut g = c.benchmark_group("predict");
    g.sample_size(10);
    g.bench_function("train: 10k leads", |b| b.iter(|| black_box(train())));
    g.finish();

    let predictor = Predictor::new(model);
    let lead = &leads[0];
    c.bench_function("predict: one lead", |b| {
        b.iter(|| predictor.predict(black_box(&lead.facts()), now, lexicon))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
