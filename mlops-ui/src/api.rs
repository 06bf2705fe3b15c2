//! The JSON API the pages are built from, under `/api/`. Every endpoint is `GET`; errors are
//! `{"error_code": "INVALID_ARGUMENT" | "NOT_FOUND" | …, "message": "…"}` with the matching
//! status.
//!
//! | endpoint | query | answer |
//! |---|---|---|
//! | `/api/experiments` | | `{"experiments": [Experiment]}` |
//! | `/api/runs` | `experiment_ids` (comma-separated), `filter` (MLflow's grammar), `order_by` (comma-separated), `max_results` (≤ 1000, default 100), `page_token` | `{"runs": [Run], "next_page_token"}` |
//! | `/api/runs/{run_id}` | | `{"run": Run, "children": [RunInfo], "model_versions": [ModelVersion]}` |
//! | `/api/runs/{run_id}/metric-history` | `key`, `x` (`step` or `time`), `points` (default 1000, ≤ 100 000) | `{"key", "total", "points": [[x, y]]}`, LTTB-downsampled |
//! | `/api/runs/{run_id}/artifacts` | `path` (a folder; the root when absent) | `{"files": [ArtifactInfo]}` |
//! | `/api/runs/{run_id}/artifact` | `path`, `inline=1` (HTML shown, sandboxed) | the file's bytes, with `Content-Security-Policy: sandbox` |
//! | `/api/models` | `filter` | `{"models": [RegisteredModel]}` |
//! | `/api/models/{name}` | | `{"model": RegisteredModel, "versions": [ModelVersion]}` |
//! | `/api/models/{name}/versions/{version}` | | `{"version": ModelVersion, "decisions": Decisions}` |
//! | `/api/datasets` | | `{"datasets": [DatasetVersion]}` (the latest of each) |
//! | `/api/datasets/{name}` | `from`, `to` (versions, for a schema diff) | `{"versions": [DatasetVersion], "diff"}` |
//! | `/api/decisions` | `model`, `version` | `{"decisions": Decisions}`: `{"decisions": [LogEntry], "log": VerifyLogReport, "problem"}` (`null` without a store) |
//! | `/api/pipelines` | `experiment` (default `pipelines`) | `{"pipelines": [PipelineRun]}` |
//! | `/api/drift` | `model` | `{"reports": [LoggedReport]}`, oldest first (`mlops_drift::history`) |
//! | `/api/drift/{run_id}` | | `{"report": Report}`, the whole drift report |

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State as AxState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mlops_core::registry::{ModelVersion, RegisteredModel, RegistryExt, SearchRegistryOptions};
use mlops_core::tracker::{SearchExperimentsOptions, SearchRunsOptions, TrackerExt};
use mlops_core::tracking::{Experiment, Run, RunInfo};
use mlops_core::{
    ArtifactPath, DatasetName, Error, MetricKey, ModelName, RefName, Result, RunId, Version,
};
use mlops_policy::log::{DEFAULT_LOG, DecisionLog, LogEntry, VerifyLogReport};
use serde::Deserialize;
use serde_json::json;

use crate::chart::{Point, downsample};
use crate::error::{OrPage, P, Q, UiError};
use crate::{DEFAULT_CHART_POINTS, State};

type ApiResult = std::result::Result<Response, UiError>;
type St = AxState<Arc<State>>;

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/api/experiments", get(experiments))
        .route("/api/runs", get(runs))
        .route("/api/runs/{run_id}", get(run))
        .route("/api/runs/{run_id}/metric-history", get(metric_history))
        .route("/api/runs/{run_id}/artifacts", get(artifacts))
        .route("/api/runs/{run_id}/artifact", get(artifact))
        .route("/api/models", get(models))
        .route("/api/models/{name}", get(model))
        .route("/api/models/{name}/versions/{version}", get(model_version))
        .route("/api/datasets", get(datasets))
        .route("/api/datasets/{name}", get(dataset))
        .route("/api/decisions", get(decisions))
        .route("/api/pipelines", get(pipelines))
        .route("/api/drift", get(drift_reports))
        .route("/api/drift/{run_id}", get(drift_report))
        .fallback(not_found)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let error = Error::not_found("page", uri.path().to_string());
    if uri.path().starts_with("/api") {
        UiError::json(error).into_response()
    } else {
        UiError::page(error).into_response()
    }
}

// ---- shared loaders (the pages call these too) ----

pub(crate) fn parse<T: std::str::FromStr<Err = Error>>(
    what: &'static str,
    text: &str,
) -> Result<T> {
    text.parse::<T>()
        .map_err(|e| Error::invalid(what, format!("{text:?} is not a valid {what}")).with_source(e))
}

pub(crate) async fn all_experiments(state: &State) -> Result<Vec<Experiment>> {
    state
        .tracker
        .search_all_experiments(SearchExperimentsOptions::default())
        .await
}

/// A page of runs: `max_results` capped at 1000.
pub(crate) async fn search_runs(
    state: &State,
    experiment_ids: &[String],
    filter: Option<&str>,
    order_by: &[String],
    max_results: usize,
    page_token: Option<String>,
) -> Result<mlops_core::page::Page<Run>> {
    let mut options = SearchRunsOptions::default()
        .with_max_results(max_results.clamp(1, 1000))
        .with_page_token(page_token.filter(|t| !t.is_empty()));
    for id in experiment_ids {
        options = options.in_experiment(parse("experiment id", id)?);
    }
    if let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        options = options.with_filter(f);
    }
    for o in order_by.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        options = options.order_by(o);
    }
    state.tracker.search_runs(options).await
}

/// Runs whose `mlflow.parentRunId` is `run`, in its experiment.
pub(crate) async fn children(state: &State, run: &Run) -> Result<Vec<RunInfo>> {
    let filter = format!("tags.mlflow.parentRunId = '{}'", run.info.run_id);
    let runs = state
        .tracker
        .search_all_runs(
            SearchRunsOptions::default()
                .in_experiment(run.info.experiment_id.clone())
                .with_filter(filter),
        )
        .await?;
    Ok(runs.into_iter().map(|r| r.info).collect())
}

/// Every page of a registry search, in pages of 1000 (a registry may read every model per
/// page, so fewer pages cost less).
async fn all_pages<T, F, Fut>(mut options: SearchRegistryOptions, search: F) -> Result<Vec<T>>
where
    F: Fn(SearchRegistryOptions) -> Fut,
    Fut: std::future::Future<Output = Result<mlops_core::page::Page<T>>>,
{
    options.max_results = Some(1000);
    let mut out = vec![];
    loop {
        let page = search(options.clone()).await?;
        out.extend(page.items);
        match page.next_page_token {
            Some(t) => options.page_token = Some(t),
            None => return Ok(out),
        }
    }
}

/// Model versions whose source run is `run_id`.
pub(crate) async fn versions_of_run(state: &State, run_id: &RunId) -> Result<Vec<ModelVersion>> {
    let options = SearchRegistryOptions::default().with_filter(format!("run_id = '{run_id}'"));
    all_pages(options, |o| state.registry.search_model_versions(o)).await
}

pub(crate) async fn all_models(
    state: &State,
    filter: Option<&str>,
) -> Result<Vec<RegisteredModel>> {
    let mut options = SearchRegistryOptions::default();
    if let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) {
        options = options.with_filter(f);
    }
    all_pages(options, |o| state.registry.search_registered_models(o)).await
}

pub(crate) async fn model_versions(state: &State, name: &ModelName) -> Result<Vec<ModelVersion>> {
    let mut versions = state.registry.list_versions(name).await?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    Ok(versions)
}

/// Which axis a history is drawn against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum XAxis {
    #[default]
    Step,
    Time,
}

/// A metric's whole history as points, ordered by x.
pub(crate) async fn raw_history(
    state: &State,
    run_id: &RunId,
    key: &MetricKey,
    x: XAxis,
) -> Result<Vec<Point>> {
    let metrics = state.tracker.metric_history(run_id, key).await?;
    let mut all: Vec<Point> = metrics
        .iter()
        .map(|m| Point {
            x: match x {
                XAxis::Step => m.step as f64,
                XAxis::Time => m.timestamp_ms as f64,
            },
            y: m.value,
        })
        .collect();
    if !all.is_sorted_by(|a, b| a.x <= b.x) {
        all.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    Ok(all)
}

/// A metric's history downsampled to at most `points` (3 to 100 000), and how many values it
/// had.
pub(crate) async fn history(
    state: &State,
    run_id: &RunId,
    key: &MetricKey,
    x: XAxis,
    points: usize,
) -> Result<(usize, Vec<Point>)> {
    let all = raw_history(state, run_id, key, x).await?;
    Ok((all.len(), downsample(&all, points.clamp(3, 100_000))))
}

/// What the decision log says about a model (or everything): its entries, the chain's
/// verification, and what could not be read (a damaged log is shown, not a failed page).
#[derive(Debug, serde::Serialize)]
pub(crate) struct Decisions {
    pub(crate) decisions: Vec<LogEntry>,
    pub(crate) log: VerifyLogReport,
    pub(crate) problem: Option<String>,
}

/// The decision log (when the UI has a store), filtered to one model (and version), with the
/// chain's verification. A store that never logged a decision has an empty, verified log.
pub(crate) async fn decisions_for(
    state: &State,
    model: Option<&str>,
    version: Option<Version>,
) -> Result<Option<Decisions>> {
    let Some(store) = &state.store else {
        return Ok(None);
    };
    let log = match mlops_policy::log::verify(store.as_ref(), &RefName::new(DEFAULT_LOG)?).await {
        Ok(report) => report,
        Err(e) if e.is_not_found() => VerifyLogReport {
            segments: 0,
            verified: 0,
            head: mlops_policy::log::LogHead {
                entries: 0,
                hash: mlops_policy::log::GENESIS_HASH.to_string(),
            },
            first_bad: None,
        },
        Err(e) => return Err(e),
    };
    let read = async {
        match DecisionLog::open_default(store.clone())
            .await?
            .entries()
            .await
        {
            Err(e) if e.is_not_found() => Ok(vec![]),
            other => other,
        }
    };
    let (entries, problem) = match read.await {
        Ok(entries) => (entries, None),
        Err(e) => (vec![], Some(e.to_string())),
    };
    let about = |e: &LogEntry| {
        let m = &e.input["model"];
        model.is_none_or(|name| m["name"].as_str() == Some(name))
            && version.is_none_or(|v| m["version"].as_u64() == Some(v.get()))
    };
    Ok(Some(Decisions {
        decisions: entries.into_iter().filter(about).collect(),
        log,
        problem,
    }))
}

fn ok(body: serde_json::Value) -> ApiResult {
    Ok(Json(body).into_response())
}

fn to_json<T: serde::Serialize>(value: &T) -> std::result::Result<serde_json::Value, UiError> {
    serde_json::to_value(value)
        .map_err(|e| Error::backend("serde_json", e))
        .or_json()
}

// ---- handlers ----

async fn experiments(AxState(state): St) -> ApiResult {
    let experiments = all_experiments(&state).await.or_json()?;
    ok(json!({ "experiments": to_json(&experiments)? }))
}

#[derive(Deserialize, Default)]
pub(crate) struct RunsQuery {
    pub(crate) experiment_ids: Option<String>,
    pub(crate) filter: Option<String>,
    pub(crate) order_by: Option<String>,
    pub(crate) max_results: Option<usize>,
    pub(crate) page_token: Option<String>,
}

pub(crate) fn split_list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

async fn runs(AxState(state): St, Q(q): Q<RunsQuery>) -> ApiResult {
    let page = search_runs(
        &state,
        &split_list(q.experiment_ids.as_deref()),
        q.filter.as_deref(),
        &split_list(q.order_by.as_deref()),
        q.max_results.unwrap_or(100),
        q.page_token,
    )
    .await
    .or_json()?;
    // Serialized straight from the entities: a page of 1000 runs is megabytes of JSON, and a
    // `serde_json::Value` in between would double the work.
    #[derive(serde::Serialize)]
    struct RunsPage<'a> {
        runs: &'a [Run],
        next_page_token: Option<&'a str>,
    }
    Ok(Json(RunsPage {
        runs: &page.items,
        next_page_token: page.next_page_token.as_deref(),
    })
    .into_response())
}

async fn run(AxState(state): St, P(run_id): P<String>) -> ApiResult {
    let run_id: RunId = parse("run id", &run_id).or_json()?;
    let run = state.tracker.get_run(&run_id).await.or_json()?;
    let children = children(&state, &run).await.or_json()?;
    let versions = versions_of_run(&state, &run_id).await.or_json()?;
    ok(json!({
        "run": to_json(&run)?,
        "children": to_json(&children)?,
        "model_versions": to_json(&versions)?,
    }))
}

#[derive(Deserialize)]
struct HistoryQuery {
    key: Option<String>,
    #[serde(default)]
    x: XAxis,
    points: Option<usize>,
}

async fn metric_history(
    AxState(state): St,
    P(run_id): P<String>,
    Q(q): Q<HistoryQuery>,
) -> ApiResult {
    let run_id: RunId = parse("run id", &run_id).or_json()?;
    let key = q
        .key
        .ok_or_else(|| Error::invalid("key", "metric-history needs ?key=<metric>"))
        .or_json()?;
    let key: MetricKey = parse("metric key", &key).or_json()?;
    let (total, points) = history(
        &state,
        &run_id,
        &key,
        q.x,
        q.points.unwrap_or(DEFAULT_CHART_POINTS),
    )
    .await
    .or_json()?;
    let pairs: Vec<[f64; 2]> = points.iter().map(|p| [p.x, p.y]).collect();
    ok(json!({ "key": key.as_str(), "total": total, "points": pairs }))
}

#[derive(Deserialize)]
pub(crate) struct PathQuery {
    pub(crate) path: Option<String>,
    /// `1`: show HTML in the browser (sandboxed) instead of downloading it.
    pub(crate) inline: Option<String>,
}

/// `None` for the root; `InvalidArgument` for `..`, absolute paths and the like.
pub(crate) fn artifact_path(path: Option<&str>) -> Result<Option<ArtifactPath>> {
    match path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => Ok(Some(parse("artifact path", p)?)),
    }
}

async fn artifacts(AxState(state): St, P(run_id): P<String>, Q(q): Q<PathQuery>) -> ApiResult {
    let run_id: RunId = parse("run id", &run_id).or_json()?;
    let prefix = artifact_path(q.path.as_deref()).or_json()?;
    let files = state
        .tracker
        .list_artifacts(&run_id, prefix.as_ref())
        .await
        .or_json()?;
    ok(json!({ "files": to_json(&files)? }))
}

/// A content type for an artifact's name (download and preview).
pub(crate) fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    match ext.as_str() {
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "txt" | "log" | "md" | "yaml" | "yml" | "csv" | "py" | "toml" | "rego" => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

async fn artifact(AxState(state): St, P(run_id): P<String>, Q(q): Q<PathQuery>) -> ApiResult {
    let run_id: RunId = parse("run id", &run_id).or_json()?;
    let path = artifact_path(q.path.as_deref())
        .and_then(|p| p.ok_or_else(|| Error::invalid("path", "name a file: ?path=<file>")))
        .or_json()?;
    let bytes = state.tracker.get_artifact(&run_id, &path).await.or_json()?;
    let name = path.as_str().rsplit('/').next().unwrap_or("artifact");
    let html = matches!(name.rsplit_once('.'), Some((_, "html" | "htm")));
    let inline = q.inline.as_deref() == Some("1") && html;
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        name.replace(|c: char| c == '"' || c == '\\' || c.is_control(), "_")
    );
    let kind = if inline {
        "text/html; charset=utf-8"
    } else {
        content_type(path.as_str())
    };
    // Artifacts are anyone's bytes: never let one run script in the UI's origin.
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_string()),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct FilterQuery {
    pub(crate) filter: Option<String>,
}

async fn models(AxState(state): St, Q(q): Q<FilterQuery>) -> ApiResult {
    let models = all_models(&state, q.filter.as_deref()).await.or_json()?;
    ok(json!({ "models": to_json(&models)? }))
}

async fn model(AxState(state): St, P(name): P<String>) -> ApiResult {
    let name: ModelName = parse("model name", &name).or_json()?;
    let model = state.registry.get_registered_model(&name).await.or_json()?;
    let versions = model_versions(&state, &name).await.or_json()?;
    ok(json!({ "model": to_json(&model)?, "versions": to_json(&versions)? }))
}

async fn model_version(AxState(state): St, P((name, version)): P<(String, String)>) -> ApiResult {
    let name: ModelName = parse("model name", &name).or_json()?;
    let version: Version = parse("version", &version).or_json()?;
    let mv = state
        .registry
        .get_model_version(&name, version)
        .await
        .or_json()?;
    let decisions = decisions_for(&state, Some(name.as_str()), Some(version))
        .await
        .or_json()?;
    ok(json!({ "version": to_json(&mv)?, "decisions": to_json(&decisions)? }))
}

pub(crate) fn datasets_of(state: &State) -> Result<&mlops_storage::Datasets> {
    state.datasets.as_ref().ok_or_else(|| {
        Error::not_supported("datasets", "store", "this UI was started without a store")
    })
}

async fn datasets(AxState(state): St) -> ApiResult {
    let list = datasets_of(&state).or_json()?.list().await.or_json()?;
    ok(json!({ "datasets": to_json(&list)? }))
}

#[derive(Deserialize)]
pub(crate) struct DiffQuery {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
}

async fn dataset(AxState(state): St, P(name): P<String>, Q(q): Q<DiffQuery>) -> ApiResult {
    let name: DatasetName = parse("dataset name", &name).or_json()?;
    let datasets = datasets_of(&state).or_json()?;
    let versions = datasets.log(&name).await.or_json()?;
    let diff = match (q.from.as_deref(), q.to.as_deref()) {
        (Some(from), Some(to)) => {
            let (from, to) = (
                parse("version", from).or_json()?,
                parse("version", to).or_json()?,
            );
            Some(to_json(&datasets.diff(&name, from, to).await.or_json()?)?)
        }
        _ => None,
    };
    ok(json!({ "versions": to_json(&versions)?, "diff": diff }))
}

#[derive(Deserialize)]
struct DecisionsQuery {
    model: Option<String>,
    version: Option<String>,
}

async fn decisions(AxState(state): St, Q(q): Q<DecisionsQuery>) -> ApiResult {
    let version = match q.version.as_deref() {
        Some(v) => Some(parse::<Version>("version", v).or_json()?),
        None => None,
    };
    let found = decisions_for(&state, q.model.as_deref(), version)
        .await
        .or_json()?;
    ok(json!({ "decisions": to_json(&found)? }))
}

#[derive(Deserialize)]
pub(crate) struct PipelinesQuery {
    pub(crate) experiment: Option<String>,
}

pub(crate) async fn pipeline_runs(
    state: &State,
    experiment: Option<&str>,
) -> Result<Vec<mlops_pipeline::tracking::PipelineRun>> {
    let experiment = experiment.unwrap_or(mlops_pipeline::tracking::DEFAULT_EXPERIMENT);
    match mlops_pipeline::tracking::history(state.tracker.as_ref(), experiment, None).await {
        Err(e) if e.is_not_found() => Ok(vec![]),
        other => other,
    }
}

async fn pipelines(AxState(state): St, Q(q): Q<PipelinesQuery>) -> ApiResult {
    let runs = pipeline_runs(&state, q.experiment.as_deref())
        .await
        .or_json()?;
    ok(json!({ "pipelines": to_json(&runs)? }))
}

#[derive(Deserialize)]
pub(crate) struct ModelQuery {
    pub(crate) model: Option<String>,
}

pub(crate) async fn drift_history(
    state: &State,
    model: Option<&str>,
) -> Result<Vec<mlops_drift::history::LoggedReport>> {
    let model: Option<ModelName> = match model.filter(|m| !m.is_empty()) {
        Some(m) => Some(parse("model name", m)?),
        None => None,
    };
    mlops_drift::history::logged_reports(state.tracker.as_ref(), model.as_ref()).await
}

async fn drift_reports(AxState(state): St, Q(q): Q<ModelQuery>) -> ApiResult {
    let reports = drift_history(&state, q.model.as_deref()).await.or_json()?;
    ok(json!({ "reports": to_json(&reports)? }))
}

async fn drift_report(AxState(state): St, P(run_id): P<String>) -> ApiResult {
    let run_id: RunId = parse("run id", &run_id).or_json()?;
    let report = mlops_drift::history::load_report(state.tracker.as_ref(), &run_id)
        .await
        .or_json()?;
    ok(json!({ "report": to_json(&report)? }))
}
