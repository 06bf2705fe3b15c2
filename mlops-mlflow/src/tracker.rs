//! [`MlflowTracker`]: the core [`Tracker`] over a real MLflow tracking server's REST API 2.0.

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::page::Page;
use mlops_core::tracker::{
    ArtifactInfo, CreateExperimentOptions, CreateRunOptions, LogBatch, PageOptions,
    SearchExperimentsOptions, SearchRunsOptions, Tracker, TrackerExt, UpdateRunOptions,
};
use mlops_core::tracking::{
    DatasetInput, Experiment, LifecycleStage, Metric, Run, RunInfo, Tag, ViewType, tags,
};
use mlops_core::{
    ArtifactPath, Digest, Error, ExperimentId, ExperimentName, MetricKey, Result, RunId, TagKey,
};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::MlflowClient;
use crate::json::{JDatasetInput, JExperiment, JMetric, JRun, JRunInfo, JTag};

pub(crate) fn view(v: ViewType) -> &'static str {
    match v {
        ViewType::ActiveOnly => "ACTIVE_ONLY",
        ViewType::DeletedOnly => "DELETED_ONLY",
        ViewType::All => "ALL",
    }
}

pub(crate) fn jtags(tags: &[Tag]) -> Vec<JTag> {
    tags.iter()
        .map(|t| JTag {
            key: t.key.to_string(),
            value: Some(t.value.clone()),
        })
        .collect()
}

/// A [`Tracker`] that is a real MLflow tracking server, over its REST API.
///
/// Artifacts go through the server's artifact proxy (`mlflow server --artifacts-destination …`),
/// so the server decides where they are stored. `flush` is a no-op: every call is one request.
#[derive(Debug, Clone)]
pub struct MlflowTracker {
    client: MlflowClient,
    /// Each run's artifact root: fixed at creation, so looked up once per run.
    artifact_roots: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<RunId, String>>>,
}

impl MlflowTracker {
    /// A tracker for the server at `tracking_uri` (see [`MlflowClient::new`]).
    pub fn new(tracking_uri: &str) -> Result<Self> {
        Ok(Self {
            client: MlflowClient::new(tracking_uri)?,
            artifact_roots: Default::default(),
        })
    }

    /// The artifact proxy path of a run's artifact root (`<exp>/<run>/artifacts`).
    async fn artifact_root(&self, run_id: &RunId) -> Result<String> {
        if let Some(root) = crate::lock(&self.artifact_roots).get(run_id) {
            return Ok(root.clone());
        }
        let run = self.get_run(run_id).await?;
        let uri = &run.info.artifact_uri;
        let root = uri
            .strip_prefix("mlflow-artifacts:/")
            .map(|p| p.trim_start_matches('/').trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                Error::not_supported(
                    "artifact location",
                    uri,
                    format!(
                        "run {run_id} stores its artifacts there; start the server with --artifacts-destination so artifacts go through it"
                    ),
                )
            })?;
        crate::lock(&self.artifact_roots).insert(run_id.clone(), root.clone());
        Ok(root)
    }
}

#[derive(Deserialize)]
struct IdResponse {
    experiment_id: String,
}
#[derive(Deserialize)]
struct ExperimentResponse {
    experiment: JExperiment,
}
#[derive(Deserialize)]
struct ExperimentsResponse {
    #[serde(default)]
    experiments: Vec<JExperiment>,
    #[serde(default)]
    next_page_token: Option<String>,
}
#[derive(Deserialize)]
struct RunResponse {
    run: JRun,
}
#[derive(Deserialize)]
struct RunInfoResponse {
    run_info: JRunInfo,
}
#[derive(Deserialize)]
struct RunsResponse {
    #[serde(default)]
    runs: Vec<JRun>,
    #[serde(default)]
    next_page_token: Option<String>,
}
#[derive(Deserialize)]
struct HistoryResponse {
    #[serde(default)]
    metrics: Vec<JMetric>,
    #[serde(default)]
    next_page_token: Option<String>,
}
#[derive(Deserialize)]
pub(crate) struct Empty {}

pub(crate) fn token(t: Option<String>) -> Option<String> {
    t.filter(|t| !t.is_empty())
}

#[async_trait]
impl Tracker for MlflowTracker {
    async fn create_experiment(
        &self,
        name: &ExperimentName,
        options: CreateExperimentOptions,
    ) -> Result<ExperimentId> {
        let r: IdResponse = self
            .client
            .call(
                Method::POST,
                "experiments/create",
                &json!({"name": name.as_str(), "artifact_location": options.artifact_location, "tags": jtags(&options.tags)}),
                "experiment",
                name.as_str(),
            )
            .await?;
        r.experiment_id.parse()
    }

    async fn get_experiment(&self, id: &ExperimentId) -> Result<Experiment> {
        let r: ExperimentResponse = self
            .client
            .call(
                Method::GET,
                "experiments/get",
                &json!({"experiment_id": id.as_str()}),
                "experiment",
                id.as_str(),
            )
            .await?;
        r.experiment.into_core()
    }

    async fn get_experiment_by_name(&self, name: &ExperimentName) -> Result<Experiment> {
        let r: ExperimentResponse = self
            .client
            .call(
                Method::GET,
                "experiments/get-by-name",
                &json!({"experiment_name": name.as_str()}),
                "experiment",
                name.as_str(),
            )
            .await?;
        r.experiment.into_core()
    }

    async fn search_experiments(
        &self,
        options: SearchExperimentsOptions,
    ) -> Result<Page<Experiment>> {
        let r: ExperimentsResponse = self
            .client
            .call(
                Method::POST,
                "experiments/search",
                &json!({
                    "max_results": options.max_results.unwrap_or(1000),
                    "page_token": options.page_token,
                    "filter": options.filter,
                    "order_by": options.order_by,
                    "view_type": view(options.view_type),
                }),
                "experiment",
                "search",
            )
            .await?;
        Ok(Page {
            items: r
                .experiments
                .into_iter()
                .map(JExperiment::into_core)
                .collect::<Result<_>>()?,
            next_page_token: token(r.next_page_token),
        })
    }

    async fn set_experiment_lifecycle(
        &self,
        id: &ExperimentId,
        stage: LifecycleStage,
    ) -> Result<()> {
        // MLflow's SQL store lets the default experiment be deleted; the contract does not.
        if *id == ExperimentId::default_experiment() && stage == LifecycleStage::Deleted {
            return Err(Error::invalid(
                "experiment",
                "the default experiment (id 0) cannot be deleted",
            ));
        }
        let path = match stage {
            LifecycleStage::Deleted => "experiments/delete",
            LifecycleStage::Active => "experiments/restore",
        };
        let _: Empty = self
            .client
            .call(
                Method::POST,
                path,
                &json!({"experiment_id": id.as_str()}),
                "experiment",
                id.as_str(),
            )
            .await?;
        Ok(())
    }

    async fn set_experiment_tag(&self, id: &ExperimentId, tag: Tag) -> Result<()> {
        let _: Empty = self
            .client
            .call(
                Method::POST,
                "experiments/set-experiment-tag",
                &json!({"experiment_id": id.as_str(), "key": tag.key.as_str(), "value": tag.value}),
                "experiment",
                id.as_str(),
            )
            .await?;
        Ok(())
    }

    async fn create_run(&self, options: CreateRunOptions) -> Result<Run> {
        // MLflow does not check parents; the contract does.
        if let Some(parent) = &options.parent_run_id {
            self.get_run(parent).await?;
        }
        let experiment_id = options
            .experiment_id
            .clone()
            .unwrap_or_else(ExperimentId::default_experiment);
        let mut run_tags = options.tags.clone();
        if let Some(parent) = &options.parent_run_id {
            run_tags.push(Tag::new(tags::PARENT_RUN_ID.parse()?, parent.as_str())?);
        }
        if let Some(user) = &options.user_id {
            run_tags.push(Tag::new(tags::USER.parse()?, user.clone())?);
        }
        let r: RunResponse = self
            .client
            .call(
                Method::POST,
                "runs/create",
                &json!({
                    "experiment_id": experiment_id.as_str(),
                    "run_name": options.run_name,
                    "start_time": options.start_time.unwrap_or_else(mlops_core::time::now_ms),
                    "user_id": options.user_id,
                    "tags": jtags(&run_tags),
                }),
                "experiment",
                experiment_id.as_str(),
            )
            .await?;
        r.run.into_core()
    }

    async fn update_run(&self, run_id: &RunId, options: UpdateRunOptions) -> Result<RunInfo> {
        let r: RunInfoResponse = self
            .client
            .call(
                Method::POST,
                "runs/update",
                &json!({
                    "run_id": run_id.as_str(),
                    "status": options.status.map(|s| s.as_str()),
                    "end_time": options.end_time,
                    "run_name": options.run_name,
                }),
                "run",
                run_id.as_str(),
            )
            .await?;
        r.run_info.into_core()
    }

    async fn set_run_lifecycle(&self, run_id: &RunId, stage: LifecycleStage) -> Result<()> {
        let path = match stage {
            LifecycleStage::Deleted => "runs/delete",
            LifecycleStage::Active => "runs/restore",
        };
        let _: Empty = self
            .client
            .call(
                Method::POST,
                path,
                &json!({"run_id": run_id.as_str()}),
                "run",
                run_id.as_str(),
            )
            .await?;
        Ok(())
    }

    async fn log_batch(&self, run_id: &RunId, batch: LogBatch) -> Result<()> {
        batch.check_limits()?;
        let metrics: Vec<JMetric> = batch.metrics.iter().map(JMetric::from_core).collect();
        let params: Vec<JTag> = batch
            .params
            .iter()
            .map(|p| JTag {
                key: p.key.to_string(),
                value: Some(p.value.clone()),
            })
            .collect();
        let _: Empty = self
            .client
            .call(
                Method::POST,
                "runs/log-batch",
                &json!({"run_id": run_id.as_str(), "metrics": metrics, "params": params, "tags": jtags(&batch.tags)}),
                "run",
                run_id.as_str(),
            )
            .await?;
        Ok(())
    }

    async fn delete_run_tag(&self, run_id: &RunId, key: &TagKey) -> Result<()> {
        // MLflow answers RESOURCE_DOES_NOT_EXIST for a missing run and for a missing tag.
        self.get_run(run_id).await?;
        let _: Empty = self
            .client
            .call(
                Method::POST,
                "runs/delete-tag",
                &json!({"run_id": run_id.as_str(), "key": key.as_str()}),
                "tag",
                &format!("{key} on run {run_id}"),
            )
            .await?;
        Ok(())
    }

    async fn log_inputs(&self, run_id: &RunId, inputs: Vec<DatasetInput>) -> Result<()> {
        let datasets: Vec<JDatasetInput> = inputs.iter().map(JDatasetInput::from_core).collect();
        let _: Empty = self
            .client
            .call(
                Method::POST,
                "runs/log-inputs",
                &json!({"run_id": run_id.as_str(), "datasets": datasets}),
                "run",
                run_id.as_str(),
            )
            .await?;
        Ok(())
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Run> {
        let r: RunResponse = self
            .client
            .call(
                Method::GET,
                "runs/get",
                &json!({"run_id": run_id.as_str()}),
                "run",
                run_id.as_str(),
            )
            .await?;
        r.run.into_core()
    }

    async fn search_runs(&self, options: SearchRunsOptions) -> Result<Page<Run>> {
        let experiment_ids: Vec<String> = if options.experiment_ids.is_empty() {
            // MLflow needs experiment ids: search them all.
            self.search_all_experiments(
                SearchExperimentsOptions::default().with_view_type(ViewType::All),
            )
            .await?
            .into_iter()
            .map(|e| e.experiment_id.into_string())
            .collect()
        } else {
            options
                .experiment_ids
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        let r: RunsResponse = self
            .client
            .call(
                Method::POST,
                "runs/search",
                &json!({
                    "experiment_ids": experiment_ids,
                    "filter": options.filter,
                    "run_view_type": view(options.view_type),
                    "max_results": options.max_results.unwrap_or(mlops_core::tracker::limits::DEFAULT_SEARCH_RUNS),
                    "order_by": options.order_by,
                    "page_token": options.page_token,
                }),
                "experiment",
                "search",
            )
            .await?;
        Ok(Page {
            items: r
                .runs
                .into_iter()
                .map(JRun::into_core)
                .collect::<Result<_>>()?,
            next_page_token: token(r.next_page_token),
        })
    }

    async fn get_metric_history(
        &self,
        run_id: &RunId,
        key: &MetricKey,
        options: PageOptions,
    ) -> Result<Page<Metric>> {
        let r: HistoryResponse = self
            .client
            .call(
                Method::GET,
                "metrics/get-history",
                &json!({
                    "run_id": run_id.as_str(),
                    "metric_key": key.as_str(),
                    "max_results": options.max_results,
                    "page_token": options.page_token,
                }),
                "run",
                run_id.as_str(),
            )
            .await?;
        if r.metrics.is_empty() {
            // MLflow answers an empty history for a missing run too: tell them apart.
            self.get_run(run_id).await?;
        }
        Ok(Page {
            items: r
                .metrics
                .into_iter()
                .map(JMetric::into_core)
                .collect::<Result<_>>()?,
            next_page_token: token(r.next_page_token),
        })
    }

    async fn put_artifact(
        &self,
        run_id: &RunId,
        path: &ArtifactPath,
        data: Bytes,
    ) -> Result<ArtifactInfo> {
        let root = self.artifact_root(run_id).await?;
        let info = ArtifactInfo {
            path: path.clone(),
            size: data.len() as u64,
            digest: Digest::of(&data),
        };
        self.client
            .put_artifact(&format!("{root}/{path}"), data)
            .await?;
        Ok(info)
    }

    async fn get_artifact(&self, run_id: &RunId, path: &ArtifactPath) -> Result<Bytes> {
        let root = self.artifact_root(run_id).await?;
        self.client
            .get_artifact(&format!("{root}/{path}"))
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    Error::not_found("artifact", format!("{path} of run {run_id}")).with_source(e)
                } else {
                    e
                }
            })
    }

    async fn list_artifacts(
        &self,
        run_id: &RunId,
        prefix: Option<&ArtifactPath>,
    ) -> Result<Vec<ArtifactInfo>> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            files: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            path: String,
            #[serde(default)]
            is_dir: bool,
        }
        let root = self.artifact_root(run_id).await?;
        let mut out = Vec::new();
        let mut dirs = vec![prefix.map(|p| p.to_string()).unwrap_or_default()];
        while let Some(dir) = dirs.pop() {
            let full = if dir.is_empty() {
                root.clone()
            } else {
                format!("{root}/{dir}")
            };
            let listing: Listing = serde_json::from_value(self.client.list_artifacts(&full).await?)
                .map_err(|e| Error::backend("mlflow", e))?;
            if listing.files.is_empty() && !dir.is_empty() {
                // A file named exactly like the prefix.
                if let Ok(data) = self.client.get_artifact(&full).await {
                    out.push(ArtifactInfo {
                        path: dir.parse()?,
                        size: data.len() as u64,
                        digest: Digest::of(&data),
                    });
                }
                continue;
            }
            for e in listing.files {
                let rel = if dir.is_empty() {
                    e.path.clone()
                } else {
                    format!("{dir}/{}", e.path.rsplit('/').next().unwrap_or(&e.path))
                };
                if e.is_dir {
                    dirs.push(rel);
                } else {
                    // MLflow lists no digests: read the file to give one (artifacts listed here
                    // are read in full).
                    let data = self.client.get_artifact(&format!("{root}/{rel}")).await?;
                    out.push(ArtifactInfo {
                        path: rel.parse()?,
                        size: data.len() as u64,
                        digest: Digest::of(&data),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}
