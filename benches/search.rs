//! MLflow search semantics: parsing filters, and a filtered, ordered search over many runs on the
//! in-memory tracker (the reference every durable tracker is compared with).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use mlops::search::Filter;
use mlops::storage::MemoryTracker;
use mlops::tracker::{CreateRunOptions, LogBatch, SearchRunsOptions};
use mlops::{Metric, Param, Tracker, TrackerExt};

const FILTER: &str = "metrics.acc > 0.9 AND params.model = 'mlp' AND attributes.status = 'RUNNING'";

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse/3_clauses", |b| {
        b.iter(|| Filter::parse(FILTER).unwrap())
    });
    group.finish();
}

fn populated(runtime: &tokio::runtime::Runtime, runs: usize) -> MemoryTracker {
    let tracker = MemoryTracker::new();
    runtime.block_on(async {
        for i in 0..runs {
            let run = tracker
                .create_run(CreateRunOptions::default().with_start_time(i as i64))
                .await
                .unwrap();
            let model = if i % 3 == 0 { "mlp" } else { "logistic" };
            let acc = (i % 100) as f64 / 100.0;
            tracker
                .log_batch(
                    &run.info.run_id,
                    LogBatch::new()
                        .metric(Metric::new("acc".parse().unwrap(), acc, 0))
                        .param(Param::new("model".parse().unwrap(), model).unwrap()),
                )
                .await
                .unwrap();
        }
    });
    tracker
}

fn search(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("memory-tracker");
    for runs in [1_000usize, 10_000] {
        let tracker = populated(&runtime, runs);
        group.throughput(Throughput::Elements(runs as u64));
        group.bench_with_input(BenchmarkId::new("search_runs", runs), &tracker, |b, t| {
            b.iter(|| {
                runtime
                    .block_on(
                        t.search_runs(
                            SearchRunsOptions::default()
                                .with_filter(FILTER)
                                .order_by("metrics.acc DESC")
                                .with_max_results(100),
                        ),
                    )
                    .unwrap()
            })
        });
    }
    let tracker = MemoryTracker::new();
    let run = runtime
        .block_on(tracker.create_run(CreateRunOptions::default()))
        .unwrap()
        .info
        .run_id;
    group.throughput(Throughput::Elements(1));
    group.bench_function("log_metric/1", |b| {
        let mut step = 0;
        b.iter(|| {
            step += 1;
            runtime
                .block_on(tracker.log_metric(&run, "loss", 0.5, step))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, parse, search);
