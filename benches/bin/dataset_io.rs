//! Times writing and reading one dataset version through the Store, for the side-by-side script
//! `benches/scripts/datasets_vs_pyarrow.py` (which runs pyarrow on the same data).
//!
//! ```text
//! cargo run --release -p mlops-benches --bin dataset-io -- <source.parquet> <store dir>
//! ```
//!
//! Loads the source file into memory first (not timed), then times `Datasets::write` (Parquet
//! encoding with zstd, column statistics, blake3 hashing, the commit) and a full `Datasets::read`.
//! Prints one JSON line.

// A benchmark driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatchReader;
use futures::{TryStreamExt, stream};
use mlops::storage::{Datasets, ObjectStoreStore, ReadOptions, WriteOptions};
use mlops::store::RefVersion;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (source, store_dir) = match args.as_slice() {
        [_, s, d] => (s.clone(), d.clone()),
        _ => {
            eprintln!("usage: dataset-io <source.parquet> <store dir>");
            std::process::exit(2);
        }
    };
    let file = std::fs::File::open(&source).expect("source parquet opens");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(64 * 1024)
        .build()
        .unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let in_memory: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();

    let store = Arc::new(ObjectStoreStore::open(&store_dir, &[]).unwrap());
    let datasets = Datasets::new(store);
    let name = "bench".parse().unwrap();

    let t = Instant::now();
    let v = datasets
        .write(
            &name,
            schema,
            stream::iter(batches.into_iter().map(Ok)),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let write_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let read = datasets
        .read(&name, RefVersion::Exact(v.version), ReadOptions::default())
        .await
        .unwrap();
    let read_rows: usize = read
        .batches
        .try_fold(0usize, |n, b| async move { Ok(n + b.num_rows()) })
        .await
        .unwrap();
    let read_s = t.elapsed().as_secs_f64();
    assert_eq!(read_rows, rows);
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "in_memory_bytes": in_memory,
            "stored_bytes": v.manifest.bytes,
            "parts": v.manifest.parts.len(),
            "write_s": write_s,
            "read_s": read_s,
        })
    );
}
