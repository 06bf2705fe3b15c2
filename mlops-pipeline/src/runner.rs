//! The DAG runner: independent steps in parallel on tokio, step caching with `dvc repro`
//! semantics, retries with backoff, timeouts, cancellation, one tracked run per pipeline run
//! with a child run per step, resources priced by a rate card.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlops_core::store::{CommitOptions, RefVersion};
use mlops_core::tracker::CreateRunOptions;
use mlops_core::{
    CancelToken, Digest, Error, LogBatch, Metric, Param, RefName, Result, RunId, RunStatus, Store,
    StoreExt, Tag, Tracker, TrackerExt,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::pipeline::{Pipeline, StepDef};
use crate::resources::{RateCard, RssSampler, Usage};
use crate::step::{Outputs, StepContext, canonical_json};

/// The experiment pipeline runs go to unless told otherwise.
pub const DEFAULT_EXPERIMENT: &str = "pipelines";
/// Tag on pipeline and step runs naming the pipeline.
pub const PIPELINE_TAG: &str = "mlops.pipeline";
/// Tag on step runs naming the step.
pub const STEP_TAG: &str = "mlops.step";
/// Tag on step runs: `hit` (served from the cache) or `miss` (executed).
pub const CACHE_TAG: &str = "mlops.cache";

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Executed and succeeded.
    Succeeded,
    /// Served from the cache: inputs, parameters and code version unchanged, outputs present.
    Cached,
    /// Failed (after its retries).
    Failed,
    /// Not run because a step it depends on did not succeed.
    Skipped,
    /// Not run, or stopped, because the pipeline was cancelled.
    Cancelled,
    /// Not needed: its `when` condition was false, or a step it depends on was bypassed. The
    /// pipeline still succeeds.
    Bypassed,
}

impl StepStatus {
    /// Whether the pipeline counts it as a success.
    pub fn ok(self) -> bool {
        matches!(self, Self::Succeeded | Self::Cached | Self::Bypassed)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Cached => "cached",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::Bypassed => "bypassed",
        }
    }
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step.
    pub name: String,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts made (0 when cached or not run).
    pub attempts: u32,
    /// Resources used.
    pub usage: Usage,
    /// Their price by the rate card.
    pub cost: f64,
    /// Its outputs (recorded ones when cached).
    pub outputs: Outputs,
    /// Why it failed or was not run.
    pub error: Option<String>,
    /// Its cache key (hex).
    pub cache_key: Option<String>,
    /// Its child run.
    pub run_id: Option<RunId>,
}

impl StepReport {
    fn not_run(name: &str, status: StepStatus, why: String) -> Self {
        Self {
            name: name.to_owned(),
            status,
            attempts: 0,
            usage: Usage::default(),
            cost: 0.0,
            outputs: Outputs::new(),
            error: Some(why),
            cache_key: None,
            run_id: None,
        }
    }
}

/// What happened to a pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    /// The pipeline.
    pub pipeline: String,
    /// The tracked run.
    pub run_id: Option<RunId>,
    /// Every step, in topological order.
    pub steps: Vec<StepReport>,
    /// Wall-clock seconds of the whole run.
    pub wall_seconds: f64,
    /// Summed step cost.
    pub cost: f64,
    /// The rate card's currency.
    pub currency: String,
}

impl PipelineReport {
    /// Whether every step succeeded or was cached.
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.status.ok())
    }

    /// The first step that failed.
    pub fn failed(&self) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.status == StepStatus::Failed)
    }

    /// A step's report.
    pub fn step(&self, name: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Names of the steps that executed (not cached).
    pub fn executed(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.attempts > 0)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// `Ok(self)` when it succeeded; otherwise the error naming the failed step and why (or
    /// that the run was cancelled).
    pub fn into_result(self) -> Result<Self> {
        if self.succeeded() {
            return Ok(self);
        }
        if let Some(f) = self.failed() {
            return Err(Error::Unavailable {
                message: format!(
                    "pipeline {} failed at step {}: {}",
                    self.pipeline,
                    f.name,
                    f.error.clone().unwrap_or_default()
                ),
                source: None,
            });
        }
        Err(Error::Unavailable {
            message: format!("pipeline {} was cancelled", self.pipeline),
            source: None,
        })
    }
}

/// A step's cache record, kept at the ref `pipelines/<pipeline>/<step>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The key it was computed under (hex).
    pub key: String,
    /// The outputs.
    pub outputs: Outputs,
    /// The run that produced them.
    pub run_id: Option<RunId>,
    /// When, ms.
    pub finished_ms: i64,
    /// The pipeline run it belongs to, when the runner was given one (exported workflows:
    /// steps in separate pods find their upstream outputs by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_token: Option<String>,
    /// The step was bypassed in that run (its `when` condition was false): no outputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bypassed: bool,
}

/// The ref holding `step`'s cache record.
pub fn cache_ref(pipeline: &str, step: &str) -> Result<RefName> {
    RefName::new(format!("pipelines/{pipeline}/{step}"))
}

/// Reads a step's cache record, if any.
pub async fn read_cache(
    store: &dyn Store,
    pipeline: &str,
    step: &str,
) -> Result<Option<CacheRecord>> {
    let name = cache_ref(pipeline, step)?;
    let commit = match store.get_ref(&name, RefVersion::Latest).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = store.get_bytes(&commit.target).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::corrupt("pipeline cache record", name, e.to_string()))
}

async fn write_cache(
    store: &dyn Store,
    pipeline: &str,
    step: &str,
    record: &CacheRecord,
) -> Result<()> {
    let name = cache_ref(pipeline, step)?;
    let json = serde_json::to_vec(record).map_err(|e| Error::backend("serde_json", e))?;
    let blob = store.put_bytes(Bytes::from(json)).await?;
    // Two runs of the same pipeline may race; the later record wins, both are valid.
    for _ in 0..5 {
        match store
            .commit_latest(
                &name,
                blob.digest,
                CommitOptions::default().with_message(format!("cache {}", record.key)),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict {
        kind: "pipeline cache record",
        name: name.to_string(),
        message: "it kept changing under us".into(),
    })
}

/// The cache key of a step: the digest of its name, code version, parameters and its inputs'
/// digests (canonical JSON).
pub fn cache_key(def: &StepDef, inputs: &Outputs) -> Digest {
    let doc = serde_json::json!({
        "step": def.name,
        "code_version": def.code_version,
        "params": def.params,
        "inputs": inputs.iter().map(|(k, o)| (k.clone(), o.digest.to_hex())).collect::<BTreeMap<_, _>>(),
    });
    Digest::of(canonical_json(&doc).as_bytes())
}

fn transient(e: &Error) -> bool {
    matches!(
        e,
        Error::Unavailable { .. } | Error::Backend { .. } | Error::Conflict { .. }
    )
}

/// Runs pipelines against a store (outputs, cache records) and, optionally, a tracker.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    tracker: Option<Arc<dyn Tracker>>,
    experiment: String,
    force: Option<BTreeSet<String>>,
    force_all: bool,
    only: Option<BTreeSet<String>>,
    rate_card: RateCard,
    cancel: CancelToken,
    max_parallel: usize,
    run_token: Option<String>,
    observer: Option<StepObserver>,
}

/// What a [`Runner`] reports while it runs (a CLI draws progress from it).
#[derive(Debug)]
pub enum StepEvent<'a> {
    /// A step started executing (or checking its cache).
    Started(&'a str),
    /// A step that started has ended.
    Finished(&'a StepReport),
}

/// Receives [`StepEvent`]s.
pub type StepObserver = Arc<dyn Fn(&StepEvent<'_>) + Send + Sync>;

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("experiment", &self.experiment)
            .field("force_all", &self.force_all)
            .field("force", &self.force)
            .field("only", &self.only)
            .field("max_parallel", &self.max_parallel)
            .field("run_token", &self.run_token)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner on `store`, untracked, with the default rate card, as many steps at once as
    /// there are cores.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            tracker: None,
            experiment: DEFAULT_EXPERIMENT.to_owned(),
            force: None,
            force_all: false,
            only: None,
            rate_card: RateCard::default(),
            cancel: CancelToken::new(),
            max_parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            run_token: None,
            observer: None,
        }
    }

    /// Calls `observer` as steps start and finish.
    pub fn observer(mut self, observer: StepObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Names the pipeline run this invocation belongs to (an exported workflow passes the
    /// same token to every step's pod): cache records are stamped with it, and with
    /// [`only`](Self::only) an upstream record from another run is "not run yet"
    /// ([`Error::Unavailable`], so the pod is retried) instead of stale input.
    pub fn run_token(mut self, token: impl Into<String>) -> Self {
        self.run_token = Some(token.into());
        self
    }

    /// Tracks every run in `tracker`: a run per pipeline run in `experiment`, a child run per
    /// step.
    pub fn tracker(mut self, tracker: Arc<dyn Tracker>, experiment: impl Into<String>) -> Self {
        self.tracker = Some(tracker);
        self.experiment = experiment.into();
        self
    }

    /// Re-runs every step, cached or not (`dvc repro --force`).
    pub fn force(mut self, all: bool) -> Self {
        self.force_all = all;
        self
    }

    /// Re-runs these steps even when cached.
    pub fn force_steps(mut self, steps: impl IntoIterator<Item = String>) -> Self {
        self.force = Some(steps.into_iter().collect());
        self
    }

    /// Runs only these steps, reading their upstream steps' outputs from the cache records
    /// earlier runs wrote (how one container of an exported Argo Workflow runs its step).
    pub fn only(mut self, steps: impl IntoIterator<Item = String>) -> Self {
        self.only = Some(steps.into_iter().collect());
        self
    }

    /// Prices usage with `card`.
    pub fn rate_card(mut self, card: RateCard) -> Self {
        self.rate_card = card;
        self
    }

    /// Stops scheduling (and asks running steps to stop) when `token` fires.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = token;
        self
    }

    /// At most `n` steps at once.
    pub fn max_parallel(mut self, n: usize) -> Self {
        self.max_parallel = n.max(1);
        self
    }

    /// Runs `pipeline`. Step failures are in the report (see [`PipelineReport::into_result`]);
    /// an invalid pipeline, a store or tracker failure is an error.
    pub async fn run(&self, pipeline: &Pipeline) -> Result<PipelineReport> {
        let order = pipeline.validate()?;
        if let Some(bad) = self
            .only
            .iter()
            .flatten()
            .find(|s| pipeline.get(s).is_none())
        {
            return Err(Error::invalid(
                "step",
                format!("{} has no step {bad:?}", pipeline.name()),
            ));
        }
        let started = Instant::now();
        let parent = match &self.tracker {
            Some(t) => Some(self.open_parent(t.as_ref(), pipeline).await?),
            None => None,
        };

        let mut reports: BTreeMap<String, StepReport> = BTreeMap::new();
        // Steps outside `only` count as done with their recorded outputs.
        if let Some(only) = &self.only {
            for def in pipeline.steps().iter().filter(|d| !only.contains(&d.name)) {
                let needed = pipeline
                    .dependants(&def.name)
                    .iter()
                    .any(|d| only.contains(d));
                if !needed {
                    continue;
                }
                let record = read_cache(self.store.as_ref(), pipeline.name(), &def.name)
                    .await?
                    .ok_or_else(|| {
                        Error::invalid(
                            "step",
                            format!(
                                "upstream step {} of {} has not run yet (no cache record)",
                                def.name,
                                pipeline.name()
                            ),
                        )
                    })?;
                if let Some(token) = &self.run_token
                    && record.run_token.as_ref() != Some(token)
                {
                    return Err(Error::Unavailable {
                        message: format!(
                            "upstream step {} of {} has not run in pipeline run {token} yet",
                            def.name,
                            pipeline.name()
                        ),
                        source: None,
                    });
                }
                let status = if record.bypassed {
                    StepStatus::Bypassed
                } else {
                    StepStatus::Cached
                };
                let mut r = StepReport::not_run(&def.name, status, String::new());
                r.error = None;
                r.outputs = record.outputs;
                r.run_id = record.run_id;
                r.cache_key = Some(record.key);
                reports.insert(def.name.clone(), r);
            }
        }
        let selected: Vec<&StepDef> = order
            .iter()
            .copied()
            .filter(|d| self.only.as_ref().is_none_or(|o| o.contains(&d.name)))
            .collect();

        let mut running: JoinSet<(String, Result<StepReport>)> = JoinSet::new();
        let overlap = Arc::new(Overlap::default());
        let mut pending: Vec<&StepDef> = selected.clone();
        loop {
            // Start what is ready, skip what cannot run.
            let mut i = 0;
            while i < pending.len() {
                let def = pending[i];
                let deps = def.dependencies();
                let blocked = deps
                    .iter()
                    .find(|d| reports.get(**d).is_some_and(|r| !r.status.ok()));
                if let Some(dep) = blocked {
                    let why = format!("upstream step {dep} did not succeed");
                    let status = if self.cancel.is_cancelled() {
                        StepStatus::Cancelled
                    } else {
                        StepStatus::Skipped
                    };
                    let mut r = StepReport::not_run(&def.name, status, why);
                    r.run_id = self.not_run_child(parent.as_ref(), pipeline, &r).await?;
                    reports.insert(def.name.clone(), r);
                    pending.remove(i);
                    continue;
                }
                if !deps.iter().all(|d| reports.contains_key(*d)) {
                    i += 1;
                    continue;
                }
                // Not needed: an upstream step was bypassed, or the condition is false.
                let bypass = match deps.iter().find(|d| {
                    reports
                        .get(**d)
                        .is_some_and(|r| r.status == StepStatus::Bypassed)
                }) {
                    Some(dep) => Some(Ok(format!("upstream step {dep} was bypassed"))),
                    None => def
                        .condition
                        .as_ref()
                        .and_then(|c| match c.holds(&reports) {
                            Ok(true) => None,
                            Ok(false) => Some(Ok(format!("when {c} is false"))),
                            Err(e) => Some(Err(e)),
                        }),
                };
                if let Some(why) = bypass {
                    let (status, why) = match why {
                        Ok(why) => (StepStatus::Bypassed, why),
                        Err(e) => (StepStatus::Failed, e.to_string()),
                    };
                    let mut r = StepReport::not_run(&def.name, status, why);
                    r.run_id = self.not_run_child(parent.as_ref(), pipeline, &r).await?;
                    if status == StepStatus::Bypassed && self.run_token.is_some() {
                        // Pods downstream learn it from the record, as they learn outputs.
                        let record = CacheRecord {
                            key: String::new(),
                            outputs: Outputs::new(),
                            run_id: r.run_id.clone(),
                            finished_ms: mlops_core::time::now_ms(),
                            run_token: self.run_token.clone(),
                            bypassed: true,
                        };
                        write_cache(self.store.as_ref(), pipeline.name(), &def.name, &record)
                            .await?;
                    }
                    reports.insert(def.name.clone(), r);
                    pending.remove(i);
                    continue;
                }
                if self.cancel.is_cancelled() {
                    let mut r = StepReport::not_run(
                        &def.name,
                        StepStatus::Cancelled,
                        "the pipeline was cancelled".into(),
                    );
                    r.run_id = self.not_run_child(parent.as_ref(), pipeline, &r).await?;
                    reports.insert(def.name.clone(), r);
                    pending.remove(i);
                    continue;
                }
                if running.len() >= self.max_parallel {
                    break;
                }
                let inputs = match resolve_inputs(def, &reports) {
                    Ok(inputs) => inputs,
                    Err(e) => {
                        let mut r =
                            StepReport::not_run(&def.name, StepStatus::Failed, e.to_string());
                        r.run_id = self.not_run_child(parent.as_ref(), pipeline, &r).await?;
                        reports.insert(def.name.clone(), r);
                        pending.remove(i);
                        continue;
                    }
                };
                let job = StepJob {
                    def: def.clone(),
                    pipeline: pipeline.name().to_owned(),
                    inputs,
                    store: self.store.clone(),
                    tracker: self.tracker.clone(),
                    experiment: parent.as_ref().map(|p| p.1.clone()),
                    parent: parent.as_ref().map(|p| p.0.clone()),
                    forced: self.force_all
                        || self.force.as_ref().is_some_and(|f| f.contains(&def.name)),
                    rate_card: self.rate_card.clone(),
                    cancel: self.cancel.clone(),
                    run_token: self.run_token.clone(),
                    overlap: overlap.clone(),
                };
                let name = def.name.clone();
                if let Some(observer) = &self.observer {
                    observer(&StepEvent::Started(&name));
                }
                running.spawn(async move { (name, job.run().await) });
                pending.remove(i);
            }
            if running.is_empty() {
                if pending.is_empty() {
                    break;
                }
                // Nothing running and nothing startable: cannot happen in a validated DAG.
                return Err(Error::invalid("pipeline", "steps could not be scheduled"));
            }
            match running.join_next().await {
                Some(Ok((name, report))) => {
                    let report = report?;
                    if let Some(observer) = &self.observer {
                        observer(&StepEvent::Finished(&report));
                    }
                    reports.insert(name, report);
                }
                Some(Err(e)) => return Err(Error::backend("pipeline step task", e)),
                None => {}
            }
        }

        let steps: Vec<StepReport> = selected
            .iter()
            .filter_map(|d| reports.remove(&d.name))
            .collect();
        let report = PipelineReport {
            pipeline: pipeline.name().to_owned(),
            run_id: parent.as_ref().map(|p| p.0.clone()),
            wall_seconds: started.elapsed().as_secs_f64(),
            cost: steps.iter().map(|s| s.cost).sum(),
            currency: self.rate_card.currency.clone(),
            steps,
        };
        if let (Some(t), Some((run_id, _))) = (&self.tracker, &parent) {
            close_parent(t.as_ref(), run_id, &report, self.cancel.is_cancelled()).await?;
        }
        Ok(report)
    }

    async fn open_parent(
        &self,
        tracker: &dyn Tracker,
        pipeline: &Pipeline,
    ) -> Result<(RunId, mlops_core::ExperimentId)> {
        let experiment = tracker
            .get_or_create_experiment(&self.experiment.parse()?)
            .await?;
        let run = tracker
            .create_run(
                CreateRunOptions::default()
                    .in_experiment(experiment.clone())
                    .with_name(pipeline.name().to_owned())
                    .with_tag(Tag::new(PIPELINE_TAG.parse()?, pipeline.name())?),
            )
            .await?;
        let mut batch = LogBatch::new().param(Param::new(
            "steps".parse()?,
            pipeline.steps().len().to_string(),
        )?);
        if let Some(only) = &self.only {
            batch = batch.param(Param::new(
                "only".parse()?,
                only.iter().cloned().collect::<Vec<_>>().join(","),
            )?);
        }
        batch = batch.param(Param::new("force".parse()?, self.force_all.to_string())?);
        tracker.log_batch(&run.info.run_id, batch).await?;
        Ok((run.info.run_id, experiment))
    }

    /// A child run for a step that did not run (so the pipeline's run shows every step).
    async fn not_run_child(
        &self,
        parent: Option<&(RunId, mlops_core::ExperimentId)>,
        pipeline: &Pipeline,
        report: &StepReport,
    ) -> Result<Option<RunId>> {
        let (Some(tracker), Some((parent, experiment))) = (&self.tracker, parent) else {
            return Ok(None);
        };
        let run = open_child(
            tracker.as_ref(),
            parent,
            experiment,
            pipeline.name(),
            &report.name,
        )
        .await?;
        let mut batch =
            LogBatch::new().tag(Tag::new("mlops.status".parse()?, report.status.as_str())?);
        if let Some(e) = &report.error {
            batch = batch.tag(Tag::new("mlops.error".parse()?, truncate(e))?);
        }
        tracker.log_batch(&run, batch).await?;
        tracker.end_run(&run, RunStatus::Killed).await?;
        Ok(Some(run))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(5000).collect()
}

async fn open_child(
    tracker: &dyn Tracker,
    parent: &RunId,
    experiment: &mlops_core::ExperimentId,
    pipeline: &str,
    step: &str,
) -> Result<RunId> {
    Ok(tracker
        .create_run(
            CreateRunOptions::default()
                .in_experiment(experiment.clone())
                .with_parent(parent.clone())
                .with_name(step.to_owned())
                .with_tag(Tag::new(PIPELINE_TAG.parse()?, pipeline)?)
                .with_tag(Tag::new(STEP_TAG.parse()?, step)?),
        )
        .await?
        .info
        .run_id)
}

async fn close_parent(
    tracker: &dyn Tracker,
    run: &RunId,
    report: &PipelineReport,
    cancelled: bool,
) -> Result<()> {
    let count = |s: StepStatus| report.steps.iter().filter(|r| r.status == s).count() as f64;
    let metric = |k: &str, v: f64| -> Result<Metric> { Ok(Metric::new(k.parse()?, v, 0)) };
    let usage_sum = |f: fn(&Usage) -> f64| report.steps.iter().map(|s| f(&s.usage)).sum::<f64>();
    let mut batch = LogBatch::new()
        .metric(metric("wall_seconds", report.wall_seconds)?)
        .metric(metric("cost", report.cost)?)
        .metric(metric("cpu_seconds", usage_sum(|u| u.cpu_seconds))?)
        .metric(metric("gpu_seconds", usage_sum(|u| u.gpu_seconds))?)
        .metric(metric(
            "steps_executed",
            count(StepStatus::Succeeded) + count(StepStatus::Failed),
        )?)
        .metric(metric("steps_cached", count(StepStatus::Cached))?)
        .metric(metric("steps_failed", count(StepStatus::Failed))?)
        .tag(Tag::new(
            "mlops.currency".parse()?,
            report.currency.clone(),
        )?);
    if let Some(f) = report.failed() {
        batch = batch
            .tag(Tag::new("mlops.failed_step".parse()?, f.name.clone())?)
            .tag(Tag::new(
                "mlops.error".parse()?,
                truncate(f.error.as_deref().unwrap_or("")),
            )?);
    }
    tracker.log_batch(run, batch).await?;
    let status = if report.succeeded() {
        RunStatus::Finished
    } else if cancelled && report.failed().is_none() {
        RunStatus::Killed
    } else {
        RunStatus::Failed
    };
    tracker.end_run(run, status).await?;
    Ok(())
}

fn resolve_inputs(def: &StepDef, reports: &BTreeMap<String, StepReport>) -> Result<Outputs> {
    def.inputs
        .iter()
        .map(|(name, (from, output))| {
            let upstream = reports
                .get(from)
                .ok_or_else(|| Error::invalid("step input", format!("{from} has not run")))?;
            let out = upstream.outputs.get(output).ok_or_else(|| {
                Error::invalid(
                    "step input",
                    format!(
                        "step {} reads {from}.{output}, but {from} has no output {output:?} (outputs: {})",
                        def.name,
                        upstream.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            Ok((name.clone(), out.clone()))
        })
        .collect()
}

/// One step's execution, owning what it needs (it runs as its own task).
struct StepJob {
    def: StepDef,
    pipeline: String,
    inputs: Outputs,
    store: Arc<dyn Store>,
    tracker: Option<Arc<dyn Tracker>>,
    experiment: Option<mlops_core::ExperimentId>,
    parent: Option<RunId>,
    forced: bool,
    rate_card: RateCard,
    cancel: CancelToken,
    run_token: Option<String>,
    overlap: Arc<Overlap>,
}

/// Tells whether a step ran alone: then the process's CPU time over the step is the step's.
#[derive(Debug, Default)]
struct Overlap {
    active: std::sync::atomic::AtomicUsize,
    starts: std::sync::atomic::AtomicU64,
}

impl Overlap {
    /// Marks a start; returns what `alone` needs.
    fn enter(&self) -> (usize, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        let before = self.active.fetch_add(1, SeqCst);
        let start = self.starts.fetch_add(1, SeqCst) + 1;
        (before, start)
    }

    /// Marks the end; whether no other step ran at any time in between.
    fn leave(&self, (before, start): (usize, u64)) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.active.fetch_sub(1, SeqCst);
        before == 0 && self.starts.load(SeqCst) == start
    }
}

impl StepJob {
    async fn run(self) -> Result<StepReport> {
        let key = cache_key(&self.def, &self.inputs).to_hex();
        let run_id = match (&self.tracker, &self.parent, &self.experiment) {
            (Some(t), Some(p), Some(e)) => {
                Some(open_child(t.as_ref(), p, e, &self.pipeline, &self.def.name).await?)
            }
            _ => None,
        };
        let mut report = StepReport {
            name: self.def.name.clone(),
            status: StepStatus::Failed,
            attempts: 0,
            usage: Usage::default(),
            cost: 0.0,
            outputs: Outputs::new(),
            error: None,
            cache_key: Some(key.clone()),
            run_id: run_id.clone(),
        };

        // dvc repro: unchanged key and outputs still there → skip.
        let cached = if self.def.cache && !self.forced {
            match read_cache(self.store.as_ref(), &self.pipeline, &self.def.name).await? {
                Some(record) if record.key == key && !record.bypassed => {
                    let ctx = self.context(CancelToken::new(), 0, run_id.clone());
                    self.def
                        .step
                        .outputs_exist(&ctx, &record.outputs)
                        .await?
                        .then_some(record)
                }
                _ => None,
            }
        } else {
            None
        };
        if let Some(mut record) = cached {
            report.status = StepStatus::Cached;
            report.outputs = record.outputs.clone();
            if self.run_token.is_some() && record.run_token != self.run_token {
                // Served from the cache in this pipeline run: say so to the steps downstream.
                record.run_token = self.run_token.clone();
                write_cache(self.store.as_ref(), &self.pipeline, &self.def.name, &record).await?;
            }
        } else {
            self.execute(&mut report, run_id.clone()).await;
            if report.status == StepStatus::Succeeded {
                let record = CacheRecord {
                    key: key.clone(),
                    outputs: report.outputs.clone(),
                    run_id: run_id.clone(),
                    finished_ms: mlops_core::time::now_ms(),
                    run_token: self.run_token.clone(),
                    bypassed: false,
                };
                write_cache(self.store.as_ref(), &self.pipeline, &self.def.name, &record).await?;
            }
        }
        report.cost = self.rate_card.cost(&report.usage);
        if let (Some(t), Some(run)) = (&self.tracker, &run_id) {
            self.log(t.as_ref(), run, &report).await?;
        }
        Ok(report)
    }

    fn context(&self, cancel: CancelToken, attempt: u32, run_id: Option<RunId>) -> StepContext {
        StepContext::new(
            &self.pipeline,
            &self.def.name,
            self.inputs.clone(),
            self.def.params.clone(),
            self.store.clone(),
            cancel,
            attempt,
            run_id,
        )
    }

    /// Attempts the step until it succeeds, fails for good, or is cancelled.
    async fn execute(&self, report: &mut StepReport, run_id: Option<RunId>) {
        let started = Instant::now();
        let sampler = RssSampler::start();
        let mut cpu = 0.0;
        let process_cpu = mlops_core::time::process_cpu_seconds();
        let slot = self.overlap.enter();
        for attempt in 1..=self.def.retries + 1 {
            report.attempts = attempt;
            let token = CancelToken::new();
            let ctx = Arc::new(self.context(token.clone(), attempt, run_id.clone()));
            // Forward the pipeline's cancellation to this attempt.
            let watch = {
                let (pipeline, step) = (self.cancel.clone(), token.clone());
                tokio::spawn(async move {
                    while !pipeline.is_cancelled() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    step.cancel();
                })
            };
            let attempt_started = Instant::now();
            let result = match self.def.timeout {
                Some(limit) => {
                    match tokio::time::timeout(limit, self.def.step.run(ctx.clone())).await {
                        Ok(r) => r,
                        Err(_) => {
                            token.cancel();
                            Err(Error::Unavailable {
                                message: format!(
                                    "step {} timed out after {}",
                                    self.def.name,
                                    humantime::format_duration(limit)
                                ),
                                source: None,
                            })
                        }
                    }
                }
                None => self.def.step.run(ctx.clone()).await,
            };
            watch.abort();
            cpu += ctx.cpu_seconds();
            let gpu_seconds = f64::from(ctx.gpus()) * attempt_started.elapsed().as_secs_f64();
            report.usage.gpu_seconds += gpu_seconds;
            match result {
                Ok(outputs) => {
                    report.status = StepStatus::Succeeded;
                    report.outputs = outputs;
                    report.error = None;
                    break;
                }
                Err(e) => {
                    report.error = Some(e.to_string());
                    if self.cancel.is_cancelled() {
                        report.status = StepStatus::Cancelled;
                        break;
                    }
                    report.status = StepStatus::Failed;
                    if attempt > self.def.retries || !transient(&e) {
                        break;
                    }
                    let wait = self
                        .def
                        .backoff
                        .saturating_mul(1u32 << (attempt - 1).min(16));
                    tracing::warn!(step = %self.def.name, attempt, error = %e, "retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        report.usage.wall_seconds = started.elapsed().as_secs_f64();
        let alone = self.overlap.leave(slot);
        report.usage.cpu_seconds =
            match (alone, process_cpu, mlops_core::time::process_cpu_seconds()) {
                // Alone: everything the process did (candle's and rayon's worker threads too).
                (true, Some(a), Some(b)) => b - a,
                // Beside other steps: what the step's own blocking work measured on its threads.
                _ => cpu,
            };
        report.usage.cpu_exclusive = alone;
        report.usage.peak_rss_bytes = sampler.finish();
    }

    async fn log(&self, tracker: &dyn Tracker, run: &RunId, report: &StepReport) -> Result<()> {
        let metric = |k: &str, v: f64| -> Result<Metric> { Ok(Metric::new(k.parse()?, v, 0)) };
        let mut batch = LogBatch::new()
            .param(Param::new(
                "code_version".parse()?,
                self.def.code_version.clone(),
            )?)
            .param(Param::new(
                "cache_key".parse()?,
                report.cache_key.clone().unwrap_or_default(),
            )?)
            .tag(Tag::new(
                CACHE_TAG.parse()?,
                if report.status == StepStatus::Cached {
                    "hit"
                } else {
                    "miss"
                },
            )?)
            .tag(Tag::new("mlops.status".parse()?, report.status.as_str())?)
            .metric(metric("wall_seconds", report.usage.wall_seconds)?)
            .metric(metric("cpu_seconds", report.usage.cpu_seconds)?)
            .metric(metric("gpu_seconds", report.usage.gpu_seconds)?)
            .metric(metric("cost", report.cost)?)
            .metric(metric("attempts", f64::from(report.attempts))?);
        if let Some(rss) = report.usage.peak_rss_bytes {
            batch = batch.metric(metric("peak_rss_bytes", rss as f64)?);
        }
        if let serde_json::Value::Object(params) = &self.def.params {
            for (k, v) in params.iter().take(90) {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if let Ok(key) = format!("param.{k}").parse() {
                    batch = batch.param(Param::new(key, truncate(&text))?);
                }
            }
        }
        for (name, out) in &report.outputs {
            if let Ok(key) = format!("mlops.output.{name}").parse() {
                batch = batch.tag(Tag::new(key, out.digest.to_hex())?);
            }
        }
        if let Some(e) = &report.error {
            batch = batch.tag(Tag::new("mlops.error".parse()?, truncate(e))?);
        }
        tracker.log_batch(run, batch).await?;
        let status = match report.status {
            StepStatus::Succeeded | StepStatus::Cached => RunStatus::Finished,
            StepStatus::Failed => RunStatus::Failed,
            StepStatus::Skipped | StepStatus::Cancelled | StepStatus::Bypassed => RunStatus::Killed,
        };
        tracker.end_run(run, status).await?;
        Ok(())
    }
}
