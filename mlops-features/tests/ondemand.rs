//! On-demand features: computed from request fields and other views' features by expressions
//! and closures, the same in training sets and online lookups; their inputs are fetched but
//! not returned unless requested; bad definitions and missing request fields are named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, TimestampSecondArray,
};
use arrow::datatypes::{Float64Type, Int64Type};
use mlops_core::ErrorKind;
use mlops_features::{
    DataSource, Entity, FeatureRepo, FeatureSelection, FeatureService, FeatureStore, FeatureValue,
    FeatureView, HistoricalOptions, MaterializeOptions, MemoryOnlineStore, OnDemandFeatureView,
    OnlineFeatures, ParquetFiles, ValueType,
};
use mlops_storage::MemoryStore;

const REPO: &str = r#"
project: shop
entities:
  - {name: customer, join_keys: [customer_id]}
sources:
  - {name: stats, path: stats.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: customer_stats
    entities: [customer]
    source: stats
    schema:
      - {name: avg_spend, dtype: Float64}
      - {name: orders, dtype: Int64}
on_demand_feature_views:
  - name: order_features
    request_schema:
      - {name: amount, dtype: Float64}
    sources: [customer_stats]
    features:
      - {name: ratio, dtype: Float64, expression: "amount / max(avg_spend, 1)"}
      - {name: big, dtype: Bool, expression: "amount > 3 * avg_spend"}
      - {name: score, dtype: Float64, udf: order_score}
feature_services:
  - name: checkout
    features: ["customer_stats:orders", order_features]
"#;

fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn store(dir: &std::path::Path) -> FeatureStore {
    write_parquet(
        &dir.join("stats.parquet"),
        &RecordBatch::try_from_iter([
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![1, 2, 1])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![10, 10, 20])),
            ),
            (
                "avg_spend",
                Arc::new(Float64Array::from(vec![Some(10.0), Some(0.5), None])),
            ),
            ("orders", Arc::new(Int64Array::from(vec![3, 1, 4]))),
        ])
        .unwrap(),
    );
    FeatureStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ParquetFiles::new(dir)),
    )
    .with_udf("order_score", |batch: &RecordBatch| {
        let amount = batch
            .column_by_name("amount")
            .unwrap()
            .as_primitive::<Float64Type>();
        let orders = arrow::compute::cast(
            batch.column_by_name("orders").unwrap(),
            &arrow::datatypes::DataType::Float64,
        )
        .unwrap();
        let orders = orders.as_primitive::<Float64Type>();
        Ok(Arc::new(
            arrow::compute::kernels::numeric::add(
                &arrow::compute::kernels::numeric::mul(amount, &Float64Array::new_scalar(2.0))
                    .unwrap(),
                orders,
            )
            .unwrap(),
        ) as ArrayRef)
    })
}

#[tokio::test]
async fn on_demand_features_agree_offline_and_online() {
    let dir = tempfile::tempdir().unwrap();
    let fs = store(dir.path());
    let repo = FeatureRepo::from_yaml(REPO).unwrap();
    fs.registry().apply(&repo).await.unwrap();

    // Training set: customer 1 at 15 (avg 10, 3 orders) and at 25 (avg null, 4 orders),
    // customer 2 at 15 (avg 0.5), customer 9 unknown.
    let entities = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(vec![1, 1, 2, 9])) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(TimestampSecondArray::from(vec![15, 25, 15, 15])),
        ),
        (
            "amount",
            Arc::new(Float64Array::from(vec![40.0, 5.0, 2.0, 1.0])),
        ),
    ])
    .unwrap();
    let set = fs
        .get_historical_features(
            "shop",
            &[entities],
            &FeatureSelection::service("checkout"),
            HistoricalOptions::default(),
        )
        .await
        .unwrap();
    let schema = set.rows.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "event_timestamp",
            "amount",
            "orders",
            "ratio",
            "big",
            "score"
        ],
        "avg_spend is an input only"
    );
    let ratio: Vec<Option<f64>> = set
        .rows
        .column_by_name("ratio")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(ratio, [Some(4.0), None, Some(2.0), None]);
    let big: Vec<Option<bool>> = set
        .rows
        .column_by_name("big")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(big, [Some(true), None, Some(true), None]);
    let score: Vec<Option<f64>> = set
        .rows
        .column_by_name("score")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(score, [Some(83.0), Some(14.0), Some(5.0), None]);
    assert_eq!(
        set.lineage.features,
        [
            "customer_stats:orders",
            "order_features:ratio",
            "order_features:big",
            "order_features:score"
        ]
    );
    assert_eq!(
        set.lineage.feature_columns,
        ["orders", "ratio", "big", "score"]
    );
    let orders = set
        .rows
        .column_by_name("orders")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert!(orders.is_null(3));

    // Online: the latest rows (customer 1: avg null, 4 orders; customer 2: avg 0.5).
    let online = Arc::new(MemoryOnlineStore::new());
    fs.materialize(
        "shop",
        online.as_ref(),
        0,
        i64::MAX / 2,
        &MaterializeOptions::default(),
    )
    .await
    .unwrap();
    let client = OnlineFeatures::open(fs, online, "shop").await.unwrap();
    let got = client
        .get_online_features(
            &FeatureSelection::service("checkout"),
            &[
                (
                    "customer_id".into(),
                    vec![FeatureValue::Int64(2), FeatureValue::Int64(1)],
                ),
                (
                    "amount".into(),
                    vec![FeatureValue::Float64(2.0), FeatureValue::Float64(5.0)],
                ),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        got.feature_names,
        ["customer_id", "amount", "orders", "ratio", "big", "score"]
    );
    assert_eq!(
        got.get("ratio").unwrap().values,
        [FeatureValue::Float64(2.0), FeatureValue::Null]
    );
    assert_eq!(
        got.get("big").unwrap().values,
        [FeatureValue::Bool(true), FeatureValue::Null]
    );
    assert_eq!(
        got.get("score").unwrap().values,
        [FeatureValue::Float64(5.0), FeatureValue::Float64(14.0)]
    );
    assert_eq!(
        got.get("ratio").unwrap().statuses,
        [
            mlops_features::FeatureStatus::Present,
            mlops_features::FeatureStatus::NullValue
        ]
    );
    // Full feature names qualify on-demand features as any other.
    let got = client
        .get_online_features(
            &FeatureSelection::features(["order_features:ratio"]).unwrap(),
            &[
                ("customer_id".into(), vec![FeatureValue::Int64(2)]),
                ("amount".into(), vec![FeatureValue::Float64(1.0)]),
            ],
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        got.feature_names,
        ["customer_id", "amount", "order_features__ratio"]
    );
    assert_eq!(got.results[2].values, [FeatureValue::Float64(1.0)]);

    // Without the request field: named.
    let e = client
        .get_online_features(
            &FeatureSelection::service("checkout"),
            &[("customer_id".into(), vec![FeatureValue::Int64(2)])],
            false,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs request field amount"), "{e}");
}

#[tokio::test]
async fn bad_on_demand_definitions_and_missing_closures_are_named() {
    for (change, says) in [
        (
            ("max(avg_spend, 1)", "max(avg_spent, 1)"),
            "reads avg_spent, which is neither a request field nor a feature",
        ),
        (("amount / max", "amount // max"), "unexpected"),
        (
            ("sources: [customer_stats]", "sources: [nope]"),
            "reads feature view nope, which is not defined",
        ),
        (
            ("dtype: Bool, expression", "dtype: String, expression"),
            "computed features are Float64",
        ),
        (
            (
                "- {name: score, dtype: Float64, udf: order_score}",
                "- {name: score, dtype: Float64}",
            ),
            "exactly one of expression or udf",
        ),
    ] {
        let yaml = REPO.replace(change.0, change.1);
        assert_ne!(yaml, REPO, "{change:?}");
        let e = FeatureRepo::from_yaml(&yaml).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains(says), "{change:?}: {e}");
    }
    // A closure this process did not register.
    let dir = tempfile::tempdir().unwrap();
    let fs = FeatureStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ParquetFiles::new(dir.path())),
    );
    let _ = store(dir.path()); // writes the source
    let repo = FeatureRepo::new("shop")
        .with_entity(Entity::new("customer", "customer_id"))
        .with_source(DataSource::parquet(
            "stats",
            "stats.parquet",
            "event_timestamp",
        ))
        .with_feature_view(
            FeatureView::new("customer_stats", ["customer"], "stats")
                .with_feature("avg_spend", ValueType::Float64),
        )
        .with_on_demand_feature_view(
            OnDemandFeatureView::new("odfv", ["customer_stats"]).with_udf(
                "x",
                ValueType::Float64,
                "missing_closure",
            ),
        )
        .with_feature_service(FeatureService::new("s", ["odfv"]));
    fs.registry().apply(&repo).await.unwrap();
    let entities = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(TimestampSecondArray::from(vec![15])),
        ),
    ])
    .unwrap();
    let e = fs
        .get_historical_features(
            "shop",
            &[entities],
            &FeatureSelection::service("s"),
            HistoricalOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("missing_closure"), "{e}");
}
