//! Our side of `benches/scripts/explain_vs_references.py`.
//!
//! ```text
//! cargo run --release -p mlops-benches --bin explain-bench -- kernel <x.f64> <background.f64> <width> <weights.f64> <repeats>
//! cargo run --release -p mlops-benches --bin explain-bench -- permutation <x.f64> <y.f64> <width> <weights.f64> <repeats>
//! cargo run --release -p mlops-benches --bin explain-bench -- fairness <data.parquet> <repeats>
//! ```
//!
//! The model in `kernel` and `permutation` is the one the script gives shap and scikit-learn:
//! `kernel` explains σ(x·w + b) (the last weight is the intercept), `permutation` scores the
//! labels [x·w + b > 0] by accuracy. `fairness` computes fairlearn's six disparities over the
//! `group` column from `y_true`/`y_pred`. Inputs are raw little-endian f64 files (or Parquet),
//! read before timing; each mode prints one JSON line with the sorted times and the results.

// A benchmark driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use mlops::explain::{
    Features, KernelExplainer, KernelOptions, MaxSamples, PermutationOptions, Shuffles,
    permutation_importance,
};
use mlops::fairness::{AssessOptions, BinaryOutcomes, Groups, assess};

fn times<T>(repeats: usize, mut f: impl FnMut() -> T) -> (Vec<f64>, T) {
    let mut out = Vec::new();
    let mut last = None;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let v = f();
        out.push(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    out.sort_by(f64::total_cmp);
    (out, last.unwrap())
}

fn read_f64(path: &str) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn features(path: &str, width: usize) -> Features {
    Features::new(
        (0..width).map(|j| format!("f{j}")).collect(),
        read_f64(path),
    )
    .unwrap()
}

fn margin(w: &[f64], row: &[f64]) -> f64 {
    let (b, w) = w.split_last().unwrap();
    row.iter().zip(w).map(|(x, w)| x * w).sum::<f64>() + b
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("kernel") => {
            let [_, _, x, bg, width, w, repeats] = args.as_slice() else {
                panic!("usage: explain-bench kernel <x> <background> <width> <weights> <repeats>");
            };
            let width: usize = width.parse().unwrap();
            let (x, bg, w) = (features(x, width), features(bg, width), read_f64(w));
            let model = |f: &Features| -> mlops::Result<Vec<f64>> {
                Ok((0..f.rows())
                    .map(|i| 1.0 / (1.0 + (-margin(&w, f.row(i))).exp()))
                    .collect())
            };
            let (t, e) = times(repeats.parse().unwrap(), || {
                KernelExplainer::new(model, bg.clone(), KernelOptions::default())
                    .unwrap()
                    .explain(&x)
                    .unwrap()
            });
            println!(
                "{}",
                serde_json::json!({"times": t, "values": e.values, "base_value": e.base_value,
                                   "additivity_error": e.additivity_error})
            );
        }
        Some("permutation") => {
            let [_, _, x, y, width, w, repeats] = args.as_slice() else {
                panic!("usage: explain-bench permutation <x> <y> <width> <weights> <repeats>");
            };
            let width: usize = width.parse().unwrap();
            let (x, y, w) = (features(x, width), read_f64(y), read_f64(w));
            let model = |f: &Features| -> mlops::Result<Vec<f64>> {
                Ok((0..f.rows())
                    .map(|i| f64::from(u8::from(margin(&w, f.row(i)) > 0.0)))
                    .collect())
            };
            let accuracy = |y: &[f64], p: &[f64]| -> mlops::Result<f64> {
                Ok(y.iter().zip(p).filter(|(a, b)| a == b).count() as f64 / y.len() as f64)
            };
            let options = PermutationOptions {
                n_repeats: 5,
                max_samples: MaxSamples::Fraction(1.0),
                shuffles: Shuffles::Seeded(0),
            };
            let (t, imp) = times(repeats.parse().unwrap(), || {
                permutation_importance(&model, &x, &y, &accuracy, &options).unwrap()
            });
            let means: Vec<f64> = imp.features.iter().map(|f| f.mean).collect();
            println!(
                "{}",
                serde_json::json!({"times": t, "baseline": imp.baseline, "means": means})
            );
        }
        Some("fairness") => {
            let [_, _, data, repeats] = args.as_slice() else {
                panic!("usage: explain-bench fairness <data.parquet> <repeats>");
            };
            let file = std::fs::File::open(data).unwrap();
            let batches: Vec<_> =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .with_batch_size(1 << 20)
                    .build()
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
            let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
            // The groups and outcomes are built inside the timing, from the Arrow columns, as
            // fairlearn starts from the DataFrame's columns.
            let (t, report) = times(repeats.parse().unwrap(), || {
                let outcomes = BinaryOutcomes::from_batch(&batch, "y_true", "y_pred", 1).unwrap();
                let groups = Groups::from_batch(&batch, &["group"]).unwrap();
                assess(&outcomes, &groups, &AssessOptions::default()).unwrap()
            });
            let values: serde_json::Map<String, serde_json::Value> = report
                .disparities
                .iter()
                .map(|d| (d.name.to_owned(), serde_json::json!(d.value)))
                .collect();
            println!("{}", serde_json::json!({"times": t, "disparities": values}));
        }
        _ => {
            eprintln!("usage: explain-bench <kernel|permutation|fairness> …");
            std::process::exit(2);
        }
    }
}
