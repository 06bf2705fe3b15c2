//! Training sets read their sources as streams through a reducer that keeps only the rows able
//! to answer some entity row: on random data with ties, late corrections, null created times,
//! null keys and a ttl, streamed in batches of 7 rows, the result equals the point-in-time join
//! over the whole source, with and without `filter_by_created_timestamp`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use common::Batched;
use mlops_features::historical::{ViewTable, point_in_time_join};
use mlops_features::{
    FeatureRepo, FeatureSelection, FeatureStore, HistoricalOptions, ParquetFiles,
};
use mlops_storage::MemoryStore;
use mlops_testkit::rng::SplitMix64;

const HOUR: i64 = 3_600_000_000_000;

const REPO: &str = r#"
project: shop
entities:
  - {name: customer, join_keys: [customer_id]}
sources:
  - {name: stats, path: stats.parquet, timestamp_field: event_timestamp, created_timestamp_column: created}
feature_views:
  - name: customer_stats
    entities: [customer]
    ttl: 10h
    source: stats
    schema:
      - {name: spend, dtype: Float64}
"#;

fn ts(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reduced_stream_joins_as_the_whole_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(5);
    let mut pick = |n: u64| rng.next_u64() % n;
    let n = 3000;
    let (mut ids, mut events, mut created, mut spend) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        ids.push((pick(9) != 0).then(|| pick(60) as i64)); // some null keys
        let e = pick(100) as i64 * HOUR; // whole hours: many ties
        events.push(Some(e));
        created.push(match pick(4) {
            0 => None,
            1 => Some(e),
            _ => Some(e + pick(4) as i64 * HOUR),
        });
        spend.push(Some(i as f64));
    }
    let source = RecordBatch::try_from_iter([
        ("customer_id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("event_timestamp", ts(events)),
        ("created", ts(created)),
        ("spend", Arc::new(Float64Array::from(spend))),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.path().join("stats.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, source.schema(), None).unwrap();
    w.write(&source).unwrap();
    w.close().unwrap();
    let entity_ids: Vec<i64> = (0..500).map(|_| pick(70) as i64).collect();
    let entity_ts: Vec<Option<i64>> = (0..500).map(|_| Some(pick(110) as i64 * HOUR)).collect();
    let entity = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(entity_ids)) as ArrayRef,
        ),
        ("event_timestamp", ts(entity_ts)),
    ])
    .unwrap();

    let repo = FeatureRepo::from_yaml(REPO).unwrap();
    let fs = FeatureStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Batched(ParquetFiles::new(dir.path()), 7)),
    );
    fs.registry().apply(&repo).await.unwrap();
    let selection = FeatureSelection::features(["customer_stats:spend"]).unwrap();
    let requests = repo.resolve(&selection).unwrap();
    for filter in [false, true] {
        let options = HistoricalOptions::default().with_filter_by_created_timestamp(filter);
        let got = fs
            .get_historical_features("shop", std::slice::from_ref(&entity), &selection, options)
            .await
            .unwrap();
        let whole = point_in_time_join(
            &entity,
            &[ViewTable {
                request: requests[0].clone(),
                rows: source.clone(),
            }],
            options,
        )
        .unwrap();
        assert_eq!(got.rows, whole, "filter_by_created_timestamp {filter}");
        let matched = whole.column(2).len() - arrow::array::Array::null_count(whole.column(2));
        assert!(matched > 100, "the data matches often enough: {matched}");
    }
}
