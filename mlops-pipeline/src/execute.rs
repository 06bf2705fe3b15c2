//! One step's execution: its cache check, its attempts (retries with backoff, timeouts,
//! cancellation), the resources it used, its cache record and its tracked run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use mlops_core::{CancelToken, Error, Result, RunId, Store, Tracker};

use crate::cache::{CacheRecord, cache_key, read_cache, write_cache};
use crate::pipeline::StepDef;
use crate::report::{StepReport, StepStatus};
use crate::resources::{RateCard, RssSampler};
use crate::step::{Outputs, StepContext};
use crate::tracking::{ParentRun, log_step, open_child};

/// One step's execution, owning what it needs (it runs as its own task).
pub(crate) struct StepJob {
    pub(crate) def: StepDef,
    pub(crate) pipeline: String,
    pub(crate) inputs: Outputs,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tracking: Option<(Arc<dyn Tracker>, ParentRun)>,
    pub(crate) forced: bool,
    pub(crate) rate_card: RateCard,
    pub(crate) cancel: CancelToken,
    pub(crate) run_token: Option<String>,
    pub(crate) overlap: Arc<Overlap>,
}

/// Tells whether a step ran alone: then the process's CPU time over the step is the step's.
#[derive(Debug, Default)]
pub(crate) struct Overlap {
    active: AtomicUsize,
    starts: AtomicU64,
}

impl Overlap {
    /// Marks a start; returns what `leave` needs.
    fn enter(&self) -> (usize, u64) {
        let before = self.active.fetch_add(1, SeqCst);
        let start = self.starts.fetch_add(1, SeqCst) + 1;
        (before, start)
    }

    /// Marks the end; whether no other step ran at any time in between.
    fn leave(&self, (before, start): (usize, u64)) -> bool {
        self.active.fetch_sub(1, SeqCst);
        before == 0 && self.starts.load(SeqCst) == start
    }
}

impl StepJob {
    /// Serves the step from its cache record or executes it; records, prices and tracks the
    /// result. Step failures are in the report; a store or tracker failure is an error.
    pub(crate) async fn run(self) -> Result<StepReport> {
        let key = cache_key(&self.def, &self.inputs).to_hex();
        let run_id = match &self.tracking {
            Some((tracker, parent)) => {
                Some(open_child(tracker.as_ref(), parent, &self.pipeline, &self.def.name).await?)
            }
            None => None,
        };
        let mut report = StepReport::empty(&self.def.name, StepStatus::Failed);
        report.cache_key = Some(key.clone());
        report.run_id = run_id.clone();

        if let Some(mut record) = self.cached(&key, run_id.clone()).await? {
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
                    key,
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
        if let (Some((tracker, _)), Some(run)) = (&self.tracking, &run_id) {
            log_step(tracker.as_ref(), run, &self.def, &report).await?;
        }
        Ok(report)
    }

    /// `dvc repro`: the record of the last successful run, when its key is this run's and the
    /// step says its outputs still exist.
    async fn cached(&self, key: &str, run_id: Option<RunId>) -> Result<Option<CacheRecord>> {
        if !self.def.cache || self.forced {
            return Ok(None);
        }
        match read_cache(self.store.as_ref(), &self.pipeline, &self.def.name).await? {
            Some(record) if record.key == key && !record.bypassed => {
                let ctx = self.context(CancelToken::new(), 0, run_id);
                let exist = self.def.step.outputs_exist(&ctx, &record.outputs).await?;
                Ok(exist.then_some(record))
            }
            _ => Ok(None),
        }
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

    /// One attempt, bounded by the step's timeout (whose expiry fires the attempt's token).
    async fn attempt(&self, ctx: Arc<StepContext>, token: &CancelToken) -> Result<Outputs> {
        let Some(limit) = self.def.timeout else {
            return self.def.step.run(ctx).await;
        };
        match tokio::time::timeout(limit, self.def.step.run(ctx)).await {
            Ok(result) => result,
            Err(_) => {
                token.cancel();
                Err(Error::timed_out(format!("step {}", self.def.name), limit))
            }
        }
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
            let result = self.attempt(ctx.clone(), &token).await;
            watch.abort();
            cpu += ctx.cpu_seconds();
            report.usage.gpu_seconds +=
                f64::from(ctx.gpus()) * attempt_started.elapsed().as_secs_f64();
            match result {
                Ok(outputs) => {
                    report.status = StepStatus::Succeeded;
                    report.outputs = outputs;
                    report.error = None;
                    break;
                }
                Err(e) => {
                    let retry = attempt <= self.def.retries && e.is_transient();
                    let wait = self
                        .def
                        .backoff
                        .saturating_mul(1u32 << (attempt - 1).min(16));
                    if retry && !self.cancel.is_cancelled() {
                        tracing::warn!(step = %self.def.name, attempt, error = %e, "retrying in {wait:?}");
                    }
                    report.error = Some(e);
                    if self.cancel.is_cancelled() {
                        report.status = StepStatus::Cancelled;
                        break;
                    }
                    report.status = StepStatus::Failed;
                    if !retry {
                        break;
                    }
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
}
