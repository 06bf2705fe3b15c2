//! MLflow's own client reads what `export_mlflow` writes: experiments, runs, params, latest
//! metrics and full histories, tags, artifacts, registered models, versions, stages and aliases.
//!
//! Needs a Python with mlflow, named by `MLOPS_TEST_PYTHON` (`./scripts/test` sets it up).

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use mlops_core::registry::RegistryExt;
use mlops_core::registry::TransitionOptions;
use mlops_core::registry::{CreateModelOptions, CreateVersionOptions, RegistryObject, Stage};
use mlops_core::tracker::SearchRunsOptions;
use mlops_core::tracker::{CreateExperimentOptions, CreateRunOptions, LogBatch};
use mlops_core::tracking::{Dataset, DatasetInput};
use mlops_core::{
    LifecycleStage, Metric, Param, Registry, RunStatus, Store, Tag, Tracker, TrackerExt, Version,
};
use mlops_mlflow::{IMPORTED_RUN_ID_TAG, export_mlflow, import_mlflow};
use mlops_storage::{
    MemoryRegistry, MemoryStore, MemoryTracker, StoreRegistry, StoreTracker, StoreTrackerOptions,
};

fn python() -> String {
    mlops_testkit::python::interpreter("mlflow")
}

const READ_WITH_MLFLOW: &str = r#"
import json, os, sys, warnings
warnings.simplefilter("ignore")
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.tracking import MlflowClient
from mlflow.entities import ViewType
root = "file://" + sys.argv[1]
c = MlflowClient(tracking_uri=root, registry_uri=root)
out = {"experiments": {}, "runs": {}, "models": {}}
for e in c.search_experiments(view_type=ViewType.ALL):
    out["experiments"][e.name] = {"id": e.experiment_id, "stage": e.lifecycle_stage, "tags": e.tags}
    for r in c.search_runs([e.experiment_id], run_view_type=ViewType.ALL):
        hist = {k: [[m.step, m.timestamp, m.value] for m in c.get_metric_history(r.info.run_id, k)]
                for k in r.data.metrics}
        arts = sorted(a.path for a in c.list_artifacts(r.info.run_id))
        out["runs"][r.info.run_id] = {
            "name": r.info.run_name, "status": r.info.status, "stage": r.info.lifecycle_stage,
            "params": r.data.params, "metrics": r.data.metrics, "tags": r.data.tags,
            "history": hist, "artifacts": arts, "start": r.info.start_time, "end": r.info.end_time,
            "experiment": r.info.experiment_id,
            "inputs": [{"name": d.dataset.name, "digest": d.dataset.digest,
                        "source": d.dataset.source, "source_type": d.dataset.source_type,
                        "schema": d.dataset.schema,
                        "tags": {t.key: t.value for t in d.tags}}
                       for d in r.inputs.dataset_inputs],
        }
        filtered = c.search_runs([e.experiment_id], "params.model = 'mlp' and metrics.f1 > 0.5")
        out["experiments"][e.name]["mlp_runs"] = [x.info.run_id for x in filtered]
for m in c.search_registered_models():
    versions = {v.version: {"stage": v.current_stage, "source": v.source, "run_id": v.run_id,
                             "tags": v.tags, "aliases": v.aliases}
                for v in c.search_model_versions(f"name = '{m.name}'")}
    out["models"][m.name] = {
        "aliases": m.aliases, "tags": m.tags, "description": m.description, "versions": versions,
        "champion": c.get_model_version_by_alias(m.name, "champion").version,
    }
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_reads_our_export() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tracker = StoreTracker::open(store.clone(), StoreTrackerOptions::default())
        .await
        .unwrap();
    let registry = StoreRegistry::new(store);
    let exp = tracker
        .create_experiment(
            &"churn".parse().unwrap(),
            CreateExperimentOptions::default()
                .with_tag(Tag::new("team".parse().unwrap(), "growth").unwrap()),
        )
        .await
        .unwrap();
    let run = tracker
        .create_run(
            CreateRunOptions::default()
                .in_experiment(exp.clone())
                .with_name("mlp-1")
                .with_start_time(1_000),
        )
        .await
        .unwrap()
        .info
        .run_id;
    let mut batch = LogBatch::new()
        .param(Param::new("model".parse().unwrap(), "mlp").unwrap())
        .param(Param::new("lr".parse().unwrap(), "0.01").unwrap());
    for step in 0..5 {
        batch = batch
            .metric(Metric {
                key: "train/loss".parse().unwrap(),
                value: 1.0 / (step + 1) as f64,
                timestamp_ms: 2_000 + step,
                step,
            })
            .metric(Metric {
                key: "f1".parse().unwrap(),
                value: 0.5 + step as f64 / 10.0,
                timestamp_ms: 2_000 + step,
                step,
            });
    }
    tracker.log_batch(&run, batch).await.unwrap();
    tracker.set_tag(&run, "note", "first try").await.unwrap();
    tracker
        .log_inputs(
            &run,
            vec![DatasetInput {
                dataset: Dataset {
                    name: "churn-train".into(),
                    digest: "b3a1c9".into(),
                    source_type: "mlops".into(),
                    source: "mlops-data://churn-train@3".into(),
                    schema: Some(r#"{"mlflow_colspec": []}"#.into()),
                    profile: None,
                },
                tags: [("mlflow.data.context".to_string(), "training".to_string())].into(),
            }],
        )
        .await
        .unwrap();
    tracker
        .put_artifact(
            &run,
            &"model/weights.json".parse().unwrap(),
            Bytes::from_static(b"{\"w\": 1}"),
        )
        .await
        .unwrap();
    tracker.end_run(&run, RunStatus::Finished).await.unwrap();
    let other = tracker
        .create_run(
            CreateRunOptions::default()
                .in_experiment(exp.clone())
                .with_name("old"),
        )
        .await
        .unwrap()
        .info
        .run_id;
    tracker
        .log_param(&other, "model", "logistic")
        .await
        .unwrap();
    tracker
        .set_run_lifecycle(&other, LifecycleStage::Deleted)
        .await
        .unwrap();

    let name = "churn-model".parse().unwrap();
    registry
        .create_registered_model(
            &name,
            CreateModelOptions::default().with_description("predicts churn"),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        registry
            .create_model_version(
                &name,
                CreateVersionOptions::new(format!("runs:/{run}/model")).with_run_id(run.clone()),
            )
            .await
            .unwrap();
    }
    let v = |n| Version::new(n).unwrap();
    registry
        .set_alias(&name, &"champion".parse().unwrap(), v(2))
        .await
        .unwrap();
    registry
        .transition_stage(&name, v(1), Stage::Production, TransitionOptions::default())
        .await
        .unwrap();
    registry
        .set_tag(
            &RegistryObject::Version(name.clone(), v(2)),
            Tag::new("validated".parse().unwrap(), "yes").unwrap(),
        )
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mlruns");
    let report = export_mlflow(&tracker, &registry, &out).await.unwrap();
    assert_eq!(
        (
            report.experiments,
            report.runs,
            report.models,
            report.model_versions
        ),
        (2, 2, 1, 2)
    );
    assert_eq!(report.metric_values, 10);
    assert_eq!(report.dataset_inputs, 1);
    assert!(
        export_mlflow(&tracker, &registry, &out)
            .await
            .unwrap_err()
            .is_invalid_argument(),
        "refuses a non-empty directory"
    );

    let py = Command::new(python())
        .arg("-c")
        .arg(READ_WITH_MLFLOW)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "mlflow failed to read the export:\n{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();

    let e = &got["experiments"]["churn"];
    assert_eq!(e["id"], exp.as_str());
    assert_eq!(e["tags"]["team"], "growth");
    assert_eq!(e["mlp_runs"], serde_json::json!([run.as_str()]));
    assert_eq!(got["experiments"]["Default"]["id"], "0");
    let r = &got["runs"][run.as_str()];
    assert_eq!(r["name"], "mlp-1");
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(
        r["params"],
        serde_json::json!({"model": "mlp", "lr": "0.01"})
    );
    assert_eq!(r["metrics"]["f1"], 0.9);
    assert_eq!(r["metrics"]["train/loss"], 0.2);
    assert_eq!(r["history"]["f1"].as_array().unwrap().len(), 5);
    assert_eq!(
        r["history"]["train/loss"][0],
        serde_json::json!([0, 2000, 1.0])
    );
    assert_eq!(r["tags"]["note"], "first try");
    assert_eq!(
        r["inputs"],
        serde_json::json!([{
            "name": "churn-train", "digest": "b3a1c9", "source": "mlops-data://churn-train@3",
            "source_type": "mlops", "schema": r#"{"mlflow_colspec": []}"#,
            "tags": {"mlflow.data.context": "training"},
        }]),
        "MLflow reads the run's dataset input back"
    );
    assert_eq!(r["tags"]["mlflow.runName"], "mlp-1");
    assert_eq!(r["artifacts"], serde_json::json!(["model"]));
    assert_eq!(r["start"], 1000);
    let deleted = &got["runs"][other.as_str()];
    assert_eq!(deleted["stage"], "deleted");
    let m = &got["models"]["churn-model"];
    assert_eq!(m["description"], "predicts churn");
    assert_eq!(
        m["champion"], 2,
        "the file store reads versions as integers"
    );
    assert_eq!(m["versions"]["1"]["stage"], "Production");
    assert_eq!(m["versions"]["2"]["tags"]["validated"], "yes");
    assert_eq!(
        m["versions"]["2"]["aliases"],
        serde_json::json!(["champion"])
    );
    assert_eq!(m["versions"]["2"]["run_id"], run.as_str());
    assert_eq!(
        std::fs::read_to_string(
            out.join(exp.as_str())
                .join(run.as_str())
                .join("artifacts/model/weights.json")
        )
        .unwrap(),
        "{\"w\": 1}"
    );
}

const WRITE_WITH_MLFLOW: &str = r#"
import os, sys, warnings
warnings.simplefilter("ignore")
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.tracking import MlflowClient
root = "file://" + sys.argv[1]
c = MlflowClient(tracking_uri=root, registry_uri=root)
exp = c.create_experiment("from-mlflow", tags={"origin": "python"})
run = c.create_run(exp, run_name="py-run")
rid = run.info.run_id
c.log_param(rid, "alpha", "0.5")
for step in range(7):
    c.log_metric(rid, "rmse", 1.0 / (step + 1), step=step)
c.log_metric(rid, "val/acc", float("nan"), step=0)
c.set_tag(rid, "stage", "dev")
from mlflow.entities import Dataset, DatasetInput, InputTag
c.log_inputs(rid, [DatasetInput(Dataset("py-data", "d1g3st", "local", "/data/train.csv", schema='{"cols": 1}'),
                                [InputTag("mlflow.data.context", "eval")])])
art = os.path.join(sys.argv[2], "notes.txt")
open(art, "w").write("hello")
c.log_artifact(rid, art, artifact_path="docs")
c.set_terminated(rid, "FINISHED")
c.create_registered_model("py-model", description="from python")
c.create_model_version("py-model", f"runs:/{rid}/model", run_id=rid)
c.create_model_version("py-model", f"runs:/{rid}/model", run_id=rid)
c.set_registered_model_alias("py-model", "champion", "2")
c.transition_model_version_stage("py-model", "1", "Staging")
print(rid)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_import_what_mlflow_writes_and_round_trip_our_own_export() {
    let dir = tempfile::tempdir().unwrap();
    let mlruns = dir.path().join("mlruns");
    let py = Command::new(python())
        .arg("-c")
        .arg(WRITE_WITH_MLFLOW)
        .arg(&mlruns)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "mlflow failed: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let old_id = String::from_utf8_lossy(&py.stdout).trim().to_owned();

    let tracker = MemoryTracker::new();
    let registry = MemoryRegistry::new();
    let report = import_mlflow(&mlruns, &tracker, &registry).await.unwrap();
    assert_eq!(
        (
            report.runs,
            report.models,
            report.model_versions,
            report.artifacts
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(report.metric_values, 8);

    let exp = tracker
        .get_experiment_by_name(&"from-mlflow".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(exp.tags.get("origin").map(String::as_str), Some("python"));
    let runs = tracker
        .search_all_runs(SearchRunsOptions::default().in_experiment(exp.experiment_id.clone()))
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.info.run_name, "py-run");
    assert_eq!(run.info.status, RunStatus::Finished);
    assert_eq!(run.data.tags.get(IMPORTED_RUN_ID_TAG), Some(&old_id));
    assert_eq!(
        run.data.params.get("alpha").map(String::as_str),
        Some("0.5")
    );
    assert_eq!(run.data.tags.get("stage").map(String::as_str), Some("dev"));
    let rmse = tracker
        .metric_history(&run.info.run_id, &"rmse".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        rmse.iter().map(|m| m.step).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    assert_eq!(run.metric("rmse"), Some(1.0 / 7.0));
    assert!(run.metric("val/acc").unwrap().is_nan());
    let art = tracker
        .get_artifact(&run.info.run_id, &"docs/notes.txt".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(art, Bytes::from_static(b"hello"));
    assert_eq!(report.dataset_inputs, 1);
    let [input] = run.inputs.dataset_inputs.as_slice() else {
        panic!("one dataset input, got {:?}", run.inputs.dataset_inputs)
    };
    assert_eq!(
        (
            input.dataset.name.as_str(),
            input.dataset.digest.as_str(),
            input.dataset.source.as_str(),
            input.dataset.schema.as_deref(),
            input.context()
        ),
        (
            "py-data",
            "d1g3st",
            "/data/train.csv",
            Some(r#"{"cols": 1}"#),
            Some("eval")
        )
    );

    let model = "py-model".parse().unwrap();
    let champion = registry
        .get_version_by_alias(&model, &"champion".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(champion.version.get(), 2);
    assert_eq!(
        champion.run_id.as_ref(),
        Some(&run.info.run_id),
        "run ids are mapped to the imported runs"
    );
    assert_eq!(
        registry
            .get_model_version(&model, Version::FIRST)
            .await
            .unwrap()
            .current_stage,
        Stage::Staging
    );
    assert_eq!(
        registry
            .get_registered_model(&model)
            .await
            .unwrap()
            .description,
        "from python"
    );

    // And our own export reads back into an empty tracker the same way.
    let out = dir.path().join("again");
    export_mlflow(&tracker, &registry, &out).await.unwrap();
    let (t2, r2) = (MemoryTracker::new(), MemoryRegistry::new());
    let again = import_mlflow(&out, &t2, &r2).await.unwrap();
    assert_eq!(
        (
            again.runs,
            again.metric_values,
            again.model_versions,
            again.dataset_inputs
        ),
        (1, 8, 2, 1)
    );
    assert_eq!(
        r2.resolve(&"models:/py-model@champion".parse().unwrap())
            .await
            .unwrap()
            .version
            .get(),
        2
    );

    let missing = import_mlflow(&dir.path().join("nope"), &t2, &r2)
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}
