//! Spend in, metrics out.

use chrono::{Duration, NaiveDate, Utc};
use leadflow::edge::{json_response, AppError, InboundRequest, Response};
use leadflow::limits::label;
use leadflow::metrics::{
    aggregate, lead_velocity, to_row, GroupBy, GroupKey, RollupCounts, SpendEntry,
};
use leadflow::model::Channel;
use serde::Deserialize;
use serde_json::json;

use crate::ApiState;

const MAX_DAYS: i64 = 400;

#[derive(Deserialize)]
struct SpendBody {
    date: Option<String>,
    source: Option<String>,
    channel: Option<String>,
    campaign: Option<String>,
    amount: Option<f64>,
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

/// `POST /spend`: one day's spend for a source and campaign; posting it again replaces it.
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
    let amount = b
        .amount
        .filter(|a| a.is_finite() && *a >= 0.0)
        .ok_or_else(|| {
            AppError::unprocessable(
                "invalid_value",
                "amount",
                "amount must be a non-negative number",
            )
        })?;
    let currency = b.currency.unwrap_or_else(|| "USD".into()).to_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(AppError::unprocessable(
            "invalid_value",
            "currency",
            "currency must be an ISO 4217 code",
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
        amount_micros: (amount * 1_000_000.0).round() as i64,
        currency,
    };
    state.store.put_spend(&entry, Utc::now()).await?;
    Ok(json_response(
        200,
        &json!({"status": "stored", "spend": entry}),
    ))
}

/// The requested day range (default: the last 30 days) as `YYYY-MM-DD` strings.
pub fn day_range(req: &InboundRequest) -> Result<Vec<String>, AppError> {
    let today = Utc::now().date_naive();
    let to = match req.query.get("to") {
        Some(v) => date("to", Some(v))?,
        None => today,
    };
    let from = match req.query.get("from") {
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
    let days = day_range(req)?;
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
            "conversion_rate": "cohort: customers among the new leads of the period",
            "rows": aggregate(&rows, by),
            "totals": to_row("total".into(), &total),
            "lead_velocity": lead_velocity(&rows),
        }),
    ))
}
