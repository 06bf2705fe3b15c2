//! `mlops datasets …` and `mlops store …` end to end on a local directory store.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

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
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> (Option<i32>, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn put_list_log_show_get_diff_verify_gc() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let v1 = dir.path().join("v1.csv");
    std::fs::write(&v1, "id,plan,spend\n1,basic,10.5\n2,pro,\n3,,7\n").unwrap();
    let v2 = dir.path().join("v2.csv");
    std::fs::write(&v2, "id,plan,spend,region\n4,team,1.0,eu\n").unwrap();

    let out = ok(&mlops(
        &store,
        &[
            "datasets",
            "put",
            "churn",
            v1.to_str().unwrap(),
            "--meta",
            "license=MIT",
            "-m",
            "first",
        ],
    ));
    assert!(out.starts_with("churn@1: 3 rows, 3 columns"), "{out}");
    let out = ok(&mlops(
        &store,
        &["datasets", "put", "churn", v2.to_str().unwrap(), "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["manifest"]["rows"], 1);

    let out = ok(&mlops(&store, &["datasets", "list"]));
    assert!(out.contains("churn") && out.contains("COMMITTED"), "{out}");
    let out = ok(&mlops(&store, &["datasets", "log", "churn"]));
    assert!(
        out.find("version 2").unwrap() < out.find("version 1").unwrap(),
        "newest first: {out}"
    );
    assert!(out.contains("first"), "{out}");
    let out = ok(&mlops(&store, &["datasets", "show", "churn@1"]));
    assert!(
        out.contains("license: MIT") && out.contains("spend") && out.contains("10.5"),
        "{out}"
    );
    let out = ok(&mlops(&store, &["datasets", "diff", "churn", "1", "2"]));
    assert_eq!(out.trim(), "+ region: Utf8");

    let parquet = dir.path().join("churn-v1.parquet");
    let out = ok(&mlops(
        &store,
        &[
            "datasets",
            "get",
            "churn@1",
            "-o",
            parquet.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("wrote 3 rows"), "{out}");
    assert!(parquet.exists());

    let out = ok(&mlops(&store, &["store", "verify"]));
    assert!(out.contains("ok: no corruption found"), "{out}");
    let out = ok(&mlops(
        &store,
        &["store", "gc", "--grace", "0s", "--dry-run"],
    ));
    assert!(out.contains("would remove 0 unreachable blob(s)"), "{out}");

    // The schema policy refuses a change and leaves no version.
    let (code, msg) = err(&mlops(
        &store,
        &[
            "datasets",
            "put",
            "churn",
            v1.to_str().unwrap(),
            "--schema-must-match",
        ],
    ));
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("- region: Utf8"), "{msg}");
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for (args, needle) in [
        (
            vec!["datasets", "put", "churn", "/no/such/file.csv"],
            "file not found: /no/such/file.csv",
        ),
        (
            vec!["datasets", "get", "nope", "-o", "x.parquet"],
            "dataset not found: nope",
        ),
        (vec!["datasets", "put", "../evil", "x.csv"], "dataset name"),
        (vec!["datasets", "show", "churn@0"], "versions start at 1"),
        (
            vec!["datasets", "put", "churn", "x.csv", "--meta", "novalue"],
            "is not KEY=VALUE",
        ),
    ] {
        let (code, msg) = err(&mlops(&store, &args));
        assert_eq!(code, Some(2), "{args:?}: {msg}");
        assert!(msg.contains(needle), "{args:?}: {msg}");
    }
    let (code, msg) = err(&mlops(Path::new("ftp://host/x"), &["datasets", "list"]));
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("scheme \"ftp\""), "{msg}");
    let (code, msg) = err(&mlops(Path::new("s3://bucket"), &["datasets", "list"]));
    assert!(code.is_some() && code != Some(0), "{msg}");
}

#[test]
fn verify_exits_1_when_a_blob_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let csv = dir.path().join("d.csv");
    std::fs::write(&csv, "a\n1\n2\n").unwrap();
    let out = ok(&mlops(
        &store,
        &["datasets", "put", "d", csv.to_str().unwrap(), "--json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let part = json["manifest"]["parts"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = store.join("blobs").join(&part[..2]).join(&part);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let o = mlops(&store, &["store", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("problem: blob {part}")), "{out}");
}
