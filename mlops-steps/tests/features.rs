//! The feature store over the store's datasets: offline pushes append to a dataset source as
//! new versions — concurrent pushes lose no row, bad rows write nothing — and the pushed rows
//! reach the next training set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow::datatypes::Float64Type;
use mlops_core::store::RefVersion;
use mlops_core::{ErrorKind, Store};
use mlops_features::{
    DataSource, Entity, FeatureRepo, FeatureSelection, FeatureStore, FeatureValue, FeatureView,
    HistoricalOptions, MaterializeOptions, MemoryOnlineStore, OnlineFeatures, PushTarget,
    ValueType,
};
use mlops_steps::features::StoreSources;
use mlops_storage::MemoryStore;
use mlops_storage::{Datasets, WriteOptions};

const HOUR_US: i64 = 3_600_000_000;

fn stats(ids: &[i64], hours: &[i64], spend: &[f64]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(
                TimestampMicrosecondArray::from(
                    hours.iter().map(|h| h * HOUR_US).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ),
        ("spend", Arc::new(Float64Array::from(spend.to_vec()))),
    ])
    .unwrap()
}

async fn setup() -> (Arc<dyn Store>, OnlineFeatures) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let batch = stats(&[1, 2], &[1, 1], &[10.0, 20.0]);
    Datasets::new(store.clone())
        .write(
            &"customer_stats".parse().unwrap(),
            batch.schema(),
            futures::stream::iter([Ok(batch)]),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let repo = FeatureRepo::new("churn")
        .with_entity(Entity::new("customer", "customer_id"))
        .with_source(DataSource::dataset(
            "stats",
            "customer_stats".parse().unwrap(),
            None,
            "event_timestamp",
        ))
        .with_feature_view(
            FeatureView::new("customer_stats", ["customer"], "stats")
                .with_feature("spend", ValueType::Float64),
        );
    let fs = FeatureStore::new(
        store.clone(),
        Arc::new(StoreSources::new(store.clone(), ".")),
    );
    fs.registry().apply(&repo).await.unwrap();
    let online = Arc::new(MemoryOnlineStore::new());
    fs.materialize(
        "churn",
        online.as_ref(),
        0,
        i64::MAX / 2,
        &MaterializeOptions::default(),
    )
    .await
    .unwrap();
    let client = OnlineFeatures::open(fs, online, "churn").await.unwrap();
    (store, client)
}

fn row(id: i64, hour: i64, spend: f64) -> Vec<(String, Vec<FeatureValue>)> {
    vec![
        ("customer_id".into(), vec![FeatureValue::Int64(id)]),
        (
            "event_timestamp".into(),
            vec![FeatureValue::Timestamp(hour * HOUR_US)],
        ),
        ("spend".into(), vec![FeatureValue::Float64(spend)]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_offline_pushes_lose_no_row_and_reach_training_sets() {
    let (store, client) = setup().await;
    let pushes = (0..8).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .push_to("stats", &row(100 + i, 2, i as f64), PushTarget::Offline)
                .await
        })
    });
    for p in futures::future::join_all(pushes).await {
        let report = p.unwrap().unwrap();
        assert!(report.views.is_empty(), "offline only: {report:?}");
        assert!(report.offline.is_some());
    }
    let datasets = Datasets::new(store.clone());
    let latest = datasets
        .version(&"customer_stats".parse().unwrap(), RefVersion::Latest)
        .await
        .unwrap();
    assert_eq!(latest.version.get(), 9, "one version per push");
    assert_eq!(latest.manifest.rows, 10, "2 rows + 8 pushed, none lost");

    // Online only: the online store has the row, the dataset does not change.
    let report = client
        .push_to("stats", &row(1, 3, 99.0), PushTarget::Online)
        .await
        .unwrap();
    assert_eq!(report.views, [("customer_stats".to_owned(), 1, 0)]);
    assert!(report.offline.is_none());
    let selection = FeatureSelection::features(["customer_stats:spend"]).unwrap();
    let got = client
        .get_online_features(
            &selection,
            &[("customer_id".into(), vec![FeatureValue::Int64(1)])],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        got.get("spend").unwrap().values,
        [FeatureValue::Float64(99.0)]
    );

    // Both: the next training set sees the row.
    client
        .push_to("stats", &row(2, 4, 42.0), PushTarget::OnlineAndOffline)
        .await
        .unwrap();
    let entities = stats(&[2, 2, 105], &[3, 5, 5], &[0.0, 0.0, 0.0]);
    let entities = entities.project(&[0, 1]).unwrap();
    let fs = FeatureStore::new(
        store.clone(),
        Arc::new(StoreSources::new(store.clone(), ".")),
    );
    let set = fs
        .get_historical_features(
            "churn",
            &[entities],
            &selection,
            HistoricalOptions::default(),
        )
        .await
        .unwrap();
    let spend: Vec<Option<f64>> = set
        .rows
        .column_by_name("spend")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(spend, [Some(20.0), Some(42.0), Some(5.0)]);
    assert_eq!(
        set.lineage.sources[0].location, "dataset customer_stats@10",
        "the training set records the pushed version"
    );
}

#[tokio::test]
async fn bad_offline_pushes_write_nothing() {
    let (store, client) = setup().await;
    let mut extra = row(3, 2, 1.0);
    extra.push(("age".into(), vec![FeatureValue::Int64(40)]));
    let e = client
        .push_to("stats", &extra, PushTarget::OnlineAndOffline)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("no column age"), "{e}");
    let mut missing = row(3, 2, 1.0);
    missing.retain(|(n, _)| n != "spend");
    let e = client
        .push_to("stats", &missing, PushTarget::Offline)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no column spend"), "{e}");
    let mut wrong = row(3, 2, 1.0);
    wrong[2].1 = vec![FeatureValue::String("lots".into())];
    let e = client
        .push_to("stats", &wrong, PushTarget::OnlineAndOffline)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let latest = Datasets::new(store)
        .version(&"customer_stats".parse().unwrap(), RefVersion::Latest)
        .await
        .unwrap();
    assert_eq!(latest.version.get(), 1, "no version from a failed push");
    let got = client
        .get_online_features(
            &FeatureSelection::features(["customer_stats:spend"]).unwrap(),
            &[("customer_id".into(), vec![FeatureValue::Int64(3)])],
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        got.get("spend").unwrap().statuses,
        [mlops_features::FeatureStatus::NotFound]
    );
}

const PIPELINE: &str = r#"
pipeline: churn
steps:
  - {name: labels, uses: dataset, with: {name: labels}}
  - name: training
    uses: training_set
    needs: {entities: labels.dataset}
    with: {service: churn_v1, dataset: churn-training}
  - name: train
    uses: train
    needs: {data: training.dataset}
    with: {target: churned, model: logistic, epochs: 20, learning_rate: 0.1, register: churn, assess: false}
"#;

#[tokio::test]
async fn a_pipeline_trains_on_a_feature_service_cached_until_a_source_moves() {
    use mlops_core::Registry;
    use mlops_pipeline::{PipelineSpec, Runner, StepStatus};
    use mlops_steps::{StepEnv, builtin};
    use mlops_storage::{MemoryRegistry, MemoryTracker};

    let (store, client) = setup().await;
    // Two more customers' stats, then the service.
    let fs = FeatureStore::new(
        store.clone(),
        Arc::new(StoreSources::new(store.clone(), ".")),
    );
    let mut repo = fs
        .registry()
        .get("churn", RefVersion::Latest)
        .await
        .unwrap()
        .repo;
    repo = repo.with_feature_service(mlops_features::FeatureService::new(
        "churn_v1",
        ["customer_stats:spend"],
    ));
    fs.registry().apply(&repo).await.unwrap();
    // Labels: spend above 15 churns; `region` is a label-side column the model must not read.
    let n = 200;
    let ids: Vec<i64> = (0..n).map(|i| i % 2 + 1).collect();
    let hours: Vec<i64> = (0..n).map(|_| 2).collect();
    let labels = RecordBatch::try_from_iter([
        (
            "customer_id",
            Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(
                TimestampMicrosecondArray::from(
                    hours.iter().map(|h| h * HOUR_US).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "churned",
            Arc::new(Int64Array::from(
                ids.iter().map(|&i| i64::from(i == 2)).collect::<Vec<_>>(),
            )),
        ),
        (
            "region",
            Arc::new(Float64Array::from(
                (0..n).map(|i| i as f64).collect::<Vec<_>>(),
            )),
        ),
    ])
    .unwrap();
    Datasets::new(store.clone())
        .write(
            &"labels".parse().unwrap(),
            labels.schema(),
            futures::stream::iter([Ok(labels)]),
            WriteOptions::default().with_metadata("license", "CC0-1.0"),
        )
        .await
        .unwrap();
    let registry = Arc::new(MemoryRegistry::new());
    let steps = builtin(StepEnv {
        store: store.clone(),
        tracker: Arc::new(MemoryTracker::new()),
        registry: registry.clone(),
        experiment: "churn".into(),
    });
    let pipeline = PipelineSpec::from_yaml(PIPELINE)
        .unwrap()
        .build(&steps)
        .unwrap();
    let runner = Runner::new(store.clone());
    let first = runner.run(&pipeline).await.unwrap().into_result().unwrap();
    let training = &first.step("training").unwrap().outputs["dataset"].value;
    assert_eq!(training["name"], "churn-training");
    assert_eq!(training["rows"], 200);
    let version = registry
        .get_model_version(
            &"churn".parse().unwrap(),
            mlops_core::Version::new(1).unwrap(),
        )
        .await
        .unwrap();
    let signature = version.signature.expect("a signature");
    let mlops_core::signature::Schema::Columns(inputs) = &signature.inputs else {
        panic!("column inputs: {signature:?}");
    };
    let names: Vec<_> = inputs.iter().filter_map(|c| c.name.clone()).collect();
    assert_eq!(names, ["spend"], "the model reads the feature columns only");
    let lineage = Datasets::new(store.clone())
        .version(&"churn-training".parse().unwrap(), RefVersion::Latest)
        .await
        .unwrap()
        .manifest
        .metadata;
    assert_eq!(lineage["features.service"], "churn_v1");
    assert_eq!(lineage["features.columns"], r#"["spend"]"#);
    assert_eq!(
        lineage["license"], "CC0-1.0",
        "the entity rows' metadata carries over"
    );

    // Nothing moved: all cached.
    let second = runner.run(&pipeline).await.unwrap();
    assert!(
        second.steps.iter().all(|s| s.status == StepStatus::Cached),
        "{:?}",
        second.executed()
    );
    // A push to the source makes a new source version: the training set and the model re-run.
    client
        .push_to("stats", &row(1, 1, 11.0), PushTarget::Offline)
        .await
        .unwrap();
    let third = runner.run(&pipeline).await.unwrap().into_result().unwrap();
    assert_eq!(third.executed(), ["training", "train"]);
    // A definitions change does too.
    let repo = repo.with_feature_service(mlops_features::FeatureService::new(
        "other",
        ["customer_stats:spend"],
    ));
    fs.registry().apply(&repo).await.unwrap();
    let fourth = runner.run(&pipeline).await.unwrap().into_result().unwrap();
    assert_eq!(fourth.executed(), ["training", "train"]);

    // Bad parameters are refused before anything runs.
    let bad = PipelineSpec::from_yaml(&PIPELINE.replace("service: churn_v1, ", ""))
        .unwrap()
        .build(&steps)
        .unwrap_err();
    assert!(bad.to_string().contains("service or features"), "{bad}");
}
