#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! KServe InferenceService export, parsed back as real Kubernetes types.

use serde_json::json;

#[test]
fn kserve_manifests_read_back_as_real_kubernetes_types() {
    use mlops_serve::kserve::{self, KServeExport};
    let uri: mlops_core::ModelUri = "models:/churn@champion".parse().unwrap();
    let yaml = KServeExport::new(
        "churn",
        "ghcr.io/acme/mlops:1.0",
        uri.clone(),
        "s3://models/prod",
    )
    .with_canary(10)
    .to_yaml()
    .unwrap();
    let doc: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(doc["apiVersion"], "serving.kserve.io/v1beta1");
    assert_eq!(
        doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
        "Knative"
    );
    assert_eq!(doc["spec"]["predictor"]["canaryTrafficPercent"], 10);
    let c = &doc["spec"]["predictor"]["containers"][0];
    assert_eq!(c["name"], "kserve-container");
    assert_eq!(
        c["args"],
        json!([
            "serve",
            "--model",
            "models:/churn@champion",
            "--host",
            "0.0.0.0",
            "--port",
            "8080"
        ])
    );
    assert_eq!(
        c["env"][0],
        json!({"name": "MLOPS_STORE", "value": "s3://models/prod"})
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
    // The container is a real k8s Container.
    let _: k8s_openapi::api::core::v1::Container = serde_json::from_value(c.clone()).unwrap();
    let full = KServeExport::new("churn", "img", uri.clone(), "s3://m")
        .to_yaml()
        .unwrap();
    assert!(!full.contains("canaryTrafficPercent") && !full.contains("deploymentMode"));
    // Invalid exports and manifests are refused.
    assert!(
        KServeExport::new("Churn_Model", "img", uri.clone(), "s3://m")
            .to_yaml()
            .unwrap_err()
            .is_invalid_argument()
    );
    assert!(
        KServeExport::new("x", "img", "runs:/abc/model".parse().unwrap(), "s3://m")
            .to_yaml()
            .is_err()
    );
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
