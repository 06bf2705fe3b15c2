use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::page::Page;
use mlops_core::search::{SearchTarget, run_tiebreak, select};
use mlops_core::time::now_ms;
use mlops_core::tracker::{
    ArtifactInfo, CreateExperimentOptions, CreateRunOptions, LogBatch, PageOptions,
    SearchExperimentsOptions, SearchRunsOptions, Tracker, UpdateRunOptions, limits,
};
use mlops_core::tracking::{
    DatasetInput, Experiment, LifecycleStage, Metric, Run, RunData, RunInfo, RunInputs, RunStatus,
    Tag, generate_run_name, tags,
};
use mlops_core::{
    ArtifactPath, Digest, Error, ExperimentId, ExperimentName, MetricKey, RunId, TagKey,
};

use super::lock;

#[derive(Debug)]
struct RunState {
    run: Run,
    history: BTreeMap<MetricKey, Vec<Metric>>,
    artifacts: BTreeMap<ArtifactPath, (Bytes, Digest)>,
}

#[derive(Debug)]
struct State {
    experiments: BTreeMap<ExperimentId, Experiment>,
    runs: HashMap<RunId, RunState>,
}

/// A [`Tracker`] in memory, with MLflow's semantics: the reference for durable trackers.
#[derive(Debug)]
pub struct MemoryTracker {
    state: Mutex<State>,
}

impl Default for MemoryTracker {
    fn default() -> Self {
        Self::new()
    }
}

type Result<T> = mlops_core::Result<T>;

impl MemoryTracker {
    /// A tracker holding only MLflow's default experiment (`"0"`, named `Default`).
    pub fn new() -> Self {
        let now = now_ms();
        let default_id = ExperimentId::default_experiment();
        let mut experiments = BTreeMap::new();
        let name = ExperimentName::default_experiment();
        experiments.insert(
            default_id.clone(),
            Experiment {
                experiment_id: default_id,
                name,
                artifact_location: "memory://0".into(),
                lifecycle_stage: LifecycleStage::Active,
                creation_time: now,
                last_update_time: now,
                tags: BTreeMap::new(),
            },
        );
        Self {
            state: Mutex::new(State {
                experiments,
                runs: HashMap::new(),
            }),
        }
    }
}

impl State {
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
}

#[async_trait]
impl Tracker for MemoryTracker {
    async fn create_experiment(
        &self,
        name: &ExperimentName,
        options: CreateExperimentOptions,
    ) -> Result<ExperimentId> {
        let mut state = lock(&self.state);
        if let Some(e) = state.experiments.values().find(|e| e.name == *name) {
            let note = match e.lifecycle_stage {
                LifecycleStage::Deleted => " (deleted; restore it or pick another name)",
                LifecycleStage::Active => "",
            };
            return Err(Error::already_exists("experiment", format!("{name}{note}")));
        }
        let id = loop {
            let id = ExperimentId::generate();
            if !state.experiments.contains_key(&id) {
                break id;
            }
        };
        let now = now_ms();
        let experiment = Experiment {
            experiment_id: id.clone(),
            name: name.clone(),
            artifact_location: options
                .artifact_location
                .unwrap_or_else(|| format!("memory://{id}")),
            lifecycle_stage: LifecycleStage::Active,
            creation_time: now,
            last_update_time: now,
            tags: options.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        };
        state.experiments.insert(id.clone(), experiment);
        Ok(id)
    }

    async fn get_experiment(&self, id: &ExperimentId) -> Result<Experiment> {
        lock(&self.state)
            .experiments
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found("experiment", id))
    }

    async fn get_experiment_by_name(&self, name: &ExperimentName) -> Result<Experiment> {
        lock(&self.state)
            .experiments
            .values()
            .find(|e| e.name == *name)
            .cloned()
            .ok_or_else(|| Error::not_found("experiment", name))
    }

    async fn search_experiments(
        &self,
        options: SearchExperimentsOptions,
    ) -> Result<Page<Experiment>> {
        let candidates: Vec<Experiment> = lock(&self.state)
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

    async fn set_experiment_lifecycle(
        &self,
        id: &ExperimentId,
        stage: LifecycleStage,
    ) -> Result<()> {
        if *id == ExperimentId::default_experiment() && stage == LifecycleStage::Deleted {
            return Err(Error::invalid(
                "experiment",
                "the default experiment (id 0) cannot be deleted",
            ));
        }
        let mut state = lock(&self.state);
        let experiment = state.experiment_mut(id)?;
        experiment.lifecycle_stage = stage;
        experiment.last_update_time = now_ms();
        for r in state.runs.values_mut() {
            if r.run.info.experiment_id == *id {
                r.run.info.lifecycle_stage = stage;
            }
        }
        Ok(())
    }

    async fn set_experiment_tag(&self, id: &ExperimentId, tag: Tag) -> Result<()> {
        let mut state = lock(&self.state);
        let experiment = state.experiment_mut(id)?;
        experiment.tags.insert(tag.key, tag.value);
        experiment.last_update_time = now_ms();
        Ok(())
    }

    async fn create_run(&self, options: CreateRunOptions) -> Result<Run> {
        let mut state = lock(&self.state);
        let experiment_id = options
            .experiment_id
            .unwrap_or_else(ExperimentId::default_experiment);
        let experiment = state
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
            state.run(parent)?;
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
            if !state.runs.contains_key(&id) {
                break id;
            }
        };
        let run = Run {
            info: RunInfo {
                artifact_uri: format!("{}/{run_id}/artifacts", experiment.artifact_location),
                run_id: run_id.clone(),
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
        };
        state.runs.insert(
            run_id,
            RunState {
                run: run.clone(),
                history: BTreeMap::new(),
                artifacts: BTreeMap::new(),
            },
        );
        Ok(run)
    }

    async fn update_run(&self, run_id: &RunId, options: UpdateRunOptions) -> Result<RunInfo> {
        let mut state = lock(&self.state);
        let r = state.active_run(run_id)?;
        if let Some(status) = options.status {
            r.run.info.status = status;
        }
        if let Some(end) = options.end_time {
            r.run.info.end_time = Some(end);
        }
        if let Some(name) = options.run_name {
            r.run
                .data
                .tags
                .insert(TagKey::new(tags::RUN_NAME)?, name.clone());
            r.run.info.run_name = name;
        }
        Ok(r.run.info.clone())
    }

    async fn set_run_lifecycle(&self, run_id: &RunId, stage: LifecycleStage) -> Result<()> {
        let mut state = lock(&self.state);
        let r = state
            .runs
            .get_mut(run_id)
            .ok_or_else(|| Error::not_found("run", run_id))?;
        r.run.info.lifecycle_stage = stage;
        Ok(())
    }

    async fn log_batch(&self, run_id: &RunId, batch: LogBatch) -> Result<()> {
        batch.check_limits()?;
        let mut state = lock(&self.state);
        let r = state.active_run(run_id)?;
        // Validate the whole batch before writing anything: an invalid batch changes nothing.
        let mut incoming: BTreeMap<&str, &str> = BTreeMap::new();
        for p in &batch.params {
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
        for m in batch.metrics {
            let latest = r.run.data.metrics.get(&m.key);
            if latest.is_none_or(|l| m.latest_order(l).is_ge()) {
                r.run.data.metrics.insert(m.key.clone(), m.clone());
            }
            r.history.entry(m.key.clone()).or_default().push(m);
        }
        for p in batch.params {
            r.run.data.params.insert(p.key, p.value);
        }
        for t in batch.tags {
            if t.key.as_str() == tags::RUN_NAME {
                r.run.info.run_name = t.value.clone();
            }
            r.run.data.tags.insert(t.key, t.value);
        }
        Ok(())
    }

    async fn delete_run_tag(&self, run_id: &RunId, key: &TagKey) -> Result<()> {
        let mut state = lock(&self.state);
        let r = state.active_run(run_id)?;
        r.run
            .data
            .tags
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| Error::not_found("tag", format!("{key} on run {run_id}")))
    }

    async fn log_inputs(&self, run_id: &RunId, inputs: Vec<DatasetInput>) -> Result<()> {
        let mut state = lock(&self.state);
        let r = state.active_run(run_id)?;
        for input in inputs {
            if !r.run.inputs.dataset_inputs.contains(&input) {
                r.run.inputs.dataset_inputs.push(input);
            }
        }
        Ok(())
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Run> {
        Ok(lock(&self.state).run(run_id)?.run.clone())
    }

    async fn search_runs(&self, options: SearchRunsOptions) -> Result<Page<Run>> {
        let max = options.max_results.unwrap_or(limits::DEFAULT_SEARCH_RUNS);
        if max > limits::MAX_SEARCH_RUNS {
            return Err(Error::invalid(
                "max_results",
                format!("{max} exceeds the limit of {}", limits::MAX_SEARCH_RUNS),
            ));
        }
        let candidates: Vec<Run> = {
            let state = lock(&self.state);
            state
                .runs
                .values()
                .map(|r| &r.run)
                .filter(|r| {
                    options.experiment_ids.is_empty()
                        || options.experiment_ids.contains(&r.info.experiment_id)
                })
                .filter(|r| options.view_type.includes(r.info.lifecycle_stage))
                .cloned()
                .collect()
        };
        select(
            SearchTarget::Runs,
            candidates,
            options.filter.as_deref(),
            &options.order_by,
            run_tiebreak,
            max,
            options.page_token.as_deref(),
        )
    }

    async fn get_metric_history(
        &self,
        run_id: &RunId,
        key: &MetricKey,
        options: PageOptions,
    ) -> Result<Page<Metric>> {
        let history = lock(&self.state)
            .run(run_id)?
            .history
            .get(key)
            .cloned()
            .unwrap_or_default();
        Page::slice(
            history,
            options.page_token.as_deref(),
            options.max_results.unwrap_or(25_000),
        )
    }

    async fn put_artifact(
        &self,
        run_id: &RunId,
        path: &ArtifactPath,
        data: Bytes,
    ) -> Result<ArtifactInfo> {
        let digest = Digest::of(&data);
        let info = ArtifactInfo {
            path: path.clone(),
            size: data.len() as u64,
            digest,
        };
        let mut state = lock(&self.state);
        let r = state.active_run(run_id)?;
        r.artifacts.insert(path.clone(), (data, digest));
        Ok(info)
    }

    async fn get_artifact(&self, run_id: &RunId, path: &ArtifactPath) -> Result<Bytes> {
        let state = lock(&self.state);
        state
            .run(run_id)?
            .artifacts
            .get(path)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| Error::not_found("artifact", format!("{path} of run {run_id}")))
    }

    async fn list_artifacts(
        &self,
        run_id: &RunId,
        prefix: Option<&ArtifactPath>,
    ) -> Result<Vec<ArtifactInfo>> {
        let state = lock(&self.state);
        Ok(state
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
            .map(|(p, (b, d))| ArtifactInfo {
                path: p.clone(),
                size: b.len() as u64,
                digest: *d,
            })
            .collect())
    }

    async fn flush(&self) -> Result<()> {
        // Nothing is buffered: every call above completed its write before returning.
        Ok(())
    }
}
