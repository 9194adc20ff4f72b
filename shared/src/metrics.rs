//! Lead metrics, pure: daily rollups per source x channel x campaign computed from the leads
//! created that day and the touchpoints of that day, and their aggregation for reporting.
//!
//! Definitions (docs/api.md, "Metrics definitions"):
//! - new leads: inbound people (leads) first seen that day; submissions: inbound touchpoints
//!   that day. Outbound leads (prospects the team bought or built: `direction = outbound`) are
//!   counted apart, as `outbound_leads`, and in none of the inbound figures (stages, scores,
//!   time to first touch); their touches are not submissions.
//! - mqls / sqls / customers: of that day's new leads, how many have reached the stage so far
//!   (a cohort: the numbers grow as leads convert later, which is why recent days are
//!   recomputed every day).
//! - conversion rate (cohort): customers / new leads; MQL to SQL rate: sqls / mqls.
//! - spend: reported ad spend for the day x source x campaign, plus a fixed cost per lead for
//!   sources configured with one, summed per currency (never across currencies); cost per
//!   lead, per currency: spend / (new leads + the outbound leads of groups that carry spend).
//!   Outbound leads count in cost per lead only where spend is attached to their source x
//!   channel x campaign (a bought list's price, a fixed cost per lead of their source);
//!   otherwise they cost nothing and dilute nothing.
//! - time to first touch: first sales contact - lead creation, P50 and P95 in minutes.
//! - lead velocity rate (monthly): (MQLs this month - last month) / last month.
//! - test leads and touchpoints (`is_test`) are left out.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::limits::label;
use crate::model::{Direction, Lead, Stage, Temperature, TouchKind, Touchpoint};

/// The largest spend one entry may report: a billion units of its currency (in micros).
pub const MAX_SPEND_MICROS: i64 = 1_000_000_000 * 1_000_000;

/// A decimal amount ("40.5", "0.000001", "1200") -> micros: digits, at most one '.', at most
/// 6 decimals, at most `MAX_SPEND_MICROS`. Parsed as text, never through a float, so nothing
/// is rounded, saturated or wrapped.
pub fn parse_amount_micros(text: &str) -> Result<i64, String> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(frac)) {
        return Err("must be a non-negative decimal number such as 40.5".into());
    }
    if frac.len() > 6 {
        return Err("has more than 6 decimals".into());
    }
    let too_large = || format!("is over {}", MAX_SPEND_MICROS / 1_000_000);
    let whole: i64 = whole.parse().map_err(|_| too_large())?;
    let frac: i64 = format!("{frac:0<6}").parse().unwrap_or(0);
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .filter(|m| *m <= MAX_SPEND_MICROS)
        .ok_or_else(too_large)
}

/// An ISO 4217 alphabetic code, upper-cased (three ASCII letters), or `None`.
pub fn currency(code: &str) -> Option<String> {
    let c = code.trim().to_ascii_uppercase();
    (c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())).then_some(c)
}

/// Reported spend of one day for a source and campaign (amounts in micros of the currency).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendEntry {
    pub day: String,
    pub source: String,
    pub channel: String,
    pub campaign: String,
    pub amount_micros: i64,
    pub currency: String,
}

/// The group a rollup row counts: day x source x channel x campaign.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    pub day: String,
    pub source: String,
    pub channel: String,
    pub campaign: String,
}

/// Additive counts of one group; every ratio is derived from these at read time, so rows of
/// any grouping add up exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RollupCounts {
    /// Inbound leads created that day.
    pub new_leads: u64,
    /// Outbound leads created that day (imported prospect lists).
    pub outbound_leads: u64,
    /// The leads cost per lead divides by: new leads, plus outbound leads in a group that
    /// carries spend. Stored, so it adds across groups.
    pub cpl_leads: u64,
    pub submissions: u64,
    pub mqls: u64,
    pub sqls: u64,
    pub customers: u64,
    /// Spend per ISO 4217 currency, in micros. Amounts are bounded at input
    /// (`MAX_SPEND_MICROS`), so sums over any 400-day range stay far inside `i64`.
    pub spend_micros: BTreeMap<String, i64>,
    pub score_sum: u64,
    pub scored: u64,
    pub hot: u64,
    pub warm: u64,
    pub cold: u64,
    pub referrals: u64,
    pub reviews: u64,
    pub rating_sum: u64,
    pub rated: u64,
    /// Time to first touch of every contacted lead, minutes (kept raw: percentiles do not add).
    pub ttft_minutes: Vec<u64>,
}

impl RollupCounts {
    pub fn add(&mut self, o: &RollupCounts) {
        self.new_leads += o.new_leads;
        self.outbound_leads += o.outbound_leads;
        self.cpl_leads += o.cpl_leads;
        self.submissions += o.submissions;
        self.mqls += o.mqls;
        self.sqls += o.sqls;
        self.customers += o.customers;
        for (currency, micros) in &o.spend_micros {
            let sum = self.spend_micros.entry(currency.clone()).or_default();
            *sum = sum.saturating_add(*micros);
        }
        self.score_sum += o.score_sum;
        self.scored += o.scored;
        self.hot += o.hot;
        self.warm += o.warm;
        self.cold += o.cold;
        self.referrals += o.referrals;
        self.reviews += o.reviews;
        self.rating_sum += o.rating_sum;
        self.rated += o.rated;
        self.ttft_minutes.extend_from_slice(&o.ttft_minutes);
    }
}

/// What the rollup reads of a lead (gsi2 projects exactly these attributes).
#[derive(Debug, Clone, PartialEq)]
pub struct DayLead {
    pub source: String,
    pub channel: String,
    pub campaign: String,
    pub is_test: bool,
    pub direction: Direction,
    pub stage: Stage,
    pub score: Option<u32>,
    pub temperature: Option<Temperature>,
    pub created_at: DateTime<Utc>,
    pub first_contacted_at: Option<DateTime<Utc>>,
}

impl From<&Lead> for DayLead {
    fn from(l: &Lead) -> DayLead {
        DayLead {
            source: l.source.clone(),
            channel: l.channel.as_str().to_string(),
            campaign: l.campaign.clone(),
            is_test: l.is_test,
            direction: l.direction,
            stage: l.stage,
            score: l.score,
            temperature: l.temperature,
            created_at: l.created_at,
            first_contacted_at: l.sales.first_contacted_at,
        }
    }
}

/// What the rollup reads of a touchpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct DayTouch {
    pub source: String,
    pub channel: String,
    pub campaign: String,
    pub is_test: bool,
    pub direction: Direction,
    pub kind: TouchKind,
    /// A review's 1-5 rating (reviews only).
    pub rating: Option<u64>,
}

impl From<&Touchpoint> for DayTouch {
    fn from(t: &Touchpoint) -> DayTouch {
        DayTouch {
            source: t.source.clone(),
            channel: t.channel.as_str().to_string(),
            campaign: t.campaign.clone(),
            is_test: t.is_test,
            direction: t.direction,
            kind: t.kind,
            rating: t
                .custom
                .get("rating")
                .and_then(|r| r.parse::<u64>().ok())
                .filter(|r| (1..=5).contains(r)),
        }
    }
}

/// The rollups of one day, built one lead, touch and spend entry at a time: the caller
/// streams a day's items through it page by page, so memory grows with the day's groups,
/// not with its leads.
#[derive(Debug, Clone)]
pub struct DayRollup<'a> {
    day: String,
    fixed_cpl: &'a FixedCpl,
    rows: BTreeMap<GroupKey, RollupCounts>,
}

/// The configured cost per lead of sources without a spend feed (`FIXED_CPL`), in micros of
/// one currency (`FIXED_CPL_CURRENCY`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixedCpl {
    pub currency: String,
    pub micros_by_source: HashMap<String, i64>,
}

impl<'a> DayRollup<'a> {
    pub fn new(day: &str, fixed_cpl: &'a FixedCpl) -> DayRollup<'a> {
        DayRollup {
            day: day.to_string(),
            fixed_cpl,
            rows: BTreeMap::new(),
        }
    }

    /// Groups become rollup sort keys: labels are bounded again here, so leads stored before
    /// ingest bounded them (or any other unbounded value) cannot fail a day's rollup.
    fn row(&mut self, source: &str, channel: &str, campaign: &str) -> &mut RollupCounts {
        let key = GroupKey {
            day: self.day.clone(),
            source: label(source),
            channel: label(channel),
            campaign: label(campaign),
        };
        self.rows.entry(key).or_default()
    }

    /// A lead created this day.
    pub fn add_lead(&mut self, lead: &DayLead) {
        if lead.is_test {
            return;
        }
        let cpl = self.fixed_cpl.micros_by_source.get(&lead.source).copied();
        let currency = self.fixed_cpl.currency.clone();
        let row = self.row(&lead.source, &lead.channel, &lead.campaign);
        if let Some(cpl) = cpl {
            let sum = row.spend_micros.entry(currency).or_default();
            *sum = sum.saturating_add(cpl);
        }
        if lead.direction == Direction::Outbound {
            row.outbound_leads += 1;
            return;
        }
        row.new_leads += 1;
        row.mqls += u64::from(lead.stage >= Stage::Mql);
        row.sqls += u64::from(lead.stage >= Stage::Sql);
        row.customers += u64::from(lead.stage >= Stage::Customer);
        if let Some(score) = lead.score {
            row.score_sum += u64::from(score);
            row.scored += 1;
        }
        match lead.temperature {
            Some(Temperature::Hot) => row.hot += 1,
            Some(Temperature::Warm) => row.warm += 1,
            Some(Temperature::Cold) => row.cold += 1,
            None => {}
        }
        if let Some(contacted) = lead.first_contacted_at {
            let minutes = (contacted - lead.created_at).num_minutes().max(0) as u64;
            row.ttft_minutes.push(minutes);
        }
    }

    /// A touchpoint that occurred this day.
    pub fn add_touch(&mut self, t: &DayTouch) {
        if t.is_test || t.direction == Direction::Outbound {
            return;
        }
        let row = self.row(&t.source, &t.channel, &t.campaign);
        row.submissions += 1;
        match t.kind {
            TouchKind::ReferralReceived => row.referrals += 1,
            TouchKind::Review => {
                row.reviews += 1;
                if let Some(r) = t.rating.filter(|r| (1..=5).contains(r)) {
                    row.rating_sum += r;
                    row.rated += 1;
                }
            }
            _ => {}
        }
    }

    /// A spend entry of this day.
    pub fn add_spend(&mut self, s: &SpendEntry) {
        let row = self.row(&s.source, &s.channel, &s.campaign);
        let sum = row.spend_micros.entry(s.currency.clone()).or_default();
        *sum = sum.saturating_add(s.amount_micros);
    }

    /// The day's rows. Times to first touch are sorted, so a row does not depend on the
    /// order the leads were read in (shards, pages).
    pub fn finish(mut self) -> BTreeMap<GroupKey, RollupCounts> {
        for row in self.rows.values_mut() {
            row.ttft_minutes.sort_unstable();
            let carries_spend = row.spend_micros.values().any(|m| *m > 0);
            row.cpl_leads = row.new_leads + if carries_spend { row.outbound_leads } else { 0 };
        }
        self.rows
    }
}

/// Computes the rollups of one day from whole lists (tests and small callers; the rollup
/// function streams through [`DayRollup`]). `leads` are those created that day, `touches`
/// those that occurred that day, `spend` that day's entries.
pub fn day_rollups(
    day: &str,
    leads: &[Lead],
    touches: &[Touchpoint],
    spend: &[SpendEntry],
    fixed_cpl: &FixedCpl,
) -> BTreeMap<GroupKey, RollupCounts> {
    let mut r = DayRollup::new(day, fixed_cpl);
    leads.iter().for_each(|l| r.add_lead(&l.into()));
    touches.iter().for_each(|t| r.add_touch(&t.into()));
    spend.iter().for_each(|s| r.add_spend(s));
    r.finish()
}

crate::named_enum! {
    /// How `GET /metrics` groups rows.
    pub enum GroupBy {
        Day = "day", Source = "source", Channel = "channel", Campaign = "campaign",
    }
}

impl GroupBy {
    fn key(self, k: &GroupKey) -> String {
        match self {
            GroupBy::Day => k.day.clone(),
            GroupBy::Source => k.source.clone(),
            GroupBy::Channel => k.channel.clone(),
            GroupBy::Campaign => k.campaign.clone(),
        }
    }
}

/// One reported row: the group's counts with every ratio derived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsRow {
    pub key: String,
    pub new_leads: u64,
    pub outbound_leads: u64,
    pub submissions: u64,
    pub mqls: u64,
    pub sqls: u64,
    pub customers: u64,
    /// Cohort conversion: customers among the group's new leads.
    pub conversion_rate: Option<f64>,
    pub mql_to_sql_rate: Option<f64>,
    /// Spend and cost per lead when the group's spend is in one currency (`currency`); with
    /// several, 0 / null here and the figures per currency below (never added together).
    pub spend: f64,
    pub cpl: Option<f64>,
    pub currency: Option<String>,
    pub spend_by_currency: BTreeMap<String, f64>,
    pub cpl_by_currency: BTreeMap<String, f64>,
    pub avg_score: Option<f64>,
    pub hot: u64,
    pub warm: u64,
    pub cold: u64,
    pub referrals: u64,
    pub reviews: u64,
    pub avg_rating: Option<f64>,
    pub ttft_p50_minutes: Option<u64>,
    pub ttft_p95_minutes: Option<u64>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| round4(a as f64 / b as f64))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Nearest-rank percentile (p in 0..=100) of unsorted values.
pub fn percentile(values: &[u64], p: u32) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((f64::from(p) / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

pub fn to_row(key: String, c: &RollupCounts) -> MetricsRow {
    let cents = |micros: i64| (micros as f64 / 10_000.0).round() / 100.0;
    let spend_by_currency: BTreeMap<String, f64> = c
        .spend_micros
        .iter()
        .map(|(k, m)| (k.clone(), cents(*m)))
        .collect();
    let cpl_by_currency: BTreeMap<String, f64> = if c.cpl_leads > 0 {
        c.spend_micros
            .iter()
            .map(|(k, m)| (k.clone(), cents(m / c.cpl_leads as i64)))
            .collect()
    } else {
        BTreeMap::new()
    };
    let single = (c.spend_micros.len() == 1)
        .then(|| c.spend_micros.keys().next().cloned())
        .flatten();
    MetricsRow {
        key,
        new_leads: c.new_leads,
        outbound_leads: c.outbound_leads,
        submissions: c.submissions,
        mqls: c.mqls,
        sqls: c.sqls,
        customers: c.customers,
        conversion_rate: ratio(c.customers, c.new_leads),
        mql_to_sql_rate: ratio(c.sqls, c.mqls),
        spend: single.as_ref().map(|k| spend_by_currency[k]).unwrap_or(0.0),
        cpl: single
            .as_ref()
            .and_then(|k| cpl_by_currency.get(k).copied()),
        currency: single,
        spend_by_currency,
        cpl_by_currency,
        avg_score: (c.scored > 0).then(|| round4(c.score_sum as f64 / c.scored as f64)),
        hot: c.hot,
        warm: c.warm,
        cold: c.cold,
        referrals: c.referrals,
        reviews: c.reviews,
        avg_rating: (c.rated > 0).then(|| round4(c.rating_sum as f64 / c.rated as f64)),
        ttft_p50_minutes: percentile(&c.ttft_minutes, 50),
        ttft_p95_minutes: percentile(&c.ttft_minutes, 95),
    }
}

/// Aggregates stored rollups by the requested dimension, sorted by key.
pub fn aggregate(rows: &[(GroupKey, RollupCounts)], by: GroupBy) -> Vec<MetricsRow> {
    let mut groups: BTreeMap<String, RollupCounts> = BTreeMap::new();
    for (k, c) in rows {
        groups.entry(by.key(k)).or_default().add(c);
    }
    groups.into_iter().map(|(k, c)| to_row(k, &c)).collect()
}

/// Lead velocity rate per month: MQLs of the month's cohort against the previous month's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VelocityRow {
    pub month: String,
    pub mqls: u64,
    pub lead_velocity_rate: Option<f64>,
}

pub fn lead_velocity(rows: &[(GroupKey, RollupCounts)]) -> Vec<VelocityRow> {
    let mut months: BTreeMap<String, u64> = BTreeMap::new();
    for (k, c) in rows {
        *months
            .entry(k.day.get(..7).unwrap_or("").to_string())
            .or_default() += c.mqls;
    }
    let mut prev: Option<u64> = None;
    months
        .into_iter()
        .map(|(month, mqls)| {
            let lvr = prev
                .filter(|p| *p > 0)
                .map(|p| round4((mqls as f64 - p as f64) / p as f64));
            prev = Some(mqls);
            VelocityRow {
                month,
                mqls,
                lead_velocity_rate: lvr,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_as_decimals_within_bounds() {
        assert_eq!(parse_amount_micros("40.5"), Ok(40_500_000));
        assert_eq!(parse_amount_micros("0.000001"), Ok(1));
        assert_eq!(parse_amount_micros("1000000000"), Ok(MAX_SPEND_MICROS));
        for bad in [
            "",
            "-1",
            "1e3",
            "1.2.3",
            ".5",
            "5.",
            "NaN",
            "inf",
            "0.0000001",
            "1000000000.01",
            "99999999999999999999999",
            " 1",
        ] {
            assert!(parse_amount_micros(bad).is_err(), "{bad:?}");
        }
        assert_eq!(currency("eur").as_deref(), Some("EUR"));
        assert_eq!(currency("EU"), None);
        assert_eq!(currency("€UR"), None);
    }

    #[test]
    fn spend_is_summed_per_currency_never_mixed() {
        let cpl = FixedCpl::default();
        let entry = |amount, currency: &str| SpendEntry {
            day: "2026-10-01".into(),
            source: "google".into(),
            channel: "paid_search".into(),
            campaign: "brand".into(),
            amount_micros: amount,
            currency: currency.into(),
        };
        let mut r = DayRollup::new("2026-10-01", &cpl);
        r.add_spend(&entry(10_000_000, "USD"));
        r.add_spend(&entry(5_000_000, "EUR"));
        r.add_spend(&entry(1_000_000, "USD"));
        let rows = r.finish();
        let (_, c) = rows.iter().next().unwrap();
        assert_eq!(c.spend_micros["USD"], 11_000_000);
        assert_eq!(c.spend_micros["EUR"], 5_000_000);
        let row = to_row("x".into(), c);
        assert_eq!((row.spend, row.cpl, row.currency), (0.0, None, None));
        assert_eq!(row.spend_by_currency["USD"], 11.0);
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v = [10, 1, 5, 7, 3];
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 95), Some(10));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn rows_add_up_and_ratios_derive() {
        let k = |d: &str, s: &str| GroupKey {
            day: d.into(),
            source: s.into(),
            channel: "paid_search".into(),
            campaign: "c".into(),
        };
        let c = |leads, customers, spend| RollupCounts {
            new_leads: leads,
            cpl_leads: leads,
            customers,
            spend_micros: BTreeMap::from([("USD".to_string(), spend)]),
            mqls: leads,
            sqls: customers,
            ..Default::default()
        };
        let rows = vec![
            (k("2026-10-01", "google"), c(4, 1, 100_000_000)),
            (k("2026-10-02", "google"), c(6, 2, 50_000_000)),
            (k("2026-11-01", "bing"), c(5, 0, 0)),
        ];
        let by_source = aggregate(&rows, GroupBy::Source);
        let google = by_source.iter().find(|r| r.key == "google").unwrap();
        assert_eq!(google.new_leads, 10);
        assert_eq!(google.conversion_rate, Some(0.3));
        assert_eq!(google.cpl, Some(15.0));
        let lvr = lead_velocity(&rows);
        assert_eq!(lvr[1].lead_velocity_rate, Some(-0.5));
    }
}
