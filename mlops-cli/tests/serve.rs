#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops serve`: models from the store's registry by URI, bearer token, canary, the deploy
//! gate, graceful shutdown on SIGINT and SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use mlops::model::Model;
use mlops::registry::{CreateVersionOptions, RegistryObject};
use mlops::serve::IdentityModel;
use mlops::signature::{Signature, TensorSpec};
use mlops::storage::{Artifacts, ObjectStoreStore, StoreRegistry};
use mlops::{DataType, ModelName, Registry, Tag};

async fn register(dir: &Path, approve: bool) {
    let store: Arc<dyn mlops::Store> =
        Arc::new(ObjectStoreStore::open(dir.join("mlops-data").to_str().unwrap(), &[]).unwrap());
    let registry = StoreRegistry::new(store.clone());
    let artifacts = Artifacts::new(store);
    let model = IdentityModel::new(Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp32, vec![-1, 2])],
        vec![TensorSpec::new("y", DataType::Fp32, vec![-1, 2])],
    ))
    .unwrap();
    let tree = artifacts
        .put_model(&model.to_artifact().unwrap())
        .await
        .unwrap();
    let name = ModelName::new("echo").unwrap();
    registry
        .create_registered_model(&name, Default::default())
        .await
        .unwrap();
    for _ in 0..2 {
        let v = registry
            .create_model_version(
                &name,
                CreateVersionOptions::new(Artifacts::model_source(&tree)),
            )
            .await
            .unwrap();
        if approve {
            registry
                .set_tag(
                    &RegistryObject::Version(name.clone(), v.version),
                    Tag::new("approved".parse().unwrap(), "true").unwrap(),
                )
                .await
                .unwrap();
        }
    }
    registry
        .set_alias(
            &name,
            &"champion".parse().unwrap(),
            mlops::Version::new(1).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_models_from_the_registry_until_sigint() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path(), true).await;
    std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir.path())
        .env_remove("MLOPS_STORE")
        .args([
            "serve",
            "--model",
            "models:/echo@champion",
            "--port",
            "0",
            "--token-file",
            "token",
            "--canary",
            "models:/echo/2=50",
            "--max-batch",
            "8",
            "--batch-delay-ms",
            "1",
            "--policy",
            dir.path()
                .join("token")
                .parent()
                .unwrap()
                .join("no-such-policy")
                .to_str()
                .unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A missing policy path is bad input: exit 2 before serving.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2));

    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir.path())
        .env_remove("MLOPS_STORE")
        .args([
            "serve",
            "--model",
            "models:/echo@champion",
            "--port",
            "0",
            "--token-file",
            "token",
            "--canary",
            "models:/echo/2=50",
            "--max-batch",
            "8",
            "--batch-delay-ms",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().expect("mlops serve exited early").unwrap();
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    assert!(
        printed[0].contains("loaded models:/echo@champion as echo version 1"),
        "{printed:?}"
    );
    assert!(
        printed.iter().any(|l| l.contains("50% to version 2")),
        "{printed:?}"
    );
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/v2/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        client
            .get(format!("{base}/v2/models/echo"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let mut versions = std::collections::BTreeSet::new();
    for i in 0..10 {
        let r: serde_json::Value = client
            .post(format!("{base}/v2/models/echo/infer"))
            .bearer_auth("t0ken")
            .json(&serde_json::json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [i, 1]}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            r["outputs"][0]["data"],
            serde_json::json!([f64::from(i), 1.0])
        );
        versions.insert(r["model_version"].as_str().unwrap().to_string());
    }
    assert_eq!(
        versions.len(),
        2,
        "a 50% canary served no request: {versions:?}"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_gate_refuses_unapproved_versions() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path(), false).await;
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/extra.rego"),
        "package extra\n\nallow := true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir.path())
        .env_remove("MLOPS_STORE")
        .args([
            "serve",
            "--model",
            "models:/echo@champion",
            "--port",
            "0",
            "--policy",
            "policies",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs approval") && err.contains("before deploy"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_kserve_writes_an_inference_service() {
    let dir = tempfile::tempdir().unwrap();
    register(dir.path(), true).await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(dir.path())
            .env_remove("MLOPS_STORE")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "models",
        "kserve",
        "models:/echo@champion",
        "--image",
        "ghcr.io/acme/mlops:1",
        "--store-url",
        "s3://models/prod",
        "--canary",
        "10",
        "-o",
        "isvc.yaml",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = std::fs::read_to_string(dir.path().join("isvc.yaml")).unwrap();
    let isvc = mlops::serve::kserve::parse(&yaml).unwrap();
    assert_eq!(isvc.metadata.name.as_deref(), Some("echo"));
    assert_eq!(isvc.spec.predictor.canary_traffic_percent, Some(10));
    let out = run(&["models", "kserve", "models:/echo@nope", "--image", "x"]);
    assert_eq!(out.status.code(), Some(2), "an unknown alias is bad input");
}

#[test]
fn model_directories_serve_without_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let model = IdentityModel::new(Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp32, vec![-1])],
        vec![TensorSpec::new("y", DataType::Fp32, vec![-1])],
    ))
    .unwrap();
    mlops::serve::write_model_dir(&model.to_artifact().unwrap(), &dir.path().join("m")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir.path())
        .env_remove("MLOPS_STORE")
        .args(["serve", "--model-dir", "echo=m", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("loaded m as echo version 1"), "{first}");
    let listening = lines.next().unwrap().unwrap();
    assert!(
        listening.starts_with("listening on http://127.0.0.1:"),
        "{listening}"
    );
    // Kubernetes stops pods with SIGTERM: the server drains and exits cleanly on it too.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM: shutting down")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn explain_answers_attributions_against_the_named_background() {
    use arrow::array::{ArrayRef, Float64Array, RecordBatch};
    let dir = tempfile::tempdir().unwrap();
    let model = mlops::serve::linear::LinearModel::new(mlops::serve::linear::LinearParams {
        coef: vec![vec![2.0, -1.0]],
        intercept: vec![0.0],
        link: mlops::serve::linear::Link::Identity,
    })
    .unwrap();
    mlops::serve::write_model_dir(&model.to_artifact().unwrap(), &dir.path().join("m")).unwrap();
    // The background: a = 1, b = 3 on average.
    let bg = RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Float64Array::from(vec![0.0, 2.0])) as ArrayRef,
        ),
        ("b", Arc::new(Float64Array::from(vec![2.0, 4.0]))),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.path().join("bg.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, bg.schema(), None).unwrap();
    w.write(&bg).unwrap();
    w.close().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir.path())
        .env_remove("MLOPS_STORE")
        .args([
            "serve",
            "--model-dir",
            "lin=m",
            "--explain",
            "--explain-background",
            "lin=bg.parquet",
            "--port",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            base = rest.split_whitespace().next().unwrap().to_owned();
            break;
        }
    }
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let r = reqwest::Client::new()
        .post(format!("{base}/v2/models/lin/explain"))
        .json(&serde_json::json!({"inputs": [
            {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [3.0, 1.0]}
        ]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(status, 200, "{body}");
    // Exact for a linear model: 2·(3 − 1) and −(1 − 3).
    let values = body["outputs"][0]["data"].as_array().unwrap();
    assert!((values[0].as_f64().unwrap() - 4.0).abs() < 1e-6, "{body}");
    assert!((values[1].as_f64().unwrap() - 2.0).abs() < 1e-6, "{body}");
}
