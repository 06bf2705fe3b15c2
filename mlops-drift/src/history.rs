//! Drift reports kept over time in a [`Tracker`]: each report is a run in the experiment
//! [`EXPERIMENT`] (Evidently's "snapshots in a project"), with
//!
//! - metrics `share_drifted`, `drifted_columns`, `columns_tested` and one `score/<column>` per
//!   tested column (the test's p-value or distance; names outside MLflow's key alphabet are
//!   written with `_`),
//! - tags [`MODEL_TAG`] and [`VERSION_TAG`] naming the model version whose inputs were judged,
//!   and [`DRIFT_TAG`] (`true`/`false`, Evidently's dataset drift verdict),
//! - params `reference` and `current` (what was compared),
//! - the whole [`Report`] as the artifacts [`REPORT_JSON`] and [`REPORT_HTML`].
//!
//! What is written here is what [`logged_reports`] and [`load_report`] read, so a UI or a
//! dashboard never spells these names by hand.

use std::collections::BTreeMap;

use bytes::Bytes;
use mlops_core::tracker::{CreateRunOptions, LogBatch, SearchRunsOptions, Tracker, TrackerExt};
use mlops_core::tracking::{Metric, Param, RunStatus, Tag};
use mlops_core::{Error, ModelName, Result, RunId, Version};
use serde::Serialize;

use crate::Report;

/// The experiment drift reports are logged into.
pub const EXPERIMENT: &str = "drift-reports";
/// The judged model's name.
pub const MODEL_TAG: &str = "mlops.drift.model";
/// The judged model's version.
pub const VERSION_TAG: &str = "mlops.drift.model_version";
/// `true` when the dataset drifted.
pub const DRIFT_TAG: &str = "mlops.drift.dataset_drift";
/// The report as JSON.
pub const REPORT_JSON: &str = "drift_report.json";
/// The report as a standalone HTML page.
pub const REPORT_HTML: &str = "drift_report.html";
/// Prefix of the per-column score metrics.
pub const SCORE_PREFIX: &str = "score/";

/// A column name as a metric key segment: MLflow's key alphabet, other characters as `_`.
fn key_segment(column: &str) -> String {
    column
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-. :".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Logs `report` as a finished run in [`EXPERIMENT`], about `model` when given; returns the run.
pub async fn log_report(
    tracker: &dyn Tracker,
    report: &Report,
    model: Option<(&ModelName, Version)>,
) -> Result<RunId> {
    let experiment = tracker
        .get_or_create_experiment(&EXPERIMENT.parse()?)
        .await?;
    let name = match model {
        Some((m, v)) => format!("{m} v{v} · {}", report.current.name),
        None => format!("{} vs {}", report.current.name, report.reference.name),
    };
    let mut options = CreateRunOptions::default()
        .in_experiment(experiment)
        .with_name(name)
        .with_tag(Tag::new(
            DRIFT_TAG.parse()?,
            report.dataset_drift.to_string(),
        )?);
    if let Some((m, v)) = model {
        options = options
            .with_tag(Tag::new(MODEL_TAG.parse()?, m.to_string())?)
            .with_tag(Tag::new(VERSION_TAG.parse()?, v.to_string())?);
    }
    let run = tracker.create_run(options).await?.info.run_id;
    let metric =
        |key: &str, value: f64| -> Result<Metric> { Ok(Metric::new(key.parse()?, value, 0)) };
    let mut batch = LogBatch::new()
        .metric(metric("share_drifted", report.share_drifted)?)
        .metric(metric("drifted_columns", report.drifted_columns as f64)?)
        .metric(metric("columns_tested", report.columns_tested as f64)?)
        .param(Param::new(
            "reference".parse()?,
            truncate(&report.reference.name),
        )?)
        .param(Param::new(
            "current".parse()?,
            truncate(&report.current.name),
        )?);
    let mut seen = std::collections::BTreeSet::new();
    for c in &report.columns {
        let key = format!("{SCORE_PREFIX}{}", key_segment(&c.drift.column));
        // Two columns that map to one key keep the first; the JSON artifact has both.
        if c.drift.score.is_finite()
            && seen.insert(key.clone())
            && let Ok(m) = metric(&key, c.drift.score)
        {
            batch = batch.metric(m);
        }
    }
    tracker.log_batch(&run, batch).await?;
    tracker
        .put_artifact(&run, &REPORT_JSON.parse()?, Bytes::from(report.to_json()?))
        .await?;
    tracker
        .put_artifact(&run, &REPORT_HTML.parse()?, Bytes::from(report.to_html()))
        .await?;
    tracker.end_run(&run, RunStatus::Finished).await?;
    Ok(run)
}

fn truncate(text: &str) -> String {
    text.chars().take(500).collect()
}

/// A logged report as listed: what a timeline of reports needs, without the artifacts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedReport {
    /// The run holding it.
    pub run_id: RunId,
    /// When it was logged, ms.
    pub time_ms: i64,
    /// The judged model, when one was named.
    pub model: Option<String>,
    /// Its version.
    pub version: Option<u64>,
    /// Reference data.
    pub reference: String,
    /// Current data.
    pub current: String,
    /// Evidently's dataset drift verdict.
    pub dataset_drift: bool,
    /// The share of tested columns that drifted.
    pub share_drifted: f64,
    /// Score per column (metric key segment → score).
    pub scores: BTreeMap<String, f64>,
}

/// Every logged report, oldest first; only those about `model` when given. No reports yet is
/// an empty list.
pub async fn logged_reports(
    tracker: &dyn Tracker,
    model: Option<&ModelName>,
) -> Result<Vec<LoggedReport>> {
    let experiment = match tracker.get_experiment_by_name(&EXPERIMENT.parse()?).await {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut options = SearchRunsOptions::default().in_experiment(experiment.experiment_id);
    if let Some(m) = model {
        options = options.with_filter(format!(
            "tags.`{MODEL_TAG}` = '{}'",
            m.as_str().replace('\'', "\\'")
        ));
    }
    let runs = tracker.search_all_runs(options).await?;
    let mut out: Vec<LoggedReport> = runs
        .into_iter()
        .map(|r| LoggedReport {
            time_ms: r.info.start_time,
            model: r.data.tags.get(MODEL_TAG).cloned(),
            version: r.data.tags.get(VERSION_TAG).and_then(|v| v.parse().ok()),
            reference: r.data.params.get("reference").cloned().unwrap_or_default(),
            current: r.data.params.get("current").cloned().unwrap_or_default(),
            dataset_drift: r.data.tags.get(DRIFT_TAG).is_some_and(|v| v == "true"),
            share_drifted: r.metric("share_drifted").unwrap_or(f64::NAN),
            scores: r
                .data
                .metrics
                .iter()
                .filter_map(|(k, m)| {
                    Some((k.as_str().strip_prefix(SCORE_PREFIX)?.to_string(), m.value))
                })
                .collect(),
            run_id: r.info.run_id,
        })
        .collect();
    out.sort_by(|a, b| {
        a.time_ms
            .cmp(&b.time_ms)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    Ok(out)
}

/// The whole report logged in `run`; `NotFound` when the run holds none.
pub async fn load_report(tracker: &dyn Tracker, run: &RunId) -> Result<Report> {
    let bytes = tracker.get_artifact(run, &REPORT_JSON.parse()?).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(
            "drift report",
            format!("{REPORT_JSON} of run {run} is not a report"),
        )
        .with_source(e)
    })
}
