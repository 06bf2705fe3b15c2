//! # mlops-steps
//!
//! The built-in pipeline steps: what `mlops pipeline run pipeline.yaml` assembles pipelines
//! from. They compose the implementation crates (datasets from mlops-storage, training from
//! mlops-train, drift from mlops-drift) behind mlops-pipeline's [`Step`](mlops_pipeline::Step)
//! trait, which is why they live on the composition floor, beside the facade, and not in any
//! of those crates (implementation crates never depend on each other).
//!
//! | `uses:` | inputs | parameters (`with:`) | outputs |
//! |---|---|---|---|
//! | `dataset` | — | `name`, `version` (default: the latest) | `dataset` ([`DatasetRef`]) |
//! | `train` | `data` (a dataset) | `target`; any `TrainConfig` key (`model`, `epochs`, `hidden`, …); `seed`, `validation_fraction`, `experiment`, `run_name`, `register`, `assess` (`false` or [`AssessParams`](assess::AssessParams) keys) | `model` ([`ModelRef`]) |
//! | `drift` | `reference`, `current` (datasets) | `fail_on_drift` (default false), `drift_share` | `report` ([`DriftSummary`]) |
//! | `promote` | `model` (registered) | `alias` (default `champion`) | `promoted` ([`Promoted`]) |
//! | `monitor` | `current` (a dataset: production data, with labels if known) | `model`, `alias` (default `champion`), `target`, `max_drift_share` (0.3), `max_accuracy_drop` (0.05) | `decision` ([`MonitorDecision`]) |
//! | `training_set` | `entities` (a dataset: join keys, `event_timestamp`, labels) | `service` or `features`, `dataset`, `project` (default: the one defining `service`), `full_feature_names`, `filter_by_created_timestamp`, `root` | `dataset` ([`DatasetRef`]) |
//! | `validate` | `candidate` (a `train` output); `holdout` (a labelled dataset), optional | `model`, `alias` (default `champion`), `metric` (default `val_accuracy`), `target` (with `holdout`), `min_delta` (0), `assess` (on the holdout) | `verdict` ([`Verdict`]) |
//!
//! `train` assesses every model on its validation rows ([`assess::ModelAssessor`]: permutation
//! importance, and group fairness when the dataset's `sensitive` metadata or `assess:
//! {sensitive: […]}` declares columns) into version tags, the model card and an HTML report;
//! `validate` re-measures the candidate on its holdout when the holdout declares sensitive
//! columns and replaces the version's `explain.*`/`fairness.*` tags with what it found there.
//!
//! With the `onnx` feature, `export` writes models trained here in other tools' formats: a
//! candle model as an ONNX graph, an ONNX model as an MLflow model directory.
//!
//! Each step reads its parameters into one struct (unknown keys are errors naming them) that
//! both its parameter check, before anything runs, and its run use; outputs are typed values
//! (their JSON is what `when:` conditions and downstream steps read).
//!
//! A `dataset` step without `version` is served from the cache only while its recorded
//! version is still the latest, so a new dataset version re-runs what depends on it — and
//! nothing else. Registry writes go through the registry the steps were given (a
//! `mlops_policy::Governed` one gates them by policy).
//!
//! ```
//! use std::sync::Arc;
//! use mlops_pipeline::PipelineSpec;
//! use mlops_steps::{StepEnv, builtin};
//! use mlops_storage::{MemoryRegistry, MemoryStore, MemoryTracker};
//!
//! let env = StepEnv {
//!     store: Arc::new(MemoryStore::new()),
//!     tracker: Arc::new(MemoryTracker::new()),
//!     registry: Arc::new(MemoryRegistry::new()),
//!     experiment: "churn".into(),
//! };
//! let spec = PipelineSpec::from_yaml(
//!     "pipeline: churn\nsteps:\n  - {name: data, uses: dataset, with: {name: churn}}\n",
//! )?;
//! let pipeline = spec.build(&builtin(env))?;
//! assert_eq!(pipeline.steps().len(), 1);
//! // A misspelt parameter is refused before anything runs.
//! let typo = PipelineSpec::from_yaml(
//!     "pipeline: churn\nsteps:\n  - {name: data, uses: dataset, with: {nmae: churn}}\n",
//! )?;
//! let env = StepEnv {
//!     store: Arc::new(MemoryStore::new()),
//!     tracker: Arc::new(MemoryTracker::new()),
//!     registry: Arc::new(MemoryRegistry::new()),
//!     experiment: "churn".into(),
//! };
//! assert!(typo.build(&builtin(env)).unwrap_err().to_string().contains("nmae"));
//! # Ok::<(), mlops_core::Error>(())
//! ```

pub mod assess;
mod dataset;
mod drift;
#[cfg(feature = "onnx")]
pub mod export;
pub mod features;
mod monitor;
mod promote;
mod refs;
mod scoring;
mod train;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use mlops_core::{Alias, Registry, Result, Store, Tracker};
use mlops_pipeline::StepRegistry;

pub use dataset::{DatasetParams, DatasetStep};
pub use drift::{DriftParams, DriftStep, DriftSummary};
pub use monitor::{MonitorDecision, MonitorParams, MonitorStep};
pub use promote::{PromoteParams, PromoteStep, Promoted};
pub use refs::{DatasetRef, ModelRef};
pub use train::{TrainParams, TrainStep};
pub use validate::{ValidateParams, ValidateStep, Verdict};

/// What the built-in steps work against.
#[derive(Debug, Clone)]
pub struct StepEnv {
    /// Datasets and artifacts live here.
    pub store: Arc<dyn Store>,
    /// Training runs are tracked here.
    pub tracker: Arc<dyn Tracker>,
    /// Models are registered and promoted here.
    pub registry: Arc<dyn Registry>,
    /// The experiment training runs go to unless a step says otherwise.
    pub experiment: String,
}

/// A registry of the built-in steps over `env`.
pub fn builtin(env: StepEnv) -> StepRegistry {
    let env = Arc::new(env);
    StepRegistry::new()
        .register("dataset", DatasetStep(env.clone()))
        .register("train", TrainStep(env.clone()))
        .register("drift", DriftStep(env.clone()))
        .register("promote", PromoteStep(env.clone()))
        .register("monitor", MonitorStep(env.clone()))
        .register("training_set", features::TrainingSetStep(env.clone()))
        .register("validate", ValidateStep(env))
}

/// Names of the built-in steps and what they take, for `--help` and errors.
pub fn describe() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "dataset",
            "a dataset version: with {name, version?}; outputs dataset",
        ),
        (
            "train",
            "needs {data}; with {target, model, epochs, …, register?, assess?}; outputs model",
        ),
        (
            "drift",
            "needs {reference, current}; with {fail_on_drift?, drift_share?}; outputs report",
        ),
        ("promote", "needs {model}; with {alias?}; outputs promoted"),
        (
            "monitor",
            "needs {current}; with {model, alias?, target?, max_drift_share?, max_accuracy_drop?}; outputs decision",
        ),
        (
            "training_set",
            "needs {entities}; with {service | features, dataset, project?, full_feature_names?, filter_by_created_timestamp?, root?}; outputs dataset",
        ),
        (
            "validate",
            "needs {candidate, holdout?}; with {model?, alias?, metric?, target?, min_delta?, assess?}; outputs verdict",
        ),
    ])
}

/// The alias steps use when none is given.
const CHAMPION: &str = "champion";

/// A step's `alias` parameter, [`CHAMPION`] when absent.
fn alias_or_champion(alias: &Option<Alias>) -> Result<Alias> {
    match alias {
        Some(a) => Ok(a.clone()),
        None => CHAMPION.parse(),
    }
}

/// The version `alias` of `model` points at; `None` when the model or alias does not exist.
async fn alias_target(
    registry: &dyn Registry,
    model: &mlops_core::ModelName,
    alias: &Alias,
) -> Result<Option<mlops_core::ModelVersion>> {
    match registry.get_version_by_alias(model, alias).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks that a share parameter of step kind `uses` lies in [0, 1].
fn share(uses: &str, key: &str, value: Option<f64>) -> Result<()> {
    match value {
        Some(v) if !(0.0..=1.0).contains(&v) => Err(mlops_core::Error::invalid(
            "step param",
            format!("parameters of {uses}: {key} must be in [0, 1], not {v}"),
        )),
        _ => Ok(()),
    }
}
