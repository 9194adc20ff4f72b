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
//!   sources configured with one; cost per lead: spend / (new leads + the outbound leads of
//!   groups that carry spend). Outbound leads count in cost per lead only where spend is
//!   attached to their source x channel x campaign (a bought list's price, a fixed cost per
//!   lead of their source); otherwise they cost nothing and dilute nothing.
//! - time to first touch: first sales contact - lead creation, P50 and P95 in minutes.
//! - lead velocity rate (monthly): (MQLs this month - last month) / last month.
//! - test leads and touchpoints (`is_test`) are left out.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::limits::label;
use crate::model::{Direction, Lead, Stage, Temperature, TouchKind, Touchpoint};

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
    pub spend_micros: i64,
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
        self.spend_micros += o.spend_micros;
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

/// Computes the rollups of one day. `leads` are those created that day, `touches` those that
/// occurred that day, `spend` that day's entries, `fixed_cpl_micros` the configured cost per
/// lead of sources without a spend feed.
pub fn day_rollups(
    day: &str,
    leads: &[Lead],
    touches: &[Touchpoint],
    spend: &[SpendEntry],
    fixed_cpl_micros: &HashMap<String, i64>,
) -> BTreeMap<GroupKey, RollupCounts> {
    let mut rows: BTreeMap<GroupKey, RollupCounts> = BTreeMap::new();
    // Groups become rollup sort keys: labels are bounded again here, so leads stored before
    // ingest bounded them (or any other unbounded value) cannot fail a day's rollup.
    let key = |source: &str, channel: &str, campaign: &str| GroupKey {
        day: day.to_string(),
        source: label(source),
        channel: label(channel),
        campaign: label(campaign),
    };
    for lead in leads.iter().filter(|l| !l.is_test) {
        let row = rows
            .entry(key(&lead.source, lead.channel.as_str(), &lead.campaign))
            .or_default();
        if let Some(cpl) = fixed_cpl_micros.get(&lead.source) {
            row.spend_micros += cpl;
        }
        if lead.direction == Direction::Outbound {
            row.outbound_leads += 1;
            continue;
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
        if let Some(contacted) = lead.sales.first_contacted_at {
            let minutes = (contacted - lead.created_at).num_minutes().max(0) as u64;
            row.ttft_minutes.push(minutes);
        }
    }
    for t in touches
        .iter()
        .filter(|t| !t.is_test && t.direction == Direction::Inbound)
    {
        let row = rows
            .entry(key(&t.source, t.channel.as_str(), &t.campaign))
            .or_default();
        row.submissions += 1;
        match t.kind {
            TouchKind::ReferralReceived => row.referrals += 1,
            TouchKind::Review => {
                row.reviews += 1;
                if let Some(r) = t
                    .custom
                    .get("rating")
                    .and_then(|r| r.parse::<u64>().ok())
                    .filter(|r| (1..=5).contains(r))
                {
                    row.rating_sum += r;
                    row.rated += 1;
                }
            }
            _ => {}
        }
    }
    for s in spend {
        rows.entry(key(&s.source, &s.channel, &s.campaign))
            .or_default()
            .spend_micros += s.amount_micros;
    }
    for row in rows.values_mut() {
        row.cpl_leads = row.new_leads
            + if row.spend_micros > 0 {
                row.outbound_leads
            } else {
                0
            };
    }
    rows
}

crate::named_enum! {
    /// How `GET /metrics` groups rows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum GroupBy {
        Day = "day",
        Source = "source",
        Channel = "channel",
        Campaign = "campaign",
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
    pub spend: f64,
    pub cpl: Option<f64>,
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
    let spend = c.spend_micros as f64 / 1_000_000.0;
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
        spend: (spend * 100.0).round() / 100.0,
        cpl: (c.cpl_leads > 0).then(|| (spend / c.cpl_leads as f64 * 100.0).round() / 100.0),
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
            spend_micros: spend,
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
