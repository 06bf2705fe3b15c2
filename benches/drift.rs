//! Drift tests: a two-sample KS test on 100k vs 100k values (sorting included), and the whole
//! detector — profile the reference, test every column, decide — on 20k rows × 10 columns.
//! `benches/scripts/drift_vs_evidently.py` compares the same work with Evidently and scipy.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group};
use mlops::drift::StatDetector;
use mlops::drift::stats::ks;
use mlops::drift::{DetectOptions, DriftDetector, ProfileOptions};

fn values(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 + shift
        })
        .collect()
}

fn table(seed: u64, rows: usize, shift: f64) -> RecordBatch {
    let cols: Vec<ArrayRef> = (0..10)
        .map(|c| Arc::new(Float64Array::from(values(seed + c, rows, shift * c as f64))) as ArrayRef)
        .collect();
    let schema = Arc::new(Schema::new(
        (0..10)
            .map(|c| Field::new(format!("c{c}"), DataType::Float64, false))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, cols).unwrap()
}

fn drift(c: &mut Criterion) {
    let mut group = c.benchmark_group("drift");
    let (a, b) = (values(1, 100_000, 0.0), values(2, 100_000, 0.001));
    group.throughput(Throughput::Elements(200_000));
    group.bench_function("ks_2samp/100k-vs-100k", |bench| {
        bench.iter(|| ks::ks_2samp(a.clone(), b.clone()));
    });
    let (reference, current) = (table(10, 20_000, 0.0), table(20, 20_000, 0.01));
    let detector = StatDetector::new();
    group.throughput(Throughput::Elements(10));
    group.bench_function("detect/20k-rows-x-10-columns", |bench| {
        bench.iter(|| {
            let profile = detector
                .profile(std::slice::from_ref(&reference), &ProfileOptions::default())
                .unwrap();
            detector
                .detect(
                    &profile,
                    std::slice::from_ref(&current),
                    &DetectOptions::default(),
                )
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, drift);
