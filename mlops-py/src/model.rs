//! Models: training candle models as tracked runs ([`train`], [`tune`]), predicting from
//! frames, dicts or NumPy arrays ([`Model::predict`]), and model directories and registry URIs
//! ([`load_model`], [`Model::save`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use mlops::registry::DatasetLineage;
use mlops::signature::Schema;
use mlops::storage::Artifacts;
use mlops::train::{
    CandleLoader, CandleTrainer, Domain, Goal, ModelCard, SearchSpace, Strategy, TrainConfig,
    TrainingData, TrainingJob, Tuner,
};
use mlops::{CancelToken, FitOptions, ModelArtifact, ModelLoader, ModelUri, RegistryExt, Tensor};
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::arrays::{tensor_from_py, tensors_from_dict, tensors_to_dict};
use crate::errors::{OrPy, to_py as error_to_py, type_error};
use crate::registry::{ModelVersion, Registry};
use crate::runtime::{block_on, block_on_interruptible};
use crate::store::{scalar_text, to_py};
use crate::table::batches_of;
use crate::tracking::Tracker;

/// What training recorded about a model.
struct Trained {
    run_id: String,
    metrics: BTreeMap<String, f64>,
    history: Vec<mlops::train::EpochReport>,
    source: String,
    version: Option<mlops::ModelVersion>,
}

/// A model: trained here, loaded from a directory or from the registry. `predict` takes a
/// frame (any Arrow-exporting table), a dict of arrays by input name, or a 2-D NumPy array
/// whose columns follow the signature's inputs; it returns a dict of NumPy arrays by output
/// name (`label` and `probabilities` for classifiers, `prediction` for regressors).
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Model {
    pub(crate) inner: Arc<dyn mlops::Model>,
    trained: Option<Trained>,
}

/// The loaders of the flavors the Python package serves.
pub(crate) fn loaders() -> Vec<Arc<dyn ModelLoader>> {
    vec![
        Arc::new(CandleLoader::new()),
        Arc::new(mlops::serve::LinearLoader),
        Arc::new(mlops::serve::IdentityLoader),
    ]
}

/// A model from its artifact, by the artifact's flavor.
fn load_artifact(artifact: &ModelArtifact) -> mlops::Result<Arc<dyn mlops::Model>> {
    let loaders = loaders();
    match loaders.iter().find(|l| l.flavor() == artifact.flavor) {
        Some(loader) => loader.load(artifact),
        None => Err(mlops::Error::not_supported(
            "model flavor",
            artifact.flavor.clone(),
            format!(
                "the Python package loads {}",
                loaders
                    .iter()
                    .map(|l| l.flavor().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The input names of a signature, in order (empty when the model names none).
fn input_names(signature: &mlops::Signature) -> Vec<String> {
    match &signature.inputs {
        Schema::Columns(cols) => cols.iter().filter_map(|c| c.name.clone()).collect(),
        Schema::Tensors(specs) => specs.iter().filter_map(|s| s.name.clone()).collect(),
    }
}

impl Model {
    /// The model's input tensors from what `predict` was given.
    fn inputs(&self, data: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
        let py = data.py();
        if data.is_instance_of::<PyDict>() {
            return tensors_from_dict("data", data);
        }
        let names = input_names(self.inner.signature());
        if data.hasattr("__arrow_c_stream__")? {
            let (schema, batches) = batches_of("data", data)?;
            let batch = arrow::compute::concat_batches(&schema, &batches)
                .map_err(|e| mlops::Error::backend("arrow", e))
                .or_py(py)?;
            return table_inputs(&batch, &names).or_py(py);
        }
        if let Ok(array) = data.cast::<PyUntypedArray>() {
            if array.ndim() == 2 && names.len() > 1 {
                let columns = array.shape()[1];
                if columns != names.len() {
                    return Err(error_to_py(
                        py,
                        &mlops::Error::invalid(
                            "data",
                            format!(
                                "the array has {columns} columns; the model takes {} inputs ({})",
                                names.len(),
                                names.join(", ")
                            ),
                        ),
                    ));
                }
                let slice_all = py.eval(c"slice(None)", None, None)?;
                let mut tensors = Vec::with_capacity(columns);
                for (i, name) in names.iter().enumerate() {
                    let column = array.get_item(PyTuple::new(
                        py,
                        [slice_all.clone(), i.into_pyobject(py)?.into_any()],
                    )?)?;
                    tensors.push(tensor_from_py(name, &column)?);
                }
                return Ok(tensors);
            }
            if let [name] = names.as_slice() {
                return Ok(vec![tensor_from_py(name, array)?]);
            }
        }
        Err(type_error(
            "data",
            "a table (pyarrow, pandas, polars…), a dict of arrays by input name, or a 2-D \
             NumPy array",
            data,
        ))
    }

    pub(crate) fn from_trained(outcome: mlops::train::JobOutcome) -> Self {
        Self {
            inner: outcome.model,
            trained: Some(Trained {
                run_id: outcome.run_id.to_string(),
                metrics: outcome.metrics,
                history: outcome.history,
                source: outcome.source,
                version: outcome.version,
            }),
        }
    }
}

/// Inputs by name from a table's columns: the signature's names, or every column when it names
/// none. Dictionary-encoded columns (pandas categoricals) are decoded first.
fn table_inputs(batch: &RecordBatch, names: &[String]) -> mlops::Result<Vec<Tensor>> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match column.data_type() {
            arrow::datatypes::DataType::Dictionary(_, values) => {
                let decoded = arrow::compute::cast(column, values).map_err(|e| {
                    mlops::Error::invalid("data", format!("column {:?}: {e}", field.name()))
                })?;
                fields.push(
                    field
                        .as_ref()
                        .clone()
                        .with_data_type(values.as_ref().clone()),
                );
                columns.push(decoded);
            }
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
    }
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| mlops::Error::invalid("data", e.to_string()))?;
    if names.is_empty() {
        let all: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        return mlops::arrow::tensors_by_name(&batch, &all);
    }
    mlops::arrow::tensors_by_name(&batch, names)
}

#[pymethods]
impl Model {
    /// The model's flavor (`candle`, `linear`, …).
    #[getter]
    fn flavor(&self) -> String {
        self.inner.flavor().to_owned()
    }

    /// What the model takes and returns, as a dict.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.inner.signature())
    }

    /// The input names, in order.
    #[getter]
    fn input_names(&self) -> Vec<String> {
        input_names(self.inner.signature())
    }

    /// Predicts: `{output name: array}`.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let inputs = self.inputs(data)?;
        let model = Arc::clone(&self.inner);
        let outputs = py.detach(move || model.predict(&inputs)).or_py(py)?;
        tensors_to_dict(py, &outputs)
    }

    /// Writes the model as a new directory (its files and a `FLAVOR` file) that `load_model`,
    /// the CLI (`mlops serve --model-dir`) and the Rust SDK read. The directory appears whole
    /// or not at all; a path that exists (other than an empty directory) is `AlreadyExists`,
    /// as MLflow's `save_model` refuses it.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let model = Arc::clone(&self.inner);
        py.detach(move || {
            let artifact = model.to_artifact()?;
            save_model_dir(&artifact, &path)
        })
        .or_py(py)
    }

    /// The model card of a candle model (network, preprocessing, metrics, params, lineage,
    /// assessment) as a dict; None for other flavors.
    #[getter]
    fn card<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.inner.flavor() != mlops::train::model::FLAVOR {
            return Ok(None);
        }
        let model = Arc::clone(&self.inner);
        let card = py
            .detach(move || ModelCard::read(&model.to_artifact()?))
            .or_py(py)?;
        Ok(Some(to_py(py, &card)?))
    }

    /// The training run's id (None for a loaded model).
    #[getter]
    fn run_id(&self) -> Option<String> {
        self.trained.as_ref().map(|t| t.run_id.clone())
    }

    /// The final metrics of training (`val_accuracy`, `val_rmse`, …); empty for a loaded model.
    #[getter]
    fn metrics(&self) -> BTreeMap<String, f64> {
        self.trained
            .as_ref()
            .map(|t| t.metrics.clone())
            .unwrap_or_default()
    }

    /// Per-epoch losses and metrics, as dicts.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.trained {
            Some(t) => to_py(py, &t.history),
            None => Ok(PyList::empty(py).into_any()),
        }
    }

    /// Where the trained model's files are stored (`tree:<digest>`, what the registry records).
    #[getter]
    fn source(&self) -> Option<String> {
        self.trained.as_ref().map(|t| t.source.clone())
    }

    /// The registered version, when training registered one.
    #[getter]
    fn version(&self) -> Option<ModelVersion> {
        self.trained
            .as_ref()
            .and_then(|t| t.version.clone())
            .map(|inner| ModelVersion { inner })
    }

    fn __repr__(&self) -> String {
        match &self.trained {
            Some(t) => format!(
                "<Model: flavor={:?}, run_id={:?}, inputs={:?}>",
                self.inner.flavor(),
                t.run_id,
                self.input_names()
            ),
            None => format!(
                "<Model: flavor={:?}, inputs={:?}>",
                self.inner.flavor(),
                self.input_names()
            ),
        }
    }
}

/// Writes `artifact` as the new directory `dir`: into a hidden sibling first, renamed into place
/// when complete, so a crash leaves no half-written model under `dir`.
fn save_model_dir(artifact: &ModelArtifact, dir: &std::path::Path) -> mlops::Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            mlops::Error::invalid("path", format!("{:?} names no directory", dir.display()))
        })?;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(mlops::Error::already_exists(
                    "model directory",
                    format!("{} (choose a new path, or remove it first)", dir.display()),
                ));
            }
            std::fs::remove_dir(dir)
                .map_err(|e| mlops::Error::io("model directory", "replace", dir, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(mlops::Error::already_exists(
                "model directory",
                format!("{} (a file is in the way)", dir.display()),
            ));
        }
        Err(e) => return Err(mlops::Error::io("model directory", "read", dir, e)),
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let staging = parent.join(format!(".{name}.{}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let written = mlops::serve::write_model_dir(artifact, &staging).and_then(|()| {
        std::fs::rename(&staging, dir)
            .map_err(|e| mlops::Error::io("model directory", "create", dir, e))
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written
}

/// A training config from a model kind and `{key: value}` params (lists join with commas:
/// `hidden=[64, 32]`).
fn config(
    py: Python<'_>,
    model: &str,
    params: Option<&Bound<'_, PyDict>>,
) -> PyResult<TrainConfig> {
    let mut config = TrainConfig::new(model.parse().or_py(py)?);
    if let Some(params) = params {
        let mut pairs = Vec::with_capacity(params.len());
        for (k, v) in params.iter() {
            let key: String = k
                .extract()
                .map_err(|_| type_error("a training parameter's name", "a str", &k))?;
            let value = if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
                let mut items = Vec::new();
                for item in v.try_iter()? {
                    items.push(scalar_text(&key, &item?)?);
                }
                items.join(",")
            } else if v.is_none() {
                "none".to_owned()
            } else {
                scalar_text(&key, &v)?
            };
            pairs.push((key, value));
        }
        config
            .apply(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .or_py(py)?;
    }
    config.validate().or_py(py)?;
    Ok(config)
}

/// Training data: a dataset reference in the tracker's store (`"name"`, `"name@3"`, recorded
/// as the run's input and the model's lineage) or an Arrow-exporting table.
fn training_data(
    py: Python<'_>,
    tracker: &Tracker,
    data: &Bound<'_, PyAny>,
) -> PyResult<TrainingData> {
    if let Ok(reference) = data.extract::<String>() {
        let (name, at) = crate::datasets::dataset_ref(py, &reference)?;
        let datasets = mlops::storage::Datasets::new(tracker.backing_store());
        let (version, batches) =
            block_on(py, async move { datasets.read_all(&name, at).await })?.or_py(py)?;
        let schema = serde_json::to_string(&version.manifest.schema).ok();
        let mut data = TrainingData::new(batches).with_source(DatasetLineage {
            name: version.name,
            version: version.version,
            digest: version.digest,
        });
        if let Some(schema) = schema {
            data = data.with_schema(schema);
        }
        return Ok(data);
    }
    let (_, batches) = batches_of("data", data)?;
    Ok(TrainingData::new(batches))
}

/// The tracked job every training call runs: experiment, fit options, tracker, the store's
/// artifacts; registered as `register` in `registry` when given.
#[allow(clippy::too_many_arguments)]
fn job(
    py: Python<'_>,
    tracker: &Tracker,
    registry: Option<&Bound<'_, Registry>>,
    register: Option<&str>,
    experiment: &str,
    target: &str,
    seed: u64,
    validation_fraction: f64,
    run_name: Option<String>,
    parent_run_id: Option<&str>,
    tags: BTreeMap<String, String>,
) -> PyResult<TrainingJob> {
    let options = FitOptions::new(target)
        .with_seed(seed)
        .with_validation_fraction(validation_fraction);
    let artifacts = Arc::new(Artifacts::new(tracker.backing_store()));
    let mut job = TrainingJob::new(experiment, options, tracker.shared(py)?, artifacts);
    if let Some(name) = run_name {
        job = job.run_name(name);
    }
    if let Some(parent) = parent_run_id {
        job = job.parent(parent.parse().or_py(py)?);
    }
    for (k, v) in tags {
        job = job.tag(k, v);
    }
    job = match (register, registry) {
        (Some(name), Some(registry)) => {
            job.register(Arc::clone(&registry.get().inner), name.parse().or_py(py)?)
        }
        (Some(name), None) => {
            let registry = Arc::new(mlops::storage::StoreRegistry::new(tracker.backing_store()));
            job.register(registry, name.parse().or_py(py)?)
        }
        (None, _) => job.without_registration(),
    };
    Ok(job.without_observer())
}

/// Trains a candle model on `data` as a tracked run (params, per-epoch metrics, the model's
/// files, the dataset input) and returns it; with `register`, also registers a version.
#[pyfunction]
#[pyo3(signature = (data, target, model="logistic", *, tracker, registry=None, register=None, experiment="Default", run_name=None, parent_run_id=None, seed=42, validation_fraction=0.2, params=None, tags=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn train(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    target: &str,
    model: &str,
    tracker: &Bound<'_, Tracker>,
    registry: Option<&Bound<'_, Registry>>,
    register: Option<&str>,
    experiment: &str,
    run_name: Option<String>,
    parent_run_id: Option<&str>,
    seed: u64,
    validation_fraction: f64,
    params: Option<&Bound<'_, PyDict>>,
    tags: Option<&Bound<'_, PyAny>>,
) -> PyResult<Model> {
    let config = config(py, model, params)?;
    let tracker = tracker.get();
    let data = training_data(py, tracker, data)?;
    let tags = crate::store::string_map("tags", tags)?;
    let job = job(
        py,
        tracker,
        registry,
        register,
        experiment,
        target,
        seed,
        validation_fraction,
        run_name,
        parent_run_id,
        tags,
    )?;
    let cancel = CancelToken::new();
    let token = cancel.clone();
    let outcome = block_on_interruptible(py, &cancel, async move {
        job.run(Arc::new(CandleTrainer::new(config)), &data, &token)
            .await
    })?
    .or_py(py)?;
    Ok(Model::from_trained(outcome))
}

/// A search space from `{param: values}`: a list or tuple is a choice; a string is a range in
/// the CLI's form (`"0.001..0.1:log"`, `"1..=3"`).
fn space(py: Python<'_>, space: &Bound<'_, PyDict>) -> PyResult<SearchSpace> {
    let mut out = SearchSpace::new();
    for (k, v) in space.iter() {
        let key: String = k
            .extract()
            .map_err(|_| type_error("a key of space", "a str", &k))?;
        if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            let mut values = Vec::new();
            for item in v.try_iter()? {
                values.push(scalar_text(&key, &item?)?);
            }
            out = out.with(key, Domain::Choice(values));
        } else if let Ok(range) = v.extract::<String>() {
            out = out.parse_into(&format!("{key}={range}")).or_py(py)?;
        } else {
            return Err(type_error(
                &format!("space[{key:?}]"),
                "a list of values or a range string (\"0.001..0.1:log\")",
                &v,
            ));
        }
    }
    Ok(out)
}

/// Hyper-parameter search: one parent run (a child of `parent_run_id` when given), a child run
/// per trial; returns `{"parent_run_id",
/// "best": {...}, "trials": [{"run_id", "params", "metrics", "error"}]}`.
#[pyfunction]
#[pyo3(signature = (data, target, space, model="logistic", *, tracker, metric="val_accuracy", strategy="grid", trials=10, seed=42, goal=None, parallelism=None, experiment="Default", run_name=None, parent_run_id=None, validation_fraction=0.2, params=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tune<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    target: &str,
    space: &Bound<'py, PyDict>,
    model: &str,
    tracker: &Bound<'py, Tracker>,
    metric: &str,
    strategy: &str,
    trials: usize,
    seed: u64,
    goal: Option<&str>,
    parallelism: Option<usize>,
    experiment: &str,
    run_name: Option<String>,
    parent_run_id: Option<&str>,
    validation_fraction: f64,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let base = config(py, model, params)?;
    let space = self::space(py, space)?;
    let strategy = match strategy {
        "grid" => Strategy::Grid,
        "random" => Strategy::Random { trials, seed },
        other => {
            return Err(error_to_py(
                py,
                &mlops::Error::invalid("strategy", format!("{other:?} is not grid or random")),
            ));
        }
    };
    let mut tuner = Tuner::new(base, space, strategy, metric);
    match goal {
        None => {}
        Some("minimize") => tuner = tuner.goal(Goal::Minimize),
        Some("maximize") => tuner = tuner.goal(Goal::Maximize),
        Some(other) => {
            return Err(error_to_py(
                py,
                &mlops::Error::invalid("goal", format!("{other:?} is not minimize or maximize")),
            ));
        }
    }
    if let Some(n) = parallelism {
        tuner = tuner.parallelism(n.max(1));
    }
    let tracker = tracker.get();
    let data = training_data(py, tracker, data)?;
    let job = job(
        py,
        tracker,
        None,
        None,
        experiment,
        target,
        seed,
        validation_fraction,
        run_name,
        parent_run_id,
        BTreeMap::new(),
    )?;
    let cancel = CancelToken::new();
    let token = cancel.clone();
    let outcome =
        block_on_interruptible(
            py,
            &cancel,
            async move { tuner.run(&job, &data, &token).await },
        )?
        .or_py(py)?;
    let trial = |t: &mlops::train::Trial| {
        serde_json::json!({
            "run_id": t.run_id.as_ref().map(ToString::to_string),
            "params": t.params,
            "metrics": t.metrics,
            "error": t.error,
        })
    };
    let result = serde_json::json!({
        "parent_run_id": outcome.parent_run_id.to_string(),
        "best": trial(outcome.best_trial()),
        "trials": outcome.trials.iter().map(trial).collect::<Vec<_>>(),
    });
    crate::store::json_to_py(py, &result)
}

/// Where the model a run logged is stored: `runs:/<run id>/model` names the model `train`
/// logged in that run (its files under `model/`, their stored tree in the run's
/// `mlops.model.source` tag).
pub(crate) async fn run_model_source(
    tracker: &dyn mlops::Tracker,
    uri: &ModelUri,
) -> mlops::Result<(String, mlops::RunId)> {
    let ModelUri::Run { run_id, path } = uri else {
        return Err(mlops::Error::invalid(
            "model uri",
            format!("{uri} is not a runs:/ URI"),
        ));
    };
    if path.as_ref().is_some_and(|p| p.as_str() != "model") {
        return Err(mlops::Error::not_supported(
            "model uri",
            uri.to_string(),
            format!("a run's model is at runs:/{run_id}/model"),
        ));
    }
    let run = tracker.get_run(run_id).await?;
    match run.data.tags.get(mlops::train::job::MODEL_SOURCE_TAG) {
        Some(source) => Ok((source.clone(), run_id.clone())),
        None => Err(mlops::Error::invalid(
            "model uri",
            format!(
                "run {run_id} logged no model (train() logs one; a model saved elsewhere is \
                 registered by its directory's store tree, Model.source)"
            ),
        )),
    }
}

/// A model from a directory (`Model.save`, `mlops models export`, an MLflow-style folder with
/// a `FLAVOR` file), from the registry (`models:/churn@champion`, `models:/churn/3`) or from
/// the run that trained it (`runs:/<run id>/model`).
#[pyfunction]
#[pyo3(signature = (model_uri, registry=None, tracker=None))]
pub(crate) fn load_model(
    py: Python<'_>,
    model_uri: &str,
    registry: Option<&Bound<'_, Registry>>,
    tracker: Option<&Bound<'_, Tracker>>,
) -> PyResult<Model> {
    if model_uri.starts_with("runs:/") {
        let uri: ModelUri = model_uri.parse().or_py(py)?;
        let Some(tracker) = tracker else {
            return Err(error_to_py(
                py,
                &mlops::Error::invalid(
                    "tracker",
                    format!("{model_uri} names a run's model: pass the tracker to read it from"),
                ),
            ));
        };
        let tracker = tracker.get();
        let t = tracker.shared(py)?;
        let artifacts = Artifacts::new(tracker.backing_store());
        let inner = block_on(py, async move {
            let (source, _) = run_model_source(t.as_ref(), &uri).await?;
            let digest = source
                .strip_prefix(mlops::storage::MODEL_SOURCE_PREFIX)
                .ok_or_else(|| {
                    mlops::Error::not_supported(
                        "model source",
                        source.clone(),
                        "the run's model is not stored in this store",
                    )
                })?
                .parse()?;
            load_artifact(&artifacts.get_model(&digest).await?)
        })?
        .or_py(py)?;
        return Ok(Model {
            inner,
            trained: None,
        });
    }
    if model_uri.starts_with("models:/") {
        let uri: ModelUri = model_uri.parse().or_py(py)?;
        let Some(registry) = registry else {
            return Err(error_to_py(
                py,
                &mlops::Error::invalid(
                    "registry",
                    format!(
                        "{model_uri} names a registered model: pass the registry to read it from"
                    ),
                ),
            ));
        };
        let registry = registry.get();
        let r = Arc::clone(&registry.inner);
        let artifacts = Artifacts::new(Arc::clone(&registry.store_ref().inner));
        let inner = block_on(py, async move {
            let version = r.resolve(&uri).await?;
            let artifact = mlops::model::ArtifactSource::fetch(&artifacts, &version).await?;
            load_artifact(&artifact)
        })?
        .or_py(py)?;
        return Ok(Model {
            inner,
            trained: None,
        });
    }
    let dir = PathBuf::from(model_uri);
    let inner = py
        .detach(move || {
            let artifact = mlops::serve::read_model_dir(&dir)?;
            load_artifact(&artifact)
        })
        .or_py(py)?;
    Ok(Model {
        inner,
        trained: None,
    })
}
