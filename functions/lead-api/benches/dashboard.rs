//! CPU to build and render the dashboard (what lead-api spends besides DynamoDB): 30 and 400
//! days of rollups with 40 campaigns a day (16,000 rows for 400 days), 50 leads to call and 7
//! review platforms. Run: `bench/dashboard.sh`.

use std::hint::black_box;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use lead_api::dashboard::{build, render, Page, Params, CALL_LIST_DAYS};
use leadflow::edge::InboundRequest;
use leadflow::metrics::{GroupKey, RollupCounts};
use leadflow::model::{Channel, ReviewAggregate, ReviewPlatform, Stage, Temperature};
use leadflow::store::{CallCandidate, CallList};

fn rows(days: &[String]) -> Vec<(GroupKey, RollupCounts)> {
    days.iter()
        .enumerate()
        .flat_map(|(i, day)| {
            (0..40).map(move |g| {
                (
                    GroupKey {
                        day: day.clone(),
                        source: format!("source-{}", g % 8),
                        channel: "paid_search".into(),
                        campaign: format!("campaign-{g}-{}", "c".repeat(60)),
                    },
                    RollupCounts {
                        new_leads: (i % 7 + g % 5) as u64,
                        mqls: (g % 3) as u64,
                        customers: u64::from(g % 11 == 0),
                        spend_micros: [("USD".to_string(), 1_000_000 * (g as i64 + 1))].into(),
                        ..Default::default()
                    },
                )
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
    let calls = CallList {
        leads: (0..50)
            .map(|i| CallCandidate {
                lead_id: format!("0193a0b0-0000-7000-8000-{i:012}"),
                created_at: now - Duration::hours(i),
                channel: Channel::PaidSearch,
                source: "google".into(),
                campaign: "brand".into(),
                stage: Stage::Mql,
                temperature: Some(Temperature::Hot),
                score: Some(70 + (i % 30) as u32),
                predicted_conversion: Some(0.3),
                contact: None,
            })
            .collect(),
        complete: true,
    };
    let reviews: Vec<ReviewAggregate> = ReviewPlatform::ALL
        .iter()
        .map(|p| ReviewAggregate {
            platform: *p,
            count: 100,
            rating_sum: 420,
            distribution: [5, 5, 10, 20, 60],
        })
        .collect();
    for n in [30, 400] {
        let mut req = InboundRequest::default();
        req.query
            .insert("from".into(), (today - Duration::days(n - 1)).to_string());
        req.query.insert("to".into(), today.to_string());
        let params = Params::parse(&req, today).unwrap();
        let rows = rows(&params.days);
        let mut bytes = 0;
        c.bench_function(
            &format!("dashboard: {n} days, {} rollup rows", rows.len()),
            |b| {
                b.iter(|| {
                    let view = build(black_box(&params), &rows, &reviews, &calls);
                    let html = render(&Page {
                        params: &params,
                        view: &view,
                        with_contact: false,
                        now,
                        zone: &leadflow::report_zone::ReportZone::utc(),
                        call_days: CALL_LIST_DAYS,
                    });
                    bytes = html.len();
                    html
                })
            },
        );
        println!("dashboard: {n} days -> {bytes} bytes of HTML");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
