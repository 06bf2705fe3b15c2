#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops explain` over a trained model directory and labelled data: importance that ranks
//! the deciding column first, KernelSHAP that adds up, fairness over a sensitive column, the
//! HTML model report; `mlops train` assesses on its validation rows; bad input exits 2 naming
//! what is wrong.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use common::{mlops, text};

fn batch() -> RecordBatch {
    let n = 800;
    let mut s = 17u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut a, mut b, mut g, mut y) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let x = next() * 4.0 - 2.0;
        a.push(x);
        b.push(next());
        g.push(if next() < 0.4 { "f" } else { "m" });
        y.push(i64::from(x + (next() - 0.5) * 0.6 > 0.0));
    }
    RecordBatch::try_from_iter([
        ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
        ("b", Arc::new(Float64Array::from(b))),
        ("sex", Arc::new(StringArray::from(g))),
        ("y", Arc::new(Int64Array::from(y))),
    ])
    .unwrap()
}

#[test]
fn explains_a_trained_model_on_labelled_data() {
    let dir = tempfile::tempdir().unwrap();
    let b = batch();
    let file = std::fs::File::create(dir.path().join("data.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    // Numeric inputs only (the sensitive column is not a feature), so SHAP applies.
    let out = mlops(
        dir.path(),
        &[
            "train",
            "--data",
            "data.parquet",
            "--target",
            "y",
            "--model",
            "logistic",
            "--epochs",
            "10",
            "--learning-rate",
            "0.1",
            "--param",
            "features=a,b",
            "--sensitive",
            "sex",
            "--output",
            "m",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m/model_card.json")).unwrap())
            .unwrap();
    assert!(
        card["assessment"]["fairness"]["disparities"].is_array(),
        "{card}"
    );

    let base = [
        "explain",
        "m",
        "data.parquet",
        "--target",
        "y",
        "--sensitive",
        "sex",
    ];
    let out = mlops(dir.path(), &[&base[..], &["--tags"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let tags: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&out.stdout).unwrap();
    let num = |k: &str| tags[k].parse::<f64>().unwrap();
    assert!(num("explain.importance.a") > 0.2, "{tags:?}");
    assert!(num("explain.importance.b").abs() < 0.05, "{tags:?}");
    assert!((0.0..=1.0).contains(&num("fairness.demographic_parity_difference")));
    assert_eq!(tags["fairness.sensitive_columns"], "sex");

    let out = mlops(
        dir.path(),
        &[
            &base[..],
            &["--shap", "8", "--json", "--html", "report.html"],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shap = &findings["shap"];
    assert_eq!(shap["explanation"]["values"].as_array().unwrap().len(), 8);
    assert!(
        shap["explanation"]["additivity_error"].as_f64().unwrap() < 1e-6,
        "{shap}"
    );
    assert_eq!(shap["mean_abs"][0][0], "a", "{shap}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for part in [
        "Permutation importance",
        "SHAP summary",
        "Group metrics",
        "m on data.parquet",
    ] {
        assert!(html.contains(part), "the report lacks {part}");
    }

    let out = mlops(
        dir.path(),
        &[
            "explain",
            "m",
            "data.parquet",
            "--target",
            "y",
            "--sensitive",
            "age",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("\"age\""), "{}", text(&out));
    let out = mlops(
        dir.path(),
        &["explain", "m", "data.parquet", "--target", "label"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("\"label\""), "{}", text(&out));
    let out = mlops(
        dir.path(),
        &["explain", "nowhere", "data.parquet", "--target", "y"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nowhere"), "{}", text(&out));
}
