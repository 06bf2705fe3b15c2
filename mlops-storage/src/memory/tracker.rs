use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::page::Page;
use mlops_core::time::now_ms;
use mlops_core::tracker::{
    ArtifactInfo, CreateExperimentOptions, CreateRunOptions, LogBatch, PageOptions,
    SearchExperimentsOptions, SearchRunsOptions, Tracker, UpdateRunOptions,
};
use mlops_core::tracking::{DatasetInput, Experiment, LifecycleStage, Metric, Run, RunInfo, Tag};
use mlops_core::{
    ArtifactPath, Digest, Error, ExperimentId, ExperimentName, MetricKey, Result, RunId, TagKey,
};

use super::lock;
use crate::tracker_state::{Event, TrackerState, default_experiment, log_batch_event};

#[derive(Debug)]
struct State {
    tracking: TrackerState,
    /// Artifact content by digest.
    blobs: HashMap<Digest, Bytes>,
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

impl MemoryTracker {
    /// A tracker holding only MLflow's default experiment (`"0"`, named `Default`).
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                tracking: TrackerState::new(default_experiment("memory:/", now_ms())),
                blobs: HashMap::new(),
            }),
        }
    }

    fn apply(&self, event: Event) -> Result<()> {
        lock(&self.state).tracking.apply(&event)
    }

    fn read<T>(&self, f: impl FnOnce(&TrackerState) -> Result<T>) -> Result<T> {
        f(&lock(&self.state).tracking)
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
        let experiment = state.tracking.new_experiment(name, options, "memory:/")?;
        let id = experiment.experiment_id.clone();
        state.tracking.insert_experiment(experiment);
        Ok(id)
    }

    async fn get_experiment(&self, id: &ExperimentId) -> Result<Experiment> {
        self.read(|s| s.get_experiment(id))
    }

    async fn get_experiment_by_name(&self, name: &ExperimentName) -> Result<Experiment> {
        self.read(|s| s.get_experiment_by_name(name))
    }

    async fn search_experiments(
        &self,
        options: SearchExperimentsOptions,
    ) -> Result<Page<Experiment>> {
        self.read(|s| s.search_experiments(options))
    }

    async fn set_experiment_lifecycle(
        &self,
        id: &ExperimentId,
        stage: LifecycleStage,
    ) -> Result<()> {
        self.apply(Event::SetExperimentLifecycle {
            id: id.clone(),
            stage,
        })
    }

    async fn set_experiment_tag(&self, id: &ExperimentId, tag: Tag) -> Result<()> {
        self.apply(Event::SetExperimentTag {
            id: id.clone(),
            tag,
        })
    }

    async fn create_run(&self, options: CreateRunOptions) -> Result<Run> {
        let mut state = lock(&self.state);
        let run = state.tracking.new_run(options)?;
        state
            .tracking
            .apply(&Event::CreateRun { run: run.clone() })?;
        Ok(run)
    }

    async fn update_run(&self, run_id: &RunId, options: UpdateRunOptions) -> Result<RunInfo> {
        let mut state = lock(&self.state);
        state.tracking.apply(&Event::UpdateRun {
            run_id: run_id.clone(),
            status: options.status,
            end_time: options.end_time,
            run_name: options.run_name,
        })?;
        Ok(state.tracking.get_run(run_id)?.info)
    }

    async fn set_run_lifecycle(&self, run_id: &RunId, stage: LifecycleStage) -> Result<()> {
        self.apply(Event::SetRunLifecycle {
            run_id: run_id.clone(),
            stage,
        })
    }

    async fn log_batch(&self, run_id: &RunId, batch: LogBatch) -> Result<()> {
        self.apply(log_batch_event(run_id, batch)?)
    }

    async fn delete_run_tag(&self, run_id: &RunId, key: &TagKey) -> Result<()> {
        self.apply(Event::DeleteRunTag {
            run_id: run_id.clone(),
            key: key.clone(),
        })
    }

    async fn log_inputs(&self, run_id: &RunId, inputs: Vec<DatasetInput>) -> Result<()> {
        self.apply(Event::LogInputs {
            run_id: run_id.clone(),
            inputs,
        })
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Run> {
        self.read(|s| s.get_run(run_id))
    }

    async fn search_runs(&self, options: SearchRunsOptions) -> Result<Page<Run>> {
        self.read(|s| s.search_runs(options))
    }

    async fn get_metric_history(
        &self,
        run_id: &RunId,
        key: &MetricKey,
        options: PageOptions,
    ) -> Result<Page<Metric>> {
        self.read(|s| s.metric_history(run_id, key, options))
    }

    async fn put_artifact(
        &self,
        run_id: &RunId,
        path: &ArtifactPath,
        data: Bytes,
    ) -> Result<ArtifactInfo> {
        let info = ArtifactInfo {
            path: path.clone(),
            size: data.len() as u64,
            digest: Digest::of(&data),
        };
        let mut state = lock(&self.state);
        state.tracking.apply(&Event::PutArtifact {
            run_id: run_id.clone(),
            info: info.clone(),
        })?;
        state.blobs.insert(info.digest, data);
        Ok(info)
    }

    async fn get_artifact(&self, run_id: &RunId, path: &ArtifactPath) -> Result<Bytes> {
        let state = lock(&self.state);
        let info = state.tracking.artifact(run_id, path)?;
        state
            .blobs
            .get(&info.digest)
            .cloned()
            .ok_or_else(|| Error::not_found("artifact", format!("{path} of run {run_id}")))
    }

    async fn list_artifacts(
        &self,
        run_id: &RunId,
        prefix: Option<&ArtifactPath>,
    ) -> Result<Vec<ArtifactInfo>> {
        self.read(|s| s.list_artifacts(run_id, prefix))
    }

    async fn flush(&self) -> Result<()> {
        // Nothing is buffered: every call above completed its write before returning.
        Ok(())
    }
}
