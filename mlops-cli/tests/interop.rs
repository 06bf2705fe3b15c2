//! Parquet interop with the real peers: what `mlops datasets get` exports, pyarrow and polars
//! read; what pyarrow writes (snappy, its default), `mlops datasets put` imports.
//!
//! Needs a Python with pyarrow and polars, named by `MLOPS_TEST_PYTHON`; `./scripts/test` creates
//! that venv and sets it. Without it the test fails and says so: it never passes silently.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn python() -> String {
    mlops_testkit::python::interpreter("pyarrow and polars")
}

fn run_py(code: &str, arg: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .arg(arg)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

fn mlops(store: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mlops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const READ_BOTH: &str = r#"
import json, sys
import pyarrow.parquet as pq
import polars as pl
t = pq.read_table(sys.argv[1])
df = pl.read_parquet(sys.argv[1])
print(json.dumps({
    "pyarrow_rows": t.num_rows,
    "pyarrow_columns": t.column_names,
    "pyarrow_types": [str(f.type) for f in t.schema],
    "pyarrow_id_sum": sum(x for x in t.column("id").to_pylist()),
    "pyarrow_plan_nulls": t.column("plan").null_count,
    "polars_rows": df.height,
    "polars_spend_sum": df["spend"].sum(),
    "polars_plans": sorted(set(p for p in df["plan"].to_list() if p is not None)),
}))
"#;

#[test]
fn pyarrow_and_polars_read_what_we_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let csv = dir.path().join("c.csv");
    let mut text = String::from("id,plan,spend\n");
    for i in 0..1000 {
        let plan = ["basic", "pro", "", "team"][i % 4];
        text.push_str(&format!("{i},{plan},{}.5\n", i % 10));
    }
    std::fs::write(&csv, text).unwrap();
    mlops(
        &store,
        &[
            "datasets",
            "put",
            "c",
            csv.to_str().unwrap(),
            "--part-bytes",
            "4000",
        ],
    );
    let out = dir.path().join("c.parquet");
    mlops(
        &store,
        &["datasets", "get", "c", "-o", out.to_str().unwrap()],
    );
    let got = run_py(READ_BOTH, &out);
    assert_eq!(got["pyarrow_rows"], 1000);
    assert_eq!(
        got["pyarrow_columns"],
        serde_json::json!(["id", "plan", "spend"])
    );
    assert_eq!(
        got["pyarrow_types"],
        serde_json::json!(["int64", "string", "double"])
    );
    assert_eq!(got["pyarrow_id_sum"], 499_500);
    assert_eq!(got["pyarrow_plan_nulls"], 250);
    assert_eq!(got["polars_rows"], 1000);
    assert_eq!(got["polars_spend_sum"], 5000.0);
    assert_eq!(
        got["polars_plans"],
        serde_json::json!(["basic", "pro", "team"])
    );
}

#[test]
fn we_import_what_pyarrow_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("py.parquet");
    let written = run_py(
        r#"
import json, sys
import pyarrow as pa, pyarrow.parquet as pq
t = pa.table({"x": pa.array(range(5000), pa.int32()), "label": ["a", None, "b", "c", "a"] * 1000,
              "when": pa.array(range(5000), pa.timestamp("ms"))})
pq.write_table(t, sys.argv[1], row_group_size=700)  # snappy by default
print(json.dumps({"rows": t.num_rows}))
"#,
        &file,
    );
    assert_eq!(written["rows"], 5000);
    let out = mlops(
        &store,
        &["datasets", "put", "py", file.to_str().unwrap(), "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let m = &v["manifest"];
    assert_eq!(m["rows"], 5000);
    assert_eq!(m["columns"][0]["min"], 0);
    assert_eq!(m["columns"][0]["max"], 4999);
    assert_eq!(m["columns"][1]["null_count"], 1000);
    assert_eq!(m["columns"][1]["distinct_estimate"], 3);
    assert_eq!(m["schema"][2]["data_type"], "Timestamp(ms)");
}
