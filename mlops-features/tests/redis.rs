//! The Redis online store against a real `redis-server` (`MLOPS_TEST_REDIS_URL`, which
//! `./scripts/test` starts on 127.0.0.1): the conformance suite, then materialization and
//! lookups through it, and a reconnect after the server dropped the connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use mlops_core::online::OnlineStore;
use mlops_features::online::now_ns;
use mlops_features::{
    FeatureRepo, FeatureSelection, FeatureStatus, FeatureStore, FeatureValue, MaterializeOptions,
    OnlineFeatures, ParquetFiles, RedisOnlineStore,
};
use mlops_storage::MemoryStore;

fn url() -> String {
    std::env::var("MLOPS_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("MLOPS_TEST_REDIS_URL is not set. Run ./scripts/test (it installs and starts redis-server) or point it at one")
    })
}

fn prefix() -> String {
    format!("test-{}:", mlops_testkit::unique("redis"))
}

/// One test, in order: the reconnect check at its end drops every client of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conforms_materializes_and_reconnects() {
    let store = RedisOnlineStore::connect(&url(), &prefix()).await.unwrap();
    mlops_testkit::online::run_all(&store).await;

    let dir = tempfile::tempdir().unwrap();
    let now_us = now_ns() / 1000;
    let batch = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(vec![1, 1, 2])) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    now_us - 3_000_000,
                    now_us - 1_000_000,
                    now_us - 2_000_000,
                ])
                .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "spend",
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.path().join("s.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let repo = FeatureRepo::from_yaml(
        "project: r\nentities: [{name: c, join_keys: [customer_id]}]\nsources: [{name: s, path: s.parquet, timestamp_field: event_timestamp}]\nfeature_views: [{name: v, entities: [c], ttl: 1h, source: s, schema: [{name: spend, dtype: Float64}]}]\n",
    )
    .unwrap();
    let fs = FeatureStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ParquetFiles::new(dir.path())),
    );
    fs.registry().apply(&repo).await.unwrap();
    let store = Arc::new(RedisOnlineStore::connect(&url(), &prefix()).await.unwrap());
    let report = fs
        .materialize(
            "r",
            store.as_ref(),
            0,
            now_ns(),
            &MaterializeOptions::default().with_chunk_rows(1),
        )
        .await
        .unwrap();
    assert_eq!(
        report.views[0].chunks, 2,
        "one chunk per key: two customers"
    );
    assert_eq!(report.views[0].rows_in_window, 3);
    let online = OnlineFeatures::open(fs, store.clone() as Arc<dyn OnlineStore>, "r")
        .await
        .unwrap();
    let r = online
        .get_online_features(
            &FeatureSelection::features(["v:spend"]).unwrap(),
            &[(
                "customer_id".into(),
                vec![
                    FeatureValue::Int64(1),
                    FeatureValue::Int64(2),
                    FeatureValue::Int64(3),
                ],
            )],
            false,
        )
        .await
        .unwrap();
    let spend = r.get("spend").unwrap();
    assert_eq!(
        spend.values,
        [
            FeatureValue::Float64(2.0),
            FeatureValue::Float64(3.0),
            FeatureValue::Null
        ]
    );
    assert_eq!(
        spend.statuses,
        [
            FeatureStatus::Present,
            FeatureStatus::Present,
            FeatureStatus::NotFound
        ]
    );

    // The server drops every client; the store reconnects on its own.
    let mut admin = redis::Client::open(url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut admin)
        .await
        .unwrap_or(redis::Value::Nil);
    let mut answered = false;
    for _ in 0..20 {
        if store.mark("anything").await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered, "the store reconnected");

    // A server that is not there is Unavailable, naming Redis.
    let e = RedisOnlineStore::connect("redis://127.0.0.1:1", "x:")
        .await
        .unwrap_err();
    assert!(e.is_unavailable() || e.to_string().contains("redis"), "{e}");
}
