//! Directory trees: a model folder goes in, comes back byte for byte, by digest or through a ref.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mlops_core::store::RefVersion;
use mlops_core::{ModelArtifact, RefName};
use mlops_storage::{Artifacts, GcOptions, ObjectStoreStore, verify_objects};

fn setup() -> (tempfile::TempDir, Arc<ObjectStoreStore>, Artifacts) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(ObjectStoreStore::open(dir.path().join("store").to_str().unwrap(), &[]).unwrap());
    let artifacts = Artifacts::new(store.clone());
    (dir, store, artifacts)
}

#[tokio::test]
async fn a_model_folder_round_trips_through_a_ref() {
    let (dir, store, artifacts) = setup();
    let model = dir.path().join("model");
    std::fs::create_dir_all(model.join("weights")).unwrap();
    std::fs::write(model.join("MLmodel"), "flavors: {}\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(model.join("weights/model.safetensors"), &big).unwrap();
    std::fs::write(model.join("weights/empty"), b"").unwrap();

    let stored = artifacts.put_dir(&model, "model:test").await.unwrap();
    let paths: Vec<&str> = stored.tree.files.keys().map(|p| p.as_str()).collect();
    assert_eq!(
        paths,
        vec!["MLmodel", "weights/empty", "weights/model.safetensors"]
    );
    assert_eq!(stored.tree.bytes(), big.len() as u64 + 12);

    let name: RefName = "models/churn/artifacts".parse().unwrap();
    let c = artifacts.commit(&name, &stored, "v1").await.unwrap();
    assert_eq!(c.retains.len(), 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let gc = store
        .gc(GcOptions::default().with_grace(Duration::ZERO))
        .await
        .unwrap();
    assert!(
        gc.removed.is_empty(),
        "committed trees keep their files: {gc:?}"
    );

    let resolved = artifacts.resolve(&name, RefVersion::Latest).await.unwrap();
    assert_eq!(resolved, stored);
    let out = dir.path().join("restored");
    artifacts.get_dir(&resolved.digest, &out).await.unwrap();
    assert_eq!(
        std::fs::read(out.join("weights/model.safetensors")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read_to_string(out.join("MLmodel")).unwrap(),
        "flavors: {}\n"
    );
    assert!(std::fs::read(out.join("weights/empty")).unwrap().is_empty());
    let one = artifacts
        .read_file(&resolved.tree, "MLmodel")
        .await
        .unwrap();
    assert_eq!(one, Bytes::from_static(b"flavors: {}\n"));
    assert!(
        artifacts
            .read_file(&resolved.tree, "nope")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(verify_objects(store.as_ref()).await.unwrap().is_ok());
}

#[tokio::test]
async fn model_artifacts_keep_their_flavor() {
    let (_dir, _store, artifacts) = setup();
    let artifact = ModelArtifact::new("mlops.linear")
        .with_file("card.json".parse().unwrap(), Bytes::from_static(b"{}"))
        .with_file(
            "weights.safetensors".parse().unwrap(),
            Bytes::from(vec![1u8; 64]),
        );
    let stored = artifacts.put_model(&artifact).await.unwrap();
    assert_eq!(stored.tree.kind, "model:mlops.linear");
    assert_eq!(artifacts.get_model(&stored.digest).await.unwrap(), artifact);
}

#[tokio::test]
async fn bad_directories_are_clear_errors() {
    let (dir, _store, artifacts) = setup();
    let missing = artifacts
        .put_dir(&dir.path().join("nope"), "x")
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    assert!(
        artifacts
            .put_dir(&file, "x")
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    let linked = dir.path().join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", linked.join("passwd")).unwrap();
    let err = artifacts.put_dir(&linked, "x").await.unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}
