#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops pipeline run|export|steps` and `mlops cost`.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use common::{mlops, text};
use mlops_testkit::rng::SplitMix64;

fn write_parquet(dir: &Path, name: &str, shift: f64) {
    let mut r = SplitMix64::new(7);
    let (mut a, mut y) = (vec![], vec![]);
    for _ in 0..800 {
        let x = r.normal() + shift;
        a.push(x);
        y.push(if x + r.normal() * 0.3 > shift {
            "yes"
        } else {
            "no"
        });
    }
    let batch = RecordBatch::try_from_iter([
        ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
        ("churned", Arc::new(StringArray::from(y))),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.join(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

const PIPELINE: &str = "pipeline: churn
steps:
  - {name: data, uses: dataset, with: {name: churn}}
  - name: train
    uses: train
    needs: {data: data.dataset}
    with: {target: churned, model: logistic, epochs: 3, register: churn}
  - {name: promote, uses: promote, needs: {model: train.model}}
";

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn runs_caches_prices_and_exports_a_pipeline_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_parquet(d, "v1.parquet", 0.0);
    assert!(
        mlops(d, &["datasets", "put", "churn", "v1.parquet"])
            .status
            .success()
    );
    std::fs::write(d.join("pipeline.yaml"), PIPELINE).unwrap();
    std::fs::write(
        d.join("rates.yaml"),
        "currency: EUR\ncpu_hour: 3600\ngb_hour: 0\ngpu_hour: 0\n",
    )
    .unwrap();

    let first = json(&mlops(
        d,
        &[
            "pipeline",
            "run",
            "pipeline.yaml",
            "--rate-card",
            "rates.yaml",
            "--json",
        ],
    ));
    let status: Vec<&str> = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["succeeded", "succeeded", "succeeded"]);
    assert_eq!(first["currency"], "EUR");
    let second = json(&mlops(d, &["pipeline", "run", "pipeline.yaml", "--json"]));
    let status: Vec<&str> = second["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["cached", "cached", "cached"]);
    // A human-readable report too, and the champion is the registered version.
    let human = mlops(d, &["pipeline", "run", "pipeline.yaml"]);
    assert!(text(&human).contains("cached"), "{}", text(&human));
    let show = mlops(d, &["models", "show", "churn", "--json"]);
    assert!(text(&show).contains("champion"), "{}", text(&show));

    // Cost by pipeline, run and step.
    let cost = json(&mlops(d, &["cost", "--json"]));
    let runs = cost.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let priced = runs
        .iter()
        .find(|r| r["run_id"] == first["run_id"])
        .unwrap();
    assert!(priced["cost"].as_f64().unwrap() > 0.0, "{priced}");
    assert_eq!(priced["steps"].as_array().unwrap().len(), 3);
    assert!(text(&mlops(d, &["cost"])).contains("churn: 3 runs"));

    // The GitOps folder.
    let out = mlops(
        d,
        &[
            "pipeline",
            "export",
            "pipeline.yaml",
            "--format",
            "argo",
            "--format",
            "jobs",
            "--format",
            "kserve",
            "--format",
            "github-actions",
            "--model",
            "models:/churn@champion",
            "--image",
            "ghcr.io/acme/mlops:1",
            "--store-url",
            "s3://ml/prod",
            "--out",
            "deploy",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let wf = mlops::pipeline::export::parse_argo(
        &std::fs::read_to_string(d.join("deploy/workflow.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(wf.spec.templates.len(), 4);
    let isvc = mlops::serve::kserve::parse(
        &std::fs::read_to_string(d.join("deploy/inferenceservice.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(isvc.metadata.name.as_deref(), Some("churn"));
    let gha: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(d.join("deploy/github-actions.yaml")).unwrap(),
    )
    .unwrap();
    let runs: Vec<&str> = gha["jobs"]["pipeline"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        runs.iter().any(|r| r.starts_with("mlops policy test")),
        "{runs:?}"
    );
    assert!(
        runs.iter()
            .any(|r| r.starts_with("mlops pipeline run pipeline.yaml")),
        "{runs:?}"
    );
    assert_eq!(
        gha["jobs"]["pipeline"]["env"]["MLOPS_STORE"],
        "s3://ml/prod"
    );
    let k = std::fs::read_to_string(d.join("deploy/kustomization.yaml")).unwrap();
    assert!(
        k.contains("- jobs.yaml") && k.contains("- inferenceservice.yaml"),
        "{k}"
    );
}

#[test]
fn failures_and_bad_files_exit_nonzero_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pipeline.yaml"), PIPELINE).unwrap();
    let o = mlops(d, &["pipeline", "run", "pipeline.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("step data failed"), "{}", text(&o));
    let o = mlops(
        d,
        &[
            "pipeline",
            "run",
            "pipeline.yaml",
            "--step",
            "train",
            "--run-token",
            "t1",
        ],
    );
    // Not bad input: the upstream pod has not run yet (unavailable, exit 1; Kubernetes retries).
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("has not run yet"), "{}", text(&o));
    std::fs::write(
        d.join("bad.yaml"),
        "pipeline: p\nsteps: [{name: t, uses: nope}]\n",
    )
    .unwrap();
    let o = mlops(d, &["pipeline", "run", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("bad.yaml") && text(&o).contains("not a known step"),
        "{}",
        text(&o)
    );
    let o = mlops(d, &["pipeline", "run", "missing.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&mlops(d, &["pipeline", "steps"])).contains("train"));
}

/// Stopped by SIGTERM (how Kubernetes stops a pod), a pipeline run asks its running step to
/// stop and ends KILLED — the pipeline's run and the interrupted step's run — with what they
/// logged kept; it was durable as RUNNING from the start.
#[test]
fn a_terminated_pipeline_run_ends_killed() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_parquet(d, "v1.parquet", 0.0);
    assert!(
        mlops(d, &["datasets", "put", "churn", "v1.parquet"])
            .status
            .success()
    );
    std::fs::write(
        d.join("long.yaml"),
        "pipeline: long
steps:
  - {name: data, uses: dataset, with: {name: churn}}
  - name: train
    uses: train
    needs: {data: data.dataset}
    with: {target: churned, model: mlp, hidden: '16', epochs: 1000000}
",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .current_dir(d)
        .env_remove("MLOPS_STORE")
        .args(["pipeline", "run", "long.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runs = || -> Vec<serde_json::Value> {
        let o = mlops(d, &["runs", "list", "--experiment", "pipelines", "--json"]);
        if !o.status.success() {
            return Vec::new(); // the experiment is not there yet
        }
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let named = |runs: &[serde_json::Value], name: &str| {
        runs.iter().find(|r| r["info"]["run_name"] == name).cloned()
    };
    let started = std::time::Instant::now();
    loop {
        let now = runs();
        if let (Some(parent), Some(step)) = (named(&now, "long"), named(&now, "train")) {
            assert_eq!(parent["info"]["status"], "RUNNING", "{parent}");
            assert_eq!(step["info"]["status"], "RUNNING", "{step}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no durable RUNNING pipeline and step runs: {now:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SIGTERM: cancelling"), "{err}");
    let ended = runs();
    for name in ["long", "train"] {
        let run = named(&ended, name).unwrap();
        assert_eq!(run["info"]["status"], "KILLED", "{name}: {run}");
    }
}
