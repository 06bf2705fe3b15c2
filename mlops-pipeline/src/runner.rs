//! The DAG scheduler: independent steps in parallel on tokio, each step's fate decided from
//! its dependencies' reports (run, skip, bypass, cancel), one tracked run per pipeline run.
//!
//! What one step does when it runs is in `execute`; caching in `cache`; tracking in
//! `tracking`; the reports in `report`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use mlops_core::{CancelToken, Error, Result, Store, Tracker};
use tokio::task::JoinSet;

use crate::cache::{CacheRecord, read_cache, write_cache};
use crate::execute::{Overlap, StepJob};
use crate::pipeline::{Pipeline, StepDef};
use crate::report::{PipelineReport, StepReport, StepStatus};
use crate::resources::RateCard;
use crate::step::Outputs;
use crate::tracking::{DEFAULT_EXPERIMENT, ParentRun, close_parent, log_not_run, open_parent};

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
        // Upstream records first: a pod whose upstream has not run yet leaves no run behind.
        let mut reports = self.recorded_upstream(pipeline).await?;
        let parent = match &self.tracker {
            Some(t) => {
                let (run_id, experiment) = open_parent(
                    t.as_ref(),
                    &self.experiment,
                    pipeline.name(),
                    pipeline.steps().len(),
                    self.only.as_ref().map(|o| o.iter().cloned().collect()),
                    self.force_all,
                )
                .await?;
                Some(ParentRun { run_id, experiment })
            }
            None => None,
        };
        let selected: Vec<&StepDef> = order
            .iter()
            .copied()
            .filter(|d| self.only.as_ref().is_none_or(|o| o.contains(&d.name)))
            .collect();

        let mut running: JoinSet<(String, Result<StepReport>)> = JoinSet::new();
        let overlap = Arc::new(Overlap::default());
        let mut pending: Vec<&StepDef> = selected.clone();
        loop {
            // Start what is ready, settle what will not run, leave the rest waiting.
            let mut i = 0;
            while i < pending.len() {
                let def = pending[i];
                match self.next(def, &reports) {
                    Next::Wait => {
                        i += 1;
                        continue;
                    }
                    Next::NotRun(report) => {
                        let report = self.settle(pipeline, parent.as_ref(), *report).await?;
                        reports.insert(def.name.clone(), report);
                    }
                    Next::Ready(inputs) => {
                        if running.len() >= self.max_parallel {
                            break;
                        }
                        let job = StepJob {
                            def: def.clone(),
                            pipeline: pipeline.name().to_owned(),
                            inputs,
                            store: self.store.clone(),
                            tracking: self.tracker.clone().zip(parent.clone()),
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
                    }
                }
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
            run_id: parent.as_ref().map(|p| p.run_id.clone()),
            wall_seconds: started.elapsed().as_secs_f64(),
            cost: steps.iter().map(|s| s.cost).sum(),
            currency: self.rate_card.currency.clone(),
            steps,
        };
        if let (Some(t), Some(parent)) = (&self.tracker, &parent) {
            close_parent(
                t.as_ref(),
                &parent.run_id,
                &report,
                self.cancel.is_cancelled(),
            )
            .await?;
        }
        Ok(report)
    }

    /// With [`only`](Self::only): the steps outside it that a selected step depends on, as
    /// reports made from their cache records (an exported workflow's pod reads its upstream
    /// outputs this way). A missing record, or one from another pipeline run, means the
    /// upstream pod has not run yet: [`Error::Unavailable`], so the pod is retried.
    async fn recorded_upstream(&self, pipeline: &Pipeline) -> Result<BTreeMap<String, StepReport>> {
        let mut reports = BTreeMap::new();
        let Some(only) = &self.only else {
            return Ok(reports);
        };
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
                    Error::unavailable(format!(
                        "upstream step {} of {} has not run yet (no cache record)",
                        def.name,
                        pipeline.name()
                    ))
                })?;
            if let Some(token) = &self.run_token
                && record.run_token.as_ref() != Some(token)
            {
                return Err(Error::unavailable(format!(
                    "upstream step {} of {} has not run in pipeline run {token} yet",
                    def.name,
                    pipeline.name()
                )));
            }
            let status = if record.bypassed {
                StepStatus::Bypassed
            } else {
                StepStatus::Cached
            };
            let mut r = StepReport::empty(&def.name, status);
            r.outputs = record.outputs;
            r.run_id = record.run_id;
            r.cache_key = Some(record.key);
            reports.insert(def.name.clone(), r);
        }
        Ok(reports)
    }

    /// What happens next to `def`, given the reports of the steps that have ended.
    fn next(&self, def: &StepDef, reports: &BTreeMap<String, StepReport>) -> Next {
        let deps = def.dependencies();
        let not_run = |status, reason: String| {
            let mut r = StepReport::empty(&def.name, status);
            r.reason = Some(reason);
            Next::NotRun(Box::new(r))
        };
        let failed = |error: Error| {
            let mut r = StepReport::empty(&def.name, StepStatus::Failed);
            r.error = Some(error);
            Next::NotRun(Box::new(r))
        };
        // An upstream step failed (or was skipped or cancelled): this one cannot run.
        if let Some(dep) = deps
            .iter()
            .find(|d| reports.get(**d).is_some_and(|r| !r.status.ok()))
        {
            let status = if self.cancel.is_cancelled() {
                StepStatus::Cancelled
            } else {
                StepStatus::Skipped
            };
            return not_run(status, format!("upstream step {dep} did not succeed"));
        }
        if !deps.iter().all(|d| reports.contains_key(*d)) {
            return Next::Wait;
        }
        // Not needed: an upstream step was bypassed, or the condition is false.
        if let Some(dep) = deps.iter().find(|d| {
            reports
                .get(**d)
                .is_some_and(|r| r.status == StepStatus::Bypassed)
        }) {
            return not_run(
                StepStatus::Bypassed,
                format!("upstream step {dep} was bypassed"),
            );
        }
        if let Some(c) = &def.condition {
            match c.holds(reports.get(&c.step).map(|r| &r.outputs)) {
                Ok(true) => {}
                Ok(false) => return not_run(StepStatus::Bypassed, format!("when {c} is false")),
                Err(e) => return failed(e),
            }
        }
        if self.cancel.is_cancelled() {
            return not_run(StepStatus::Cancelled, "the pipeline was cancelled".into());
        }
        match resolve_inputs(def, reports) {
            Ok(inputs) => Next::Ready(inputs),
            Err(e) => failed(e),
        }
    }

    /// Records a step that will not run: its `KILLED` child run and, in an exported workflow,
    /// the bypass record that pods downstream learn it from (as they learn outputs).
    async fn settle(
        &self,
        pipeline: &Pipeline,
        parent: Option<&ParentRun>,
        mut report: StepReport,
    ) -> Result<StepReport> {
        if let (Some(tracker), Some(parent)) = (&self.tracker, parent) {
            let needs = pipeline
                .get(&report.name)
                .map(StepDef::dependencies)
                .unwrap_or_default();
            report.run_id = Some(
                log_not_run(tracker.as_ref(), parent, pipeline.name(), &report, &needs).await?,
            );
        }
        if report.status == StepStatus::Bypassed && self.run_token.is_some() {
            let record = CacheRecord {
                key: String::new(),
                outputs: Outputs::new(),
                run_id: report.run_id.clone(),
                finished_ms: mlops_core::time::now_ms(),
                run_token: self.run_token.clone(),
                bypassed: true,
            };
            write_cache(self.store.as_ref(), pipeline.name(), &report.name, &record).await?;
        }
        Ok(report)
    }
}

/// The scheduler's verdict on a pending step.
enum Next {
    /// A dependency has not ended yet.
    Wait,
    /// It will not run: skipped, bypassed, cancelled, or failed before starting.
    NotRun(Box<StepReport>),
    /// Its dependencies succeeded; these are its inputs.
    Ready(Outputs),
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
