#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! StatDetector behaviour beyond the numbers: missing values, errors, overrides, typing,
//! profiles (serialised, sampled, stored beside a model version), wide data, reports.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use mlops_core::drift::{
    ColumnOverride, ColumnSummary, DetectOptions, DriftDetector, ProfileOptions,
};
use mlops_drift::{Report, StatDetector};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).unwrap()
}

fn floats(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn data(shift: f64, n: usize) -> RecordBatch {
    batch(vec![
        (
            "x",
            floats((0..n).map(|i| (i as f64 * 0.37).sin() * 10.0 + shift)),
        ),
        // Shifted data has twice as many free plans.
        (
            "plan",
            Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                if shift > 0.0 && i % 4 == 0 {
                    "free"
                } else {
                    ["free", "pro", "team"][i % 3]
                }
            }))),
        ),
        (
            "small_int",
            Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i % 3) as i64))),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 2 == 0)))),
        ),
    ])
}

#[test]
fn types_tests_and_decisions() {
    let d = StatDetector::new();
    let profile = d
        .profile(&[data(0.0, 600)], &ProfileOptions::default())
        .unwrap();
    let kinds: Vec<_> = profile
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kind()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("x", mlops_core::drift::ColumnKind::Numerical),
            ("plan", mlops_core::drift::ColumnKind::Categorical),
            // Integers with at most 5 distinct values are categories, as in Evidently.
            ("small_int", mlops_core::drift::ColumnKind::Categorical),
            ("flag", mlops_core::drift::ColumnKind::Categorical),
        ]
    );
    let same = d
        .detect(&profile, &[data(0.0, 500)], &DetectOptions::default())
        .unwrap();
    assert!(!same.dataset_drift, "{same:?}");
    let tests: Vec<&str> = same.columns.iter().map(|c| c.test.as_str()).collect();
    assert_eq!(tests, vec!["ks", "chisquare", "chisquare", "z"]);
    let shifted = d
        .detect(&profile, &[data(5.0, 500)], &DetectOptions::default())
        .unwrap();
    assert!(shifted.columns[0].drifted);
    assert!(shifted.columns[1].drifted);
    assert_eq!(shifted.drifted_columns, 2);
    assert!(shifted.dataset_drift, "2 of 4 is the default share 0.5");
    let mut strict = DetectOptions::default();
    strict.drift_share = 0.75;
    assert!(
        !d.detect(&profile, &[data(5.0, 500)], &strict)
            .unwrap()
            .dataset_drift
    );
}

#[test]
fn overrides_pick_tests_and_thresholds() {
    let d = StatDetector::new();
    let profile = d
        .profile(&[data(0.0, 600)], &ProfileOptions::default())
        .unwrap();
    let mut o = DetectOptions::default();
    o.overrides = BTreeMap::from([
        (
            "x".to_string(),
            ColumnOverride {
                test: Some("psi".into()),
                threshold: Some(10.0),
            },
        ),
        (
            "plan".to_string(),
            ColumnOverride {
                test: Some("jensenshannon".into()),
                threshold: None,
            },
        ),
    ]);
    let r = d.detect(&profile, &[data(5.0, 500)], &o).unwrap();
    assert_eq!(
        (r.columns[0].test.as_str(), r.columns[0].threshold),
        ("psi", 10.0)
    );
    assert!(!r.columns[0].drifted, "a huge PSI threshold");
    assert_eq!(
        (r.columns[1].test.as_str(), r.columns[1].threshold),
        ("jensenshannon", 0.1)
    );
    for (col, test) in [("plan", "ks"), ("x", "nope")] {
        let mut bad = DetectOptions::default();
        bad.overrides = BTreeMap::from([(
            col.to_string(),
            ColumnOverride {
                test: Some(test.into()),
                threshold: None,
            },
        )]);
        let err = d.detect(&profile, &[data(0.0, 100)], &bad).unwrap_err();
        assert!(err.is_invalid_argument(), "{err}");
    }
    let mut unknown = DetectOptions::default();
    unknown.overrides = BTreeMap::from([("nope".to_string(), ColumnOverride::default())]);
    assert!(
        d.detect(&profile, &[data(0.0, 100)], &unknown)
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
}

#[test]
fn missing_values_are_dropped_and_empty_columns_are_reported() {
    let d = StatDetector::new();
    let with_gaps = batch(vec![(
        "x",
        Arc::new(Float64Array::from(vec![
            Some(1.0),
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(2.0),
            Some(3.0),
        ])) as ArrayRef,
    )]);
    let p = d
        .profile(std::slice::from_ref(&with_gaps), &ProfileOptions::default())
        .unwrap();
    assert_eq!((p.columns[0].count, p.columns[0].missing), (6, 3));
    let r = d
        .detect(&p, &[with_gaps], &DetectOptions::default())
        .unwrap();
    assert_eq!(r.columns[0].counts, [3, 3]);
    let empty = batch(vec![(
        "x",
        Arc::new(Float64Array::from(vec![None, Some(f64::NAN)])) as ArrayRef,
    )]);
    // Every value of the only column stopped arriving: that is drift, not an error.
    let r = d
        .detect(&p, std::slice::from_ref(&empty), &DetectOptions::default())
        .unwrap();
    assert!(r.columns.is_empty() && r.untested[0].emptied, "{r:?}");
    assert_eq!((r.drifted_columns, r.columns_judged()), (1, 1));
    assert!(r.dataset_drift);
    assert!(
        d.profile(&[empty], &ProfileOptions::default())
            .unwrap_err()
            .is_invalid_argument()
    );
    let other = batch(vec![("y", floats([1.0]))]);
    assert!(
        d.detect(&p, &[other], &DetectOptions::default())
            .unwrap_err()
            .to_string()
            .contains("no column \"x\"")
    );

    // Beside testable columns, an all-null column is reported as not tested, with the reason;
    // the others are still tested. A column that had values in the reference and has none now
    // (a feature that stopped arriving) counts as drifted.
    let n = 200;
    let wide = |nulls_current: bool| {
        let base = data(0.0, n);
        let gone: ArrayRef = if nulls_current {
            Arc::new(Float64Array::from(vec![None::<f64>; n]))
        } else {
            floats((0..n).map(|i| i as f64))
        };
        let schema = base.schema();
        let mut cols: Vec<(&str, ArrayRef)> = schema
            .fields()
            .iter()
            .zip(base.columns())
            .map(|(f, a)| (f.name().as_str(), a.clone()))
            .collect();
        cols.push(("gone", gone));
        cols.push(("nothing", Arc::new(arrow_array::NullArray::new(n))));
        batch(cols)
    };
    let p = d
        .profile(&[wide(false)], &ProfileOptions::default())
        .unwrap();
    assert_eq!(p.columns.len(), 5, "{:?}", p.untested);
    assert_eq!(p.untested.len(), 1);
    assert_eq!(p.untested[0].column, "nothing");
    assert!(p.untested[0].reason.contains("null"), "{:?}", p.untested);
    let r = d
        .detect(&p, &[wide(true)], &DetectOptions::default())
        .unwrap();
    assert_eq!(r.columns.len(), 4);
    let untested: Vec<&str> = r.untested.iter().map(|u| u.column.as_str()).collect();
    assert_eq!(untested, ["nothing", "gone"]);
    assert!(
        r.untested[1].reason.contains("current data"),
        "{:?}",
        r.untested
    );
    assert!(!r.untested[0].emptied && r.untested[1].emptied);
    let same = r.columns.iter().filter(|c| c.drifted).count();
    assert_eq!(r.drifted_columns, same + 1, "{r:?}");
    assert!(
        (r.share_drifted - (same + 1) as f64 / 5.0).abs() < 1e-12,
        "{r:?}"
    );
    let report = Report::new(&r, &p, &[wide(true)], "ref", "cur").unwrap();
    assert_eq!(
        report.columns_tested, 5,
        "4 tested and one that stopped arriving"
    );
    let html = report.to_html();
    assert!(
        html.contains("2 not tested") && html.contains("Not tested"),
        "{html}"
    );
    let doc: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(doc["untested"][1]["column"], "gone");

    // With nothing testable the answer says why, not "no drift".
    let only_nulls = batch(vec![(
        "nothing",
        Arc::new(arrow_array::NullArray::new(3)) as ArrayRef,
    )]);
    let err = d
        .profile(&[only_nulls], &ProfileOptions::default())
        .unwrap_err();
    assert!(
        err.is_invalid_argument()
            && err
                .to_string()
                .contains("no column of the reference can be tested"),
        "{err}"
    );
}

#[test]
fn profiles_serialise_and_sampled_ones_say_they_are_approximate() {
    let d = StatDetector::new();
    let reference = data(0.0, 5000);
    let exact = d
        .profile(std::slice::from_ref(&reference), &ProfileOptions::default())
        .unwrap();
    let json = serde_json::to_string(&exact).unwrap();
    let back: mlops_core::ReferenceProfile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, exact);
    let direct = d
        .detect_batches(
            std::slice::from_ref(&reference),
            &[data(0.5, 3000)],
            &DetectOptions::default(),
        )
        .unwrap();
    let via_profile = d
        .detect(&back, &[data(0.5, 3000)], &DetectOptions::default())
        .unwrap();
    assert_eq!(
        direct, via_profile,
        "an exact profile decides exactly as the raw reference"
    );

    let mut o = ProfileOptions::default();
    o.max_values = Some(500);
    let sampled = d.profile(&[reference], &o).unwrap();
    let ColumnSummary::Numerical {
        values,
        population,
        sampled: is_sampled,
    } = &sampled.columns[0].summary
    else {
        panic!()
    };
    assert_eq!((values.len(), *population, *is_sampled), (500, 5000, true));
    let r = d
        .detect(&sampled, &[data(0.5, 3000)], &DetectOptions::default())
        .unwrap();
    assert!(r.columns[0].approximate);
    assert!(!r.columns[1].approximate);
    assert!(serde_json::to_string(&sampled).unwrap().len() < json.len() / 3);
}

#[test]
fn a_thousand_columns_in_parallel() {
    let n = 300;
    let cols: Vec<(String, ArrayRef)> = (0..1000)
        .map(|c| {
            (
                format!("c{c}"),
                floats((0..n).map(move |i| ((i * (c + 1)) % 97) as f64)),
            )
        })
        .collect();
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, _)| Field::new(n, DataType::Float64, false))
            .collect::<Vec<_>>(),
    ));
    let b = RecordBatch::try_new(schema, cols.into_iter().map(|(_, a)| a).collect()).unwrap();
    let d = StatDetector::new();
    let r = d
        .detect_batches(
            std::slice::from_ref(&b),
            std::slice::from_ref(&b),
            &DetectOptions::default(),
        )
        .unwrap();
    assert_eq!(r.columns.len(), 1000);
    assert_eq!(r.drifted_columns, 0);
}

#[test]
fn reports_render_json_and_standalone_html() {
    let d = StatDetector::new();
    let profile = d
        .profile(&[data(0.0, 600)], &ProfileOptions::default())
        .unwrap();
    let current = [data(5.0, 400)];
    let drift = d
        .detect(&profile, &current, &DetectOptions::default())
        .unwrap();
    let report = Report::new(
        &drift,
        &profile,
        &current,
        "train.parquet",
        "prod <week 48>",
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["schema"], "mlops.drift.report/v1");
    assert_eq!(
        json["columns"][0]["histogram"]["reference"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let shares: f64 = json["columns"][1]["histogram"]["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9);
    assert_eq!(json["columns_tested"], 4);
    let html = report.to_html();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("Dataset drift detected"));
    assert!(html.contains("prod &lt;week 48&gt;"), "names are escaped");
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "no network assets"
    );
}
