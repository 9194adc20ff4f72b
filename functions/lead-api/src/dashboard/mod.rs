//! `GET /dashboard`: one self-contained HTML page (inline SVG, no scripts, fonts or requests to
//! anywhere) drawn from the stored rollups: lead volume by channel, the funnel, cost per lead by
//! source, temperature mix and review ratings.

use std::collections::BTreeMap;
use std::fmt::Write;

use leadflow::edge::{text_response, AppError, InboundRequest, Response};
use leadflow::metrics::{aggregate, to_row, GroupBy, GroupKey, RollupCounts};

use crate::reports::rollups;
use crate::ApiState;

const COLORS: [&str; 11] = [
    "#2563eb", "#16a34a", "#f59e0b", "#db2777", "#7c3aed", "#0891b2", "#dc2626", "#65a30d",
    "#ea580c", "#475569", "#a3a3a3",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn get(state: &ApiState, req: &InboundRequest) -> Result<Response, AppError> {
    let (days, rows) = rollups(state, req).await?;
    let html = render(&days, &rows);
    let mut resp = text_response(200, "text/html; charset=utf-8", html);
    // Nothing on the page may load from elsewhere.
    resp.headers.insert(
        "content-security-policy",
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        ),
    );
    resp.headers
        .insert("cache-control", http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The page for the given days and their rollup rows.
pub fn render(days: &[String], rows: &[(GroupKey, RollupCounts)]) -> String {
    let mut total = RollupCounts::default();
    for (_, c) in rows {
        total.add(c);
    }
    let t = to_row("total".into(), &total);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>leadflow dashboard</title>\
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#111}}h1{{font-size:20px}}\
section{{margin:18px 0}}h2{{font-size:15px;margin:4px 0}}.kpi{{display:inline-block;margin-right:28px}}\
.kpi b{{display:block;font-size:22px}}svg text{{font-size:11px}}</style></head><body>\
<h1>Leads {} to {}</h1><div id=\"kpis\">",
        esc(days.first().map(String::as_str).unwrap_or("")),
        esc(days.last().map(String::as_str).unwrap_or(""))
    );
    let pct = |x: Option<f64>| {
        x.map(|v| format!("{:.1}%", v * 100.0))
            .unwrap_or_else(|| "n/a".into())
    };
    for (label, value) in [
        ("new leads", t.new_leads.to_string()),
        ("submissions", t.submissions.to_string()),
        ("conversion (cohort)", pct(t.conversion_rate)),
        ("MQL to SQL", pct(t.mql_to_sql_rate)),
        ("spend", format!("{:.2}", t.spend)),
        (
            "cost per lead",
            t.cpl
                .map(|c| format!("{c:.2}"))
                .unwrap_or_else(|| "n/a".into()),
        ),
        (
            "avg score",
            t.avg_score
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "n/a".into()),
        ),
        (
            "first touch P50",
            t.ttft_p50_minutes
                .map(|m| format!("{m} min"))
                .unwrap_or_else(|| "n/a".into()),
        ),
    ] {
        let _ = write!(
            page,
            "<div class=\"kpi\">{}<b>{}</b></div>",
            esc(label),
            esc(&value)
        );
    }
    page.push_str("</div>");
    page.push_str(&volume_chart(days, rows));
    page.push_str(&count_bars(
        "funnel",
        "Funnel: lead, MQL, SQL, customer",
        &[
            ("leads", t.new_leads),
            ("MQL", t.mqls),
            ("SQL", t.sqls),
            ("customers", t.customers),
        ],
    ));
    let cpl: Vec<(String, f64)> = aggregate(rows, GroupBy::Source)
        .into_iter()
        .filter_map(|r| r.cpl.map(|c| (r.key, c)))
        .collect();
    page.push_str(&hbars("cpl", "Cost per lead by source", &cpl, |v| {
        format!("{v:.2}")
    }));
    page.push_str(&count_bars(
        "temperature",
        "Temperature mix",
        &[("hot", t.hot), ("warm", t.warm), ("cold", t.cold)],
    ));
    let ratings: Vec<(String, f64)> = aggregate(rows, GroupBy::Source)
        .into_iter()
        .filter_map(|r| {
            r.avg_rating
                .map(|a| (format!("{} ({} reviews)", r.key, r.reviews), a))
        })
        .collect();
    page.push_str(&hbars(
        "ratings",
        "Review ratings (average, 1-5)",
        &ratings,
        |v| format!("{v:.2}"),
    ));
    page.push_str("</body></html>");
    page
}

/// Stacked bars: new leads per day, one colour per channel.
fn volume_chart(days: &[String], rows: &[(GroupKey, RollupCounts)]) -> String {
    let mut per_day: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut channels: BTreeMap<&str, u64> = BTreeMap::new();
    for (k, c) in rows.iter().filter(|(_, c)| c.new_leads > 0) {
        *per_day
            .entry(&k.day)
            .or_default()
            .entry(&k.channel)
            .or_default() += c.new_leads;
        *channels.entry(&k.channel).or_default() += c.new_leads;
    }
    let max = per_day
        .values()
        .map(|m| m.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h, left, bottom) = (760.0, 200.0, 30.0, 20.0);
    let bw = (w - left) / days.len().max(1) as f64;
    let color = |ch: &str| {
        let i = channels.keys().position(|c| *c == ch).unwrap_or(0);
        COLORS[i % COLORS.len()]
    };
    let mut svg = format!(
        "<section id=\"volume\"><h2>Lead volume by channel</h2><svg role=\"img\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">",
        h + bottom + 20.0,
        h + bottom + 20.0
    );
    let _ = write!(svg, "<text x=\"0\" y=\"12\">{max}</text>");
    for (i, day) in days.iter().enumerate() {
        let x = left + i as f64 * bw;
        let mut y = h;
        if let Some(m) = per_day.get(day.as_str()) {
            for (ch, n) in m {
                let bh = *n as f64 / max as f64 * (h - 10.0);
                y -= bh;
                let _ = write!(
                    svg,
                    "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {n}</title></rect>",
                    (bw - 1.0).max(1.0),
                    color(ch),
                    esc(day),
                    esc(ch)
                );
            }
        }
        if i % 7 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\">{}</text>",
                h + 14.0,
                esc(day.get(5..).unwrap_or(day))
            );
        }
    }
    let mut lx = left;
    for ch in channels.keys() {
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{}</text>",
            h + bottom + 6.0,
            color(ch),
            lx + 13.0,
            h + bottom + 15.0,
            esc(ch)
        );
        lx += 20.0 + 7.0 * ch.len() as f64;
    }
    svg.push_str("</svg></section>");
    svg
}

/// Horizontal bars with labels and values.
/// [`hbars`] for whole counts under fixed labels.
fn count_bars(id: &str, title: &str, counts: &[(&str, u64)]) -> String {
    let items: Vec<(String, f64)> = counts
        .iter()
        .map(|(label, n)| (label.to_string(), *n as f64))
        .collect();
    hbars(id, title, &items, |v| format!("{v:.0}"))
}

fn hbars(id: &str, title: &str, items: &[(String, f64)], fmt: impl Fn(f64) -> String) -> String {
    let max = items
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let (label_w, bar_w, row_h) = (200.0, 480.0, 22.0);
    let height = (items.len().max(1) as f64) * row_h + 6.0;
    let mut svg = format!(
        "<section id=\"{id}\"><h2>{}</h2><svg role=\"img\" width=\"760\" height=\"{height}\">",
        esc(title)
    );
    if items.is_empty() {
        svg.push_str("<text x=\"0\" y=\"14\">no data in this period</text>");
    }
    for (i, (label, v)) in items.iter().enumerate() {
        let y = i as f64 * row_h + 3.0;
        let bw = (v / max * bar_w).max(if *v > 0.0 { 1.0 } else { 0.0 });
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect class=\"bar\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 13.0,
            esc(label),
            row_h - 6.0,
            COLORS[i % COLORS.len()],
            label_w + bw + 6.0,
            y + 13.0,
            esc(&fmt(*v))
        );
    }
    svg.push_str("</svg></section>");
    svg
}
