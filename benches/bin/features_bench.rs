//! Our side of `benches/scripts/features_vs_feast.py`: the feature store on the script's files.
//!
//! ```text
//! features-bench historical <dir>             # features.yaml + entities.parquet -> ours.parquet
//! features-bench materialize <dir>            # every online view into <dir>/online.redb
//! features-bench online <dir> <calls> <features> <batch>   # in-process lookups, latency
//! ```
//!
//! Each prints one JSON line with its timings. The definitions are `<dir>/features.yaml`
//! (Parquet sources relative to `<dir>`), kept in a store at `<dir>/store`.

// A benchmark driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use mlops::features::online::{entity_columns, now_ns};
use mlops::features::{
    EmbeddedOnlineStore, FeatureRepo, FeatureSelection, FeatureStore, HistoricalOptions,
    MaterializeOptions, OnlineFeatures, ParquetFiles,
};
use mlops::storage::ObjectStoreStore;

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(1 << 16)
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn store(dir: &Path) -> (FeatureStore, FeatureRepo) {
    let repo = FeatureRepo::from_yaml(&std::fs::read_to_string(dir.join("features.yaml")).unwrap())
        .unwrap();
    let store = ObjectStoreStore::open(dir.join("store").to_str().unwrap(), &[]).unwrap();
    let fs = FeatureStore::new(Arc::new(store), Arc::new(ParquetFiles::new(dir)));
    fs.registry().apply(&repo).await.unwrap();
    (fs, repo)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(2)
            .expect("usage: features-bench <command> <dir> ..."),
    );
    match args[1].as_str() {
        "historical" => {
            let (fs, repo) = store(&dir).await;
            let entities = read_parquet(&dir.join("entities.parquet"));
            let features: Vec<String> =
                serde_json::from_str(&std::fs::read_to_string(dir.join("features.json")).unwrap())
                    .unwrap();
            let selection = FeatureSelection::features(&features).unwrap();
            let t = Instant::now();
            let set = fs
                .get_historical_features(
                    &repo.project,
                    &entities,
                    &selection,
                    HistoricalOptions::default(),
                )
                .await
                .unwrap();
            let seconds = t.elapsed().as_secs_f64();
            let out = std::fs::File::create(dir.join("ours.parquet")).unwrap();
            let mut w = parquet::arrow::ArrowWriter::try_new(out, set.rows.schema(), None).unwrap();
            w.write(&set.rows).unwrap();
            w.close().unwrap();
            println!(
                "{}",
                serde_json::json!({"seconds": seconds, "rows": set.rows.num_rows()})
            );
        }
        "materialize" => {
            let (fs, repo) = store(&dir).await;
            let online = EmbeddedOnlineStore::open(dir.join("online.redb")).unwrap();
            let t = Instant::now();
            let report = fs
                .materialize(
                    &repo.project,
                    &online,
                    0,
                    now_ns(),
                    &MaterializeOptions::default(),
                )
                .await
                .unwrap();
            let seconds = t.elapsed().as_secs_f64();
            let rows: usize = report.views.iter().map(|v| v.rows_in_window).sum();
            let written: usize = report.views.iter().map(|v| v.written).sum();
            println!(
                "{}",
                serde_json::json!({"seconds": seconds, "rows": rows, "written": written})
            );
        }
        "online" => {
            let calls: usize = args[3].parse().unwrap();
            let features: Vec<String> = args[4].split(',').map(str::to_owned).collect();
            let batch: usize = args[5].parse().unwrap();
            let (fs, repo) = store(&dir).await;
            let online = Arc::new(EmbeddedOnlineStore::open(dir.join("online.redb")).unwrap());
            let client = OnlineFeatures::open(fs, online, &repo.project)
                .await
                .unwrap();
            let selection = FeatureSelection::features(&features).unwrap();
            let keys = read_parquet(&dir.join("online_keys.parquet"));
            let keys = entity_columns(&keys[0]).unwrap();
            let (name, values) = &keys[0];
            let mut lat = Vec::with_capacity(calls);
            for i in 0..calls {
                let start = (i * batch) % (values.len() - batch);
                let entities = vec![(name.clone(), values[start..start + batch].to_vec())];
                let t = Instant::now();
                let r = client
                    .get_online_features(&selection, &entities, false)
                    .await
                    .unwrap();
                lat.push(t.elapsed().as_nanos() as u64);
                std::hint::black_box(r);
            }
            lat.sort_unstable();
            println!(
                "{}",
                serde_json::json!({"calls": calls, "p50_us": percentile(&lat, 0.5) as f64 / 1000.0, "p99_us": percentile(&lat, 0.99) as f64 / 1000.0})
            );
        }
        other => panic!("unknown command {other}"),
    }
}
