//! Several processes logging into one store at once lose nothing, and a process killed mid-run
//! loses at most what it logged since its last durability point, never corrupting the store.
//!
//! The workers are this same test binary, re-run with `MLOPS_TRACKER_WORKER` set.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlops_core::tracker::{
    CreateRunOptions, LogBatch, SearchExperimentsOptions, SearchRunsOptions,
};
use mlops_core::{Metric, Param, RunStatus, Store, Tracker, TrackerExt};
use mlops_storage::{ObjectStoreStore, StoreTracker, StoreTrackerOptions, verify};

const WORKER_ENV: &str = "MLOPS_TRACKER_WORKER";
const RUNS_PER_WORKER: usize = 15;
const METRICS_PER_RUN: i64 = 40;

async fn open(dir: &str, flush_ms: u64) -> StoreTracker {
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open(dir, &[]).unwrap());
    let options =
        StoreTrackerOptions::default().with_flush_interval(Some(Duration::from_millis(flush_ms)));
    StoreTracker::open(store, options).await.unwrap()
}

/// Not a test of its own but the body of a worker process, which the tests below start with
/// `--ignored --exact worker_entry`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process body, run by the other tests of this file"]
async fn worker_entry() {
    let spec = std::env::var(WORKER_ENV)
        .unwrap_or_else(|_| panic!("worker_entry runs only as a worker, with {WORKER_ENV} set"));
    let mut parts = spec.splitn(3, '|');
    let (mode, idx, dir) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let tracker = open(dir, 50).await;
    let exp = tracker
        .get_or_create_experiment(&"shared".parse().unwrap())
        .await
        .unwrap();
    let mut out = std::io::stdout();
    match mode {
        "log" => {
            for r in 0..RUNS_PER_WORKER {
                let run = tracker
                    .create_run(
                        CreateRunOptions::default()
                            .in_experiment(exp.clone())
                            .with_name(format!("w{idx}-r{r}")),
                    )
                    .await
                    .unwrap()
                    .info
                    .run_id;
                tracker.log_param(&run, "worker", idx).await.unwrap();
                for step in 0..METRICS_PER_RUN {
                    tracker
                        .log_metric(&run, "loss", 1.0 / (step + 1) as f64, step)
                        .await
                        .unwrap();
                }
                tracker.end_run(&run, RunStatus::Finished).await.unwrap();
            }
        }
        "until-killed" => loop {
            let run = tracker
                .create_run(CreateRunOptions::default().in_experiment(exp.clone()))
                .await
                .unwrap()
                .info
                .run_id;
            for step in 0..1000i64 {
                let batch = LogBatch::new()
                    .metric(Metric::new("m".parse().unwrap(), step as f64, step))
                    .param(Param::new(format!("p{step}").parse().unwrap(), "v").unwrap());
                tracker.log_batch(&run, batch).await.unwrap();
                if step % 25 == 24 {
                    tracker.flush().await.unwrap();
                    // Everything up to here is durable: tell the parent.
                    writeln!(out, "durable {run} {}", step + 1).unwrap();
                    out.flush().unwrap();
                }
            }
        },
        other => panic!("unknown worker mode {other}"),
    }
}

fn spawn(mode: &str, idx: usize, dir: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "worker_entry",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(WORKER_ENV, format!("{mode}|{idx}|{dir}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_logging_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let workers: Vec<_> = (0..4).map(|i| spawn("log", i, &path)).collect();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tracker = open(&path, 1000).await;
    let exps = tracker
        .search_experiments(SearchExperimentsOptions::default().with_filter("name = 'shared'"))
        .await
        .unwrap();
    assert_eq!(
        exps.items.len(),
        1,
        "four racing get-or-creates make one experiment"
    );
    let runs = tracker
        .search_all_runs(
            SearchRunsOptions::default().in_experiment(exps.items[0].experiment_id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 4 * RUNS_PER_WORKER);
    for r in &runs {
        assert_eq!(r.info.status, RunStatus::Finished);
        let history = tracker
            .metric_history(&r.info.run_id, &"loss".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(
            history.len() as i64,
            METRICS_PER_RUN,
            "run {}",
            r.info.run_name
        );
    }
    for i in 0..4 {
        let filter = format!("params.worker = '{i}'");
        let mine = tracker
            .search_all_runs(SearchRunsOptions::default().with_filter(filter))
            .await
            .unwrap();
        assert_eq!(mine.len(), RUNS_PER_WORKER);
    }
    let store = Arc::new(ObjectStoreStore::open(&path, &[]).unwrap());
    let report = verify(store).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_processes_keep_everything_up_to_their_last_durability_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let mut durable: Vec<(String, i64)> = Vec::new();
    for round in 0..12 {
        let mut child = spawn("until-killed", round, &path);
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(150 + (round as u64 * 37) % 300));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut last: Option<(String, i64)> = None;
        for line in text.lines().filter_map(|l| l.strip_prefix("durable ")) {
            let (run, n) = line.split_once(' ').unwrap();
            last = Some((run.to_owned(), n.parse().unwrap()));
        }
        if let Some(l) = last {
            durable.push(l);
        }
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    assert!(
        durable.len() >= 6,
        "most workers reached a durability point before the kill: {durable:?}"
    );
    let tracker = open(&path, 1000).await;
    for (run, n) in &durable {
        let run = run.parse().unwrap();
        let history = tracker
            .metric_history(&run, &"m".parse().unwrap())
            .await
            .unwrap();
        assert!(
            history.len() as i64 >= *n,
            "run {run}: {} metrics, {n} were durable",
            history.len()
        );
        let params = tracker.get_run(&run).await.unwrap().data.params.len() as i64;
        assert!(params >= *n, "run {run}: {params} params, {n} were durable");
    }
    let store = Arc::new(ObjectStoreStore::open(&path, &[]).unwrap());
    let report = verify(store).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
}
