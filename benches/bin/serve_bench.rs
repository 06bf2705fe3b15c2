//! Our side of `benches/scripts/serving_vs_mlserver.py`: a server and a native load generator.
//!
//! ```text
//! serve-bench serve <port> <linear.json|identity>      # ModelServer over HTTP on 127.0.0.1
//! serve-bench load <url> <payload.json> <connections> <seconds>
//! serve-bench overhead <seconds>                       # in-process infer on the identity model
//! serve-bench serve-onnx <http port> <grpc port> <model.onnx>   # an ONNX model over HTTP and gRPC
//! serve-bench load-grpc <host:port> <payload.json> <connections> <seconds>
//! ```
//!
//! `load` keeps `connections` HTTP/1.1 keep-alive connections busy with the same POST for the
//! given time and prints one JSON line: requests, errors, requests/s, p50/p90/p99 latency (µs).
//! `load-grpc` does the same over gRPC: `connections` HTTP/2 connections, each with one
//! `ModelInfer` call at a time, the payload's inputs sent as `raw_input_contents` (as
//! tritonclient sends them) to the model the payload file names in `"model"` (default `model`).

// A benchmark driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mlops::serve::{HttpOptions, IdentityModel, LinearModel, LinearParams, ModelServer};
use mlops::serve::{InferRequest, Server};
use mlops::signature::{Signature, TensorSpec};
use mlops::{DataType, Tensor};

fn n(name: &str) -> mlops::ModelName {
    name.parse().unwrap()
}

fn v(n: u64) -> mlops::Version {
    mlops::Version::new(n).unwrap()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn identity() -> Arc<IdentityModel> {
    Arc::new(
        IdentityModel::new(Signature::tensors(
            vec![TensorSpec::new("x", DataType::Fp32, vec![-1, 20])],
            vec![TensorSpec::new("y", DataType::Fp32, vec![-1, 20])],
        ))
        .unwrap(),
    )
}

/// Keeps every client busy with `call` (one call at a time each) for `seconds`, then prints
/// one JSON line: requests, errors, requests/s, p50/p90/p99 latency (µs).
async fn drive<C, F, Fut>(clients: Vec<C>, seconds: f64, call: F)
where
    C: Send + 'static,
    F: Fn(C) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (C, bool)> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let call = call.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::with_capacity(100_000), 0u64);
                let mut client = Some(client);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (back, ok) = call(client.take().unwrap()).await;
                    client = Some(back);
                    if ok {
                        lat.push(t.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{}",
        serde_json::json!({
            "requests": all.len(), "errors": errors, "rps": all.len() as f64 / elapsed,
            "p50_us": percentile(&all, 0.5), "p90_us": percentile(&all, 0.9), "p99_us": percentile(&all, 0.99),
        })
    );
}

type GrpcClient =
    mlops::serve::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient<
        tonic::transport::Channel,
    >;

/// A `ModelInferRequest` of a REST payload (`{"model"?, "inputs": [{name, shape, datatype,
/// data}]}`), every input's data as raw little-endian contents.
fn grpc_request(payload: &serde_json::Value) -> mlops::serve::grpc::proto::ModelInferRequest {
    use mlops::serve::grpc::proto::{ModelInferRequest, model_infer_request::InferInputTensor};
    let mut inputs = Vec::new();
    let mut raw = Vec::new();
    for input in payload["inputs"].as_array().unwrap() {
        let shape: Vec<usize> = input["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let values: Vec<f32> = input["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(input["datatype"], "FP32", "load-grpc sends FP32 inputs");
        let t = Tensor::from_f32(input["name"].as_str().unwrap(), shape, &values).unwrap();
        inputs.push(InferInputTensor {
            name: t.name().to_owned(),
            datatype: "FP32".into(),
            shape: t.shape().iter().map(|d| *d as i64).collect(),
            parameters: Default::default(),
            contents: None,
        });
        raw.push(t.data().clone());
    }
    ModelInferRequest {
        model_name: payload["model"].as_str().unwrap_or("model").to_owned(),
        model_version: String::new(),
        id: String::new(),
        parameters: Default::default(),
        inputs,
        outputs: Vec::new(),
        raw_input_contents: raw,
    }
}

/// The allocator `mlops serve` uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `SERVE_BENCH_THREADS` sets the runtime's worker threads (default: one per core).
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("SERVE_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rt.worker_threads(n);
    }
    rt.enable_all().build().unwrap().block_on(run());
}

async fn run() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let port: u16 = args[2].parse().unwrap();
            let server = ModelServer::builder("mlops-bench").build();
            if args[3] == "identity" {
                server.load_model(&n("model"), v(1), identity()).unwrap();
            } else {
                let params: LinearParams =
                    serde_json::from_slice(&std::fs::read(&args[3]).unwrap()).unwrap();
                server
                    .load_model(
                        &n("model"),
                        v(1),
                        Arc::new(LinearModel::new(params).unwrap()),
                    )
                    .unwrap();
            }
            let app = mlops::serve::model_server_router(Arc::new(server), HttpOptions::default());
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            println!("ready");
            mlops::serve::http::serve(listener, app, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .unwrap();
        }
        Some("load") => {
            let url = args[2].clone();
            let payload = bytes::Bytes::from(std::fs::read(&args[3]).unwrap());
            let connections: usize = args[4].parse().unwrap();
            let seconds: f64 = args[5].parse().unwrap();
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(connections)
                .http1_only()
                .build()
                .unwrap();
            let clients = (0..connections).map(|_| client.clone()).collect();
            drive(clients, seconds, move |client| {
                let (url, payload) = (url.clone(), payload.clone());
                async move {
                    let ok = match client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(payload)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    (client, ok)
                }
            })
            .await;
        }
        Some("serve-onnx") => {
            let http_port: u16 = args[2].parse().unwrap();
            let grpc_port: u16 = args[3].parse().unwrap();
            let model = mlops::onnx::OnnxModel::from_path(&args[4]).unwrap();
            eprintln!("serve-onnx: runtime {}", model.runtime());
            let server = Arc::new(ModelServer::builder("mlops-bench").build());
            server
                .load_model(&n("model"), v(1), Arc::new(model))
                .unwrap();
            let grpc = tokio::net::TcpListener::bind(("127.0.0.1", grpc_port))
                .await
                .unwrap();
            let grpc_server: Arc<dyn Server> = server.clone();
            tokio::spawn(mlops::serve::grpc::serve(
                grpc,
                grpc_server,
                Default::default(),
                std::future::pending(),
            ));
            let app = mlops::serve::model_server_router(server, HttpOptions::default());
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", http_port))
                .await
                .unwrap();
            println!("ready");
            mlops::serve::http::serve(listener, app, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .unwrap();
        }
        Some("load-grpc") => {
            let addr = format!("http://{}", args[2]);
            let payload: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&args[3]).unwrap()).unwrap();
            let connections: usize = args[4].parse().unwrap();
            let seconds: f64 = args[5].parse().unwrap();
            let request = grpc_request(&payload);
            let mut clients = Vec::with_capacity(connections);
            for _ in 0..connections {
                let channel = tonic::transport::Endpoint::from_shared(addr.clone())
                    .unwrap()
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .unwrap();
                clients.push(GrpcClient::new(channel).max_decoding_message_size(64 << 20));
            }
            drive(clients, seconds, move |mut client| {
                let request = request.clone();
                async move {
                    let ok = client.model_infer(request).await.is_ok();
                    (client, ok)
                }
            })
            .await;
        }
        Some("overhead") => {
            let seconds: f64 = args[2].parse().unwrap();
            let server = ModelServer::builder("mlops-bench").build();
            server.load_model(&n("model"), v(1), identity()).unwrap();
            let x = Tensor::from_f32("x", vec![1, 20], &[0.5; 20]).unwrap();
            let deadline = Instant::now() + Duration::from_secs_f64(seconds);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                server
                    .infer(InferRequest::new(n("model"), vec![x.clone()]))
                    .await
                    .unwrap();
                lat.push(t.elapsed().as_nanos() as u64);
            }
            lat.sort_unstable();
            println!(
                "{}",
                serde_json::json!({"requests": lat.len(), "p50_us": percentile(&lat, 0.5) as f64 / 1000.0, "p99_us": percentile(&lat, 0.99) as f64 / 1000.0})
            );
        }
        _ => {
            eprintln!(
                "usage: serve-bench serve <port> <linear.json|identity> | serve-onnx <http port> <grpc port> <model.onnx> | load <url> <payload> <connections> <seconds> | load-grpc <host:port> <payload> <connections> <seconds> | overhead <seconds>"
            );
            std::process::exit(2);
        }
    }
}
