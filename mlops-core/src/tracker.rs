//! The [`Tracker`] trait: experiments, runs, params, metrics, tags, inputs and artifacts, with
//! MLflow's semantics.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{
    ArtifactPath, Digest, ExperimentId, ExperimentName, MetricKey, ParamKey, RunId, TagKey,
};
use crate::page::Page;
use crate::tracking::{
    DatasetInput, Experiment, LifecycleStage, Metric, Param, Run, RunInfo, RunStatus, Tag, ViewType,
};

/// MLflow's `log-batch` limits.
pub mod limits {
    /// Most metrics in one batch.
    pub const MAX_METRICS: usize = 1000;
    /// Most params in one batch.
    pub const MAX_PARAMS: usize = 100;
    /// Most tags in one batch.
    pub const MAX_TAGS: usize = 100;
    /// Most entries of all kinds in one batch.
    pub const MAX_ENTRIES: usize = 1000;
    /// Default page size of `search_runs` (MLflow's).
    pub const DEFAULT_SEARCH_RUNS: usize = 1000;
    /// Largest page of `search_runs` (MLflow's `SEARCH_MAX_RESULTS_THRESHOLD`).
    pub const MAX_SEARCH_RUNS: usize = 50_000;
}

/// Options for [`Tracker::create_experiment`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CreateExperimentOptions {
    /// Artifact location; the tracker picks one when `None`.
    pub artifact_location: Option<String>,
    /// Initial tags.
    pub tags: Vec<Tag>,
}

impl CreateExperimentOptions {
    /// Adds a tag.
    pub fn with_tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }

    /// Sets the artifact location.
    pub fn with_artifact_location(mut self, location: impl Into<String>) -> Self {
        self.artifact_location = Some(location.into());
        self
    }
}

/// Options for [`Tracker::search_experiments`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SearchExperimentsOptions {
    /// A filter over `name`, `creation_time`, `last_update_time` and tags.
    pub filter: Option<String>,
    /// `order_by` items; default `creation_time DESC`, then id.
    pub order_by: Vec<String>,
    /// Active, deleted or both.
    pub view_type: ViewType,
    /// Page size (default 1000).
    pub max_results: Option<usize>,
    /// Token from the previous page.
    pub page_token: Option<String>,
}

impl SearchExperimentsOptions {
    /// Sets the filter.
    pub fn with_filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Sets the view type.
    pub fn with_view_type(mut self, view_type: ViewType) -> Self {
        self.view_type = view_type;
        self
    }
}

/// Options for [`Tracker::create_run`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CreateRunOptions {
    /// The experiment; MLflow's default experiment `"0"` when `None`.
    pub experiment_id: Option<ExperimentId>,
    /// Display name; generated (`brave-owl-402`) when `None`.
    pub run_name: Option<String>,
    /// Start time (ms); now when `None`.
    pub start_time: Option<i64>,
    /// User; the `mlflow.user` tag or `"unknown"` when `None`.
    pub user_id: Option<String>,
    /// Initial tags.
    pub tags: Vec<Tag>,
    /// Parent run; sets the `mlflow.parentRunId` tag.
    pub parent_run_id: Option<RunId>,
}

impl CreateRunOptions {
    /// In experiment `id`.
    pub fn in_experiment(mut self, id: ExperimentId) -> Self {
        self.experiment_id = Some(id);
        self
    }

    /// Named `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.run_name = Some(name.into());
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }

    /// As a child of `parent`.
    pub fn with_parent(mut self, parent: RunId) -> Self {
        self.parent_run_id = Some(parent);
        self
    }

    /// Started by `user`.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user_id = Some(user.into());
        self
    }

    /// Started at `ms`.
    pub fn with_start_time(mut self, ms: i64) -> Self {
        self.start_time = Some(ms);
        self
    }
}

/// Options for [`Tracker::update_run`]: fields left `None` are unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct UpdateRunOptions {
    /// New status.
    pub status: Option<RunStatus>,
    /// End time (ms).
    pub end_time: Option<i64>,
    /// New display name (also updates the `mlflow.runName` tag).
    pub run_name: Option<String>,
}

impl UpdateRunOptions {
    /// Sets the status.
    pub fn with_status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the end time.
    pub fn with_end_time(mut self, ms: i64) -> Self {
        self.end_time = Some(ms);
        self
    }

    /// Renames the run.
    pub fn with_run_name(mut self, name: impl Into<String>) -> Self {
        self.run_name = Some(name.into());
        self
    }
}

/// Metrics, params and tags logged together (MLflow's `log-batch`).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LogBatch {
    /// Metric values, appended.
    pub metrics: Vec<Metric>,
    /// Params, write-once.
    pub params: Vec<Param>,
    /// Tags; when a key repeats, the last wins.
    pub tags: Vec<Tag>,
}

impl LogBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metric.
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metrics.push(metric);
        self
    }

    /// Adds a param.
    pub fn param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }

    /// Checks MLflow's batch limits (1000 metrics, 100 params, 100 tags, 1000 in all).
    pub fn check_limits(&self) -> Result<()> {
        let (m, p, t) = (self.metrics.len(), self.params.len(), self.tags.len());
        let over = |what: &str, n: usize, max: usize| {
            Error::invalid(
                "log batch",
                format!("{n} {what} exceed the limit of {max} per batch"),
            )
        };
        if m > limits::MAX_METRICS {
            return Err(over("metrics", m, limits::MAX_METRICS));
        }
        if p > limits::MAX_PARAMS {
            return Err(over("params", p, limits::MAX_PARAMS));
        }
        if t > limits::MAX_TAGS {
            return Err(over("tags", t, limits::MAX_TAGS));
        }
        if m + p + t > limits::MAX_ENTRIES {
            return Err(over("entries", m + p + t, limits::MAX_ENTRIES));
        }
        Ok(())
    }
}

/// Options for [`Tracker::search_runs`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SearchRunsOptions {
    /// Experiments to search; every experiment when empty.
    pub experiment_ids: Vec<ExperimentId>,
    /// A filter in MLflow's grammar (see [`crate::search`]).
    pub filter: Option<String>,
    /// Active, deleted or both.
    pub view_type: ViewType,
    /// `order_by` items; ties break on `start_time DESC`, then `run_id`.
    pub order_by: Vec<String>,
    /// Page size (default 1000, at most 50 000).
    pub max_results: Option<usize>,
    /// Token from the previous page.
    pub page_token: Option<String>,
}

impl SearchRunsOptions {
    /// In experiment `id` (may be called more than once).
    pub fn in_experiment(mut self, id: ExperimentId) -> Self {
        self.experiment_ids.push(id);
        self
    }

    /// Sets the filter.
    pub fn with_filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Adds an `order_by` item.
    pub fn order_by(mut self, item: impl Into<String>) -> Self {
        self.order_by.push(item.into());
        self
    }

    /// Sets the page size.
    pub fn with_max_results(mut self, n: usize) -> Self {
        self.max_results = Some(n);
        self
    }

    /// Continues from a page token.
    pub fn with_page_token(mut self, token: Option<String>) -> Self {
        self.page_token = token;
        self
    }

    /// Sets the view type.
    pub fn with_view_type(mut self, view_type: ViewType) -> Self {
        self.view_type = view_type;
        self
    }
}

/// Paging for listings that have nothing else to choose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageOptions {
    /// Page size; the implementation's default when `None`.
    pub max_results: Option<usize>,
    /// Token from the previous page.
    pub page_token: Option<String>,
}

impl PageOptions {
    /// Sets the page size.
    pub fn with_max_results(mut self, n: usize) -> Self {
        self.max_results = Some(n);
        self
    }

    /// Continues from a page token.
    pub fn with_page_token(mut self, token: Option<String>) -> Self {
        self.page_token = token;
        self
    }
}

/// A stored artifact file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    /// Path relative to the run's artifact root.
    pub path: ArtifactPath,
    /// Size in bytes.
    pub size: u64,
    /// blake3 of the content.
    pub digest: Digest,
}

/// Experiment tracking with MLflow's semantics.
///
/// # Contract
///
/// - **Experiments.** Names are unique, including soft-deleted ones: creating a duplicate is
///   [`Error::AlreadyExists`]. The default experiment, id `"0"` named `Default`, always exists and
///   cannot be deleted. Deleting is soft and restorable; a deleted experiment takes no new runs.
/// - **Runs** get a generated 32-hex id and, when none is given, a generated name; the name is
///   mirrored in the `mlflow.runName` tag. A parent run is recorded as `mlflow.parentRunId`.
///   Runs in a missing experiment are [`Error::NotFound`].
/// - **Params** are write-once: logging the same value again succeeds and changes nothing; a
///   different value is [`Error::InvalidArgument`] and the batch is rejected whole.
/// - **Metrics** are append-only: every value is kept with its step and timestamp, and
///   [`Run::data`] holds the latest value per key by `(step, timestamp, value)`. History order is
///   the backend's: logging order for the embedded trackers, timestamp order for MLflow's SQL
///   store.
/// - **Tags** are overwritable; within one batch the last value of a key wins.
/// - **Batches** follow MLflow's limits ([`LogBatch::check_limits`]) and are validated before
///   anything is written: an invalid batch changes nothing.
/// - **Soft delete.** Writing to a deleted run is [`Error::InvalidArgument`]; deleted runs and
///   experiments are returned only by the matching [`ViewType`]; `get_*` still returns them.
/// - **Search** uses [`crate::search`] semantics; pagination walks each matching run exactly once.
/// - **Unknown ids** are [`Error::NotFound`] with kind `"experiment"`, `"run"`, `"metric"` or
///   `"artifact"`.
/// - **Durability.** After [`flush`](Tracker::flush) returns, everything logged before it
///   survives a crash of the process.
///
/// # Implementing
///
/// Implement the required methods; conveniences come from [`TrackerExt`]. Run
/// `mlops_testkit::tracker::run_all` against the implementation and an `Arc<dyn Tracker>` of it.
#[async_trait]
pub trait Tracker: Debug + Send + Sync + 'static {
    /// Creates an experiment.
    async fn create_experiment(
        &self,
        name: &ExperimentName,
        options: CreateExperimentOptions,
    ) -> Result<ExperimentId>;

    /// Reads an experiment by id (deleted ones too).
    async fn get_experiment(&self, id: &ExperimentId) -> Result<Experiment>;

    /// Reads an experiment by name (deleted ones too).
    async fn get_experiment_by_name(&self, name: &ExperimentName) -> Result<Experiment>;

    /// Searches experiments.
    async fn search_experiments(
        &self,
        options: SearchExperimentsOptions,
    ) -> Result<Page<Experiment>>;

    /// Soft-deletes ([`LifecycleStage::Deleted`]) or restores an experiment and its runs.
    async fn set_experiment_lifecycle(
        &self,
        id: &ExperimentId,
        stage: LifecycleStage,
    ) -> Result<()>;

    /// Sets an experiment tag.
    async fn set_experiment_tag(&self, id: &ExperimentId, tag: Tag) -> Result<()>;

    /// Starts a run.
    async fn create_run(&self, options: CreateRunOptions) -> Result<Run>;

    /// Changes a run's status, end time or name.
    async fn update_run(&self, run_id: &RunId, options: UpdateRunOptions) -> Result<RunInfo>;

    /// Soft-deletes or restores a run.
    async fn set_run_lifecycle(&self, run_id: &RunId, stage: LifecycleStage) -> Result<()>;

    /// Logs metrics, params and tags.
    async fn log_batch(&self, run_id: &RunId, batch: LogBatch) -> Result<()>;

    /// Removes a run tag; [`Error::NotFound`] when the tag is absent.
    async fn delete_run_tag(&self, run_id: &RunId, key: &TagKey) -> Result<()>;

    /// Records dataset inputs (an identical input logged twice is kept once).
    async fn log_inputs(&self, run_id: &RunId, inputs: Vec<DatasetInput>) -> Result<()>;

    /// Reads a run with the latest metric values.
    async fn get_run(&self, run_id: &RunId) -> Result<Run>;

    /// Searches runs.
    async fn search_runs(&self, options: SearchRunsOptions) -> Result<Page<Run>>;

    /// Every value of one metric of a run (see the contract for the order).
    async fn get_metric_history(
        &self,
        run_id: &RunId,
        key: &MetricKey,
        options: PageOptions,
    ) -> Result<Page<Metric>>;

    /// Stores an artifact file under the run's artifact root (replacing one at the same path).
    async fn put_artifact(
        &self,
        run_id: &RunId,
        path: &ArtifactPath,
        data: Bytes,
    ) -> Result<ArtifactInfo>;

    /// Reads an artifact file.
    async fn get_artifact(&self, run_id: &RunId, path: &ArtifactPath) -> Result<Bytes>;

    /// Lists artifact files at or under `prefix` (all when `None`), sorted by path.
    async fn list_artifacts(
        &self,
        run_id: &RunId,
        prefix: Option<&ArtifactPath>,
    ) -> Result<Vec<ArtifactInfo>>;

    /// Durability point: returns once everything logged so far is stored.
    async fn flush(&self) -> Result<()>;
}

/// Conveniences over [`Tracker`], for every implementation.
#[async_trait]
pub trait TrackerExt: Tracker {
    /// The experiment named `name`, created if absent. Idempotent under concurrency.
    async fn get_or_create_experiment(&self, name: &ExperimentName) -> Result<ExperimentId> {
        match self.get_experiment_by_name(name).await {
            Ok(e) => return Ok(e.experiment_id),
            Err(e) if !e.is_not_found() => return Err(e),
            Err(_) => {}
        }
        match self
            .create_experiment(name, CreateExperimentOptions::default())
            .await
        {
            Ok(id) => Ok(id),
            Err(e) if e.is_already_exists() => {
                Ok(self.get_experiment_by_name(name).await?.experiment_id)
            }
            Err(e) => Err(e),
        }
    }

    /// Logs one metric value at `step`, stamped now.
    async fn log_metric(&self, run_id: &RunId, key: &str, value: f64, step: i64) -> Result<()> {
        let metric = Metric::new(key.parse()?, value, step);
        self.log_batch(run_id, LogBatch::new().metric(metric)).await
    }

    /// Logs one param.
    async fn log_param(&self, run_id: &RunId, key: &str, value: &str) -> Result<()> {
        let param = Param::new(key.parse::<ParamKey>()?, value)?;
        self.log_batch(run_id, LogBatch::new().param(param)).await
    }

    /// Sets one run tag.
    async fn set_tag(&self, run_id: &RunId, key: &str, value: &str) -> Result<()> {
        let tag = Tag::new(key.parse()?, value)?;
        self.log_batch(run_id, LogBatch::new().tag(tag)).await
    }

    /// Ends a run with `status` (usually [`RunStatus::Finished`]) at the current time, then
    /// flushes: the end of a run is a durability point.
    async fn end_run(&self, run_id: &RunId, status: RunStatus) -> Result<RunInfo> {
        let info = self
            .update_run(
                run_id,
                UpdateRunOptions::default()
                    .with_status(status)
                    .with_end_time(crate::time::now_ms()),
            )
            .await?;
        self.flush().await?;
        Ok(info)
    }

    /// Every page of a run search, concatenated.
    async fn search_all_runs(&self, options: SearchRunsOptions) -> Result<Vec<Run>> {
        let mut out = Vec::new();
        let mut options = options;
        loop {
            let page = self.search_runs(options.clone()).await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(t) => options.page_token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Every page of an experiment search, concatenated.
    async fn search_all_experiments(
        &self,
        options: SearchExperimentsOptions,
    ) -> Result<Vec<Experiment>> {
        let mut out = Vec::new();
        let mut options = options;
        loop {
            let page = self.search_experiments(options.clone()).await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(t) => options.page_token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// A metric's whole history, every page concatenated.
    async fn metric_history(&self, run_id: &RunId, key: &MetricKey) -> Result<Vec<Metric>> {
        let mut out = Vec::new();
        let mut options = PageOptions::default();
        loop {
            let page = self
                .get_metric_history(run_id, key, options.clone())
                .await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(t) => options.page_token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// A metric's history as a stream, fetched a page at a time as it is consumed.
    fn metric_history_stream<'a>(
        &'a self,
        run_id: &'a RunId,
        key: &'a MetricKey,
    ) -> futures::stream::BoxStream<'a, Result<Metric>>
    where
        Self: Sync,
    {
        use futures::StreamExt;
        // State: the next page token, or `None` once the last page was fetched.
        let pages = futures::stream::try_unfold(Some(None::<String>), move |token| async move {
            let Some(token) = token else { return Ok(None) };
            let page = self
                .get_metric_history(run_id, key, PageOptions::default().with_page_token(token))
                .await?;
            let next = page.next_page_token.map(Some);
            Ok(Some((
                futures::stream::iter(page.items.into_iter().map(Ok)),
                next,
            )))
        });
        futures::TryStreamExt::try_flatten(pages).boxed()
    }

    /// Params of a run as a plain map.
    async fn params(&self, run_id: &RunId) -> Result<BTreeMap<String, String>> {
        let run = self.get_run(run_id).await?;
        Ok(run
            .data
            .params
            .into_iter()
            .map(|(k, v)| (k.into_string(), v))
            .collect())
    }
}

impl<T: Tracker + ?Sized> TrackerExt for T {}

macro_rules! forward_tracker {
    ($ty:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: Tracker + ?Sized> Tracker for $ty {
            async fn create_experiment(
                &self,
                name: &ExperimentName,
                options: CreateExperimentOptions,
            ) -> Result<ExperimentId> {
                (**self).create_experiment(name, options).await
            }
            async fn get_experiment(&self, id: &ExperimentId) -> Result<Experiment> {
                (**self).get_experiment(id).await
            }
            async fn get_experiment_by_name(&self, name: &ExperimentName) -> Result<Experiment> {
                (**self).get_experiment_by_name(name).await
            }
            async fn search_experiments(
                &self,
                options: SearchExperimentsOptions,
            ) -> Result<Page<Experiment>> {
                (**self).search_experiments(options).await
            }
            async fn set_experiment_lifecycle(
                &self,
                id: &ExperimentId,
                stage: LifecycleStage,
            ) -> Result<()> {
                (**self).set_experiment_lifecycle(id, stage).await
            }
            async fn set_experiment_tag(&self, id: &ExperimentId, tag: Tag) -> Result<()> {
                (**self).set_experiment_tag(id, tag).await
            }
            async fn create_run(&self, options: CreateRunOptions) -> Result<Run> {
                (**self).create_run(options).await
            }
            async fn update_run(
                &self,
                run_id: &RunId,
                options: UpdateRunOptions,
            ) -> Result<RunInfo> {
                (**self).update_run(run_id, options).await
            }
            async fn set_run_lifecycle(&self, run_id: &RunId, stage: LifecycleStage) -> Result<()> {
                (**self).set_run_lifecycle(run_id, stage).await
            }
            async fn log_batch(&self, run_id: &RunId, batch: LogBatch) -> Result<()> {
                (**self).log_batch(run_id, batch).await
            }
            async fn delete_run_tag(&self, run_id: &RunId, key: &TagKey) -> Result<()> {
                (**self).delete_run_tag(run_id, key).await
            }
            async fn log_inputs(&self, run_id: &RunId, inputs: Vec<DatasetInput>) -> Result<()> {
                (**self).log_inputs(run_id, inputs).await
            }
            async fn get_run(&self, run_id: &RunId) -> Result<Run> {
                (**self).get_run(run_id).await
            }
            async fn search_runs(&self, options: SearchRunsOptions) -> Result<Page<Run>> {
                (**self).search_runs(options).await
            }
            async fn get_metric_history(
                &self,
                run_id: &RunId,
                key: &MetricKey,
                options: PageOptions,
            ) -> Result<Page<Metric>> {
                (**self).get_metric_history(run_id, key, options).await
            }
            async fn put_artifact(
                &self,
                run_id: &RunId,
                path: &ArtifactPath,
                data: Bytes,
            ) -> Result<ArtifactInfo> {
                (**self).put_artifact(run_id, path, data).await
            }
            async fn get_artifact(&self, run_id: &RunId, path: &ArtifactPath) -> Result<Bytes> {
                (**self).get_artifact(run_id, path).await
            }
            async fn list_artifacts(
                &self,
                run_id: &RunId,
                prefix: Option<&ArtifactPath>,
            ) -> Result<Vec<ArtifactInfo>> {
                (**self).list_artifacts(run_id, prefix).await
            }
            async fn flush(&self) -> Result<()> {
                (**self).flush().await
            }
        }
    };
}

forward_tracker!(Arc<T>);
forward_tracker!(Box<T>);
