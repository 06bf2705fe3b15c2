#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Models trained elsewhere through the command: scikit-learn exports (built by
//! `mlops-onnx/tests/make_models.py`) registered with `mlops models register --onnx`, served
//! by `models:/` URI, by file and as MLflow model directories over HTTP and gRPC at once, asked
//! by `tritonclient` (HTTP and gRPC) and equal to onnxruntime's answers; the KServe export says
//! `modelFormat: onnx`; `mlops models export` writes an MLflow model directory that MLflow's own
//! `mlflow.pyfunc.load_model` serves (for an ONNX model and for a model trained here); a model
//! logged and registered with MLflow's client in a real MLflow server is served by URI from it;
//! SIGTERM drains both transports.
//!
//! Needs `MLOPS_TEST_PYTHON` (scikit-learn, skl2onnx, onnx, onnxruntime, tritonclient[all],
//! mlflow), `ORT_DYLIB_PATH` (onnxruntime for the models tract lacks) and, for the MLflow
//! registry test, `MLOPS_TEST_MLFLOW_URI` — all set by `./scripts/test`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const NEEDS: &str = "scikit-learn, skl2onnx, onnx, onnxruntime, tritonclient and mlflow";

fn python() -> String {
    mlops_testkit::python::interpreter(NEEDS)
}

fn mlops(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir)
        .env_remove("MLOPS_STORE")
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    ok(&out).trim().to_owned()
}

/// The models and onnxruntime's answers, in `dir/models`.
fn make_models(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mlops-onnx/tests/make_models.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&models)
        .output()
        .unwrap();
    ok(&out);
    models
}

fn onnxruntime_library() {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "ORT_DYLIB_PATH is not set: point it at libonnxruntime.so (./scripts/test sets it from \
         the peers' onnxruntime wheel)"
    );
}

/// `mlops serve` running; its HTTP and gRPC addresses.
struct Served {
    child: Child,
    http: String,
    grpc: Option<String>,
}

fn serve(dir: &Path, args: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(dir)
        .env_remove("MLOPS_STORE")
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut grpc = None;
    let http = loop {
        let line = lines.next().expect("mlops serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("listening on grpc://") {
            grpc = Some(rest.split_whitespace().next().unwrap().to_owned());
        }
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, http, grpc }
}

impl Served {
    /// SIGTERM; the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Asks each served model, over HTTP and gRPC, the inputs of its case; compares with
/// onnxruntime's outputs.
const COMPARE: &str = r#"
import json, sys
import numpy as np
import tritonclient.http as httpclient
import tritonclient.grpc as grpcclient

cases = json.load(open(sys.argv[1] + "/cases.json"))
served = json.loads(sys.argv[4])  # {served name: case}
dtypes = {"FP32": np.float32, "INT64": np.int64, "BYTES": np.object_}

def array(t):
    if t["datatype"] == "BYTES":
        return np.array([s.encode() for s in t["data"]], dtype=np.object_).reshape(t["shape"])
    return np.array(t["data"], dtype=dtypes[t["datatype"]]).reshape(t["shape"])

def check(name, case, result):
    for out, want in cases[case]["outputs"].items():
        got = result.as_numpy(out)
        expected = array(want)
        assert got.shape == expected.shape, (name, out, got.shape, expected.shape)
        if want["datatype"] == "FP32":
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=name + " " + out)
        else:
            assert (got == expected).all(), (name, out, got, expected)

h = httpclient.InferenceServerClient(sys.argv[2])
g = grpcclient.InferenceServerClient(sys.argv[3])
for name, case in served.items():
    for client, module in ((h, httpclient), (g, grpcclient)):
        inputs = []
        for input_name, t in cases[case]["inputs"].items():
            i = module.InferInput(input_name, t["shape"], t["datatype"])
            i.set_data_from_numpy(array(t))
            inputs.append(i)
        check(name, case, client.infer(name, inputs))
    meta = g.get_model_metadata(name, as_json=True)
    assert meta["platform"] in ("mlops-onnx", "mlops-mlflow"), meta
print("ok")
"#;

#[test]
fn onnx_models_register_serve_over_http_and_grpc_and_export() {
    onnxruntime_library();
    let dir = tempfile::tempdir().unwrap();
    let models = make_models(dir.path());
    let file = |case: &str| {
        models
            .join(format!("{case}.onnx"))
            .to_str()
            .unwrap()
            .to_owned()
    };

    // Register: the signature is the graph's; where it came from becomes tags.
    let out = mlops(
        dir.path(),
        &[
            "models",
            "register",
            "iris",
            "--onnx",
            &file("logistic_regression"),
            "--tag",
            "team=risk",
            "--json",
        ],
    );
    let version: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(version["version"], 1);
    let tags = version["tags"].to_string();
    for want in [
        "team",
        "risk",
        "onnx.producer_name",
        "skl2onnx",
        "mlops.flavor",
    ] {
        assert!(tags.contains(want), "{want} in {tags}");
    }
    assert!(
        version["signature"]
            .to_string()
            .contains("output_probability"),
        "{}",
        version["signature"]
    );
    let out = mlops(
        dir.path(),
        &[
            "models",
            "register",
            "gbr",
            "--onnx",
            &file("gradient_boosting_regressor"),
        ],
    );
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("tract lacks ai.onnx.ml:TreeEnsembleRegressor"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a model: bad input, nothing registered.
    std::fs::write(dir.path().join("junk.onnx"), b"not a model").unwrap();
    let out = mlops(
        dir.path(),
        &["models", "register", "junk", "--onnx", "junk.onnx"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ok(&mlops(dir.path(), &["models", "list"])).contains("junk"));

    // KServe: modelFormat onnx, protocol v2, the gRPC port.
    ok(&mlops(
        dir.path(),
        &[
            "models",
            "kserve",
            "models:/iris/1",
            "--image",
            "ghcr.io/acme/mlops:1",
            "--store-url",
            "s3://models/prod",
            "-o",
            "isvc.yaml",
        ],
    ));
    let isvc = mlops::serve::kserve::parse(
        &std::fs::read_to_string(dir.path().join("isvc.yaml")).unwrap(),
    )
    .unwrap();
    let model = &isvc.spec.predictor.model;
    assert_eq!(model.model_format.name, "onnx");
    assert_eq!(model.protocol_version, "v2");
    assert!(
        model
            .container
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .any(|p| p.container_port == 8081)
    );

    // An MLflow model directory of the regressor, written by our export.
    ok(&mlops(
        dir.path(),
        &["models", "export", "models:/gbr/1", "--out", "gbr-mlflow"],
    ));

    // Serve: by URI (tract, and onnxruntime for the tree regressor), an ONNX file with a string
    // input (onnxruntime), an MLflow model directory — HTTP and gRPC at once.
    let served = serve(
        dir.path(),
        &[
            "--model",
            "models:/iris/1",
            "--model",
            "models:/gbr/1",
            "--model-dir",
            &format!("mixed={}", file("column_transformer")),
            "--model-dir",
            "trees=gbr-mlflow",
            "--port",
            "0",
            "--grpc-port",
            "0",
        ],
    );
    let grpc = served.grpc.clone().expect("a gRPC address");
    let cases = serde_json::json!({
        "iris": "logistic_regression",
        "gbr": "gradient_boosting_regressor",
        "mixed": "column_transformer",
        "trees": "gradient_boosting_regressor",
    });
    assert_eq!(
        run_python(
            COMPARE,
            &[
                models.to_str().unwrap(),
                &served.http,
                &grpc,
                &cases.to_string()
            ]
        ),
        "ok"
    );
    // SIGTERM stops both transports cleanly.
    assert!(served.stop().success());

    // MLflow's own client serves our export.
    let pyfunc = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
import mlflow.pyfunc
cases = json.load(open(sys.argv[2] + "/cases.json"))
case = cases["gradient_boosting_regressor"]
x = np.array(case["inputs"]["float_input"]["data"], dtype=np.float32).reshape(case["inputs"]["float_input"]["shape"])
out = mlflow.pyfunc.load_model(sys.argv[1]).predict({"float_input": x})
want = np.array(case["outputs"]["variable"]["data"], dtype=np.float32).reshape(case["outputs"]["variable"]["shape"])
np.testing.assert_allclose(out["variable"], want, rtol=1e-5)
print("ok")
"#;
    assert_eq!(
        run_python(
            pyfunc,
            &[
                dir.path().join("gbr-mlflow").to_str().unwrap(),
                models.to_str().unwrap()
            ]
        ),
        "ok"
    );
    // Exporting again into the same directory is refused, leaving it as it was.
    let out = mlops(
        dir.path(),
        &["models", "export", "models:/gbr/1", "--out", "gbr-mlflow"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A model trained here, exported as an MLflow model directory: MLflow's pyfunc (onnxruntime)
/// predicts what `mlops serve` answers for the same rows.
#[test]
fn a_model_trained_here_is_served_by_mlflow_pyfunc() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("tenure,spend,plan,churned\n");
    for i in 0..400 {
        let tenure = (i * 7919 % 60) as f64;
        let spend = ((i * 104_729) % 1000) as f64 / 100.0;
        let plan = ["basic", "plus", "pro"][i % 3];
        let churned =
            i64::from(spend - tenure / 10.0 + if plan == "pro" { 2.0 } else { 0.0 } > 3.0);
        csv.push_str(&format!("{tenure:.1},{spend:.2},{plan},{churned}\n"));
    }
    std::fs::write(dir.path().join("churn.csv"), csv).unwrap();
    ok(&mlops(
        dir.path(),
        &["datasets", "put", "churn", "churn.csv"],
    ));
    ok(&mlops(
        dir.path(),
        &[
            "train",
            "--data",
            "churn",
            "--target",
            "churned",
            "--model",
            "mlp",
            "--hidden",
            "8",
            "--epochs",
            "5",
            "--register",
            "churn",
        ],
    ));
    ok(&mlops(
        dir.path(),
        &[
            "models",
            "export",
            "models:/churn/1",
            "--out",
            "churn-mlflow",
        ],
    ));
    ok(&mlops(
        dir.path(),
        &[
            "models",
            "export",
            "models:/churn/1",
            "--format",
            "onnx",
            "--out",
            "churn.onnx",
        ],
    ));
    let served = serve(dir.path(), &["--model", "models:/churn/1", "--port", "0"]);
    let script = r#"
import json, sys, urllib.request, warnings
warnings.simplefilter("ignore")
import numpy as np
import pandas as pd
import mlflow.pyfunc
rows = pd.DataFrame({
    "tenure": np.array([3.0, 45.0, 12.0, 59.0]),
    "spend": np.array([9.5, 0.5, 4.25, 7.0]),
    "plan": np.array(["pro", "basic", "plus", "gold"], dtype=object),
})
out = mlflow.pyfunc.load_model(sys.argv[1]).predict(rows)
body = {"inputs": [
    {"name": "tenure", "shape": [4], "datatype": "FP64", "data": rows.tenure.tolist()},
    {"name": "spend", "shape": [4], "datatype": "FP64", "data": rows.spend.tolist()},
    {"name": "plan", "shape": [4], "datatype": "BYTES", "data": rows.plan.tolist()},
]}
req = urllib.request.Request("http://%s/v2/models/churn/infer" % sys.argv[2], json.dumps(body).encode(), {"Content-Type": "application/json"})
served = {o["name"]: o for o in json.load(urllib.request.urlopen(req))["outputs"]}
assert list(out["label"]) == served["label"]["data"], (out["label"], served["label"])
np.testing.assert_allclose(np.asarray(out["probabilities"]).reshape(-1), served["probabilities"]["data"], rtol=1e-5)
# The bare ONNX export runs in onnxruntime as it is.
import onnxruntime as ort
s = ort.InferenceSession(sys.argv[3], providers=["CPUExecutionProvider"])
label = s.run(["label"], {"tenure": rows.tenure.values, "spend": rows.spend.values, "plan": rows.plan.values})[0]
assert list(label) == served["label"]["data"], label
print("ok")
"#;
    assert_eq!(
        run_python(
            script,
            &[
                dir.path().join("churn-mlflow").to_str().unwrap(),
                &served.http,
                dir.path().join("churn.onnx").to_str().unwrap(),
            ]
        ),
        "ok"
    );
    assert!(served.stop().success());
}

fn mlflow_uri() -> String {
    std::env::var("MLOPS_TEST_MLFLOW_URI").unwrap_or_else(|_| {
        panic!(
            "MLOPS_TEST_MLFLOW_URI is not set: run ./scripts/test, which starts an MLflow server \
             on 127.0.0.1"
        )
    })
}

/// A model logged and registered with MLflow's client in a real MLflow server is served by URI
/// from our server, equal to onnxruntime.
#[test]
fn a_version_of_a_real_mlflow_registry_is_served_by_uri() {
    onnxruntime_library();
    let uri = mlflow_uri();
    let dir = tempfile::tempdir().unwrap();
    let models = make_models(dir.path());
    let name = format!("onnx-{}", std::process::id());
    let log = r#"
import os, sys, warnings
warnings.simplefilter("ignore")
os.environ["MLFLOW_TRACKING_URI"] = sys.argv[1]
import mlflow, mlflow.onnx, onnx
mlflow.set_experiment("onnx-serving")
with mlflow.start_run():
    info = mlflow.onnx.log_model(onnx.load(sys.argv[2]), name="model", registered_model_name=sys.argv[3])
print(info.registered_model_version)
"#;
    // MLflow prints links to the run before our line: the version is the last line.
    let printed = run_python(
        log,
        &[
            &uri,
            models.join("random_forest.onnx").to_str().unwrap(),
            &name,
        ],
    );
    let version = printed.lines().last().unwrap().trim().to_owned();
    let served = serve(
        dir.path(),
        &[
            "--mlflow-registry",
            &uri,
            "--model",
            &format!("models:/{name}/{version}"),
            "--port",
            "0",
            "--grpc-port",
            "0",
        ],
    );
    let cases = serde_json::json!({ &name: "random_forest" });
    assert_eq!(
        run_python(
            COMPARE,
            &[
                models.to_str().unwrap(),
                &served.http,
                served.grpc.as_deref().unwrap(),
                &cases.to_string()
            ]
        ),
        "ok"
    );
    assert!(served.stop().success());
}
