#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops fairness`: the library's numbers on a Parquet file and a stored dataset, the tags
//! the fairness policy reads, and bad input (exit 2, naming what is wrong).

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use common::{mlops, text};
use mlops::fairness::{AssessOptions, BinaryOutcomes, Convention, Groups, Privileged, assess};

fn batch() -> RecordBatch {
    let n = 600;
    let sex: Vec<&str> = (0..n).map(|i| if i % 3 == 0 { "f" } else { "m" }).collect();
    let region: Vec<&str> = (0..n)
        .map(|i| if i % 5 < 2 { "north" } else { "south" })
        .collect();
    let y: Vec<i64> = (0..n).map(|i| i64::from(i % 2 == 0)).collect();
    let p: Vec<i64> = (0..n)
        .map(|i| i64::from(if i % 3 == 0 { i % 7 < 2 } else { i % 7 < 4 }))
        .collect();
    let w: Vec<f64> = (0..n).map(|i| 1.0 + (i % 4) as f64 / 4.0).collect();
    RecordBatch::try_from_iter([
        ("sex", Arc::new(StringArray::from(sex)) as ArrayRef),
        ("region", Arc::new(StringArray::from(region))),
        ("churned", Arc::new(Int64Array::from(y))),
        ("predicted", Arc::new(Int64Array::from(p))),
        ("w", Arc::new(Float64Array::from(w))),
    ])
    .unwrap()
}

#[test]
fn reports_the_library_numbers_and_the_policy_tags() {
    let dir = tempfile::tempdir().unwrap();
    let b = batch();
    let file = std::fs::File::create(dir.path().join("scored.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    let base = [
        "fairness",
        "scored.parquet",
        "--target",
        "churned",
        "--prediction",
        "predicted",
        "--sensitive",
        "sex,region",
        "--privileged",
        "sex=m",
        "--weights",
        "w",
    ];
    let out = mlops(dir.path(), &[&base[..], &["--tags"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let tags: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let weights: Vec<f64> = (0..600).map(|i| 1.0 + (i % 4) as f64 / 4.0).collect();
    let expected = assess(
        &BinaryOutcomes::from_batch(&b, "churned", "predicted", 1)
            .unwrap()
            .with_weights(weights)
            .unwrap(),
        &Groups::from_batch(&b, &["sex", "region"]).unwrap(),
        &AssessOptions {
            privileged: Some(Privileged::new("sex", "m")),
            bootstrap: None,
        },
    )
    .unwrap();
    let di = expected
        .disparity(Convention::Aif360, "disparate_impact")
        .unwrap()
        .value;
    assert!(di < 0.8, "the data is built unfair: {di}");
    assert_eq!(
        tags["fairness.aif360.disparate_impact"].as_str().unwrap(),
        di.to_string()
    );
    assert_eq!(tags["fairness.sensitive_columns"], "sex,region");

    // The text report names the groups and the disparities; intervals with --bootstrap.
    let out = mlops(dir.path(), &[&base[..], &["--bootstrap", "50"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    for want in [
        "f, north",
        "m, south",
        "(all)",
        "fairness.demographic_parity_difference",
        "fairness.aif360.disparate_impact",
        "at 95%",
    ] {
        assert!(report.contains(want), "no {want:?} in:\n{report}");
    }

    // A stored dataset works the same.
    let put = mlops(dir.path(), &["datasets", "put", "scored", "scored.parquet"]);
    assert!(put.status.success(), "{}", text(&put));
    let mut stored = base.to_vec();
    stored[1] = "scored@1";
    let out = mlops(dir.path(), &[&stored[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["frame"]["by_group"].as_array().unwrap().len(), 4);
    assert_eq!(
        json["two_group"]["privileged_group"]["conditions"][0][1],
        "m"
    );

    for (args, want) in [
        (
            ["churned", "predicted", "race", "sex=m"],
            "\"race\" is not in the data",
        ),
        (["churned", "predicted", "sex", "sex"], "not column=value"),
        (
            ["sex", "predicted", "sex", "sex=m"],
            "\"sex\" of type Utf8 holds values that are not integer labels",
        ),
        (
            ["churned", "predicted", "sex", "sex=x"],
            "no row is in the privileged group sex=x",
        ),
    ] {
        let a = [
            "fairness",
            "scored.parquet",
            "--target",
            args[0],
            "--prediction",
            args[1],
            "--sensitive",
            args[2],
            "--privileged",
            args[3],
        ];
        let out = mlops(dir.path(), &a);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {}", text(&out));
        assert!(text(&out).contains(want), "{a:?}: {}", text(&out));
    }
}
