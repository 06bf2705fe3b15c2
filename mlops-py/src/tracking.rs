//! [`Tracker`]: experiments, runs, params, metrics, tags, inputs and artifacts in a store, with
//! MLflow's client names (`create_run`, `log_metric`, `set_terminated`, `search_runs`, …).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use mlops::storage::{StoreTracker, StoreTrackerOptions};
use mlops::tracker::{
    CreateExperimentOptions, CreateRunOptions, SearchRunsOptions, UpdateRunOptions,
};
use mlops::{
    ArtifactPath, ExperimentId, LogBatch, Metric, Param, RunId, RunStatus, Tag, Tracker as _,
    TrackerExt as _,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::OrPy;
use crate::runtime::block_on;
use crate::store::{Store, scalar_text, store_of, string_map};
use crate::table::Table;

/// An experiment.
#[pyclass(module = "mlops._native", frozen, get_all)]
pub(crate) struct Experiment {
    experiment_id: String,
    name: String,
    artifact_location: String,
    lifecycle_stage: String,
    creation_time: i64,
    last_update_time: i64,
    tags: BTreeMap<String, String>,
}

impl From<mlops::Experiment> for Experiment {
    fn from(e: mlops::Experiment) -> Self {
        Self {
            experiment_id: e.experiment_id.to_string(),
            name: e.name.to_string(),
            artifact_location: e.artifact_location,
            lifecycle_stage: e.lifecycle_stage.as_str().to_owned(),
            creation_time: e.creation_time,
            last_update_time: e.last_update_time,
            tags: e
                .tags
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

#[pymethods]
impl Experiment {
    fn __repr__(&self) -> String {
        format!(
            "<Experiment: experiment_id={:?}, name={:?}>",
            self.experiment_id, self.name
        )
    }
}

/// A run's identity and state (`run.info`).
#[pyclass(module = "mlops._native", frozen, get_all)]
pub(crate) struct RunInfo {
    run_id: String,
    run_name: String,
    experiment_id: String,
    user_id: String,
    status: String,
    start_time: i64,
    end_time: Option<i64>,
    artifact_uri: String,
    lifecycle_stage: String,
}

#[pymethods]
impl RunInfo {
    /// The same as `run_id` (MLflow's older name).
    #[getter]
    fn run_uuid(&self) -> String {
        self.run_id.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "<RunInfo: run_id={:?}, run_name={:?}, status={:?}>",
            self.run_id, self.run_name, self.status
        )
    }
}

/// A run's latest metric values, params and tags (`run.data`).
#[pyclass(module = "mlops._native", frozen, get_all)]
pub(crate) struct RunData {
    metrics: BTreeMap<String, f64>,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

/// A run: `run.info`, `run.data`, and the dataset versions it read (`run.inputs`, as
/// `name@version` sources).
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Run {
    info: Py<RunInfo>,
    data: Py<RunData>,
    inputs: Vec<String>,
}

impl RunInfo {
    fn of(info: &mlops::RunInfo) -> Self {
        RunInfo {
            run_id: info.run_id.to_string(),
            run_name: info.run_name.clone(),
            experiment_id: info.experiment_id.to_string(),
            user_id: info.user_id.clone(),
            status: info.status.as_str().to_owned(),
            start_time: info.start_time,
            end_time: info.end_time,
            artifact_uri: info.artifact_uri.clone(),
            lifecycle_stage: info.lifecycle_stage.as_str().to_owned(),
        }
    }
}

impl Run {
    fn of(py: Python<'_>, run: mlops::Run) -> PyResult<Self> {
        let info = RunInfo::of(&run.info);
        let data = RunData {
            metrics: run
                .data
                .metrics
                .iter()
                .map(|(k, m)| (k.to_string(), m.value))
                .collect(),
            params: run
                .data
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            tags: run
                .data
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        Ok(Self {
            info: Py::new(py, info)?,
            data: Py::new(py, data)?,
            inputs: run
                .inputs
                .dataset_inputs
                .iter()
                .map(|i| i.dataset.source.clone())
                .collect(),
        })
    }
}

#[pymethods]
impl Run {
    /// Identity and state.
    #[getter]
    fn info(&self, py: Python<'_>) -> Py<RunInfo> {
        self.info.clone_ref(py)
    }

    /// Latest metrics, params, tags.
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<RunData> {
        self.data.clone_ref(py)
    }

    /// The dataset versions the run read, as their sources (`datasets/<name>@<version>`).
    #[getter]
    fn inputs(&self) -> Vec<String> {
        self.inputs.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let info = self.info.get();
        let _ = py;
        format!("<Run: run_id={:?}, status={:?}>", info.run_id, info.status)
    }
}

/// One value of a metric's history.
#[pyclass(module = "mlops._native", frozen, get_all)]
pub(crate) struct MetricValue {
    key: String,
    value: f64,
    step: i64,
    timestamp: i64,
}

#[pymethods]
impl MetricValue {
    fn __repr__(&self) -> String {
        format!(
            "<Metric: key={:?}, value={}, step={}, timestamp={}>",
            self.key, self.value, self.step, self.timestamp
        )
    }
}

/// The tracker of one process: reopened in a forked child, so the child writes its own log
/// instead of continuing the parent's.
struct PerProcess {
    pid: u32,
    tracker: Arc<StoreTracker>,
}

/// Every tracker this process opened, so that `flush_all` (at exit, before a fork) makes what
/// each one logged durable.
static OPENED: Mutex<Vec<(u32, Weak<StoreTracker>)>> = Mutex::new(Vec::new());

/// Makes what every live tracker of this process logged durable: run by `mlops` at
/// interpreter exit and before `os.fork()`.
#[pyfunction]
pub(crate) fn flush_all(py: Python<'_>) -> PyResult<()> {
    let pid = std::process::id();
    let live: Vec<Arc<StoreTracker>> = {
        let mut opened = OPENED.lock().unwrap_or_else(PoisonError::into_inner);
        opened.retain(|(p, t)| *p == pid && t.strong_count() > 0);
        opened.iter().filter_map(|(_, t)| t.upgrade()).collect()
    };
    let mut first_error = None;
    for tracker in live {
        if let Err(e) = block_on(py, async move { tracker.flush().await })? {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(crate::errors::to_py(py, &e)),
        None => Ok(()),
    }
}

/// Experiments and runs in a store, with MLflow's semantics and client names.
///
/// Writes are buffered and made durable by `flush`, `set_terminated` (ending a run), a
/// background flush every second, the tracker's collection, and the interpreter's exit.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Tracker {
    store: Py<Store>,
    inner: Mutex<Option<PerProcess>>,
}

fn run_id(py: Python<'_>, id: &str) -> PyResult<RunId> {
    id.parse().or_py(py)
}

fn experiment_id(py: Python<'_>, id: &str) -> PyResult<ExperimentId> {
    id.parse().or_py(py)
}

impl Tracker {
    /// The store it writes to.
    pub(crate) fn backing_store(&self) -> Arc<dyn mlops::Store> {
        Arc::clone(&self.store.get().inner)
    }

    /// This process's tracker as the SDK's trait object.
    pub(crate) fn shared(&self, py: Python<'_>) -> PyResult<Arc<dyn mlops::Tracker>> {
        Ok(self.tracker(py)?)
    }

    fn run_lifecycle(
        &self,
        py: Python<'_>,
        run_id: &str,
        stage: mlops::tracking::LifecycleStage,
    ) -> PyResult<()> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        block_on(py, async move {
            t.set_run_lifecycle(&id, stage).await?;
            t.flush().await
        })?
        .or_py(py)
    }

    fn experiment_lifecycle(
        &self,
        py: Python<'_>,
        experiment_id: &str,
        stage: mlops::tracking::LifecycleStage,
    ) -> PyResult<()> {
        let t = self.tracker(py)?;
        let id = self::experiment_id(py, experiment_id)?;
        block_on(py, async move {
            t.set_experiment_lifecycle(&id, stage).await?;
            t.flush().await
        })?
        .or_py(py)
    }

    /// This process's tracker, opened on first use (and in a forked child).
    fn tracker(&self, py: Python<'_>) -> PyResult<Arc<StoreTracker>> {
        let pid = std::process::id();
        {
            let mut slot = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(p) = slot.as_ref()
                && p.pid == pid
            {
                return Ok(Arc::clone(&p.tracker));
            }
            if let Some(stale) = slot.take() {
                // The parent's: its background task is not in this process, and its unflushed
                // writes are the parent's to write.
                std::mem::forget(stale);
            }
        }
        // Opened without the lock held: opening replays the store without the GIL, and a
        // thread waiting on the lock with the GIL would keep this one from returning.
        let store = Arc::clone(&self.store.get().inner);
        let opened = Arc::new(
            block_on(
                py,
                StoreTracker::open(store, StoreTrackerOptions::default()),
            )?
            .or_py(py)?,
        );
        let mut slot = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = slot.as_ref()
            && p.pid == pid
        {
            // Another thread opened it meanwhile: use that one (ours has logged nothing).
            return Ok(Arc::clone(&p.tracker));
        }
        OPENED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((pid, Arc::downgrade(&opened)));
        *slot = Some(PerProcess {
            pid,
            tracker: Arc::clone(&opened),
        });
        Ok(opened)
    }
}

impl Drop for Tracker {
    /// Makes what this tracker logged durable before it goes (its background flush goes with
    /// it).
    fn drop(&mut self) {
        let slot = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        let Some(p) = slot.take() else {
            return;
        };
        if p.pid != std::process::id() {
            std::mem::forget(p);
            return;
        }
        if let Ok(runtime) = crate::runtime::runtime() {
            let _ = runtime.block_on(p.tracker.flush());
        }
    }
}

fn tags_of(py: Python<'_>, tags: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Tag>> {
    string_map("tags", tags)?
        .into_iter()
        .map(|(k, v)| Tag::new(k.parse().or_py(py)?, v).or_py(py))
        .collect()
}

#[pymethods]
impl Tracker {
    /// A tracker over `store` (a URL such as `./mlops-data` or `memory://`, or an
    /// `mlops.Store`).
    #[new]
    fn new(py: Python<'_>, store: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            store: store_of(py, store)?,
            inner: Mutex::new(None),
        })
    }

    /// The store it writes to.
    #[getter]
    fn store(&self, py: Python<'_>) -> Py<Store> {
        self.store.clone_ref(py)
    }

    /// Creates an experiment; returns its id. A name in use is `AlreadyExists`.
    #[pyo3(signature = (name, tags=None))]
    fn create_experiment(
        &self,
        py: Python<'_>,
        name: &str,
        tags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let t = self.tracker(py)?;
        let name = name.parse().or_py(py)?;
        let mut options = CreateExperimentOptions::default();
        for tag in tags_of(py, tags)? {
            options = options.with_tag(tag);
        }
        let id =
            block_on(py, async move { t.create_experiment(&name, options).await })?.or_py(py)?;
        Ok(id.to_string())
    }

    /// The experiment of this name (`NotFound` when there is none).
    fn get_experiment_by_name(&self, py: Python<'_>, name: &str) -> PyResult<Experiment> {
        let t = self.tracker(py)?;
        let name = name.parse().or_py(py)?;
        Ok(
            block_on(py, async move { t.get_experiment_by_name(&name).await })?
                .or_py(py)?
                .into(),
        )
    }

    /// The experiment of this id.
    fn get_experiment(&self, py: Python<'_>, experiment_id: &str) -> PyResult<Experiment> {
        let t = self.tracker(py)?;
        let id = self::experiment_id(py, experiment_id)?;
        Ok(block_on(py, async move { t.get_experiment(&id).await })?
            .or_py(py)?
            .into())
    }

    /// The id of the experiment of this name, created when missing.
    fn get_or_create_experiment(&self, py: Python<'_>, name: &str) -> PyResult<String> {
        let t = self.tracker(py)?;
        let name = name.parse().or_py(py)?;
        Ok(
            block_on(py, async move { t.get_or_create_experiment(&name).await })?
                .or_py(py)?
                .to_string(),
        )
    }

    /// Starts a run in an experiment (the `Default` one when `experiment_id` is None).
    #[pyo3(signature = (experiment_id=None, run_name=None, tags=None, parent_run_id=None, start_time=None))]
    fn create_run(
        &self,
        py: Python<'_>,
        experiment_id: Option<&str>,
        run_name: Option<String>,
        tags: Option<&Bound<'_, PyAny>>,
        parent_run_id: Option<&str>,
        start_time: Option<i64>,
    ) -> PyResult<Run> {
        let t = self.tracker(py)?;
        let mut options = CreateRunOptions::default();
        if let Some(id) = experiment_id {
            options = options.in_experiment(self::experiment_id(py, id)?);
        }
        if let Some(name) = run_name {
            options = options.with_name(name);
        }
        for tag in tags_of(py, tags)? {
            options = options.with_tag(tag);
        }
        if let Some(parent) = parent_run_id {
            options = options.with_parent(run_id(py, parent)?);
        }
        options.start_time = start_time;
        let run = block_on(py, async move { t.create_run(options).await })?.or_py(py)?;
        Run::of(py, run)
    }

    /// A run.
    fn get_run(&self, py: Python<'_>, run_id: &str) -> PyResult<Run> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let run = block_on(py, async move { t.get_run(&id).await })?.or_py(py)?;
        Run::of(py, run)
    }

    /// Appends a metric value at `step` (0 when omitted); `timestamp` in ms since the epoch
    /// (now when omitted). Positional arguments follow `MlflowClient.log_metric`.
    #[pyo3(signature = (run_id, key, value, timestamp=None, step=None))]
    fn log_metric(
        &self,
        py: Python<'_>,
        run_id: &str,
        key: &str,
        value: f64,
        timestamp: Option<i64>,
        step: Option<i64>,
    ) -> PyResult<()> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let mut metric = Metric::new(key.parse().or_py(py)?, value, step.unwrap_or(0));
        if let Some(ts) = timestamp {
            metric.timestamp_ms = ts;
        }
        block_on(py, async move {
            t.log_batch(&id, LogBatch::new().metric(metric)).await
        })?
        .or_py(py)
    }

    /// Logs a param (write-once: another value for the key is `InvalidArgument`). Numbers and
    /// booleans are written as Python prints them.
    fn log_param(
        &self,
        py: Python<'_>,
        run_id: &str,
        key: &str,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let value = scalar_text("value", value)?;
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let key = key.to_owned();
        block_on(py, async move { t.log_param(&id, &key, &value).await })?.or_py(py)
    }

    /// Sets a tag (the last value wins).
    fn set_tag(
        &self,
        py: Python<'_>,
        run_id: &str,
        key: &str,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let value = scalar_text("value", value)?;
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let key = key.to_owned();
        block_on(py, async move { t.set_tag(&id, &key, &value).await })?.or_py(py)
    }

    /// Deletes a tag.
    fn delete_tag(&self, py: Python<'_>, run_id: &str, key: &str) -> PyResult<()> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let key = key.parse().or_py(py)?;
        block_on(py, async move { t.delete_run_tag(&id, &key).await })?.or_py(py)
    }

    /// Logs metrics, params and tags at once: `metrics` as `{key: value}` at `step`, params
    /// and tags as `{key: value}`.
    #[pyo3(signature = (run_id, metrics=None, params=None, tags=None, step=0, timestamp=None))]
    #[allow(clippy::too_many_arguments)]
    fn log_batch(
        &self,
        py: Python<'_>,
        run_id: &str,
        metrics: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        step: i64,
        timestamp: Option<i64>,
    ) -> PyResult<()> {
        let mut batch = LogBatch::new();
        if let Some(m) = metrics.filter(|m| !m.is_none()) {
            let dict = m
                .cast::<PyDict>()
                .map_err(|_| crate::errors::type_error("metrics", "a dict of str to float", m))?;
            for (k, v) in dict.iter() {
                let key: String = k
                    .extract()
                    .map_err(|_| crate::errors::type_error("a key of metrics", "a str", &k))?;
                let value: f64 = v.extract().map_err(|_| {
                    crate::errors::type_error(&format!("metrics[{key:?}]"), "a number", &v)
                })?;
                let mut metric = Metric::new(key.parse().or_py(py)?, value, step);
                if let Some(ts) = timestamp {
                    metric.timestamp_ms = ts;
                }
                batch = batch.metric(metric);
            }
        }
        for (k, v) in string_map("params", params)? {
            batch = batch.param(Param::new(k.parse().or_py(py)?, v).or_py(py)?);
        }
        for tag in tags_of(py, tags)? {
            batch = batch.tag(tag);
        }
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        block_on(py, async move { t.log_batch(&id, batch).await })?.or_py(py)
    }

    /// Ends a run with `status` (FINISHED, FAILED or KILLED) and makes everything logged so
    /// far durable.
    #[pyo3(signature = (run_id, status="FINISHED", end_time=None))]
    fn set_terminated(
        &self,
        py: Python<'_>,
        run_id: &str,
        status: &str,
        end_time: Option<i64>,
    ) -> PyResult<()> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let status: RunStatus = status.parse().or_py(py)?;
        block_on(py, async move {
            match end_time {
                Some(end) => {
                    let mut options = UpdateRunOptions::default();
                    options.status = Some(status);
                    options.end_time = Some(end);
                    t.update_run(&id, options).await?;
                    t.flush().await
                }
                None => t.end_run(&id, status).await.map(|_| ()),
            }
        })?
        .or_py(py)
    }

    /// Changes a run's status (`RUNNING` reopens an ended run) or display name.
    #[pyo3(signature = (run_id, status=None, name=None))]
    fn update_run(
        &self,
        py: Python<'_>,
        run_id: &str,
        status: Option<&str>,
        name: Option<String>,
    ) -> PyResult<RunInfo> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let mut options = UpdateRunOptions::default();
        options.status = status.map(str::parse::<RunStatus>).transpose().or_py(py)?;
        options.run_name = name;
        let info = block_on(py, async move { t.update_run(&id, options).await })?.or_py(py)?;
        Ok(RunInfo::of(&info))
    }

    /// Soft-deletes a run: hidden from searches, restorable.
    fn delete_run(&self, py: Python<'_>, run_id: &str) -> PyResult<()> {
        self.run_lifecycle(py, run_id, mlops::tracking::LifecycleStage::Deleted)
    }

    /// Restores a deleted run.
    fn restore_run(&self, py: Python<'_>, run_id: &str) -> PyResult<()> {
        self.run_lifecycle(py, run_id, mlops::tracking::LifecycleStage::Active)
    }

    /// Soft-deletes an experiment and its runs.
    fn delete_experiment(&self, py: Python<'_>, experiment_id: &str) -> PyResult<()> {
        self.experiment_lifecycle(py, experiment_id, mlops::tracking::LifecycleStage::Deleted)
    }

    /// Restores a deleted experiment and its runs.
    fn restore_experiment(&self, py: Python<'_>, experiment_id: &str) -> PyResult<()> {
        self.experiment_lifecycle(py, experiment_id, mlops::tracking::LifecycleStage::Active)
    }

    /// Experiments matching MLflow's filter (`name LIKE 'churn%'`, `tags.team = 'x'`);
    /// `view_type` is `ACTIVE_ONLY`, `DELETED_ONLY` or `ALL`.
    #[pyo3(signature = (filter_string="", order_by=None, max_results=1000, view_type="ACTIVE_ONLY"))]
    fn search_experiments(
        &self,
        py: Python<'_>,
        filter_string: &str,
        order_by: Option<Vec<String>>,
        max_results: usize,
        view_type: &str,
    ) -> PyResult<Vec<Experiment>> {
        let mut options = mlops::tracker::SearchExperimentsOptions::default();
        if !filter_string.trim().is_empty() {
            options = options.with_filter(filter_string);
        }
        options.order_by = order_by.unwrap_or_default();
        options.view_type = match view_type {
            "ACTIVE_ONLY" => mlops::tracking::ViewType::ActiveOnly,
            "DELETED_ONLY" => mlops::tracking::ViewType::DeletedOnly,
            "ALL" => mlops::tracking::ViewType::All,
            other => {
                return Err(crate::errors::to_py(
                    py,
                    &mlops::Error::invalid(
                        "view_type",
                        format!("{other:?} is not ACTIVE_ONLY, DELETED_ONLY or ALL"),
                    ),
                ));
            }
        };
        let max_results = max_results.max(1);
        options.max_results = Some(max_results.min(1000));
        let t = self.tracker(py)?;
        let found = block_on(py, async move {
            let mut out = Vec::new();
            loop {
                let page = t.search_experiments(options.clone()).await?;
                out.extend(page.items);
                match page.next_page_token {
                    Some(token) if out.len() < max_results => options.page_token = Some(token),
                    _ => break,
                }
            }
            out.truncate(max_results);
            Ok::<_, mlops::Error>(out)
        })?
        .or_py(py)?;
        Ok(found.into_iter().map(Experiment::from).collect())
    }

    /// Every value logged for a metric, in logging order.
    fn get_metric_history(
        &self,
        py: Python<'_>,
        run_id: &str,
        key: &str,
    ) -> PyResult<Vec<MetricValue>> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let key = key.parse().or_py(py)?;
        let history = block_on(py, async move { t.metric_history(&id, &key).await })?.or_py(py)?;
        Ok(history
            .into_iter()
            .map(|m| MetricValue {
                key: m.key.to_string(),
                value: m.value,
                step: m.step,
                timestamp: m.timestamp_ms,
            })
            .collect())
    }

    /// Stores a local file as an artifact of the run, under `artifact_path` (a folder) when
    /// given.
    #[pyo3(signature = (run_id, local_path, artifact_path=None))]
    fn log_artifact(
        &self,
        py: Python<'_>,
        run_id: &str,
        local_path: std::path::PathBuf,
        artifact_path: Option<&str>,
    ) -> PyResult<()> {
        let name = local_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                crate::errors::to_py(
                    py,
                    &mlops::Error::invalid(
                        "local_path",
                        format!("{} names no file", local_path.display()),
                    ),
                )
            })?;
        let path = match artifact_path {
            Some(dir) => format!("{}/{name}", dir.trim_end_matches('/')),
            None => name,
        };
        let path = ArtifactPath::new(path).or_py(py)?;
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        block_on(py, async move {
            let data = std::fs::read(&local_path)
                .map_err(|e| mlops::Error::io("artifact", "read", &local_path, e))?;
            t.put_artifact(&id, &path, data.into()).await.map(|_| ())
        })?
        .or_py(py)
    }

    /// Stores every file under a local folder as artifacts of the run.
    #[pyo3(signature = (run_id, local_dir, artifact_path=None))]
    fn log_artifacts(
        &self,
        py: Python<'_>,
        run_id: &str,
        local_dir: std::path::PathBuf,
        artifact_path: Option<&str>,
    ) -> PyResult<()> {
        let prefix = artifact_path.map(|p| p.trim_end_matches('/').to_owned());
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        block_on(py, async move {
            let files = mlops::ModelArtifact::new("files")
                .with_dir(&local_dir, &[])?
                .files;
            for (path, data) in files {
                let full = match &prefix {
                    Some(p) => ArtifactPath::new(format!("{p}/{path}"))?,
                    None => path,
                };
                t.put_artifact(&id, &full, data).await?;
            }
            Ok::<_, mlops::Error>(())
        })?
        .or_py(py)
    }

    /// The run's artifact paths (under `path` when given).
    #[pyo3(signature = (run_id, path=None))]
    fn list_artifacts(
        &self,
        py: Python<'_>,
        run_id: &str,
        path: Option<&str>,
    ) -> PyResult<Vec<String>> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let prefix = path.map(ArtifactPath::new).transpose().or_py(py)?;
        let listed = block_on(
            py,
            async move { t.list_artifacts(&id, prefix.as_ref()).await },
        )?
        .or_py(py)?;
        Ok(listed.into_iter().map(|a| a.path.to_string()).collect())
    }

    /// An artifact's bytes.
    fn download_artifact(
        &self,
        py: Python<'_>,
        run_id: &str,
        path: &str,
    ) -> PyResult<pyo3::Py<pyo3::types::PyBytes>> {
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        let path = ArtifactPath::new(path).or_py(py)?;
        let bytes = block_on(py, async move { t.get_artifact(&id, &path).await })?.or_py(py)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }

    /// Records that the run read a dataset version (`name` or `name@version`, read from the
    /// store's datasets), with MLflow's `context` tag (`training`, `evaluation`, …).
    #[pyo3(signature = (run_id, dataset, context=None))]
    fn log_input(
        &self,
        py: Python<'_>,
        run_id: &str,
        dataset: &str,
        context: Option<String>,
    ) -> PyResult<()> {
        let (name, at) = crate::datasets::dataset_ref(py, dataset)?;
        let datasets = mlops::storage::Datasets::new(Arc::clone(&self.store.get().inner));
        let t = self.tracker(py)?;
        let id = self::run_id(py, run_id)?;
        block_on(py, async move {
            let version = datasets.version(&name, at).await?;
            let schema = serde_json::to_string(&version.manifest.schema).ok();
            let mut tags = BTreeMap::new();
            if let Some(context) = context {
                tags.insert(mlops::tracking::tags::DATASET_CONTEXT.to_owned(), context);
            }
            t.log_inputs(
                &id,
                vec![mlops::tracking::DatasetInput {
                    dataset: mlops::tracking::Dataset {
                        name: version.name.to_string(),
                        digest: version.digest.to_hex(),
                        source_type: "mlops-store".into(),
                        source: format!("datasets/{}@{}", version.name, version.version),
                        schema,
                        profile: Some(
                            serde_json::json!({ "rows": version.manifest.rows }).to_string(),
                        ),
                    },
                    tags,
                }],
            )
            .await
        })?
        .or_py(py)
    }

    /// Runs of the experiments matching MLflow's filter grammar, ordered by `order_by`
    /// (`["metrics.f1 DESC"]`), as a table: `run_id`, `experiment_id`, `run_name`, `status`,
    /// `start_time`, `end_time`, `artifact_uri`, then `metrics.<key>`, `params.<key>` and
    /// `tags.<key>` columns (null where a run has none).
    #[pyo3(signature = (experiment_ids, filter_string="", order_by=None, max_results=1000))]
    fn search_runs(
        &self,
        py: Python<'_>,
        experiment_ids: Vec<String>,
        filter_string: &str,
        order_by: Option<Vec<String>>,
        max_results: usize,
    ) -> PyResult<Table> {
        let t = self.tracker(py)?;
        let mut options = SearchRunsOptions::default();
        for id in &experiment_ids {
            options = options.in_experiment(self::experiment_id(py, id)?);
        }
        if !filter_string.trim().is_empty() {
            options = options.with_filter(filter_string);
        }
        for o in order_by.unwrap_or_default() {
            options = options.order_by(o);
        }
        options.max_results = Some(max_results.clamp(1, 50_000));
        let runs = block_on(py, async move {
            let mut out = Vec::new();
            let mut options = options;
            loop {
                let page = t.search_runs(options.clone()).await?;
                out.extend(page.items);
                match page.next_page_token {
                    Some(token) if out.len() < max_results => options.page_token = Some(token),
                    _ => break,
                }
            }
            out.truncate(max_results);
            Ok::<_, mlops::Error>(out)
        })?
        .or_py(py)?;
        runs_table(&runs).or_py(py)
    }

    /// Makes everything logged so far durable.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let t = self.tracker(py)?;
        block_on(py, async move { t.flush().await })?.or_py(py)
    }

    fn __repr__(&self) -> String {
        format!("mlops.Tracker({:?})", self.store.get().url)
    }
}

/// Runs as MLflow's `search_runs` frame: fixed columns, then one column per metric, param
/// and tag key.
fn runs_table(runs: &[mlops::Run]) -> mlops::Result<Table> {
    let text = |f: &dyn Fn(&mlops::Run) -> Option<String>| -> ArrayRef {
        std::sync::Arc::new(StringArray::from(runs.iter().map(f).collect::<Vec<_>>()))
    };
    let mut fields = vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("experiment_id", DataType::Utf8, false),
        Field::new("run_name", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("start_time", DataType::Int64, false),
        Field::new("end_time", DataType::Int64, true),
        Field::new("artifact_uri", DataType::Utf8, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        text(&|r| Some(r.info.run_id.to_string())),
        text(&|r| Some(r.info.experiment_id.to_string())),
        text(&|r| Some(r.info.run_name.clone())),
        text(&|r| Some(r.info.status.as_str().to_owned())),
        std::sync::Arc::new(Int64Array::from(
            runs.iter().map(|r| r.info.start_time).collect::<Vec<_>>(),
        )),
        std::sync::Arc::new(Int64Array::from(
            runs.iter().map(|r| r.info.end_time).collect::<Vec<_>>(),
        )),
        text(&|r| Some(r.info.artifact_uri.clone())),
    ];
    let keys = |f: &dyn Fn(&mlops::Run) -> Vec<String>| -> std::collections::BTreeSet<String> {
        runs.iter().flat_map(f).collect()
    };
    for key in keys(&|r| r.data.metrics.keys().map(ToString::to_string).collect()) {
        fields.push(Field::new(
            format!("metrics.{key}"),
            DataType::Float64,
            true,
        ));
        columns.push(std::sync::Arc::new(Float64Array::from(
            runs.iter()
                .map(|r| r.data.metrics.get(key.as_str()).map(|m| m.value))
                .collect::<Vec<_>>(),
        )));
    }
    for key in keys(&|r| r.data.params.keys().map(ToString::to_string).collect()) {
        fields.push(Field::new(format!("params.{key}"), DataType::Utf8, true));
        columns.push(text(&|r| r.data.params.get(key.as_str()).cloned()));
    }
    for key in keys(&|r| r.data.tags.keys().map(ToString::to_string).collect()) {
        fields.push(Field::new(format!("tags.{key}"), DataType::Utf8, true));
        columns.push(text(&|r| r.data.tags.get(key.as_str()).cloned()));
    }
    let schema = std::sync::Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| mlops::Error::backend("arrow", e))?;
    Ok(Table::new(schema, vec![batch]))
}
