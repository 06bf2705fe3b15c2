//! Our side of `benches/scripts/training_vs_sklearn.py`.
//!
//! ```text
//! cargo run --release -p mlops-benches --bin train-bench -- fit <train.parquet> <test.parquet> <target> <repeats> [KEY=VALUE…]
//! cargo run --release -p mlops-benches --bin train-bench -- epoch <train.parquet> <target> <epochs> [KEY=VALUE…]
//! ```
//!
//! `fit` trains on the train file (no validation split, as scikit-learn's `fit` uses every row)
//! with the given hyper-parameters, timing the whole fit — preprocessing from Arrow included,
//! Parquet reading excluded — and prints one JSON line with the best and median time of
//! `repeats` fits and the accuracy on the test file. `epoch` trains for `epochs` epochs and
//! prints the mean seconds per epoch per 100k rows.

// A benchmark driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use mlops::train::EpochReport;
use mlops::train::{CandleTrainer, TrainConfig};
use mlops::{CancelToken, FitOptions, Model, Tensor};

fn read_parquet(path: &str) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(65_536)
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn config(params: &[String]) -> TrainConfig {
    let mut c = TrainConfig::default();
    for p in params {
        let (k, v) = p.split_once('=').expect("KEY=VALUE");
        c.set(k, v).unwrap();
    }
    c
}

/// The feature columns of `batches` as tensors, one per column (what a client would send).
fn inputs(batches: &[RecordBatch], target: &str) -> (Vec<Tensor>, Vec<i64>) {
    let batch = arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
    let mut tensors = Vec::new();
    let mut truth = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let column = arrow::compute::cast(column, &arrow::datatypes::DataType::Float64).unwrap();
        let values: Vec<f64> = column
            .as_primitive::<arrow::datatypes::Float64Type>()
            .values()
            .to_vec();
        if field.name() == target {
            truth = values.iter().map(|v| *v as i64).collect();
        } else {
            tensors
                .push(Tensor::from_f64(field.name().clone(), vec![column.len()], &values).unwrap());
        }
    }
    (tensors, truth)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fit") if args.len() >= 6 => {
            let (train, test, target) = (read_parquet(&args[2]), read_parquet(&args[3]), &args[4]);
            let repeats: usize = args[5].parse().unwrap();
            let trainer = CandleTrainer::new(config(&args[6..]));
            let options = FitOptions::new(target.clone()).with_validation_fraction(0.0);
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..repeats.max(1) {
                let t = Instant::now();
                let trained = trainer
                    .train(&train, &options, &(), &CancelToken::new())
                    .unwrap();
                times.push(t.elapsed().as_secs_f64());
                last = Some(trained);
            }
            times.sort_by(f64::total_cmp);
            let model = last.unwrap().model;
            let (x, truth) = inputs(&test, target);
            let t = Instant::now();
            let out = model.predict(&x).unwrap();
            let predict_s = t.elapsed().as_secs_f64();
            let labels: Vec<i64> = match out[0].datatype() {
                mlops::DataType::Bool => out[0]
                    .to_bool()
                    .unwrap()
                    .into_iter()
                    .map(i64::from)
                    .collect(),
                _ => out[0].to_i64().unwrap(),
            };
            let hits = labels.iter().zip(&truth).filter(|(a, b)| a == b).count();
            println!(
                "{}",
                serde_json::json!({
                    "best_s": times[0],
                    "median_s": times[times.len() / 2],
                    "accuracy": hits as f64 / truth.len() as f64,
                    "predict_s": predict_s,
                    "params": trainer.config().params(),
                })
            );
        }
        Some("epoch") if args.len() >= 5 => {
            let (train, target) = (read_parquet(&args[2]), &args[3]);
            let epochs: usize = args[4].parse().unwrap();
            let mut c = config(&args[5..]);
            c.epochs = epochs;
            let rows: usize = train.iter().map(RecordBatch::num_rows).sum();
            let stamps = std::sync::Mutex::new(vec![Instant::now()]);
            let options = FitOptions::new(target.clone()).with_validation_fraction(0.0);
            CandleTrainer::new(c)
                .train(
                    &train,
                    &options,
                    &|_: &EpochReport| stamps.lock().unwrap().push(Instant::now()),
                    &CancelToken::new(),
                )
                .unwrap();
            let stamps = stamps.into_inner().unwrap();
            // Skip the first interval (it includes preprocessing and the copy to the device).
            let per_epoch: Vec<f64> = stamps
                .windows(2)
                .skip(1)
                .map(|w| (w[1] - w[0]).as_secs_f64())
                .collect();
            let mean = per_epoch.iter().sum::<f64>() / per_epoch.len().max(1) as f64;
            println!(
                "{}",
                serde_json::json!({
                    "rows": rows,
                    "epoch_s": mean,
                    "epoch_s_per_100k_rows": mean * 100_000.0 / rows as f64,
                })
            );
        }
        _ => {
            eprintln!(
                "usage: train-bench fit <train.parquet> <test.parquet> <target> <repeats> [KEY=VALUE…]\n       train-bench epoch <train.parquet> <target> <epochs> [KEY=VALUE…]"
            );
            std::process::exit(2);
        }
    }
}
