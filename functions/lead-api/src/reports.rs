//! Spend in, metrics out.

use chrono::{Duration, NaiveDate, Utc};
use leadflow::edge::{json_response, AppError, InboundRequest, Response};
use leadflow::limits::label;
use leadflow::metrics::{
    aggregate, currency, lead_velocity, parse_amount_micros, to_row, GroupBy, GroupKey,
    RollupCounts, SpendEntry,
};
use leadflow::model::Channel;
use serde::Deserialize;
use serde_json::json;

use crate::ApiState;

/// The longest range `GET /metrics` and the dashboard report on.
pub const MAX_DAYS: i64 = 400;

#[derive(Deserialize)]
struct SpendBody {
    date: Option<String>,
    source: Option<String>,
    channel: Option<String>,
    campaign: Option<String>,
    /// A JSON number or a decimal string; parsed as decimal text, never as a float.
    amount: Option<serde_json::Value>,
    currency: Option<String>,
}

pub(crate) fn date(field: &str, v: Option<&str>) -> Result<NaiveDate, AppError> {
    let v = v.ok_or_else(|| {
        AppError::unprocessable(
            "missing_field",
            field,
            format!("{field} is required (YYYY-MM-DD)"),
        )
    })?;
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        AppError::unprocessable(
            "invalid_value",
            field,
            format!("{field} must be YYYY-MM-DD"),
        )
    })
}

/// `POST /spend`: one day's spend for a source, campaign and currency; posting it again
/// replaces it (another currency is another entry: currencies are never added together).
pub async fn post_spend(state: &ApiState, req: &InboundRequest) -> Result<Response, AppError> {
    let b: SpendBody = serde_json::from_slice(&req.body).map_err(|e| {
        AppError::bad_request(
            "invalid_json",
            "body",
            format!("body is not a valid spend entry: {e}"),
        )
    })?;
    let day = date("date", b.date.as_deref())?;
    let source = b
        .source
        .map(|s| label(&s.to_lowercase()))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::unprocessable("missing_field", "source", "source is required"))?;
    let channel = match b.channel.as_deref() {
        None => "other".to_string(),
        Some(c) => Channel::parse(c)
            .ok_or_else(|| {
                AppError::unprocessable(
                    "invalid_value",
                    "channel",
                    format!("unknown channel {c:?}"),
                )
            })?
            .as_str()
            .to_string(),
    };
    let invalid_amount =
        |why: String| AppError::unprocessable("invalid_value", "amount", format!("amount {why}"));
    let amount_micros = match &b.amount {
        Some(serde_json::Value::Number(n)) => parse_amount_micros(&n.to_string()),
        Some(serde_json::Value::String(s)) => parse_amount_micros(s),
        Some(_) => Err("must be a number".to_string()),
        None => Err("is required".to_string()),
    }
    .map_err(invalid_amount)?;
    let currency = currency(b.currency.as_deref().unwrap_or("USD")).ok_or_else(|| {
        AppError::unprocessable(
            "invalid_value",
            "currency",
            "currency must be an ISO 4217 code (three letters)",
        )
    })?;
    let earliest = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
    if day < earliest || day > state.store.report_zone().day(Utc::now()) + Duration::days(1) {
        return Err(AppError::unprocessable(
            "invalid_value",
            "date",
            "date must be between 2000-01-01 and tomorrow",
        ));
    }
    let entry = SpendEntry {
        day: day.to_string(),
        source,
        channel,
        // The same bounded labels ingest gives leads, so spend joins their rollup rows.
        campaign: b
            .campaign
            .map(|c| label(&c))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "(none)".into()),
        amount_micros,
        currency,
    };
    state.store.put_spend(&entry, Utc::now()).await?;
    Ok(json_response(
        200,
        &json!({"status": "stored", "spend": entry}),
    ))
}

/// The requested range of reporting days (default: the last 30 days, today being the local
/// date in the store's zone at the request's time) as `YYYY-MM-DD` strings.
pub fn day_range(state: &ApiState, req: &InboundRequest) -> Result<Vec<String>, AppError> {
    days_between(
        req.query.get("from").map(String::as_str),
        req.query.get("to").map(String::as_str),
        state.store.report_zone().day(req.received_at),
    )
}

/// The days from `from` to `to` inclusive (`to` defaults to `today`, `from` to 29 days before
/// `to`), at most [`MAX_DAYS`].
pub fn days_between(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<Vec<String>, AppError> {
    let to = match to {
        Some(v) => date("to", Some(v))?,
        None => today,
    };
    let from = match from {
        Some(v) => date("from", Some(v))?,
        None => to - Duration::days(29),
    };
    if from > to {
        return Err(AppError::unprocessable(
            "invalid_range",
            "from",
            "from is after to",
        ));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(AppError::unprocessable(
            "invalid_range",
            "from",
            format!("a range covers at most {MAX_DAYS} days"),
        ));
    }
    Ok(from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|d| d.to_string())
        .collect())
}

pub async fn rollups(
    state: &ApiState,
    req: &InboundRequest,
) -> Result<(Vec<String>, Vec<(GroupKey, RollupCounts)>), AppError> {
    let days = day_range(state, req)?;
    let rows = state.store.rollups_between(&days).await?;
    Ok((days, rows))
}

/// `GET /metrics?from=&to=&group_by=day|source|channel|campaign`.
pub async fn get_metrics(state: &ApiState, req: &InboundRequest) -> Result<Response, AppError> {
    let by_name = req
        .query
        .get("group_by")
        .map(String::as_str)
        .unwrap_or("day");
    let by = GroupBy::parse(by_name).ok_or_else(|| {
        AppError::unprocessable(
            "invalid_value",
            "group_by",
            "group_by must be day, source, channel or campaign",
        )
    })?;
    let (days, rows) = rollups(state, req).await?;
    let mut total = RollupCounts::default();
    for (_, c) in &rows {
        total.add(c);
    }
    Ok(json_response(
        200,
        &json!({
            "from": days.first(), "to": days.last(), "group_by": by_name,
            "time_zone": state.store.report_zone().name(),
            "conversion_rate": "cohort: customers among the new leads of the period",
            "rows": aggregate(&rows, by),
            "totals": to_row("total".into(), &total),
            "lead_velocity": lead_velocity(&rows),
        }),
    ))
}

/// `GET /reviews/aggregates`: every platform's exact review aggregate (live reviews only:
/// updates move a review between ratings, deletes remove it), 1 BatchGetItem.
pub async fn get_review_aggregates(
    state: &ApiState,
    _req: &InboundRequest,
) -> Result<Response, AppError> {
    let aggregates = state.store.review_aggregates().await?;
    let platforms: Vec<_> = aggregates
        .iter()
        .map(|a| {
            json!({
                "platform": a.platform.as_str(),
                "count": a.count,
                "average": a.average().map(|x| (x * 10_000.0).round() / 10_000.0),
                "rating_sum": a.rating_sum,
                "distribution": {
                    "1": a.distribution[0], "2": a.distribution[1], "3": a.distribution[2],
                    "4": a.distribution[3], "5": a.distribution[4],
                },
            })
        })
        .collect();
    Ok(json_response(200, &json!({ "platforms": platforms })))
}
