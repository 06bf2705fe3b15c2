#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Open Inference Protocol over HTTP on 127.0.0.1: every endpoint with a plain HTTP client,
//! bad input answered with 4xx and `{"error": …}`, and a real client — Python `tritonclient[http]`
//! (from `MLOPS_TEST_PYTHON`, which `./scripts/test` provides) — for health, metadata, JSON
//! infer and binary infer.

use std::sync::Arc;

use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, Server};
use mlops_serve::{HttpOptions, IdentityModel, ModelServer};
use serde_json::{Value, json};

fn n(name: &str) -> mlops_core::ModelName {
    name.parse().unwrap()
}

fn v(n: u64) -> mlops_core::Version {
    mlops_core::Version::new(n).unwrap()
}

async fn start(max_body: usize) -> String {
    let server = ModelServer::builder("mlops-test").build();
    let sig = |dt, shape: Vec<i64>, i: &str, o: &str| {
        IdentityModel::new(Signature::tensors(
            vec![TensorSpec::new(i, dt, shape.clone())],
            vec![TensorSpec::new(o, dt, shape)],
        ))
        .unwrap()
    };
    server
        .load_model(
            &n("simple"),
            v(1),
            Arc::new(sig(DataType::Fp32, vec![-1, 3], "x", "y")),
        )
        .unwrap();
    server
        .load_model(
            &n("simple"),
            v(2),
            Arc::new(sig(DataType::Fp32, vec![-1, 3], "x", "y")),
        )
        .unwrap();
    server
        .load_model(
            &n("text"),
            v(1),
            Arc::new(sig(DataType::Bytes, vec![-1], "s", "t")),
        )
        .unwrap();
    server
        .load_model(
            &n("ints"),
            v(1),
            Arc::new(sig(DataType::Int64, vec![-1], "i", "o")),
        )
        .unwrap();
    server
        .load_model(
            &n("half"),
            v(1),
            Arc::new(sig(DataType::Fp16, vec![-1], "h", "g")),
        )
        .unwrap();
    let app = mlops_serve::model_server_router(
        Arc::new(server),
        HttpOptions::default().with_max_body_bytes(max_body),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mlops_serve::http::serve(
        listener,
        app,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

async fn get(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_as_the_protocol_says() {
    let base = start(1 << 20).await;
    assert_eq!(
        get(&base, "/v2/health/live").await,
        (200, json!({"live": true}))
    );
    assert_eq!(
        get(&base, "/v2/health/ready").await,
        (200, json!({"ready": true}))
    );
    let (s, meta) = get(&base, "/v2").await;
    assert_eq!((s, meta["name"].clone()), (200, json!("mlops-test")));
    assert!(
        meta["extensions"]
            .as_array()
            .unwrap()
            .contains(&json!("binary_tensor_data"))
    );
    assert_eq!(
        get(&base, "/v2/models").await.1,
        json!({"models": ["half", "ints", "simple", "text"]})
    );
    let (s, m) = get(&base, "/v2/models/simple").await;
    assert_eq!(s, 200);
    assert_eq!(m["versions"], json!(["1", "2"]));
    assert_eq!(
        m["inputs"],
        json!([{"name": "x", "datatype": "FP32", "shape": [-1, 3]}])
    );
    assert_eq!(get(&base, "/v2/models/simple/versions/1").await.0, 200);
    assert_eq!(
        get(&base, "/v2/models/simple/ready").await,
        (200, json!({"name": "simple", "ready": true}))
    );
    assert_eq!(
        get(&base, "/v2/models/simple/versions/1/ready").await.0,
        200
    );
    for path in [
        "/v2/models/nope",
        "/v2/models/simple/versions/7",
        "/v2/models/nope/ready",
    ] {
        let (s, body) = get(&base, path).await;
        assert_eq!(s, 404, "{path}");
        assert!(
            body["error"].as_str().unwrap().contains("not found"),
            "{body}"
        );
    }

    // JSON infer, nested data, id echo, version chosen by path.
    let (s, r) = post(
        &base,
        "/v2/models/simple/versions/1/infer",
        json!({"id": "42", "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6.5]]}]}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["model_name"], "simple");
    assert_eq!(r["model_version"], "1");
    assert_eq!(r["id"], "42");
    assert_eq!(
        r["outputs"][0],
        json!({"name": "y", "datatype": "FP32", "shape": [2, 3], "data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]})
    );
    let (s, r) = post(&base, "/v2/models/text/infer", json!({"inputs": [{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["héllo", ""]}]})).await;
    assert_eq!(
        (s, r["outputs"][0]["data"].clone()),
        (200, json!(["héllo", ""]))
    );
    let (s, r) = post(&base, "/v2/models/ints/infer", json!({"inputs": [{"name": "i", "shape": [3], "datatype": "INT64", "data": [1, -2, 9007199254740993_i64]}]})).await;
    assert_eq!(
        (s, r["outputs"][0]["data"].clone()),
        (200, json!([1, -2, 9007199254740993_i64]))
    );

    // Bad input: 400 with a message naming the input and the problem.
    let bad = [
        (
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2]}]}),
            "needs 3 elements",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}),
            "must be FP32",
        ),
        (
            json!({"inputs": [{"name": "z", "shape": [1], "datatype": "FP32", "data": [1]}]}),
            "unexpected input \"z\"",
        ),
        (json!({"inputs": []}), "missing input \"x\""),
        (
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP99", "data": [1, 2, 3]}]}),
            "unknown datatype",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, "a", 3]}]}),
            "element 1 is not a number",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [-1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}),
            "negative dimension",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32"}]}),
            "neither data nor binary_data_size",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}], "outputs": [{"name": "nope"}]}),
            "no output \"nope\"",
        ),
        (json!({"input": []}), "malformed JSON"),
    ];
    for (body, want) in bad {
        let (s, r) = post(&base, "/v2/models/simple/infer", body.clone()).await;
        assert_eq!(s, 400, "{body}: {r}");
        assert!(r["error"].as_str().unwrap().contains(want), "{want}: {r}");
    }
    let (s, r) = post(
        &base,
        "/v2/models/half/infer",
        json!({"inputs": [{"name": "h", "shape": [1], "datatype": "FP16", "data": [1.0]}]}),
    )
    .await;
    assert!(
        s == 400 && r["error"].as_str().unwrap().contains("no JSON form"),
        "{r}"
    );
    let (s, r) = post(
        &base,
        "/v2/models/ints/infer",
        json!({"inputs": [{"name": "i", "shape": [1], "datatype": "INT64", "data": [1.5]}]}),
    )
    .await;
    assert!(
        s == 400 && r["error"].as_str().unwrap().contains("integer"),
        "{r}"
    );
    let r = reqwest::Client::new()
        .post(format!("{base}/v2/models/simple/infer"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (s, _) = post(&base, "/v2/models/nope/infer", json!({"inputs": []})).await;
    assert_eq!(s, 404);

    // Too large: 413.
    let big = vec![b' '; (1 << 20) + 10];
    let r = reqwest::Client::new()
        .post(format!("{base}/v2/models/simple/infer"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    // Repository: unload, then the model is gone; loading needs a registry (501 here).
    assert_eq!(
        post(&base, "/v2/repository/models/ints/unload", json!({})).await,
        (200, json!({"name": "ints", "unload": true}))
    );
    assert_eq!(get(&base, "/v2/models/ints").await.0, 404);
    assert_eq!(
        post(&base, "/v2/repository/models/ints/load", json!({}))
            .await
            .0,
        501
    );
}

/// Binary tensor extension: raw inputs after the JSON header, binary outputs on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_tensors_travel_raw() {
    let base = start(1 << 20).await;
    let values: Vec<f32> = vec![1.0, -2.5, 3.25, 4.0, 5.0, 6.0];
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = serde_json::to_vec(&json!({
        "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": raw.len()}}],
        "outputs": [{"name": "y", "parameters": {"binary_data": true}}]
    }))
    .unwrap();
    let mut body = header.clone();
    body.extend_from_slice(&raw);
    let r = reqwest::Client::new()
        .post(format!("{base}/v2/models/simple/infer"))
        .header("Inference-Header-Content-Length", header.len())
        .header("Content-Type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let json_len: usize = r.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    let doc: Value = serde_json::from_slice(&bytes[..json_len]).unwrap();
    assert_eq!(doc["outputs"][0]["parameters"]["binary_data_size"], 24);
    assert!(doc["outputs"][0].get("data").is_none());
    assert_eq!(&bytes[json_len..], &raw[..]);

    // Broken framing: 400 naming the problem.
    let cases: Vec<(usize, Vec<u8>, &str)> = vec![
        (body.len() + 5, body.clone(), "but the body has"),
        (
            header.len(),
            [body.clone(), vec![0; 4]].concat(),
            "not claimed by any input",
        ),
        (
            header.len(),
            body[..body.len() - 4].to_vec(),
            "only 20 binary bytes remain",
        ),
    ];
    for (len, b, want) in cases {
        let r = reqwest::Client::new()
            .post(format!("{base}/v2/models/simple/infer"))
            .header("Inference-Header-Content-Length", len)
            .body(b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains(want), "{want}: {e}");
    }
}

/// A real Open Inference Protocol client drives the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_http_talks_to_the_server() {
    let python = mlops_testkit::python::interpreter("tritonclient[http]");
    let base = start(1 << 20).await;
    let url = base.trim_start_matches("http://").to_string();
    let script = r#"
import sys
import numpy as np
import tritonclient.http as httpclient

c = httpclient.InferenceServerClient(url=sys.argv[1])
assert c.is_server_live() and c.is_server_ready()
assert c.is_model_ready("simple")
assert not c.is_model_ready("nope")
meta = c.get_server_metadata()
assert meta["name"] == "mlops-test", meta
m = c.get_model_metadata("simple", "1")
assert m["inputs"][0]["datatype"] == "FP32" and m["inputs"][0]["shape"] == [-1, 3], m

x = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
for binary in (False, True):
    i = httpclient.InferInput("x", [2, 3], "FP32")
    i.set_data_from_numpy(x, binary_data=binary)
    o = httpclient.InferRequestedOutput("y", binary_data=binary)
    r = c.infer("simple", [i], outputs=[o], request_id="r-%s" % binary)
    assert r.get_response()["id"] == "r-%s" % binary
    np.testing.assert_array_equal(r.as_numpy("y"), x)

s = np.array([b"hello", b"\xff\x00raw"], dtype=np.object_)
i = httpclient.InferInput("s", [2], "BYTES")
i.set_data_from_numpy(s, binary_data=True)
r = c.infer("text", [i], outputs=[httpclient.InferRequestedOutput("t", binary_data=True)])
assert list(r.as_numpy("t")) == [b"hello", b"\xff\x00raw"], r.as_numpy("t")

try:
    c.infer("nope", [i])
    raise SystemExit("expected an error")
except httpclient.InferenceServerException as e:
    assert "not found" in str(e), e

# /metrics parses with the official Prometheus client.
import urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen("http://%s/metrics" % sys.argv[1]).read().decode()
fams = {f.name: f for f in text_string_to_metric_families(text)}
ok = [s for s in fams["mlops_inference_requests"].samples
      if s.name == "mlops_inference_requests_total" and s.labels["model"] == "simple" and s.labels["outcome"] == "ok"]
assert sum(s.value for s in ok) == 2, ok
assert fams["mlops_inference_request_duration_seconds"].type == "histogram"
assert fams["mlops_inference_batch_size"].type == "histogram"
assert fams["mlops_inference_queue_depth"].type == "gauge"
notfound = [s for s in fams["mlops_inference_requests"].samples if s.labels.get("outcome") == "not_found"]
# A name the server does not serve is not a label of its own (bounded cardinality).
assert notfound and notfound[0].labels["model"] == "unknown", notfound
print("ok")
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", script, &url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sleeps on large inputs so a request outlives a short timeout.
#[derive(Debug)]
/// Sleeps 400 ms on inputs above 0.5, saying when such a slow prediction has started.
struct Sleepy(
    mlops_core::signature::Signature,
    Arc<std::sync::atomic::AtomicBool>,
);

impl mlops_core::Model for Sleepy {
    fn flavor(&self) -> &str {
        "sleepy"
    }
    fn signature(&self) -> &mlops_core::signature::Signature {
        &self.0
    }
    fn predict(
        &self,
        inputs: &[mlops_core::Tensor],
    ) -> mlops_core::Result<Vec<mlops_core::Tensor>> {
        if inputs[0].to_f64()?.first().copied().unwrap_or(0.0) > 0.5 {
            self.1.store(true, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
        Ok(vec![inputs[0].clone().with_name("y")])
    }
    fn to_artifact(&self) -> mlops_core::Result<mlops_core::ModelArtifact> {
        Err(mlops_core::Error::not_supported(
            "operation",
            "to_artifact",
            "test",
        ))
    }
}

/// A batching server with the sleepy model loaded as `sleepy`.
fn sleepy_server(name: &str) -> ModelServer {
    sleepy_server_watched(name).0
}

/// [`sleepy_server`], and the flag its model raises when a slow prediction starts.
fn sleepy_server_watched(name: &str) -> (ModelServer, Arc<std::sync::atomic::AtomicBool>) {
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = ModelServer::builder(name)
        .batching(mlops_serve::BatchConfig::new(
            4,
            std::time::Duration::from_millis(1),
        ))
        .build();
    let sig = Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp64, vec![-1])],
        vec![TensorSpec::new("y", DataType::Fp64, vec![-1])],
    );
    server
        .load_model(&n("sleepy"), v(1), Arc::new(Sleepy(sig, started.clone())))
        .unwrap();
    (server, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_timeouts_and_metrics() {
    let server = sleepy_server("secure");
    let options = HttpOptions::default()
        .with_bearer_token(mlops_core::secret::SecretString::from("s3cret-token"))
        .with_request_timeout(Some(std::time::Duration::from_millis(100)));
    let app = mlops_serve::model_server_router(Arc::new(server), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mlops_serve::http::serve(
        listener,
        app,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    // Health stays open; everything else needs the token.
    assert_eq!(
        client
            .get(format!("{base}/v2/health/live"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
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
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("s3cret-token"),
        Some("Bearer s3cret-token-"),
    ] {
        let mut r = client.get(format!("{base}/v2/models/sleepy"));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    let authed = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .bearer_auth("s3cret-token")
    };
    assert_eq!(
        authed("/v2/models/sleepy")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let infer = |v: f64| {
        client
            .post(format!("{base}/v2/models/sleepy/infer"))
            .bearer_auth("s3cret-token")
            .json(
                &json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [v]}]}),
            )
    };
    assert_eq!(infer(0.0).send().await.unwrap().status().as_u16(), 200);
    let slow = infer(1.0).send().await.unwrap();
    assert_eq!(slow.status().as_u16(), 504);
    let e: Value = slow.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("timed out"), "{e}");
    let metrics = authed("/metrics").send().await.unwrap();
    assert_eq!(
        metrics.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            "mlops_inference_requests_total{model=\"sleepy\",outcome=\"ok\",version=\"1\"} 1"
        ),
        "{text}"
    );
    assert_eq!(
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_in_flight() {
    let (server, started) = sleepy_server_watched("drain");
    let app = mlops_serve::model_server_router(Arc::new(server), HttpOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(mlops_serve::http::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let slow = tokio::spawn({
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/v2/models/sleepy/infer"))
                .json(&json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    // Stop only once the slow request is being answered (however loaded the machine is).
    let waiting = std::time::Instant::now();
    while !started.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            waiting.elapsed() < std::time::Duration::from_secs(30),
            "the request never reached the model"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    assert_eq!(
        slow.await.unwrap(),
        200,
        "the request in flight was answered"
    );
    serving.await.unwrap().unwrap();
    assert!(
        reqwest::get(format!("{base}/v2/health/live"))
            .await
            .is_err(),
        "no longer listening"
    );
}

/// Every error the HTTP API answers is JSON: a body over the limit (413), a wrong method (405),
/// an unmatched path (404) — not axum's plain text or an empty body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json() {
    let base = start(1 << 10).await;
    let client = reqwest::Client::new();
    let big = json!({"inputs": [{"name": "x", "shape": [1000], "datatype": "FP64", "data": vec![1.5; 1000]}]});
    let cases = [
        (
            client
                .post(format!("{base}/v2/models/half/infer"))
                .json(&big),
            413,
        ),
        (client.delete(format!("{base}/v2/models/half/infer")), 405),
        (client.get(format!("{base}/v2/models/half/infer")), 405),
        (client.get(format!("{base}/no/such/path")), 404),
        (
            client
                .post(format!("{base}/v2/models/half/infer"))
                .body("{not json"),
            400,
        ),
    ];
    for (request, want) in cases {
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
        let body: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{want}: not JSON: {e}"));
        assert_eq!(status, want, "{body}");
        assert!(kind.starts_with("application/json"), "{want}: {kind}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{want}: {body}"
        );
    }
}

/// Requests for names the server does not serve are counted under one `unknown` series, so a
/// stream of made-up names cannot grow `/metrics` without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_label_only_served_models() {
    let server = Arc::new(sleepy_server("labels"));
    for i in 0..500 {
        let req = mlops_core::serve::InferRequest::new(
            n(&format!("made-up-{i}")),
            vec![mlops_core::Tensor::from_f64("x", vec![1], &[0.0]).unwrap()],
        );
        assert!(server.infer(req).await.unwrap_err().is_not_found());
    }
    let unknown_version = mlops_core::serve::InferRequest::new(
        n("sleepy"),
        vec![mlops_core::Tensor::from_f64("x", vec![1], &[0.0]).unwrap()],
    )
    .with_version(v(99));
    assert!(server.infer(unknown_version).await.is_err());
    let text = server.render_metrics().unwrap();
    assert!(!text.contains("made-up"), "{text}");
    assert!(
        text.contains(
            "mlops_inference_requests_total{model=\"unknown\",outcome=\"not_found\",version=\"\"} 500"
        ),
        "{text}"
    );
    assert!(
        text.contains("model=\"sleepy\",outcome=\"not_found\",version=\"unknown\""),
        "{text}"
    );
    let series = text
        .lines()
        .filter(|l| l.starts_with("mlops_inference_requests_total{"))
        .count();
    assert!(series <= 3, "{series} series\n{text}");
}

/// A server whose only model was unloaded is not ready (its load balancer should stop sending).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloading_the_only_model_makes_the_server_unready() {
    use mlops_core::serve::Server;
    let server = sleepy_server("ready");
    assert!(server.ready().await.unwrap());
    server.unload(&n("sleepy"), None).await.unwrap();
    assert!(!server.ready().await.unwrap());
}
