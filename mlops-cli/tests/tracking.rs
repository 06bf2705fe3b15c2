//! `mlops experiments|runs|models …` read what the library wrote into a store.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use mlops::registry::{CreateModelOptions, CreateVersionOptions};
use mlops::storage::{ObjectStoreStore, StoreRegistry, StoreTracker, StoreTrackerOptions};
use mlops::tracker::CreateRunOptions;
use mlops::{Registry, RunStatus, Store, Tracker, TrackerExt};

fn mlops(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlops"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("the mlops binary runs")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Two runs in experiment "churn" and a model with two versions, written by the library.
async fn populate(dir: &Path) -> Vec<String> {
    let store: Arc<dyn Store> =
        Arc::new(ObjectStoreStore::open(dir.to_str().unwrap(), &[]).unwrap());
    let tracker = StoreTracker::open(store.clone(), StoreTrackerOptions::default())
        .await
        .unwrap();
    let exp = tracker
        .get_or_create_experiment(&"churn".parse().unwrap())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (name, f1) in [("mlp", 0.91), ("logistic", 0.84)] {
        let run = tracker
            .create_run(
                CreateRunOptions::default()
                    .in_experiment(exp.clone())
                    .with_name(name),
            )
            .await
            .unwrap()
            .info
            .run_id;
        tracker.log_param(&run, "model", name).await.unwrap();
        tracker.log_metric(&run, "f1", f1, 0).await.unwrap();
        tracker.end_run(&run, RunStatus::Finished).await.unwrap();
        ids.push(run.into_string());
    }
    let registry = StoreRegistry::new(store);
    let name = "churn".parse().unwrap();
    registry
        .create_registered_model(&name, CreateModelOptions::default())
        .await
        .unwrap();
    for id in &ids {
        registry
            .create_model_version(
                &name,
                CreateVersionOptions::new(format!("runs:/{id}/model")),
            )
            .await
            .unwrap();
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_experiments_and_models_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let ids = populate(&store).await;

    let out = ok(&mlops(&store, &["experiments", "list"]));
    assert!(out.contains("churn") && out.contains("Default"), "{out}");

    let out = ok(&mlops(
        &store,
        &[
            "runs",
            "list",
            "--experiment",
            "churn",
            "--filter",
            "metrics.f1 > 0.9",
        ],
    ));
    assert!(out.contains(&ids[0]) && !out.contains(&ids[1]), "{out}");
    let out = ok(&mlops(
        &store,
        &["runs", "list", "--order-by", "metrics.f1 ASC", "--json"],
    ));
    let runs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        runs[0]["info"]["run_id"],
        ids[1].as_str(),
        "ascending f1 puts logistic first"
    );

    let out = ok(&mlops(&store, &["runs", "show", &ids[0]]));
    assert!(
        out.contains("model = mlp") && out.contains("f1 = 0.910000"),
        "{out}"
    );
    let out = ok(&mlops(&store, &["runs", "compare", &ids[0], &ids[1]]));
    assert!(
        out.contains("params.model") && out.contains("logistic"),
        "{out}"
    );

    let out = ok(&mlops(
        &store,
        &["models", "alias", "churn", "champion", "2"],
    ));
    assert_eq!(out.trim(), "models:/churn@champion -> version 2");
    let out = ok(&mlops(&store, &["models", "show", "churn"]));
    assert!(
        out.contains("version 2") && out.contains("champion"),
        "{out}"
    );
    let out = ok(&mlops(&store, &["models", "list"]));
    assert!(out.contains("champion=2"), "{out}");

    // MLflow's file layout, out and back in through the command line.
    let mlruns = dir.path().join("mlruns");
    let out = ok(&mlops(
        &store,
        &["export", "mlflow", "--out", mlruns.to_str().unwrap()],
    ));
    assert!(out.starts_with("wrote 2 experiments, 2 runs"), "{out}");
    assert!(mlruns.join("models/churn/aliases/champion").is_file());
    let other = dir.path().join("other-store");
    let out = ok(&mlops(
        &other,
        &["import", "mlflow", mlruns.to_str().unwrap()],
    ));
    assert!(out.starts_with("imported 2 experiments, 2 runs"), "{out}");
    let out = ok(&mlops(
        &other,
        &["runs", "list", "--filter", "metrics.f1 > 0.9"],
    ));
    assert!(out.contains("mlp"), "{out}");
    let out = ok(&mlops(&other, &["models", "list"]));
    assert!(out.contains("champion=2"), "{out}");

    let bad = mlops(&store, &["runs", "show", "no-such-run"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("run not found: no-such-run"));
    let bad = mlops(&store, &["models", "alias", "churn", "latest", "1"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = mlops(&store, &["runs", "list", "--experiment", "nope"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// The version records of every ref under `refs/<prefix>`, newest last per ref.
fn records_under(store: &Path, prefix: &str) -> Vec<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for r in std::fs::read_dir(store.join("refs").join(prefix)).unwrap() {
        let v = r.unwrap().path().join(".v");
        let mut records: Vec<_> = std::fs::read_dir(&v)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        records.sort();
        out.push(records);
    }
    out
}

/// A damaged tracker log costs only its own records: the tracker commands keep working,
/// `store verify` exits 1 (corruption, not bad input), `store repair` quarantines the damage and
/// verify is clean again; a lost registry record is an error with exit 1, not a silent rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_is_reported_with_exit_1_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let ids = populate(&store).await;
    let logs = records_under(&store, "tracker/segments");
    assert_eq!(logs.len(), 1);
    assert!(logs[0].len() >= 2, "{logs:?}");
    // The newest segment (the second run's end) is lost.
    std::fs::remove_file(logs[0].last().unwrap()).unwrap();

    let out = ok(&mlops(&store, &["runs", "list", "--experiment", "churn"]));
    assert!(out.contains(&ids[0]), "what is left still lists: {out}");
    let o = mlops(&store, &["store", "verify"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("problem:") && stdout.contains("tracker/segments/"),
        "{stdout}"
    );
    let out = ok(&mlops(&store, &["store", "repair"]));
    assert!(
        out.contains("newly quarantined: tracker/segments/")
            && out.contains("ok: no corruption found"),
        "{out}"
    );
    let out = ok(&mlops(&store, &["store", "verify"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("quarantined: ") && l.contains("tracker/segments/")),
        "{out}"
    );
    let out = ok(&mlops(&store, &["store", "repair", "--json"]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["quarantined"], serde_json::json!([]), "{out}");
    assert_eq!(json["after"]["problems"], serde_json::json!([]), "{out}");

    // The model document loses its newest record.
    let models = records_under(&store, "registry/models");
    assert_eq!(models.len(), 1, "{models:?}");
    std::fs::remove_file(models[0].last().unwrap()).unwrap();
    let o = mlops(&store, &["models", "show", "churn"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("records were lost"), "{stderr}");
    let o = mlops(&store, &["store", "repair"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "repair cannot bring a lost model record back: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}
