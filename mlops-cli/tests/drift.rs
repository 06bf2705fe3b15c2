#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops drift` and `mlops quality` on stored datasets and Parquet files: exit codes, JSON and
//! HTML reports, saved profiles, overrides.

mod common;
use common::{mlops, text};

use std::fmt::Write as _;
use std::path::Path;

fn csv(path: &Path, shift: f64, rows: usize) {
    let mut s = String::from("age,income,plan\n");
    for i in 0..rows {
        let age = 20.0 + ((i * 37) % 50) as f64 + shift;
        let income = 1000.0 + ((i * 7919) % 3000) as f64;
        let plan = if shift > 0.0 && i % 2 == 0 {
            "free"
        } else {
            ["free", "pro", "team"][i % 3]
        };
        writeln!(s, "{age},{income},{plan}").unwrap();
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn drift_answers_with_exit_codes_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    csv(&d.join("train.csv"), 0.0, 800);
    csv(&d.join("same.csv"), 0.0, 600);
    csv(&d.join("moved.csv"), 8.0, 600);
    for (name, file) in [
        ("train", "train.csv"),
        ("prod", "same.csv"),
        ("prod", "moved.csv"),
    ] {
        let o = mlops(d, &["datasets", "put", name, file]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = mlops(d, &["datasets", "get", "prod@2", "-o", "moved.parquet"]);
    assert!(o.status.success(), "{}", text(&o));

    let same = mlops(
        d,
        &[
            "drift",
            "--reference",
            "train",
            "--current",
            "prod@1",
            "--save-profile",
            "profile.json",
        ],
    );
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(text(&same).contains("no dataset drift"), "{}", text(&same));

    let moved = mlops(
        d,
        &[
            "drift",
            "--reference",
            "profile.json",
            "--current",
            "moved.parquet",
            "--json",
            "report.json",
            "--html",
            "report.html",
        ],
    );
    assert_eq!(moved.status.code(), Some(1), "{}", text(&moved));
    assert!(text(&moved).contains("DATASET DRIFT"), "{}", text(&moved));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["schema"], "mlops.drift.report/v1");
    assert_eq!(report["dataset_drift"], true);
    let cols: Vec<&str> = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["column"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["age", "income", "plan"]);
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Dataset drift detected"));

    // Overrides: a lenient threshold on the two drifted columns turns the answer around.
    let lenient = mlops(
        d,
        &[
            "drift",
            "--reference",
            "train",
            "--current",
            "prod@2",
            "--json",
            "-",
            "--test",
            "age=psi",
            "--threshold",
            "age=100",
            "--threshold",
            "plan=0.0",
        ],
    );
    assert_eq!(lenient.status.code(), Some(0), "{}", text(&lenient));
    let report: serde_json::Value = serde_json::from_slice(&lenient.stdout).unwrap();
    assert_eq!(report["columns"][0]["test"], "psi");
    assert_eq!(report["columns"][0]["threshold"], 100.0);

    for bad in [
        vec!["drift", "--reference", "train", "--current", "nope"],
        vec![
            "drift",
            "--reference",
            "train",
            "--current",
            "prod",
            "--test",
            "age=bogus",
        ],
        vec![
            "drift",
            "--reference",
            "train",
            "--current",
            "prod",
            "--threshold",
            "age=x",
        ],
        vec!["drift", "--reference", "missing.json", "--current", "prod"],
    ] {
        let o = mlops(d, &bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
    }
}

#[test]
fn quality_suites_pass_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    csv(&d.join("train.csv"), 0.0, 100);
    assert!(
        mlops(d, &["datasets", "put", "train", "train.csv"])
            .status
            .success()
    );
    std::fs::write(
        d.join("ok.yaml"),
        "name: ok\nexpectations:\n  - expectation_type: expect_column_values_to_be_between\n    column: age\n    min_value: 18\n    max_value: 80\n  - expectation_type: expect_column_values_to_be_in_set\n    column: plan\n    value_set: [free, pro, team]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("strict.yaml"),
        "name: strict\nexpectations:\n  - expectation_type: expect_table_row_count_to_be_between\n    min_value: 1000\n",
    )
    .unwrap();
    let ok = mlops(d, &["quality", "--suite", "ok.yaml", "train"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("ok: 2 of 2"), "{}", text(&ok));
    let strict = mlops(d, &["quality", "--suite", "strict.yaml", "train", "--json"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    let r: serde_json::Value = serde_json::from_slice(&strict.stdout).unwrap();
    assert_eq!(r["results"][0]["result"]["observed_value"], 100);
    let bad = mlops(d, &["quality", "--suite", "nope.yaml", "train"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Data without rows is still checked: the row-count expectation fails, column expectations hold
/// vacuously (as in Great Expectations), and the report says so, for a stored version and for a
/// Parquet file alike.
#[test]
fn quality_on_data_without_rows_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty.csv"), "age,income,plan\n").unwrap();
    let o = mlops(d, &["datasets", "put", "empty", "empty.csv"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mlops(d, &["datasets", "get", "empty", "-o", "empty.parquet"]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(
        d.join("suite.yaml"),
        "name: s\nexpectations:\n  - expectation_type: expect_table_row_count_to_be_between\n    min_value: 1\n  - expectation_type: expect_column_values_to_not_be_null\n    column: plan\n  - expectation_type: expect_table_columns_to_match_set\n    column_set: [age, income, plan]\n",
    )
    .unwrap();
    for data in ["empty", "empty.parquet"] {
        let o = mlops(d, &["quality", "--suite", "suite.yaml", data, "--json"]);
        assert_eq!(o.status.code(), Some(1), "{data}: {}", text(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["evaluated_expectations"], 3, "{data}: {r}");
        assert_eq!(r["results"][0]["success"], false, "{data}: {r}");
        assert_eq!(
            r["results"][0]["result"]["observed_value"], 0,
            "{data}: {r}"
        );
        assert_eq!(r["results"][1]["success"], true, "{data}: {r}");
        assert_eq!(r["results"][2]["success"], true, "{data}: {r}");
    }
}

/// A column without values is reported as not tested, with the reason, while the others are
/// tested — and counted as drifted, since its values stopped arriving; with no testable column at
/// all, drift says why (exit 2) instead of "no drift".
#[test]
fn drift_reports_columns_it_cannot_test() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    csv(&d.join("train.csv"), 0.0, 400);
    let mut s = String::from("age,income,plan\n");
    for i in 0..300 {
        writeln!(
            s,
            "{},,{}",
            20 + (i * 37) % 50,
            ["free", "pro", "team"][i % 3]
        )
        .unwrap();
    }
    std::fs::write(d.join("gaps.csv"), s).unwrap();
    for (name, file) in [("train", "train.csv"), ("gaps", "gaps.csv")] {
        let o = mlops(d, &["datasets", "put", name, file]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = mlops(
        d,
        &[
            "drift",
            "--reference",
            "train",
            "--current",
            "gaps",
            "--json",
            "report.json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("income") && out.contains("not tested: no values in the current data"),
        "{out}"
    );
    assert!(out.contains("1 of 3 judged columns drifted"), "{out}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["columns_tested"], 3, "{r}");
    assert_eq!(r["drifted_columns"], 1, "{r}");
    assert_eq!(r["untested"][0]["column"], "income", "{r}");
    assert_eq!(r["untested"][0]["emptied"], true, "{r}");

    std::fs::write(d.join("blank.csv"), "income,note\n,a\n,b\n").unwrap();
    let o = mlops(d, &["datasets", "put", "blank", "blank.csv"]);
    assert!(o.status.success(), "{}", text(&o));
    // Every value of the only column stopped arriving: dataset drift (exit 1), not an error.
    let o = mlops(
        d,
        &[
            "drift",
            "--reference",
            "train",
            "--current",
            "blank",
            "--columns",
            "income",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("DATASET DRIFT: 1 of 1 judged columns drifted"),
        "{}",
        text(&o)
    );
    // A reference with nothing to test against is bad input, and says why.
    let o = mlops(
        d,
        &[
            "drift",
            "--reference",
            "blank",
            "--current",
            "train",
            "--columns",
            "income",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no column of the reference can be tested for drift")
            && text(&o).contains("\"income\""),
        "{}",
        text(&o)
    );
}
