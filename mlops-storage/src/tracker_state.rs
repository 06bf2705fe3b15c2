//! Experiment-tracking state and every tracker mutation on it, shared by [`MemoryTracker`] (this
//! state under a mutex) and [`StoreTracker`] (this state, rebuilt from and appended to an event
//! log in a store) so both have exactly MLflow's semantics.
//!
//! Mutations that must be replayed elsewhere are [`Event`]s: each carries everything needed to
//! apply it deterministically (generated ids, names and timestamps are decided before the event
//! is made).
//!
//! [`MemoryTracker`]: crate::MemoryTracker
//! [`StoreTracker`]: crate::StoreTracker

use std::collections::{BTreeMap, HashMap};

use mlops_core::page::Page;
use mlops_core::search::{SearchTarget, run_tiebreak, select, select_ref};
use mlops_core::time::now_ms;
use mlops_core::tracker::{
    ArtifactInfo, CreateExperimentOptions, CreateRunOptions, LogBatch, PageOptions,
    SearchExperimentsOptions, SearchRunsOptions, limits,
};
use mlops_core::tracking::{
    DatasetInput, Experiment, LifecycleStage, Metric, Param, Run, RunData, RunInfo, RunInputs,
    RunStatus, Tag, generate_run_name, tags,
};
use mlops_core::{
    ArtifactPath, Error, ExperimentId, ExperimentName, MetricKey, Result, RunId, TagKey,
};
use serde::{Deserialize, Serialize};

/// One replayable change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Event {
    SetExperimentLifecycle {
        id: ExperimentId,
        stage: LifecycleStage,
    },
    SetExperimentTag {
        id: ExperimentId,
        tag: Tag,
    },
    CreateRun {
        run: Run,
    },
    UpdateRun {
        run_id: RunId,
        status: Option<RunStatus>,
        end_time: Option<i64>,
        run_name: Option<String>,
    },
    SetRunLifecycle {
        run_id: RunId,
        stage: LifecycleStage,
    },
    LogBatch {
        run_id: RunId,
        metrics: Vec<Metric>,
        params: Vec<Param>,
        tags: Vec<Tag>,
    },
    DeleteRunTag {
        run_id: RunId,
        key: TagKey,
    },
    LogInputs {
        run_id: RunId,
        inputs: Vec<DatasetInput>,
    },
    PutArtifact {
        run_id: RunId,
        info: ArtifactInfo,
    },
}

impl Event {
    /// The run an event changes, if it changes one.
    pub(crate) fn run_id(&self) -> Option<&RunId> {
        match self {
            Self::SetExperimentLifecycle { .. } | Self::SetExperimentTag { .. } => None,
            Self::CreateRun { run } => Some(&run.info.run_id),
            Self::UpdateRun { run_id, .. }
            | Self::SetRunLifecycle { run_id, .. }
            | Self::LogBatch { run_id, .. }
            | Self::DeleteRunTag { run_id, .. }
            | Self::LogInputs { run_id, .. }
            | Self::PutArtifact { run_id, .. } => Some(run_id),
        }
    }
}

/// One logged value; the key is the history map's key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) value: f64,
    pub(crate) timestamp_ms: i64,
    pub(crate) step: i64,
}

/// Everything a [`TrackerState`] holds, as flat tables (for snapshots).
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub(crate) experiments: Vec<Experiment>,
    /// Runs with their latest metrics, params, tags and inputs.
    pub(crate) runs: Vec<Run>,
    /// Every metric value: run, key, point, in logging order per run and key.
    pub(crate) metrics: Vec<(RunId, MetricKey, Point)>,
    pub(crate) artifacts: Vec<(RunId, ArtifactInfo)>,
}

#[derive(Debug, Clone)]
struct RunState {
    run: Run,
    history: BTreeMap<MetricKey, Vec<Point>>,
    artifacts: BTreeMap<ArtifactPath, ArtifactInfo>,
}

/// Experiments and runs, with MLflow's rules.
#[derive(Debug, Clone)]
pub(crate) struct TrackerState {
    experiments: BTreeMap<ExperimentId, Experiment>,
    runs: HashMap<RunId, RunState>,
}

/// MLflow's default experiment, `"0"` named `Default`.
pub(crate) fn default_experiment(artifact_root: &str, creation_time: i64) -> Experiment {
    Experiment {
        experiment_id: ExperimentId::default_experiment(),
        name: ExperimentName::default_experiment(),
        artifact_location: format!("{artifact_root}/0"),
        lifecycle_stage: LifecycleStage::Active,
        creation_time,
        last_update_time: creation_time,
        tags: BTreeMap::new(),
    }
}

impl TrackerState {
    /// A state holding only the default experiment.
    pub(crate) fn new(default: Experiment) -> Self {
        Self {
            experiments: BTreeMap::from([(default.experiment_id.clone(), default)]),
            runs: HashMap::new(),
        }
    }

    fn run(&self, id: &RunId) -> Result<&RunState> {
        self.runs.get(id).ok_or_else(|| Error::not_found("run", id))
    }

    /// A run that may be written to: it exists and is not soft-deleted.
    fn active_run(&mut self, id: &RunId) -> Result<&mut RunState> {
        let r = self
            .runs
            .get_mut(id)
            .ok_or_else(|| Error::not_found("run", id))?;
        if r.run.info.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::invalid(
                "run",
                format!("run {id} is deleted; restore it before writing to it"),
            ));
        }
        Ok(r)
    }

    fn experiment_mut(&mut self, id: &ExperimentId) -> Result<&mut Experiment> {
        self.experiments
            .get_mut(id)
            .ok_or_else(|| Error::not_found("experiment", id))
    }

    // ----- experiments -----

    /// Fails with `AlreadyExists` when the name is taken (deleted experiments included).
    pub(crate) fn check_new_experiment_name(&self, name: &ExperimentName) -> Result<()> {
        if let Some(e) = self.experiments.values().find(|e| e.name == *name) {
            let note = match e.lifecycle_stage {
                LifecycleStage::Deleted => " (deleted; restore it or pick another name)",
                LifecycleStage::Active => "",
            };
            return Err(Error::already_exists("experiment", format!("{name}{note}")));
        }
        Ok(())
    }

    /// A new experiment with a fresh id (not yet inserted).
    pub(crate) fn new_experiment(
        &self,
        name: &ExperimentName,
        options: CreateExperimentOptions,
        artifact_root: &str,
    ) -> Result<Experiment> {
        self.check_new_experiment_name(name)?;
        let id = loop {
            let id = ExperimentId::generate();
            if !self.experiments.contains_key(&id) {
                break id;
            }
        };
        let now = now_ms();
        Ok(Experiment {
            artifact_location: options
                .artifact_location
                .unwrap_or_else(|| format!("{artifact_root}/{id}")),
            experiment_id: id,
            name: name.clone(),
            lifecycle_stage: LifecycleStage::Active,
            creation_time: now,
            last_update_time: now,
            tags: options.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        })
    }

    /// The whole state as tables.
    pub(crate) fn to_tables(&self) -> Tables {
        let mut t = Tables {
            experiments: self.experiments.values().cloned().collect(),
            ..Tables::default()
        };
        let mut ids: Vec<&RunId> = self.runs.keys().collect();
        ids.sort();
        for id in ids {
            let Some(r) = self.runs.get(id) else { continue };
            t.runs.push(r.run.clone());
            for (key, points) in &r.history {
                t.metrics
                    .extend(points.iter().map(|p| (id.clone(), key.clone(), *p)));
            }
            t.artifacts
                .extend(r.artifacts.values().map(|a| (id.clone(), a.clone())));
        }
        t
    }

    /// Adds what `tables` hold (runs already present are left as they are).
    pub(crate) fn load_tables(&mut self, tables: Tables) {
        for e in tables.experiments {
            self.insert_experiment(e);
        }
        let mut fresh = std::collections::HashSet::new();
        for run in tables.runs {
            if self.runs.contains_key(&run.info.run_id) {
                continue;
            }
            fresh.insert(run.info.run_id.clone());
            self.runs.insert(
                run.info.run_id.clone(),
                RunState {
                    run,
                    history: BTreeMap::new(),
                    artifacts: BTreeMap::new(),
                },
            );
        }
        for (id, key, point) in tables.metrics {
            if let Some(r) = self.runs.get_mut(&id).filter(|_| fresh.contains(&id)) {
                r.history.entry(key).or_default().push(point);
            }
        }
        for (id, info) in tables.artifacts {
            if let Some(r) = self.runs.get_mut(&id).filter(|_| fresh.contains(&id)) {
                r.artifacts.insert(info.path.clone(), info);
            }
        }
    }

    /// Adds an experiment (an existing id is left as it is).
    pub(crate) fn insert_experiment(&mut self, e: Experiment) {
        self.experiments.entry(e.experiment_id.clone()).or_insert(e);
    }

    pub(crate) fn experiment_count(&self) -> usize {
        self.experiments.len()
    }

    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }

    pub(crate) fn has_run(&self, id: &RunId) -> bool {
        self.runs.contains_key(id)
    }

    pub(crate) fn has_experiment(&self, id: &ExperimentId) -> bool {
        self.experiments.contains_key(id)
    }

    pub(crate) fn get_experiment(&self, id: &ExperimentId) -> Result<Experiment> {
        self.experiments
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found("experiment", id))
    }

    pub(crate) fn get_experiment_by_name(&self, name: &ExperimentName) -> Result<Experiment> {
        self.experiments
            .values()
            .find(|e| e.name == *name)
            .cloned()
            .ok_or_else(|| Error::not_found("experiment", name))
    }

    pub(crate) fn search_experiments(
        &self,
        options: SearchExperimentsOptions,
    ) -> Result<Page<Experiment>> {
        let candidates: Vec<Experiment> = self
            .experiments
            .values()
            .filter(|e| options.view_type.includes(e.lifecycle_stage))
            .cloned()
            .collect();
        select(
            SearchTarget::Experiments,
            candidates,
            options.filter.as_deref(),
            &options.order_by,
            |a: &Experiment, b: &Experiment| {
                b.creation_time
                    .cmp(&a.creation_time)
                    .then_with(|| a.experiment_id.cmp(&b.experiment_id))
            },
            options.max_results.unwrap_or(1000),
            options.page_token.as_deref(),
        )
    }

    // ----- runs -----

    /// A new run for `options` with a fresh id, name and start time (not yet inserted).
    pub(crate) fn new_run(&self, options: CreateRunOptions) -> Result<Run> {
        let experiment_id = options
            .experiment_id
            .unwrap_or_else(ExperimentId::default_experiment);
        let experiment = self
            .experiments
            .get(&experiment_id)
            .ok_or_else(|| Error::not_found("experiment", &experiment_id))?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::invalid(
                "experiment",
                format!("experiment {experiment_id} is deleted; runs cannot be created in it"),
            ));
        }
        if let Some(parent) = &options.parent_run_id {
            self.run(parent)?;
        }
        let mut run_tags: BTreeMap<TagKey, String> =
            options.tags.into_iter().map(|t| (t.key, t.value)).collect();
        let run_name = options
            .run_name
            .or_else(|| run_tags.get(tags::RUN_NAME).cloned())
            .unwrap_or_else(generate_run_name);
        run_tags.insert(TagKey::new(tags::RUN_NAME)?, run_name.clone());
        if let Some(parent) = &options.parent_run_id {
            run_tags.insert(TagKey::new(tags::PARENT_RUN_ID)?, parent.to_string());
        }
        let user_id = options
            .user_id
            .or_else(|| run_tags.get(tags::USER).cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        let run_id = loop {
            let id = RunId::generate();
            if !self.runs.contains_key(&id) {
                break id;
            }
        };
        Ok(Run {
            info: RunInfo {
                artifact_uri: format!("{}/{run_id}/artifacts", experiment.artifact_location),
                run_id,
                run_name,
                experiment_id,
                user_id,
                status: RunStatus::Running,
                start_time: options.start_time.unwrap_or_else(now_ms),
                end_time: None,
                lifecycle_stage: LifecycleStage::Active,
            },
            data: RunData {
                tags: run_tags,
                ..RunData::default()
            },
            inputs: RunInputs::default(),
        })
    }

    pub(crate) fn get_run(&self, run_id: &RunId) -> Result<Run> {
        Ok(self.run(run_id)?.run.clone())
    }

    pub(crate) fn search_runs(&self, options: SearchRunsOptions) -> Result<Page<Run>> {
        let max = options.max_results.unwrap_or(limits::DEFAULT_SEARCH_RUNS);
        if max > limits::MAX_SEARCH_RUNS {
            return Err(Error::invalid(
                "max_results",
                format!("{max} exceeds the limit of {}", limits::MAX_SEARCH_RUNS),
            ));
        }
        let candidates = self
            .runs
            .values()
            .map(|r| &r.run)
            .filter(|r| {
                options.experiment_ids.is_empty()
                    || options.experiment_ids.contains(&r.info.experiment_id)
            })
            .filter(|r| options.view_type.includes(r.info.lifecycle_stage));
        select_ref(
            SearchTarget::Runs,
            candidates,
            options.filter.as_deref(),
            &options.order_by,
            run_tiebreak,
            max,
            options.page_token.as_deref(),
        )
    }

    pub(crate) fn metric_history(
        &self,
        run_id: &RunId,
        key: &MetricKey,
        options: PageOptions,
    ) -> Result<Page<Metric>> {
        let points = self
            .run(run_id)?
            .history
            .get(key)
            .map_or(&[][..], Vec::as_slice);
        let page = Page::slice(
            points.iter().collect::<Vec<_>>(),
            options.page_token.as_deref(),
            options.max_results.unwrap_or(25_000),
        )?;
        Ok(page.map(|p| Metric {
            key: key.clone(),
            value: p.value,
            timestamp_ms: p.timestamp_ms,
            step: p.step,
        }))
    }

    pub(crate) fn artifact(&self, run_id: &RunId, path: &ArtifactPath) -> Result<ArtifactInfo> {
        self.run(run_id)?
            .artifacts
            .get(path)
            .cloned()
            .ok_or_else(|| Error::not_found("artifact", format!("{path} of run {run_id}")))
    }

    pub(crate) fn list_artifacts(
        &self,
        run_id: &RunId,
        prefix: Option<&ArtifactPath>,
    ) -> Result<Vec<ArtifactInfo>> {
        Ok(self
            .run(run_id)?
            .artifacts
            .iter()
            .filter(|(p, _)| {
                prefix.is_none_or(|pre| {
                    p.as_str() == pre.as_str()
                        || p.as_str()
                            .strip_prefix(pre.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                })
            })
            .map(|(_, info)| info.clone())
            .collect())
    }

    /// Applies one change. An invalid change is an error and changes nothing.
    pub(crate) fn apply(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::SetExperimentLifecycle { id, stage } => {
                let stage = *stage;
                if *id == ExperimentId::default_experiment() && stage == LifecycleStage::Deleted {
                    return Err(Error::invalid(
                        "experiment",
                        "the default experiment (id 0) cannot be deleted",
                    ));
                }
                let experiment = self.experiment_mut(id)?;
                experiment.lifecycle_stage = stage;
                experiment.last_update_time = now_ms();
                for r in self.runs.values_mut() {
                    if r.run.info.experiment_id == *id {
                        r.run.info.lifecycle_stage = stage;
                    }
                }
            }
            Event::SetExperimentTag { id, tag } => {
                let experiment = self.experiment_mut(id)?;
                experiment.tags.insert(tag.key.clone(), tag.value.clone());
                experiment.last_update_time = now_ms();
            }
            Event::CreateRun { run } => {
                let experiment = self.experiment_mut(&run.info.experiment_id)?;
                if experiment.lifecycle_stage != LifecycleStage::Active {
                    return Err(Error::invalid(
                        "experiment",
                        format!(
                            "experiment {} is deleted; runs cannot be created in it",
                            run.info.experiment_id
                        ),
                    ));
                }
                if self.runs.contains_key(&run.info.run_id) {
                    return Err(Error::already_exists("run", &run.info.run_id));
                }
                self.runs.insert(
                    run.info.run_id.clone(),
                    RunState {
                        run: run.clone(),
                        history: BTreeMap::new(),
                        artifacts: BTreeMap::new(),
                    },
                );
            }
            Event::UpdateRun {
                run_id,
                status,
                end_time,
                run_name,
            } => {
                let r = self.active_run(run_id)?;
                if let Some(status) = status {
                    r.run.info.status = *status;
                }
                if let Some(end) = end_time {
                    r.run.info.end_time = Some(*end);
                }
                if let Some(name) = run_name {
                    r.run
                        .data
                        .tags
                        .insert(TagKey::new(tags::RUN_NAME)?, name.clone());
                    r.run.info.run_name = name.clone();
                }
            }
            Event::SetRunLifecycle { run_id, stage } => {
                let r = self
                    .runs
                    .get_mut(run_id)
                    .ok_or_else(|| Error::not_found("run", run_id))?;
                r.run.info.lifecycle_stage = *stage;
            }
            Event::LogBatch {
                run_id,
                metrics,
                params,
                tags: batch_tags,
            } => {
                let r = self.active_run(run_id)?;
                // Validate the whole batch before writing anything: an invalid batch changes nothing.
                let mut incoming: BTreeMap<&str, &str> = BTreeMap::new();
                for p in params {
                    if let Some(prev) = incoming.insert(p.key.as_str(), &p.value)
                        && prev != p.value
                    {
                        return Err(Error::invalid(
                            "param",
                            format!("the batch logs param {} twice with different values", p.key),
                        ));
                    }
                    if let Some(existing) = r.run.data.params.get(&p.key)
                        && *existing != p.value
                    {
                        return Err(Error::invalid(
                            "param",
                            format!(
                                "param {} of run {run_id} is already {existing:?}; params are write-once, cannot change it to {:?}",
                                p.key, p.value
                            ),
                        ));
                    }
                }
                for m in metrics {
                    // Steady state allocates nothing: the key is cloned only the first time.
                    match r.run.data.metrics.get_mut(&m.key) {
                        Some(latest) if m.latest_order(latest).is_ge() => {
                            latest.value = m.value;
                            latest.timestamp_ms = m.timestamp_ms;
                            latest.step = m.step;
                        }
                        Some(_) => {}
                        None => {
                            r.run.data.metrics.insert(m.key.clone(), m.clone());
                        }
                    }
                    let point = Point {
                        value: m.value,
                        timestamp_ms: m.timestamp_ms,
                        step: m.step,
                    };
                    match r.history.get_mut(&m.key) {
                        Some(h) => h.push(point),
                        None => {
                            r.history.insert(m.key.clone(), vec![point]);
                        }
                    }
                }
                for p in params {
                    r.run.data.params.insert(p.key.clone(), p.value.clone());
                }
                for t in batch_tags {
                    if t.key.as_str() == tags::RUN_NAME {
                        r.run.info.run_name = t.value.clone();
                    }
                    r.run.data.tags.insert(t.key.clone(), t.value.clone());
                }
            }
            Event::DeleteRunTag { run_id, key } => {
                let r = self.active_run(run_id)?;
                r.run
                    .data
                    .tags
                    .remove(key)
                    .ok_or_else(|| Error::not_found("tag", format!("{key} on run {run_id}")))?;
            }
            Event::LogInputs { run_id, inputs } => {
                let r = self.active_run(run_id)?;
                for input in inputs {
                    if !r.run.inputs.dataset_inputs.contains(input) {
                        r.run.inputs.dataset_inputs.push(input.clone());
                    }
                }
            }
            Event::PutArtifact { run_id, info } => {
                let r = self.active_run(run_id)?;
                r.artifacts.insert(info.path.clone(), info.clone());
            }
        }
        Ok(())
    }
}

/// The event for a `log_batch` call, after checking MLflow's limits.
pub(crate) fn log_batch_event(run_id: &RunId, batch: LogBatch) -> Result<Event> {
    batch.check_limits()?;
    Ok(Event::LogBatch {
        run_id: run_id.clone(),
        metrics: batch.metrics,
        params: batch.params,
        tags: batch.tags,
    })
}
