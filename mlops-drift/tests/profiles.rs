#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Reference profiles stored beside a model version and read back without the reference data.

use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use mlops_core::drift::{DetectOptions, DriftDetector, ProfileOptions};
use mlops_core::registry::{CreateVersionOptions, Registry};
use mlops_core::{ModelName, Version};
use mlops_drift::{StatDetector, profiles};
use mlops_storage::{MemoryRegistry, MemoryStore};

fn batch(shift: f64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    let x = Float64Array::from_iter_values((0..400).map(|i| f64::from(i % 50) + shift));
    RecordBatch::try_new(schema, vec![Arc::new(x)]).unwrap()
}

#[tokio::test]
async fn a_profile_travels_with_its_model_version() {
    let (store, registry) = (MemoryStore::new(), MemoryRegistry::new());
    let name = ModelName::new("churn").unwrap();
    registry
        .create_registered_model(&name, Default::default())
        .await
        .unwrap();
    let v = registry
        .create_model_version(&name, CreateVersionOptions::new("s"))
        .await
        .unwrap();
    let d = StatDetector::new();
    let profile = d
        .profile(&[batch(0.0)], &ProfileOptions::default())
        .unwrap();
    let digest = profiles::attach(&store, &registry, &name, v.version, &profile)
        .await
        .unwrap();
    let tagged = registry.get_model_version(&name, v.version).await.unwrap();
    assert_eq!(tagged.tags.values().next().unwrap(), &digest.to_string());
    let back = profiles::for_version(&store, &registry, &name, v.version)
        .await
        .unwrap();
    assert_eq!(back, profile);
    assert!(
        d.detect(&back, &[batch(20.0)], &DetectOptions::default())
            .unwrap()
            .dataset_drift
    );
    let v2 = registry
        .create_model_version(&name, CreateVersionOptions::new("s2"))
        .await
        .unwrap();
    let err = profiles::for_version(&store, &registry, &name, v2.version)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        profiles::for_version(&store, &registry, &name, Version::new(9).unwrap())
            .await
            .unwrap_err()
            .is_not_found()
    );
}
