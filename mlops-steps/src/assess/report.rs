//! The model report: one self-contained HTML page (no scripts, no network) with the
//! permutation importance bars, the SHAP summary and the group metrics with their intervals.

use std::fmt::Write as _;

use mlops_core::html::escape as esc;
use mlops_fairness::FairnessReport;

use super::Findings;

/// An HTML report of a model's [`Findings`], beside the drift report.
#[derive(Debug, Clone)]
pub struct ModelReport<'a> {
    findings: &'a Findings,
    title: String,
    created: String,
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;\
max-width:960px;color:#1d2330;padding:0 1rem}h1{margin:0 0 .3rem}header p{margin:.2rem 0;color:#4a5163}\
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.4rem .6rem;\
border-bottom:1px solid #e3e6ee;font-variant-numeric:tabular-nums}th{background:#f4f6fa}\
td.num,th.num{text-align:right;white-space:nowrap}section{margin:2rem 0;border-top:1px solid #e3e6ee}h2{font-size:1.1rem}\
h2 small{font-weight:400;color:#4a5163}.bar{position:relative;height:1rem;background:#eef1f6;min-width:12rem}\
.bar span{position:absolute;top:0;bottom:0;background:#3b6fd8}.bar span.neg{background:#c62828}\
.bar i{position:absolute;top:.45rem;height:2px;background:#1d2330}p.note{color:#4a5163;font-size:.9rem}\
footer{color:#8a90a0;font-size:.85rem;margin-top:3rem}";

fn num(v: f64) -> String {
    if v.is_nan() {
        "—".to_owned()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e4) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// A bar for `value` on a scale whose longest bar is `max`, with a whisker of ± `std`.
fn bar(value: f64, max: f64, std: Option<f64>) -> String {
    let scale = if max > 0.0 { 100.0 / max } else { 0.0 };
    let width = (value.abs() * scale).clamp(0.0, 100.0);
    let mut h = format!(
        "<div class=\"bar\"><span class=\"{}\" style=\"width:{width:.1}%\"></span>",
        if value < 0.0 { "neg" } else { "" }
    );
    if let Some(s) = std.filter(|s| *s > 0.0) {
        let lo = ((value.abs() - s) * scale).clamp(0.0, 100.0);
        let hi = ((value.abs() + s) * scale).clamp(0.0, 100.0);
        let _ = write!(
            h,
            "<i style=\"left:{lo:.1}%;width:{:.1}%\"></i>",
            (hi - lo).max(0.5)
        );
    }
    h.push_str("</div>");
    h
}

impl<'a> ModelReport<'a> {
    /// The report of `findings`, titled `title` (the model version and the data assessed).
    pub fn new(findings: &'a Findings, title: impl Into<String>) -> Self {
        Self {
            findings,
            title: title.into(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    /// The page.
    pub fn to_html(&self) -> String {
        let f = self.findings;
        let mut h = String::with_capacity(16 << 10);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>Model report: {title}</title><style>{CSS}</style></head><body>\
             <header><h1>Model report</h1><p><b>{title}</b></p>\
             <p>{task} of <b>{target}</b> assessed on {rows} rows · {created}</p></header>",
            title = esc(&self.title),
            task = f.task,
            target = esc(&f.target),
            rows = f.rows,
            created = esc(&self.created),
        );
        self.importance(&mut h);
        self.shap(&mut h);
        match &f.fairness {
            Some(report) => fairness(&mut h, report),
            None => h.push_str(
                "<section><h2>Fairness</h2><p class=\"note\">No sensitive columns were declared \
                 (declare them on the dataset as metadata <code>sensitive</code>, or on the call).</p></section>",
            ),
        }
        let _ = write!(
            h,
            "<footer>mlops {} · permutation importance as scikit-learn computes it, \
             disparities as fairlearn and AIF360 define them</footer></body></html>",
            env!("CARGO_PKG_VERSION")
        );
        h
    }

    fn importance(&self, h: &mut String) {
        let f = self.findings;
        let Some(imp) = &f.importance else {
            return;
        };
        let ranked = imp.ranked();
        let max = ranked
            .iter()
            .map(|r| r.mean.abs() + r.std)
            .fold(0.0, f64::max);
        let _ = write!(
            h,
            "<section id=\"importance\"><h2>Permutation importance <small>drop in {scorer} when a \
             column is shuffled ({repeats} repeats; baseline {base})</small></h2><table><thead><tr>\
             <th>column</th><th class=\"num\">mean</th><th class=\"num\">std</th><th></th></tr></thead><tbody>",
            scorer = f.scorer,
            repeats = ranked.first().map_or(0, |r| r.drops.len()),
            base = num(imp.baseline),
        );
        for r in ranked {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&r.feature),
                num(r.mean),
                num(r.std),
                bar(r.mean, max, Some(r.std))
            );
        }
        h.push_str("</tbody></table></section>");
    }

    fn shap(&self, h: &mut String) {
        let Some(shap) = &self.findings.shap else {
            return;
        };
        let max = shap.mean_abs.iter().map(|(_, v)| *v).fold(0.0, f64::max);
        let _ = write!(
            h,
            "<section id=\"shap\"><h2>SHAP summary <small>mean |φ| of {output} over {rows} rows \
             (KernelSHAP, {bg} background rows; base value {base}, additivity error {err})</small></h2>\
             <table><thead><tr><th>feature</th><th class=\"num\">mean |φ|</th><th></th></tr></thead><tbody>",
            output = esc(&shap.output),
            rows = shap.explanation.values.len(),
            bg = shap.background,
            base = num(shap.explanation.base_value),
            err = num(shap.explanation.additivity_error),
        );
        for (feature, v) in &shap.mean_abs {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(feature),
                num(*v),
                bar(*v, max, None)
            );
        }
        h.push_str("</tbody></table></section>");
    }
}

fn fairness(h: &mut String, report: &FairnessReport) {
    let frame = &report.frame;
    let _ = write!(
        h,
        "<section id=\"fairness\"><h2>Group metrics <small>by {}</small></h2><table><thead><tr>\
         <th>group</th><th class=\"num\">rows</th><th class=\"num\">selection rate</th><th></th>\
         <th class=\"num\">TPR</th><th class=\"num\">FPR</th><th class=\"num\">accuracy</th></tr></thead><tbody>",
        esc(&frame.sensitive_columns.join(" × "))
    );
    let groups = frame
        .by_group
        .iter()
        .map(|g| (g.group.to_string(), &g.rates))
        .chain(std::iter::once(("(all rows)".to_owned(), &frame.overall)));
    for (name, r) in groups {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&name),
            r.count,
            num(r.selection_rate),
            bar(r.selection_rate, 1.0, None),
            num(r.true_positive_rate),
            num(r.false_positive_rate),
            num(r.accuracy)
        );
    }
    for empty in &frame.empty_cells {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">0</td><td colspan=\"5\">no rows</td></tr>",
            esc(&empty.to_string())
        );
    }
    h.push_str("</tbody></table>");
    if let Some(two) = &report.two_group {
        let _ = write!(
            h,
            "<p class=\"note\">AIF360's metrics compare the privileged group {} ({} rows) with \
             every other row ({} rows).</p>",
            esc(&two.privileged_group.to_string()),
            two.privileged.count,
            two.unprivileged.count
        );
    }
    h.push_str(
        "<h2>Disparities</h2><table><thead><tr><th>metric</th><th>convention</th>\
         <th class=\"num\">value</th><th class=\"num\">interval</th><th>tag</th></tr></thead><tbody>",
    );
    for d in &report.disparities {
        let interval = d.interval.map_or_else(
            || "—".to_owned(),
            |i| {
                format!(
                    "[{}, {}] at {:.0}%",
                    num(i.low),
                    num(i.high),
                    i.confidence * 100.0
                )
            },
        );
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:?}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td><code>{}</code></td></tr>",
            esc(d.name),
            d.convention,
            num(d.value),
            esc(&interval),
            esc(&d.tag_key())
        );
    }
    h.push_str("</tbody></table></section>");
}
