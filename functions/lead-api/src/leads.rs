//! Lead routes: read (by id, email or phone), sales events, GDPR erasure.

use chrono::Utc;
use leadflow::edge::{json_response, AppError, InboundRequest, Response};
use leadflow::model::{IdentityKey, Stage};
use leadflow::normalize::{check_email, normalize_phone};
use leadflow::sales::SalesEvent;
use leadflow::store::ts;
use leadflow::store::{
    LeadRecord, SalesEventOutcome, TouchCursor, LEAD_VIEW_TOUCHPOINTS, MAX_TOUCHPOINT_PAGE,
};
use serde_json::{json, Value};

use crate::ApiState;

fn not_found() -> AppError {
    AppError::not_found("lead_not_found", "no lead matches")
}

/// The lead as the API's contract names it (`lead_id`, `email`, `phone`, `score`,
/// `predicted_conversion`, `prediction`, `temperature`, `stage`, `referral_count`, `touchpoints[]`, `reviews[]`, `consent_history[]`).
pub fn lead_json(r: &LeadRecord) -> Value {
    let (lead, touchpoints) = (&r.lead, &r.touchpoints);
    let c = &lead.contact;
    let s = &lead.sales;
    // Each review as it is now: an update shows the new rating, a deleted review is gone.
    let reviews: Vec<Value> = r
        .reviews
        .iter()
        .map(|v| {
            json!({
                "external_id": v.external_id,
                "platform": v.platform,
                "rating": v.rating,
                "at": v.published_at.map(ts),
                "updated_at": v.updated_at.map(ts),
            })
        })
        .collect();
    let mut out = json!({
        "lead_id": lead.lead_id,
        "email": c.email,
        "phone": c.phone.clone().or_else(|| c.phone_raw.clone()),
        "phone_ext": c.phone_ext,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "full_name": c.full_name,
        "company": c.company,
        "job_title": c.job_title,
        "country": c.country,
        "consent": lead.consent.as_ref().map(|k| json!({
            "marketing_opt_in": k.marketing_opt_in, "at": ts(k.at), "text": k.text
        })),
        "score": lead.score,
        "temperature": lead.temperature.map(|t| t.as_str()),
        "stage": lead.stage.as_str(),
        "channel": lead.channel.as_str(),
        "direction": lead.direction.as_str(),
        "source": lead.source,
        "campaign": lead.campaign,
        "is_test": lead.is_test,
        "created_at": ts(lead.created_at),
        "updated_at": ts(lead.updated_at),
        "touch_count": lead.touch_count,
        "referral_count": lead.referral_count,
        "first_touch": lead.first_touch,
        "last_touch": lead.last_touch,
        "sales": {
            "mql_at": s.mql_at.map(ts), "sql_at": s.sql_at.map(ts),
            "customer_at": s.customer_at.map(ts), "first_contacted_at": s.first_contacted_at.map(ts),
            "lost_at": s.lost_at.map(ts), "lost_reason": s.lost_reason, "won_value": s.won_value,
            "do_not_contact": s.do_not_contact,
        },
        "custom": lead.custom,
        "touchpoints": touchpoints.iter().map(|t| json!({
            "touch_id": t.touch_id, "kind": t.kind.as_str(), "provider": t.provider,
            "occurred_at": ts(t.occurred_at), "received_at": ts(t.received_at),
            "channel": t.channel.as_str(), "source": t.source, "campaign": t.campaign,
            "attribution": t.attribution, "custom": t.custom,
            "withdrawn": t.withdrawn_at.is_some(), "withdrawn_at": t.withdrawn_at.map(ts),
        })).collect::<Vec<_>>(),
        // Every opt-in and opt-out as it came, oldest first (GDPR Art. 7(1) evidence).
        // Newest first; `touchpoints_next_cursor` continues with older ones (`?cursor=`).
        "touchpoints_truncated": r.more_touchpoints.is_some(),
        "touchpoints_next_cursor": r.more_touchpoints.as_ref().map(|c| c.encode()),
        "consent_history": r.consents.iter().map(|c| json!({
            "opt_in": c.opt_in, "at": ts(c.at), "source": c.source, "form_id": c.form_id,
            "page": c.page, "text": c.text, "ip_hash": c.ip_hash, "touch_id": c.touch_id,
            "recorded_at": ts(c.recorded_at),
        })).collect::<Vec<_>>(),
        "reviews": reviews,
    });
    // The predictive score beside the rules score (null until a model is trained and applied):
    // P(won) learned from this account's outcomes, with the features behind it.
    out["predicted_conversion"] = json!(r.prediction.as_ref().map(|p| p.predicted_conversion));
    out["prediction"] = json!(r.prediction);
    out
}

/// The touchpoint page a request asks for: `?limit=` (1 to `MAX_TOUCHPOINT_PAGE`, default
/// `LEAD_VIEW_TOUCHPOINTS`) and `?cursor=` (from `touchpoints_next_cursor`).
fn page_of(req: &InboundRequest) -> Result<(usize, Option<TouchCursor>), AppError> {
    let limit = match req.query.get("limit") {
        None => LEAD_VIEW_TOUCHPOINTS,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TOUCHPOINT_PAGE).contains(n))
            .ok_or_else(|| {
                AppError::unprocessable(
                    "invalid_value",
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_TOUCHPOINT_PAGE}"),
                )
            })?,
    };
    let cursor = match req.query.get("cursor") {
        None => None,
        Some(c) => Some(TouchCursor::parse(c).ok_or_else(|| {
            AppError::unprocessable(
                "invalid_cursor",
                "cursor",
                "cursor is not a touchpoints_next_cursor this API gave",
            )
        })?),
    };
    Ok((limit, cursor))
}

/// `GET /leads/{id}`: the lead with one page of touchpoints, newest first (2 round trips
/// whatever the lead's history).
pub async fn get(state: &ApiState, id: &str, req: &InboundRequest) -> Result<Response, AppError> {
    let (limit, cursor) = page_of(req)?;
    match state.store.lead_view(id, limit, cursor.as_ref()).await? {
        Some(r) if !r.lead.sales.erased => Ok(json_response(200, &lead_json(&r))),
        _ => Err(not_found()),
    }
}

/// `?email=` or `?phone=`, matched by the same canonical keys ingest uses.
pub async fn find(state: &ApiState, req: &InboundRequest) -> Result<Response, AppError> {
    // The whole request is checked before the first read: a bad `limit` or `cursor` is 422
    // whether or not someone matches (it was 404 for nobody, 422 for somebody).
    page_of(req)?;
    let key = if let Some(email) = req.query.get("email") {
        let (_, key) = check_email(email, &state.normalize).map_err(|_| {
            AppError::unprocessable("invalid_email", "email", "email is not a valid address")
        })?;
        IdentityKey::Email(key)
    } else if let Some(phone) = req.query.get("phone") {
        let e164 = normalize_phone(phone, &state.normalize).map_err(|_| {
            AppError::unprocessable("invalid_phone", "phone", "phone is not a valid number")
        })?;
        IdentityKey::Phone(e164)
    } else {
        return Err(AppError::bad_request(
            "missing_query",
            "email,phone",
            "give ?email= or ?phone=",
        ));
    };
    let id = state.store.lead_id_for(&key).await?.ok_or_else(not_found)?;
    get(state, &id, req).await
}

pub async fn event(state: &ApiState, id: &str, req: &InboundRequest) -> Result<Response, AppError> {
    let now = Utc::now();
    let event = SalesEvent::from_json(&req.body, now)?;
    let (status, outcome, lead) = match state.store.record_sales_event(id, &event, now).await? {
        SalesEventOutcome::NotFound => return Err(not_found()),
        SalesEventOutcome::Applied(lead) => (201, "applied", lead),
        SalesEventOutcome::Duplicate(lead) => (200, "duplicate", lead),
    };
    // A referred lead that became a customer counts as a converted referral for its referrer
    // (once: the store guards the credit with a marker, so a retried event credits nothing).
    if lead.stage == Stage::Customer {
        state.store.credit_referral_conversion(id, now).await?;
    }
    tracing::info!(
        lead_id = id,
        event = event.kind.as_str(),
        outcome,
        "sales event"
    );
    Ok(json_response(
        status,
        &json!({
            "lead_id": id, "event_id": event.event_id, "status": outcome,
            "stage": lead.stage.as_str(),
        }),
    ))
}

/// `DELETE /leads/{id}`: GDPR erasure. The first call makes the person unfindable at once
/// (markers, contact data, suppression); the rest of the partition is processed a bounded
/// number of items per call (`ERASURE_ITEMS_PER_CALL`). Done: 200 `erased` with the receipt;
/// not yet: 202 `in_progress` with the progress, and the caller repeats the DELETE (idempotent:
/// it continues from the checkpoint) until 200. `GET /leads/{id}/erasure` reads the progress.
pub async fn erase(state: &ApiState, id: &str) -> Result<Response, AppError> {
    let now = Utc::now();
    if state.store.start_erasure(id, now).await?.is_none() {
        return Err(not_found());
    }
    let receipt = state
        .store
        .continue_erasure(id, state.erasure_items_per_call, now)
        .await?;
    tracing::info!(lead_id = id, done = receipt.done(), "lead erasure");
    Ok(erasure_response(id, &receipt))
}

/// `GET /leads/{id}/erasure`: the erasure's progress, or its receipt once done.
pub async fn erasure(state: &ApiState, id: &str) -> Result<Response, AppError> {
    match state.store.erasure_receipt(id).await? {
        Some(r) => Ok(erasure_response(id, &r)),
        None => Err(AppError::not_found(
            "erasure_not_found",
            "no erasure was requested for this lead",
        )),
    }
}

fn erasure_response(id: &str, r: &leadflow::store::ErasureReceipt) -> Response {
    let (status, what) = if r.done() {
        (200, "erased")
    } else {
        (202, "in_progress")
    };
    json_response(
        status,
        &json!({"lead_id": id, "status": what, "receipt": r,
                "poll": format!("/leads/{id}/erasure")}),
    )
}
