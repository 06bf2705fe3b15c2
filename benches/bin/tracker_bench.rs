//! Our side of `benches/scripts/tracking_vs_mlflow.py`: the same tracking workloads as MLflow's
//! Python client runs there, on `StoreTracker` over a local-directory store, timed end to end
//! (including `end_run`, our durability point).
//!
//! ```text
//! cargo run --release -p mlops-benches --bin tracker-bench -- <store dir> <workload> <n>
//! ```
//!
//! Workloads: `log_metric` (n calls one by one in one run, then end_run), `batched` (n metric
//! points in batches of 1000, then end_run), `runs` (n runs × 10 params + 10 metrics, each ended),
//! `search` (create n runs, then time one filtered search over them), `open` (cold start of a new
//! tracker over n runs, replaying segments and then from a snapshot). Prints one JSON line.

// A benchmark driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use mlops::storage::{ObjectStoreStore, StoreTracker, StoreTrackerOptions};
use mlops::tracker::{CreateRunOptions, LogBatch, SearchRunsOptions};
use mlops::{Metric, Param, RunStatus, Store, Tracker, TrackerExt};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, workload, n] = args.as_slice() else {
        eprintln!("usage: tracker-bench <store dir> <log_metric|batched|runs|search> <n>");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("n is a number");
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open(dir, &[]).unwrap());
    let t = StoreTracker::open(store, StoreTrackerOptions::default())
        .await
        .unwrap();
    let exp = t
        .get_or_create_experiment(&"bench".parse().unwrap())
        .await
        .unwrap();
    let start = Instant::now();
    let mut timed = None;
    match workload.as_str() {
        "log_metric" => {
            let run = t
                .create_run(CreateRunOptions::default().in_experiment(exp))
                .await
                .unwrap()
                .info
                .run_id;
            for i in 0..n {
                t.log_metric(&run, "m", i as f64, i as i64).await.unwrap();
            }
            t.end_run(&run, RunStatus::Finished).await.unwrap();
        }
        "batched" => {
            let run = t
                .create_run(CreateRunOptions::default().in_experiment(exp))
                .await
                .unwrap()
                .info
                .run_id;
            let key: mlops::MetricKey = "m".parse().unwrap();
            for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
                let mut b = LogBatch::new();
                for i in chunk {
                    b = b.metric(Metric {
                        key: key.clone(),
                        value: *i as f64,
                        timestamp_ms: 1,
                        step: *i as i64,
                    });
                }
                t.log_batch(&run, b).await.unwrap();
            }
            t.end_run(&run, RunStatus::Finished).await.unwrap();
        }
        "runs" => {
            for r in 0..n {
                let run = t
                    .create_run(CreateRunOptions::default().in_experiment(exp.clone()))
                    .await
                    .unwrap()
                    .info
                    .run_id;
                let mut b = LogBatch::new();
                for i in 0..10 {
                    b = b
                        .param(Param::new(format!("p{i}").parse().unwrap(), r.to_string()).unwrap())
                        .metric(Metric::new(format!("m{i}").parse().unwrap(), r as f64, 0));
                }
                t.log_batch(&run, b).await.unwrap();
                t.end_run(&run, RunStatus::Finished).await.unwrap();
            }
        }
        "search" => {
            for r in 0..n {
                let run = t
                    .create_run(CreateRunOptions::default().in_experiment(exp.clone()))
                    .await
                    .unwrap()
                    .info
                    .run_id;
                let b = LogBatch::new()
                    .param(
                        Param::new(
                            "model".parse().unwrap(),
                            if r % 3 == 0 { "mlp" } else { "logistic" },
                        )
                        .unwrap(),
                    )
                    .metric(Metric::new(
                        "acc".parse().unwrap(),
                        (r % 100) as f64 / 100.0,
                        0,
                    ));
                t.log_batch(&run, b).await.unwrap();
            }
            t.flush().await.unwrap();
            // A fresh tracker replays the store, as another process would.
            let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open(dir, &[]).unwrap());
            let fresh = StoreTracker::open(store, StoreTrackerOptions::default())
                .await
                .unwrap();
            let s = Instant::now();
            let hits = fresh
                .search_all_runs(
                    SearchRunsOptions::default()
                        .in_experiment(exp)
                        .with_filter("metrics.acc > 0.9 AND params.model = 'mlp'")
                        .order_by("metrics.acc DESC")
                        .with_max_results(50_000),
                )
                .await
                .unwrap();
            timed = Some((s.elapsed().as_secs_f64(), hits.len()));
        }
        "open" => {
            // Cold start of a new tracker over n runs: replaying segments, then from a snapshot.
            for r in 0..n {
                let run = t
                    .create_run(CreateRunOptions::default().in_experiment(exp.clone()))
                    .await
                    .unwrap()
                    .info
                    .run_id;
                let b = LogBatch::new()
                    .param(Param::new("r".parse().unwrap(), r.to_string()).unwrap())
                    .metric(Metric::new("acc".parse().unwrap(), r as f64, 0));
                t.log_batch(&run, b).await.unwrap();
                if r % 1000 == 999 {
                    t.flush().await.unwrap();
                }
            }
            t.flush().await.unwrap();
            let open = || async {
                let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open(dir, &[]).unwrap());
                let s = Instant::now();
                StoreTracker::open(store, StoreTrackerOptions::default())
                    .await
                    .unwrap();
                s.elapsed().as_secs_f64()
            };
            let replay = open().await;
            t.compact().await.unwrap();
            let snapshot = open().await;
            println!(
                "{}",
                serde_json::json!({"workload": "open", "n": n, "replay_s": replay, "snapshot_s": snapshot})
            );
            return;
        }
        other => panic!("unknown workload {other}"),
    }
    let total = start.elapsed().as_secs_f64();
    let (seconds, hits) = timed.unwrap_or((total, 0));
    println!(
        "{}",
        serde_json::json!({"workload": workload, "n": n, "seconds": seconds, "hits": hits})
    );
}
