#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The DAG runner: caching that counts executions, parallelism, failure propagation, retries,
//! timeouts, cancellation, tracked runs with costs, and running one step from upstream records.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mlops_core::tracker::SearchRunsOptions;
use mlops_core::{CancelToken, Error, RunStatus, Store, Tracker, TrackerExt};
use mlops_pipeline::{
    BlockingStep, FnStep, Output, Outputs, Pipeline, RateCard, Runner, StepDef, StepStatus,
};
use mlops_storage::{ObjectStoreStore, StoreTracker, StoreTrackerOptions};
use serde_json::json;

fn store() -> Arc<dyn Store> {
    Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap())
}

/// A step that counts its executions and answers `{"value": f(params, inputs)}`.
fn counted(counter: Arc<AtomicUsize>) -> FnStep {
    FnStep::new(move |ctx| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut sum: i64 = ctx.param("add")?.unwrap_or(0);
            for input in ctx.inputs.values() {
                sum += input.value["value"].as_i64().unwrap_or(0);
            }
            Ok(Outputs::from([(
                "out".to_owned(),
                Output::value(json!({ "value": sum })),
            )]))
        }
    })
}

struct Counters {
    prep: Arc<AtomicUsize>,
    train: Arc<AtomicUsize>,
    report: Arc<AtomicUsize>,
}

impl Counters {
    fn new() -> Self {
        Self {
            prep: Arc::default(),
            train: Arc::default(),
            report: Arc::default(),
        }
    }

    fn counts(&self) -> [usize; 3] {
        [&self.prep, &self.train, &self.report].map(|c| c.load(Ordering::SeqCst))
    }

    /// prep → train → report, with the given versions and params.
    fn pipeline(&self, prep_code: &str, prep_add: i64, train_add: i64) -> Pipeline {
        Pipeline::new("demo")
            .step(
                StepDef::new("prep", counted(self.prep.clone()))
                    .params(json!({ "add": prep_add }))
                    .code_version(prep_code),
            )
            .step(
                StepDef::new("train", counted(self.train.clone()))
                    .input("data", "prep", "out")
                    .params(json!({ "add": train_add })),
            )
            .step(
                StepDef::new("report", counted(self.report.clone())).input("model", "train", "out"),
            )
    }
}

#[tokio::test]
async fn caching_skips_what_is_unchanged_like_dvc_repro() {
    let store = store();
    let c = Counters::new();
    let runner = Runner::new(store.clone());

    let r = runner.run(&c.pipeline("v1", 1, 10)).await.unwrap();
    assert!(r.succeeded());
    assert_eq!(c.counts(), [1, 1, 1]);
    assert_eq!(r.step("report").unwrap().outputs["out"].value["value"], 11);

    // Nothing changed: nothing runs.
    let r = runner.run(&c.pipeline("v1", 1, 10)).await.unwrap();
    assert_eq!(c.counts(), [1, 1, 1]);
    assert!(r.executed().is_empty());
    assert!(r.steps.iter().all(|s| s.status == StepStatus::Cached));
    assert_eq!(r.step("report").unwrap().outputs["out"].value["value"], 11);

    // train's params change: train runs; its output changes, so report runs.
    runner.run(&c.pipeline("v1", 1, 20)).await.unwrap();
    assert_eq!(c.counts(), [1, 2, 2]);

    // prep's code version changes but its output does not: only prep runs.
    let r = runner.run(&c.pipeline("v2", 1, 20)).await.unwrap();
    assert_eq!(c.counts(), [2, 2, 2]);
    assert_eq!(r.executed(), ["prep"]);

    // --force re-runs everything; force_steps just the named ones.
    Runner::new(store.clone())
        .force(true)
        .run(&c.pipeline("v2", 1, 20))
        .await
        .unwrap();
    assert_eq!(c.counts(), [3, 3, 3]);
    Runner::new(store.clone())
        .force_steps(["train".to_owned()])
        .run(&c.pipeline("v2", 1, 20))
        .await
        .unwrap();
    assert_eq!(c.counts(), [3, 4, 3]);
}

/// A step whose outputs vanish: `outputs_exist` says no, so it re-runs.
#[derive(Debug)]
struct Vanishing(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl mlops_pipeline::Step for Vanishing {
    async fn run(&self, _ctx: Arc<mlops_pipeline::StepContext>) -> mlops_core::Result<Outputs> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Outputs::from([(
            "file".to_owned(),
            Output::value(json!("/tmp/gone")),
        )]))
    }

    async fn outputs_exist(
        &self,
        _ctx: &mlops_pipeline::StepContext,
        _o: &Outputs,
    ) -> mlops_core::Result<bool> {
        Ok(false)
    }
}

#[tokio::test]
async fn missing_outputs_and_uncached_steps_rerun() {
    let store = store();
    let n = Arc::new(AtomicUsize::new(0));
    let m = Arc::new(AtomicUsize::new(0));
    let p = Pipeline::new("p")
        .step(StepDef::new("gone", Vanishing(n.clone())))
        .step(StepDef::new("live", counted(m.clone())).no_cache());
    let runner = Runner::new(store);
    runner.run(&p).await.unwrap();
    runner.run(&p).await.unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);
    assert_eq!(m.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn independent_steps_run_at_the_same_time() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let sleeper = || {
        let (running, peak) = (running.clone(), peak.clone());
        FnStep::new(move |_| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(Outputs::new())
            }
        })
    };
    let p = Pipeline::new("fan")
        .step(StepDef::new("a", sleeper()))
        .step(StepDef::new("b", sleeper()))
        .step(StepDef::new("c", sleeper()))
        .step(
            StepDef::new("join", sleeper())
                .after("a")
                .after("b")
                .after("c"),
        );
    let t = Instant::now();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let r = Runner::new(store())
        .max_parallel(3)
        .observer(Arc::new(move |e: &mlops_pipeline::StepEvent<'_>| {
            seen.lock().unwrap().push(match e {
                mlops_pipeline::StepEvent::Started(s) => format!("start {s}"),
                mlops_pipeline::StepEvent::Finished(r) => format!("end {}", r.name),
            })
        }))
        .run(&p)
        .await
        .unwrap();
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 8, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("end join"));
    assert!(r.succeeded());
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert!(
        t.elapsed() < Duration::from_millis(1100),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_failed_step_stops_its_dependants_and_is_named() {
    let ok = Arc::new(AtomicUsize::new(0));
    let p = Pipeline::new("p")
        .step(StepDef::new("a", counted(ok.clone())))
        .step(
            StepDef::new(
                "b",
                FnStep::new(|_| async { Err(Error::invalid("data", "column age is empty")) }),
            )
            .after("a")
            .retries(3, Duration::from_millis(1)),
        )
        .step(StepDef::new("c", counted(ok.clone())).after("b"))
        .step(StepDef::new("d", counted(ok.clone())));
    let r = Runner::new(store()).run(&p).await.unwrap();
    assert!(!r.succeeded());
    let b = r.step("b").unwrap();
    assert_eq!(b.status, StepStatus::Failed);
    assert_eq!(b.attempts, 1, "invalid input is not retried");
    assert_eq!(r.step("c").unwrap().status, StepStatus::Skipped);
    assert!(
        r.step("c")
            .unwrap()
            .reason
            .as_ref()
            .unwrap()
            .contains("upstream step b")
    );
    assert_eq!(r.step("d").unwrap().status, StepStatus::Succeeded);
    assert_eq!(ok.load(Ordering::SeqCst), 2);
    assert_eq!(r.failed().map(|s| s.name.as_str()), Some("b"));
    // The pipeline answers the step's own error: bad data, not an outage to retry.
    let e = r.into_result().unwrap_err();
    assert!(e.is_invalid_argument() && !e.is_transient(), "{e:?}");
    assert_eq!(e.to_string(), "invalid data: column age is empty");

    // Reading an output that does not exist fails the reader, naming both.
    let p = Pipeline::new("p")
        .step(StepDef::new("a", counted(ok.clone())))
        .step(StepDef::new("b", counted(ok.clone())).input("x", "a", "nope"));
    let r = Runner::new(store()).run(&p).await.unwrap();
    assert!(
        r.step("b")
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .to_string()
            .contains("a has no output \"nope\"")
    );
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    let tries = Arc::new(AtomicUsize::new(0));
    let t2 = tries.clone();
    let flaky = FnStep::new(move |ctx| {
        let tries = t2.clone();
        async move {
            tries.fetch_add(1, Ordering::SeqCst);
            if ctx.attempt < 3 {
                return Err(Error::unavailable("s3 is down"));
            }
            Ok(Outputs::new())
        }
    });
    let p =
        Pipeline::new("p").step(StepDef::new("flaky", flaky).retries(3, Duration::from_millis(20)));
    let t = Instant::now();
    let r = Runner::new(store()).run(&p).await.unwrap();
    let s = r.step("flaky").unwrap();
    assert_eq!((s.status, s.attempts), (StepStatus::Succeeded, 3));
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert!(
        t.elapsed() >= Duration::from_millis(60),
        "20 ms then 40 ms of backoff"
    );
}

#[tokio::test]
async fn timeouts_and_cancellation_stop_steps() {
    // A blocking step that checks its token stops when its attempt times out.
    let spun = Arc::new(AtomicUsize::new(0));
    let s2 = spun.clone();
    let spin = BlockingStep::new(move |ctx| {
        while !ctx.cancel.is_cancelled() {
            s2.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
        }
        ctx.check_cancelled().map(|()| Outputs::new())
    });
    let p = Pipeline::new("p").step(StepDef::new("spin", spin).timeout(Duration::from_millis(100)));
    let r = Runner::new(store()).run(&p).await.unwrap();
    let s = r.step("spin").unwrap();
    assert_eq!(s.status, StepStatus::Failed);
    assert!(
        s.error
            .as_ref()
            .is_some_and(|e| e.is_timeout() && e.to_string().contains("timed out after 100ms")),
        "{:?}",
        s.error
    );

    // Cancelling the pipeline: the running step is asked to stop, later steps do not start.
    let token = CancelToken::new();
    let t2 = token.clone();
    let p = Pipeline::new("p")
        .step(StepDef::new(
            "first",
            FnStep::new(move |ctx| {
                let token = t2.clone();
                async move {
                    token.cancel();
                    while !ctx.cancel.is_cancelled() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    ctx.check_cancelled().map(|()| Outputs::new())
                }
            }),
        ))
        .step(StepDef::new("second", counted(Arc::default())).after("first"));
    let r = Runner::new(store())
        .cancel_token(token)
        .run(&p)
        .await
        .unwrap();
    assert_eq!(r.step("first").unwrap().status, StepStatus::Cancelled);
    assert_eq!(r.step("second").unwrap().status, StepStatus::Cancelled);
    assert!(
        r.into_result()
            .unwrap_err()
            .to_string()
            .contains("cancelled")
    );
}

#[tokio::test]
async fn pipeline_runs_are_tracked_with_a_child_run_per_step_and_priced() {
    let store = store();
    let tracker: Arc<dyn Tracker> = Arc::new(
        StoreTracker::open(store.clone(), StoreTrackerOptions::default())
            .await
            .unwrap(),
    );
    let burn = BlockingStep::new(|ctx| {
        ctx.use_gpus(1);
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(150) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        Ok(Outputs::from([(
            "x".to_owned(),
            Output::value(json!(x % 7)),
        )]))
    });
    let p = Pipeline::new("priced")
        .step(StepDef::new("burn", burn))
        .step(StepDef::new("after", counted(Arc::default())).input("x", "burn", "x"));
    let card =
        RateCard::from_yaml("currency: EUR\ncpu_hour: 3600\ngb_hour: 0\ngpu_hour: 3600\n").unwrap();
    let runner = Runner::new(store.clone())
        .tracker(tracker.clone(), "pipelines")
        .rate_card(card);
    let first = runner.run(&p).await.unwrap();
    let burn = first.step("burn").unwrap();
    assert!(burn.usage.cpu_seconds > 0.01, "{:?}", burn.usage);
    assert!(burn.usage.gpu_seconds > 0.1, "{:?}", burn.usage);
    // 1 currency unit per CPU-second and per GPU-second.
    assert!((burn.cost - burn.usage.cpu_seconds - burn.usage.gpu_seconds).abs() < 1e-9);
    assert!((first.cost - first.steps.iter().map(|s| s.cost).sum::<f64>()).abs() < 1e-12);
    let second = runner.run(&p).await.unwrap();
    assert_eq!(second.cost, 0.0, "cached steps cost nothing");

    let runs = tracker
        .search_all_runs(SearchRunsOptions::default())
        .await
        .unwrap();
    let parent = runs
        .iter()
        .find(|r| Some(&r.info.run_id) == first.run_id.as_ref())
        .unwrap();
    assert_eq!(parent.info.status, RunStatus::Finished);
    assert_eq!(parent.data.tags["mlops.pipeline"], "priced");
    let kids: Vec<_> = runs
        .iter()
        .filter(|r| r.parent_run_id() == first.run_id.as_ref().map(|r| r.as_str()))
        .collect();
    assert_eq!(kids.len(), 2);
    let burn_run = kids
        .iter()
        .find(|r| r.data.tags["mlops.step"] == "burn")
        .unwrap();
    assert_eq!(burn_run.data.tags["mlops.cache"], "miss");
    assert_eq!(
        burn_run.data.tags["mlops.output.x"],
        burn.outputs["x"].digest.to_hex()
    );
    assert!(burn_run.data.metrics["cpu_seconds"].value > 0.01);
    assert!(burn_run.data.metrics.contains_key("cost"));
    let hits: Vec<_> = runs
        .iter()
        .filter(|r| r.parent_run_id() == second.run_id.as_ref().map(|r| r.as_str()))
        .map(|r| r.data.tags["mlops.cache"].clone())
        .collect();
    assert_eq!(hits, ["hit", "hit"]);
}

#[tokio::test]
async fn one_step_runs_alone_from_upstream_records() {
    let store = store();
    let c = Counters::new();
    let only =
        |steps: &[&str]| Runner::new(store.clone()).only(steps.iter().map(|s| (*s).to_owned()));
    let e = only(&["train"])
        .run(&c.pipeline("v1", 1, 10))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("upstream step prep of demo has not run yet"),
        "{e}"
    );
    let r = only(&["prep"]).run(&c.pipeline("v1", 1, 10)).await.unwrap();
    assert_eq!(r.steps.len(), 1);
    let r = only(&["train"])
        .run(&c.pipeline("v1", 1, 10))
        .await
        .unwrap();
    assert_eq!(r.step("train").unwrap().outputs["out"].value["value"], 11);
    assert_eq!(c.counts(), [1, 1, 0]);
    let e = only(&["nope"])
        .run(&c.pipeline("v1", 1, 10))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no step \"nope\""), "{e}");

    // With a run token, an upstream record from another pipeline run is not used: the pod
    // fails as unavailable (Kubernetes retries it) until the upstream step ran in this run.
    let e = only(&["train"])
        .run_token("run-2")
        .run(&c.pipeline("v1", 1, 10))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert!(
        e.to_string().contains("has not run in pipeline run run-2"),
        "{e}"
    );
    // prep is cached, and its record is stamped with the new run; then train can go.
    only(&["prep"])
        .run_token("run-2")
        .run(&c.pipeline("v1", 1, 10))
        .await
        .unwrap();
    only(&["train"])
        .run_token("run-2")
        .run(&c.pipeline("v1", 1, 10))
        .await
        .unwrap();
    assert_eq!(c.counts(), [1, 1, 0], "both were served from the cache");
}

#[tokio::test]
async fn when_conditions_bypass_steps_and_their_dependants() {
    let ran = Arc::new(AtomicUsize::new(0));
    let decide = |retrain: bool| {
        FnStep::new(move |_| async move {
            Ok(Outputs::from([(
                "decision".to_owned(),
                Output::value(json!({ "retrain": retrain, "share": 0.5 })),
            )]))
        })
    };
    let pipeline = |retrain: bool, field: &str| {
        Pipeline::new("loop")
            .step(StepDef::new("monitor", decide(retrain)).no_cache())
            .step(StepDef::new("retrain", counted(ran.clone())).when("monitor", "decision", field))
            .step(StepDef::new("deploy", counted(ran.clone())).input("model", "retrain", "out"))
            .step(StepDef::new("report", counted(ran.clone())).after("monitor"))
    };
    let r = Runner::new(store())
        .run(&pipeline(false, "retrain"))
        .await
        .unwrap();
    assert!(r.succeeded(), "bypassed steps do not fail the pipeline");
    assert_eq!(r.step("retrain").unwrap().status, StepStatus::Bypassed);
    assert!(
        r.step("retrain")
            .unwrap()
            .reason
            .as_ref()
            .unwrap()
            .contains("monitor.decision.retrain is false")
    );
    assert_eq!(r.step("deploy").unwrap().status, StepStatus::Bypassed);
    assert_eq!(r.step("report").unwrap().status, StepStatus::Succeeded);
    assert_eq!(ran.load(Ordering::SeqCst), 1);

    let r = Runner::new(store())
        .run(&pipeline(true, "retrain"))
        .await
        .unwrap();
    assert_eq!(r.executed(), ["monitor", "retrain", "deploy", "report"]);

    // A field that is missing or not a boolean fails the step, naming the condition.
    let r = Runner::new(store())
        .run(&pipeline(true, "share"))
        .await
        .unwrap();
    let e = r.step("retrain").unwrap().error.clone().unwrap();
    assert!(
        e.to_string()
            .contains("monitor.decision.share is 0.5, not true or false"),
        "{e}"
    );
    assert!(!r.succeeded());
}
