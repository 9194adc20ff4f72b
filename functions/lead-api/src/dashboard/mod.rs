//! `GET /dashboard`: the page a marketer opens every morning. One self-contained HTML document
//! (inline CSS and SVG, no scripts, nothing loaded from anywhere) with a range form and presets,
//! channel/source/campaign filters, daily trends (new leads, MQLs, cost per lead), the leads to
//! call now, a sortable campaign table and the review aggregates per platform.
//!
//! Reads, run concurrently: the range's rollups (`Store::rollups_between`: one Query per
//! calendar month), every platform's review aggregate (`Store::review_aggregates`: one
//! BatchGetItem) and the call list (`Store::call_list`, the last
//! [`CALL_LIST_DAYS`] days of the day index, filtered on the server). Names and contact details
//! appear only for a key that may read leads (`read`); the dashboard-only key of a `?key=` link
//! sees the list without them.
//!
//! - `params`: the query (range, filters, sort) and the page's links;
//! - `view`: what is shown, computed from what was read (pure);
//! - `html`, `svg`: the document and its charts.

mod html;
mod params;
mod svg;
mod view;

pub use html::{esc, render, Page};
pub use params::{Dir, Filter, Params, SortKey};
pub use view::{build, View};

use leadflow::edge::{text_response, AppError, InboundRequest, Response, Scope};

use crate::ApiState;

/// The call list covers leads that arrived today and the 13 days before (reporting days).
pub const CALL_LIST_DAYS: u32 = 14;

pub async fn get(state: &ApiState, req: &InboundRequest) -> Result<Response, AppError> {
    let now = req.received_at;
    let zone = state.store.report_zone();
    let params = Params::parse(req, zone.day(now))?;
    let with_contact = state.keys.current(false).await.grants(req, Scope::Read);
    let store = &state.store;
    let (rows, reviews, calls) = tokio::try_join!(
        store.rollups_between(&params.days),
        store.review_aggregates(),
        store.call_list(now, CALL_LIST_DAYS, with_contact),
    )?;
    let view = build(&params, &rows, &reviews, &calls);
    let html = render(&Page {
        params: &params,
        view: &view,
        with_contact,
        now,
        zone,
        call_days: CALL_LIST_DAYS,
    });
    let mut resp = text_response(200, "text/html; charset=utf-8", html);
    let headers = [
        // Nothing on the page may load from elsewhere, run, or be framed; the form submits
        // to this page only.
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        // The page may hold personal data, and its URL a key.
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ];
    for (name, value) in headers {
        resp.headers
            .insert(name, http::HeaderValue::from_static(value));
    }
    Ok(resp)
}
