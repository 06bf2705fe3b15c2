//! Pipeline runs in a [`Tracker`]: a run per pipeline run, a child run per step, and reading
//! them back ([`history`]) — the tags written here are the ones read here, so `mlops cost` and
//! any other reader never spell them by hand.

use std::collections::BTreeSet;

use mlops_core::tracker::{CreateRunOptions, SearchRunsOptions};
use mlops_core::{
    ExperimentId, LogBatch, Metric, Param, Result, Run, RunId, RunStatus, Tag, Tracker, TrackerExt,
};
use serde::Serialize;

use crate::pipeline::StepDef;
use crate::report::{PipelineReport, StepReport, StepStatus};
use crate::resources::Usage;

/// The experiment pipeline runs go to unless told otherwise.
pub const DEFAULT_EXPERIMENT: &str = "pipelines";
/// Tag on pipeline and step runs naming the pipeline.
pub const PIPELINE_TAG: &str = "mlops.pipeline";
/// Tag on step runs naming the step.
pub const STEP_TAG: &str = "mlops.step";
/// Tag on step runs: `hit` (served from the cache) or `miss` (executed).
pub const CACHE_TAG: &str = "mlops.cache";
/// Tag on step runs: the [`StepStatus`] it ended with.
pub const STATUS_TAG: &str = "mlops.status";
/// Tag on failed step runs and pipeline runs: the error (or why the step did not run).
pub const ERROR_TAG: &str = "mlops.error";
/// Tag on a failed pipeline run: the step that failed.
pub const FAILED_STEP_TAG: &str = "mlops.failed_step";
/// Tag on pipeline runs: the rate card's currency.
pub const CURRENCY_TAG: &str = "mlops.currency";
/// Prefix of the step-run tags holding each output's digest (`mlops.output.<name>`).
pub const OUTPUT_TAG_PREFIX: &str = "mlops.output.";
/// Tag on a step's run: the steps it depends on, comma-separated (the DAG's edges).
pub const NEEDS_TAG: &str = "mlops.needs";

/// Tags and params are bounded (MLflow's 5000/8000 characters): keep messages within them.
fn truncate(s: &str) -> String {
    s.chars().take(5000).collect()
}

fn metric(key: &str, value: f64) -> Result<Metric> {
    Ok(Metric::new(key.parse()?, value, 0))
}

fn tag(key: &str, value: impl Into<String>) -> Result<Tag> {
    Tag::new(key.parse()?, value)
}

/// Opens the run of a pipeline run in `experiment` (created when missing).
pub(crate) async fn open_parent(
    tracker: &dyn Tracker,
    experiment: &str,
    pipeline: &str,
    steps: usize,
    only: Option<Vec<String>>,
    force: bool,
) -> Result<(RunId, ExperimentId)> {
    let experiment = tracker
        .get_or_create_experiment(&experiment.parse()?)
        .await?;
    let run = tracker
        .create_run(
            CreateRunOptions::default()
                .in_experiment(experiment.clone())
                .with_name(pipeline.to_owned())
                .with_tag(tag(PIPELINE_TAG, pipeline)?),
        )
        .await?;
    let mut batch = LogBatch::new().param(Param::new("steps".parse()?, steps.to_string())?);
    if let Some(only) = only {
        batch = batch.param(Param::new("only".parse()?, only.join(","))?);
    }
    batch = batch.param(Param::new("force".parse()?, force.to_string())?);
    tracker.log_batch(&run.info.run_id, batch).await?;
    // Durable from the start: a runner killed midway leaves a RUNNING run, not nothing.
    tracker.flush().await?;
    Ok((run.info.run_id, experiment))
}

/// Where a pipeline run's step runs go: its tracker, its run and experiment.
#[derive(Debug, Clone)]
pub(crate) struct ParentRun {
    pub(crate) run_id: RunId,
    pub(crate) experiment: ExperimentId,
}

/// Opens a step's child run.
pub(crate) async fn open_child(
    tracker: &dyn Tracker,
    parent: &ParentRun,
    pipeline: &str,
    step: &str,
) -> Result<RunId> {
    Ok(tracker
        .create_run(
            CreateRunOptions::default()
                .in_experiment(parent.experiment.clone())
                .with_parent(parent.run_id.clone())
                .with_name(step.to_owned())
                .with_tag(tag(PIPELINE_TAG, pipeline)?)
                .with_tag(tag(STEP_TAG, step)?),
        )
        .await?
        .info
        .run_id)
}

/// A `KILLED` child run for a step that did not run, saying why (so the pipeline's run shows
/// every step).
pub(crate) async fn log_not_run(
    tracker: &dyn Tracker,
    parent: &ParentRun,
    pipeline: &str,
    report: &StepReport,
    needs: &BTreeSet<&str>,
) -> Result<RunId> {
    let run = open_child(tracker, parent, pipeline, &report.name).await?;
    let mut batch = LogBatch::new()
        .tag(tag(STATUS_TAG, report.status.as_str())?)
        .tag(tag(NEEDS_TAG, join(needs))?);
    if let Some(why) = report.message() {
        batch = batch.tag(tag(ERROR_TAG, truncate(&why))?);
    }
    tracker.log_batch(&run, batch).await?;
    tracker.end_run(&run, RunStatus::Killed).await?;
    Ok(run)
}

/// Logs what a step that ran (or was served from the cache) did, and ends its run.
pub(crate) async fn log_step(
    tracker: &dyn Tracker,
    run: &RunId,
    def: &StepDef,
    report: &StepReport,
) -> Result<()> {
    let mut batch = LogBatch::new()
        .param(Param::new(
            "code_version".parse()?,
            def.code_version.clone(),
        )?)
        .param(Param::new(
            "cache_key".parse()?,
            report.cache_key.clone().unwrap_or_default(),
        )?)
        .tag(tag(
            CACHE_TAG,
            if report.status == StepStatus::Cached {
                "hit"
            } else {
                "miss"
            },
        )?)
        .tag(tag(STATUS_TAG, report.status.as_str())?)
        .tag(tag(NEEDS_TAG, join(&def.dependencies()))?)
        .metric(metric("wall_seconds", report.usage.wall_seconds)?)
        .metric(metric("cpu_seconds", report.usage.cpu_seconds)?)
        .metric(metric("gpu_seconds", report.usage.gpu_seconds)?)
        .metric(metric("cost", report.cost)?)
        .metric(metric("attempts", f64::from(report.attempts))?);
    if let Some(rss) = report.usage.peak_rss_bytes {
        batch = batch.metric(metric("peak_rss_bytes", rss as f64)?);
    }
    if let serde_json::Value::Object(params) = &def.params {
        for (k, v) in params.iter().take(90) {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Ok(key) = format!("param.{k}").parse() {
                batch = batch.param(Param::new(key, truncate(&text))?);
            }
        }
    }
    for (name, out) in &report.outputs {
        if let Ok(key) = format!("{OUTPUT_TAG_PREFIX}{name}").parse() {
            batch = batch.tag(Tag::new(key, out.digest.to_hex())?);
        }
    }
    if let Some(e) = report.message() {
        batch = batch.tag(tag(ERROR_TAG, truncate(&e))?);
    }
    tracker.log_batch(run, batch).await?;
    let status = match report.status {
        StepStatus::Succeeded | StepStatus::Cached => RunStatus::Finished,
        StepStatus::Failed => RunStatus::Failed,
        StepStatus::Skipped | StepStatus::Cancelled | StepStatus::Bypassed => RunStatus::Killed,
    };
    tracker.end_run(run, status).await?;
    Ok(())
}

/// Logs the pipeline run's totals and ends it: `FINISHED`, `FAILED`, or `KILLED` when it was
/// cancelled with no failure.
pub(crate) async fn close_parent(
    tracker: &dyn Tracker,
    run: &RunId,
    report: &PipelineReport,
    cancelled: bool,
) -> Result<()> {
    let count = |s: StepStatus| report.steps.iter().filter(|r| r.status == s).count() as f64;
    let usage_sum = |f: fn(&Usage) -> f64| report.steps.iter().map(|s| f(&s.usage)).sum::<f64>();
    let mut batch = LogBatch::new()
        .metric(metric("wall_seconds", report.wall_seconds)?)
        .metric(metric("cost", report.cost)?)
        .metric(metric("cpu_seconds", usage_sum(|u| u.cpu_seconds))?)
        .metric(metric("gpu_seconds", usage_sum(|u| u.gpu_seconds))?)
        .metric(metric(
            "steps_executed",
            count(StepStatus::Succeeded) + count(StepStatus::Failed),
        )?)
        .metric(metric("steps_cached", count(StepStatus::Cached))?)
        .metric(metric("steps_failed", count(StepStatus::Failed))?)
        .tag(tag(CURRENCY_TAG, report.currency.clone())?);
    if let Some(f) = report.failed() {
        batch = batch
            .tag(tag(FAILED_STEP_TAG, f.name.clone())?)
            .tag(tag(ERROR_TAG, truncate(&f.message().unwrap_or_default()))?);
    }
    tracker.log_batch(run, batch).await?;
    let status = if report.succeeded() {
        RunStatus::Finished
    } else if cancelled && report.failed().is_none() {
        RunStatus::Killed
    } else {
        RunStatus::Failed
    };
    tracker.end_run(run, status).await?;
    Ok(())
}

/// A pipeline run, read back from the tracker by [`history`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineRun {
    /// The pipeline.
    pub pipeline: String,
    /// Its tracked run.
    pub run_id: RunId,
    /// When it started, ms since the epoch.
    pub start_time: i64,
    /// How it ended (`RUNNING` while it runs).
    pub status: RunStatus,
    /// Summed step cost.
    pub cost: f64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// The rate card's currency.
    pub currency: String,
    /// Its steps, in the order they started.
    pub steps: Vec<StepRun>,
}

/// One step of a [`PipelineRun`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRun {
    /// The step.
    pub step: String,
    /// Its child run.
    pub run_id: RunId,
    /// How it ended, as [`StepStatus::as_str`] names it.
    pub status: String,
    /// `hit`, `miss`, or empty when it did not run.
    pub cache: String,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// CPU seconds.
    pub cpu_seconds: f64,
    /// GPU seconds.
    pub gpu_seconds: f64,
    /// Its price.
    pub cost: f64,
    /// The steps it depends on (empty for runs logged before this was recorded).
    pub needs: Vec<String>,
}

fn join(needs: &BTreeSet<&str>) -> String {
    needs.iter().copied().collect::<Vec<_>>().join(",")
}

/// The pipeline runs tracked in `experiment` (all pipelines, or only `pipeline`), by pipeline
/// and oldest first, each with its steps. A missing experiment is
/// [`mlops_core::Error::NotFound`].
pub async fn history(
    tracker: &dyn Tracker,
    experiment: &str,
    pipeline: Option<&str>,
) -> Result<Vec<PipelineRun>> {
    let experiment = tracker.get_experiment_by_name(&experiment.parse()?).await?;
    let runs = tracker
        .search_all_runs(SearchRunsOptions::default().in_experiment(experiment.experiment_id))
        .await?;
    let metric = |r: &Run, k: &str| r.data.metrics.get(k).map_or(0.0, |m| m.value);
    let tag = |r: &Run, k: &str| r.data.tags.get(k).cloned().unwrap_or_default();
    let mut out: Vec<PipelineRun> = runs
        .iter()
        .filter(|r| r.parent_run_id().is_none())
        .filter_map(|r| {
            let name = r.data.tags.get(PIPELINE_TAG)?;
            pipeline
                .is_none_or(|want| want == name)
                .then(|| (r, name.clone()))
        })
        .map(|(parent, name)| {
            let mut steps: Vec<(i64, StepRun)> = runs
                .iter()
                .filter(|r| r.parent_run_id() == Some(parent.info.run_id.as_str()))
                .map(|s| {
                    let run = StepRun {
                        step: tag(s, STEP_TAG),
                        run_id: s.info.run_id.clone(),
                        status: tag(s, STATUS_TAG),
                        cache: tag(s, CACHE_TAG),
                        wall_seconds: metric(s, "wall_seconds"),
                        cpu_seconds: metric(s, "cpu_seconds"),
                        gpu_seconds: metric(s, "gpu_seconds"),
                        cost: metric(s, "cost"),
                        needs: tag(s, NEEDS_TAG)
                            .split(',')
                            .filter(|n| !n.is_empty())
                            .map(String::from)
                            .collect(),
                    };
                    (s.info.start_time, run)
                })
                .collect();
            steps.sort_by(|a, b| (a.0, &a.1.step).cmp(&(b.0, &b.1.step)));
            PipelineRun {
                pipeline: name,
                run_id: parent.info.run_id.clone(),
                start_time: parent.info.start_time,
                status: parent.info.status,
                cost: metric(parent, "cost"),
                wall_seconds: metric(parent, "wall_seconds"),
                currency: parent
                    .data
                    .tags
                    .get(CURRENCY_TAG)
                    .cloned()
                    .unwrap_or_else(|| "USD".into()),
                steps: steps.into_iter().map(|(_, s)| s).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.pipeline, a.start_time, &a.run_id).cmp(&(&b.pipeline, b.start_time, &b.run_id))
    });
    Ok(out)
}
