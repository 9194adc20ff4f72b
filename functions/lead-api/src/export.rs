//! `GET /leads/export?from=&to=&stage=&temperature=&limit=&cursor=`: the leads as CSV, one page
//! per request (docs/api.md, "Export").
//!
//! Page per request, not a file in a bucket: an HTTP API answer cannot stream and Lambda caps
//! it at 6 MB, so each answer is a complete CSV document (header row included) of at most
//! `limit` leads and [`MAX_PAGE_BYTES`], with the next page's cursor in `X-Next-Cursor` and a
//! `Link: <...>; rel="next"` header; the last page has neither. A script of a few lines
//! fetches any size, no bucket, presigned URL or cleanup job is needed, and the key's `read`
//! scope is the only access there is to it.
//!
//! Cells: UTF-8, RFC 4180 (`csv` quotes fields holding a comma, a quote, CR or LF, and doubles
//! embedded quotes; lines end in CRLF), [`COLUMNS`] in a fixed order. A cell a spreadsheet would
//! run as a formula (first character `=`, `+`, `-`, `@`, tab or carriage return) gets a leading
//! `'`, as OWASP's "CSV Injection" page recommends: E.164 phone numbers (`+1...`) are
//! exported as `'+1...`.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, LINK};
use leadflow::edge::{text_response, AppError, InboundRequest, Response};
use leadflow::model::{Lead, Stage, Temperature};
use leadflow::report_zone::ReportZone;
use leadflow::store::{ts, ExportFilter, ExportPosition};
use leadflow::telemetry::Metrics;

use crate::reports::date;
use crate::ApiState;

/// The columns of every export, in order. Adding one appends it; none is renamed or moved.
pub const COLUMNS: [&str; 28] = [
    "lead_id",
    "created_at",
    "updated_at",
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "country",
    "stage",
    "temperature",
    "score",
    "source",
    "channel",
    "campaign",
    "touch_count",
    "first_touch_at",
    "first_touch_provider",
    "last_touch_at",
    "last_touch_provider",
    "marketing_opt_in",
    "do_not_contact",
    "is_test",
    "won_value",
    "lost_reason",
    "custom",
];

/// Leads per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 5000;

/// A page's body, measured as it travels: inside the JSON answer Lambda returns, where `"`,
/// `\` and control characters take more bytes. Lambda's limit is 6 MB (6,291,456 bytes) for the
/// whole answer, headers and envelope included.
pub const MAX_PAGE_BYTES: usize = 5_000_000;

/// Scan requests (up to 500 items or 1 MB read each) one page may make: a narrow filter over a
/// large table gives short (even empty) pages with a cursor rather than an answer that times out.
pub const MAX_SCANS_PER_PAGE: usize = 60;

/// Time kept back from the invocation's deadline to answer, and the budget without one.
const DEADLINE_RESERVE: Duration = Duration::from_secs(3);
const DEFAULT_BUDGET: Duration = Duration::from_secs(20);

/// What a request asks for, read from its query.
#[derive(Debug)]
struct ExportQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    stage: Option<Stage>,
    temperature: Option<Temperature>,
    limit: usize,
    cursor: Option<ExportPosition>,
}

impl ExportQuery {
    fn read(req: &InboundRequest) -> Result<ExportQuery, AppError> {
        let q = |name: &str| {
            req.query
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let from = q("from").map(|v| date("from", Some(v))).transpose()?;
        let to = q("to").map(|v| date("to", Some(v))).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(AppError::unprocessable(
                    "invalid_range",
                    "from",
                    "from is after to",
                ));
            }
        }
        let stage = q("stage")
            .map(|v| {
                Stage::parse(v).ok_or_else(|| {
                    AppError::unprocessable(
                        "invalid_value",
                        "stage",
                        format!(
                            "stage must be one of {}",
                            names(Stage::ALL.map(Stage::as_str))
                        ),
                    )
                })
            })
            .transpose()?;
        let temperature = q("temperature")
            .map(|v| {
                Temperature::parse(v).ok_or_else(|| {
                    AppError::unprocessable(
                        "invalid_value",
                        "temperature",
                        format!(
                            "temperature must be one of {}",
                            names(Temperature::ALL.map(Temperature::as_str))
                        ),
                    )
                })
            })
            .transpose()?;
        let limit = match q("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "invalid_value",
                        "limit",
                        format!("limit must be a number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let cursor = q("cursor")
            .map(|v| {
                ExportPosition::from_token(v).ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_cursor",
                        "cursor",
                        "cursor is not one this API gave (use the X-Next-Cursor or Link of the previous page)",
                    )
                })
            })
            .transpose()?;
        Ok(ExportQuery {
            from,
            to,
            stage,
            temperature,
            limit,
            cursor,
        })
    }

    /// Days are reporting days (local dates in `zone`) and both ends inclusive, as in
    /// `GET /metrics`.
    fn filter(&self, zone: &ReportZone) -> ExportFilter {
        ExportFilter {
            created_from: self.from.map(|d| zone.day_start(d)),
            created_before: self
                .to
                .and_then(|d| d.succ_opt())
                .map(|d| zone.day_start(d)),
            stage: self.stage,
            temperature: self.temperature,
        }
    }

    /// The query of the page after this one: the same filters, the next cursor.
    fn next_query(&self, cursor: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(f) = self.from {
            q.append_pair("from", &f.to_string());
        }
        if let Some(t) = self.to {
            q.append_pair("to", &t.to_string());
        }
        if let Some(s) = self.stage {
            q.append_pair("stage", s.as_str());
        }
        if let Some(t) = self.temperature {
            q.append_pair("temperature", t.as_str());
        }
        if self.limit != DEFAULT_LIMIT {
            q.append_pair("limit", &self.limit.to_string());
        }
        q.append_pair("cursor", cursor);
        q.finish()
    }
}

fn names<const N: usize>(all: [&str; N]) -> String {
    all.join(", ")
}

/// `GET /leads/export`.
pub async fn get(
    state: &ApiState,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    let query = ExportQuery::read(req)?;
    let filter = query.filter(state.store.report_zone());
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    let budget =
        leadflow::lambda_time::budget(req.deadline_ms, now_ms, DEADLINE_RESERVE, DEFAULT_BUDGET);
    let until = std::time::Instant::now() + budget;

    let mut body = csv_line(&COLUMNS.map(str::to_string));
    let mut size = escaped_len(body.as_bytes());
    let mut rows = 0usize;
    let mut scans = 0usize;
    let mut position = query.cursor.clone();
    // `Some` while there is more to read: where the next page starts.
    let mut next = None;
    'pages: loop {
        let page = state
            .store
            // Never more leads than the page still takes: a page ends on DynamoDB's own
            // LastEvaluatedKey unless the byte budget cuts it.
            .export_leads_page(&filter, position.as_ref(), query.limit - rows)
            .await?;
        scans += 1;
        for (lead, after) in page.leads {
            let line = csv_line(&row(&lead));
            let line_size = escaped_len(line.as_bytes());
            if rows == query.limit || (rows > 0 && size + line_size > MAX_PAGE_BYTES) {
                // This lead starts the next page: resume right after the last one written.
                next = position;
                break 'pages;
            }
            body.push_str(&line);
            size += line_size;
            rows += 1;
            position = Some(after);
        }
        match page.next {
            None => break,
            Some(p) => {
                position = Some(p);
                if rows == query.limit
                    || scans == MAX_SCANS_PER_PAGE
                    || std::time::Instant::now() >= until
                {
                    next = position;
                    break;
                }
            }
        }
    }
    metrics.count("exported_rows", rows as f64);
    metrics.count("export_scans", scans as f64);

    let mut resp = text_response(200, "text/csv; charset=utf-8", body);
    let headers = &mut resp.headers;
    headers.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"leads.csv\""),
    );
    // Personal data: no shared cache keeps it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("x-row-count"),
        HeaderValue::from(rows),
    );
    if let Some(next) = next {
        let token = next.to_token();
        let base = req.url.split('?').next().unwrap_or_default();
        let link = format!("<{base}?{}>; rel=\"next\"", query.next_query(&token));
        // The token is URL-safe base64 and the link is built from the request's own URL:
        // both are valid header values; a URL that is not (it cannot be) only loses the Link.
        if let Ok(v) = HeaderValue::from_str(&token) {
            headers.insert(HeaderName::from_static("x-next-cursor"), v);
        }
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(LINK, v);
        }
    }
    Ok(resp)
}

/// One lead's cells, in [`COLUMNS`] order.
fn row(lead: &Lead) -> [String; COLUMNS.len()] {
    let c = &lead.contact;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let time = |t: DateTime<Utc>| ts(t);
    [
        lead.lead_id.clone(),
        time(lead.created_at),
        time(lead.updated_at),
        text(&c.email),
        text(&c.phone),
        text(&c.first_name),
        text(&c.last_name),
        text(&c.full_name),
        text(&c.company),
        text(&c.job_title),
        text(&c.country),
        lead.stage.as_str().to_string(),
        lead.temperature
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        lead.score.map(|s| s.to_string()).unwrap_or_default(),
        lead.source.clone(),
        lead.channel.as_str().to_string(),
        lead.campaign.clone(),
        lead.touch_count.to_string(),
        time(lead.first_touch.at),
        lead.first_touch.provider.clone(),
        time(lead.last_touch.at),
        lead.last_touch.provider.clone(),
        match &lead.consent {
            Some(c) if c.marketing_opt_in => "yes".to_string(),
            Some(_) => "no".to_string(),
            None => String::new(),
        },
        lead.sales.do_not_contact.join(";"),
        lead.is_test.to_string(),
        lead.sales
            .won_value
            .map(|v| v.to_string())
            .unwrap_or_default(),
        text(&lead.sales.lost_reason),
        if lead.custom.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&lead.custom).unwrap_or_default()
        },
    ]
}

/// OWASP's CSV injection rule: a cell starting with `=`, `+`, `-`, `@`, tab or carriage return
/// gets a leading `'`, so a spreadsheet shows it as text instead of running it.
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// One CSV record, neutralized, quoted as RFC 4180 asks, ending in CRLF.
pub fn csv_line(cells: &[String]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::with_capacity(256));
    // Writing to a Vec cannot fail; a record is written whole or not at all.
    let _ = w.write_record(cells.iter().map(|c| neutralize(c).into_owned()));
    let bytes = w.into_inner().unwrap_or_default();
    // csv writes the UTF-8 of Rust strings and ASCII punctuation: always valid UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The size of `bytes` once escaped into a JSON string (serde_json's escapes).
fn escaped_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cells: &[&str]) -> String {
        csv_line(&cells.iter().map(|c| c.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn cells_are_quoted_as_rfc_4180_asks() {
        assert_eq!(line(&["plain", "Ada"]), "plain,Ada\r\n");
        assert_eq!(line(&["a,b", "x"]), "\"a,b\",x\r\n");
        // Embedded quotes doubled, the cell quoted.
        assert_eq!(line(&[r#"say "hi""#]), "\"say \"\"hi\"\"\"\r\n");
        // Embedded newlines and carriage returns stay inside one quoted cell.
        assert_eq!(
            line(&["two\nlines", "cr\rhere"]),
            "\"two\nlines\",\"cr\rhere\"\r\n"
        );
        assert_eq!(line(&["", "é ü 名前"]), ",é ü 名前\r\n");
    }

    #[test]
    fn formula_cells_are_neutralized() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+14155550132", "'+14155550132"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\r=1", "'\r=1"),
            ("Ada = 1", "Ada = 1"),
            ("'quoted", "'quoted"),
            ("", ""),
        ] {
            assert_eq!(neutralize(cell), want, "{cell:?}");
        }
        // Neutralized and quoted: the `'` inside the quotes.
        assert_eq!(
            line(&["=1+1", "\r=cmd|' /C calc'!A0"]),
            "'=1+1,\"'\r=cmd|' /C calc'!A0\"\r\n"
        );
    }

    #[test]
    fn the_escaped_size_counts_json_escapes() {
        assert_eq!(escaped_len(b"abc"), 3);
        assert_eq!(escaped_len(b"\"a\"\r\n"), 9);
        assert_eq!(escaped_len(&[0x01]), 6);
        let body = "a,\"b\"\r\n\u{1}é";
        assert_eq!(
            escaped_len(body.as_bytes()),
            serde_json::to_string(body).unwrap().len() - 2
        );
    }
}
