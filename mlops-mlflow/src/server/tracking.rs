//! The tracking half of MLflow's REST API (`service.proto`): experiments, runs, metrics.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::{delete, get, patch, post};
use mlops_core::tracker::{
    CreateExperimentOptions, CreateRunOptions, LogBatch, PageOptions, SearchExperimentsOptions,
    SearchRunsOptions, TrackerExt, UpdateRunOptions,
};
use mlops_core::tracking::{
    DatasetInput, Experiment, LifecycleStage, Metric, Param, Run, RunInfo, Tag, ViewType, tags,
};
use mlops_core::{ExperimentId, ExperimentName, MetricKey, RunId, TagKey};
use serde::Deserialize;
use serde_json::{Value, json};

use super::entities::{experiment_to_json, metric_to_json, run_info_to_json, run_to_json};
use super::params::{Params, double, opt_i64, opt_string, opt_usize, string, strings};
use super::{ApiError, ApiResult, AppState, MlflowServer, logged_models, ok};
use crate::json::{JDatasetInput, JTag};

type Answer = ApiResult<Json<Value>>;

pub(super) fn routes() -> Router<Arc<MlflowServer>> {
    Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route(
            "/experiments/search",
            post(search_experiments).get(search_experiments),
        )
        .route("/experiments/list", get(search_experiments))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route("/runs/create", post(create_run))
        .route("/runs/update", post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/runs/get", get(get_run))
        .route("/runs/search", post(search_runs).get(search_runs))
        .route("/metrics/get-history", get(get_history))
        .route(
            "/metrics/get-history-bulk-interval",
            get(get_history_bulk_interval),
        )
        .route("/logged-models", post(logged_models::create))
        .route("/logged-models/search", post(logged_models::search))
        .route(
            "/logged-models/{id}",
            get(logged_models::get)
                .patch(logged_models::finalize)
                .delete(logged_models::delete),
        )
        .route("/logged-models/{id}/tags", patch(logged_models::set_tags))
        .route(
            "/logged-models/{id}/tags/{key}",
            delete(logged_models::delete_tag),
        )
        .route(
            "/logged-models/{id}/params",
            post(logged_models::log_params),
        )
        .route("/runs/outputs", post(logged_models::log_outputs))
}

/// Where a run's artifacts are, as this server's clients must see it: through its proxy.
pub(super) fn run_artifact_uri(info: &RunInfo) -> String {
    format!(
        "mlflow-artifacts:/{}/{}/artifacts",
        info.experiment_id, info.run_id
    )
}

fn experiment_json(e: &Experiment) -> Value {
    experiment_to_json(e, &format!("mlflow-artifacts:/{}", e.experiment_id))
}

fn run_json(r: &Run) -> Value {
    run_to_json(r, &run_artifact_uri(&r.info))
}

fn view_type(v: Option<&str>) -> ApiResult<ViewType> {
    Ok(match v.map(str::to_ascii_uppercase).as_deref() {
        None | Some("" | "ACTIVE_ONLY" | "1") => ViewType::ActiveOnly,
        Some("DELETED_ONLY" | "2") => ViewType::DeletedOnly,
        Some("ALL" | "3") => ViewType::All,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "view type {other:?} is not one of ACTIVE_ONLY, DELETED_ONLY, ALL"
            )));
        }
    })
}

fn run_id(id: Option<String>, legacy: Option<String>) -> ApiResult<RunId> {
    let id = id
        .filter(|s| !s.is_empty())
        .or(legacy.filter(|s| !s.is_empty()))
        .ok_or_else(|| ApiError::invalid("missing value for required parameter 'run_id'"))?;
    Ok(id.parse()?)
}

fn core_tags(tags: Vec<JTag>) -> ApiResult<Vec<Tag>> {
    tags.into_iter()
        .map(|t| Ok(Tag::new(t.key.parse()?, t.value.unwrap_or_default())?))
        .collect()
}

fn page_token(p: Option<String>) -> Option<String> {
    p.filter(|t| !t.is_empty())
}

fn with_token(mut v: Value, token: Option<String>) -> Value {
    if let (Some(t), Some(o)) = (token, v.as_object_mut()) {
        o.insert("next_page_token".into(), t.into());
    }
    v
}

// --- experiments -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct CreateExperiment {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(default, deserialize_with = "opt_string")]
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<JTag>,
}

async fn create_experiment(st: AppState, p: Params) -> Answer {
    let r: CreateExperiment = p.read()?;
    let name: ExperimentName = r.name.parse()?;
    let mut options = CreateExperimentOptions::default();
    options.tags = core_tags(r.tags)?;
    options.artifact_location = r.artifact_location.filter(|l| !l.is_empty());
    let id = st.tracker.create_experiment(&name, options).await?;
    st.durable().await?;
    ok(json!({"experiment_id": id.as_str()}))
}

#[derive(Deserialize)]
struct ExperimentRef {
    #[serde(deserialize_with = "string")]
    experiment_id: String,
}

async fn get_experiment(st: AppState, p: Params) -> Answer {
    let r: ExperimentRef = p.read()?;
    let e = st.tracker.get_experiment(&r.experiment_id.parse()?).await?;
    ok(json!({"experiment": experiment_json(&e)}))
}

#[derive(Deserialize)]
struct ExperimentByName {
    #[serde(deserialize_with = "string")]
    experiment_name: String,
}

async fn get_experiment_by_name(st: AppState, p: Params) -> Answer {
    let r: ExperimentByName = p.read()?;
    let e = st
        .tracker
        .get_experiment_by_name(&r.experiment_name.parse()?)
        .await?;
    ok(json!({"experiment": experiment_json(&e)}))
}

#[derive(Deserialize)]
struct SearchExperiments {
    #[serde(default, deserialize_with = "opt_usize")]
    max_results: Option<usize>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "strings")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    view_type: Option<String>,
}

async fn search_experiments(st: AppState, p: Params) -> Answer {
    let r: SearchExperiments = p.read()?;
    let mut options = SearchExperimentsOptions::default();
    options.filter = r.filter.filter(|f| !f.trim().is_empty());
    options.order_by = r.order_by;
    options.view_type = view_type(r.view_type.as_deref())?;
    options.max_results = r.max_results;
    options.page_token = page_token(r.page_token);
    let page = st.tracker.search_experiments(options).await?;
    let experiments: Vec<Value> = page.items.iter().map(experiment_json).collect();
    ok(with_token(
        json!({"experiments": experiments}),
        page.next_page_token,
    ))
}

async fn delete_experiment(st: AppState, p: Params) -> Answer {
    let r: ExperimentRef = p.read()?;
    st.tracker
        .set_experiment_lifecycle(&r.experiment_id.parse()?, LifecycleStage::Deleted)
        .await?;
    st.durable().await?;
    ok(json!({}))
}

async fn restore_experiment(st: AppState, p: Params) -> Answer {
    let r: ExperimentRef = p.read()?;
    st.tracker
        .set_experiment_lifecycle(&r.experiment_id.parse()?, LifecycleStage::Active)
        .await?;
    st.durable().await?;
    ok(json!({}))
}

async fn update_experiment(st: AppState, p: Params) -> Answer {
    let r: ExperimentRef = p.read()?;
    // Answer NotFound for a missing experiment before saying what is unsupported.
    st.tracker.get_experiment(&r.experiment_id.parse()?).await?;
    Err(ApiError::not_implemented(
        "renaming an experiment is not supported: mlops experiment names are permanent",
    ))
}

#[derive(Deserialize)]
struct ExperimentTag {
    #[serde(deserialize_with = "string")]
    experiment_id: String,
    #[serde(deserialize_with = "string")]
    key: String,
    #[serde(default, deserialize_with = "opt_string")]
    value: Option<String>,
}

async fn set_experiment_tag(st: AppState, p: Params) -> Answer {
    let r: ExperimentTag = p.read()?;
    let tag = Tag::new(r.key.parse()?, r.value.unwrap_or_default())?;
    st.tracker
        .set_experiment_tag(&r.experiment_id.parse()?, tag)
        .await?;
    st.durable().await?;
    ok(json!({}))
}

// --- runs ------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct CreateRun {
    #[serde(default, deserialize_with = "opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_name: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<JTag>,
}

async fn create_run(st: AppState, p: Params) -> Answer {
    let r: CreateRun = p.read()?;
    let mut options = CreateRunOptions::default();
    options.experiment_id = match r.experiment_id.filter(|e| !e.is_empty()) {
        Some(e) => Some(e.parse::<ExperimentId>()?),
        None => None,
    };
    options.run_name = r.run_name.filter(|n| !n.is_empty());
    options.start_time = r.start_time;
    options.user_id = r.user_id.filter(|u| !u.is_empty());
    for tag in core_tags(r.tags)? {
        // MLflow's clients say "nested" with this tag; the tracker checks the parent exists.
        if tag.key.as_str() == tags::PARENT_RUN_ID {
            options.parent_run_id = Some(tag.value.parse()?);
        } else {
            options.tags.push(tag);
        }
    }
    let run = st.tracker.create_run(options).await?;
    st.durable().await?;
    ok(json!({"run": run_json(&run)}))
}

#[derive(Deserialize)]
struct UpdateRun {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_uuid: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    end_time: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    run_name: Option<String>,
}

async fn update_run(st: AppState, p: Params) -> Answer {
    let r: UpdateRun = p.read()?;
    let id = run_id(r.run_id, r.run_uuid)?;
    let mut options = UpdateRunOptions::default();
    options.status = match r.status.filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse()?),
        None => None,
    };
    options.end_time = r.end_time;
    options.run_name = r.run_name.filter(|n| !n.is_empty());
    let info = st.tracker.update_run(&id, options).await?;
    st.durable().await?;
    ok(json!({"run_info": run_info_to_json(&info, &run_artifact_uri(&info))}))
}

#[derive(Deserialize)]
struct RunRef {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_uuid: Option<String>,
}

async fn delete_run(st: AppState, p: Params) -> Answer {
    let r: RunRef = p.read()?;
    st.tracker
        .set_run_lifecycle(&run_id(r.run_id, r.run_uuid)?, LifecycleStage::Deleted)
        .await?;
    st.durable().await?;
    ok(json!({}))
}

async fn restore_run(st: AppState, p: Params) -> Answer {
    let r: RunRef = p.read()?;
    st.tracker
        .set_run_lifecycle(&run_id(r.run_id, r.run_uuid)?, LifecycleStage::Active)
        .await?;
    st.durable().await?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct LogMetric {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_uuid: Option<String>,
    #[serde(deserialize_with = "string")]
    key: String,
    #[serde(deserialize_with = "double")]
    value: f64,
    #[serde(deserialize_with = "timestamp")]
    timestamp: i64,
    #[serde(default, deserialize_with = "opt_i64")]
    step: Option<i64>,
}

/// A required integer timestamp.
fn timestamp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    opt_i64(d)?.ok_or_else(|| serde::de::Error::custom("timestamp must be set"))
}

fn metric(key: &str, value: f64, timestamp: i64, step: Option<i64>) -> ApiResult<Metric> {
    let key: MetricKey = key.parse()?;
    let mut m = Metric::new(key, value, step.unwrap_or(0));
    m.timestamp_ms = timestamp;
    Ok(m)
}

async fn log_metric(st: AppState, p: Params) -> Answer {
    let r: LogMetric = p.read()?;
    let id = run_id(r.run_id, r.run_uuid)?;
    let batch = LogBatch::new().metric(metric(&r.key, r.value, r.timestamp, r.step)?);
    st.tracker.log_batch(&id, batch).await?;
    st.durable().await?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct KeyValue {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_uuid: Option<String>,
    #[serde(deserialize_with = "string")]
    key: String,
    #[serde(default, deserialize_with = "opt_string")]
    value: Option<String>,
}

async fn log_param(st: AppState, p: Params) -> Answer {
    let r: KeyValue = p.read()?;
    let id = run_id(r.run_id, r.run_uuid)?;
    let value = r
        .value
        .ok_or_else(|| ApiError::invalid("missing value for required parameter 'value'"))?;
    let batch = LogBatch::new().param(Param::new(r.key.parse()?, value)?);
    st.tracker.log_batch(&id, batch).await?;
    st.durable().await?;
    ok(json!({}))
}

async fn set_tag(st: AppState, p: Params) -> Answer {
    let r: KeyValue = p.read()?;
    let id = run_id(r.run_id, r.run_uuid)?;
    let batch = LogBatch::new().tag(Tag::new(r.key.parse()?, r.value.unwrap_or_default())?);
    st.tracker.log_batch(&id, batch).await?;
    st.durable().await?;
    ok(json!({}))
}

async fn delete_tag(st: AppState, p: Params) -> Answer {
    let r: KeyValue = p.read()?;
    let id = run_id(r.run_id, None)?;
    let key: TagKey = r.key.parse()?;
    st.tracker.delete_run_tag(&id, &key).await?;
    st.durable().await?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct BatchMetric {
    #[serde(deserialize_with = "string")]
    key: String,
    #[serde(deserialize_with = "double")]
    value: f64,
    #[serde(deserialize_with = "timestamp")]
    timestamp: i64,
    #[serde(default, deserialize_with = "opt_i64")]
    step: Option<i64>,
}

#[derive(Deserialize)]
struct LogBatchRequest {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default)]
    metrics: Vec<BatchMetric>,
    #[serde(default)]
    params: Vec<JTag>,
    #[serde(default)]
    tags: Vec<JTag>,
}

async fn log_batch(st: AppState, p: Params) -> Answer {
    let r: LogBatchRequest = p.read()?;
    let id = run_id(r.run_id, None)?;
    let mut batch = LogBatch::new();
    for m in r.metrics {
        batch = batch.metric(metric(&m.key, m.value, m.timestamp, m.step)?);
    }
    for p in r.params {
        batch = batch.param(Param::new(p.key.parse()?, p.value.unwrap_or_default())?);
    }
    for t in core_tags(r.tags)? {
        batch = batch.tag(t);
    }
    batch.check_limits()?;
    st.tracker.log_batch(&id, batch).await?;
    st.durable().await?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct LogInputs {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default)]
    datasets: Vec<JDatasetInput>,
}

async fn log_inputs(st: AppState, p: Params) -> Answer {
    let r: LogInputs = p.read()?;
    let id = run_id(r.run_id, None)?;
    let inputs: Vec<DatasetInput> = r
        .datasets
        .into_iter()
        .map(JDatasetInput::into_core)
        .collect();
    st.tracker.log_inputs(&id, inputs).await?;
    st.durable().await?;
    ok(json!({}))
}

async fn get_run(st: AppState, p: Params) -> Answer {
    let r: RunRef = p.read()?;
    let run = st.tracker.get_run(&run_id(r.run_id, r.run_uuid)?).await?;
    let mut json = run_json(&run);
    if let (Some(outputs), Some(o)) = (
        logged_models::run_outputs(&st, &run.info.run_id).await?,
        json.as_object_mut(),
    ) {
        o.insert("outputs".into(), outputs);
    }
    ok(json!({"run": json}))
}

#[derive(Deserialize)]
struct SearchRuns {
    #[serde(default, deserialize_with = "strings")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "opt_usize")]
    max_results: Option<usize>,
    #[serde(default, deserialize_with = "strings")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

async fn search_runs(st: AppState, p: Params) -> Answer {
    let r: SearchRuns = p.read()?;
    let mut options = SearchRunsOptions::default();
    options.experiment_ids = r
        .experiment_ids
        .iter()
        .map(|e| e.parse())
        .collect::<mlops_core::Result<_>>()?;
    options.filter = r.filter.filter(|f| !f.trim().is_empty());
    options.view_type = view_type(r.run_view_type.as_deref())?;
    options.max_results = r.max_results;
    options.order_by = r.order_by;
    options.page_token = page_token(r.page_token);
    let page = st.tracker.search_runs(options).await?;
    let runs: Vec<Value> = page.items.iter().map(run_json).collect();
    ok(with_token(json!({"runs": runs}), page.next_page_token))
}

// --- metric histories ------------------------------------------------------------------------

#[derive(Deserialize)]
struct GetHistory {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_uuid: Option<String>,
    #[serde(deserialize_with = "string")]
    metric_key: String,
    #[serde(default, deserialize_with = "opt_usize")]
    max_results: Option<usize>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

async fn get_history(st: AppState, p: Params) -> Answer {
    let r: GetHistory = p.read()?;
    let id = run_id(r.run_id, r.run_uuid)?;
    let key: MetricKey = r.metric_key.parse()?;
    let mut options = PageOptions::default();
    options.max_results = r.max_results;
    options.page_token = page_token(r.page_token);
    let page = st.tracker.get_metric_history(&id, &key, options).await?;
    let metrics: Vec<Value> = page.items.iter().map(metric_to_json).collect();
    ok(with_token(
        json!({"metrics": metrics}),
        page.next_page_token,
    ))
}

/// MLflow's bounds on `get-history-bulk-interval`.
const MAX_BULK_RUNS: usize = 100;
const DEFAULT_BULK_STEPS: usize = 320;
const MAX_BULK_STEPS: usize = 1000;

#[derive(Deserialize)]
struct BulkInterval {
    #[serde(default, deserialize_with = "strings")]
    run_ids: Vec<String>,
    #[serde(deserialize_with = "string")]
    metric_key: String,
    #[serde(default, deserialize_with = "opt_i64")]
    start_step: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    end_step: Option<i64>,
    #[serde(default, deserialize_with = "opt_usize")]
    max_results: Option<usize>,
}

/// The histories of one metric across runs, sampled to at most `max_results` steps: the distinct
/// steps of all runs in `[start_step, end_step]`, thinned evenly when there are more (the first
/// and last always kept), and every value at a kept step — what MLflow's UI draws its charts
/// from.
async fn get_history_bulk_interval(st: AppState, p: Params) -> Answer {
    let r: BulkInterval = p.read()?;
    if r.run_ids.is_empty() {
        return Err(ApiError::invalid("run_ids must name at least one run"));
    }
    if r.run_ids.len() > MAX_BULK_RUNS {
        return Err(ApiError::invalid(format!(
            "{} run_ids exceed the limit of {MAX_BULK_RUNS}",
            r.run_ids.len()
        )));
    }
    let max = r.max_results.unwrap_or(DEFAULT_BULK_STEPS);
    if max == 0 || max > MAX_BULK_STEPS {
        return Err(ApiError::invalid(format!(
            "max_results must be between 1 and {MAX_BULK_STEPS}, not {max}"
        )));
    }
    let (start, end) = (
        r.start_step.unwrap_or(i64::MIN),
        r.end_step.unwrap_or(i64::MAX),
    );
    if start > end {
        return Err(ApiError::invalid(format!(
            "start_step {start} is after end_step {end}"
        )));
    }
    let key: MetricKey = r.metric_key.parse()?;
    let mut histories = Vec::with_capacity(r.run_ids.len());
    for id in &r.run_ids {
        let id: RunId = id.parse()?;
        let mut history = st.tracker.metric_history(&id, &key).await?;
        history.retain(|m| (start..=end).contains(&m.step));
        histories.push((id, history));
    }
    let steps: BTreeSet<i64> = histories
        .iter()
        .flat_map(|(_, h)| h.iter().map(|m| m.step))
        .collect();
    let steps: Vec<i64> = steps.into_iter().collect();
    let kept: BTreeSet<i64> = sample_evenly(&steps, max).into_iter().collect();
    let mut out = Vec::new();
    for (id, mut history) in histories {
        history.retain(|m| kept.contains(&m.step));
        history.sort_by_key(|m| (m.step, m.timestamp_ms));
        for m in &history {
            let mut v = metric_to_json(m);
            if let Some(o) = v.as_object_mut() {
                o.insert("run_id".into(), id.as_str().into());
            }
            out.push(v);
        }
    }
    ok(json!({"metrics": out}))
}

/// At most `n` of `items`, evenly spaced, keeping the first and the last.
fn sample_evenly<T: Copy>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    if n == 1 {
        return items.first().copied().into_iter().collect();
    }
    let last = items.len() - 1;
    // The indices are non-decreasing, and distinct when there are more items than picks.
    (0..n).map(|i| items[i * last / (n - 1)]).collect()
}

#[cfg(test)]
mod tests {
    use super::sample_evenly;

    #[test]
    fn sampling_keeps_the_ends_and_bounds_the_count() {
        let steps: Vec<i64> = (0..1000).collect();
        let s = sample_evenly(&steps, 10);
        assert_eq!(s.len(), 10);
        assert_eq!(s.first(), Some(&0));
        assert_eq!(s.last(), Some(&999));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_evenly(&steps[..5], 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_evenly(&steps, 1), vec![0]);
    }
}
