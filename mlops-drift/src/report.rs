//! Drift reports: a stable JSON document and a standalone HTML page.
//!
//! # JSON schema (`mlops.drift.report/v1`)
//!
//! ```text
//! {
//!   "schema": "mlops.drift.report/v1",
//!   "created": "2026-11-27T02:00:00Z",          RFC 3339, UTC
//!   "reference": {"name": "...", "rows": 1000}, what the profile was built from
//!   "current":   {"name": "...", "rows": 800},
//!   "dataset_drift": true,                      share_drifted >= drift_share
//!   "drift_share": 0.5, "share_drifted": 0.6, "drifted_columns": 3, "columns_tested": 5,
//!   "columns": [{
//!     "column": "age", "kind": "numerical" | "categorical",
//!     "test": "ks" | "chisquare" | "z" | "wasserstein" | "jensenshannon" | "psi",
//!     "score": 0.003, "threshold": 0.05, "drifted": true,
//!     "counts": [1000, 800],                    values tested after dropping missing ones
//!     "approximate": false,                     true when the reference was a sample
//!     "histogram": {                            10 equal bins over both sides (numerical) or
//!       "labels": ["[0, 10)", ...],             the most frequent categories (categorical)
//!       "reference": [0.1, ...], "current": [0.05, ...]   shares of each side
//!     }
//!   }],
//!   "untested": [{"column": "notes", "reason": "no values in the current data ..."}]
//! }
//! ```
//!
//! Fields are only ever added to this schema; a breaking change gets a new `schema` name.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use arrow_array::RecordBatch;
use mlops_core::drift::{
    ColumnDrift, ColumnSummary, DriftReport, ReferenceProfile, UntestedColumn,
};
use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::column;

/// The schema name written into every report.
pub const SCHEMA: &str = "mlops.drift.report/v1";

/// Bars per numerical histogram (Evidently's `nbinsx`).
pub const HISTOGRAM_BINS: usize = 10;
/// Categories shown per categorical histogram (the rest are summed as "other").
pub const HISTOGRAM_CATEGORIES: usize = 12;

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// A name for the data (a file, `dataset@3`, `profile.json`).
    pub name: String,
    /// Rows.
    pub rows: u64,
}

/// Shares of reference and current values per bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bar labels.
    pub labels: Vec<String>,
    /// Reference shares.
    pub reference: Vec<f64>,
    /// Current shares.
    pub current: Vec<f64>,
}

/// One column of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnReport {
    /// The test result.
    #[serde(flatten)]
    pub drift: ColumnDrift,
    /// Reference against current.
    pub histogram: Histogram,
}

/// A drift report document (see the module docs for its JSON schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// When it was made, RFC 3339.
    pub created: String,
    /// The reference.
    pub reference: Side,
    /// The current data.
    pub current: Side,
    /// Whether the dataset drifted.
    pub dataset_drift: bool,
    /// The share threshold.
    pub drift_share: f64,
    /// Share of tested columns that drifted.
    pub share_drifted: f64,
    /// How many drifted.
    pub drifted_columns: usize,
    /// How many were judged: the tested ones, and those whose values stopped arriving (counted
    /// as drifted, listed in `untested`).
    pub columns_tested: usize,
    /// Per column.
    pub columns: Vec<ColumnReport>,
    /// Columns that could not be tested, and why.
    #[serde(default)]
    pub untested: Vec<UntestedColumn>,
}

impl Report {
    /// A report of `drift` (from [`crate::StatDetector`]) with histograms of `profile` against
    /// `current`.
    pub fn new(
        drift: &DriftReport,
        profile: &ReferenceProfile,
        current: &[RecordBatch],
        reference_name: impl Into<String>,
        current_name: impl Into<String>,
    ) -> Result<Self> {
        let mut columns = Vec::with_capacity(drift.columns.len());
        for d in &drift.columns {
            let col = profile
                .columns
                .iter()
                .find(|c| c.name == d.column)
                .ok_or_else(|| Error::invalid("report", format!("profile lacks {:?}", d.column)))?;
            let arrays = column::arrays(current, &d.column, "current")?;
            let histogram = match &col.summary {
                ColumnSummary::Numerical { values, .. } => {
                    let (cur, _) = column::numbers(&arrays, &d.column)?;
                    numeric_histogram(values, &cur)
                }
                ColumnSummary::Categorical { counts } => {
                    let (cur, _) = column::labels(&arrays, &d.column)?;
                    categorical_histogram(counts, &cur)
                }
            };
            columns.push(ColumnReport {
                drift: d.clone(),
                histogram,
            });
        }
        Ok(Self {
            schema: SCHEMA.to_string(),
            created: humantime_now(),
            reference: Side {
                name: reference_name.into(),
                rows: profile.rows,
            },
            current: Side {
                name: current_name.into(),
                rows: current.iter().map(|b| b.num_rows() as u64).sum(),
            },
            dataset_drift: drift.dataset_drift,
            drift_share: drift.drift_share,
            share_drifted: drift.share_drifted,
            drifted_columns: drift.drifted_columns,
            columns_tested: drift.columns_judged(),
            columns,
            untested: drift.untested.clone(),
        })
    }

    /// The JSON document.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::backend("serde_json", e))
    }

    /// A standalone HTML page (inline CSS and SVG, no network assets): a summary, a table of
    /// every column, and per column a reference-against-current histogram with the test result.
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(16 * 1024);
        let verdict = if self.dataset_drift {
            "<span class=\"bad\">Dataset drift detected</span>"
        } else {
            "<span class=\"ok\">No dataset drift</span>"
        };
        let _ = write!(
            h,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>Drift report: {cur} vs {refn}</title><style>{CSS}</style></head><body>\
             <header><h1>Data drift report</h1><p class=\"verdict\">{verdict}</p>\
             <p>{drifted} of {tested} columns drifted ({share:.1}%; dataset drift at ≥ {ds:.0}%){untested}. \
             Reference <b>{refn}</b> ({rrows} rows) · current <b>{cur}</b> ({crows} rows) · {created}</p></header>",
            cur = esc(&self.current.name),
            refn = esc(&self.reference.name),
            drifted = self.drifted_columns,
            tested = self.columns_tested,
            untested = match self.untested.len() {
                0 => String::new(),
                n => format!("; {n} not tested (see the table)"),
            },
            share = self.share_drifted * 100.0,
            ds = self.drift_share * 100.0,
            rrows = self.reference.rows,
            crows = self.current.rows,
            created = esc(&self.created),
        );
        h.push_str(
            "<table><thead><tr><th>column</th><th>type</th><th>test</th><th>score</th>\
             <th>threshold</th><th>drift</th></tr></thead><tbody>",
        );
        for c in &self.columns {
            let d = &c.drift;
            let _ = write!(
                h,
                "<tr class=\"{cls}\"><td><a href=\"#col-{id}\">{name}</a></td><td>{kind:?}</td>\
                 <td>{test}{approx}</td><td>{score}</td><td>{thr}</td><td>{flag}</td></tr>",
                cls = if d.drifted { "drift" } else { "" },
                id = anchor(&d.column),
                name = esc(&d.column),
                kind = d.kind,
                test = esc(&d.test),
                approx = if d.approximate { " (approx.)" } else { "" },
                score = fmt_score(d.score),
                thr = d.threshold,
                flag = if d.drifted {
                    "Detected"
                } else {
                    "Not detected"
                },
            );
        }
        for u in &self.untested {
            let _ = write!(
                h,
                "<tr class=\"untested\"><td>{name}</td><td colspan=\"4\">{reason}</td>\
                 <td>Not tested</td></tr>",
                name = esc(&u.column),
                reason = esc(&u.reason),
            );
        }
        h.push_str("</tbody></table>");
        for c in &self.columns {
            let d = &c.drift;
            let _ = write!(
                h,
                "<section id=\"col-{id}\"><h2>{name} <small>{test} = {score} \
                 (threshold {thr}): {flag}</small></h2>{svg}</section>",
                id = anchor(&d.column),
                name = esc(&d.column),
                test = esc(&d.test),
                score = fmt_score(d.score),
                thr = d.threshold,
                flag = if d.drifted {
                    "<span class=\"bad\">drift</span>"
                } else {
                    "<span class=\"ok\">no drift</span>"
                },
                svg = histogram_svg(&c.histogram),
            );
        }
        h.push_str("<footer>Made by mlops-drift. Tests and thresholds follow Evidently.</footer></body></html>\n");
        h
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;\
max-width:960px;color:#1d2330;padding:0 1rem}h1{margin:0 0 .3rem}header p{margin:.2rem 0;color:#4a5163}\
.verdict{font-size:1.3rem;font-weight:600}.ok{color:#1a7f37}.bad{color:#c62828}\
table{border-collapse:collapse;width:100%;margin:1.5rem 0}th,td{text-align:left;padding:.4rem .6rem;\
border-bottom:1px solid #e3e6ee;font-variant-numeric:tabular-nums}th{background:#f4f6fa}\
tr.drift td{background:#fdecea}tr.untested td{color:#6b7280;font-style:italic}section{margin:2rem 0;border-top:1px solid #e3e6ee}\
h2{font-size:1.1rem}h2 small{font-weight:400;color:#4a5163}svg text{font-size:11px;fill:#4a5163}\
.legend rect{stroke:none}footer{color:#8a90a0;font-size:.85rem;margin-top:3rem}";

fn humantime_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// `YYYY-MM-DDTHH:MM:SSZ` from seconds since the epoch.
#[cfg(test)]
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

fn fmt_score(s: f64) -> String {
    if s != 0.0 && (s.abs() < 1e-3 || s.abs() >= 1e4) {
        format!("{s:.3e}")
    } else {
        format!("{s:.4}")
    }
}

use mlops_core::html::escape as esc;

fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn numeric_histogram(reference_sorted: &[f64], current: &[f64]) -> Histogram {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in reference_sorted.iter().chain(current) {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if !lo.is_finite() {
        return Histogram {
            labels: vec![],
            reference: vec![],
            current: vec![],
        };
    }
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let width = (hi - lo) / HISTOGRAM_BINS as f64;
    let bin = |v: f64| (((v - lo) / width) as usize).min(HISTOGRAM_BINS - 1);
    let shares = |values: &[f64]| {
        let mut counts = [0u64; HISTOGRAM_BINS];
        for v in values {
            counts[bin(*v)] += 1;
        }
        let n = values.len().max(1) as f64;
        counts.iter().map(|c| *c as f64 / n).collect::<Vec<_>>()
    };
    let labels = (0..HISTOGRAM_BINS)
        .map(|i| {
            let a = lo + width * i as f64;
            short(a)
        })
        .collect();
    Histogram {
        labels,
        reference: shares(reference_sorted),
        current: shares(current),
    }
}

fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e5 || v.abs() < 1e-2 {
        format!("{v:.2e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn categorical_histogram(reference: &BTreeMap<String, u64>, current: &[String]) -> Histogram {
    let mut cur: BTreeMap<&str, u64> = BTreeMap::new();
    for c in current {
        *cur.entry(c.as_str()).or_insert(0) += 1;
    }
    let nr = reference.values().sum::<u64>().max(1) as f64;
    let nc = current.len().max(1) as f64;
    let mut keys: Vec<&str> = reference.keys().map(String::as_str).collect();
    for k in cur.keys() {
        if !reference.contains_key(*k) {
            keys.push(k);
        }
    }
    let r = |k: &str| *reference.get(k).unwrap_or(&0) as f64 / nr;
    let c = |k: &str| *cur.get(k).unwrap_or(&0) as f64 / nc;
    keys.sort_by(|a, b| (r(b) + c(b)).total_cmp(&(r(a) + c(a))).then(a.cmp(b)));
    let shown = keys.len().min(HISTOGRAM_CATEGORIES);
    let mut h = Histogram {
        labels: keys[..shown].iter().map(|k| (*k).to_string()).collect(),
        reference: keys[..shown].iter().map(|k| r(k)).collect(),
        current: keys[..shown].iter().map(|k| c(k)).collect(),
    };
    if keys.len() > shown {
        h.labels.push(format!("other ({})", keys.len() - shown));
        h.reference.push(keys[shown..].iter().map(|k| r(k)).sum());
        h.current.push(keys[shown..].iter().map(|k| c(k)).sum());
    }
    h
}

/// Grouped bars: reference (grey) and current (blue) share per bin.
fn histogram_svg(h: &Histogram) -> String {
    let (w, ht, pad_l, pad_b, pad_t) = (900.0f64, 260.0f64, 44.0f64, 46.0f64, 24.0f64);
    let n = h.labels.len().max(1) as f64;
    let max = h
        .reference
        .iter()
        .chain(&h.current)
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let plot_w = w - pad_l - 10.0;
    let plot_h = ht - pad_b - pad_t;
    let slot = plot_w / n;
    let bar = (slot * 0.38).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"100%\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for i in 0..=4 {
        let frac = f64::from(i) / 4.0;
        let y = pad_t + plot_h * (1.0 - frac);
        let _ = write!(
            s,
            "<line x1=\"{pad_l}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e6ee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}%</text>",
            w - 10.0,
            pad_l - 4.0,
            y + 4.0,
            max * frac * 100.0
        );
    }
    for (i, label) in h.labels.iter().enumerate() {
        let x0 = pad_l + slot * i as f64 + slot * 0.1;
        for (j, (v, color)) in [
            (h.reference.get(i).copied().unwrap_or(0.0), "#9aa3b5"),
            (h.current.get(i).copied().unwrap_or(0.0), "#2f6fde"),
        ]
        .into_iter()
        .enumerate()
        {
            let bh = plot_h * v / max;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{color}\">\
                 <title>{}: {:.2}%</title></rect>",
                x0 + j as f64 * bar,
                pad_t + plot_h - bh,
                if j == 0 { "reference" } else { "current" },
                v * 100.0
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + bar,
            ht - pad_b + 16.0,
            esc(&truncate(label, 14))
        );
    }
    let _ = write!(
        s,
        "<g class=\"legend\"><rect x=\"{pad_l}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#9aa3b5\"/>\
         <text x=\"{}\" y=\"13\">reference</text><rect x=\"{}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#2f6fde\"/>\
         <text x=\"{}\" y=\"13\">current</text></g></svg>",
        pad_l + 14.0,
        pad_l + 90.0,
        pad_l + 104.0
    );
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_escaping() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_737_600), "2026-11-27T00:00:00Z");
        assert_eq!(esc("<a&\"b'>"), "&lt;a&amp;&quot;b&#39;&gt;");
    }

    #[test]
    fn categorical_histograms_keep_the_top_and_sum_the_rest() {
        let reference: BTreeMap<String, u64> =
            (0..20).map(|i| (format!("k{i:02}"), 1 + i)).collect();
        let current: Vec<String> = vec!["k19".into(), "new".into()];
        let h = categorical_histogram(&reference, &current);
        assert_eq!(h.labels.len(), HISTOGRAM_CATEGORIES + 1);
        assert!((h.reference.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((h.current.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
