//! The MLflow-compatible server (`server::MlflowServer`) over the embedded store: our own MLflow
//! REST clients pass the tracker and registry suites through it, MLflow's Python client (the
//! pinned `mlflow` of `MLOPS_TEST_PYTHON`) logs into it and reads back, and errors have MLflow's
//! shape.
// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use mlops_core::registry::RegistryExt;
use mlops_core::tracker::{SearchRunsOptions, TrackerExt};
use mlops_core::{Registry, RunStatus, Store, Tracker};
use mlops_mlflow::server::MlflowServer;
use mlops_mlflow::{MlflowRegistry, MlflowTracker};
use mlops_storage::{MemoryStore, StoreRegistry, StoreTracker, StoreTrackerOptions};
use serde_json::{Value, json};

struct Running {
    url: String,
    store: Arc<dyn Store>,
    tracker: Arc<StoreTracker>,
    registry: Arc<dyn Registry>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open_store() -> (Arc<StoreTracker>, Arc<StoreRegistry>, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tracker = StoreTracker::open(
        store.clone(),
        StoreTrackerOptions::default().with_flush_interval(None),
    )
    .await
    .unwrap();
    (
        Arc::new(tracker),
        Arc::new(StoreRegistry::new(store.clone())),
        store,
    )
}

async fn serve(server: MlflowServer) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = server.router();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, task)
}

async fn start() -> Running {
    let (tracker, registry, store) = open_store().await;
    let server =
        MlflowServer::new(tracker.clone(), registry.clone()).with_logged_models(store.clone());
    let (url, task) = serve(server).await;
    Running {
        url,
        store,
        tracker,
        registry,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn our_mlflow_tracker_passes_the_tracker_suite_through_it() {
    let s = start().await;
    mlops_testkit::tracker::run_all(&MlflowTracker::new(&s.url).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn our_mlflow_registry_passes_the_registry_suite_through_it() {
    let s = start().await;
    mlops_testkit::registry::run_all(&MlflowRegistry::new(&s.url).unwrap()).await;
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn errors_have_mlflows_shape_and_status() {
    let s = start().await;
    let http = reqwest::Client::new();
    let api = format!("{}/api/2.0/mlflow", s.url);
    use reqwest::Method;

    let (status, body) = call(
        &http,
        Method::GET,
        &format!("{api}/runs/get?run_id=0123456789abcdef0123456789abcdef"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST", "{body}");

    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{api}/runs/search"),
        Some(json!({"experiment_ids": ["0"], "filter": "metrics.acc >> 1"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("position"),
        "{body}"
    );

    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{api}/experiments/create"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("name"), "{body}");

    let resp = http
        .post(format!("{api}/experiments/create"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error_code"], "MALFORMED_REQUEST");

    let (status, body) = call(&http, Method::GET, &format!("{api}/no/such/route"), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");

    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{api}/experiments/create"),
        Some(json!({"name": "dup"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &http,
        Method::POST,
        &format!("{api}/experiments/create"),
        Some(json!({"name": "dup"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], "RESOURCE_ALREADY_EXISTS");

    // A query string carries GET parameters, repeated keys as lists; numbers arrive as strings.
    let (status, body) = call(
        &http,
        Method::GET,
        &format!("{api}/experiments/search?max_results=1&view_type=ALL"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["experiments"].as_array().unwrap().len(), 1);
    assert!(body["next_page_token"].is_string(), "{body}");

    // Artifact paths outside a run's root are refused, and `..` never reaches the store.
    for path in [
        "0/x",
        "0/../../etc/passwd",
        "0/0123456789abcdef0123456789abcdef/artifacts/../x",
    ] {
        let (status, body) = call(
            &http,
            Method::GET,
            &format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}", s.url),
            None,
        )
        .await;
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
    }

    let (status, body) = call(&http, Method::GET, &format!("{}/health", s.url), None).await;
    assert_eq!((status, body), (200, Value::String("OK".into())));
}

#[tokio::test]
async fn a_bearer_token_guards_everything_but_health() {
    let (tracker, registry, _) = open_store().await;
    let server = MlflowServer::new(tracker, registry)
        .with_bearer_token(mlops_core::secret::SecretString::from("s3cret".to_string()));
    let (url, task) = serve(server).await;
    let http = reqwest::Client::new();
    let search = format!("{url}/api/2.0/mlflow/experiments/search");
    let r = http.post(&search).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_code"], "UNAUTHENTICATED");
    let r = http
        .post(&search)
        .bearer_auth("wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(&search)
        .bearer_auth("s3cret")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(format!("{url}/api/2.0/mlflow-artifacts/artifacts?path=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    task.abort();
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// Runs a client script of `tests/` against `url` on a blocking thread (the server runs on
/// this test's runtime), answering the JSON it printed.
async fn run_client(name: &str, case: Value) -> Value {
    let path = script(name);
    tokio::task::spawn_blocking(move || mlops_testkit::python::run_json(&path, &case, "mlflow"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mlflows_python_client_logs_into_our_store_and_reads_back() {
    let s = start().await;
    let out = run_client("mlflow_client.py", json!({"tracking_uri": s.url})).await;
    // The script asserted what it read back through MLflow's client; now read the same store
    // through our own tracker and registry, as the CLI would.
    let parent: mlops_core::RunId = out["parent_run_id"].as_str().unwrap().parse().unwrap();
    let child: mlops_core::RunId = out["child_run_id"].as_str().unwrap().parse().unwrap();
    let run = s.tracker.get_run(&parent).await.unwrap();
    assert_eq!(run.info.status, RunStatus::Finished);
    assert_eq!(run.info.run_name, "parent-run");
    assert_eq!(run.data.params["lr"], "0.01");
    assert_eq!(run.data.params["layers"], "3");
    assert_eq!(run.data.tags["team"], "fraud");
    assert_eq!(run.metric("loss"), Some(0.1));
    let history = s
        .tracker
        .metric_history(&parent, &"loss".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(history.len(), 10);
    assert!(history.iter().enumerate().all(|(i, m)| m.step == i as i64));
    let artifacts = s.tracker.list_artifacts(&parent, None).await.unwrap();
    let paths: Vec<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["notes/readme.txt", "report.json"], "{paths:?}");
    let notes = s
        .tracker
        .get_artifact(&parent, &"notes/readme.txt".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(&notes[..], b"hello from mlflow\n");
    assert_eq!(run.inputs.dataset_inputs.len(), 1);
    assert_eq!(run.inputs.dataset_inputs[0].dataset.name, "churn-train");
    assert_eq!(run.inputs.dataset_inputs[0].context(), Some("training"));

    let child_run = s.tracker.get_run(&child).await.unwrap();
    assert_eq!(child_run.parent_run_id(), Some(parent.as_str()));

    let experiment = s
        .tracker
        .get_experiment_by_name(&"mlflow-client".parse().unwrap())
        .await
        .unwrap();
    let runs = s
        .tracker
        .search_all_runs(SearchRunsOptions::default().in_experiment(experiment.experiment_id))
        .await
        .unwrap();
    assert_eq!(runs.len(), out["runs_logged"].as_u64().unwrap() as usize);

    let champion = s
        .registry
        .resolve(&"models:/fraud@champion".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(champion.version.get(), 1);
    assert_eq!(champion.run_id.as_ref(), Some(&parent));
    assert_eq!(champion.tags["framework"], "sklearn");

    // 16 threads logged into separate runs and one shared run: nothing was lost.
    let shared: mlops_core::RunId = out["shared_run_id"].as_str().unwrap().parse().unwrap();
    let shared_run = s.tracker.get_run(&shared).await.unwrap();
    let threads = out["threads"].as_u64().unwrap() as usize;
    let per_thread = out["per_thread"].as_u64().unwrap() as usize;
    for t in 0..threads {
        let h = s
            .tracker
            .metric_history(&shared, &format!("t{t}").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(h.len(), per_thread, "thread {t} in the shared run");
    }
    assert_eq!(shared_run.data.params.len(), threads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sklearn_autologging_logs_registers_and_serves_through_it() {
    let s = start().await;
    let out = run_client("mlflow_autolog.py", json!({"tracking_uri": s.url})).await;
    let run_id: mlops_core::RunId = out["run_id"].as_str().unwrap().parse().unwrap();
    let run = s.tracker.get_run(&run_id).await.unwrap();
    assert_eq!(run.info.status, RunStatus::Finished);
    assert_eq!(run.data.params["C"], "0.5");
    assert!(
        run.metric("training_score").is_some(),
        "{:?}",
        run.data.metrics
    );
    // The LoggedModel is a document of the store, its files retained by its commit.
    let model_id = out["model_id"].as_str().unwrap();
    let r = mlops_core::RefName::new(format!("mlflow/logged-models/{model_id}")).unwrap();
    let commit = s
        .store
        .get_ref(&r, mlops_core::store::RefVersion::Latest)
        .await
        .unwrap();
    assert!(!commit.retains.is_empty(), "the model's files are retained");
    let version = s
        .registry
        .resolve(&"models:/autologged@champion".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(version.run_id.as_ref(), Some(&run_id));
    let explicit = s
        .registry
        .resolve(&"models:/explicit-clf/1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        explicit.run_id.as_ref().map(|r| r.as_str()),
        out["explicit_run_id"].as_str()
    );
}
