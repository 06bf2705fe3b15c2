//! `mlops features …` end to end on a local directory store: plan before anything exists,
//! apply (and an unchanged re-apply), a changed ttl in the plan, a training set from a dataset
//! source and a Parquet source written to a file and as a dataset version with its lineage,
//! and bad input exiting 2 with a message naming what was wrong.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampSecondArray,
};
use arrow::datatypes::{Float64Type, Int64Type};

fn mlops(store: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlops"))
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the mlops binary runs")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn bad(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn read_parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

const REPO: &str = r#"
project: churn
entities:
  - name: customer
    join_keys: [customer_id]
sources:
  - name: stats
    dataset: customer_stats
    timestamp_field: event_timestamp
  - name: plans
    path: plans.parquet
    timestamp_field: ts
feature_views:
  - name: customer_stats
    entities: [customer]
    ttl: 100s
    source: stats
    schema:
      - {name: spend, dtype: Float64}
  - name: customer_plan
    entities: [customer]
    source: plans
feature_services:
  - name: churn_v1
    features: [customer_stats, customer_plan]
"#;

#[test]
fn apply_plan_list_and_a_training_set_with_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cwd) = (dir.path().join("store"), dir.path());
    std::fs::write(cwd.join("features.yaml"), REPO).unwrap();
    write_parquet(
        &cwd.join("stats.parquet"),
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![1, 1, 2])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![10, 50, 10])),
            ),
            ("spend", Arc::new(Float64Array::from(vec![1.5, 5.0, 2.0]))),
        ],
    );
    write_parquet(
        &cwd.join("plans.parquet"),
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
            ),
            ("ts", Arc::new(TimestampSecondArray::from(vec![0, 0]))),
            ("plan", Arc::new(StringArray::from(vec!["gold", "basic"]))),
        ],
    );
    write_parquet(
        &cwd.join("labels.parquet"),
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![1, 1, 2, 3])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![40, 60, 200, 60])),
            ),
            ("churned", Arc::new(Int64Array::from(vec![0, 1, 0, 1]))),
        ],
    );

    // A plan needs no store yet.
    let plan = ok(&mlops(&store, cwd, &["features", "plan"]));
    assert!(
        plan.contains("+ create feature view customer_stats"),
        "{plan}"
    );
    assert!(!store.exists(), "plan writes nothing");
    let applied = ok(&mlops(&store, cwd, &["features", "apply"]));
    assert!(
        applied.contains("applied churn as registry version 1"),
        "{applied}"
    );
    let again = ok(&mlops(&store, cwd, &["features", "apply"]));
    assert!(again.contains("No changes"), "{again}");
    std::fs::write(
        cwd.join("changed.yaml"),
        REPO.replace("ttl: 100s", "ttl: 1h"),
    )
    .unwrap();
    let plan = ok(&mlops(&store, cwd, &["features", "plan", "changed.yaml"]));
    assert!(
        plan.contains("~ update feature view customer_stats (ttl)"),
        "{plan}"
    );
    let list = ok(&mlops(
        &store,
        cwd,
        &["features", "list", "--project", "churn"],
    ));
    assert!(list.contains("feature view customer_plan"), "{list}");
    assert!(list.contains("inferred"), "{list}");

    ok(&mlops(
        &store,
        cwd,
        &["datasets", "put", "customer_stats", "stats.parquet"],
    ));
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "features",
            "get-historical",
            "--project",
            "churn",
            "--service",
            "churn_v1",
            "--entities",
            "labels.parquet",
            "-o",
            "training.parquet",
            "--dataset",
            "training",
            "--json",
        ],
    ));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["rows"], 4);
    assert_eq!(summary["dataset"], "training@1");
    let locations: Vec<&str> = summary["lineage"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        locations,
        ["dataset customer_stats@1", "parquet plans.parquet"]
    );

    let set = read_parquet(&cwd.join("training.parquet"));
    let spend: Vec<Option<f64>> = set
        .column_by_name("spend")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    // Customer 1 at 40 and 60; customer 2 at 200 is past the 100 s ttl; 3 has no rows.
    assert_eq!(spend, [Some(1.5), Some(5.0), None, None]);
    let plan = set.column_by_name("plan").unwrap().as_string::<i32>();
    assert_eq!(
        (0..4)
            .map(|i| (!plan.is_null(i)).then(|| plan.value(i)))
            .collect::<Vec<_>>(),
        [Some("gold"), Some("gold"), Some("basic"), None]
    );
    let churned = set
        .column_by_name("churned")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(
        churned.values().to_vec(),
        [0, 1, 0, 1],
        "labels pass through in order"
    );

    let shown = ok(&mlops(
        &store,
        cwd,
        &["datasets", "show", "training", "--json"],
    ));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["manifest"]["metadata"]["features.registry_version"],
        "1"
    );
    assert_eq!(
        shown["manifest"]["metadata"]["features.service"],
        "churn_v1"
    );

    // Materialize everything into the embedded online store, then look up by key.
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "features",
            "materialize",
            "--project",
            "churn",
            "1970-01-01T00:00:00Z",
            "now",
        ],
    ));
    assert!(out.contains("customer_stats: 3 rows"), "{out}");
    assert!(out.contains("2 entities written"), "{out}");
    assert!(cwd.join("mlops-online.redb").exists());
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "features",
            "get-online",
            "--project",
            "churn",
            "--service",
            "churn_v1",
            "--entity",
            "customer_id=1,3",
            "--json",
        ],
    ));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        r["metadata"]["feature_names"],
        serde_json::json!(["customer_id", "spend", "plan"])
    );
    // spend's 100 s ttl has long passed; the plan view has no ttl.
    assert_eq!(
        r["results"][1]["statuses"],
        serde_json::json!(["OUTSIDE_MAX_AGE", "NOT_FOUND"])
    );
    assert_eq!(
        r["results"][1]["event_timestamps"][0],
        "1970-01-01T00:00:50Z"
    );
    assert_eq!(r["results"][2]["values"], serde_json::json!(["gold", null]));
    assert_eq!(
        r["results"][2]["statuses"],
        serde_json::json!(["PRESENT", "NOT_FOUND"])
    );
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "features",
            "materialize-incremental",
            "--project",
            "churn",
            "now",
        ],
    ));
    assert!(
        out.contains("0 rows"),
        "nothing new since the last run: {out}"
    );

    // Bad input: exit 2, naming the problem.
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "features",
            "get-historical",
            "--project",
            "churn",
            "--features",
            "customer_stats:age",
            "--entities",
            "labels.parquet",
        ],
    ));
    assert!(e.contains("no feature age"), "{e}");
    std::fs::write(cwd.join("bad.yaml"), REPO.replace("ttl: 100s", "ttl: -3")).unwrap();
    let e = bad(&mlops(&store, cwd, &["features", "apply", "bad.yaml"]));
    assert!(e.contains("negative"), "{e}");
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "features",
            "get-historical",
            "--project",
            "nope",
            "--service",
            "x",
            "--entities",
            "labels.parquet",
        ],
    ));
    assert!(e.contains("feature project") && e.contains("nope"), "{e}");
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "features",
            "materialize",
            "--project",
            "churn",
            "yesterday",
            "now",
        ],
    ));
    assert!(e.contains("RFC 3339"), "{e}");
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "features",
            "get-online",
            "--project",
            "churn",
            "--service",
            "churn_v1",
            "--entity",
            "customer_id",
        ],
    ));
    assert!(e.contains("JOIN_KEY="), "{e}");

    // Push a fresh row for customer 3: online and appended to the stats dataset.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    write_parquet(
        &cwd.join("push.parquet"),
        vec![
            ("spend", Arc::new(Float64Array::from(vec![9.0])) as ArrayRef),
            ("customer_id", Arc::new(Int64Array::from(vec![3]))),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![now])),
            ),
        ],
    );
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "features",
            "push",
            "--project",
            "churn",
            "--source",
            "stats",
            "push.parquet",
            "--to",
            "online_and_offline",
            "--json",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rows"], 1);
    assert_eq!(
        report["views"],
        serde_json::json!([["customer_stats", 1, 0]])
    );
    assert_eq!(report["offline"]["location"], "dataset customer_stats@2");
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "features",
            "get-online",
            "--project",
            "churn",
            "--features",
            "customer_stats:spend",
            "--entity",
            "customer_id=3",
            "--json",
        ],
    ));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["results"][1]["values"], serde_json::json!([9.0]));
    assert_eq!(r["results"][1]["statuses"], serde_json::json!(["PRESENT"]));
    let shown: serde_json::Value = serde_json::from_str(&ok(&mlops(
        &store,
        cwd,
        &["datasets", "show", "customer_stats", "--json"],
    )))
    .unwrap();
    assert_eq!(shown["manifest"]["rows"], 4, "the pushed row was appended");
    // The appended row is in the next training set: customer 3 at its label time has none
    // (the row is newer), so look at a fresh entity row.
    write_parquet(
        &cwd.join("late.parquet"),
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![3])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![now + 1])),
            ),
        ],
    );
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "features",
            "get-historical",
            "--project",
            "churn",
            "--features",
            "customer_stats:spend",
            "--entities",
            "late.parquet",
        ],
    ));
    assert!(out.contains(",9.0") || out.contains(",9"), "{out}");

    // Bad pushes change nothing.
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "features",
            "push",
            "--project",
            "churn",
            "--source",
            "plans",
            "push.parquet",
            "--to",
            "offline",
        ],
    ));
    assert!(e.contains("read-only"), "{e}");
    write_parquet(
        &cwd.join("extra.parquet"),
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![3])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![now])),
            ),
            ("spend", Arc::new(Float64Array::from(vec![1.0]))),
            ("age", Arc::new(Int64Array::from(vec![40]))),
        ],
    );
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "features",
            "push",
            "--project",
            "churn",
            "--source",
            "stats",
            "extra.parquet",
            "--to",
            "offline",
        ],
    ));
    assert!(e.contains("no column age"), "{e}");
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "features",
            "push",
            "--project",
            "churn",
            "--source",
            "stats",
            "push.parquet",
            "--to",
            "elsewhere",
        ],
    ));
    assert!(e.contains("online_and_offline"), "{e}");
    let shown: serde_json::Value = serde_json::from_str(&ok(&mlops(
        &store,
        cwd,
        &["datasets", "show", "customer_stats", "--json"],
    )))
    .unwrap();
    assert_eq!(shown["version"], 2, "no version from a failed push");

    // Train on the service's training set of the labelled entity rows.
    let out = ok(&mlops(
        &store,
        cwd,
        &[
            "train",
            "--features",
            "churn_v1",
            "--entities",
            "labels.parquet",
            "--target",
            "churned",
            "--epochs",
            "2",
            "--register",
            "churn",
            "--quiet",
            "--json",
        ],
    ));
    let trained: serde_json::Value = serde_json::from_str(&out).unwrap();
    let run = ok(&mlops(
        &store,
        cwd,
        &[
            "runs",
            "show",
            trained["run_id"].as_str().unwrap(),
            "--json",
        ],
    ));
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(
        run["run"]["data"]["params"]["features"], "spend,plan",
        "the model reads the feature columns, not the keys: {run}"
    );
    assert_eq!(
        run["run"]["inputs"]["dataset_inputs"][0]["dataset"]["source"],
        "datasets/churn_v1-training@1"
    );
    let shown: serde_json::Value = serde_json::from_str(&ok(&mlops(
        &store,
        cwd,
        &["datasets", "show", "churn_v1-training", "--json"],
    )))
    .unwrap();
    assert_eq!(
        shown["manifest"]["metadata"]["features.service"],
        "churn_v1"
    );
    let e = bad(&mlops(
        &store,
        cwd,
        &[
            "train",
            "--features",
            "nope",
            "--entities",
            "labels.parquet",
            "--target",
            "churned",
        ],
    ));
    assert!(e.contains("service nope"), "{e}");

    // Serve it with its features looked up by customer_id; defaults fill what is missing.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlops"))
        .arg("--store")
        .arg(&store)
        .current_dir(cwd)
        .args([
            "serve",
            "--model",
            "models:/churn/1",
            "--model-features",
            "churn=churn_v1",
            "--feature-default",
            "plan=basic",
            "--port",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let url = loop {
        let line = lines.next().expect("mlops serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(child);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let infer = |body: serde_json::Value| {
        runtime.block_on(async {
            let r = reqwest::Client::new()
                .post(format!("{url}/v2/models/churn/infer"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        })
    };
    // Customer 3: spend 9.0 was pushed a moment ago, its plan is unknown (the default).
    let (status, answer) = infer(serde_json::json!({"inputs": [
        {"name": "customer_id", "datatype": "INT64", "shape": [1], "data": [3]}
    ]}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model_name"], "churn");
    assert!(
        !answer["outputs"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    // Customer 1's spend is past its ttl and has no default: a 400 naming it.
    let (status, answer) = infer(serde_json::json!({"inputs": [
        {"name": "customer_id", "datatype": "INT64", "shape": [2], "data": [3, 1]}
    ]}));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("spend (row 1: OUTSIDE_MAX_AGE)"),
        "{answer}"
    );
    // The request's own spend overrides the store's.
    let (status, answer) = infer(serde_json::json!({"inputs": [
        {"name": "customer_id", "datatype": "INT64", "shape": [2], "data": [3, 1]},
        {"name": "spend", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]}
    ]}));
    assert_eq!(status, 200, "{answer}");
}
