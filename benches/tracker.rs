//! The tracker on a store: the cost of one `log_metric` on the caller's thread (MLflow's file
//! store pays ~1 ms here, its sqlite store ~20 ms), and a filtered, ordered search over many runs.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use mlops::storage::{MemoryStore, StoreTracker, StoreTrackerOptions};
use mlops::tracker::{CreateRunOptions, LogBatch, SearchRunsOptions};
use mlops::{Metric, Param, Store, Tracker, TrackerExt};

/// A tracker on an in-memory store; `background` keeps the default 1 s background flush.
fn tracker(runtime: &tokio::runtime::Runtime, background: bool) -> StoreTracker {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut options = StoreTrackerOptions::default();
    if !background {
        options = options.with_flush_interval(None);
    }
    runtime
        .block_on(StoreTracker::open(store, options))
        .unwrap()
}

fn log_metric(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("store-tracker");
    group.throughput(Throughput::Elements(1));
    // With the default background flush, which writes a segment every second on another
    // thread: without it the queue of unflushed events would grow without bound.
    {
        let t = tracker(&runtime, true);
        let run = runtime
            .block_on(t.create_run(CreateRunOptions::default()))
            .unwrap()
            .info
            .run_id;
        let mut step = 0i64;
        group.bench_function("log_metric/1", |b| {
            b.iter(|| {
                step += 1;
                // Polling the future inline measures the caller's cost: no I/O happens here.
                futures::executor::block_on(t.log_metric(&run, "loss", 0.5, step)).unwrap()
            })
        });
        runtime.block_on(t.flush()).unwrap();
    }
    group.finish();
}

fn search(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("store-tracker");
    group.sample_size(10);
    for runs in [10_000usize, 100_000] {
        let t = tracker(&runtime, false);
        runtime.block_on(async {
            for i in 0..runs {
                let run = t
                    .create_run(CreateRunOptions::default().with_start_time(i as i64))
                    .await
                    .unwrap()
                    .info
                    .run_id;
                let model = if i % 3 == 0 { "mlp" } else { "logistic" };
                let batch = LogBatch::new()
                    .metric(Metric::new(
                        "acc".parse().unwrap(),
                        (i % 1000) as f64 / 1000.0,
                        0,
                    ))
                    .param(Param::new("model".parse().unwrap(), model).unwrap());
                t.log_batch(&run, batch).await.unwrap();
            }
            t.flush().await.unwrap();
        });
        group.throughput(Throughput::Elements(runs as u64));
        group.bench_with_input(BenchmarkId::new("search_runs", runs), &t, |b, t| {
            b.iter(|| {
                runtime
                    .block_on(
                        t.search_runs(
                            SearchRunsOptions::default()
                                .with_filter("metrics.acc > 0.95 AND params.model = 'mlp'")
                                .order_by("metrics.acc DESC")
                                .with_max_results(100),
                        ),
                    )
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, log_metric, search);
