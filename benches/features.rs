//! The feature store: the point-in-time join (100k entity rows against 200k feature rows), and
//! online lookups from the embedded store (1 entity × 10 features; a batch of 100 entities).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use criterion::{Criterion, Throughput, criterion_group};
use mlops::features::definitions::ViewRequest;
use mlops::features::online::{FeatureValue, entity_columns};
use mlops::features::{
    DataSource, EmbeddedOnlineStore, FeatureRepo, FeatureSelection, FeatureStore, FeatureView,
    HistoricalOptions, MaterializeOptions, OnlineFeatures, ValueType, ViewTable,
    point_in_time_join,
};
use mlops::storage::MemoryStore;

const HOUR_US: i64 = 3_600_000_000;

fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

fn features(rows: usize, customers: u64, n_features: usize) -> RecordBatch {
    let mut s = 1u64;
    let ids: Vec<i64> = (0..rows)
        .map(|_| (lcg(&mut s) % customers) as i64)
        .collect();
    let ts: Vec<i64> = (0..rows)
        .map(|_| (lcg(&mut s) % 1000) as i64 * HOUR_US)
        .collect();
    let mut cols: Vec<(String, ArrayRef)> = vec![
        ("customer_id".into(), Arc::new(Int64Array::from(ids))),
        (
            "event_timestamp".into(),
            Arc::new(TimestampMicrosecondArray::from(ts)),
        ),
    ];
    for f in 0..n_features {
        let v: Vec<f64> = (0..rows).map(|_| lcg(&mut s) as f64).collect();
        cols.push((format!("f{f}"), Arc::new(Float64Array::from(v))));
    }
    RecordBatch::try_from_iter(cols).unwrap()
}

fn join(c: &mut Criterion) {
    let source = features(200_000, 20_000, 3);
    let mut s = 7u64;
    let entity = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(
                (0..100_000)
                    .map(|_| (lcg(&mut s) % 25_000) as i64)
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(TimestampMicrosecondArray::from(
                (0..100_000)
                    .map(|_| (lcg(&mut s) % 1000) as i64 * HOUR_US)
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    let view = ViewTable {
        request: ViewRequest {
            view: FeatureView::new("stats", ["customer"], "src")
                .with_ttl(std::time::Duration::from_secs(24 * 3600)),
            source: DataSource::parquet("src", "unused.parquet", "event_timestamp"),
            join_keys: vec!["customer_id".into()],
            features: vec!["f0".into(), "f1".into(), "f2".into()],
        },
        rows: source,
    };
    let mut group = c.benchmark_group("features");
    group.throughput(Throughput::Elements(100_000));
    group.sample_size(10);
    group.bench_function("point_in_time_join/100k_x_200k", |b| {
        b.iter(|| {
            point_in_time_join(
                &entity,
                std::slice::from_ref(&view),
                HistoricalOptions::default(),
            )
            .unwrap()
        })
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = features(100_000, 10_000, 10);
    let file = std::fs::File::create(dir.path().join("f.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, source.schema(), None).unwrap();
    w.write(&source).unwrap();
    w.close().unwrap();
    let mut view = FeatureView::new("stats", ["customer"], "src");
    for f in 0..10 {
        view = view.with_feature(format!("f{f}"), ValueType::Float64);
    }
    let repo = FeatureRepo::new("bench")
        .with_entity(mlops::features::Entity::new("customer", "customer_id"))
        .with_source(DataSource::parquet("src", "f.parquet", "event_timestamp"))
        .with_feature_view(view);
    let refs: Vec<String> = (0..10).map(|f| format!("stats:f{f}")).collect();
    let selection = FeatureSelection::features(&refs).unwrap();
    let client = runtime.block_on(async {
        let fs = FeatureStore::new(
            Arc::new(MemoryStore::new()),
            Arc::new(mlops::features::ParquetFiles::new(dir.path())),
        );
        fs.registry().apply(&repo).await.unwrap();
        let online = Arc::new(EmbeddedOnlineStore::open(dir.path().join("online.redb")).unwrap());
        fs.materialize(
            "bench",
            online.as_ref(),
            0,
            i64::MAX / 2,
            &MaterializeOptions::default(),
        )
        .await
        .unwrap();
        OnlineFeatures::open(fs, online, "bench").await.unwrap()
    });
    let keys = entity_columns(
        &RecordBatch::try_from_iter([(
            "customer_id",
            Arc::new(Int64Array::from((0..100).collect::<Vec<i64>>())) as ArrayRef,
        )])
        .unwrap(),
    )
    .unwrap();
    let one = vec![("customer_id".to_owned(), vec![FeatureValue::Int64(42)])];
    let mut group = c.benchmark_group("features");
    group.throughput(Throughput::Elements(1));
    group.bench_function("online_lookup/1_entity_x_10_features", |b| {
        b.iter(|| {
            runtime
                .block_on(client.get_online_features(&selection, &one, false))
                .unwrap()
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("online_lookup/100_entities_x_10_features", |b| {
        b.iter(|| {
            runtime
                .block_on(client.get_online_features(&selection, &keys, false))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, join, lookup);
