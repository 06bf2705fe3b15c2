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

    // Credentials: a plaintext one is refused (and never echoed); one given as secret:NAME
    // becomes a Kubernetes Secret reference.
    let emit = |option: &str| {
        mlops(
            dir.path(),
            &[
                "--store",
                "s3://bucket/ml",
                "--store-option",
                "aws_endpoint=http://minio:9000",
                "--store-option",
                option,
                "train",
                "--data",
                "churn",
                "--target",
                "churned",
                "--emit-job",
                "-",
                "--image",
                "ghcr.io/acme/mlops:1",
                "--job-secret",
                "ml-store",
            ],
        )
    };
    let refused = emit("aws_secret_access_key=hunter2");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("plaintext credential"),
        "{}",
        text(&refused)
    );
    assert!(!text(&refused).contains("hunter2"), "{}", text(&refused));
    let ok = emit("aws_secret_access_key=secret:AWS_SECRET_ACCESS_KEY");
    assert!(ok.status.success(), "{}", text(&ok));
    let manifest = String::from_utf8_lossy(&ok.stdout).to_string();
    let job = mlops::train::k8s::parse_job(&manifest).unwrap();
    let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
    let args = container.args.clone().unwrap();
    assert_eq!(
        args[..6],
        [
            "--store-option",
            "aws_endpoint=http://minio:9000",
            "--store-option",
            "aws_secret_access_key=secret:AWS_SECRET_ACCESS_KEY",
            "--secrets",
            "env"
        ]
    );
    assert!(
        !args.iter().any(|a| a == "--job-secret" || a == "ml-store"),
        "{args:?}"
    );
    let env = container.env.clone().unwrap();
    let secret = env
        .iter()
        .find(|e| e.name == "AWS_SECRET_ACCESS_KEY")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.secret_key_ref.as_ref())
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("ml-store", "AWS_SECRET_ACCESS_KEY")
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
            // Not built in: bad input for this binary, like any request it cannot serve.
            2,
            "`cuda` feature",
        ),
    ] {
        let o = mlops(dir.path(), &args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
}

/// Stopped by SIGTERM (how Kubernetes stops a pod), training ends its run KILLED after the
/// epoch; killed outright (SIGKILL, the OOM killer), it leaves its run RUNNING with its params
/// and the metrics of the epochs logged until the last flush, and `mlops runs end` closes it.
#[test]
fn terminated_and_killed_training_leave_their_runs() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    write_parquet(dir.path());
    let train = |experiment: &str| {
        Command::new(env!("CARGO_BIN_EXE_mlops"))
            .current_dir(dir.path())
            .env_remove("MLOPS_STORE")
            .args([
                "train",
                "--data",
                "churn.parquet",
                "--target",
                "churned",
                "--model",
                "mlp",
                "--hidden",
                "16",
                "--epochs",
                "1000000",
                "--experiment",
                experiment,
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Until the child has created its store and experiment, there is nothing to list.
    let runs = |experiment: &str| -> Vec<serde_json::Value> {
        let o = mlops(
            dir.path(),
            &["runs", "list", "--experiment", experiment, "--json"],
        );
        if !o.status.success()
            && (text(&o).contains("experiment not found") || text(&o).contains("store not found"))
        {
            return Vec::new();
        }
        json(&o).as_array().cloned().unwrap_or_default()
    };
    // Wait until the run and a first epoch's metrics are durable.
    let wait_for_metrics = |experiment: &str| {
        let started = std::time::Instant::now();
        loop {
            let r = runs(experiment);
            if r.first().is_some_and(|r| {
                r["data"]["metrics"]
                    .as_object()
                    .is_some_and(|m| m.contains_key("train_loss"))
            }) {
                return r[0].clone();
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "no durable run with metrics: {r:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let signal = |pid: u32, sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };

    let child = train("terminated");
    let running = wait_for_metrics("terminated");
    assert_eq!(running["info"]["status"], "RUNNING", "{running}");
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SIGTERM: stopping after this epoch"), "{err}");
    let ended = runs("terminated");
    assert_eq!(ended[0]["info"]["status"], "KILLED", "{ended:?}");

    let child = train("killed");
    let running = wait_for_metrics("killed");
    signal(child.id(), "-KILL");
    let _ = child.wait_with_output();
    let left = runs("killed");
    assert_eq!(left[0]["info"]["status"], "RUNNING", "{left:?}");
    assert!(left[0]["data"]["params"]["model"].is_string(), "{left:?}");
    let id = running["info"]["run_id"].as_str().unwrap().to_owned();
    let o = mlops(dir.path(), &["runs", "end", &id, "--status", "killed"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(runs("killed")[0]["info"]["status"], "KILLED");
    let again = mlops(dir.path(), &["runs", "end", &id]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
}
