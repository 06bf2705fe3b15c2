//! Pipeline overhead: a chain of 10 no-op steps on an in-memory store, run cold (every step
//! executes and writes its cache record) and warm (every step is served from the cache) —
//! what a pipeline costs before any step does work.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group};
use mlops::pipeline::{FnStep, Output, Outputs, Pipeline, Runner, StepDef};
use mlops::storage::ObjectStoreStore;

fn chain(steps: usize) -> Pipeline {
    let step = || {
        FnStep::new(|ctx| async move {
            let n = ctx
                .inputs
                .values()
                .next()
                .and_then(|o| o.value.as_u64())
                .unwrap_or(0);
            Ok(Outputs::from([(
                "n".to_owned(),
                Output::value(serde_json::json!(n + 1)),
            )]))
        })
    };
    let mut p = Pipeline::new("bench").step(StepDef::new("s0", step()));
    for i in 1..steps {
        p = p.step(StepDef::new(format!("s{i}"), step()).input("prev", format!("s{}", i - 1), "n"));
    }
    p
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(10));
    let p = chain(10);
    group.bench_function("cold/10-steps", |b| {
        b.iter(|| {
            let store = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
            rt.block_on(Runner::new(store).run(&p)).unwrap()
        });
    });
    let store = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
    rt.block_on(Runner::new(store.clone()).run(&p)).unwrap();
    group.bench_function("cached/10-steps", |b| {
        b.iter(|| rt.block_on(Runner::new(store.clone()).run(&p)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, pipeline);
