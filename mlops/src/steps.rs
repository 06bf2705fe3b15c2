//! The built-in pipeline steps (feature `steps`): what `mlops pipeline run pipeline.yaml`
//! assembles pipelines from, composed of the implementation crates.
//!
//! | `uses:` | inputs | parameters (`with:`) | outputs |
//! |---|---|---|---|
//! | `dataset` | — | `name`, `version` (default: the latest) | `dataset` |
//! | `train` | `data` (a dataset) | `target`; any `TrainConfig` key (`model`, `epochs`, `hidden`, …); `seed`, `validation_fraction`, `experiment`, `run_name`, `register` | `model` |
//! | `drift` | `reference`, `current` (datasets) | `fail_on_drift` (default false), `drift_share` | `report` |
//! | `promote` | `model` (registered) | `alias` (default `champion`) | `promoted` |
//! | `monitor` | `current` (a dataset: production data, with labels if known) | `model`, `alias` (default `champion`), `target`, `max_drift_share` (0.3), `max_accuracy_drop` (0.05) | `decision` (`retrain`, `reasons`, …) |
//! | `validate` | `candidate` (a `train` output) | `model`, `alias` (default `champion`), `metric` (default `val_accuracy`), `min_delta` (0) | `verdict` (`passed`, …) |
//!
//! A `dataset` step without `version` is served from the cache only while its recorded
//! version is still the latest, so a new dataset version re-runs what depends on it — and
//! nothing else. Registry writes go through the registry the steps were given (a
//! `policy::Governed` one gates them by policy).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use mlops_core::drift::{DetectOptions, DriftDetector, ProfileOptions};
use mlops_core::registry::{DatasetLineage, RegistryExt};
use mlops_core::store::RefVersion;
use mlops_core::{
    Alias, DatasetName, Digest, Error, FitOptions, ModelName, Registry, Result, Store, Tracker,
    Version,
};
use mlops_pipeline::{Output, Outputs, Step, StepContext, StepRegistry};
use mlops_storage::{Artifacts, Datasets};
use mlops_train::{CandleTrainer, TrainConfig, TrainingData, TrainingJob};
use serde::Deserialize;
use serde_json::{Value, json};

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
        .register("validate", ValidateStep(env))
}

fn object(params: &Value) -> Result<&serde_json::Map<String, Value>> {
    params
        .as_object()
        .ok_or_else(|| Error::invalid("step param", "parameters must be a mapping"))
}

fn string(params: &Value, key: &str) -> Result<Option<String>> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::invalid(
            "step param",
            format!("{key} must be text, not {other}"),
        )),
    }
}

/// The `alias` parameter, `champion` by default.
fn alias_param(ctx: &StepContext) -> Result<String> {
    Ok(ctx
        .param::<String>("alias")?
        .unwrap_or_else(|| "champion".into()))
}

/// The version `alias` of `model` points at; `None` when the model or alias does not exist.
async fn alias_target(
    registry: &dyn Registry,
    model: &str,
    alias: &str,
) -> Result<Option<mlops_core::ModelVersion>> {
    match registry
        .resolve(&format!("models:/{model}@{alias}").parse()?)
        .await
    {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A dataset step's output.
#[derive(Debug, Clone, Deserialize)]
struct DatasetRef {
    name: DatasetName,
    version: Version,
    digest: Digest,
}

/// `dataset`: names a dataset version (the latest unless `version` is given).
#[derive(Debug)]
pub struct DatasetStep(Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for DatasetStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let name: DatasetName = ctx.require::<String>("name")?.parse()?;
        let at = match ctx.param::<u64>("version")? {
            Some(v) => RefVersion::Exact(Version::new(v)?),
            None => RefVersion::Latest,
        };
        let v = Datasets::new(self.0.store.clone())
            .version(&name, at)
            .await?;
        let value = json!({
            "name": v.name.to_string(),
            "version": v.version.get(),
            "digest": v.digest.to_hex(),
            "rows": v.manifest.rows,
        });
        Ok(Outputs::from([(
            "dataset".to_owned(),
            Output::with_digest(v.digest, value),
        )]))
    }

    async fn outputs_exist(&self, ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        let Some(recorded) = outputs.get("dataset") else {
            return Ok(false);
        };
        let recorded: DatasetRef = recorded.get()?;
        let at = match ctx.param::<u64>("version")? {
            Some(v) => RefVersion::Exact(Version::new(v)?),
            None => RefVersion::Latest,
        };
        match Datasets::new(self.0.store.clone())
            .version(&recorded.name, at)
            .await
        {
            Ok(now) => Ok(now.version == recorded.version && now.digest == recorded.digest),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn check(&self, params: &Value) -> Result<()> {
        let name = string(params, "name")?
            .ok_or_else(|| Error::invalid("step param", "dataset needs name"))?;
        name.parse::<DatasetName>()?;
        if let Some(v) = params.get("version")
            && !v.is_u64()
        {
            return Err(Error::invalid(
                "step param",
                format!("version must be a number, not {v}"),
            ));
        }
        Ok(())
    }
}

const TRAIN_KEYS: [&str; 6] = [
    "target",
    "seed",
    "validation_fraction",
    "experiment",
    "run_name",
    "register",
];

fn train_config(params: &Value) -> Result<TrainConfig> {
    let mut config = TrainConfig::default();
    let mut model_set = false;
    for (k, v) in object(params)? {
        if TRAIN_KEYS.contains(&k.as_str()) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        model_set |= k == "model";
        config.set(k, &text)?;
    }
    if !model_set {
        config = TrainConfig {
            model: mlops_train::ModelKind::Logistic,
            ..config
        };
    }
    config.validate()?;
    Ok(config)
}

/// `train`: trains on the `data` input as a tracked run; registers the model when `register`
/// names one.
#[derive(Debug)]
pub struct TrainStep(Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for TrainStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let env = &self.0;
        let data: DatasetRef = ctx.input("data")?.get()?;
        let config = train_config(&ctx.params)?;
        let target: String = ctx.require("target")?;
        let mut options = FitOptions::new(target);
        if let Some(seed) = ctx.param::<u64>("seed")? {
            options = options.with_seed(seed);
        }
        if let Some(f) = ctx.param::<f64>("validation_fraction")? {
            options = options.with_validation_fraction(f);
        }
        let (version, batches) = Datasets::new(env.store.clone())
            .read_all(&data.name, RefVersion::Exact(data.version))
            .await?;
        let training = TrainingData::new(batches).with_source(DatasetLineage {
            name: version.name,
            version: version.version,
            digest: version.digest,
        });
        let experiment = ctx
            .param::<String>("experiment")?
            .unwrap_or_else(|| env.experiment.clone());
        let mut job = TrainingJob::new(experiment, options).run_name(
            ctx.param::<String>("run_name")?
                .unwrap_or_else(|| format!("{}.{}", ctx.pipeline, ctx.step)),
        );
        if let Some(step_run) = &ctx.run_id {
            job = job.parent(step_run.clone());
        }
        if let Some(name) = ctx.param::<String>("register")? {
            job = job.register(name.parse()?);
        }
        let artifacts = Artifacts::new(env.store.clone());
        let outcome = job
            .run(
                Arc::new(CandleTrainer::new(config)),
                &training,
                env.tracker.as_ref(),
                &artifacts,
                Some(env.registry.as_ref()),
                None,
                &ctx.cancel,
            )
            .await?;
        if let Some(cpu) = outcome.fit_cpu_seconds {
            ctx.add_cpu_seconds(cpu);
        }
        // Trained on a GPU: the step's wall time is priced as GPU time too.
        if outcome.artifact.flavor == mlops_train::model::FLAVOR
            && mlops_train::ModelCard::read(&outcome.artifact)?
                .training
                .device
                .starts_with("cuda")
        {
            ctx.use_gpus(1);
        }
        // The drift reference of a registered model: a profile of its training data, stored
        // beside the version (what `monitor` compares production data against).
        if let Some(v) = &outcome.version {
            // The model's inputs only (its column signature): the target is a label, not
            // something served.
            let mut options = ProfileOptions::default();
            if let mlops_core::signature::Schema::Columns(cols) = &outcome.model.signature().inputs
            {
                options.columns = cols.iter().filter_map(|c| c.name.clone()).collect();
            }
            let batches = training.batches;
            let profile = ctx
                .blocking(move |_| mlops_drift::StatDetector::new().profile(&batches, &options))
                .await?;
            mlops_drift::profiles::attach(
                env.store.as_ref(),
                env.registry.as_ref(),
                &v.name,
                v.version,
                &profile,
            )
            .await?;
        }
        let digest = outcome
            .source
            .strip_prefix(mlops_storage::MODEL_SOURCE_PREFIX)
            .and_then(|d| d.parse::<Digest>().ok())
            .unwrap_or_else(|| Digest::of(outcome.source.as_bytes()));
        let value = json!({
            "source": outcome.source,
            "run_id": outcome.run_id.as_str(),
            "name": outcome.version.as_ref().map(|v| v.name.to_string()),
            "version": outcome.version.as_ref().map(|v| v.version.get()),
            "metrics": outcome.metrics,
        });
        Ok(Outputs::from([(
            "model".to_owned(),
            Output::with_digest(digest, value),
        )]))
    }

    async fn outputs_exist(&self, _ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        let Some(model) = outputs.get("model") else {
            return Ok(false);
        };
        let (Some(name), Some(version)) = (
            model.value["name"].as_str(),
            model.value["version"].as_u64(),
        ) else {
            return Ok(true); // not registered: the artifact is content-addressed in the store
        };
        match self
            .0
            .registry
            .get_model_version(&name.parse()?, Version::new(version)?)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn check(&self, params: &Value) -> Result<()> {
        string(params, "target")?
            .ok_or_else(|| Error::invalid("step param", "train needs target"))?;
        if let Some(r) = string(params, "register")? {
            r.parse::<ModelName>()?;
        }
        train_config(params).map(|_| ())
    }
}

/// `drift`: tests `current` against `reference` with Evidently's rules.
#[derive(Debug)]
pub struct DriftStep(Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for DriftStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let datasets = Datasets::new(self.0.store.clone());
        let reference: DatasetRef = ctx.input("reference")?.get()?;
        let current: DatasetRef = ctx.input("current")?.get()?;
        let (_, reference_rows) = datasets
            .read_all(&reference.name, RefVersion::Exact(reference.version))
            .await?;
        let (_, current_rows) = datasets
            .read_all(&current.name, RefVersion::Exact(current.version))
            .await?;
        let mut options = DetectOptions::default();
        if let Some(share) = ctx.param::<f64>("drift_share")? {
            options.drift_share = share;
        }
        let report = ctx
            .blocking(move |_| {
                let detector = mlops_drift::StatDetector::new();
                let profile = detector.profile(&reference_rows, &ProfileOptions::default())?;
                detector.detect(&profile, &current_rows, &options)
            })
            .await?;
        let drifted: Vec<&str> = report
            .columns
            .iter()
            .filter(|c| c.drifted)
            .map(|c| c.column.as_str())
            .collect();
        if ctx.param::<bool>("fail_on_drift")?.unwrap_or(false) && report.dataset_drift {
            return Err(Error::invalid(
                "data",
                format!(
                    "dataset drift: {} of {} columns drifted ({})",
                    report.drifted_columns,
                    report.columns.len(),
                    drifted.join(", ")
                ),
            ));
        }
        let value = json!({
            "dataset_drift": report.dataset_drift,
            "share_drifted": report.share_drifted,
            "drifted_columns": drifted,
        });
        Ok(Outputs::from([("report".to_owned(), Output::value(value))]))
    }

    fn check(&self, params: &Value) -> Result<()> {
        if let Some(v) = params.get("drift_share")
            && !v.as_f64().is_some_and(|s| (0.0..=1.0).contains(&s))
        {
            return Err(Error::invalid(
                "step param",
                format!("drift_share must be in [0, 1], not {v}"),
            ));
        }
        Ok(())
    }
}

/// `promote`: points `alias` at the registered `model`.
#[derive(Debug)]
pub struct PromoteStep(Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for PromoteStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let model = ctx.input("model")?;
        let (Some(name), Some(version)) = (
            model.value["name"].as_str(),
            model.value["version"].as_u64(),
        ) else {
            return Err(Error::invalid(
                "step input",
                format!(
                    "{}: the model was not registered (give the train step `register`)",
                    ctx.step
                ),
            ));
        };
        let name: ModelName = name.parse()?;
        let version = Version::new(version)?;
        let alias: Alias = alias_param(&ctx)?.parse()?;
        self.0.registry.set_alias(&name, &alias, version).await?;
        let value =
            json!({"name": name.to_string(), "version": version.get(), "alias": alias.to_string()});
        Ok(Outputs::from([(
            "promoted".to_owned(),
            Output::value(value),
        )]))
    }

    async fn outputs_exist(&self, ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        let Some(p) = outputs.get("promoted") else {
            return Ok(false);
        };
        let _ = ctx;
        let (Some(name), Some(alias)) = (p.value["name"].as_str(), p.value["alias"].as_str())
        else {
            return Ok(false);
        };
        let now = alias_target(self.0.registry.as_ref(), name, alias).await?;
        Ok(now.map(|v| v.version.get()) == p.value["version"].as_u64())
    }

    fn check(&self, params: &Value) -> Result<()> {
        if let Some(a) = string(params, "alias")? {
            a.parse::<Alias>()?;
        }
        Ok(())
    }
}

/// `monitor`: tests production data against the stored reference profile of the model
/// version an alias points at, measures accuracy when the data carries the target, and decides
/// by the retraining rule (`drift_score > 0.3 or accuracy_drop > 0.05` by default).
#[derive(Debug)]
pub struct MonitorStep(Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for MonitorStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let env = &self.0;
        let name: ModelName = ctx.require::<String>("model")?.parse()?;
        let alias = alias_param(&ctx)?;
        let version = alias_target(env.registry.as_ref(), name.as_str(), &alias)
            .await?
            .ok_or_else(|| Error::not_found("model version", format!("models:/{name}@{alias}")))?;
        let profile = mlops_drift::profiles::for_version(
            env.store.as_ref(),
            env.registry.as_ref(),
            &name,
            version.version,
        )
        .await?;
        let current: DatasetRef = ctx.input("current")?.get()?;
        let (_, rows) = Datasets::new(env.store.clone())
            .read_all(&current.name, RefVersion::Exact(current.version))
            .await?;
        let target = ctx.param::<String>("target")?;
        // Accuracy on labelled feedback: the model's predictions against the target column.
        let accuracy = match &target {
            Some(t) if rows.first().is_some_and(|b| b.column_by_name(t).is_some()) => {
                let artifact = mlops_core::model::ArtifactSource::fetch(
                    &Artifacts::new(env.store.clone()),
                    &version,
                )
                .await?;
                let model = mlops_train::CandleLoader::new().load_model(&artifact)?;
                let (rows, t) = (rows.clone(), t.clone());
                Some(
                    ctx.blocking(move |_| accuracy_of(&model, &rows, &t))
                        .await?,
                )
            }
            _ => None,
        };
        let baseline = version
            .tags
            .get("metrics.val_accuracy")
            .and_then(|v| v.parse::<f64>().ok());
        let rule = mlops_drift::RetrainRule {
            max_drift_share: ctx.param("max_drift_share")?.unwrap_or(0.3),
            max_accuracy_drop: ctx.param("max_accuracy_drop")?.unwrap_or(0.05),
            baseline_accuracy: baseline,
            consecutive_windows: 1,
        };
        // The profile holds the model's inputs; the label column of the feedback is not tested.
        let report = ctx
            .blocking(move |_| {
                mlops_drift::StatDetector::new().detect(&profile, &rows, &DetectOptions::default())
            })
            .await?;
        let reasons = rule.reasons(&report, accuracy);
        let drifted: Vec<&str> = report
            .columns
            .iter()
            .filter(|c| c.drifted)
            .map(|c| c.column.as_str())
            .collect();
        let value = json!({
            "retrain": !reasons.is_empty(),
            "reasons": reasons,
            "model": name.to_string(),
            "version": version.version.get(),
            "drift_score": report.share_drifted,
            "dataset_drift": report.dataset_drift,
            "drifted_columns": drifted,
            "accuracy": accuracy,
            "accuracy_drop": rule.accuracy_drop(accuracy),
        });
        Ok(Outputs::from([(
            "decision".to_owned(),
            Output::value(value),
        )]))
    }

    async fn outputs_exist(&self, ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        // Valid while the alias still points at the version it judged.
        let Some(d) = outputs.get("decision") else {
            return Ok(false);
        };
        let (Some(name), Some(version)) = (d.value["model"].as_str(), d.value["version"].as_u64())
        else {
            return Ok(false);
        };
        let now = alias_target(self.0.registry.as_ref(), name, &alias_param(ctx)?).await?;
        Ok(now.map(|v| v.version.get()) == Some(version))
    }

    fn check(&self, params: &Value) -> Result<()> {
        string(params, "model")?
            .ok_or_else(|| Error::invalid("step param", "monitor needs model"))?
            .parse::<ModelName>()?;
        for key in ["max_drift_share", "max_accuracy_drop"] {
            if let Some(v) = params.get(key)
                && !v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x))
            {
                return Err(Error::invalid(
                    "step param",
                    format!("{key} must be in [0, 1], not {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// Share of rows whose predicted label equals the target column.
fn accuracy_of(
    model: &mlops_train::CandleModel,
    rows: &[RecordBatch],
    target: &str,
) -> Result<f64> {
    use mlops_core::Model;
    let batch = arrow::compute::concat_batches(
        &rows
            .first()
            .ok_or_else(|| Error::invalid("data", "no rows"))?
            .schema(),
        rows,
    )
    .map_err(|e| Error::backend("arrow", e))?;
    let mut inputs = Vec::new();
    for spec in model.card().preprocessing.input_specs() {
        let name = spec.name.clone().unwrap_or_default();
        let column = batch
            .column_by_name(&name)
            .ok_or_else(|| Error::invalid("data", format!("the model needs column {name:?}")))?;
        inputs.push(mlops_core::arrow::tensor_from_array(
            &name,
            column.as_ref(),
        )?);
    }
    let out = model.predict(&inputs)?;
    let labels = arrow::compute::cast(
        batch
            .column_by_name(target)
            .ok_or_else(|| Error::invalid("data", format!("no column {target:?}")))?,
        &arrow::datatypes::DataType::Utf8,
    )
    .map_err(|e| Error::backend("arrow", e))?;
    let truth: Vec<String> = arrow::array::AsArray::as_string::<i32>(&labels)
        .iter()
        .map(|v| v.unwrap_or_default().to_owned())
        .collect();
    let predicted: Vec<String> = match out[0].datatype() {
        mlops_core::DataType::Bool => out[0]
            .to_bool()?
            .into_iter()
            .map(|b| b.to_string())
            .collect(),
        mlops_core::DataType::Int64 => out[0]
            .to_i64()?
            .into_iter()
            .map(|i| i.to_string())
            .collect(),
        _ => out[0]
            .to_byte_strings()?
            .into_iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
    };
    let hits = truth.iter().zip(&predicted).filter(|(a, b)| a == b).count();
    Ok(hits as f64 / truth.len().max(1) as f64)
}

/// `validate`: passes a candidate whose metric is at least the champion's (plus `min_delta`);
/// without a champion, any candidate passes.
#[derive(Debug)]
pub struct ValidateStep(Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for ValidateStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let candidate = ctx.input("candidate")?;
        let metric = ctx
            .param::<String>("metric")?
            .unwrap_or_else(|| "val_accuracy".into());
        let min_delta = ctx.param::<f64>("min_delta")?.unwrap_or(0.0);
        let goal = mlops_train::Goal::for_metric(&metric);
        let mine = candidate.value["metrics"][&metric]
            .as_f64()
            .ok_or_else(|| {
                Error::invalid(
                    "step input",
                    format!("{}: the candidate has no metric {metric}", ctx.step),
                )
            })?;
        let name = ctx
            .param::<String>("model")?
            .or_else(|| candidate.value["name"].as_str().map(str::to_owned))
            .ok_or_else(|| Error::invalid("step param", format!("{}: name the model", ctx.step)))?;
        let alias = alias_param(&ctx)?;
        let champion = alias_target(self.0.registry.as_ref(), &name, &alias)
            .await?
            .and_then(|v| {
                v.tags
                    .get(format!("metrics.{metric}").as_str())
                    .and_then(|s| s.parse::<f64>().ok())
            });
        let (passed, reason) = match champion {
            None => (true, format!("no {alias} to beat")),
            Some(best) => {
                let better = match goal {
                    mlops_train::Goal::Maximize => mine >= best + min_delta,
                    mlops_train::Goal::Minimize => mine <= best - min_delta,
                };
                (better, format!("{metric} {mine:.4} vs {alias} {best:.4}"))
            }
        };
        let value = json!({"passed": passed, "reason": reason, "metric": metric, "candidate": mine, "champion": champion});
        Ok(Outputs::from([(
            "verdict".to_owned(),
            Output::value(value),
        )]))
    }

    fn check(&self, params: &Value) -> Result<()> {
        if let Some(m) = string(params, "model")? {
            m.parse::<ModelName>()?;
        }
        Ok(())
    }
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
            "needs {data}; with {target, model, epochs, …, register?}; outputs model",
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
            "validate",
            "needs {candidate}; with {model?, alias?, metric?, min_delta?}; outputs verdict",
        ),
    ])
}
