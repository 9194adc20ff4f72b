//! CPU per submission for the pure part of ingest: field mapping, normalization (email key,
//! E.164 phone), classification, and building the delivery key. `bench/cold-start.sh` measures
//! the whole release binary per webhook, DynamoDB signing included.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use leadflow::fields::{apply_field, apply_url_params};
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::normalize::{normalize, warm_up, NormalizeConfig};
use std::hint::black_box;

const FORM: &str = "your-email=Ada.Lovelace%40Example.com&tel=%2B1+415+555+0132&name=Ada+Lovelace\
&company=Analytical+Engines&job_title=CTO&consent=yes&utm_source=google&utm_medium=cpc\
&utm_campaign=spring&gclid=EAIaIQ&budget=50k&message=Please+call+me";

fn submission(body: &[u8]) -> Submission {
    let mut sub = Submission::new(
        "form",
        DeliveryKey::body_hash("form", body),
        TouchKind::FormSubmission,
        Utc::now(),
    );
    for (k, v) in form_urlencoded::parse(body) {
        apply_field(&mut sub, &k, &v);
    }
    apply_url_params(&mut sub, "https://acme.io/demo?utm_content=hero");
    sub
}

fn bench(c: &mut Criterion) {
    let cfg = NormalizeConfig::default();
    // The first call loads the phone metadata: what the background warm-up takes off the
    // request path (shared/src/warm.rs). Printed, not benchmarked: it happens once per process.
    let started = std::time::Instant::now();
    warm_up(&cfg);
    eprintln!(
        "first warm_up (phone metadata load): {:?}",
        started.elapsed()
    );
    c.bench_function("form fields -> normalized submission", |b| {
        b.iter(|| normalize(submission(black_box(FORM.as_bytes())), &cfg).unwrap())
    });
    c.bench_function("phone to E.164", |b| {
        b.iter(|| leadflow::normalize::normalize_phone(black_box("(415) 555-0132"), &cfg))
    });
    c.bench_function("international phone to E.164", |b| {
        b.iter(|| leadflow::normalize::normalize_phone(black_box("+33 1 40 21 70 72"), &cfg))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
