//! Training as a tracked job: any [`Trainer`] against any [`Tracker`], [`ModelSink`] and
//! [`Registry`] — all core traits, so this crate needs no storage implementation.
//!
//! [`TrainingJob::run`] opens a run, logs the trainer's params, the training dataset version as a
//! run input and every epoch's metrics as they happen, stores the model artifact through the
//! sink (e.g. `mlops_storage::Artifacts`, content addressed) and logs its files under `model/`,
//! then — when asked to — registers a model version with the sink's source, the signature, the
//! final metrics as `metrics.<name>` tags (what policy thresholds read) and the lineage (run,
//! dataset version, git commit). With an [`Assessor`] it first judges the model on the
//! validation rows: the findings go into the model card, onto the run and the version as tags
//! (`explain.*`, `fairness.*`) and under the run's `assessment/` artifacts.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use mlops_core::registry::{CreateModelOptions, CreateVersionOptions, DatasetLineage, Lineage};
use mlops_core::tracker::CreateRunOptions;
use mlops_core::tracking::{Dataset, DatasetInput, tags};
use mlops_core::train::{Assessment, Assessor, EpochReport, FitObserver, FitOptions, Trainer};
use mlops_core::{
    ArtifactPath, CancelToken, Error, LogBatch, Metric, Model, ModelArtifact, ModelName, ModelSink,
    ModelVersion, Param, Registry, Result, RunId, RunStatus, Tag, Tracker, TrackerExt,
};

use crate::model::{FLAVOR, ModelCard};

/// The tag a run gets naming its model artifact's source (`tree:<digest>`).
pub const MODEL_SOURCE_TAG: &str = "mlops.model.source";

/// Training data, and where it came from when it is a stored dataset version.
#[derive(Debug, Clone)]
pub struct TrainingData {
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// The dataset version they were read from.
    pub source: Option<DatasetLineage>,
    /// The dataset's schema as JSON (for the run input).
    pub schema: Option<String>,
}

impl TrainingData {
    /// In-memory data without lineage.
    pub fn new(batches: Vec<RecordBatch>) -> Self {
        Self {
            batches,
            source: None,
            schema: None,
        }
    }

    /// Records that the rows are this dataset version (logged as the run's input and kept as
    /// the model's lineage); e.g. from `mlops_storage::Datasets::read_all`.
    pub fn with_source(mut self, source: DatasetLineage) -> Self {
        self.source = Some(source);
        self
    }

    /// The dataset's schema as JSON, for the run input.
    pub fn with_schema(mut self, schema_json: impl Into<String>) -> Self {
        self.schema = Some(schema_json.into());
        self
    }

    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// What a [`TrainingJob`] produced.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The tracked run.
    pub run_id: RunId,
    /// Final metrics.
    pub metrics: BTreeMap<String, f64>,
    /// One report per epoch.
    pub history: Vec<EpochReport>,
    /// The model.
    pub model: Arc<dyn Model>,
    /// Its artifact, as stored (with lineage in the card of `candle` models).
    pub artifact: ModelArtifact,
    /// Where the artifact is: the sink's source (`tree:<digest>` for `Artifacts`).
    pub source: String,
    /// The registered version, when the job registers.
    pub version: Option<ModelVersion>,
    /// CPU seconds of the thread that ran the fit (candle's worker threads for large matrix
    /// products are not included); `None` where it cannot be measured.
    pub fit_cpu_seconds: Option<f64>,
}

/// A training run to track, store and (when asked) register, with the collaborators it needs:
/// a [`Tracker`] and a [`ModelSink`] always, a [`Registry`] only when it registers — so a job
/// that registers without a registry cannot be built.
///
/// ```no_run
/// # async fn example(
/// #     tracker: std::sync::Arc<dyn mlops_core::Tracker>,
/// #     sink: std::sync::Arc<dyn mlops_core::ModelSink>,
/// #     registry: std::sync::Arc<dyn mlops_core::Registry>,
/// #     data: mlops_train::TrainingData,
/// # ) -> mlops_core::Result<()> {
/// use std::sync::Arc;
/// use mlops_core::{CancelToken, FitOptions};
/// use mlops_train::{CandleTrainer, TrainConfig, TrainingJob};
///
/// let outcome = TrainingJob::new("churn", FitOptions::new("churned"), tracker, sink)
///     .run_name("logistic")
///     .register(registry, "churn".parse()?)
///     .run(Arc::new(CandleTrainer::new(TrainConfig::default())), &data, &CancelToken::new())
///     .await?;
/// println!("{} v{:?}", outcome.run_id, outcome.version.map(|v| v.version));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TrainingJob {
    experiment: String,
    run_name: Option<String>,
    parent: Option<RunId>,
    options: FitOptions,
    tags: Vec<(String, String)>,
    tracker: Arc<dyn Tracker>,
    sink: Arc<dyn ModelSink>,
    registration: Option<Registration>,
    observer: Option<Arc<dyn FitObserver>>,
    assessor: Option<Arc<dyn Assessor>>,
}

impl std::fmt::Debug for TrainingJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingJob")
            .field("experiment", &self.experiment)
            .field("run_name", &self.run_name)
            .field("parent", &self.parent)
            .field("options", &self.options)
            .field("tags", &self.tags)
            .field("tracker", &self.tracker)
            .field("sink", &self.sink)
            .field("registration", &self.registration)
            .field("observer", &self.observer.as_ref().map(|_| "FitObserver"))
            .field("assessor", &self.assessor)
            .finish()
    }
}

/// Where and under which name a job registers its model.
#[derive(Debug, Clone)]
struct Registration {
    registry: Arc<dyn Registry>,
    name: ModelName,
}

/// Forwards epoch reports to the async side (the tracker) and to the caller's observer.
struct Forward {
    tx: tokio::sync::mpsc::UnboundedSender<EpochReport>,
    user: Option<Arc<dyn FitObserver>>,
}

impl FitObserver for Forward {
    fn on_epoch(&self, report: &EpochReport) {
        // The receiver lives until training returns; a send error only means it is gone.
        let _ = self.tx.send(report.clone());
        if let Some(user) = &self.user {
            user.on_epoch(report);
        }
    }
}

fn metric(key: &str, value: f64, step: i64) -> Result<Metric> {
    Ok(Metric::new(key.parse()?, value, step))
}

/// The metrics of one epoch report, at step `epoch`.
fn epoch_metrics(report: &EpochReport) -> Result<LogBatch> {
    let step = i64::try_from(report.epoch).unwrap_or(i64::MAX);
    let mut batch = LogBatch::new().metric(metric("train_loss", report.train_loss, step)?);
    if let Some(v) = report.val_loss {
        batch = batch.metric(metric("val_loss", v, step)?);
    }
    for (k, v) in &report.metrics {
        batch = batch.metric(metric(k, *v, step)?);
    }
    Ok(batch)
}

impl TrainingJob {
    /// A job in `experiment` (created when missing), predicting `options.target`, tracked in
    /// `tracker`, its model stored through `sink` (e.g. `mlops_storage::Artifacts`).
    pub fn new(
        experiment: impl Into<String>,
        options: FitOptions,
        tracker: Arc<dyn Tracker>,
        sink: Arc<dyn ModelSink>,
    ) -> Self {
        Self {
            experiment: experiment.into(),
            run_name: None,
            parent: None,
            options,
            tags: Vec::new(),
            tracker,
            sink,
            registration: None,
            observer: None,
            assessor: None,
        }
    }

    /// Names the run.
    pub fn run_name(mut self, name: impl Into<String>) -> Self {
        self.run_name = Some(name.into());
        self
    }

    /// Makes the run a child of `parent` (`mlflow.parentRunId`).
    pub fn parent(mut self, parent: RunId) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Registers the model under `name` in `registry` after training.
    pub fn register(mut self, registry: Arc<dyn Registry>, name: ModelName) -> Self {
        self.registration = Some(Registration { registry, name });
        self
    }

    /// The same job without registration (the trials of a search register nothing).
    pub fn without_registration(mut self) -> Self {
        self.registration = None;
        self
    }

    /// The same job without an epoch observer.
    pub fn without_observer(mut self) -> Self {
        self.observer = None;
        self
    }

    /// Also tells `observer` about every epoch (a progress bar).
    pub fn observer(mut self, observer: Arc<dyn FitObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Judges every trained model with `assessor` on its validation rows (on the training
    /// rows when nothing was held out) before it is stored; an assessor's error fails the job.
    pub fn assess(mut self, assessor: Arc<dyn Assessor>) -> Self {
        self.assessor = Some(assessor);
        self
    }

    /// The experiment.
    pub fn experiment(&self) -> &str {
        &self.experiment
    }

    /// The tracker.
    pub fn tracker(&self) -> &Arc<dyn Tracker> {
        &self.tracker
    }

    /// The run options a run of this job starts with (experiment aside): its name, parent and
    /// tags.
    pub(crate) fn run_options(&self) -> Result<CreateRunOptions> {
        let mut create = CreateRunOptions::default();
        if let Some(name) = &self.run_name {
            create = create.with_name(name.clone());
        }
        if let Some(parent) = &self.parent {
            create = create.with_parent(parent.clone());
        }
        for (k, v) in &self.tags {
            create = create.with_tag(Tag::new(k.parse()?, v.clone())?);
        }
        Ok(create)
    }

    /// Adds a run tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// The fit options.
    pub fn options(&self) -> &FitOptions {
        &self.options
    }

    /// Runs it: trains `trainer` on `data` on a blocking thread, logging as it goes; stops at
    /// the next epoch boundary when `cancel` fires. A failed or cancelled fit ends the run
    /// `FAILED` or `KILLED` and returns the error; nothing is registered then.
    pub async fn run(
        &self,
        trainer: Arc<dyn Trainer>,
        data: &TrainingData,
        cancel: &CancelToken,
    ) -> Result<JobOutcome> {
        self.run_tracked(trainer, data, cancel).await.1
    }

    /// [`run`](Self::run), also answering the run's id when the run was created (so a failed
    /// trial can be reported by its run).
    pub(crate) async fn run_tracked(
        &self,
        trainer: Arc<dyn Trainer>,
        data: &TrainingData,
        cancel: &CancelToken,
    ) -> (Option<RunId>, Result<JobOutcome>) {
        let tracker = self.tracker.as_ref();
        let run_id = match self.create_run(tracker).await {
            Ok(id) => id,
            Err(e) => return (None, Err(e)),
        };
        let result = self.train_in_run(&run_id, trainer, data, cancel).await;
        if let Err(e) = &result {
            let status = if cancel.is_cancelled() {
                RunStatus::Killed
            } else {
                RunStatus::Failed
            };
            // Best effort: the training error is what the caller needs to see.
            let _ = tracker
                .set_tag(&run_id, "mlops.error", &e.to_string())
                .await;
            let _ = tracker.end_run(&run_id, status).await;
        }
        (Some(run_id), result)
    }

    async fn create_run(&self, tracker: &dyn Tracker) -> Result<RunId> {
        let experiment = tracker
            .get_or_create_experiment(&self.experiment.parse()?)
            .await?;
        let create = self.run_options()?.in_experiment(experiment);
        Ok(tracker.create_run(create).await?.info.run_id)
    }

    async fn train_in_run(
        &self,
        run_id: &RunId,
        trainer: Arc<dyn Trainer>,
        data: &TrainingData,
        cancel: &CancelToken,
    ) -> Result<JobOutcome> {
        let tracker = self.tracker.as_ref();
        // Params: the trainer's hyper-parameters and the fit options.
        let mut params = trainer.params();
        params.insert("target".into(), self.options.target.clone());
        params.insert("seed".into(), self.options.seed.to_string());
        params.insert(
            "validation_fraction".into(),
            self.options.validation_fraction.to_string(),
        );
        params.insert("flavor".into(), trainer.flavor().to_owned());
        let mut batch = LogBatch::new();
        for (k, v) in &params {
            batch = batch.param(Param::new(k.parse()?, v.clone())?);
        }
        tracker.log_batch(run_id, batch).await?;
        if let Some(source) = &data.source {
            tracker
                .log_inputs(
                    run_id,
                    vec![DatasetInput {
                        dataset: Dataset {
                            name: source.name.to_string(),
                            digest: source.digest.to_hex(),
                            source_type: "mlops-store".into(),
                            source: format!("datasets/{}@{}", source.name, source.version),
                            schema: data.schema.clone(),
                            profile: Some(serde_json::json!({ "rows": data.rows() }).to_string()),
                        },
                        tags: BTreeMap::from([(
                            tags::DATASET_CONTEXT.to_owned(),
                            "training".to_owned(),
                        )]),
                    }],
                )
                .await?;
        }

        // The run, its params and its input are durable before training starts: a process
        // killed during the fit leaves a RUNNING run that says what it was doing.
        tracker.flush().await?;

        // Train on a blocking thread; log each epoch as its report arrives.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let forward = Forward {
            tx,
            user: self.observer.clone(),
        };
        let batches = data.batches.clone();
        let options = self.options.clone();
        let token = cancel.clone();
        let fit = tokio::task::spawn_blocking(move || {
            let start = mlops_core::time::thread_cpu_seconds();
            let outcome = trainer.fit(&batches, &options, &forward, &token);
            let cpu = start
                .zip(mlops_core::time::thread_cpu_seconds())
                .map(|(a, b)| b - a);
            outcome.map(|o| (o, cpu))
        });
        while let Some(report) = rx.recv().await {
            tracker.log_batch(run_id, epoch_metrics(&report)?).await?;
        }
        let (outcome, fit_cpu_seconds) = fit
            .await
            .map_err(|e| Error::backend("training thread", e))??;

        // Final metrics, at the step after the last epoch.
        let step = i64::try_from(outcome.history.len()).unwrap_or(i64::MAX);
        let mut batch = LogBatch::new();
        for (k, v) in &outcome.metrics {
            batch = batch.metric(metric(k, *v, step)?);
        }
        tracker.log_batch(run_id, batch).await?;

        let assessment = match &self.assessor {
            Some(assessor) => {
                self.assess_outcome(run_id, assessor.clone(), &outcome, data)
                    .await?
            }
            None => Assessment::new(),
        };

        // The artifact, with lineage in the card, stored by content and logged with the run.
        let git_commit = Lineage::current_git_commit();
        let mut artifact = outcome.model.to_artifact()?;
        if artifact.flavor == FLAVOR {
            let mut card = ModelCard::read(&artifact)?;
            card.assessment.clone_from(&assessment.card);
            card.lineage.run_id = Some(run_id.to_string());
            card.lineage.datasets = data
                .source
                .iter()
                .map(|d| format!("{}@{} {}", d.name, d.version, d.digest.to_hex()))
                .collect();
            card.lineage.git_commit = git_commit.clone();
            card.write(&mut artifact)?;
        }
        let source = self.sink.store_model(&artifact).await?;
        for (path, bytes) in &artifact.files {
            let path = ArtifactPath::new(format!("model/{path}"))?;
            tracker.put_artifact(run_id, &path, bytes.clone()).await?;
        }
        tracker.set_tag(run_id, MODEL_SOURCE_TAG, &source).await?;
        tracker.end_run(run_id, RunStatus::Finished).await?;

        let version = match &self.registration {
            Some(r) => Some(
                register(
                    r,
                    &Trained {
                        source: &source,
                        run_id,
                        model: outcome.model.as_ref(),
                        metrics: &outcome.metrics,
                        data,
                        git_commit,
                        tags: &assessment.tags,
                    },
                )
                .await?,
            ),
            None => None,
        };
        Ok(JobOutcome {
            fit_cpu_seconds,
            run_id: run_id.clone(),
            metrics: outcome.metrics,
            history: outcome.history,
            model: outcome.model,
            artifact,
            source,
            version,
        })
    }
}

impl TrainingJob {
    /// Runs the assessor on the validation rows of `outcome` (all rows when none were held
    /// out) on a blocking thread; logs its tags on the run and its files under `assessment/`.
    async fn assess_outcome(
        &self,
        run_id: &RunId,
        assessor: Arc<dyn Assessor>,
        outcome: &mlops_core::FitOutcome,
        data: &TrainingData,
    ) -> Result<Assessment> {
        let schema = data
            .batches
            .first()
            .map(RecordBatch::schema)
            .ok_or_else(|| Error::invalid("data", "no rows"))?;
        let all = arrow::compute::concat_batches(&schema, &data.batches)
            .map_err(|e| Error::backend("arrow", e))?;
        let (model, rows, target) = (
            outcome.model.clone(),
            outcome.validation_rows.clone().unwrap_or_default(),
            self.options.target.clone(),
        );
        let on_validation = !rows.is_empty();
        let assessment = tokio::task::spawn_blocking(move || {
            let held_out = if rows.is_empty() {
                all
            } else {
                let indices =
                    arrow::array::UInt64Array::from_iter_values(rows.iter().map(|&r| r as u64));
                arrow::compute::take_record_batch(&all, &indices)
                    .map_err(|e| Error::backend("arrow", e))?
            };
            assessor.assess(&model, &held_out, &target)
        })
        .await
        .map_err(|e| Error::backend("assessment thread", e))??;
        let tracker = self.tracker.as_ref();
        let mut batch = LogBatch::new().tag(Tag::new(
            "mlops.assessment.rows".parse()?,
            if on_validation {
                "validation"
            } else {
                "training"
            },
        )?);
        for (k, v) in &assessment.tags {
            batch = batch.tag(Tag::new(k.parse()?, v.clone())?);
        }
        tracker.log_batch(run_id, batch).await?;
        for (name, bytes) in &assessment.files {
            let path = ArtifactPath::new(format!("assessment/{name}"))?;
            tracker.put_artifact(run_id, &path, bytes.clone()).await?;
        }
        Ok(assessment)
    }
}

/// What a finished training run registers.
struct Trained<'a> {
    source: &'a str,
    run_id: &'a RunId,
    model: &'a dyn Model,
    metrics: &'a BTreeMap<String, f64>,
    data: &'a TrainingData,
    git_commit: Option<String>,
    tags: &'a BTreeMap<String, String>,
}

/// Registers a version of the registration's model (creating the model when new).
async fn register(registration: &Registration, t: &Trained<'_>) -> Result<ModelVersion> {
    let (registry, name) = (registration.registry.as_ref(), &registration.name);
    let Trained {
        source,
        run_id,
        model,
        metrics,
        data,
        ..
    } = *t;
    let git_commit = t.git_commit.clone();
    match registry
        .create_registered_model(name, CreateModelOptions::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    let mut options = CreateVersionOptions::new(source)
        .with_run_id(run_id.clone())
        .with_signature(model.signature().clone())
        .with_lineage(Lineage {
            run_id: Some(run_id.clone()),
            datasets: data.source.iter().cloned().collect(),
            git_commit,
        })
        .with_tag(Tag::new("flavor".parse()?, model.flavor())?);
    for (k, v) in metrics {
        let key = format!("{}{k}", mlops_core::policy::METRIC_TAG_PREFIX);
        options = options.with_tag(Tag::new(key.parse()?, v.to_string())?);
    }
    for (k, v) in t.tags {
        options = options.with_tag(Tag::new(k.parse()?, v.clone())?);
    }
    registry.create_model_version(name, options).await
}
