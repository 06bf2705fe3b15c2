//! Charts drawn on the server as SVG: metric histories downsampled with LTTB
//! (largest-triangle-three-buckets, which keeps peaks and troughs a plain stride drops), line
//! charts of several series, and parallel coordinates.

use maud::{Markup, html};

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Point {
    /// Step, or time in ms.
    pub x: f64,
    /// The value.
    pub y: f64,
}

/// Downsamples `points` (ordered by `x`) to at most `threshold` points with LTTB: the first and
/// last points stay, and each bucket between keeps the point that spans the largest triangle
/// with its neighbours. Non-finite values are dropped first (they cannot be drawn). A
/// `threshold` under 3 keeps the ends only.
pub fn downsample(points: &[Point], threshold: usize) -> Vec<Point> {
    let finite: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect();
    let n = finite.len();
    if n <= threshold.max(2) {
        return finite;
    }
    if threshold < 3 {
        return vec![finite[0], finite[n - 1]];
    }
    let mut out = Vec::with_capacity(threshold);
    out.push(finite[0]);
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let mut a = 0usize;
    for i in 0..threshold - 2 {
        // The next bucket's average is the third corner of the triangle.
        let next_start = (((i + 1) as f64 * every) as usize + 1).min(n - 1);
        let next_end = (((i + 2) as f64 * every) as usize + 1).min(n);
        let span = &finite[next_start..next_end.max(next_start + 1)];
        let (ax, ay) = span
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p.x, sy + p.y));
        let (avg_x, avg_y) = (ax / span.len() as f64, ay / span.len() as f64);
        let start = ((i as f64 * every) as usize + 1).min(n - 1);
        let end = (((i + 1) as f64 * every) as usize + 1)
            .min(n - 1)
            .max(start + 1);
        let pa = finite[a];
        let mut best = start;
        let mut best_area = -1.0;
        for (j, p) in finite[start..end].iter().enumerate() {
            let area = ((pa.x - avg_x) * (p.y - pa.y) - (pa.x - p.x) * (avg_y - pa.y)).abs();
            if area > best_area {
                best_area = area;
                best = start + j;
            }
        }
        out.push(finite[best]);
        a = best;
    }
    out.push(finite[n - 1]);
    out
}

/// Exponential moving average with TensorBoard's debiasing; `weight` in `[0, 1)`, 0 = none.
pub(crate) fn smooth(points: &[Point], weight: f64) -> Vec<Point> {
    if weight <= 0.0 {
        return points.to_vec();
    }
    let mut last = 0.0;
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        last = last * weight + (1.0 - weight) * p.y;
        let debias = 1.0 - weight.powi(i as i32 + 1);
        out.push(Point {
            x: p.x,
            y: last / debias,
        });
    }
    out
}

/// A named series for [`line_chart`], with an optional band (`x`, low, high) drawn under it.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<Point>,
    pub(crate) band: Vec<(f64, f64, f64)>,
}

impl Series {
    pub(crate) fn line(name: String, points: Vec<Point>) -> Self {
        Self {
            name,
            points,
            band: vec![],
        }
    }
}

/// Mean ± standard deviation per group over runs' histories: the x range is cut into
/// `buckets` equal spans, each run contributes its mean in a span, and each group's line is the
/// mean of its runs there, its band ± their (population) standard deviation.
pub(crate) fn group_bands(runs: &[(String, Vec<Point>)], buckets: usize) -> Vec<Series> {
    let (x0, x1) = runs
        .iter()
        .flat_map(|(_, p)| p.iter())
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.x), hi.max(p.x))
        });
    if x0 > x1 {
        return vec![];
    }
    let buckets = buckets.max(1);
    let width = if x1 > x0 {
        (x1 - x0) / buckets as f64
    } else {
        1.0
    };
    let bucket = |x: f64| (((x - x0) / width) as usize).min(buckets - 1);
    let mut groups: std::collections::BTreeMap<&str, Vec<Vec<Option<f64>>>> = Default::default();
    for (group, points) in runs {
        let mut sums = vec![(0.0, 0usize); buckets];
        for p in points.iter().filter(|p| p.y.is_finite()) {
            let b = bucket(p.x);
            sums[b].0 += p.y;
            sums[b].1 += 1;
        }
        let means = sums
            .iter()
            .map(|&(s, n)| (n > 0).then(|| s / n as f64))
            .collect();
        groups.entry(group.as_str()).or_default().push(means);
    }
    groups
        .into_iter()
        .map(|(name, members)| {
            let mut points = vec![];
            let mut band = vec![];
            for b in 0..buckets {
                let values: Vec<f64> = members.iter().filter_map(|m| m[b]).collect();
                if values.is_empty() {
                    continue;
                }
                let n = values.len() as f64;
                let mean = values.iter().sum::<f64>() / n;
                let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
                let x = x0 + (b as f64 + 0.5) * width;
                points.push(Point { x, y: mean });
                band.push((x, mean - std, mean + std));
            }
            Series {
                name: format!("{name} (n={})", members.len()),
                points,
                band,
            }
        })
        .collect()
}

const PALETTE: &[&str] = &[
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f",
];

pub(crate) fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;

/// Round tick positions (1, 2 or 5 × 10^k apart) within `[lo, hi]`, about five of them.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return vec![lo];
    }
    let raw = span / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() * step;
    (0..=10)
        .map(|i| first + f64::from(i) * step)
        .take_while(|t| *t <= hi + step * 1e-9)
        // -0.0 and 1e-17 print as 0.
        .map(|t| if t.abs() < step * 1e-9 { 0.0 } else { t })
        .collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A line chart of `series` (several runs of one metric). `log_y` draws the y axis in log10
/// (non-positive values are left out and said so); `x_label` names the x axis, and `time_x`
/// labels it with UTC times (x in ms).
pub(crate) fn line_chart(series: &[Series], log_y: bool, x_label: &str, time_x: bool) -> Markup {
    let ty = |y: f64| if log_y { y.log10() } else { y };
    let visible = |p: &&Point| p.x.is_finite() && p.y.is_finite() && (!log_y || p.y > 0.0);
    let band_points: Vec<Point> = series
        .iter()
        .flat_map(|s| s.band.iter())
        .flat_map(|&(x, lo, hi)| [Point { x, y: lo }, Point { x, y: hi }])
        .collect();
    let all = series
        .iter()
        .flat_map(|s| s.points.iter())
        .chain(band_points.iter())
        .filter(visible);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut count = 0usize;
    for p in all {
        count += 1;
        x0 = x0.min(p.x);
        x1 = x1.max(p.x);
        y0 = y0.min(ty(p.y));
        y1 = y1.max(ty(p.y));
    }
    if count == 0 {
        return html! { p.empty { "No points to draw" @if log_y { " on a log scale (values ≤ 0 are left out)" } "." } };
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
        y0 -= pad;
        y1 += pad;
    }
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (1.0 - (ty(y) - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
    // On a log scale, ticks are round values: decades when the range spans two or more,
    // otherwise round numbers between the ends (placed by their logarithm).
    let tick_values: Vec<f64> = if !log_y {
        nice_ticks(y0, y1)
    } else if y1 - y0 >= 2.0 {
        nice_ticks(y0.ceil(), y1.floor())
            .into_iter()
            .filter(|t| t.fract() == 0.0)
            .map(|t| 10f64.powf(t))
            .collect()
    } else {
        nice_ticks(10f64.powf(y0), 10f64.powf(y1))
            .into_iter()
            .filter(|t| *t > 0.0)
            .collect()
    };
    let y_ticks: Vec<(f64, String)> = tick_values
        .into_iter()
        .map(|v| {
            let t = if log_y { v.log10() } else { v };
            (
                TOP + (1.0 - (t - y0) / (y1 - y0)) * (H - TOP - BOTTOM),
                fmt_tick(v),
            )
        })
        .collect();
    let x_ticks: Vec<(f64, String)> = if time_x {
        (0..=4)
            .map(|i| {
                let t = x0 + (x1 - x0) * f64::from(i) / 4.0;
                let full = crate::view::time(t as i64);
                // Short labels that still tell the ticks apart.
                let label = if x1 - x0 > 2.0 * 86_400_000.0 {
                    &full[5..10]
                } else if x1 - x0 > 3_600_000.0 {
                    &full[5..16]
                } else {
                    &full[11..19]
                };
                (px(t), label.to_string())
            })
            .collect()
    } else {
        nice_ticks(x0, x1)
            .into_iter()
            .map(|t| (px(t), fmt_tick(t)))
            .collect()
    };
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } role="img" aria-label="metric chart" {
            @for (y, label) in &y_ticks {
                line.grid x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) {}
                text.tick x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (label) }
            }
            @for (x, label) in &x_ticks {
                text.tick x=(x) y=(H - BOTTOM + 16.0) text-anchor="middle" { (label) }
            }
            text.axis x=((LEFT + W - RIGHT) / 2.0) y=(H - 4.0) text-anchor="middle" { (x_label) }
            @for (i, s) in series.iter().enumerate() {
                @if !s.band.is_empty() && (!log_y || s.band.iter().all(|b| b.1 > 0.0)) {
                    @let upper = s.band.iter().map(|&(x, _, hi)| format!("{:.1},{:.1} ", px(x), py(hi)));
                    @let lower = s.band.iter().rev().map(|&(x, lo, _)| format!("{:.1},{:.1} ", px(x), py(lo)));
                    @let pts: String = upper.chain(lower).collect();
                    polygon.band fill=(color(i)) fill-opacity="0.15" stroke="none" points=(pts) {}
                }
            }
            @for (i, s) in series.iter().enumerate() {
                @let pts: String = s.points.iter().filter(visible)
                    .map(|p| format!("{:.1},{:.1} ", px(p.x), py(p.y))).collect();
                polyline fill="none" stroke=(color(i)) stroke-width="1.6" points=(pts) {
                    title { (s.name) }
                }
            }
        }
    }
}

/// Parallel coordinates: one vertical axis per dimension (its min at the bottom, max on top),
/// one polyline per run. Missing values break the line there.
pub(crate) fn parallel_coordinates(axes: &[String], rows: &[(String, Vec<Option<f64>>)]) -> Markup {
    if axes.len() < 2 || rows.is_empty() {
        return html! { p.empty { "Parallel coordinates need two numeric params or metrics." } };
    }
    let width = (axes.len() as f64 * 140.0).max(W);
    let step = (width - 2.0 * LEFT) / (axes.len() - 1) as f64;
    let ranges: Vec<(f64, f64)> = (0..axes.len())
        .map(|a| {
            rows.iter()
                .filter_map(|(_, v)| v[a].filter(|v| v.is_finite()))
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
        })
        .collect();
    let ax = |a: usize| LEFT + a as f64 * step;
    let ay = |a: usize, v: f64| {
        let (lo, hi) = ranges[a];
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        TOP + 14.0 + (1.0 - t) * (H - TOP - BOTTOM - 14.0)
    };
    html! {
        svg.chart viewBox={ "0 0 " (width) " " (H) } role="img" aria-label="parallel coordinates" {
            @for (a, name) in axes.iter().enumerate() {
                line.axisline x1=(ax(a)) x2=(ax(a)) y1=(TOP + 14.0) y2=(H - BOTTOM) {}
                text.axis x=(ax(a)) y=(TOP + 6.0) text-anchor="middle" { (name) }
                @let (lo, hi) = ranges[a];
                @if lo <= hi {
                    text.tick x=(ax(a) + 4.0) y=(H - BOTTOM + 14.0) { (fmt_tick(lo)) }
                    text.tick x=(ax(a) + 4.0) y=(TOP + 24.0) { (fmt_tick(hi)) }
                }
            }
            @for (i, (name, values)) in rows.iter().enumerate() {
                @for segment in segments(values) {
                    @let pts: String = segment.iter()
                        .map(|&(a, v)| format!("{:.1},{:.1} ", ax(a), ay(a, v))).collect();
                    polyline fill="none" stroke=(color(i)) stroke-width="1.6" points=(pts) {
                        title { (name) }
                    }
                }
            }
        }
    }
}

/// Runs of consecutive present values.
fn segments(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out = vec![];
    let mut current = vec![];
    for (a, v) in values.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => current.push((a, *v)),
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                x: i as f64,
                y: (i as f64 / 10.0).sin(),
            })
            .collect()
    }

    #[test]
    fn downsampling_keeps_the_ends_and_the_extremes() {
        let mut points = series(100_000);
        points[54_321].y = 50.0; // a spike a stride would likely miss
        let out = downsample(&points, 500);
        assert_eq!(out.len(), 500);
        assert_eq!(out[0], points[0]);
        assert_eq!(out[499], points[99_999]);
        assert!(out.iter().any(|p| p.y == 50.0), "the spike survives");
        assert!(out.windows(2).all(|w| w[0].x < w[1].x), "x stays ordered");
    }

    #[test]
    fn short_series_and_non_finite_values() {
        let mut points = series(10);
        points[3].y = f64::NAN;
        let out = downsample(&points, 1000);
        assert_eq!(out.len(), 9);
        assert!(out.iter().all(|p| p.y.is_finite()));
        assert_eq!(downsample(&series(10), 2).len(), 2);
        assert!(downsample(&[], 10).is_empty());
    }

    #[test]
    fn smoothing_is_debiased_and_zero_is_identity() {
        let points = vec![Point { x: 0.0, y: 1.0 }, Point { x: 1.0, y: 1.0 }];
        assert_eq!(smooth(&points, 0.0), points);
        let s = smooth(&points, 0.9);
        assert!((s[0].y - 1.0).abs() < 1e-12 && (s[1].y - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(nice_ticks(1.0, 40.0), vec![10.0, 20.0, 30.0, 40.0]);
        assert_eq!(nice_ticks(0.0, 1.0), vec![0.0, 0.5, 1.0]);
        assert_eq!(nice_ticks(-0.3, 0.3), vec![-0.2, 0.0, 0.2]);
        assert_eq!(nice_ticks(5.0, 5.0), vec![5.0]);
    }

    #[test]
    fn groups_get_a_mean_line_and_a_band() {
        let flat = |y: f64| {
            (0..10)
                .map(|i| Point { x: f64::from(i), y })
                .collect::<Vec<_>>()
        };
        let runs = vec![
            ("a".to_string(), flat(1.0)),
            ("a".to_string(), flat(3.0)),
            ("b".to_string(), flat(5.0)),
        ];
        let groups = group_bands(&runs, 5);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].name, "a (n=2)");
        assert!(groups[0].points.iter().all(|p| (p.y - 2.0).abs() < 1e-12));
        assert!(
            groups[0]
                .band
                .iter()
                .all(|b| (b.1 - 1.0).abs() < 1e-12 && (b.2 - 3.0).abs() < 1e-12)
        );
        assert!(
            groups[1].band.iter().all(|b| b.1 == b.2),
            "one run: no spread"
        );
    }

    #[test]
    fn labels_in_charts_are_escaped() {
        let svg = line_chart(
            &[Series::line("<script>alert(1)</script>".into(), series(5))],
            false,
            "step",
            false,
        )
        .into_string();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }
}
