//! CPU per lead for the scoring model (what rescore spends per lead besides DynamoDB): a typical
//! lead (full profile, 6 touches) and a heavy one (200 touches, caps and decay on every one).

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use leadflow::model::{Stage, TouchKind};
use leadflow::scoring::{Model, Profile, Touch};

fn touches(n: usize) -> Vec<Touch> {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    (0..n)
        .map(|i| Touch {
            kind: TouchKind::ALL[i % TouchKind::ALL.len()],
            at: now - Duration::hours(i as i64 * 5),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let model = Model::builtin();
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let mut custom = BTreeMap::new();
    custom.insert("budget".to_string(), "50k-100k".to_string());
    custom.insert("timeline".to_string(), "this quarter".to_string());
    let profile = Profile {
        job_title: Some("Head of Revenue Operations"),
        company: Some("Analytical Engines"),
        email_domain: Some("example.com"),
        country: Some("GB"),
        has_phone: true,
        custom: &custom,
    };
    let typical = touches(6);
    let heavy = touches(200);
    c.bench_function("assess: typical lead (6 touches)", |b| {
        b.iter(|| model.assess(black_box(&profile), black_box(&typical), Stage::Lead, now))
    });
    c.bench_function("assess: heavy lead (200 touches)", |b| {
        b.iter(|| model.assess(black_box(&profile), black_box(&heavy), Stage::Lead, now))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
