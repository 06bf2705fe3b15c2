//! `MlflowTracker` and `MlflowRegistry` against a real `mlflow server` on 127.0.0.1, started by
//! `./scripts/test`, which exports `MLOPS_TEST_MLFLOW_URI`. Without it the tests fail and say how
//! to start one: they never pass silently.
// Test helpers may panic: a failure is a failed test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use mlops_mlflow::{MlflowRegistry, MlflowTracker};

fn uri() -> String {
    std::env::var("MLOPS_TEST_MLFLOW_URI").unwrap_or_else(|_| {
        panic!(
            "MLOPS_TEST_MLFLOW_URI is not set. Run ./scripts/test, which starts an MLflow server on \
             127.0.0.1, or start one yourself (`mlflow server --host 127.0.0.1 --port 5055 \
             --backend-store-uri sqlite:///mlflow.db --artifacts-destination ./mlartifacts`, wait for \
             GET /health to answer OK) and export MLOPS_TEST_MLFLOW_URI=http://127.0.0.1:5055"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mlflow_tracker_passes_the_tracker_suite() {
    mlops_testkit::tracker::run_all(&MlflowTracker::new(&uri()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mlflow_registry_passes_the_registry_suite() {
    mlops_testkit::registry::run_all(&MlflowRegistry::new(&uri()).unwrap()).await;
}

#[tokio::test]
async fn bad_uris_and_unreachable_servers_are_clear_errors() {
    assert!(
        MlflowTracker::new("ftp://x")
            .unwrap_err()
            .is_invalid_argument()
    );
    assert!(
        MlflowTracker::new("not a url")
            .unwrap_err()
            .is_invalid_argument()
    );
    // Nothing listens on port 9 of 127.0.0.1.
    let t = MlflowTracker::new("http://127.0.0.1:9").unwrap();
    let err = mlops_core::Tracker::get_experiment(&t, &"0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}
