//! The page's charts, drawn here as inline SVG (no scripts): a daily trend line and a rating
//! distribution. Each scales to its container (`viewBox`, CSS `width:100%`), so one drawing
//! serves a desktop column and a phone. Only dates, numbers and fixed names are written into
//! a chart; every text still goes through [`esc`].

use std::fmt::Write;

use super::html::esc;

/// Drawing units: narrow enough that 11-unit text stays readable when a phone shows the chart
/// about 340 px wide.
const W: f64 = 360.0;
const H: f64 = 170.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;
/// Up to this many days each gets a dot; beyond, the line alone.
const DOTS_UP_TO: usize = 62;

/// The smallest 1, 2 or 5 x 10^k at or above `v` (an axis maximum that reads well).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let step = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * step)
        .find(|c| *c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * step)
}

/// A line over the days; `None` (no value that day) breaks the line. Every day has a hover
/// area with its date and value.
pub fn trend_chart(
    id: &str,
    label: &str,
    days: &[String],
    values: &[Option<f64>],
    fmt: fn(f64) -> String,
    color: &str,
) -> String {
    let n = days.len().max(1);
    let max = nice_ceiling(values.iter().flatten().copied().fold(0.0, f64::max));
    let step = if n > 1 {
        (W - LEFT - RIGHT) / (n - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| {
        if n > 1 {
            LEFT + i as f64 * step
        } else {
            (LEFT + W - RIGHT) / 2.0
        }
    };
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / max);
    let mut svg = String::with_capacity(200 + n * 120);
    let _ = write!(
        svg,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    // Grid and y axis: 0, half, max.
    for frac in [0.0, 0.5, 1.0] {
        let gy = y(max * frac);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\" stroke=\"#e5e7eb\"/>\
<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            gy + 4.0,
            esc(&fmt(max * frac))
        );
    }
    // x axis: first, middle and last day.
    let mut ticks = vec![0, n / 2, n - 1];
    ticks.dedup();
    for (j, i) in ticks.into_iter().enumerate() {
        if let Some(day) = days.get(i) {
            let anchor = match j {
                0 => "start",
                _ if i == n - 1 => "end",
                _ => "middle",
            };
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                x(i),
                H - 6.0,
                esc(day)
            );
        }
    }
    // The line, one polyline per run of days with a value.
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, svg: &mut String| {
        match run.len() {
            0 => {}
            1 => {
                let (px, py) = run[0].split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    svg,
                    "<circle cx=\"{px}\" cy=\"{py}\" r=\"2\" fill=\"{color}\"/>"
                );
            }
            _ => {
                let _ = write!(
                    svg,
                    "<polyline class=\"line\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" \
stroke-linejoin=\"round\" points=\"{}\"/>",
                    run.join(" ")
                );
            }
        }
        run.clear();
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(*v))),
            None => flush(&mut run, &mut svg),
        }
    }
    flush(&mut run, &mut svg);
    // Dots and hover areas with the exact value.
    for (i, (day, v)) in days.iter().zip(values).enumerate() {
        if let (Some(v), true) = (v, n <= DOTS_UP_TO) {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{color}\"/>",
                x(i),
                y(*v)
            );
        }
        let text = v.map(fmt).unwrap_or_else(|| "none".into());
        let hw = if n > 1 { step } else { W - LEFT - RIGHT };
        let _ = write!(
            svg,
            "<rect class=\"day\" x=\"{:.1}\" y=\"{TOP}\" width=\"{hw:.2}\" height=\"{}\" fill=\"transparent\"><title>{}: {}</title></rect>",
            x(i) - hw / 2.0,
            H - TOP - BOTTOM,
            esc(day),
            esc(&text)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars for a 1-5 rating distribution, 5 stars on top, with counts and shares.
pub fn rating_bars(label: &str, distribution: &[u64; 5]) -> String {
    let total: u64 = distribution.iter().sum();
    let max = distribution.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (row, bar_left, bar_w) = (20.0, 34.0, 230.0);
    let height = row * 5.0 + 4.0;
    let mut svg = format!(
        "<svg class=\"dist\" viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    for (j, stars) in (1..=5).rev().enumerate() {
        let count = distribution[stars - 1];
        let yy = j as f64 * row + 2.0;
        let w = count as f64 / max * bar_w;
        let share = if total > 0 {
            count as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\">{stars}\u{2605}</text>\
<rect class=\"bar\" x=\"{bar_left}\" y=\"{yy:.1}\" width=\"{w:.1}\" height=\"{}\" fill=\"#f59e0b\" rx=\"2\"/>\
<text x=\"{:.1}\" y=\"{:.1}\">{count} ({share:.0}%)</text>",
            yy + 13.0,
            row - 6.0,
            bar_left + w + 6.0,
            yy + 13.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_read_well() {
        let got: Vec<f64> = [0.0, 0.3, 1.0, 3.0, 7.0, 11.0, 20.0, 4321.0]
            .iter()
            .map(|v| nice_ceiling(*v))
            .collect();
        assert_eq!(got, [1.0, 0.5, 1.0, 5.0, 10.0, 20.0, 20.0, 5000.0]);
    }

    #[test]
    fn a_missing_value_breaks_the_line() {
        let days: Vec<String> = (1..=5).map(|d| format!("2026-10-0{d}")).collect();
        let svg = trend_chart(
            "t",
            "cost per lead",
            &days,
            &[Some(1.0), Some(2.0), None, Some(3.0), Some(4.0)],
            |v| format!("{v:.2}"),
            "#000",
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("class=\"day\"").count(), 5);
        assert!(svg.contains("<title>2026-10-03: none</title>"));
        assert!(svg.contains("<title>2026-10-05: 4.00</title>"));
    }

    #[test]
    fn one_day_and_no_data_still_draw() {
        let svg = trend_chart(
            "t",
            "x",
            &["2026-10-01".into()],
            &[Some(0.0)],
            |v| v.to_string(),
            "#000",
        );
        assert!(svg.contains("<circle") && svg.ends_with("</svg>"));
        let bars = rating_bars("none", &[0; 5]);
        assert_eq!(bars.matches("class=\"bar\"").count(), 5);
        assert!(bars.contains("0 (0%)"));
    }
}
