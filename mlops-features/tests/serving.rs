//! A served model completed with its features by entity key ([`FeatureLookup`] in a
//! `ModelServer`): looked-up values reach the model in its signature's types, request features
//! override, declared defaults fill what the online store lacks, and a missing feature without
//! one is an InvalidArgument naming it and the row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arrow::array::TimestampSecondArray;
use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use mlops_core::model::{Model, ModelArtifact};
use mlops_core::serve::{InferRequest, Server};
use mlops_core::signature::{ColumnSpec, ColumnType, Schema, Signature};
use mlops_core::{ErrorKind, Result, Tensor, Version};
use mlops_features::{
    DataSource, Entity, FeatureLookup, FeatureRepo, FeatureSelection, FeatureService, FeatureStore,
    FeatureValue, FeatureView, MaterializeOptions, MemoryOnlineStore, OnlineFeatures, ParquetFiles,
    ValueType,
};
use mlops_serve::ModelServer;
use mlops_storage::MemoryStore;

/// Echoes the inputs it got, so the test sees what the lookup made of the request.
#[derive(Debug)]
struct Echo(Signature);

impl Model for Echo {
    fn flavor(&self) -> &str {
        "echo"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(inputs
            .iter()
            .map(|t| t.clone().with_name(format!("got_{}", t.name())))
            .collect())
    }
    fn to_artifact(&self) -> Result<ModelArtifact> {
        Ok(ModelArtifact::new("echo"))
    }
}

fn write_parquet(path: &std::path::Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

async fn server(defaults: &[(&str, FeatureValue)]) -> (tempfile::TempDir, ModelServer) {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    write_parquet(
        &dir.path().join("stats.parquet"),
        &RecordBatch::try_from_iter([
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![now - 10; 3])),
            ),
            (
                "spend",
                Arc::new(Float64Array::from(vec![Some(10.5), Some(20.0), None])),
            ),
            (
                "plan",
                Arc::new(StringArray::from(vec!["gold", "basic", "pro"])),
            ),
            ("tenure", Arc::new(Int64Array::from(vec![12, 3, 7]))),
        ])
        .unwrap(),
    );
    let repo = FeatureRepo::new("churn")
        .with_entity(Entity::new("customer", "customer_id"))
        .with_source(DataSource::parquet(
            "stats",
            "stats.parquet",
            "event_timestamp",
        ))
        .with_feature_view(
            FeatureView::new("customer_stats", ["customer"], "stats")
                .with_feature("spend", ValueType::Float64)
                .with_feature("plan", ValueType::String)
                .with_feature("tenure", ValueType::Int64),
        )
        .with_feature_service(FeatureService::new("churn_v1", ["customer_stats"]));
    let fs = FeatureStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ParquetFiles::new(dir.path())),
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
    let mut lookup = FeatureLookup::new(client, FeatureSelection::service("churn_v1"));
    for (name, v) in defaults {
        lookup = lookup.with_default(*name, v.clone());
    }
    // The model reads spend (double) and plan (string) — not tenure, not the key.
    let signature = Signature {
        inputs: Schema::Columns(vec![
            ColumnSpec::new("spend", ColumnType::Double),
            ColumnSpec::new("plan", ColumnType::String),
        ]),
        outputs: None,
    };
    let server = ModelServer::builder("test")
        .preprocessor("churn".parse().unwrap(), Arc::new(lookup))
        .build();
    server
        .load_model(
            &"churn".parse().unwrap(),
            Version::FIRST,
            Arc::new(Echo(signature)),
        )
        .unwrap();
    (dir, server)
}

fn output<'a>(outputs: &'a [Tensor], name: &str) -> &'a Tensor {
    outputs
        .iter()
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("no output {name}: {outputs:?}"))
}

#[tokio::test]
async fn requests_are_completed_with_features_by_entity_key() {
    let (_dir, server) = server(&[]).await;
    let request = InferRequest::new(
        "churn".parse().unwrap(),
        vec![Tensor::from_i64("customer_id", vec![2], &[2, 1]).unwrap()],
    );
    let answer = server.infer(request).await.unwrap();
    assert_eq!(
        answer.outputs.len(),
        2,
        "spend and plan only: {:?}",
        answer.outputs
    );
    assert_eq!(
        output(&answer.outputs, "got_spend").to_f64().unwrap(),
        [20.0, 10.5]
    );
    let plans = output(&answer.outputs, "got_plan");
    assert_eq!(
        plans.to_byte_strings().unwrap(),
        [b"basic".as_slice(), b"gold".as_slice()]
    );

    // A feature the request carries overrides the store's.
    let request = InferRequest::new(
        "churn".parse().unwrap(),
        vec![
            Tensor::from_i64("customer_id", vec![1], &[1]).unwrap(),
            Tensor::from_f64("spend", vec![1], &[99.0]).unwrap(),
        ],
    );
    let answer = server.infer(request).await.unwrap();
    assert_eq!(
        output(&answer.outputs, "got_spend").to_f64().unwrap(),
        [99.0]
    );

    // Customer 3's spend is null and 4 is unknown: without defaults, a 400 naming them.
    let request = InferRequest::new(
        "churn".parse().unwrap(),
        vec![Tensor::from_i64("customer_id", vec![3], &[1, 3, 4]).unwrap()],
    );
    let e = server.infer(request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let msg = e.to_string();
    assert!(
        msg.contains("spend (row 1: NULL_VALUE, row 2: NOT_FOUND)"),
        "{msg}"
    );
    assert!(msg.contains("plan (row 2: NOT_FOUND)"), "{msg}");

    // No entity key: named.
    let request = InferRequest::new(
        "churn".parse().unwrap(),
        vec![Tensor::from_f64("spend", vec![1], &[1.0]).unwrap()],
    );
    let e = server.infer(request).await.unwrap_err();
    assert!(e.to_string().contains("no input customer_id"), "{e}");
}

#[tokio::test]
async fn declared_defaults_fill_what_the_store_lacks() {
    let (_dir, server) = server(&[
        ("spend", FeatureValue::Float64(0.0)),
        ("plan", FeatureValue::String("basic".into())),
    ])
    .await;
    let request = InferRequest::new(
        "churn".parse().unwrap(),
        vec![Tensor::from_i64("customer_id", vec![3], &[1, 3, 4]).unwrap()],
    );
    let answer = server.infer(request).await.unwrap();
    assert_eq!(
        output(&answer.outputs, "got_spend").to_f64().unwrap(),
        [10.5, 0.0, 0.0]
    );
    assert_eq!(
        output(&answer.outputs, "got_plan")
            .to_byte_strings()
            .unwrap(),
        [b"gold".as_slice(), b"pro".as_slice(), b"basic".as_slice()]
    );
}
