#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! What the HTTP API does under hostile load: connections that never finish their headers or
//! idle forever are closed, a stalled body is answered 408, and requests beyond the in-flight
//! limit or the body-memory budget are turned away with 503 and `Retry-After` at once — while
//! health checks stay answerable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, Model, Tensor};
use mlops_serve::http::{ConnectionOptions, serve_with};
use mlops_serve::{HttpOptions, ModelServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// On inputs whose first value is above 0.5, says it has started and holds the request until
/// the test releases it (at most 20 s): a request in flight for exactly as long as a test needs.
#[derive(Debug)]
struct Slow(Signature, Gate);

/// `started` is raised by the model; `release` by the test.
#[derive(Debug, Clone, Default)]
struct Gate {
    started: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Gate {
    async fn wait_started(&self) {
        let waiting = Instant::now();
        while !self.started.load(Ordering::SeqCst) {
            assert!(waiting.elapsed() < Duration::from_secs(30), "never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }
}

impl Model for Slow {
    fn flavor(&self) -> &str {
        "slow"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(&self, inputs: &[Tensor]) -> mlops_core::Result<Vec<Tensor>> {
        if inputs[0].to_f64()?.first().copied().unwrap_or(0.0) > 0.5 {
            self.1.started.store(true, Ordering::SeqCst);
            let held = Instant::now();
            while !self.1.release.load(Ordering::SeqCst) && held.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
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

/// Serves the slow model as `slow` with these options; returns the address and the model's
/// [`Gate`]. The server runs on a runtime of its own, apart from the test's clients.
async fn start(http: HttpOptions, connections: ConnectionOptions) -> (String, Gate) {
    let gate = Gate::default();
    // Batched, so the model runs on its batch worker's thread: a prediction held by the gate
    // must not block a runtime worker (and the requests queued behind it).
    let server = ModelServer::builder("limits")
        .batching(mlops_serve::BatchConfig::new(4, Duration::from_millis(1)))
        .build();
    let sig = Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp64, vec![-1])],
        vec![TensorSpec::new("y", DataType::Fp64, vec![-1])],
    );
    server
        .load_model(
            &"slow".parse().unwrap(),
            mlops_core::Version::FIRST,
            Arc::new(Slow(sig, gate.clone())),
        )
        .unwrap();
    let app = mlops_serve::model_server_router(Arc::new(server), http);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            serve_with(listener, app, connections, std::future::pending())
                .await
                .unwrap();
        });
    });
    (rx.await.unwrap(), gate)
}

/// Reads until the server closes the connection (or `within` passes: then panics); returns
/// what it sent.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the connection was still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

fn infer_body(first: f64, elements: usize) -> Value {
    let mut data = vec![0.25; elements];
    data[0] = first;
    json!({"inputs": [{"name": "x", "shape": [elements], "datatype": "FP64", "data": data}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_and_idle_connections_are_closed() {
    let timeout = Duration::from_millis(300);
    let (addr, _) = start(
        HttpOptions::default(),
        ConnectionOptions::default().with_header_read_timeout(timeout),
    )
    .await;

    // Headers that never finish, and connections that never send anything.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    let began = Instant::now();
    read_until_closed(&mut half, Duration::from_secs(10)).await;
    assert!(began.elapsed() >= timeout / 2, "{:?}", began.elapsed());
    for s in &mut silent {
        read_until_closed(s, Duration::from_secs(10)).await;
    }

    // A keep-alive connection is closed once it idles past the timeout after a response.
    let mut keep = TcpStream::connect(&addr).await.unwrap();
    keep.write_all(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = read_until_closed(&mut keep, Duration::from_secs(10)).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.contains(r#"{"live":true}"#), "{answered}");

    // The server still serves.
    let r = reqwest::get(format!("http://{addr}/v2/health/ready"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408() {
    let (addr, _) = start(
        HttpOptions::default().with_body_read_timeout(Some(Duration::from_millis(300))),
        ConnectionOptions::default(),
    )
    .await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"inputs\"",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"the request body did not arrive within 300 ms"}"#),
        "{answer}"
    );

    // A trickle (a byte every 50 ms, never a pause as long as the timeout) is cut off too:
    // the deadline is for the whole body.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    let began = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while began.elapsed() < Duration::from_secs(10) {
        if s.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if answer.windows(4).any(|w| w == b"}\r\n\r" || w == b"ms\"}") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_turned_away() {
    let (addr, gate) = start(
        HttpOptions::default().with_max_in_flight(1),
        ConnectionOptions::default(),
    )
    .await;
    let url = format!("http://{addr}/v2/models/slow/infer");
    let slow = tokio::spawn({
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&infer_body(1.0, 1))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    gate.wait_started().await;
    let client = reqwest::Client::new();
    let r = client
        .post(&url)
        .json(&infer_body(0.0, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("1 requests in flight"),
        "{e}"
    );
    // Health and metadata are not admission-controlled.
    let r = client
        .get(format!("http://{addr}/v2/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client
        .get(format!("http://{addr}/v2/models/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    gate.release();
    assert_eq!(slow.await.unwrap(), 200);
    let r = client
        .post(&url)
        .json(&infer_body(0.0, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the slot is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_the_memory_budget_are_turned_away() {
    let (addr, gate) = start(
        HttpOptions::default()
            .with_max_body_memory(300 << 10)
            .with_max_body_bytes(256 << 10),
        ConnectionOptions::default(),
    )
    .await;
    let url = format!("http://{addr}/v2/models/slow/infer");
    let big = serde_json::to_vec(&infer_body(1.0, 45_000)).unwrap();
    assert!(
        big.len() > 200 << 10 && big.len() < 300 << 10,
        "{}",
        big.len()
    );

    // One big body fits the budget, and holds its share while the model works on it.
    let slow = tokio::spawn({
        let (url, big) = (url.clone(), big.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(big)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    gate.wait_started().await;
    // A second one does not fit beside it.
    let second = serde_json::to_vec(&infer_body(0.0, 45_000)).unwrap();
    let client = reqwest::Client::new();
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(second.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("request bodies in memory would exceed the limit of 307200 bytes"),
        "{e}"
    );
    // Nor does a chunked one, whose size is only known as it arrives.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    for piece in second.chunks(16 << 10) {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(piece);
        chunk.extend_from_slice(b"\r\n");
        if s.write_all(&chunk).await.is_err() {
            break; // the server answered and closed before the rest
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let answer = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("request bodies in memory"), "{answer}");

    gate.release();
    assert_eq!(slow.await.unwrap(), 200);
    // With the budget free again, the same body is served.
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(second)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // A body over the size limit is 413, before any of it is read.
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 400 << 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("over the limit of 262144 bytes"),
        "{e}"
    );
}
