//! Our side of `benches/scripts/drift_vs_evidently.py`.
//!
//! ```text
//! cargo run --release -p mlops-benches --bin drift-bench -- drift <reference.parquet> <current.parquet> <repeats>
//! cargo run --release -p mlops-benches --bin drift-bench -- ks <a.f64> <b.f64> <repeats>
//! ```
//!
//! `drift` times Evidently's DataDriftPreset equivalent — profile the reference, test every
//! column, decide dataset drift — on data already in memory (the Parquet read is not timed, as
//! the script times Evidently on DataFrames already loaded). `ks` times a two-sample KS test on
//! two raw little-endian f64 files, sorting (and copying the inputs) included, as scipy's `ks_2samp` does. Each prints one
//! JSON line with the best and median time of `repeats` runs and the results.

// A benchmark driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use mlops::drift::StatDetector;
use mlops::drift::stats::ks;
use mlops::drift::{DetectOptions, DriftDetector, ProfileOptions};

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

fn read_parquet(path: &str) -> Vec<arrow::record_batch::RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(65_536)
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn read_f64(path: &str) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, a, b, repeats] = args.as_slice() else {
        eprintln!("usage: drift-bench <drift|ks> <reference> <current> <repeats>");
        std::process::exit(2);
    };
    let repeats: usize = repeats.parse().unwrap();
    match mode.as_str() {
        "drift" => {
            let (reference, current) = (read_parquet(a), read_parquet(b));
            let detector = StatDetector::new();
            let (t, report) = times(repeats, || {
                let profile = detector
                    .profile(&reference, &ProfileOptions::default())
                    .unwrap();
                detector
                    .detect(&profile, &current, &DetectOptions::default())
                    .unwrap()
            });
            let columns: Vec<_> = report
                .columns
                .iter()
                .map(|c| serde_json::json!({"column": c.column, "test": c.test, "score": c.score, "drifted": c.drifted}))
                .collect();
            println!(
                "{}",
                serde_json::json!({"best_s": t[0], "median_s": t[t.len() / 2], "dataset_drift": report.dataset_drift, "columns": columns})
            );
        }
        "ks" => {
            let (x, y) = (read_f64(a), read_f64(b));
            let (t, r) = times(repeats, || ks::ks_2samp(x.clone(), y.clone()));
            println!(
                "{}",
                serde_json::json!({"best_s": t[0], "median_s": t[t.len() / 2], "statistic": r.statistic, "pvalue": r.pvalue})
            );
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}
