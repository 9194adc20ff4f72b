//! The page: one HTML document with its CSS inline, no scripts and nothing loaded from
//! anywhere. Every text that comes from data (sources, campaigns, names, addresses) is escaped
//! by [`esc`] and isolated with `<bdi>` (a right-to-left override in a campaign name cannot
//! reorder the text around it); long values wrap instead of widening the page. The layout is
//! one column on a phone and a grid on a desktop; tables turn into label/value cards below
//! 700 px, so nothing scrolls sideways at 390 px.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use leadflow::model::{Channel, Temperature};
use leadflow::report_zone::ReportZone;

use super::params::{Dir, Params, SortKey};
use super::svg::{rating_bars, trend_chart};
use super::view::{minutes, waited, View, MAX_CALLS};

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A data value as element content: escaped, direction-isolated, `(none)` when empty.
fn lbl(s: &str) -> String {
    if s.is_empty() {
        "<bdi class=\"none\">(none)</bdi>".into()
    } else {
        format!("<bdi>{}</bdi>", esc(s))
    }
}

/// Option text cannot hold `<bdi>`: direction controls are left out of what it shows (the
/// value keeps them, so the filter still matches).
fn option_text(s: &str) -> String {
    let shown: String = s
        .chars()
        .filter(|c| !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .collect();
    esc(if shown.is_empty() { "(none)" } else { &shown })
}

/// 12345 -> "12,345".
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 1234.5 -> "1,234.50".
pub fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", int(cents / 100), cents % 100)
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0))
}

const CSS: &str = "\
*{box-sizing:border-box}\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#111827;background:#f3f4f6}\
main{max-width:1240px;margin:0 auto;padding:12px}\
h1{font-size:20px;margin:6px 0 2px}h2{font-size:16px;margin:0 0 8px}h3{font-size:14px;margin:0 0 4px;font-weight:600}\
section{background:#fff;border-radius:10px;padding:12px;margin:12px 0;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:0}\
.note{color:#4b5563;font-size:13px;margin:4px 0}\
bdi,td,th,.wrap{overflow-wrap:anywhere;word-break:break-word}\
.none{color:#9ca3af}\
form{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(150px,100%),1fr));gap:8px;align-items:end}\
label{display:flex;flex-direction:column;font-size:13px;color:#374151;min-width:0}\
input,select,button{font:inherit;padding:6px;width:100%;min-width:0;max-width:100%;border:1px solid #d1d5db;border-radius:6px;background:#fff}\
button{background:#1d4ed8;color:#fff;border-color:#1d4ed8;cursor:pointer}\
.presets{margin:10px 0 0;display:flex;flex-wrap:wrap;gap:6px;align-items:center}\
.presets a{padding:5px 10px;border:1px solid #c7d2fe;border-radius:999px;text-decoration:none;color:#1d4ed8;font-size:14px}\
.presets a[aria-current]{background:#1d4ed8;color:#fff}\
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(140px,100%),1fr));gap:10px}\
.kpi{font-size:13px;color:#4b5563}.kpi b{display:block;font-size:21px;color:#111827;font-variant-numeric:tabular-nums}\
.charts,.platforms{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(320px,100%),1fr));gap:14px}\
svg{display:block;width:100%;height:auto}svg text{font-size:11px;fill:#4b5563}svg.dist text{font-size:13px}\
.nw{white-space:nowrap}\
svg rect.day:hover{fill:rgba(29,78,216,.08)}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}\
th{font-size:13px;color:#374151;white-space:nowrap}th a{color:inherit}\
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.sub{display:block;color:#6b7280;font-size:12px;font-weight:400}\
code{font-size:12px}\
.hot{color:#b91c1c;font-weight:600}.mql{color:#15803d;font-weight:600}\
.sortby{display:none}\
@media (max-width:700px){\
table.cards thead{display:none}\
table.cards tr{display:grid;grid-template-columns:1fr 1fr;column-gap:14px;border-bottom:1px solid #d1d5db;padding:6px 0}\
table.cards td{display:flex;justify-content:space-between;gap:8px;border:0;padding:2px 0;text-align:right;white-space:normal;min-width:0}\
table.cards td:first-child{grid-column:1/-1;display:block;text-align:left;font-weight:600}\
table.cards td:first-child::before{content:none}\
table.cards td.wide{grid-column:1/-1}\
table.cards td::before{content:attr(data-label);color:#6b7280;text-align:left;flex:none}\
.sortby{display:flex;flex-wrap:wrap;gap:4px 10px;font-size:13px;margin:0 0 6px}\
}";

/// What the page is drawn from.
pub struct Page<'a> {
    pub params: &'a Params,
    pub view: &'a View,
    /// The key may read leads: names and contact details in the call list.
    pub with_contact: bool,
    pub now: DateTime<Utc>,
    /// The reporting time zone: the days are its local dates, times show its clock.
    pub zone: &'a ReportZone,
    /// Days the call list covers.
    pub call_days: u32,
}

pub fn render(p: &Page) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>Leads {} to {} · leadflow</title><style>{CSS}</style></head><body><main>\
<h1>Leads <span class=\"nw\">{}</span> to <span class=\"nw\">{}</span></h1><p class=\"note\">{}Generated {} from the daily rollups; days are local dates in {}.</p>",
        esc(p.params.from()),
        esc(p.params.to()),
        esc(p.params.from()),
        esc(p.params.to()),
        filter_summary(p.params),
        esc(&p.zone.minute(p.now)),
        esc(p.zone.name()),
    );
    range_form(&mut h, p);
    kpis(&mut h, p.view);
    trends(&mut h, p);
    calls(&mut h, p);
    campaigns(&mut h, p);
    reviews(&mut h, p.view);
    h.push_str(
        "<p class=\"note\">MQLs and customers count the new leads of each day that have reached \
the stage so far (a cohort), so recent days grow as leads convert. Cost per lead: spend / new \
leads. Today's numbers appear after the next rollup.</p></main></body></html>",
    );
    h
}

fn filter_summary(params: &Params) -> String {
    let f = &params.filter;
    let mut parts = Vec::new();
    if let Some(c) = f.channel {
        parts.push(format!("channel {}", lbl(c.as_str())));
    }
    if let Some(s) = &f.source {
        parts.push(format!("source {}", lbl(s)));
    }
    if let Some(c) = &f.campaign {
        parts.push(format!("campaign {}", lbl(c)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("Only {}. ", parts.join(", "))
    }
}

fn select(h: &mut String, name: &str, title: &str, choices: &[&str], current: Option<&str>) {
    let _ = write!(
        h,
        "<label>{title}<select name=\"{name}\"><option value=\"\">all</option>"
    );
    for c in choices {
        let _ = write!(
            h,
            "<option value=\"{}\"{}>{}</option>",
            esc(c),
            if Some(*c) == current { " selected" } else { "" },
            option_text(c)
        );
    }
    h.push_str("</select></label>");
}

fn range_form(h: &mut String, p: &Page) {
    let params = p.params;
    let _ = write!(
        h,
        "<section id=\"range\"><h2>Range and filters</h2><form method=\"get\" action=\"\">\
<label>From<input type=\"date\" name=\"from\" value=\"{}\" required></label>\
<label>To<input type=\"date\" name=\"to\" value=\"{}\" required></label>",
        esc(params.from()),
        esc(params.to()),
    );
    let channels: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    select(
        h,
        "channel",
        "Channel",
        &channels,
        params.filter.channel.map(|c| c.as_str()),
    );
    let sources: Vec<&str> = p.view.choices.sources.iter().map(String::as_str).collect();
    select(
        h,
        "source",
        "Source",
        &sources,
        params.filter.source.as_deref(),
    );
    let campaigns: Vec<&str> = p
        .view
        .choices
        .campaigns
        .iter()
        .map(String::as_str)
        .collect();
    select(
        h,
        "campaign",
        "Campaign",
        &campaigns,
        params.filter.campaign.as_deref(),
    );
    h.push_str("<label>Campaigns by<select name=\"sort\">");
    for k in SortKey::ALL {
        let _ = write!(
            h,
            "<option value=\"{}\"{}>{}</option>",
            k.as_str(),
            if k == params.sort { " selected" } else { "" },
            column_title(k)
        );
    }
    h.push_str("</select></label><label>Order<select name=\"dir\">");
    for (d, t) in [(Dir::Desc, "largest first"), (Dir::Asc, "smallest first")] {
        let _ = write!(
            h,
            "<option value=\"{}\"{}>{t}</option>",
            d.as_str(),
            if d == params.dir { " selected" } else { "" },
        );
    }
    h.push_str("</select></label>");
    if let Some(key) = &params.key {
        let _ = write!(
            h,
            "<input type=\"hidden\" name=\"key\" value=\"{}\">",
            esc(key)
        );
    }
    h.push_str("<button type=\"submit\">Show</button></form><nav class=\"presets\" aria-label=\"Presets\">");
    for n in [7, 30, 90] {
        let (from, to) = params.last_days(n);
        let current = params.from() == from && params.to() == to;
        let _ = write!(
            h,
            "<a href=\"{}\"{}>Last {n} days</a>",
            esc(&params.href(&[("from", &from), ("to", &to)])),
            if current {
                " aria-current=\"page\""
            } else {
                ""
            }
        );
    }
    if !params.filter.is_empty() {
        let _ = write!(
            h,
            "<a href=\"{}\">Clear filters</a>",
            esc(&params.href(&[("channel", ""), ("source", ""), ("campaign", "")]))
        );
    }
    h.push_str("</nav></section>");
}

fn kpis(h: &mut String, v: &View) {
    let t = &v.totals;
    let or_dash = |x: Option<String>| x.unwrap_or_else(|| "–".into());
    h.push_str("<section id=\"kpis\" class=\"kpis\" aria-label=\"Totals\">");
    for (name, value) in [
        ("New leads", int(t.new_leads)),
        ("MQLs", int(t.mqls)),
        ("SQLs", int(t.sqls)),
        ("Customers", int(t.customers)),
        ("Conversion", pct(t.conversion_rate)),
        ("Spend", money(t.spend)),
        ("Cost per lead", or_dash(t.cpl.map(money))),
        (
            "Average score",
            or_dash(t.avg_score.map(|s| format!("{s:.1}"))),
        ),
        (
            "First touch (median)",
            or_dash(t.ttft_p50_minutes.map(minutes)),
        ),
        (
            "Hot / warm / cold",
            format!("{} / {} / {}", int(t.hot), int(t.warm), int(t.cold)),
        ),
    ] {
        let _ = write!(h, "<div class=\"kpi\">{name}<b>{value}</b></div>");
    }
    h.push_str("</section>");
}

fn trends(h: &mut String, p: &Page) {
    let days: Vec<String> = p.view.trend.iter().map(|d| d.day.clone()).collect();
    let leads: Vec<Option<f64>> = p
        .view
        .trend
        .iter()
        .map(|d| Some(d.new_leads as f64))
        .collect();
    let mqls: Vec<Option<f64>> = p.view.trend.iter().map(|d| Some(d.mqls as f64)).collect();
    let cpl: Vec<Option<f64>> = p.view.trend.iter().map(|d| d.cpl()).collect();
    // Axis labels halve the maximum: 2.5 leads is a label, not a count to round.
    let count = |v: f64| {
        if v.fract() == 0.0 {
            int(v as u64)
        } else {
            format!("{v:.1}")
        }
    };
    let t = &p.view.totals;
    h.push_str("<section id=\"trends\"><h2>Daily trends</h2><div class=\"charts\">");
    for (id, title, total, values, fmt, color) in [
        (
            "trend-leads",
            "New leads",
            int(t.new_leads),
            &leads,
            count as fn(f64) -> String,
            "#1d4ed8",
        ),
        ("trend-mqls", "MQLs", int(t.mqls), &mqls, count, "#15803d"),
        (
            "trend-cpl",
            "Cost per lead",
            t.cpl.map_or_else(|| "–".into(), money),
            &cpl,
            money,
            "#be185d",
        ),
    ] {
        let _ = write!(
            h,
            "<figure style=\"margin:0\"><h3>{title} <span class=\"note\">({} over the range)</span></h3>{}</figure>",
            esc(&total),
            trend_chart(id, &format!("{title} per day"), &days, values, fmt, color)
        );
    }
    h.push_str("</div></section>");
}

fn calls(h: &mut String, p: &Page) {
    let v = p.view;
    let _ = write!(
        h,
        "<section id=\"calls\"><h2>Call these now</h2><p class=\"note\">Hot or MQL leads of the last \
{} days that nobody has contacted yet, hot first, then by score.{}</p>",
        p.call_days,
        if p.with_contact {
            ""
        } else {
            " Names and contact details are shown to keys with the read scope."
        }
    );
    if v.calls.is_empty() {
        h.push_str("<p>Nobody is waiting.</p>");
    } else {
        let with_prediction = v.calls.iter().any(|c| c.predicted_conversion.is_some());
        h.push_str("<table class=\"cards\"><thead><tr><th>Lead</th><th>Status</th><th class=\"n\">Score</th>");
        if with_prediction {
            h.push_str("<th class=\"n\">Predicted conversion</th>");
        }
        h.push_str("<th>Source</th><th class=\"n\">Waiting</th></tr></thead><tbody>");
        for c in &v.calls {
            h.push_str("<tr><td data-label=\"Lead\">");
            match &c.contact {
                Some(contact) => {
                    let _ = write!(
                        h,
                        "<span>{}</span>",
                        contact.name.as_deref().map_or_else(|| lbl(""), lbl)
                    );
                    if let Some(company) = &contact.company {
                        let _ = write!(h, "<span class=\"sub\">{}</span>", lbl(company));
                    }
                    if let Some(phone) = &contact.phone {
                        let _ = write!(
                            h,
                            "<a class=\"sub\" href=\"tel:{}\">{}</a>",
                            esc(phone),
                            lbl(phone)
                        );
                    }
                    if let Some(email) = &contact.email {
                        let _ = write!(
                            h,
                            "<a class=\"sub\" href=\"mailto:{}\">{}</a>",
                            esc(email),
                            lbl(email)
                        );
                    }
                }
                None => {
                    let _ = write!(h, "<code class=\"wrap\">{}</code>", esc(&c.lead_id));
                }
            }
            let status = match c.temperature {
                Some(Temperature::Hot) => "<span class=\"hot\">hot</span>",
                Some(Temperature::Warm) => "warm",
                Some(Temperature::Cold) => "cold",
                None => "unscored",
            };
            let _ = write!(
                h,
                "</td><td data-label=\"Status\">{status}{}</td><td class=\"n\" data-label=\"Score\">{}</td>",
                if c.stage == leadflow::model::Stage::Mql {
                    " · <span class=\"mql\">MQL</span>"
                } else {
                    ""
                },
                c.score.map_or_else(|| "–".into(), |s| s.to_string())
            );
            if with_prediction {
                let _ = write!(
                    h,
                    "<td class=\"n\" data-label=\"Predicted conversion\">{}</td>",
                    pct(c.predicted_conversion)
                );
            }
            let _ = write!(
                h,
                "<td class=\"wide\" data-label=\"Source\"><span><span>{}</span><span class=\"sub\">{} · {}</span></span></td>\
<td class=\"n\" data-label=\"Waiting\" title=\"{}\">{}</td></tr>",
                lbl(&c.source),
                lbl(&c.campaign),
                esc(c.channel.as_str()),
                esc(&p.zone.minute(c.created_at)),
                waited(p.now, c.created_at)
            );
        }
        h.push_str("</tbody></table>");
        if v.call_count > v.calls.len() {
            let _ = write!(
                h,
                "<p class=\"note\">{} more not shown (the first {MAX_CALLS} are).</p>",
                int((v.call_count - v.calls.len()) as u64)
            );
        }
    }
    if !v.calls_complete {
        h.push_str(
            "<p class=\"note\">Some days had more leads than the list reads; it shows the newest \
of those days.</p>",
        );
    }
    h.push_str("</section>");
}

fn column_title(k: SortKey) -> &'static str {
    match k {
        SortKey::Campaign => "Campaign",
        SortKey::Source => "Source",
        SortKey::Leads => "Leads",
        SortKey::Mqls => "MQLs",
        SortKey::Customers => "Customers",
        SortKey::Spend => "Spend",
        SortKey::Cpl => "Cost per lead",
        SortKey::Conversion => "Conversion",
    }
}

/// A link that sorts by `k`: the current column flips its order, another starts in its own.
fn sort_link(params: &Params, k: SortKey) -> String {
    let (dir, mark) = if k == params.sort {
        let flipped = match params.dir {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        };
        let mark = match params.dir {
            Dir::Asc => " ▲",
            Dir::Desc => " ▼",
        };
        (flipped, mark)
    } else {
        (k.natural_dir(), "")
    };
    format!(
        "<a href=\"{}\"{}>{}{mark}</a>",
        esc(&params.href(&[("sort", k.as_str()), ("dir", dir.as_str())])),
        if k == params.sort {
            " aria-current=\"true\""
        } else {
            ""
        },
        column_title(k)
    )
}

fn campaigns(h: &mut String, p: &Page) {
    let (v, params) = (p.view, p.params);
    h.push_str("<section id=\"campaigns\"><h2>Campaigns</h2>");
    if v.campaigns.is_empty() {
        h.push_str("<p>No leads or spend in this range.</p></section>");
        return;
    }
    h.push_str("<nav class=\"sortby\" aria-label=\"Sort campaigns\">Sort by:");
    for k in SortKey::ALL {
        h.push_str(&sort_link(params, k));
    }
    h.push_str("</nav><table class=\"cards\"><thead><tr>");
    for k in SortKey::ALL {
        let class = match k {
            SortKey::Campaign | SortKey::Source => "",
            _ => " class=\"n\"",
        };
        let _ = write!(
            h,
            "<th{class}{}>{}</th>",
            if k == params.sort {
                match params.dir {
                    Dir::Asc => " aria-sort=\"ascending\"",
                    Dir::Desc => " aria-sort=\"descending\"",
                }
            } else {
                ""
            },
            sort_link(params, k)
        );
    }
    h.push_str("</tr></thead><tbody>");
    for r in &v.campaigns {
        let m = &r.metrics;
        let channels: Vec<&str> = r.channels.iter().map(String::as_str).collect();
        let _ = write!(
            h,
            "<tr><td data-label=\"Campaign\">{}</td><td class=\"wide\" data-label=\"Source\"><span>{}<span class=\"sub\">{}</span></span></td>\
<td class=\"n\" data-label=\"Leads\">{}</td><td class=\"n\" data-label=\"MQLs\">{}</td>\
<td class=\"n\" data-label=\"Customers\">{}</td><td class=\"n\" data-label=\"Spend\">{}</td>\
<td class=\"n\" data-label=\"Cost per lead\">{}</td><td class=\"n\" data-label=\"Conversion\">{}</td></tr>",
            lbl(&r.campaign),
            lbl(&r.source),
            esc(&channels.join(", ")),
            int(m.new_leads),
            int(m.mqls),
            int(m.customers),
            money(m.spend),
            m.cpl.map_or_else(|| "–".into(), money),
            pct(m.conversion_rate),
        );
    }
    h.push_str("</tbody></table>");
    if v.campaign_count > v.campaigns.len() {
        let _ = write!(
            h,
            "<p class=\"note\">The first {} of {} campaigns in this order; filter or sort to see others.</p>",
            int(v.campaigns.len() as u64),
            int(v.campaign_count as u64)
        );
    }
    h.push_str("</section>");
}

fn reviews(h: &mut String, v: &View) {
    h.push_str("<section id=\"reviews\"><h2>Reviews</h2>");
    if v.reviews.is_empty() {
        h.push_str("<p>No reviews yet.</p></section>");
        return;
    }
    h.push_str("<div class=\"platforms\">");
    for (agg, in_range, range_avg) in &v.reviews {
        let name = agg.platform.as_str();
        let _ = write!(
            h,
            "<div class=\"platform\" id=\"reviews-{name}\"><h3>{name}: {} ★ <span class=\"note\">{} reviews in all</span></h3>{}\
<p class=\"note\">{} in this range{}</p></div>",
            agg.average().map_or_else(|| "–".into(), |a| format!("{a:.2}")),
            int(agg.count),
            rating_bars(&format!("{name} ratings, 5 to 1 stars"), &agg.distribution),
            int(*in_range),
            range_avg.map_or_else(String::new, |a| format!(", average {a:.2}")),
        );
    }
    h.push_str("</div></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_isolates() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(lbl("\u{202e}evil"), "<bdi>\u{202e}evil</bdi>");
        assert_eq!(option_text("\u{202e}ab\u{2066}c"), "abc");
        assert_eq!(option_text("\u{200f}"), "(none)");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(money(1234.5), "1,234.50");
        assert_eq!(money(-0.004), "0.00");
        assert_eq!(money(-12.345), "-12.35");
        assert_eq!(pct(Some(0.1234)), "12.3%");
        assert_eq!(pct(None), "–");
    }
}
