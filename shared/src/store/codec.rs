//! Conversions between the model and DynamoDB items. Absent optional fields are absent
//! attributes (never empty strings), which is what lets merges use `if_not_exists`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::keys::ts;
use crate::model::{
    Attribution, Channel, Consent, ConsentRecord, Contact, Direction, Lead, SalesFacts, Stage,
    Temperature, TouchKind, TouchSummary, Touchpoint,
};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn put_opt(item: &mut Item, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        item.insert(name.to_string(), s(v.clone()));
    }
}

pub fn str_map(m: &BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), s(v.clone()))).collect())
}

/// The contact fields as (attribute name, value), present ones only.
pub fn contact_fields(c: &Contact) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            out.push((name, v.clone()));
        }
    };
    push("email", &c.email);
    push("email_key", &c.email_key);
    push("phone", &c.phone);
    push("phone_raw", &c.phone_raw);
    push("phone_ext", &c.phone_ext);
    push("first_name", &c.first_name);
    push("last_name", &c.last_name);
    push("full_name", &c.full_name);
    push("company", &c.company);
    push("job_title", &c.job_title);
    push("country", &c.country);
    out
}

pub fn consent_value(c: &Consent) -> AttributeValue {
    let mut m = HashMap::new();
    m.insert(
        "opt_in".to_string(),
        AttributeValue::Bool(c.marketing_opt_in),
    );
    m.insert("at".to_string(), s(ts(c.at)));
    if let Some(t) = &c.text {
        m.insert("text".to_string(), s(t.clone()));
    }
    if let Some(p) = &c.page {
        m.insert("page".to_string(), s(p.clone()));
    }
    if let Some(h) = &c.ip_hash {
        m.insert("ip_hash".to_string(), s(h.clone()));
    }
    AttributeValue::M(m)
}

pub fn attribution_value(a: &Attribution) -> AttributeValue {
    let mut m = Item::new();
    put_opt(&mut m, "utm_source", &a.utm_source);
    put_opt(&mut m, "utm_medium", &a.utm_medium);
    put_opt(&mut m, "utm_campaign", &a.utm_campaign);
    put_opt(&mut m, "utm_term", &a.utm_term);
    put_opt(&mut m, "utm_content", &a.utm_content);
    put_opt(&mut m, "gclid", &a.gclid);
    put_opt(&mut m, "fbclid", &a.fbclid);
    put_opt(&mut m, "li_fat_id", &a.li_fat_id);
    put_opt(&mut m, "msclkid", &a.msclkid);
    put_opt(&mut m, "landing_page", &a.landing_page);
    put_opt(&mut m, "referrer", &a.referrer);
    put_opt(&mut m, "form_id", &a.form_id);
    put_opt(&mut m, "lead_magnet", &a.lead_magnet);
    AttributeValue::M(m)
}

pub fn touch_summary_value(t: &TouchSummary) -> AttributeValue {
    let mut m = Item::new();
    m.insert("touch_id".into(), s(t.touch_id.clone()));
    m.insert("at".into(), s(ts(t.at)));
    m.insert("kind".into(), s(t.kind.as_str()));
    m.insert("provider".into(), s(t.provider.clone()));
    m.insert("channel".into(), s(t.channel.as_str()));
    m.insert("source".into(), s(t.source.clone()));
    m.insert("campaign".into(), s(t.campaign.clone()));
    put_opt(&mut m, "form_id", &t.form_id);
    put_opt(&mut m, "lead_magnet", &t.lead_magnet);
    AttributeValue::M(m)
}

// ---- reading ----

pub fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

pub fn get_time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    get_s(item, name)
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub fn get_map<'a>(item: &'a Item, name: &str) -> Option<&'a Item> {
    item.get(name).and_then(|v| v.as_m().ok())
}

pub fn get_str_map(item: &Item, name: &str) -> BTreeMap<String, String> {
    get_map(item, name)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                .collect()
        })
        .unwrap_or_default()
}

fn consent_from(item: &Item) -> Option<Consent> {
    let m = get_map(item, "consent")?;
    let mut c = Consent::new(get_bool(m, "opt_in"), get_time(m, "at")?, get_s(m, "text"));
    c.page = get_s(m, "page");
    c.ip_hash = get_s(m, "ip_hash");
    Some(c)
}

/// A consent history item (`CONSENT#<at>#<touch_id>`).
pub fn consent_record_from(item: &Item) -> Option<ConsentRecord> {
    Some(ConsentRecord {
        opt_in: get_bool(item, "opt_in"),
        at: get_time(item, "at")?,
        source: get_s(item, "source").unwrap_or_default(),
        form_id: get_s(item, "form_id"),
        page: get_s(item, "page"),
        text: get_s(item, "text"),
        ip_hash: get_s(item, "ip_hash"),
        touch_id: get_s(item, "touch_id"),
        recorded_at: get_time(item, "recorded_at")?,
    })
}

pub fn attribution_from(m: Option<&Item>) -> Attribution {
    let Some(m) = m else {
        return Attribution::default();
    };
    Attribution {
        utm_source: get_s(m, "utm_source"),
        utm_medium: get_s(m, "utm_medium"),
        utm_campaign: get_s(m, "utm_campaign"),
        utm_term: get_s(m, "utm_term"),
        utm_content: get_s(m, "utm_content"),
        gclid: get_s(m, "gclid"),
        fbclid: get_s(m, "fbclid"),
        li_fat_id: get_s(m, "li_fat_id"),
        msclkid: get_s(m, "msclkid"),
        landing_page: get_s(m, "landing_page"),
        referrer: get_s(m, "referrer"),
        form_id: get_s(m, "form_id"),
        lead_magnet: get_s(m, "lead_magnet"),
    }
}

fn touch_summary_from(m: Option<&Item>) -> Option<TouchSummary> {
    let m = m?;
    Some(TouchSummary {
        touch_id: get_s(m, "touch_id")?,
        at: get_time(m, "at")?,
        kind: get_s(m, "kind").and_then(|k| TouchKind::parse(&k))?,
        provider: get_s(m, "provider").unwrap_or_default(),
        channel: get_s(m, "channel")
            .and_then(|c| Channel::parse(&c))
            .unwrap_or(Channel::Other),
        source: get_s(m, "source").unwrap_or_default(),
        campaign: get_s(m, "campaign").unwrap_or_default(),
        form_id: get_s(m, "form_id"),
        lead_magnet: get_s(m, "lead_magnet"),
    })
}

pub(super) fn direction_from(v: Option<String>) -> Direction {
    match v.as_deref() {
        Some("outbound") => Direction::Outbound,
        _ => Direction::Inbound,
    }
}

/// Reads a lead item; `None` when the item is not a complete lead.
pub fn lead_from(item: &Item) -> Option<Lead> {
    let first_touch = touch_summary_from(get_map(item, "first_touch"))?;
    let last_touch = touch_summary_from(get_map(item, "last_touch")).unwrap_or(first_touch.clone());
    Some(Lead {
        lead_id: get_s(item, "lead_id")?,
        contact: Contact {
            email: get_s(item, "email"),
            email_key: get_s(item, "email_key"),
            phone: get_s(item, "phone"),
            phone_raw: get_s(item, "phone_raw"),
            phone_ext: get_s(item, "phone_ext"),
            first_name: get_s(item, "first_name"),
            last_name: get_s(item, "last_name"),
            full_name: get_s(item, "full_name"),
            company: get_s(item, "company"),
            job_title: get_s(item, "job_title"),
            country: get_s(item, "country"),
        },
        consent: consent_from(item),
        touch_count: get_n(item, "touch_count").unwrap_or(0),
        channel: get_s(item, "channel")
            .and_then(|c| Channel::parse(&c))
            .unwrap_or(first_touch.channel),
        direction: direction_from(get_s(item, "direction")),
        source: get_s(item, "source").unwrap_or_default(),
        campaign: get_s(item, "campaign").unwrap_or_default(),
        custom: get_str_map(item, "custom"),
        is_test: get_bool(item, "is_test"),
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
        stage: get_s(item, "stage")
            .and_then(|s| Stage::parse(&s))
            .unwrap_or(Stage::Lead),
        score: get_n(item, "score"),
        temperature: get_s(item, "temperature").and_then(|t| Temperature::parse(&t)),
        version: get_n(item, "version").unwrap_or(0),
        sales: SalesFacts {
            mql_at: get_time(item, "mql_at"),
            sql_at: get_time(item, "sql_at"),
            customer_at: get_time(item, "customer_at"),
            first_contacted_at: get_time(item, "first_contacted_at"),
            lost_at: get_time(item, "lost_at"),
            lost_reason: get_s(item, "lost_reason"),
            won_value: get_n(item, "won_value"),
            do_not_contact: item
                .get("do_not_contact")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
            erased: get_bool(item, "erased"),
        },
        referral_count: get_n(item, "referral_count").unwrap_or(0),
        first_touch,
        last_touch,
    })
}

pub fn touchpoint_from(item: &Item) -> Option<Touchpoint> {
    Some(Touchpoint {
        touch_id: get_s(item, "touch_id")?,
        lead_id: get_s(item, "lead_id")?,
        kind: get_s(item, "kind").and_then(|k| TouchKind::parse(&k))?,
        provider: get_s(item, "provider").unwrap_or_default(),
        occurred_at: get_time(item, "occurred_at")?,
        received_at: get_time(item, "received_at")?,
        channel: get_s(item, "channel")
            .and_then(|c| Channel::parse(&c))
            .unwrap_or(Channel::Other),
        direction: direction_from(get_s(item, "direction")),
        source: get_s(item, "source").unwrap_or_default(),
        campaign: get_s(item, "campaign").unwrap_or_default(),
        attribution: attribution_from(get_map(item, "attribution")),
        custom: get_str_map(item, "custom"),
        is_test: get_bool(item, "is_test"),
        withdrawn_at: get_time(item, "withdrawn_at"),
    })
}

/// The 1-5 rating a review touchpoint carries in its answers (`rating`), if any.
pub fn review_rating(
    kind: crate::model::TouchKind,
    custom: &std::collections::BTreeMap<String, String>,
) -> Option<u64> {
    (kind == crate::model::TouchKind::Review)
        .then(|| custom.get("rating")?.parse::<u64>().ok())
        .flatten()
        .filter(|r| (1..=5).contains(r))
}
