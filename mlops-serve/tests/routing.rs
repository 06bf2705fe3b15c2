#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Canary routing (exact split, sticky routing keys, over HTTP too) and shadow traffic (answers
//! discarded, differences and failures recorded).

use std::sync::Arc;
use std::time::Duration;

use mlops_core::serve::{InferRequest, Server};
use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, Model, ModelArtifact, Tensor};
use mlops_serve::{HttpOptions, ModelServer, ROUTING_KEY, Routing};
use serde_json::json;

fn n(name: &str) -> mlops_core::ModelName {
    name.parse().unwrap()
}

fn v(n: u64) -> mlops_core::Version {
    mlops_core::Version::new(n).unwrap()
}

/// `x + offset`; with `fail`, errors on negative inputs.
#[derive(Debug)]
struct AddOffset {
    offset: f64,
    fail_on_negative: bool,
    sig: Signature,
}

impl Model for AddOffset {
    fn flavor(&self) -> &str {
        "add"
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn predict(&self, inputs: &[Tensor]) -> mlops_core::Result<Vec<Tensor>> {
        let x = inputs[0].to_f64()?;
        if self.fail_on_negative && x.iter().any(|v| *v < 0.0) {
            return Err(mlops_core::Error::invalid("input", "negative"));
        }
        let y: Vec<f64> = x.iter().map(|v| v + self.offset).collect();
        Ok(vec![Tensor::from_f64("y", inputs[0].shape().to_vec(), &y)?])
    }
    fn to_artifact(&self) -> mlops_core::Result<ModelArtifact> {
        Err(mlops_core::Error::not_supported(
            "operation",
            "to_artifact",
            "test",
        ))
    }
}

fn add(offset: f64, fail_on_negative: bool) -> Arc<AddOffset> {
    Arc::new(AddOffset {
        offset,
        fail_on_negative,
        sig: Signature::tensors(
            vec![TensorSpec::new("x", DataType::Fp64, vec![-1])],
            vec![TensorSpec::new("y", DataType::Fp64, vec![-1])],
        ),
    })
}

fn req(v: f64) -> InferRequest {
    InferRequest::new(n("m"), vec![Tensor::from_f64("x", vec![1], &[v]).unwrap()])
}

fn server() -> ModelServer {
    let s = ModelServer::builder("t").build();
    s.load_model(&n("m"), v(1), add(0.0, false)).unwrap();
    s.load_model(&n("m"), v(2), add(100.0, false)).unwrap();
    s.load_model(&n("m"), v(3), add(0.5, true)).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_gets_its_share_and_keys_stick() {
    let s = server();
    s.set_routing(&n("m"), Routing::to(v(1)).with_canary(v(2), 10))
        .unwrap();
    let mut to_canary = 0;
    for _ in 0..1000 {
        let r = s.infer(req(1.0)).await.unwrap();
        if r.model_version == Some(v(2)) {
            assert_eq!(r.outputs[0].to_f64().unwrap(), vec![101.0]);
            to_canary += 1;
        }
    }
    assert_eq!(to_canary, 100);
    for user in ["u1", "u2", "u3", "u4"] {
        let mut versions = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let mut r = req(1.0);
            r.parameters.insert(ROUTING_KEY.into(), json!(user));
            versions.insert(s.infer(r).await.unwrap().model_version.unwrap());
        }
        assert_eq!(versions.len(), 1, "{user} saw {versions:?}");
    }
    // An explicit version bypasses routing.
    let r = s.infer(req(1.0).with_version(v(3))).await.unwrap();
    assert_eq!(r.model_version, Some(v(3)));
    // Routing must name loaded versions; unloading one of them drops the routing.
    assert!(
        s.set_routing(&n("m"), Routing::to(v(1)).with_canary(v(9), 5))
            .unwrap_err()
            .is_not_found()
    );
    s.unload(&n("m"), Some(v(2))).await.unwrap();
    for _ in 0..50 {
        assert_eq!(s.infer(req(1.0)).await.unwrap().model_version, Some(v(3)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_see_every_request_and_never_answer() {
    let s = server();
    s.set_routing(&n("m"), Routing::to(v(1)).with_shadow(v(3)))
        .unwrap();
    for i in 0..20 {
        let x = if i % 5 == 0 { -1.0 } else { f64::from(i) };
        let r = s.infer(req(x)).await.unwrap();
        assert_eq!(r.model_version, Some(v(1)));
        assert_eq!(
            r.outputs[0].to_f64().unwrap(),
            vec![x],
            "the shadow's answer is never sent"
        );
    }
    let mut stats = s.shadow_stats(&n("m"));
    for _ in 0..200 {
        if stats.requests == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        stats = s.shadow_stats(&n("m"));
    }
    assert_eq!(stats.requests, 20);
    assert_eq!(stats.failures, 4);
    assert_eq!(stats.differing, 16);
    assert_eq!(stats.max_difference, 0.5);
    assert!(stats.latency_seconds > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_key_header_routes_http_requests() {
    let s = Arc::new(server());
    s.set_routing(&n("m"), Routing::to(v(1)).with_canary(v(2), 50))
        .unwrap();
    let app = mlops_serve::model_server_router(s, HttpOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mlops_serve::http::serve(
        listener,
        app,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let body = json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]});
    let mut seen = std::collections::BTreeMap::new();
    for user in 0..40 {
        let mut versions = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let r: serde_json::Value = client
                .post(format!("{base}/v2/models/m/infer"))
                .header("X-Routing-Key", format!("user-{user}"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            versions.insert(r["model_version"].as_str().unwrap().to_string());
        }
        assert_eq!(versions.len(), 1);
        *seen
            .entry(versions.into_iter().next().unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(
        seen.len(),
        2,
        "40 users at 50% all landed on one version: {seen:?}"
    );
}
