#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops train`: a tracked, registered run from a stored dataset and from a Parquet file,
//! checkpoints and `--resume`, hyper-parameter search, the Kubernetes Job export, bad input.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use common::{mlops, text};
use mlops_testkit::rng::SplitMix64;

/// `churn.parquet` in `dir`: two numbers and a plan; `churned` ("yes"/"no") from a known rule.
fn write_parquet(dir: &Path) {
    let mut r = SplitMix64::new(1);
    let n = 1500;
    let (mut a, mut b, mut plan, mut y) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let (x1, x2) = (r.normal(), r.normal());
        let pro = r.unit() > 0.5;
        a.push(x1);
        b.push(x2);
        plan.push(if pro { "pro" } else { "basic" });
        y.push(
            if 2.0 * x1 - x2 + f64::from(u8::from(pro)) + r.normal() * 0.3 > 0.0 {
                "yes"
            } else {
                "no"
            },
        );
    }
    let batch = RecordBatch::try_from_iter([
        ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
        ("b", Arc::new(Float64Array::from(b))),
        ("plan", Arc::new(StringArray::from(plan))),
        ("churned", Arc::new(StringArray::from(y))),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.join("churn.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn trains_registers_and_serves_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path());
    let put = mlops(dir.path(), &["datasets", "put", "churn", "churn.parquet"]);
    assert!(put.status.success(), "{}", text(&put));
    let out = json(&mlops(
        dir.path(),
        &[
            "train",
            "--data",
            "churn",
            "--target",
            "churned",
            "--model",
            "logistic",
            "--epochs",
            "8",
            "--learning-rate",
            "0.05",
            "--register",
            "churn-model",
            "--experiment",
            "churn",
            "--output",
            "model",
            "--json",
        ],
    ));
    assert_eq!(out["version"], 1);
    assert_eq!(out["model"], "churn-model");
    assert!(
        out["metrics"]["val_accuracy"].as_f64().unwrap() > 0.85,
        "{out}"
    );
    assert!(out["source"].as_str().unwrap().starts_with("tree:"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("model/FLAVOR"))
            .unwrap()
            .trim(),
        "candle"
    );
    // The run is in the tracker with its params and the dataset as input.
    let runs = mlops(
        dir.path(),
        &["runs", "list", "--experiment", "churn", "--json"],
    );
    let listing = text(&runs);
    assert!(runs.status.success(), "{listing}");
    assert!(
        listing.contains(out["run_id"].as_str().unwrap()),
        "{listing}"
    );
    // The registered version carries the metrics as tags.
    let show = mlops(dir.path(), &["models", "show", "churn-model", "--json"]);
    assert!(
        text(&show).contains("metrics.val_accuracy"),
        "{}",
        text(&show)
    );

    // Straight from a Parquet file, human output.
    let human = mlops(
        dir.path(),
        &[
            "train",
            "--data",
            "churn.parquet",
            "--target",
            "churned",
            "--epochs",
            "2",
            "--quiet",
        ],
    );
    let t = text(&human);
    assert!(human.status.success(), "{t}");
    assert!(
        t.contains("val_accuracy") && t.contains("2 epochs on 1500 rows"),
        "{t}"
    );
}

#[test]
fn checkpoints_resume_and_search() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path());
    let base = [
        "train",
        "--data",
        "churn.parquet",
        "--target",
        "churned",
        "--model",
        "mlp",
        "--hidden",
        "8",
        "--json",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        mlops(dir.path(), &refs)
    };
    let straight = json(&run(with(&["--epochs", "4"])));
    let first = json(&run(with(&["--epochs", "2", "--checkpoint-dir", "cp"])));
    assert_eq!(first["epochs"], 2);
    assert!(dir.path().join("cp/epoch-000002.safetensors").exists());
    let resumed = json(&run(with(&[
        "--epochs",
        "4",
        "--checkpoint-dir",
        "cp",
        "--resume",
    ])));
    assert_eq!(resumed["epochs"], 4);
    assert_eq!(
        resumed["metrics"], straight["metrics"],
        "a resumed run equals a straight one"
    );

    let search = json(&run(with(&[
        "--epochs",
        "2",
        "--search",
        "learning_rate=0.001|0.05",
        "--search",
        "batch_size=32..=33",
        "--parallel",
        "2",
    ])));
    let trials = search["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    let best = search["best"].as_u64().unwrap() as usize;
    let score = |t: &serde_json::Value| t["metrics"]["val_accuracy"].as_f64().unwrap();
    assert!(trials.iter().all(|t| score(t) <= score(&trials[best])));
}

#[test]
fn emits_a_kubernetes_job_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path());
    let out = mlops(
        dir.path(),
        &[
            "--store",
            "s3://bucket/ml",
            "train",
            "--data",
            "churn",
            "--target",
            "churned",
            "--epochs",
            "3",
            "--emit-job",
            "job.yaml",
            "--image",
            "ghcr.io/acme/mlops:1",
            "--memory",
            "4Gi",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let yaml = std::fs::read_to_string(dir.path().join("job.yaml")).unwrap();
    let job = mlops::train::k8s::parse_job(&yaml).unwrap();
    let pod = job.spec.unwrap().template.spec.unwrap();
    let args = pod.containers[0].args.clone().unwrap();
    assert_eq!(
        args,
        [
            "--store",
            "s3://bucket/ml",
            "train",
            "--data",
            "churn",
            "--target",
            "churned",
            "--epochs",
            "3"
        ]
    );

    for (args, code, want) in [
        (
            vec!["train", "--data", "churn.parquet", "--target", "nope"],
            2,
            "\"nope\" is not in the data",
        ),
        (
            vec![
                "train",
                "--data",
                "churn.parquet",
                "--target",
                "churned",
                "--model",
                "tree",
            ],
            2,
            "expected linear",
        ),
        (
            vec![
                "train",
                "--data",
                "churn.parquet",
                "--target",
                "churned",
                "--param",
                "colour=red",
            ],
            2,
            "unknown hyper-parameter",
        ),
        (
            vec!["train", "--data", "missing.parquet", "--target", "churned"],
            2,
            "not found",
        ),
        (
            vec![
                "train",
                "--data",
                "churn.parquet",
                "--target",
                "churned",
                "--emit-job",
                "-",
                "--image",
                "x",
            ],
            2,
            "local file",
        ),
        (
            vec![
                "train",
                "--data",
                "churn.parquet",
                "--target",
                "churned",
                "--device",
                "cuda:0",
            ],
            1,
            "`cuda` feature",
        ),
    ] {
        let o = mlops(dir.path(), &args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
}
