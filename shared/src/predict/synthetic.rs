//! A seeded synthetic account whose conversions depend on known features: the tests and the
//! benches train on it and check what the model learned. Not used in production code paths.
//!
//! The true log-odds of a win: -2.2, plus seniority (executive +1.6, VP/director +2.0, manager
//! +0.5, junior -1.8, no title -0.4), channel/source (LinkedIn paid social +1.4, Facebook paid
//! social +0.8, Google paid search +0.4, display -1.6, newsletter +0.2, the long tail of organic
//! sources 0), free mail -1.4, company given +0.3, a core-market country +0.3, a phone +0.2,
//! +0.4 per extra form within the first week, +1.0 for a meeting booked within it, +0.5 for a
//! first sales contact within the hour. Campaigns carry no signal (a long tail the model must
//! not overfit). Won leads also get touches after their win (an onboarding meeting, visits), and
//! every lead visits after its first week: features that leaked them would look predictive.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::features::LeadFacts;
use super::logistic::sigmoid;
use crate::model::{Channel, TouchKind};
use crate::scoring::{Profile, Touch};

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed, seeded generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Uniform in [lo, hi) days, as a duration.
    pub fn days(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::milliseconds(((lo + (hi - lo) * self.unit()) * 86_400_000.0) as i64)
    }

    /// One of `options` by weight (`(weight, value)`).
    pub fn weighted<T: Copy>(&mut self, options: &[(f64, T)]) -> T {
        let total: f64 = options.iter().map(|o| o.0).sum();
        let mut x = self.unit() * total;
        for (w, v) in options {
            if x < *w {
                return *v;
            }
            x -= w;
        }
        options[options.len() - 1].1
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// One synthetic lead, with the probability its outcome was drawn from.
#[derive(Debug, Clone)]
pub struct SyntheticLead {
    pub lead_id: String,
    pub created_at: DateTime<Utc>,
    pub channel: Channel,
    pub source: String,
    pub campaign: String,
    pub job_title: Option<&'static str>,
    pub email_domain: &'static str,
    pub company: Option<&'static str>,
    pub country: Option<&'static str>,
    pub has_phone: bool,
    pub touches: Vec<Touch>,
    pub first_contacted_at: Option<DateTime<Utc>>,
    pub won_at: Option<DateTime<Utc>>,
    pub lost_at: Option<DateTime<Utc>>,
    /// The true P(win) the outcome was drawn with.
    pub probability: f64,
}

static NO_ANSWERS: BTreeMap<String, String> = BTreeMap::new();

impl SyntheticLead {
    pub fn facts(&self) -> LeadFacts<'_> {
        LeadFacts {
            lead_id: &self.lead_id,
            created_at: self.created_at,
            channel: self.channel,
            source: &self.source,
            campaign: &self.campaign,
            profile: Profile {
                job_title: self.job_title,
                company: self.company,
                email_domain: Some(self.email_domain),
                country: self.country,
                has_phone: self.has_phone,
                custom: &NO_ANSWERS,
            },
            touches: &self.touches,
            first_contacted_at: self.first_contacted_at,
            won_at: self.won_at,
            lost_at: self.lost_at,
            is_test: false,
            erased: false,
        }
    }
}

/// `n` leads created between 400 and 10 days before `now` (outcomes later than `now` not yet
/// known), drawn from `seed`.
pub fn account(seed: u64, n: usize, now: DateTime<Utc>) -> Vec<SyntheticLead> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| lead(&mut rng, seed, i, now)).collect()
}

fn lead(rng: &mut Rng, seed: u64, i: usize, now: DateTime<Utc>) -> SyntheticLead {
    let created_at = now - rng.days(10.0, 400.0);
    let mut logit = -2.2;
    let (source, channel, effect): (&str, Channel, f64) = rng.weighted(&[
        (0.20, ("linkedin", Channel::PaidSocial, 1.4)),
        (0.15, ("facebook", Channel::PaidSocial, 0.8)),
        (0.20, ("google", Channel::PaidSearch, 0.4)),
        (0.20, ("display", Channel::Other, -1.6)),
        (0.10, ("newsletter", Channel::Email, 0.2)),
        (0.15, ("", Channel::OrganicSearch, 0.0)),
    ]);
    logit += effect;
    let source = if source.is_empty() {
        format!("site-{}", rng.below(60))
    } else {
        source.to_string()
    };
    let campaign = if rng.chance(0.2) {
        format!("promo-{}", rng.below(200))
    } else {
        let season = rng.weighted(&[(1.0, "spring"), (1.0, "summer"), (1.0, "brand")]);
        format!("{source}-{season}")
    };
    let (job_title, effect) = rng.weighted(&[
        (0.08, (Some("CEO"), 1.6)),
        (0.12, (Some("VP Marketing"), 2.0)),
        (0.05, (Some("Head of Sales"), 2.0)),
        (0.20, (Some("Marketing Manager"), 0.5)),
        (0.20, (Some("Analyst"), 0.0)),
        (0.10, (Some("Student"), -1.8)),
        (0.25, (None, -0.4)),
    ]);
    logit += effect;
    let free = rng.chance(0.4);
    let email_domain = if free {
        logit -= 1.4;
        rng.weighted(&[(1.0, "gmail.com"), (1.0, "yahoo.com"), (1.0, "hotmail.com")])
    } else {
        rng.weighted(&[(1.0, "acme.com"), (1.0, "initech.io"), (1.0, "globex.de")])
    };
    let company = rng.chance(0.7).then_some("Some Company");
    if company.is_some() {
        logit += 0.3;
    }
    let country = rng.weighted(&[
        (0.30, Some("US")),
        (0.15, Some("DE")),
        (0.15, Some("GB")),
        (0.10, Some("IN")),
        (0.10, Some("BR")),
        (0.05, Some("Deutschland")),
        (0.15, None),
    ]);
    if matches!(country, Some("US" | "DE" | "GB")) {
        logit += 0.3;
    }
    let has_phone = rng.chance(0.5);
    if has_phone {
        logit += 0.2;
    }
    let first_kind = if channel == Channel::PaidSocial {
        TouchKind::AdLead
    } else {
        TouchKind::FormSubmission
    };
    let mut touches = vec![Touch {
        kind: first_kind,
        at: created_at,
    }];
    for _ in 0..rng.below(4) {
        touches.push(Touch {
            kind: TouchKind::FormSubmission,
            at: created_at + rng.days(0.0, 6.5),
        });
        logit += 0.4;
    }
    for _ in 0..rng.below(5) {
        touches.push(Touch {
            kind: TouchKind::Visit,
            at: created_at + rng.days(0.0, 6.5),
        });
    }
    if rng.chance(0.25) {
        touches.push(Touch {
            kind: TouchKind::MeetingBooked,
            at: created_at + rng.days(0.5, 6.5),
        });
        logit += 1.0;
    }
    let first_contacted_at = if rng.chance(0.7) {
        let after = rng.weighted(&[(0.3, (0.0, 0.04)), (0.4, (0.05, 1.0)), (0.3, (1.0, 6.5))]);
        if after.1 <= 0.04 {
            logit += 0.5;
        }
        Some(created_at + rng.days(after.0, after.1))
    } else {
        None
    };
    let probability = sigmoid(logit);
    let known = |t: DateTime<Utc>| (t <= now).then_some(t);
    let (won_at, lost_at) = if rng.chance(probability) {
        (known(created_at + rng.days(2.0, 60.0)), None)
    } else if rng.chance(0.6) {
        (None, known(created_at + rng.days(3.0, 60.0)))
    } else {
        (None, None)
    };
    // Leakage traps: what happens after the first week or after the win.
    if let Some(won) = won_at {
        touches.push(Touch {
            kind: TouchKind::MeetingBooked,
            at: won + Duration::days(1),
        });
        touches.push(Touch {
            kind: TouchKind::Review,
            at: won + Duration::days(20),
        });
    }
    for _ in 0..rng.below(6) {
        touches.push(Touch {
            kind: TouchKind::Visit,
            at: created_at + rng.days(8.0, 120.0),
        });
    }
    SyntheticLead {
        lead_id: format!("syn-{seed}-{i:06}"),
        created_at,
        channel,
        source,
        campaign,
        job_title,
        email_domain,
        company,
        country,
        has_phone,
        touches,
        first_contacted_at,
        won_at,
        lost_at,
        probability,
    }
}
