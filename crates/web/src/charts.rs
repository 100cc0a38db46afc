//! Charts drawn on the server as SVG: no script and nothing fetched, readable when printed, and as cheap to send
//! as a table. Presentation attributes only (the pages' content security policy forbids inline styles).

use std::fmt::Write;

/// One series of a chart.
pub struct Series<'a> {
    pub label: &'a str,
    /// CSS class of the series (colours live in the stylesheet).
    pub class: &'a str,
    /// One value per x position; `None` is a gap.
    pub values: Vec<Option<f64>>,
}

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A "nice" upper bound for the y axis: 1, 2 or 5 times a power of ten.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|v| *v >= max).unwrap_or(10.0 * p)
}

fn frame(out: &mut String, title: &str, ymax: f64, labels: &[String]) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(title)
    );
    let _ = write!(out, "<title>{}</title>", esc(title));
    let plot_h = H - BOTTOM - TOP;
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{W}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 4.0,
            y + 4.0,
            trim(v)
        );
    }
    let n = labels.len().max(1);
    let step = ((n as f64) / 6.0).ceil().max(1.0) as usize;
    for (i, label) in labels.iter().enumerate().step_by(step) {
        let x = LEFT + (W - LEFT) * (i as f64 + 0.5) / n as f64;
        let _ =
            write!(out, r#"<text class="axis" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#, H - 6.0, esc(label));
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Bars, one per x label (units sold per day).
pub fn bars(title: &str, labels: &[String], values: &[f64]) -> String {
    let mut out = String::new();
    let ymax = nice_max(values.iter().copied().fold(0.0, f64::max));
    frame(&mut out, title, ymax, labels);
    let n = values.len().max(1) as f64;
    let plot_h = H - BOTTOM - TOP;
    let slot = (W - LEFT) / n;
    for (i, v) in values.iter().enumerate() {
        let h = plot_h * v.max(0.0) / ymax;
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let label = labels.get(i).map(String::as_str).unwrap_or("");
        let _ = write!(
            out,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: {}</title></rect>"#,
            TOP + plot_h - h,
            slot * 0.7,
            esc(label),
            trim(*v)
        );
    }
    out.push_str("</svg>");
    out
}

/// Lines over shared x labels (sales history and forecast), with a legend.
pub fn lines(title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let mut out = String::new();
    let max = series.iter().flat_map(|s| s.values.iter().flatten().copied()).fold(0.0, f64::max);
    let ymax = nice_max(max);
    frame(&mut out, title, ymax, labels);
    let n = labels.len().max(1) as f64;
    let plot_h = H - BOTTOM - TOP;
    for (k, s) in series.iter().enumerate() {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let x = LEFT + (W - LEFT) * (i as f64 + 0.5) / n;
                    let y = TOP + plot_h - plot_h * v.max(0.0) / ymax;
                    let _ = write!(d, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(out, r#"<path class="line {}" d="{}" fill="none"/>"#, esc(s.class), d.trim_end());
        let lx = LEFT + 10.0 + 140.0 * k as f64;
        let _ = write!(
            out,
            r#"<rect class="key {}" x="{lx:.1}" y="{TOP}" width="10" height="10"/><text class="axis" x="{:.1}" y="{:.1}">{}</text>"#,
            esc(s.class),
            lx + 14.0,
            TOP + 9.0,
            esc(s.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(13.0), 20.0);
        assert_eq!(nice_max(41.0), 50.0);
        assert_eq!(nice_max(100.0), 100.0);
    }

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bars("Units <sold>", &["a&b".into(), "c".into()], &[5.0, 10.0]);
        assert!(svg.contains("Units &lt;sold&gt;"));
        assert!(svg.contains("a&amp;b: 5"));
        // The tallest bar fills the plot: 220 - 24 - 10 = 186 units high.
        assert!(svg.contains(r#"height="186.0""#), "{svg}");
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
    }

    #[test]
    fn lines_break_at_gaps() {
        let s = Series { label: "sold", class: "history", values: vec![Some(1.0), None, Some(2.0), Some(3.0)] };
        let svg = lines("t", &["1".into(), "2".into(), "3".into(), "4".into()], &[s]);
        let d = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
    }
}
