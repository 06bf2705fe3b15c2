//! Pipelines: [`run_pipeline`] runs a pipeline file (the CLI's YAML) with the built-in steps
//! over a store, tracked and cached, and returns its [`PipelineReport`].

use std::path::PathBuf;
use std::sync::Arc;

use mlops::CancelToken;
use mlops::pipeline::{PipelineSpec, Runner};
use mlops::steps::{StepEnv, builtin};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{OrPy, type_error};
use crate::registry::Registry;
use crate::runtime::block_on_interruptible;
use crate::store::{py_to_json, to_py};
use crate::tracking::Tracker;

/// What a pipeline run did: per step its status (`succeeded`, `cached`, `failed`, `skipped`,
/// …), attempts, resource usage, cost and outputs; and the whole run's time and cost.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct PipelineReport {
    inner: mlops::pipeline::PipelineReport,
}

#[pymethods]
impl PipelineReport {
    /// The pipeline's name.
    #[getter]
    fn pipeline(&self) -> String {
        self.inner.pipeline.clone()
    }

    /// The run that tracked it.
    #[getter]
    fn run_id(&self) -> Option<String> {
        self.inner.run_id.as_ref().map(ToString::to_string)
    }

    /// Whether every step succeeded (or came from cache, or was bypassed).
    #[getter]
    fn succeeded(&self) -> bool {
        self.inner.succeeded()
    }

    /// Wall-clock seconds.
    #[getter]
    fn wall_seconds(&self) -> f64 {
        self.inner.wall_seconds
    }

    /// What the run cost by the rate card, in `currency`.
    #[getter]
    fn cost(&self) -> f64 {
        self.inner.cost
    }

    /// The cost's currency.
    #[getter]
    fn currency(&self) -> String {
        self.inner.currency.clone()
    }

    /// `[(step, status)]` in run order.
    #[getter]
    fn statuses(&self) -> Vec<(String, &'static str)> {
        self.inner
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.status.as_str()))
            .collect()
    }

    /// Steps served from cache.
    #[getter]
    fn cache_hits(&self) -> Vec<String> {
        self.inner
            .steps
            .iter()
            .filter(|s| s.status == mlops::pipeline::StepStatus::Cached)
            .map(|s| s.name.clone())
            .collect()
    }

    /// The steps as dicts, in run order.
    #[getter]
    fn steps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.steps)
    }

    /// One step as a dict (`NotFound` for a name the pipeline lacks).
    fn step<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.step(name) {
            Some(step) => to_py(py, step),
            None => Err(crate::errors::to_py(
                py,
                &mlops::Error::not_found("pipeline step", name),
            )),
        }
    }

    /// A step's output value (`report.output("train", "model")`).
    fn output<'py>(&self, py: Python<'py>, step: &str, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let found = self
            .inner
            .step(step)
            .ok_or_else(|| mlops::Error::not_found("pipeline step", step))
            .and_then(|s| {
                s.outputs
                    .get(name)
                    .ok_or_else(|| mlops::Error::not_found("step output", format!("{step}.{name}")))
            })
            .or_py(py)?;
        crate::store::json_to_py(py, &found.value)
    }

    /// The failed step's name and error message, if one failed.
    #[getter]
    fn failure(&self) -> Option<(String, String)> {
        self.inner
            .failure()
            .map(|(name, error)| (name.to_owned(), error.to_string()))
    }

    /// The whole report as a dict (the CLI's `--json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        let steps: Vec<String> = self
            .inner
            .steps
            .iter()
            .map(|s| format!("{} {}", s.name, s.status.as_str()))
            .collect();
        format!(
            "<PipelineReport: {} ({}); {:.1}s>",
            self.inner.pipeline,
            steps.join(", "),
            self.inner.wall_seconds
        )
    }
}

/// Runs the pipeline in `path` (YAML: `pipeline:` and `steps:` with `uses:` built-in steps)
/// over the tracker's store: each step tracked, cached by its inputs and code, and registry
/// writes going through `registry` (a governed one gates promotions). `params` override
/// steps' `with:` values (`{"train": {"epochs": 5}}`); `force` re-runs cached steps; `only`
/// runs those steps (their inputs from cache).
#[pyfunction]
#[pyo3(signature = (path, *, tracker, registry=None, params=None, experiment="pipelines", force=false, only=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_pipeline(
    py: Python<'_>,
    path: PathBuf,
    tracker: &Bound<'_, Tracker>,
    registry: Option<&Bound<'_, Registry>>,
    params: Option<&Bound<'_, PyDict>>,
    experiment: &str,
    force: bool,
    only: Option<Vec<String>>,
) -> PyResult<PipelineReport> {
    let text = std::fs::read_to_string(&path)
        .map_err(|e| mlops::Error::io("pipeline", "read", &path, e))
        .or_py(py)?;
    let mut spec = PipelineSpec::from_yaml(&text).or_py(py)?;
    if let Some(params) = params {
        for (k, v) in params.iter() {
            let step_name: String = k
                .extract()
                .map_err(|_| type_error("a key of params", "a step name (str)", &k))?;
            let Some(step) = spec.steps.iter_mut().find(|s| s.name == step_name) else {
                return Err(crate::errors::to_py(
                    py,
                    &mlops::Error::invalid(
                        "params",
                        format!("the pipeline has no step {step_name:?}"),
                    ),
                ));
            };
            match py_to_json(&format!("params[{step_name:?}]"), &v)? {
                serde_json::Value::Object(values) => step.params.extend(values),
                _ => {
                    return Err(type_error(
                        &format!("params[{step_name:?}]"),
                        "a dict of the step's parameters",
                        &v,
                    ));
                }
            }
        }
    }
    let tracker = tracker.get();
    let store = tracker.backing_store();
    let shared = tracker.shared(py)?;
    let registry: Arc<dyn mlops::Registry> = match registry {
        Some(r) => Arc::clone(&r.get().inner),
        None => Arc::new(mlops::storage::StoreRegistry::new(Arc::clone(&store))),
    };
    let steps = builtin(StepEnv {
        store: Arc::clone(&store),
        tracker: Arc::clone(&shared),
        registry,
        experiment: experiment.to_owned(),
    });
    let pipeline = spec.build(&steps).or_py(py)?;
    let cancel = CancelToken::new();
    let mut runner = Runner::new(store)
        .tracker(Arc::clone(&shared), experiment)
        .force(force)
        .cancel_token(cancel.clone());
    if let Some(only) = only {
        runner = runner.only(only);
    }
    let report = block_on_interruptible(py, &cancel, async move {
        let report = runner.run(&pipeline).await;
        shared.flush().await?;
        report
    })?
    .or_py(py)?;
    Ok(PipelineReport { inner: report })
}
