#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Data quality suites: every expectation passing and failing, observed values, YAML round trip.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use mlops_drift::quality::Suite;

fn table() -> RecordBatch {
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 4]))),
        (
            "age",
            Arc::new(Float64Array::from(vec![
                Some(30.0),
                Some(41.0),
                None,
                Some(150.0),
                Some(f64::NAN),
            ])),
        ),
        (
            "plan",
            Arc::new(StringArray::from(vec![
                Some("free"),
                Some("pro"),
                Some("team"),
                Some("gold"),
                None,
            ])),
        ),
        (
            "email",
            Arc::new(StringArray::from(vec![
                "a@x.io", "b@x.io", "bad", "c@y.org", "d@z.net",
            ])),
        ),
    ];
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, cols.into_iter().map(|(_, a)| a).collect()).unwrap()
}

const SUITE: &str = r#"
name: customers
expectations:
  - expectation_type: expect_table_row_count_to_be_between
    min_value: 1
    max_value: 10
  - expectation_type: expect_table_columns_to_match_set
    column_set: [id, age, plan, email]
  - expectation_type: expect_column_values_to_not_be_null
    column: age
  - expectation_type: expect_column_values_to_not_be_null
    column: age
    mostly: 0.6
  - expectation_type: expect_column_values_to_be_between
    column: age
    min_value: 0
    max_value: 120
  - expectation_type: expect_column_values_to_be_in_set
    column: plan
    value_set: [free, pro, team]
    mostly: 0.7
  - expectation_type: expect_column_values_to_be_unique
    column: id
  - expectation_type: expect_column_values_to_match_regex
    column: email
    regex: "^[^@]+@[^@]+$"
  - expectation_type: expect_column_values_to_be_of_type
    column: age
    type_: numeric
  - expectation_type: expect_column_values_to_be_of_type
    column: plan
    type_: Int64
"#;

#[test]
fn every_expectation_reports_what_it_saw() {
    let suite = Suite::from_yaml(SUITE).unwrap();
    let report = suite.validate(&[table()]).unwrap();
    let outcomes: Vec<bool> = report.results.iter().map(|r| r.success).collect();
    assert_eq!(
        outcomes,
        vec![
            true, true, false, true, false, true, false, false, true, false
        ]
    );
    assert!(!report.success);
    assert_eq!(
        (
            report.evaluated_expectations,
            report.successful_expectations
        ),
        (10, 5)
    );
    let r = |i: usize| &report.results[i].result;
    assert_eq!(r(0)["observed_value"], 5);
    assert_eq!(r(2)["unexpected_count"], 2, "null and NaN are both null");
    assert_eq!(r(4)["unexpected_count"], 1);
    assert_eq!(r(4)["partial_unexpected_list"], serde_json::json!([150.0]));
    assert_eq!(r(4)["missing_count"], 2);
    assert_eq!(r(5)["unexpected_percent"], 25.0);
    assert_eq!(
        r(6)["partial_unexpected_list"],
        serde_json::json!(["4", "4"])
    );
    assert_eq!(r(7)["partial_unexpected_list"], serde_json::json!(["bad"]));
    assert_eq!(r(9)["observed_value"], "Utf8");
}

#[test]
fn suites_round_trip_and_bad_ones_are_errors() {
    let suite = Suite::from_yaml(SUITE).unwrap();
    let again = Suite::from_yaml(&suite.to_yaml().unwrap()).unwrap();
    assert_eq!(again, suite);
    for bad in [
        "name: x\nexpectations:\n  - expectation_type: expect_column_values_to_fly\n    column: a\n",
        "name: x\nexpectations:\n  - expectation_type: expect_column_values_to_not_be_null\n    column: a\n    mostly: 2\n",
        "name: x\nexpectations:\n  - expectation_type: expect_column_values_to_match_regex\n    column: a\n    regex: \"([\"\n",
        "name: x\nexpectations:\n  - expectation_type: expect_column_values_to_not_be_null\n    colum: a\n",
    ] {
        assert!(
            Suite::from_yaml(bad).unwrap_err().is_invalid_argument(),
            "{bad}"
        );
    }
    let missing = Suite::from_yaml("name: x\nexpectations:\n  - expectation_type: expect_column_values_to_be_unique\n    column: nope\n").unwrap();
    assert!(
        missing
            .validate(&[table()])
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
}
