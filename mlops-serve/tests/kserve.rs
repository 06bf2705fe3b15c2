#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! KServe export: a ServingRuntime and an InferenceService in KServe's model form, parsed back
//! as real Kubernetes types.

use serde_json::json;

use mlops_serve::kserve::{self, KServeExport};

fn uri() -> mlops_core::ModelUri {
    "models:/churn@champion".parse().unwrap()
}

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .collect()
}

#[test]
fn onnx_models_export_with_their_format_the_v2_protocol_and_both_ports() {
    let yaml = KServeExport::new("iris", "ghcr.io/acme/mlops:1.0", uri(), "s3://models/prod")
        .with_model_format(kserve::ONNX_FORMAT)
        .to_yaml()
        .unwrap();
    let docs = documents(&yaml);
    assert_eq!(docs.len(), 2);
    let (runtime, isvc) = (&docs[0], &docs[1]);
    assert_eq!(runtime["kind"], "ServingRuntime");
    assert_eq!(runtime["metadata"]["name"], kserve::RUNTIME_NAME);
    assert_eq!(
        runtime["spec"]["protocolVersions"],
        json!(["v2", "grpc-v2"])
    );
    assert_eq!(
        runtime["spec"]["supportedModelFormats"],
        json!([{"name": "mlops", "autoSelect": false}, {"name": "onnx", "autoSelect": false}])
    );
    assert_eq!(
        runtime["spec"]["containers"][0]["args"],
        json!(["serve", "--host", "0.0.0.0"])
    );

    assert_eq!(isvc["apiVersion"], "serving.kserve.io/v1beta1");
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
        "Standard"
    );
    let model = &isvc["spec"]["predictor"]["model"];
    assert_eq!(model["modelFormat"], json!({"name": "onnx"}));
    assert_eq!(model["protocolVersion"], "v2");
    assert_eq!(model["runtime"], kserve::RUNTIME_NAME);
    // Appended to the runtime's arguments by KServe.
    assert_eq!(
        model["args"],
        json!([
            "--model",
            "models:/churn@champion",
            "--port",
            "8080",
            "--grpc-port",
            "8081"
        ])
    );
    // HTTP first (the Service's port 80 and the probes), gRPC second.
    assert_eq!(
        model["ports"],
        json!([
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "grpc", "containerPort": 8081, "protocol": "TCP"}
        ])
    );
    assert_eq!(
        model["env"][0],
        json!({"name": "MLOPS_STORE", "value": "s3://models/prod"})
    );
    assert_eq!(
        model["readinessProbe"]["httpGet"]["path"],
        "/v2/health/ready"
    );
    let parsed = kserve::parse(&yaml).unwrap();
    assert_eq!(
        parsed.spec.predictor.model.container.image.as_deref(),
        Some("ghcr.io/acme/mlops:1.0")
    );
    assert_eq!(
        kserve::parse_runtime(&yaml).unwrap().spec.containers.len(),
        1
    );
}

#[test]
fn a_canary_uses_knative_mode_with_one_http_port() {
    let yaml = KServeExport::new("churn", "ghcr.io/acme/mlops:1.0", uri(), "s3://models/prod")
        .with_canary(10)
        .to_yaml()
        .unwrap();
    let isvc = &documents(&yaml)[1];
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
        "Knative"
    );
    assert_eq!(isvc["spec"]["predictor"]["canaryTrafficPercent"], 10);
    let model = &isvc["spec"]["predictor"]["model"];
    assert_eq!(model["modelFormat"]["name"], "mlops");
    assert_eq!(
        model["ports"],
        json!([{"name": "http1", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        model["args"],
        json!(["--model", "models:/churn@champion", "--port", "8080"])
    );
    // The container fields are a real k8s Container.
    let _: k8s_openapi::api::core::v1::Container = serde_json::from_value(model.clone()).unwrap();
}

#[test]
fn without_grpc_only_http_is_declared() {
    let yaml = KServeExport::new("churn", "img", uri(), "s3://m")
        .without_grpc()
        .to_yaml()
        .unwrap();
    let model = &documents(&yaml)[1]["spec"]["predictor"]["model"];
    assert_eq!(
        model["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert!(
        !model["args"].to_string().contains("--grpc-port"),
        "{}",
        model["args"]
    );
}

#[test]
fn invalid_exports_and_manifests_are_refused() {
    for bad in [
        KServeExport::new("Churn_Model", "img", uri(), "s3://m"),
        KServeExport::new("x", "img", "runs:/abc/model".parse().unwrap(), "s3://m"),
        KServeExport::new("x", "img", uri(), "s3://m").with_model_format("pickle"),
    ] {
        assert!(bad.to_yaml().unwrap_err().is_invalid_argument());
    }
    let yaml = KServeExport::new("churn", "img", uri(), "s3://m")
        .with_canary(10)
        .to_yaml()
        .unwrap();
    let no_mode = yaml.replace("serving.kserve.io/deploymentMode: Knative", "other: x");
    assert!(
        kserve::parse(&no_mode)
            .unwrap_err()
            .to_string()
            .contains("Knative")
    );
    assert!(kserve::parse(&yaml.replace("InferenceService", "Deployment")).is_err());
    assert!(
        kserve::parse(&yaml.replace("canaryTrafficPercent", "canaryPercent")).is_err(),
        "unknown fields are refused"
    );
}
