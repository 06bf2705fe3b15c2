#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The crates together: a registry governed by the shipped Rego library, a server that loads the
//! approved champion through the deploy gate, a drift monitor fed by the server's observer hook,
//! one `/metrics` endpoint for both, and a drift flag that then blocks the next promotion.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use arrow::datatypes::{DataType as ArrowType, Field, Schema};
use mlops::drift::{DriftDetector, ProfileOptions};
use mlops::drift::{
    DriftMonitor, MonitorOptions, RetrainEvent, RetrainRule, StatDetector, profiles,
};
use mlops::policy::GOVERNANCE_PATH;
use mlops::policy::{Governed, RegoPolicyEngine, SharedFacts};
use mlops::registry::{CreateVersionOptions, DatasetLineage, Lineage, RegistryObject};
use mlops::serve::LoadOptions;
use mlops::serve::{HttpOptions, IdentityModel, ModelServer};
use mlops::signature::{Signature, TensorSpec};
use mlops::storage::{Artifacts, MemoryRegistry, MemoryStore};
use mlops::{DataType, Digest, Model, PolicyEngine, Registry, Server, Tag, Version};
use serde_json::json;

fn n(name: &str) -> mlops::ModelName {
    name.parse().unwrap()
}

fn table(shift: f64, n: usize) -> RecordBatch {
    let age: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..n).map(|i| 20.0 + ((i * 37) % 50) as f64 + shift),
    ));
    let income: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..n).map(|i| 1000.0 + ((i * 7919) % 3000) as f64),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("age", ArrowType::Float64, false),
        Field::new("income", ArrowType::Float64, false),
    ]));
    RecordBatch::try_new(schema, vec![age, income]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governed_registry_gated_server_and_drift_monitor_work_together() {
    let store = Arc::new(MemoryStore::new());
    let artifacts = Arc::new(Artifacts::new(store.clone()));
    let engine: Arc<dyn PolicyEngine> = Arc::new(
        RegoPolicyEngine::builder()
            .library()
            .unwrap()
            .build()
            .unwrap(),
    );
    let drift_facts = Arc::new(SharedFacts::new());
    let registry = Arc::new(
        Governed::new(MemoryRegistry::new(), engine.clone()).with_facts(drift_facts.clone()),
    );

    // A tabular model (identity over two columns), registered with lineage and approved.
    let model = IdentityModel::new(Signature::tensors(
        vec![
            TensorSpec::new("age", DataType::Fp64, vec![-1]),
            TensorSpec::new("income", DataType::Fp64, vec![-1]),
        ],
        vec![
            TensorSpec::new("age_out", DataType::Fp64, vec![-1]),
            TensorSpec::new("income_out", DataType::Fp64, vec![-1]),
        ],
    ))
    .unwrap();
    let tree = artifacts
        .put_model(&model.to_artifact().unwrap())
        .await
        .unwrap();
    let name = "churn".parse().unwrap();
    registry
        .create_registered_model(&name, Default::default())
        .await
        .unwrap();
    let lineage = Lineage {
        run_id: None,
        datasets: vec![DatasetLineage {
            name: "customers".parse().unwrap(),
            version: Version::new(1).unwrap(),
            digest: Digest::of(b"customers@1"),
        }],
        git_commit: Some("abc123".into()),
    };
    let register = |approved: bool| {
        let mut options =
            CreateVersionOptions::new(Artifacts::model_source(&tree)).with_lineage(lineage.clone());
        if approved {
            options = options.with_tag(Tag::new("approved".parse().unwrap(), "true").unwrap());
        }
        options
    };
    let v1 = registry
        .create_model_version(&name, register(true))
        .await
        .unwrap();
    registry
        .set_alias(&name, &"champion".parse().unwrap(), v1.version)
        .await
        .unwrap();
    let reference = StatDetector::new()
        .profile(&[table(0.0, 2000)], &ProfileOptions::default())
        .unwrap();
    profiles::attach(
        store.as_ref(),
        registry.inner(),
        &name,
        v1.version,
        &reference,
    )
    .await
    .unwrap();

    // The monitor watches what the server serves; its retraining events raise the drift flag
    // the governance facts carry.
    let profile = profiles::for_version(store.as_ref(), registry.inner(), &name, v1.version)
        .await
        .unwrap();
    let monitor = Arc::new(
        DriftMonitor::new(
            "churn",
            Arc::new(profile),
            MonitorOptions::default()
                .with_window_rows(200)
                .with_retrain(RetrainRule::default()),
        )
        .unwrap(),
    );
    let events: Arc<Mutex<Vec<RetrainEvent>>> = Arc::default();
    {
        let (events, facts) = (events.clone(), drift_facts.clone());
        monitor.on_retrain(move |e| {
            facts.set("drift", json!({"flagged": true, "score": e.drift_share}));
            events.lock().unwrap().push(e.clone());
        });
    }
    let server = Arc::new(
        ModelServer::builder("edge")
            .registry(registry.clone(), artifacts.clone())
            .policy(engine.clone(), GOVERNANCE_PATH)
            .observer(monitor.clone())
            .build(),
    );
    monitor.register(server.metrics().registry()).unwrap();
    server
        .load(
            &n("churn"),
            LoadOptions::from_uri("models:/churn@champion".parse().unwrap()),
        )
        .await
        .unwrap();

    // Serve production traffic over HTTP: first like the training data, then shifted.
    let app = mlops::serve::model_server_router(server.clone(), HttpOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mlops::serve::http::serve(
        listener,
        app,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    for (shift, batches) in [(0.0, 4), (25.0, 4)] {
        for b in 0..batches {
            let t = table(shift, 100);
            let col = |i: usize| -> Vec<f64> {
                let a = t.column(i).as_any().downcast_ref::<Float64Array>().unwrap();
                a.values().iter().copied().skip(b % 2).collect::<Vec<_>>()
            };
            let (age, income) = (col(0), col(1));
            let body = json!({"inputs": [
                {"name": "age", "shape": [age.len()], "datatype": "FP64", "data": age},
                {"name": "income", "shape": [income.len()], "datatype": "FP64", "data": income},
            ]});
            let r = client
                .post(format!("{base}/v2/models/churn/infer"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    }
    // The observer runs off the request path: wait for the windows.
    for _ in 0..400 {
        if !events.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fired = events.lock().unwrap().clone();
    // Batches reach the monitor off the request path, so how shifted rows split across windows
    // may vary; at least one whole window is shifted.
    assert!(!fired.is_empty(), "no retraining event");
    assert!(
        fired[0].reasons[0].starts_with("drift share"),
        "{:?}",
        fired[0].reasons
    );

    // One /metrics endpoint carries the server's series and the monitor's gauges.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "mlops_inference_requests_total{model=\"churn\",outcome=\"ok\",version=\"1\"} 8"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlops_drift_windows_total{model=\"churn\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlops_retrain_triggers_total{model=\"churn\"}"),
        "{metrics}"
    );

    // While drift is flagged, an approved candidate may be registered but not promoted.
    let v2 = registry
        .create_model_version(&name, register(true))
        .await
        .unwrap();
    let err = registry
        .set_alias(&name, &"champion".parse().unwrap(), v2.version)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("drift is flagged"), "{err}");
    drift_facts.remove("drift");
    registry
        .set_alias(&name, &"champion".parse().unwrap(), v2.version)
        .await
        .unwrap();
    // And the server's gate refuses an unapproved version.
    let v3 = registry
        .create_model_version(&name, register(false))
        .await
        .unwrap();
    registry
        .set_tag(
            &RegistryObject::Version(name.clone(), v3.version),
            Tag::new("note".parse().unwrap(), "x").unwrap(),
        )
        .await
        .unwrap();
    let uri = format!("models:/churn/{}", v3.version).parse().unwrap();
    let err = server
        .load(&n("churn"), LoadOptions::from_uri(uri))
        .await
        .unwrap_err();
    assert!(err.is_policy_denied(), "{err}");
}
