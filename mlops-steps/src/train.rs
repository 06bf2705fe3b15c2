//! `train`: a tracked training run on a dataset version, registered when asked, with the drift
//! reference of its training features stored beside the version.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlops_core::drift::{DriftDetector, ProfileOptions};
use mlops_core::store::RefVersion;
use mlops_core::{Digest, FitOptions, ModelName, Registry, Result};
use mlops_pipeline::{Output, Outputs, Step, StepContext, parse_params};
use mlops_storage::{Artifacts, Datasets};
use mlops_train::{CandleTrainer, TrainConfig, TrainingData, TrainingJob};
use serde::Deserialize;
use serde_json::Value;

use crate::assess::AssessParams;
use crate::{DatasetRef, ModelRef, StepEnv};

/// `train`'s parameters: its own keys, and every other key a [`TrainConfig`] key (`model`,
/// `epochs`, `hidden`, `learning_rate`, …) — an unknown key is an error naming it either way.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TrainParams {
    /// The column to predict.
    pub target: String,
    /// The seed (splits, initialisation, shuffling).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The validation share.
    #[serde(default)]
    pub validation_fraction: Option<f64>,
    /// The experiment of the training run (default: the pipeline's).
    #[serde(default)]
    pub experiment: Option<String>,
    /// The training run's name (default: `<pipeline>.<step>`).
    #[serde(default)]
    pub run_name: Option<String>,
    /// Register the model under this name.
    #[serde(default)]
    pub register: Option<ModelName>,
    /// The assessment on the validation rows: `false` for none, or the keys of
    /// [`AssessParams`] (`sensitive`, `privileged`, `bootstrap`, …). By default permutation
    /// importance always, and fairness when the dataset declares sensitive columns (its
    /// `sensitive` metadata).
    #[serde(default)]
    pub assess: Option<Value>,
    /// The hyper-parameters, as `TrainConfig`'s `key=value` text takes them.
    #[serde(flatten)]
    pub config: BTreeMap<String, Value>,
}

impl TrainParams {
    fn parse(params: &Value) -> Result<Self> {
        let p: Self = parse_params("train", params)?;
        p.train_config()?;
        p.assess_params()?;
        Ok(p)
    }

    /// The assessment asked for: `None` when `assess: false`.
    pub fn assess_params(&self) -> Result<Option<AssessParams>> {
        AssessParams::from_step_param("train", self.assess.as_ref(), Some(AssessParams::default()))
    }

    /// The hyper-parameters: `TrainConfig`'s defaults with a logistic model unless `model` is
    /// given, then every other key applied and the whole validated.
    pub fn train_config(&self) -> Result<TrainConfig> {
        let mut config = TrainConfig::default();
        if !self.config.contains_key("model") {
            config.model = mlops_train::ModelKind::Logistic;
        }
        for (k, v) in &self.config {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            config.set(k, &text)?;
        }
        config.validate()?;
        Ok(config)
    }
}

/// `train`: trains on the `data` input as a tracked run nested under the step's run; registers
/// the model when `register` names one and stores a drift profile of its training features
/// beside the version (what `monitor` compares production data against).
#[derive(Debug)]
pub struct TrainStep(pub(crate) Arc<StepEnv>);

#[async_trait::async_trait]
impl Step for TrainStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let env = &self.0;
        let params = TrainParams::parse(&ctx.params)?;
        let mut config = params.train_config()?;
        let data: DatasetRef = ctx.input("data")?.get()?;
        let mut options = FitOptions::new(params.target.clone());
        if let Some(seed) = params.seed {
            options = options.with_seed(seed);
        }
        if let Some(f) = params.validation_fraction {
            options = options.with_validation_fraction(f);
        }
        let (version, batches) = Datasets::new(env.store.clone())
            .read_all(&data.name, RefVersion::Exact(data.version))
            .await?;
        // A training set from the feature store trains on its feature columns.
        if config.features.is_none() {
            config.features = crate::features::feature_columns(&version.manifest.metadata)
                .map(|c| c.into_iter().filter(|c| *c != params.target).collect());
        }
        let assessor = params
            .assess_params()?
            .map(|a| a.assessor(&version.manifest.metadata))
            .transpose()?;
        let training =
            TrainingData::new(batches).with_source(mlops_core::registry::DatasetLineage {
                name: version.name,
                version: version.version,
                digest: version.digest,
            });
        let experiment = params.experiment.unwrap_or_else(|| env.experiment.clone());
        let mut job = TrainingJob::new(
            experiment,
            options,
            env.tracker.clone(),
            Arc::new(Artifacts::new(env.store.clone())),
        )
        .run_name(
            params
                .run_name
                .unwrap_or_else(|| format!("{}.{}", ctx.pipeline, ctx.step)),
        );
        if let Some(step_run) = &ctx.run_id {
            job = job.parent(step_run.clone());
        }
        if let Some(name) = params.register {
            job = job.register(env.registry.clone(), name);
        }
        if let Some(assessor) = assessor {
            job = job.assess(Arc::new(assessor));
        }
        let outcome = job
            .run(Arc::new(CandleTrainer::new(config)), &training, &ctx.cancel)
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
        let model = ModelRef {
            source: outcome.source,
            run_id: Some(outcome.run_id),
            name: outcome.version.as_ref().map(|v| v.name.clone()),
            version: outcome.version.as_ref().map(|v| v.version),
            metrics: outcome.metrics,
        };
        Ok(Outputs::from([(
            "model".to_owned(),
            Output::typed(digest, &model)?,
        )]))
    }

    async fn outputs_exist(&self, _ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        let Some(model) = outputs.get("model") else {
            return Ok(false);
        };
        // A record this version cannot read is a cache miss, not a failed pipeline.
        let Ok(model) = model.get::<ModelRef>() else {
            return Ok(false);
        };
        let Some((name, version)) = model.registered() else {
            return Ok(true); // not registered: the artifact is content-addressed in the store
        };
        registered(self.0.registry.as_ref(), name, version).await
    }

    fn check(&self, params: &Value) -> Result<()> {
        TrainParams::parse(params).map(|_| ())
    }
}

/// Whether `name` v`version` is (still) registered.
async fn registered(
    registry: &dyn Registry,
    name: &ModelName,
    version: mlops_core::Version,
) -> Result<bool> {
    match registry.get_model_version(name, version).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}
