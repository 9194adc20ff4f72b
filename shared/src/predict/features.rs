//! What the predictive model reads of a lead: its label (won, lost, aged out, or none) and a
//! snapshot of its features as they were at the cut-off (see the module above), then the
//! snapshot encoded as named feature values against a vocabulary.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::PredictSettings;
use crate::limits::{self, OTHER};
use crate::model::{Channel, TouchKind};
use crate::scoring::{Model, Profile, Touch};

/// The value a categorical feature takes when the lead has none (no country, no title).
pub const NONE: &str = "(none)";
/// Countries are ISO alpha-2 when recognised, else as given: bounded like a grouping label, then
/// shorter still (a country name, not a sentence).
const MAX_COUNTRY_BYTES: usize = 32;

/// Everything the model may read of one lead (the store builds it from the lead's partition).
#[derive(Debug, Clone, Copy)]
pub struct LeadFacts<'a> {
    /// Ties between leads created at the same instant are broken by it (deterministic order).
    pub lead_id: &'a str,
    pub created_at: DateTime<Utc>,
    pub channel: Channel,
    pub source: &'a str,
    pub campaign: &'a str,
    pub profile: Profile<'a>,
    /// Touchpoints and referrals given, any order.
    pub touches: &'a [Touch],
    /// First outreach by sales.
    pub first_contacted_at: Option<DateTime<Utc>>,
    /// When the lead became a customer.
    pub won_at: Option<DateTime<Utc>>,
    pub lost_at: Option<DateTime<Utc>>,
    pub is_test: bool,
    pub erased: bool,
}

/// The outcome a labelled lead teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Became a customer: a positive.
    Won,
    /// Marked lost by sales: a negative.
    Lost,
    /// Older than `negative_after_days` without a win: a negative.
    AgedOut,
}

impl Label {
    pub fn is_positive(self) -> bool {
        self == Label::Won
    }
}

/// Why a lead teaches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlabelled {
    /// A platform test delivery.
    Test,
    /// Personal data erased: the fit facts are gone, learning from the rest would teach that
    /// "no title, no email" converts like the erased customers did.
    Erased,
    /// No outcome yet and younger than `negative_after_days`.
    Open,
}

/// The label rule: won is positive (even when it was marked lost earlier); lost, or older than
/// `negative_after_days` at `now` without a win, is negative; the rest teach nothing.
pub fn label(
    facts: &LeadFacts<'_>,
    now: DateTime<Utc>,
    settings: &PredictSettings,
) -> Result<Label, Unlabelled> {
    if facts.is_test {
        return Err(Unlabelled::Test);
    }
    if facts.erased {
        return Err(Unlabelled::Erased);
    }
    if facts.won_at.is_some() {
        Ok(Label::Won)
    } else if facts.lost_at.is_some() {
        Ok(Label::Lost)
    } else if now - facts.created_at >= days(settings.negative_after_days) {
        Ok(Label::AgedOut)
    } else {
        Err(Unlabelled::Open)
    }
}

fn days(d: f64) -> Duration {
    Duration::milliseconds((d * 86_400_000.0).round() as i64)
}

/// The moment the features are read at: `created_at + window_days`, or the win or the loss when
/// earlier, or `now` for a lead younger than the window. Training and scoring use the same rule,
/// so a lead is always scored on what the model learned from.
pub fn cutoff(
    facts: &LeadFacts<'_>,
    now: DateTime<Utc>,
    settings: &PredictSettings,
) -> DateTime<Utc> {
    [
        Some(facts.created_at + days(settings.window_days)),
        Some(now),
        facts.won_at,
        facts.lost_at,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(now)
    // A win recorded before the lead's creation (clock skew, back-dated events) must not move
    // the cut-off before the first touch: the creation is the earliest cut-off.
    .max(facts.created_at)
}

/// Business or free mailbox (the scoring configuration's free-domain list decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    None,
    Free,
    Business,
}

impl EmailKind {
    fn as_str(self) -> &'static str {
        match self {
            EmailKind::None => NONE,
            EmailKind::Free => "free",
            EmailKind::Business => "business",
        }
    }
}

/// Time from creation to the first sales contact, when it happened by the cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstContact {
    /// No contact by the cut-off (or none at all).
    None,
    Within1h,
    Within1d,
    WithinWindow,
}

impl FirstContact {
    fn as_str(self) -> &'static str {
        match self {
            FirstContact::None => NONE,
            FirstContact::Within1h => "within_1h",
            FirstContact::Within1d => "within_1d",
            FirstContact::WithinWindow => "within_window",
        }
    }
}

/// The features of one lead as they were at its cut-off: small, owned, no personal values
/// (seniority is the rule's name, the email only its kind, the company only whether given).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub channel: Channel,
    pub source: String,
    pub campaign: String,
    /// Trimmed, ISO alpha-2 upper-cased; `None` when not given.
    pub country: Option<String>,
    /// The matching job-title rule's name; `Some("(other)")` when a title was given and no rule
    /// matched; `None` when no title.
    pub title: Option<String>,
    pub email: EmailKind,
    pub company: bool,
    pub phone: bool,
    /// Decayed touch counts by kind (index: position in [`TouchKind::ALL`]).
    pub touches: [f64; TouchKind::ALL.len()],
    pub first_contact: FirstContact,
}

impl Snapshot {
    /// The lead as it was at its cut-off. `lexicon` is the scoring model: its job-title rules
    /// give the seniority and its free-domain list the email kind.
    pub fn of(
        facts: &LeadFacts<'_>,
        now: DateTime<Utc>,
        settings: &PredictSettings,
        lexicon: &Model,
    ) -> Snapshot {
        let cut = cutoff(facts, now, settings);
        let p = &facts.profile;
        let title = p
            .job_title
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| lexicon.title_rule(t).unwrap_or(OTHER).to_string());
        let email = match p.email_domain.map(str::trim).filter(|d| !d.is_empty()) {
            None => EmailKind::None,
            Some(d) if lexicon.is_free_email_domain(d) => EmailKind::Free,
            Some(_) => EmailKind::Business,
        };
        let country = p.country.map(str::trim).filter(|c| !c.is_empty()).map(|c| {
            if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) {
                c.to_ascii_uppercase()
            } else {
                limits::truncate_bytes(&limits::label(c), MAX_COUNTRY_BYTES).to_string()
            }
        });
        let half_life_ms = settings.engagement_half_life_days * 86_400_000.0;
        // Ages are measured to the end of the window, whatever the cut-off: measured to a
        // cut-off the outcome moved earlier, a quickly won lead's touches would look fresher
        // than a slowly lost one's (the outcome's timing leaking into the features), and a
        // young lead's prediction would drift every hour without anything happening.
        let window_end = facts.created_at + days(settings.window_days);
        let mut touches = [0.0; TouchKind::ALL.len()];
        for t in facts.touches.iter().filter(|t| t.at <= cut) {
            let age_ms = (window_end - t.at).num_milliseconds().max(0) as f64;
            let i = TouchKind::ALL
                .iter()
                .position(|k| *k == t.kind)
                .unwrap_or(0);
            touches[i] += 0.5f64.powf(age_ms / half_life_ms);
        }
        let first_contact = match facts.first_contacted_at.filter(|at| *at <= cut) {
            None => FirstContact::None,
            Some(at) => {
                let after = at - facts.created_at;
                if after <= Duration::hours(1) {
                    FirstContact::Within1h
                } else if after <= Duration::days(1) {
                    FirstContact::Within1d
                } else {
                    FirstContact::WithinWindow
                }
            }
        };
        Snapshot {
            channel: facts.channel,
            source: limits::label(facts.source),
            campaign: limits::label(facts.campaign),
            country,
            title,
            email,
            company: p.company.is_some_and(|c| !c.trim().is_empty()),
            phone: p.has_phone,
            touches,
            first_contact,
        }
    }

    /// The named feature values of this snapshot. Categories outside `vocab` become `(other)`.
    /// Names are `group:value`; binary features are 1.0 when present and left out when absent.
    pub fn encode(&self, vocab: &Vocabulary) -> Vec<(String, f64)> {
        let mut out = Vec::with_capacity(12 + TouchKind::ALL.len());
        let mut one = |name: String| out.push((name, 1.0));
        one(format!("channel:{}", self.channel.as_str()));
        one(format!(
            "source:{}",
            Vocabulary::bucket(&vocab.source, &self.source)
        ));
        one(format!(
            "campaign:{}",
            Vocabulary::bucket(&vocab.campaign, &self.campaign)
        ));
        one(match &self.country {
            None => format!("country:{NONE}"),
            Some(c) => format!("country:{}", Vocabulary::bucket(&vocab.country, c)),
        });
        one(format!("title:{}", self.title.as_deref().unwrap_or(NONE)));
        one(format!("email:{}", self.email.as_str()));
        if self.company {
            one("company:given".to_string());
        }
        if self.phone {
            one("phone:given".to_string());
        }
        one(format!("first_contact:{}", self.first_contact.as_str()));
        for (kind, v) in TouchKind::ALL.iter().zip(self.touches) {
            if v > 0.0 {
                // Logarithmic: the tenth visit says less than the first.
                out.push((format!("touches:{}", kind.as_str()), v.ln_1p()));
            }
        }
        out
    }
}

/// The categorical values that have a feature of their own (the long tail is `(other)`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    pub source: Vec<String>,
    pub campaign: Vec<String>,
    pub country: Vec<String>,
}

impl Vocabulary {
    /// The `top_n` most frequent values of each group with at least `min_count` leads (ties by
    /// name, so the vocabulary does not depend on the order leads were read in).
    pub fn build<'a>(
        snapshots: impl IntoIterator<Item = &'a Snapshot>,
        top_n: usize,
        min_count: u64,
    ) -> Vocabulary {
        let mut counts: [BTreeMap<&str, u64>; 3] = Default::default();
        for s in snapshots {
            *counts[0].entry(s.source.as_str()).or_default() += 1;
            *counts[1].entry(s.campaign.as_str()).or_default() += 1;
            if let Some(c) = &s.country {
                *counts[2].entry(c.as_str()).or_default() += 1;
            }
        }
        let top = |m: &BTreeMap<&str, u64>| {
            let mut v: Vec<(&str, u64)> = m
                .iter()
                .filter(|(_, n)| **n >= min_count)
                .map(|(k, n)| (*k, *n))
                .collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            v.truncate(top_n);
            v.into_iter().map(|(k, _)| k.to_string()).collect()
        };
        Vocabulary {
            source: top(&counts[0]),
            campaign: top(&counts[1]),
            country: top(&counts[2]),
        }
    }

    fn bucket<'a>(known: &'a [String], value: &'a str) -> &'a str {
        if known.iter().any(|k| k == value) {
            value
        } else {
            OTHER
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    static EMPTY: BTreeMap<String, String> = BTreeMap::new();

    fn facts<'a>(touches: &'a [Touch]) -> LeadFacts<'a> {
        LeadFacts {
            lead_id: "l1",
            created_at: t0(),
            channel: Channel::PaidSocial,
            source: "linkedin",
            campaign: "q1-abm",
            profile: Profile {
                job_title: Some("VP Sales"),
                company: Some("Acme"),
                email_domain: Some("acme.com"),
                country: Some("de"),
                has_phone: false,
                custom: &EMPTY,
            },
            touches,
            first_contacted_at: None,
            won_at: None,
            lost_at: None,
            is_test: false,
            erased: false,
        }
    }

    fn at_days(d: f64) -> DateTime<Utc> {
        t0() + days(d)
    }

    #[test]
    fn label_rule() {
        let s = PredictSettings::default();
        let base = [];
        let f = facts(&base);
        assert_eq!(label(&f, at_days(30.0), &s), Err(Unlabelled::Open));
        assert_eq!(label(&f, at_days(90.0), &s), Ok(Label::AgedOut));
        let lost = LeadFacts {
            lost_at: Some(at_days(3.0)),
            ..f
        };
        assert_eq!(label(&lost, at_days(4.0), &s), Ok(Label::Lost));
        // Lost first, won later: the win is what happened.
        let won = LeadFacts {
            won_at: Some(at_days(200.0)),
            ..lost
        };
        assert_eq!(label(&won, at_days(300.0), &s), Ok(Label::Won));
        assert!(Label::Won.is_positive() && !Label::AgedOut.is_positive());
        let test = LeadFacts {
            is_test: true,
            ..won
        };
        assert_eq!(label(&test, at_days(300.0), &s), Err(Unlabelled::Test));
        let erased = LeadFacts {
            erased: true,
            ..won
        };
        assert_eq!(label(&erased, at_days(300.0), &s), Err(Unlabelled::Erased));
    }

    #[test]
    fn cutoff_is_the_window_the_outcome_or_now() {
        let s = PredictSettings::default();
        let base = [];
        let f = facts(&base);
        assert_eq!(cutoff(&f, at_days(100.0), &s), at_days(7.0));
        assert_eq!(cutoff(&f, at_days(2.0), &s), at_days(2.0));
        let won = LeadFacts {
            won_at: Some(at_days(3.0)),
            ..f
        };
        assert_eq!(cutoff(&won, at_days(100.0), &s), at_days(3.0));
        let lost = LeadFacts {
            lost_at: Some(at_days(1.0)),
            ..f
        };
        assert_eq!(cutoff(&lost, at_days(100.0), &s), at_days(1.0));
        let skewed = LeadFacts {
            won_at: Some(at_days(-1.0)),
            ..f
        };
        assert_eq!(cutoff(&skewed, at_days(100.0), &s), t0());
    }

    /// No leakage: touches after the window or after the win, and a first contact after the
    /// window, leave the snapshot exactly as it was.
    #[test]
    fn nothing_after_the_window_or_the_outcome_is_seen() {
        let s = PredictSettings::default();
        let m = Model::builtin();
        let now = at_days(200.0);
        let early = vec![
            Touch {
                kind: TouchKind::FormSubmission,
                at: t0(),
            },
            Touch {
                kind: TouchKind::Visit,
                at: at_days(1.5),
            },
        ];
        let mut late = early.clone();
        late.push(Touch {
            kind: TouchKind::MeetingBooked,
            at: at_days(8.0),
        });
        late.push(Touch {
            kind: TouchKind::Visit,
            at: at_days(60.0),
        });
        let a = Snapshot::of(&facts(&early), now, &s, m);
        let b = Snapshot::of(&facts(&late), now, &s, m);
        assert_eq!(a, b);
        let contacted_late = LeadFacts {
            first_contacted_at: Some(at_days(7.5)),
            ..facts(&early)
        };
        assert_eq!(Snapshot::of(&contacted_late, now, &s, m), a);
        assert_eq!(a.first_contact, FirstContact::None);

        // Won on day 2: a meeting on day 3 (onboarding) and a first contact on day 2.5 are
        // after the outcome.
        let won = LeadFacts {
            won_at: Some(at_days(2.0)),
            ..facts(&early)
        };
        let mut after_win = early.clone();
        after_win.push(Touch {
            kind: TouchKind::MeetingBooked,
            at: at_days(3.0),
        });
        let won_later_touches = LeadFacts {
            touches: &after_win,
            first_contacted_at: Some(at_days(2.5)),
            ..won
        };
        assert_eq!(
            Snapshot::of(&won, now, &s, m),
            Snapshot::of(&won_later_touches, now, &s, m)
        );
        // The outcome's timing alone changes nothing: the same touches, won on day 2 or lost
        // on day 6, weigh the same (ages are measured to the window's end).
        let lost_later = LeadFacts {
            won_at: None,
            lost_at: Some(at_days(6.0)),
            ..won
        };
        assert_eq!(
            Snapshot::of(&won, now, &s, m).touches,
            Snapshot::of(&lost_later, now, &s, m).touches
        );
        // A contact within the window and before the outcome is seen, in its bucket.
        let quick = LeadFacts {
            first_contacted_at: Some(t0() + Duration::minutes(20)),
            ..won
        };
        assert_eq!(
            Snapshot::of(&quick, now, &s, m).first_contact,
            FirstContact::Within1h
        );
    }

    #[test]
    fn snapshot_reads_fit_signals_without_personal_values() {
        let s = PredictSettings::default();
        let m = Model::builtin();
        let touches = [Touch {
            kind: TouchKind::FormSubmission,
            at: t0(),
        }];
        let snap = Snapshot::of(&facts(&touches), at_days(30.0), &s, m);
        assert_eq!(snap.title.as_deref(), Some("title_vp_director"));
        assert_eq!(snap.email, EmailKind::Business);
        assert_eq!(snap.country.as_deref(), Some("DE"));
        assert!(snap.company && !snap.phone);
        // Read at the cut-off (day 7): a form on day 0 has decayed one half-life.
        let i = TouchKind::ALL
            .iter()
            .position(|k| *k == TouchKind::FormSubmission)
            .unwrap();
        assert!((snap.touches[i] - 0.5).abs() < 1e-12);

        let odd = LeadFacts {
            profile: Profile {
                job_title: Some("Wizard"),
                email_domain: Some("GMAIL.com"),
                country: Some("  Federal Republic of Germany and its many Länder  "),
                ..facts(&touches).profile
            },
            ..facts(&touches)
        };
        let snap = Snapshot::of(&odd, at_days(30.0), &s, m);
        assert_eq!(snap.title.as_deref(), Some(OTHER));
        assert_eq!(snap.email, EmailKind::Free);
        assert!(snap.country.as_ref().unwrap().len() <= MAX_COUNTRY_BYTES);

        let names: Vec<String> = snap
            .encode(&Vocabulary::default())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for n in &names {
            for personal in ["Wizard", "gmail", "Acme", "acme.com", "Germany"] {
                assert!(!n.contains(personal), "{n} carries {personal}");
            }
        }
        assert!(names.contains(&"source:(other)".to_string()));
        assert!(names.contains(&"title:(other)".to_string()));
        assert!(names.contains(&"email:free".to_string()));
    }

    #[test]
    fn vocabulary_keeps_the_frequent_values_and_buckets_the_tail() {
        let s = PredictSettings::default();
        let m = Model::builtin();
        let touches = [];
        let mut snaps = Vec::new();
        for (source, n) in [("google", 9), ("linkedin", 7), ("bing", 7), ("rare", 2)] {
            for _ in 0..n {
                let f = LeadFacts {
                    source,
                    ..facts(&touches)
                };
                snaps.push(Snapshot::of(&f, at_days(30.0), &s, m));
            }
        }
        let v = Vocabulary::build(&snaps, 2, 3);
        // Ties (7 and 7) by name: bing before linkedin; `rare` is below min_count anyway.
        assert_eq!(v.source, vec!["google", "bing"]);
        assert_eq!(v.campaign, vec!["q1-abm"]);
        assert_eq!(v.country, vec!["DE"]);
        let linkedin = snaps.iter().find(|s| s.source == "linkedin").unwrap();
        let enc = linkedin.encode(&v);
        assert!(enc.iter().any(|(n, _)| n == "source:(other)"));
        assert!(enc.iter().any(|(n, _)| n == "campaign:q1-abm"));
        // Every name once: the encoding is a set of features.
        let mut names: Vec<&String> = enc.iter().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), enc.len());
    }
}
