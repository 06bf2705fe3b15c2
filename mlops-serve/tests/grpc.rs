#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Open Inference Protocol over gRPC on 127.0.0.1, driven by a real client: Python
//! `tritonclient[grpc]` (from `MLOPS_TEST_PYTHON`, which `./scripts/test` provides) — health,
//! metadata, FP32/INT64/BYTES inference with raw contents both ways, the repository calls, a
//! bad request per error code, bearer tokens, deadlines, the in-flight limit, the message size
//! limit; and graceful shutdown that lets a call in flight finish.

use std::sync::Arc;
use std::time::Duration;

use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, Model, ModelArtifact, Result, Tensor};
use mlops_serve::grpc::GrpcOptions;
use mlops_serve::{
    BatchConfig, IdentityModel, LinearModel, LinearParams, ModelServer, linear::Link,
};

fn n(name: &str) -> mlops_core::ModelName {
    name.parse().unwrap()
}

fn v(n: u64) -> mlops_core::Version {
    mlops_core::Version::new(n).unwrap()
}

/// Sleeps before answering like the identity model: a slow model for deadlines and limits.
/// Counts the slow predictions it has started.
#[derive(Debug)]
struct Slow {
    inner: IdentityModel,
    delay: Duration,
    started: Arc<std::sync::atomic::AtomicUsize>,
}

impl Model for Slow {
    fn flavor(&self) -> &str {
        "slow"
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        // The warm-up prediction (one zero row) is not slowed.
        if inputs.iter().any(|t| t.shape().first() != Some(&1)) {
            self.started
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(self.delay);
        }
        self.inner.predict(inputs)
    }
    fn to_artifact(&self) -> Result<ModelArtifact> {
        self.inner.to_artifact()
    }
}

fn identity(dt: DataType, shape: Vec<i64>, i: &str, o: &str) -> IdentityModel {
    IdentityModel::new(Signature::tensors(
        vec![TensorSpec::new(i, dt, shape.clone())],
        vec![TensorSpec::new(o, dt, shape)],
    ))
    .unwrap()
}

fn server() -> Arc<ModelServer> {
    server_counting(Default::default())
}

/// The test server; `started` counts the slow model's slow predictions.
fn server_counting(started: Arc<std::sync::atomic::AtomicUsize>) -> Arc<ModelServer> {
    let server = ModelServer::builder("mlops-test").build();
    let linear = LinearModel::new(LinearParams {
        coef: vec![vec![2.0, -1.0, 0.5]],
        intercept: vec![0.25],
        link: Link::Identity,
    })
    .unwrap();
    server
        .load_model(&n("linear"), v(1), Arc::new(linear))
        .unwrap();
    server
        .load_model(
            &n("ints"),
            v(3),
            Arc::new(identity(DataType::Int64, vec![-1, 2], "i", "o")),
        )
        .unwrap();
    server
        .load_model(
            &n("text"),
            v(1),
            Arc::new(identity(DataType::Bytes, vec![-1], "s", "t")),
        )
        .unwrap();
    server
        .load_model(
            &n("half"),
            v(1),
            Arc::new(identity(DataType::Fp16, vec![-1], "h", "g")),
        )
        .unwrap();
    // Batched: the prediction sleeps on the batching worker's thread, not the runtime's.
    server
        .load_model_with(
            &n("slow"),
            v(1),
            Arc::new(Slow {
                inner: identity(DataType::Fp32, vec![-1], "x", "y"),
                delay: Duration::from_millis(1500),
                started,
            }),
            BatchConfig::new(2, Duration::ZERO),
        )
        .unwrap();
    Arc::new(server)
}

/// Serves `server` over gRPC; returns the address and a sender that stops it.
async fn start(
    server: Arc<ModelServer>,
    options: GrpcOptions,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mlops_serve::grpc::serve(listener, server, options, async {
        let _ = stopped.await;
    }));
    (addr.to_string(), stop, task)
}

async fn python(script: &str, args: &[&str]) -> String {
    let python = mlops_testkit::python::interpreter("tritonclient[grpc]");
    let out = tokio::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const CLIENT: &str = r#"
import sys
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

c = grpcclient.InferenceServerClient(sys.argv[1])
assert c.is_server_live() and c.is_server_ready()
assert c.is_model_ready("linear")
assert c.is_model_ready("ints", "3")
assert not c.is_model_ready("ints", "4")
assert not c.is_model_ready("nope")
meta = c.get_server_metadata(as_json=True)
assert meta["name"] == "mlops-test", meta
m = c.get_model_metadata("linear", as_json=True)
assert m["platform"] == "mlops-linear" and m["versions"] == ["1"], m
assert m["inputs"][0]["datatype"] == "FP32" and m["inputs"][0]["shape"] == ["-1", "3"], m

# FP32: raw contents in, raw contents out.
x = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 2.0]], dtype=np.float32)
i = grpcclient.InferInput("x", [2, 3], "FP32")
i.set_data_from_numpy(x)
r = c.infer("linear", [i], request_id="r1")
assert r.get_response().id == "r1"
assert r.get_response().model_version == "1"
np.testing.assert_allclose(r.as_numpy("y").reshape(-1), x @ np.array([2.0, -1.0, 0.5], dtype=np.float32) + 0.25, rtol=1e-6)

# INT64, a version named.
ints = np.array([[1, -2], [2**40, 7]], dtype=np.int64)
i = grpcclient.InferInput("i", [2, 2], "INT64")
i.set_data_from_numpy(ints)
r = c.infer("ints", [i], model_version="3", outputs=[grpcclient.InferRequestedOutput("o")])
np.testing.assert_array_equal(r.as_numpy("o"), ints)

# BYTES, length-prefixed both ways.
s = np.array([b"hello", b"\xff\x00raw", b""], dtype=np.object_)
i = grpcclient.InferInput("s", [3], "BYTES")
i.set_data_from_numpy(s)
r = c.infer("text", [i])
assert list(r.as_numpy("t")) == [b"hello", b"\xff\x00raw", b""], r.as_numpy("t")

# FP16 travels raw.
h = np.array([0.5, -2.0], dtype=np.float16)
i = grpcclient.InferInput("h", [2], "FP16")
i.set_data_from_numpy(h)
np.testing.assert_array_equal(c.infer("half", [i]).as_numpy("g"), h)

def code(call):
    try:
        call()
    except InferenceServerException as e:
        return e.status()
    raise SystemExit("expected an error")

def infer(model, name, shape, dt, data, **kw):
    i = grpcclient.InferInput(name, shape, dt)
    i.set_data_from_numpy(data)
    return lambda: c.infer(model, [i], **kw)

codes = {
    "unknown model": code(infer("nope", "x", [1, 3], "FP32", x[:1])),
    "unknown version": code(infer("ints", "i", [1, 2], "INT64", ints[:1], model_version="9")),
    "wrong shape": code(infer("linear", "x", [3, 2], "FP32", x.reshape(3, 2))),
    "wrong datatype": code(infer("linear", "x", [2, 3], "FP64", x.astype(np.float64))),
    "unknown input": code(infer("linear", "z", [2, 3], "FP32", x)),
    "unknown output": code(infer("linear", "x", [2, 3], "FP32", x, outputs=[grpcclient.InferRequestedOutput("nope")])),
    "client deadline": code(infer("slow", "x", [2], "FP32", np.zeros(2, dtype=np.float32), client_timeout=0.3)),
}
expected = {
    "unknown model": "StatusCode.NOT_FOUND",
    "unknown version": "StatusCode.NOT_FOUND",
    "wrong shape": "StatusCode.INVALID_ARGUMENT",
    "wrong datatype": "StatusCode.INVALID_ARGUMENT",
    "unknown input": "StatusCode.INVALID_ARGUMENT",
    "unknown output": "StatusCode.INVALID_ARGUMENT",
    "client deadline": "StatusCode.DEADLINE_EXCEEDED",
}
assert codes == expected, codes

# The repository calls, with Triton's messages.
index = c.get_model_repository_index(as_json=True)
names = sorted(m["name"] for m in index["models"])
assert names == ["half", "ints", "linear", "slow", "text"], index
assert all(m["state"] == "READY" for m in index["models"]), index
c.unload_model("text")
assert not c.is_model_ready("text")
assert code(lambda: c.load_model("text")) == "StatusCode.UNIMPLEMENTED"  # no registry configured
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_grpc_talks_to_the_server() {
    let (addr, _stop, _task) = start(server(), GrpcOptions::default()).await;
    assert_eq!(python(CLIENT, &[&addr]).await, "ok");
}

const AUTH: &str = r#"
import sys
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

c = grpcclient.InferenceServerClient(sys.argv[1])
# Health stays open.
assert c.is_server_live() and c.is_server_ready()
x = np.zeros((1, 3), dtype=np.float32)
i = grpcclient.InferInput("x", [1, 3], "FP32")
i.set_data_from_numpy(x)
for headers in (None, {"authorization": "Bearer wrong"}):
    try:
        c.infer("linear", [i], headers=headers)
        raise SystemExit("expected UNAUTHENTICATED")
    except InferenceServerException as e:
        assert e.status() == "StatusCode.UNAUTHENTICATED", e
    try:
        c.get_model_metadata("linear", headers=headers)
        raise SystemExit("expected UNAUTHENTICATED")
    except InferenceServerException as e:
        assert e.status() == "StatusCode.UNAUTHENTICATED", e
r = c.infer("linear", [i], headers={"authorization": "Bearer s3cret"})
assert r.as_numpy("y").size == 1
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_but_health_need_the_bearer_token() {
    let options = GrpcOptions::default().with_bearer_token("s3cret".to_owned().into());
    let (addr, _stop, _task) = start(server(), options).await;
    assert_eq!(python(AUTH, &[&addr]).await, "ok");
}

const LIMITS: &str = r#"
import sys, threading
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

c = grpcclient.InferenceServerClient(sys.argv[1])
def slow(out):
    i = grpcclient.InferInput("x", [2], "FP32")
    i.set_data_from_numpy(np.ones(2, dtype=np.float32))
    try:
        grpcclient.InferenceServerClient(sys.argv[1]).infer("slow", [i])
        out.append("ok")
    except InferenceServerException as e:
        out.append(e.status())
results = []
threads = [threading.Thread(target=slow, args=(results,)) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
# One slot: one call is worked on, the others are refused at once.
assert sorted(results) == ["StatusCode.RESOURCE_EXHAUSTED", "StatusCode.RESOURCE_EXHAUSTED", "ok"], results

# A message over the size limit is refused before it is decoded.
big = np.zeros((1000, 3), dtype=np.float32)
i = grpcclient.InferInput("x", [1000, 3], "FP32")
i.set_data_from_numpy(big)
try:
    c.infer("linear", [i])
    raise SystemExit("expected a size error")
except InferenceServerException as e:
    assert e.status() == "StatusCode.OUT_OF_RANGE", e
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_and_oversized_calls_are_refused() {
    let options = GrpcOptions::default()
        .with_max_in_flight(1)
        .with_max_message_bytes(4096);
    let (addr, _stop, _task) = start(server(), options).await;
    assert_eq!(python(LIMITS, &[&addr]).await, "ok");
}

const SERVER_DEADLINE: &str = r#"
import sys
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException
i = grpcclient.InferInput("x", [2], "FP32")
i.set_data_from_numpy(np.ones(2, dtype=np.float32))
try:
    grpcclient.InferenceServerClient(sys.argv[1]).infer("slow", [i])
    raise SystemExit("expected DEADLINE_EXCEEDED")
except InferenceServerException as e:
    assert e.status() == "StatusCode.DEADLINE_EXCEEDED", e
    assert "timed out" in e.message() or "time" in e.message(), e.message()
print("ok")
"#;

/// The server's own inference timeout answers DEADLINE_EXCEEDED (the client set none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_past_the_timeout_is_deadline_exceeded() {
    let options = GrpcOptions::default().with_request_timeout(Some(Duration::from_millis(300)));
    let (addr, _stop, _task) = start(server(), options).await;
    assert_eq!(python(SERVER_DEADLINE, &[&addr]).await, "ok");
}

const IN_FLIGHT: &str = r#"
import sys
import numpy as np
import tritonclient.grpc as grpcclient
i = grpcclient.InferInput("x", [2], "FP32")
i.set_data_from_numpy(np.full(2, 3.0, dtype=np.float32))
r = grpcclient.InferenceServerClient(sys.argv[1]).infer("slow", [i])
print(r.as_numpy("y").tolist())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_calls_in_flight_finish() {
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (addr, stop, task) = start(server_counting(started.clone()), GrpcOptions::default()).await;
    let call = tokio::spawn({
        let addr = addr.clone();
        async move { python(IN_FLIGHT, &[&addr]).await }
    });
    // Stop while the call is being worked on: once the slow model has started it (it answers
    // 1.5 s later).
    while started.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            !call.is_finished(),
            "the call ended before the model saw it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    assert_eq!(call.await.unwrap(), "[3.0, 3.0]");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server stops once the call is answered")
        .unwrap()
        .unwrap();
    // Stopped: a new connection is refused.
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
}
