//! Local-first tracking: log to a fast, durable tracker on the caller's side and copy everything
//! to another tracker — typically an MLflow server — in the background, catching up after outages.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlops_core::tracker::{
    CreateRunOptions, LogBatch, SearchExperimentsOptions, SearchRunsOptions, Tracker, TrackerExt,
    UpdateRunOptions,
};
use mlops_core::tracking::{LifecycleStage, Param, Run, RunStatus, Tag, ViewType};
use mlops_core::{ExperimentId, MetricKey, Result, RunId};
use serde::Serialize;

use crate::lock;

/// The tag that names, on a replicated run, the run it copies.
pub const REPLICA_OF_TAG: &str = "mlops.replica_of";

#[derive(Debug, Default)]
struct RunCursor {
    remote: Option<RunId>,
    params: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    metrics: BTreeMap<MetricKey, usize>,
    status: Option<(RunStatus, Option<i64>)>,
    deleted: bool,
}

#[derive(Debug, Default)]
struct State {
    experiments: BTreeMap<ExperimentId, ExperimentId>,
    runs: BTreeMap<RunId, RunCursor>,
}

/// What one [`Replicator::sync_once`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Runs created on the target.
    pub runs_created: usize,
    /// Metric values sent.
    pub metric_values: usize,
    /// Params and tags sent.
    pub params_and_tags: usize,
}

/// Copies every experiment and run of `source` to `target`, incrementally.
///
/// Each call of [`sync_once`](Self::sync_once) sends only what changed since the last successful
/// one: runs not yet on the target (created there with the tag [`REPLICA_OF_TAG`]), new params,
/// changed tags, metric values past what was sent, status and end time, deletions. A failure
/// (the target is down) ends the call with the error and keeps the cursors at what was
/// acknowledged, so the next call resumes exactly there: nothing is lost, and nothing is sent twice
/// unless a request succeeded but its answer was lost.
///
/// The cursors live in memory: a restarted process re-copies runs (its target copies would then be
/// duplicated); keep one replicator per process for the process's lifetime.
#[derive(Debug, Clone)]
pub struct Replicator {
    source: Arc<dyn Tracker>,
    target: Arc<dyn Tracker>,
    state: Arc<Mutex<State>>,
    /// One sync at a time.
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Replicator {
    /// A replicator from `source` to `target`.
    pub fn new(source: Arc<dyn Tracker>, target: Arc<dyn Tracker>) -> Self {
        Self {
            source,
            target,
            state: Arc::new(Mutex::new(State::default())),
            running: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Starts syncing every `interval` in the background; failures are logged and retried.
    /// The task ends when the returned handle is aborted or dropped with the runtime.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.sync_once().await {
                    tracing::warn!(error = %e, "replication paused; retrying");
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Copies what changed since the last successful call.
    pub async fn sync_once(&self) -> Result<SyncReport> {
        let _one = self.running.lock().await;
        let mut report = SyncReport::default();
        let experiments = self
            .source
            .search_all_experiments(
                SearchExperimentsOptions::default().with_view_type(ViewType::All),
            )
            .await?;
        for e in experiments {
            let runs = self
                .source
                .search_all_runs(
                    SearchRunsOptions::default()
                        .in_experiment(e.experiment_id.clone())
                        .with_view_type(ViewType::All)
                        .with_max_results(mlops_core::tracker::limits::MAX_SEARCH_RUNS),
                )
                .await?;
            if runs.is_empty() {
                continue;
            }
            let known = lock(&self.state).experiments.get(&e.experiment_id).cloned();
            let target_exp = match known {
                Some(id) => id,
                None => {
                    let id = self.target.get_or_create_experiment(&e.name).await?;
                    lock(&self.state)
                        .experiments
                        .insert(e.experiment_id.clone(), id.clone());
                    id
                }
            };
            for run in runs {
                self.sync_run(&run, &target_exp, &mut report).await?;
            }
        }
        self.target.flush().await?;
        Ok(report)
    }

    async fn sync_run(
        &self,
        run: &Run,
        target_exp: &ExperimentId,
        report: &mut SyncReport,
    ) -> Result<()> {
        let id = run.info.run_id.clone();
        let remote = lock(&self.state)
            .runs
            .get(&id)
            .and_then(|c| c.remote.clone());
        let remote = match remote {
            Some(r) => r,
            None => {
                let created = self
                    .target
                    .create_run(
                        CreateRunOptions::default()
                            .in_experiment(target_exp.clone())
                            .with_name(run.info.run_name.clone())
                            .with_start_time(run.info.start_time)
                            .with_user(run.info.user_id.clone())
                            .with_tag(Tag::new(REPLICA_OF_TAG.parse()?, id.as_str())?),
                    )
                    .await?
                    .info
                    .run_id;
                lock(&self.state).runs.entry(id.clone()).or_default().remote =
                    Some(created.clone());
                report.runs_created += 1;
                created
            }
        };
        // Params and tags not yet sent (at most 100 each per batch).
        let (params, tags): (Vec<Param>, Vec<Tag>) = {
            let state = lock(&self.state);
            let cursor = state.runs.get(&id);
            let params = run
                .data
                .params
                .iter()
                .filter(|(k, _)| cursor.is_none_or(|c| !c.params.contains(k.as_str())))
                .map(|(k, v)| Param {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
            let tags = run
                .data
                .tags
                .iter()
                .filter(|(k, v)| cursor.is_none_or(|c| c.tags.get(k.as_str()) != Some(*v)))
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
            (params, tags)
        };
        for chunk in params.chunks(100) {
            let mut b = LogBatch::new();
            for p in chunk {
                b = b.param(p.clone());
            }
            self.target.log_batch(&remote, b).await?;
            let mut state = lock(&self.state);
            let c = state.runs.entry(id.clone()).or_default();
            c.params.extend(chunk.iter().map(|p| p.key.to_string()));
            report.params_and_tags += chunk.len();
        }
        for chunk in tags.chunks(100) {
            let mut b = LogBatch::new();
            for t in chunk {
                b = b.tag(t.clone());
            }
            self.target.log_batch(&remote, b).await?;
            let mut state = lock(&self.state);
            let c = state.runs.entry(id.clone()).or_default();
            c.tags
                .extend(chunk.iter().map(|t| (t.key.to_string(), t.value.clone())));
            report.params_and_tags += chunk.len();
        }
        // Metric values past the cursor, in batches of 1000.
        for key in run.data.metrics.keys() {
            let sent = lock(&self.state)
                .runs
                .get(&id)
                .and_then(|c| c.metrics.get(key).copied())
                .unwrap_or(0);
            let history = self.source.metric_history(&id, key).await?;
            for chunk in history.get(sent..).unwrap_or(&[]).chunks(1000) {
                let mut b = LogBatch::new();
                for m in chunk {
                    b = b.metric(m.clone());
                }
                self.target.log_batch(&remote, b).await?;
                let mut state = lock(&self.state);
                *state
                    .runs
                    .entry(id.clone())
                    .or_default()
                    .metrics
                    .entry(key.clone())
                    .or_default() += chunk.len();
                report.metric_values += chunk.len();
            }
        }
        let status = (run.info.status, run.info.end_time);
        let sent_status = lock(&self.state).runs.get(&id).and_then(|c| c.status);
        if sent_status != Some(status) && run.info.status != RunStatus::Running {
            let mut update = UpdateRunOptions::default().with_status(run.info.status);
            if let Some(end) = run.info.end_time {
                update = update.with_end_time(end);
            }
            self.target.update_run(&remote, update).await?;
            lock(&self.state).runs.entry(id.clone()).or_default().status = Some(status);
        }
        let deleted = run.info.lifecycle_stage == LifecycleStage::Deleted;
        let sent_deleted = lock(&self.state).runs.get(&id).is_some_and(|c| c.deleted);
        if deleted != sent_deleted {
            self.target
                .set_run_lifecycle(&remote, run.info.lifecycle_stage)
                .await?;
            lock(&self.state).runs.entry(id).or_default().deleted = deleted;
        }
        Ok(())
    }
}
