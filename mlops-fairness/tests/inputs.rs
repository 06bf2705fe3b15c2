#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad input is `InvalidArgument` naming what is wrong; bootstrap intervals are seeded.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use mlops_core::ErrorKind;
use mlops_fairness::{
    AssessOptions, BinaryOutcomes, Bootstrap, Convention, Groups, Privileged, assess,
};

fn batch() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "sex",
            Arc::new(StringArray::from(vec!["f", "m", "f", "m"])) as ArrayRef,
        ),
        ("one", Arc::new(StringArray::from(vec!["x", "x", "x", "x"]))),
        (
            "nulls",
            Arc::new(StringArray::from(vec![None::<&str>, None, None, None])),
        ),
        (
            "gap",
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("b"),
                Some("a"),
            ])),
        ),
        ("age", Arc::new(Int64Array::from(vec![30, 40, 30, 50]))),
        ("label", Arc::new(Int64Array::from(vec![0, 1, 1, 0]))),
        ("three", Arc::new(Int64Array::from(vec![0, 1, 2, 0]))),
        (
            "score",
            Arc::new(Float64Array::from(vec![0.0, 0.7, 1.0, 0.2])),
        ),
        (
            "floats",
            Arc::new(Float64Array::from(vec![0.0, 1.0, 1.0, 0.0])),
        ),
    ])
    .unwrap()
}

fn invalid_naming(result: mlops_core::Result<impl std::fmt::Debug>, needle: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(
        err.to_string().contains(needle),
        "{err} should name {needle}"
    );
}

#[test]
fn sensitive_columns_that_cannot_form_groups_are_named() {
    let b = batch();
    invalid_naming(
        Groups::from_batch(&b, &["race"]),
        "\"race\" is not in the data",
    );
    invalid_naming(Groups::from_batch(&b, &["one"]), "\"one\" holds one value");
    invalid_naming(
        Groups::from_batch(&b, &["nulls"]),
        "\"nulls\" is null on every row",
    );
    invalid_naming(Groups::from_batch(&b, &["gap"]), "\"gap\" is null at row 1");
    invalid_naming(
        Groups::from_batch(&b, &["sex", "sex"]),
        "\"sex\" is named twice",
    );
    invalid_naming(Groups::from_batch(&b, &[]), "at least one sensitive column");
    // Integer columns are groups too, and two columns intersect.
    let g = Groups::from_batch(&b, &["sex", "age"]).unwrap();
    assert_eq!(g.keys().len(), 3);
    assert_eq!(g.empty_cells().len(), 3, "{:?}", g.empty_cells());
}

#[test]
fn labels_that_are_not_binary_are_named() {
    let b = batch();
    invalid_naming(
        BinaryOutcomes::from_batch(&b, "label", "three", 1),
        "y_pred",
    );
    invalid_naming(
        BinaryOutcomes::from_batch(&b, "three", "label", 1),
        "y_true",
    );
    invalid_naming(
        BinaryOutcomes::from_batch(&b, "nope", "label", 1),
        "\"nope\"",
    );
    invalid_naming(BinaryOutcomes::from_batch(&b, "sex", "label", 1), "\"sex\"");
    invalid_naming(BinaryOutcomes::from_labels(&[0, 1], &[1], 1), "y_pred");
    // A score column is not labels: no silent truncation of 0.7 to 0.
    invalid_naming(
        BinaryOutcomes::from_batch(&b, "label", "score", 1),
        "\"score\" holds 0.7 at row 1: binary metrics take labels, not scores",
    );
    let whole = BinaryOutcomes::from_batch(&b, "label", "floats", 1).unwrap();
    assert_eq!(
        whole,
        BinaryOutcomes::from_batch(&b, "label", "label", 1).unwrap()
    );
    assert_eq!(mlops_fairness::weight_column(&b, "score").unwrap()[1], 0.7);
    invalid_naming(
        mlops_fairness::weight_column(&b, "sex"),
        "\"sex\" is Utf8, not numbers",
    );
    let o = BinaryOutcomes::from_labels(&[0, 1], &[1, 1], 1).unwrap();
    invalid_naming(o.clone().with_weights(vec![1.0]), "1 weights for 2 rows");
    invalid_naming(o.clone().with_weights(vec![1.0, -1.0]), "row 1");
    invalid_naming(o.clone().with_weights(vec![1.0, f64::NAN]), "row 1");
    invalid_naming(o.with_weights(vec![0.0, 0.0]), "every weight is zero");
}

#[test]
fn privileged_groups_must_exist_and_leave_someone_out() {
    let b = batch();
    let groups = Groups::from_batch(&b, &["sex"]).unwrap();
    let outcomes = BinaryOutcomes::from_batch(&b, "label", "label", 1).unwrap();
    let with = |p: Privileged| {
        assess(
            &outcomes,
            &groups,
            &AssessOptions {
                privileged: Some(p),
                bootstrap: None,
            },
        )
    };
    invalid_naming(
        with(Privileged::new("sex", "x")),
        "no row is in the privileged group sex=x",
    );
    invalid_naming(
        with(Privileged::new("race", "a")),
        "\"race\" is not a sensitive column",
    );
    invalid_naming(Privileged::parse("sex"), "not column=value");
    assert_eq!(
        Privileged::parse("sex=m, age=30").unwrap(),
        Privileged::new("sex", "m").and("age", "30")
    );
    let other = Groups::from_values(&[("sex", vec!["f", "m"])]).unwrap();
    invalid_naming(
        assess(&outcomes, &other, &AssessOptions::default()),
        "2 rows of groups for 4 labelled rows",
    );
}

#[test]
fn bootstrap_intervals_are_seeded_and_bracket_the_estimate() {
    // 2000 rows, group b selected less often.
    let n = 2000;
    let sex: Vec<&str> = (0..n).map(|i| if i % 3 == 0 { "b" } else { "a" }).collect();
    let y_true: Vec<i64> = (0..n).map(|i| i64::from(i % 2 == 0)).collect();
    let y_pred: Vec<i64> = (0..n)
        .map(|i| i64::from(if i % 3 == 0 { i % 5 == 0 } else { i % 5 < 2 }))
        .collect();
    let outcomes = BinaryOutcomes::from_labels(&y_true, &y_pred, 1).unwrap();
    let groups = Groups::from_values(&[("sex", sex)]).unwrap();
    let options = |seed| AssessOptions {
        privileged: Some(Privileged::new("sex", "a")),
        bootstrap: Some(Bootstrap {
            resamples: 200,
            confidence: 0.9,
            seed,
        }),
    };
    let one = assess(&outcomes, &groups, &options(1)).unwrap();
    let again = assess(&outcomes, &groups, &options(1)).unwrap();
    let other = assess(&outcomes, &groups, &options(2)).unwrap();
    assert_eq!(one, again, "the same seed gives the same intervals");
    assert_ne!(one, other, "another seed draws other resamples");
    for d in &one.disparities {
        let i = d.interval.unwrap();
        assert_eq!(i.resamples + i.undefined, 200);
        assert!(i.low < i.high, "{} {i:?}", d.name);
        assert!(
            i.low <= d.value && d.value <= i.high,
            "{}: {} outside {i:?}",
            d.name,
            d.value
        );
    }
    let di = one
        .disparity(Convention::Aif360, "disparate_impact")
        .unwrap();
    assert!((di.value - 0.5).abs() < 0.01, "{}", di.value);
    let tags = one.tags();
    assert_eq!(tags["fairness.sensitive_columns"], "sex");
    assert_eq!(tags["fairness.aif360.privileged"], "sex=a");
    assert!(tags.contains_key("fairness.demographic_parity_difference.low"));
    assert!(tags.contains_key("fairness.aif360.disparate_impact.high"));
    let bad = AssessOptions {
        privileged: None,
        bootstrap: Some(Bootstrap {
            resamples: 10,
            confidence: 1.5,
            seed: 0,
        }),
    };
    invalid_naming(assess(&outcomes, &groups, &bad), "confidence 1.5");
}
