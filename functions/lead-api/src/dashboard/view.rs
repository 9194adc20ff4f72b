//! What the page shows, computed from what was read (pure): the filtered totals, one point per
//! day for the trends, the campaign table in the requested order, the filters' choices and the
//! call list in calling order. Ratios come from `leadflow::metrics::to_row`, as `GET /metrics`
//! reports them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use leadflow::metrics::{to_row, GroupKey, MetricsRow, RollupCounts};
use leadflow::model::{ReviewAggregate, Temperature};
use leadflow::store::{CallCandidate, CallList};

use super::params::{Dir, Filter, Params, SortKey};

/// Rows of the campaign table shown at most (the page stays small for any range).
pub const MAX_CAMPAIGN_ROWS: usize = 200;
/// Leads of the call list shown at most.
pub const MAX_CALLS: usize = 50;
/// Choices a filter offers at most (the current value always among them).
pub const MAX_CHOICES: usize = 300;

/// One day of the trends.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPoint {
    pub day: String,
    pub new_leads: u64,
    pub mqls: u64,
    /// Per ISO 4217 currency, in micros.
    pub spend_micros: BTreeMap<String, i64>,
}

impl DayPoint {
    /// Spend / new leads of the day; none on a day without leads, and none on a day whose
    /// spend is in several currencies (they are never added together).
    pub fn cpl(&self) -> Option<f64> {
        if self.new_leads == 0 {
            return None;
        }
        match self.spend_micros.values().collect::<Vec<_>>()[..] {
            [] => Some(0.0),
            [micros] => Some(*micros as f64 / 1e6 / self.new_leads as f64),
            _ => None,
        }
    }
}

/// A campaign of a source: the table's row.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub source: String,
    pub campaign: String,
    pub channels: BTreeSet<String>,
    pub metrics: MetricsRow,
}

/// Everything the page draws.
#[derive(Debug, Clone)]
pub struct View {
    pub totals: MetricsRow,
    pub trend: Vec<DayPoint>,
    /// In the requested order, at most [`MAX_CAMPAIGN_ROWS`].
    pub campaigns: Vec<CampaignRow>,
    pub campaign_count: usize,
    pub choices: Choices,
    /// Hot first, then by score, newest first; at most [`MAX_CALLS`].
    pub calls: Vec<CallCandidate>,
    pub call_count: usize,
    pub calls_complete: bool,
    /// Platforms with reviews, with the range's reviews by source (count, rating sum, rated).
    pub reviews: Vec<(ReviewAggregate, u64, Option<f64>)>,
}

/// What the filters offer: every value of the range (before filtering).
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub sources: Vec<String>,
    pub campaigns: Vec<String>,
}

pub fn build(
    params: &Params,
    rows: &[(GroupKey, RollupCounts)],
    reviews: &[ReviewAggregate],
    calls: &CallList,
) -> View {
    let filter = &params.filter;
    let kept: Vec<&(GroupKey, RollupCounts)> = rows
        .iter()
        .filter(|(k, _)| filter.matches(&k.channel, &k.source, &k.campaign))
        .collect();

    let mut total = RollupCounts::default();
    let mut per_day: BTreeMap<&str, DayPoint> = BTreeMap::new();
    let mut per_campaign: BTreeMap<(&str, &str), (RollupCounts, BTreeSet<String>)> =
        BTreeMap::new();
    let mut reviews_by_source: BTreeMap<&str, RollupCounts> = BTreeMap::new();
    for (k, c) in &kept {
        total.add(c);
        let p = per_day.entry(k.day.as_str()).or_insert_with(|| DayPoint {
            day: k.day.clone(),
            new_leads: 0,
            mqls: 0,
            spend_micros: BTreeMap::new(),
        });
        p.new_leads += c.new_leads;
        p.mqls += c.mqls;
        for (currency, micros) in &c.spend_micros {
            *p.spend_micros.entry(currency.clone()).or_default() += micros;
        }
        let e = per_campaign
            .entry((k.source.as_str(), k.campaign.as_str()))
            .or_default();
        e.0.add(c);
        e.1.insert(k.channel.clone());
        if c.reviews > 0 {
            reviews_by_source
                .entry(k.source.as_str())
                .or_default()
                .add(c);
        }
    }
    let trend = params
        .days
        .iter()
        .map(|d| {
            per_day.remove(d.as_str()).unwrap_or(DayPoint {
                day: d.clone(),
                new_leads: 0,
                mqls: 0,
                spend_micros: BTreeMap::new(),
            })
        })
        .collect();

    // A group with neither leads nor spend (touches of known leads only, reviews) is not a
    // campaign row.
    let mut campaigns: Vec<CampaignRow> = per_campaign
        .into_iter()
        .filter(|(_, (c, _))| {
            c.new_leads + c.mqls + c.customers > 0 || c.spend_micros.values().any(|m| *m != 0)
        })
        .map(|((source, campaign), (c, channels))| CampaignRow {
            source: source.to_string(),
            campaign: campaign.to_string(),
            channels,
            metrics: to_row(campaign.to_string(), &c),
        })
        .collect();
    sort_campaigns(&mut campaigns, params.sort, params.dir);
    let campaign_count = campaigns.len();
    campaigns.truncate(MAX_CAMPAIGN_ROWS);

    let mut call_list: Vec<CallCandidate> = calls
        .leads
        .iter()
        .filter(|l| filter.matches(l.channel.as_str(), &l.source, &l.campaign))
        .cloned()
        .collect();
    call_list.sort_by(calling_order);
    let call_count = call_list.len();
    call_list.truncate(MAX_CALLS);

    View {
        totals: to_row("total".into(), &total),
        trend,
        campaigns,
        campaign_count,
        choices: choices(rows, filter),
        calls: call_list,
        call_count,
        calls_complete: calls.complete,
        reviews: reviews
            .iter()
            .filter(|a| a.count > 0)
            .map(|a| {
                let in_range = reviews_by_source.get(a.platform.as_str());
                (
                    *a,
                    in_range.map_or(0, |c| c.reviews),
                    in_range.and_then(|c| to_row(String::new(), c).avg_rating),
                )
            })
            .collect(),
    }
}

fn choices(rows: &[(GroupKey, RollupCounts)], filter: &Filter) -> Choices {
    Choices {
        sources: pick(rows, |k| &k.source, &filter.source),
        campaigns: pick(rows, |k| &k.campaign, &filter.campaign),
    }
}

/// The distinct values of a dimension, sorted, at most [`MAX_CHOICES`], plus the current one.
fn pick(
    rows: &[(GroupKey, RollupCounts)],
    value: fn(&GroupKey) -> &String,
    current: &Option<String>,
) -> Vec<String> {
    let all: BTreeSet<&String> = rows.iter().map(|(k, _)| value(k)).collect();
    let mut out: Vec<String> = all
        .iter()
        .take(MAX_CHOICES)
        .map(|s| s.to_string())
        .collect();
    if let Some(c) = current {
        if !out.contains(c) {
            out.push(c.clone());
            out.sort();
        }
    }
    out
}

/// Nones (no leads: no cost per lead or conversion) last whichever the direction.
fn by_option(a: Option<f64>, b: Option<f64>, dir: Dir) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => directed(x.total_cmp(&y), dir),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn directed(o: Ordering, dir: Dir) -> Ordering {
    match dir {
        Dir::Asc => o,
        Dir::Desc => o.reverse(),
    }
}

pub fn sort_campaigns(rows: &mut [CampaignRow], key: SortKey, dir: Dir) {
    rows.sort_by(|a, b| {
        let (x, y) = (&a.metrics, &b.metrics);
        let primary = match key {
            SortKey::Campaign => directed(a.campaign.cmp(&b.campaign), dir),
            SortKey::Source => directed(a.source.cmp(&b.source), dir),
            SortKey::Leads => directed(x.new_leads.cmp(&y.new_leads), dir),
            SortKey::Mqls => directed(x.mqls.cmp(&y.mqls), dir),
            SortKey::Customers => directed(x.customers.cmp(&y.customers), dir),
            SortKey::Spend => directed(x.spend.total_cmp(&y.spend), dir),
            SortKey::Cpl => by_option(x.cpl, y.cpl, dir),
            SortKey::Conversion => by_option(x.conversion_rate, y.conversion_rate, dir),
        };
        // Ties in a stable, readable order.
        primary
            .then_with(|| a.campaign.cmp(&b.campaign))
            .then_with(|| a.source.cmp(&b.source))
    });
}

/// Hot leads first, then the highest score, then the newest.
fn calling_order(a: &CallCandidate, b: &CallCandidate) -> Ordering {
    let hot = |l: &CallCandidate| l.temperature == Some(Temperature::Hot);
    hot(b)
        .cmp(&hot(a))
        .then_with(|| b.score.cmp(&a.score))
        .then_with(|| b.created_at.cmp(&a.created_at))
}

/// "4 min", "3 h 20 min", "2 d 5 h": how long a lead has waited.
pub fn waited(now: DateTime<Utc>, since: DateTime<Utc>) -> String {
    minutes((now - since).num_minutes().max(0) as u64)
}

/// A number of minutes as a person reads it ("under 1 min", "3 h 20 min", "2 d 5 h").
pub fn minutes(m: u64) -> String {
    match m {
        0 => "under 1 min".into(),
        1..60 => format!("{m} min"),
        60..1440 => format!("{} h {} min", m / 60, m % 60),
        _ => format!("{} d {} h", m / 1440, (m % 1440) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use leadflow::model::{Channel, ReviewPlatform, Stage};

    fn key(day: &str, source: &str, channel: &str, campaign: &str) -> GroupKey {
        GroupKey {
            day: day.into(),
            source: source.into(),
            channel: channel.into(),
            campaign: campaign.into(),
        }
    }

    fn counts(leads: u64, mqls: u64, customers: u64, spend: i64) -> RollupCounts {
        RollupCounts {
            new_leads: leads,
            cpl_leads: leads,
            mqls,
            customers,
            spend_micros: BTreeMap::from([("USD".to_string(), spend * 1_000_000)]),
            ..Default::default()
        }
    }

    fn params(query: &[(&str, &str)]) -> Params {
        let mut r = leadflow::edge::InboundRequest::default();
        for (k, v) in query {
            r.query.insert(k.to_string(), v.to_string());
        }
        Params::parse(&r, chrono::NaiveDate::from_ymd_opt(2026, 10, 3).unwrap()).unwrap()
    }

    fn rows() -> Vec<(GroupKey, RollupCounts)> {
        vec![
            (
                key("2026-10-01", "google", "paid_search", "brand"),
                counts(4, 2, 1, 40),
            ),
            (
                key("2026-10-02", "google", "paid_search", "brand"),
                counts(6, 3, 0, 20),
            ),
            (
                key("2026-10-02", "facebook", "paid_social", "brand"),
                counts(2, 0, 0, 50),
            ),
            (
                key("2026-10-03", "newsletter", "email", "(none)"),
                counts(0, 0, 0, 5),
            ),
            // Submissions of returning leads only: not a row of the campaign table.
            (
                key("2026-10-03", "newsletter", "email", "nl-2"),
                counts(0, 0, 0, 0),
            ),
        ]
    }

    #[test]
    fn trend_has_every_day_and_cpl_only_with_leads() {
        let p = params(&[("from", "2026-09-30"), ("to", "2026-10-03")]);
        let v = build(&p, &rows(), &[], &CallList::default());
        let leads: Vec<u64> = v.trend.iter().map(|d| d.new_leads).collect();
        assert_eq!(leads, [0, 4, 8, 0]);
        assert_eq!(v.trend[1].cpl(), Some(10.0));
        assert_eq!(v.trend[2].cpl(), Some(70.0 / 8.0));
        assert_eq!(v.trend[0].cpl(), None);
        assert_eq!(v.totals.new_leads, 12);
    }

    #[test]
    fn campaigns_are_per_source_and_sorted_as_asked() {
        let order = |q: &[(&str, &str)]| {
            let v = build(&params(q), &rows(), &[], &CallList::default());
            v.campaigns
                .iter()
                .map(|r| format!("{}/{}", r.source, r.campaign))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order(&[]),
            ["google/brand", "facebook/brand", "newsletter/(none)"]
        );
        // Cheapest first; the campaign without leads has no cost per lead and comes last.
        assert_eq!(
            order(&[("sort", "cpl")]),
            ["google/brand", "facebook/brand", "newsletter/(none)"]
        );
        assert_eq!(
            order(&[("sort", "cpl"), ("dir", "desc")]),
            ["facebook/brand", "google/brand", "newsletter/(none)"]
        );
        assert_eq!(
            order(&[("sort", "source")]),
            ["facebook/brand", "google/brand", "newsletter/(none)"]
        );
        assert_eq!(order(&[("channel", "paid_social")]), ["facebook/brand"]);
        let v = build(&params(&[]), &rows(), &[], &CallList::default());
        assert_eq!(v.campaigns[0].metrics.conversion_rate, Some(0.1));
        assert_eq!(v.campaigns[0].metrics.cpl, Some(6.0));
    }

    #[test]
    fn filters_offer_every_value_and_keep_the_current_one() {
        let v = build(
            &params(&[("source", "not-in-range")]),
            &rows(),
            &[],
            &CallList::default(),
        );
        assert_eq!(
            v.choices.sources,
            ["facebook", "google", "newsletter", "not-in-range"]
        );
        assert_eq!(v.totals.new_leads, 0);
    }

    #[test]
    fn calls_hot_first_then_score_then_newest_and_filtered() {
        let at = |h| Utc.with_ymd_and_hms(2026, 10, 3, h, 0, 0).unwrap();
        let lead = |id: &str, t: Option<Temperature>, score, h, source: &str| CallCandidate {
            lead_id: id.into(),
            created_at: at(h),
            channel: Channel::PaidSearch,
            source: source.into(),
            campaign: "brand".into(),
            stage: Stage::Mql,
            temperature: t,
            score,
            predicted_conversion: None,
            contact: None,
        };
        let calls = CallList {
            leads: vec![
                lead("warm-90", Some(Temperature::Warm), Some(90), 1, "google"),
                lead("hot-70-old", Some(Temperature::Hot), Some(70), 1, "google"),
                lead("hot-70-new", Some(Temperature::Hot), Some(70), 5, "google"),
                lead("hot-80", Some(Temperature::Hot), Some(80), 2, "google"),
                lead("other-source", Some(Temperature::Hot), Some(99), 2, "bing"),
            ],
            complete: true,
        };
        let v = build(&params(&[("source", "google")]), &[], &[], &calls);
        let ids: Vec<&str> = v.calls.iter().map(|c| c.lead_id.as_str()).collect();
        assert_eq!(ids, ["hot-80", "hot-70-new", "hot-70-old", "warm-90"]);
        assert_eq!(waited(at(5), at(1)), "4 h 0 min");
        assert_eq!(waited(at(1), at(5)), "under 1 min");
        assert_eq!(waited(at(5) + chrono::Duration::days(2), at(1)), "2 d 4 h");
    }

    #[test]
    fn reviews_only_for_platforms_with_reviews() {
        let mut g = ReviewAggregate::empty(ReviewPlatform::Google);
        g.count = 3;
        g.rating_sum = 12;
        g.distribution = [0, 0, 1, 1, 1];
        let y = ReviewAggregate::empty(ReviewPlatform::Yelp);
        let mut rows = rows();
        rows.push((
            key("2026-10-02", "google", "review", "(none)"),
            RollupCounts {
                reviews: 2,
                rating_sum: 9,
                rated: 2,
                ..Default::default()
            },
        ));
        let v = build(&params(&[]), &rows, &[g, y], &CallList::default());
        assert_eq!(v.reviews, [(g, 2, Some(4.5))]);
    }
}
