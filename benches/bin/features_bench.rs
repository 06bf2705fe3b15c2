//! Our side of `benches/scripts/features_vs_feast.py`: the feature store on the script's files.
//!
//! ```text
//! features-bench historical <dir>             # features.yaml + entities.parquet -> ours.parquet
//! features-bench materialize <dir>            # every online view into <dir>/online.redb
//! features-bench online <dir> <calls> <features> <batch>   # in-process lookups, latency
//! features-bench http <port> <calls> <features> <customers> # POST /get-online-features, latency
//! ```
//!
//! `http` is a minimal HTTP/1.1 client (one keep-alive connection, `TCP_NODELAY`, blocking
//! reads), so that the figure is the server's and the loopback's, not a client library's; the
//! script runs it against both servers.
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

/// `calls` requests for 1 entity each over one connection to `127.0.0.1:port`: the latencies in ns.
fn http_latency(port: u16, calls: usize, features: &[String], customers: usize) -> Vec<u64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut response = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut lat = Vec::with_capacity(calls);
    for i in 0..calls {
        let body = serde_json::json!({
            "features": features,
            "entities": {"customer_id": [(i * 7919) % customers]},
        })
        .to_string();
        let request = format!(
            "POST /get-online-features HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let t = Instant::now();
        stream.write_all(request.as_bytes()).unwrap();
        response.clear();
        // Headers, then exactly Content-Length bytes of body.
        let (head_end, length) = loop {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the server closed the connection");
            response.extend_from_slice(&chunk[..n]);
            if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&response[..end])
                    .unwrap()
                    .to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{head}");
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .expect("a Content-Length header")
                    .trim()
                    .parse()
                    .unwrap();
                break (end + 4, length);
            }
        };
        while response.len() < head_end + length {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the server closed the connection");
            response.extend_from_slice(&chunk[..n]);
        }
        lat.push(t.elapsed().as_nanos() as u64);
    }
    lat
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("http") {
        let port: u16 = args[2].parse().unwrap();
        let calls: usize = args[3].parse().unwrap();
        let features: Vec<String> = args[4].split(',').map(str::to_owned).collect();
        let customers: usize = args[5].parse().unwrap();
        http_latency(port, calls.min(100), &features, customers); // warm up
        let mut lat = http_latency(port, calls, &features, customers);
        lat.sort_unstable();
        println!(
            "{}",
            serde_json::json!({"calls": calls, "p50_us": percentile(&lat, 0.5) as f64 / 1000.0, "p99_us": percentile(&lat, 0.99) as f64 / 1000.0})
        );
        return;
    }
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
            // The same sequence twice, the first pass unmeasured: a serving process's steady
            // state, with its keys' pages in the store's cache (the script warms Feast alike).
            let mut lat = Vec::with_capacity(calls);
            for pass in 0..2 {
                for i in 0..calls {
                    let start = (i * batch) % (values.len() - batch);
                    let entities = vec![(name.clone(), values[start..start + batch].to_vec())];
                    let t = Instant::now();
                    let r = client
                        .get_online_features(&selection, &entities, false)
                        .await
                        .unwrap();
                    if pass == 1 {
                        lat.push(t.elapsed().as_nanos() as u64);
                    }
                    std::hint::black_box(r);
                }
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
