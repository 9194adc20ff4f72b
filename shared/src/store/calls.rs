//! The dashboard's call list: leads that arrived in the last days, are hot or MQL, and that
//! nobody has contacted yet. Read through the day index (gsi1 `LEADS#<day>`, the partition
//! ingest files every lead under), one Query per day, newest first, filtered and projected on
//! the server so only the candidates' few attributes travel. Bounded: at most
//! [`MAX_PAGES_PER_DAY`] pages (1 MB of lead items each) per day, days read a few at a time.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Days, NaiveDate, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::codec::{get_n, get_s, get_time, s, Item};
use super::keys;
use super::{Store, StoreError};
use crate::model::{Channel, Stage, Temperature};

/// Pages read per day at most: 3 MB of lead items, some thousands of leads a day.
pub const MAX_PAGES_PER_DAY: usize = 3;
/// Days queried at once.
const CONCURRENT_DAYS: usize = 7;

/// A lead to call: what the list shows, personal data only when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CallCandidate {
    pub lead_id: String,
    pub created_at: DateTime<Utc>,
    pub channel: Channel,
    pub source: String,
    pub campaign: String,
    pub stage: Stage,
    pub temperature: Option<Temperature>,
    pub score: Option<u32>,
    /// The predictive score, once a model is in force (rescore writes it).
    pub predicted_conversion: Option<f64>,
    /// Name, address, number, company: read only for a caller that may see them.
    pub contact: Option<CallContact>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallContact {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
}

/// The candidates of the days read, and whether a day had more than its page budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallList {
    pub leads: Vec<CallCandidate>,
    /// False when some day's index partition was not read to its end.
    pub complete: bool,
}

/// Attributes every candidate needs.
const BASE: [&str; 10] = [
    "lead_id",
    "created_at",
    "channel",
    "source",
    "campaign",
    "stage",
    "temperature",
    "score",
    "predicted_conversion",
    "is_test",
];
/// Personal attributes, projected only for a caller that may read leads.
const CONTACT: [&str; 6] = [
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
];
/// Attributes only the filter reads.
const FILTERED: [&str; 4] = ["first_contacted_at", "lost_at", "do_not_contact", "erased"];

/// Hot or MQL, still at `lead` or `mql`, never contacted, not lost, not opted out of contact,
/// not erased, not a test.
const FILTER: &str = "#stage IN (:lead, :mql) AND (#temperature = :hot OR #stage = :mql) \
     AND attribute_not_exists(#first_contacted_at) AND attribute_not_exists(#lost_at) \
     AND attribute_not_exists(#do_not_contact) AND attribute_not_exists(#erased) \
     AND (attribute_not_exists(#is_test) OR #is_test = :false)";

impl Store {
    /// Leads to call now: hot or MQL and never contacted, among the leads created on the
    /// `days` reporting days up to `now` (local dates in the store's zone, today included).
    /// One Query per day (more when a day holds over 1 MB of leads, at most
    /// [`MAX_PAGES_PER_DAY`]), newest first. `with_contact` adds the personal attributes to
    /// the projection.
    pub async fn call_list(
        &self,
        now: DateTime<Utc>,
        days: u32,
        with_contact: bool,
    ) -> Result<CallList, StoreError> {
        let today = self.zone.day(now);
        let per_day: Vec<(Vec<Item>, bool)> = stream::iter(
            (0..u64::from(days)).filter_map(|back| today.checked_sub_days(Days::new(back))),
        )
        .map(|day| self.call_candidates_on(day, with_contact))
        .buffered(CONCURRENT_DAYS)
        .try_collect()
        .await?;
        let complete = per_day.iter().all(|(_, done)| *done);
        let leads = per_day
            .iter()
            .flat_map(|(items, _)| items.iter())
            .filter_map(|i| candidate_from(i, with_contact))
            .collect();
        Ok(CallList { leads, complete })
    }

    async fn call_candidates_on(
        &self,
        day: NaiveDate,
        with_contact: bool,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        // Every name is aliased (`source`, `name`... are reserved words); DynamoDB refuses an
        // alias no expression uses, and the filter uses all of BASE's it needs plus FILTERED.
        let contact: &[&str] = if with_contact { &CONTACT } else { &[] };
        let projected: Vec<&str> = BASE.iter().chain(contact).copied().collect();
        let projection = projected
            .iter()
            .map(|n| format!("#{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let names: Vec<&str> = projected.iter().chain(FILTERED.iter()).copied().collect();
        let mut items = Vec::new();
        let mut start = None;
        for _ in 0..MAX_PAGES_PER_DAY {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI1)
                .key_condition_expression("#gsi1pk = :g")
                .filter_expression(FILTER)
                .projection_expression(&projection)
                .scan_index_forward(false)
                .expression_attribute_names("#gsi1pk", keys::GSI1_PK)
                .expression_attribute_values(":g", s(keys::leads_day_pk(day)))
                .expression_attribute_values(":lead", s(Stage::Lead.as_str()))
                .expression_attribute_values(":mql", s(Stage::Mql.as_str()))
                .expression_attribute_values(":hot", s(Temperature::Hot.as_str()))
                .expression_attribute_values(":false", AttributeValue::Bool(false))
                .set_exclusive_start_key(start.take());
            for n in &names {
                q = q.expression_attribute_names(format!("#{n}"), *n);
            }
            let out = q.send().await.map_err(|e| StoreError::sdk("Query", e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok((items, true)),
            }
        }
        Ok((items, false))
    }
}

fn candidate_from(i: &Item, with_contact: bool) -> Option<CallCandidate> {
    let contact = with_contact.then(|| {
        let first_last = [get_s(i, "first_name"), get_s(i, "last_name")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        CallContact {
            name: get_s(i, "full_name").or((!first_last.is_empty()).then_some(first_last)),
            email: get_s(i, "email"),
            phone: get_s(i, "phone"),
            company: get_s(i, "company"),
        }
    });
    Some(CallCandidate {
        lead_id: get_s(i, "lead_id")?,
        created_at: get_time(i, "created_at")?,
        channel: get_s(i, "channel")
            .and_then(|c| Channel::parse(&c))
            .unwrap_or(Channel::Other),
        source: get_s(i, "source").unwrap_or_default(),
        campaign: get_s(i, "campaign").unwrap_or_default(),
        stage: get_s(i, "stage")
            .and_then(|s| Stage::parse(&s))
            .unwrap_or(Stage::Lead),
        temperature: get_s(i, "temperature").and_then(|t| Temperature::parse(&t)),
        score: get_n(i, "score"),
        predicted_conversion: get_n(i, "predicted_conversion"),
        contact,
    })
}
