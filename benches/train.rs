//! Training and inference of the candle models: a logistic regression fit on 20k rows × 20
//! features (preprocessing included), one MLP epoch on the same rows, and a 1k-row prediction
//! from raw columns. `benches/scripts/training_vs_sklearn.py` compares the fit with
//! scikit-learn on 200k rows.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group};
use mlops::train::{CandleTrainer, TrainConfig};
use mlops::{CancelToken, FitOptions, Model, Tensor};

const FEATURES: usize = 20;

/// Features uniform in [0, 1) (xorshift), label 1 when their weighted sum is above its mean.
fn data(seed: u64, rows: usize) -> RecordBatch {
    let mut s = seed;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let cols: Vec<Vec<f64>> = (0..FEATURES)
        .map(|_| (0..rows).map(|_| next()).collect())
        .collect();
    let labels: Vec<i64> = (0..rows)
        .map(|r| {
            let z: f64 = cols
                .iter()
                .enumerate()
                .map(|(j, c)| (j as f64 - 9.5) * c[r])
                .sum();
            i64::from(z > 0.0)
        })
        .collect();
    let mut fields: Vec<Field> = (0..FEATURES)
        .map(|j| Field::new(format!("f{j}"), DataType::Float64, false))
        .collect();
    fields.push(Field::new("y", DataType::Int64, false));
    let mut arrays: Vec<ArrayRef> = cols
        .into_iter()
        .map(|c| Arc::new(Float64Array::from(c)) as ArrayRef)
        .collect();
    arrays.push(Arc::new(Int64Array::from(labels)));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn config(params: &[(&str, &str)]) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.apply([("device", "cpu")]).unwrap();
    c.apply(params.iter().copied()).unwrap();
    c
}

fn train(c: &mut Criterion) {
    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    let batch = [data(1, 20_000)];
    let options = FitOptions::new("y").with_validation_fraction(0.0);
    group.throughput(Throughput::Elements(20_000));
    let logistic = CandleTrainer::new(config(&[
        ("model", "logistic"),
        ("epochs", "1"),
        ("batch_size", "2048"),
        ("learning_rate", "0.05"),
    ]));
    group.bench_function("logistic/fit-1-epoch/20k-x-20", |b| {
        b.iter(|| {
            logistic
                .train(&batch, &options, &(), &CancelToken::new())
                .unwrap()
        });
    });
    let mlp = CandleTrainer::new(config(&[
        ("model", "mlp"),
        ("hidden", "64,32"),
        ("epochs", "1"),
        ("batch_size", "256"),
    ]));
    group.bench_function("mlp-64-32/fit-1-epoch/20k-x-20", |b| {
        b.iter(|| {
            mlp.train(&batch, &options, &(), &CancelToken::new())
                .unwrap()
        });
    });
    let model = mlp
        .train(&batch, &options, &(), &CancelToken::new())
        .unwrap()
        .model;
    let rows = 1_000;
    let input = data(2, rows);
    let inputs: Vec<Tensor> = (0..FEATURES)
        .map(|j| {
            let col = input
                .column(j)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            Tensor::from_f64(format!("f{j}"), vec![rows], col.values()).unwrap()
        })
        .collect();
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("mlp-64-32/predict/1k-rows", |b| {
        b.iter(|| model.predict(&inputs).unwrap());
    });
    group.finish();
}

criterion_group!(benches, train);
