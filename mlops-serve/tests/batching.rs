#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Dynamic batching: requests of random sizes from concurrent clients are stacked, predicted
//! together, and every row comes back to its own request (a property test); batches really form;
//! BYTES tensors split correctly; a full queue answers 503; metrics count it all.

use std::sync::Arc;
use std::time::Duration;

use mlops_core::serve::{InferRequest, Server};
use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, Model, ModelArtifact, Tensor};
use mlops_serve::{BatchConfig, IdentityModel, ModelServer};
use proptest::prelude::*;

fn n(name: &str) -> mlops_core::ModelName {
    name.parse().unwrap()
}

fn v(n: u64) -> mlops_core::Version {
    mlops_core::Version::new(n).unwrap()
}

/// Returns `2·x`. Every request carries values no other request has, so a row routed to the
/// wrong request, or split at the wrong place, is seen.
#[derive(Debug)]
struct Doubler(Signature);

impl Model for Doubler {
    fn flavor(&self) -> &str {
        "doubler"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(&self, inputs: &[Tensor]) -> mlops_core::Result<Vec<Tensor>> {
        let x = inputs[0].to_f64()?;
        let y: Vec<f64> = x.iter().map(|v| v * 2.0).collect();
        Ok(vec![Tensor::from_f64("y", inputs[0].shape().to_vec(), &y)?])
    }
    fn to_artifact(&self) -> mlops_core::Result<ModelArtifact> {
        Err(mlops_core::Error::not_supported(
            "operation",
            "to_artifact",
            "test model",
        ))
    }
}

fn doubler() -> Arc<Doubler> {
    Arc::new(Doubler(Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp64, vec![-1, 2])],
        vec![TensorSpec::new("y", DataType::Fp64, vec![-1, 2])],
    )))
}

fn request(client: usize, i: usize, rows: usize) -> (InferRequest, Vec<f64>) {
    let values: Vec<f64> = (0..rows * 2)
        .map(|k| (client * 10_000 + i * 100 + k) as f64)
        .collect();
    let t = Tensor::from_f64("x", vec![rows, 2], &values).unwrap();
    (InferRequest::new(n("m"), vec![t]), values)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn every_row_returns_to_its_request(
        sizes in proptest::collection::vec(proptest::collection::vec(1usize..6, 1..12), 2..10),
        max_batch in 2usize..16,
        delay_us in 0u64..3000,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(async {
            let server = Arc::new(
                ModelServer::builder("t")
                    .batching(BatchConfig::new(max_batch, Duration::from_micros(delay_us)))
                    .build(),
            );
            server.load_model(&n("m"), v(1), doubler()).unwrap();
            let mut tasks = Vec::new();
            for (client, reqs) in sizes.into_iter().enumerate() {
                let server = Arc::clone(&server);
                tasks.push(tokio::spawn(async move {
                    for (i, rows) in reqs.into_iter().enumerate() {
                        let (req, values) = request(client, i, rows);
                        let out = server.infer(req).await.unwrap();
                        let want: Vec<f64> = values.iter().map(|v| v * 2.0).collect();
                        assert_eq!(out.outputs[0].shape(), &[rows, 2]);
                        assert_eq!(out.outputs[0].to_f64().unwrap(), want);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_predictions() {
    let server = Arc::new(
        ModelServer::builder("t")
            .batching(BatchConfig::new(64, Duration::from_millis(20)))
            .build(),
    );
    server.load_model(&n("m"), v(1), doubler()).unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|c| {
            let server = Arc::clone(&server);
            tokio::spawn(async move { server.infer(request(c, 0, 1).0).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let text = server.render_metrics().unwrap();
    let count = sample(&text, "mlops_inference_batch_size_count{model=\"m\"}");
    let sum = sample(&text, "mlops_inference_batch_size_sum{model=\"m\"}");
    assert_eq!(sum, 32.0, "{text}");
    assert!(
        count < 32.0,
        "32 one-row requests in {count} predictions: no batch formed\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            "mlops_inference_requests_total{model=\"m\",outcome=\"ok\",version=\"1\"}"
        ),
        32.0
    );
    assert_eq!(
        sample(&text, "mlops_inference_queue_depth{model=\"m\"}"),
        0.0
    );
}

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// BYTES inputs are stacked and split back by element, not by byte: eight concurrent requests of
/// different word counts and lengths share predictions (the batch-size histogram says so: fewer
/// predictions than requests, every element counted once) and each gets its own words back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bytes_tensors_split_by_element() {
    let server = Arc::new(
        ModelServer::builder("t")
            .batching(BatchConfig::new(64, Duration::from_millis(50)))
            .build(),
    );
    let sig = Signature::tensors(
        vec![TensorSpec::new("s", DataType::Bytes, vec![-1])],
        vec![TensorSpec::new("t", DataType::Bytes, vec![-1])],
    );
    server
        .load_model(&n("m"), v(1), Arc::new(IdentityModel::new(sig).unwrap()))
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|c| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let words: Vec<String> = (0..=c).map(|k| "w".repeat(k * 3 + c)).collect();
                let t = Tensor::from_byte_strings("s", vec![words.len()], &words).unwrap();
                let out = server
                    .infer(InferRequest::new(n("m"), vec![t]))
                    .await
                    .unwrap();
                let got: Vec<String> = out.outputs[0]
                    .to_byte_strings()
                    .unwrap()
                    .into_iter()
                    .map(|b| String::from_utf8(b.to_vec()).unwrap())
                    .collect();
                assert_eq!(got, words);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let text = server.render_metrics().unwrap();
    let predictions = sample(&text, "mlops_inference_batch_size_count{model=\"m\"}");
    let elements = sample(&text, "mlops_inference_batch_size_sum{model=\"m\"}");
    assert_eq!(elements, 36.0, "1 + 2 + … + 8 words\n{text}");
    assert!(
        predictions < 8.0,
        "8 concurrent requests in {predictions} predictions: no batch formed\n{text}"
    );
}

/// Sleeps, so requests queue up behind it.
#[derive(Debug)]
struct Slow(Signature);

impl Model for Slow {
    fn flavor(&self) -> &str {
        "slow"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(&self, inputs: &[Tensor]) -> mlops_core::Result<Vec<Tensor>> {
        if inputs[0].shape()[0] > 0 && inputs[0].to_f64()?[0] > 0.5 {
            std::thread::sleep(Duration::from_millis(150));
        }
        Ok(vec![inputs[0].clone().with_name("y")])
    }
    fn to_artifact(&self) -> mlops_core::Result<ModelArtifact> {
        Err(mlops_core::Error::not_supported(
            "operation",
            "to_artifact",
            "test model",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_unavailable() {
    let server = Arc::new(ModelServer::builder("t").build());
    let sig = Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp64, vec![-1])],
        vec![TensorSpec::new("y", DataType::Fp64, vec![-1])],
    );
    let mut config = BatchConfig::new(2, Duration::ZERO);
    config.max_queue = 1;
    server
        .load_model_with(&n("m"), v(1), Arc::new(Slow(sig)), config)
        .unwrap();
    let slow = || {
        InferRequest::new(
            n("m"),
            vec![Tensor::from_f64("x", vec![1], &[1.0]).unwrap()],
        )
    };
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let server = Arc::clone(&server);
            tokio::spawn(async move { server.infer(slow()).await })
        })
        .collect();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => {}
            Err(e) => {
                assert!(e.is_unavailable(), "{e}");
                refused += 1;
            }
        }
    }
    assert!(refused >= 1, "a one-slot queue took six slow requests");
    let text = server.render_metrics().unwrap();
    assert!(text.contains("outcome=\"unavailable\""), "{text}");
}

/// Fails every prediction of more than one row, the way a busy accelerator would.
#[derive(Debug)]
struct BusyWhenBatched(Signature);

impl Model for BusyWhenBatched {
    fn flavor(&self) -> &str {
        "busy"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(&self, inputs: &[Tensor]) -> mlops_core::Result<Vec<Tensor>> {
        if inputs[0].shape()[0] > 1 {
            return Err(mlops_core::Error::unavailable("the accelerator is busy"));
        }
        Ok(vec![inputs[0].clone().with_name("y")])
    }
    fn to_artifact(&self) -> mlops_core::Result<ModelArtifact> {
        Err(mlops_core::Error::not_supported(
            "operation",
            "to_artifact",
            "test model",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_batch_gives_every_request_the_real_error() {
    let server = Arc::new(
        ModelServer::builder("t")
            .batching(BatchConfig::new(64, Duration::from_millis(20)))
            .build(),
    );
    let sig = Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp64, vec![-1])],
        vec![TensorSpec::new("y", DataType::Fp64, vec![-1])],
    );
    server
        .load_model(&n("m"), v(1), Arc::new(BusyWhenBatched(sig)))
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let server = Arc::clone(&server);
            let x = Tensor::from_f64("x", vec![1], &[1.0]).unwrap();
            tokio::spawn(async move { server.infer(InferRequest::new(n("m"), vec![x])).await })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            assert!(e.is_unavailable(), "{e}");
            assert_eq!(e.to_string(), "unavailable: the accelerator is busy");
            failed += 1;
        }
    }
    assert!(failed >= 2, "no batch formed");
}
