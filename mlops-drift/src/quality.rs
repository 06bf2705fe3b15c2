//! Data quality expectations (Great Expectations' job): a [`Suite`] of expectations per column
//! and per table, validated against Arrow batches into a [`QualityReport`] with each result's
//! observed value. Suites are YAML or JSON documents with Great Expectations' names and
//! arguments, so they read familiarly and can be saved and re-run:
//!
//! ```yaml
//! name: churn-input
//! expectations:
//!   - expectation_type: expect_table_row_count_to_be_between
//!     min_value: 1000
//!   - expectation_type: expect_column_values_to_not_be_null
//!     column: age
//!     mostly: 0.99
//!   - expectation_type: expect_column_values_to_be_between
//!     column: age
//!     min_value: 0
//!     max_value: 120
//!   - expectation_type: expect_column_values_to_be_in_set
//!     column: plan
//!     value_set: [free, pro, team]
//!   - expectation_type: expect_column_values_to_match_regex
//!     column: email
//!     regex: "^[^@]+@[^@]+$"
//! ```
//!
//! As in Great Expectations, column-value expectations ignore nulls (except
//! `expect_column_values_to_not_be_null`) and pass when at least `mostly` (default 1) of the
//! non-null values meet them.

use std::collections::{BTreeMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

fn one() -> f64 {
    1.0
}

/// One expectation, tagged by Great Expectations' `expectation_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "expectation_type",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Expectation {
    /// At least `mostly` of the rows are not null (NaN counts as null).
    ExpectColumnValuesToNotBeNull {
        /// Column.
        column: String,
        /// Required share.
        #[serde(default = "one")]
        mostly: f64,
    },
    /// Values lie in `[min_value, max_value]` (either bound optional; `strict_*` excludes it).
    ExpectColumnValuesToBeBetween {
        /// Column.
        column: String,
        /// Lower bound.
        #[serde(default)]
        min_value: Option<f64>,
        /// Upper bound.
        #[serde(default)]
        max_value: Option<f64>,
        /// Exclude the lower bound.
        #[serde(default)]
        strict_min: bool,
        /// Exclude the upper bound.
        #[serde(default)]
        strict_max: bool,
        /// Required share.
        #[serde(default = "one")]
        mostly: f64,
    },
    /// Values are members of `value_set` (compared as text).
    ExpectColumnValuesToBeInSet {
        /// Column.
        column: String,
        /// Allowed values.
        value_set: Vec<serde_json::Value>,
        /// Required share.
        #[serde(default = "one")]
        mostly: f64,
    },
    /// No value occurs twice.
    ExpectColumnValuesToBeUnique {
        /// Column.
        column: String,
        /// Required share.
        #[serde(default = "one")]
        mostly: f64,
    },
    /// Values (as text) match the regular expression somewhere.
    ExpectColumnValuesToMatchRegex {
        /// Column.
        column: String,
        /// Rust `regex` syntax.
        regex: String,
        /// Required share.
        #[serde(default = "one")]
        mostly: f64,
    },
    /// The column's Arrow type is `type_` (`Float64`, `Utf8`, …) or of a class: `numeric`,
    /// `integer`, `float`, `string`, `boolean`.
    ExpectColumnValuesToBeOfType {
        /// Column.
        column: String,
        /// Type name or class.
        type_: String,
    },
    /// The table's columns are `column_set` (exactly, or at least, with `exact_match: false`).
    ExpectTableColumnsToMatchSet {
        /// Column names.
        column_set: Vec<String>,
        /// Require no other columns.
        #[serde(default = "yes")]
        exact_match: bool,
    },
    /// The row count lies in `[min_value, max_value]`.
    ExpectTableRowCountToBeBetween {
        /// Minimum.
        #[serde(default)]
        min_value: Option<u64>,
        /// Maximum.
        #[serde(default)]
        max_value: Option<u64>,
    },
}

fn yes() -> bool {
    true
}

/// A named list of expectations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Name.
    pub name: String,
    /// Expectations, checked in order.
    #[serde(default)]
    pub expectations: Vec<Expectation>,
}

/// One expectation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// The expectation.
    pub expectation: Expectation,
    /// Whether it held.
    pub success: bool,
    /// What was observed: `element_count`, `missing_count`, `unexpected_count`,
    /// `unexpected_percent`, `partial_unexpected_list` for column values; `observed_value`
    /// otherwise.
    pub result: serde_json::Value,
}

/// The outcome of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The suite's name.
    pub suite: String,
    /// All expectations held.
    pub success: bool,
    /// How many were evaluated.
    pub evaluated_expectations: usize,
    /// How many held.
    pub successful_expectations: usize,
    /// Per expectation, in suite order.
    pub results: Vec<ExpectationResult>,
}

impl Suite {
    /// Parses a YAML (or JSON) suite.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let suite: Suite = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::invalid("quality suite", "not a suite").with_source(e))?;
        suite.check()?;
        Ok(suite)
    }

    /// The suite as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml_ng::to_string(self).map_err(|e| Error::backend("serde_yaml", e))
    }

    fn check(&self) -> Result<()> {
        for e in &self.expectations {
            let mostly = match e {
                Expectation::ExpectColumnValuesToNotBeNull { mostly, .. }
                | Expectation::ExpectColumnValuesToBeBetween { mostly, .. }
                | Expectation::ExpectColumnValuesToBeInSet { mostly, .. }
                | Expectation::ExpectColumnValuesToBeUnique { mostly, .. }
                | Expectation::ExpectColumnValuesToMatchRegex { mostly, .. } => Some(*mostly),
                _ => None,
            };
            if let Some(m) = mostly
                && !(0.0..=1.0).contains(&m)
            {
                return Err(Error::invalid(
                    "quality suite",
                    format!("mostly {m} is not between 0 and 1"),
                ));
            }
            if let Expectation::ExpectColumnValuesToMatchRegex { regex, .. } = e {
                regex::Regex::new(regex).map_err(|err| {
                    Error::invalid("quality suite", format!("bad regex {regex:?}")).with_source(err)
                })?;
            }
        }
        Ok(())
    }

    /// Validates `batches` (which must share one schema).
    pub fn validate(&self, batches: &[RecordBatch]) -> Result<QualityReport> {
        self.check()?;
        let results = self
            .expectations
            .iter()
            .map(|e| evaluate(e, batches))
            .collect::<Result<Vec<_>>>()?;
        let ok = results.iter().filter(|r| r.success).count();
        Ok(QualityReport {
            suite: self.name.clone(),
            success: ok == results.len(),
            evaluated_expectations: results.len(),
            successful_expectations: ok,
            results,
        })
    }
}

fn column<'a>(batches: &'a [RecordBatch], name: &str) -> Result<Vec<&'a ArrayRef>> {
    if batches.is_empty() {
        return Err(Error::invalid("data", "no batches given"));
    }
    batches
        .iter()
        .map(|b| {
            b.column_by_name(name)
                .ok_or_else(|| Error::invalid("column", format!("the data has no column {name:?}")))
        })
        .collect()
}

fn is_null(a: &ArrayRef, i: usize) -> bool {
    if a.is_null(i) {
        return true;
    }
    match a.data_type() {
        DataType::Float64 => a
            .as_primitive::<arrow_array::types::Float64Type>()
            .value(i)
            .is_nan(),
        DataType::Float32 => a
            .as_primitive::<arrow_array::types::Float32Type>()
            .value(i)
            .is_nan(),
        _ => false,
    }
}

/// Column values as text (arrow's display cast), `None` for null.
fn texts(arrays: &[&ArrayRef]) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    for a in arrays {
        let cast = arrow::compute::cast(a, &DataType::Utf8)
            .map_err(|e| Error::invalid("column", "cannot be read as text").with_source(e))?;
        let s = cast.as_string::<i32>();
        for i in 0..a.len() {
            out.push((!is_null(a, i)).then(|| s.value(i).to_string()));
        }
    }
    Ok(out)
}

/// Column values as numbers, `None` for null; a non-numeric column is an error.
fn numbers(arrays: &[&ArrayRef], name: &str) -> Result<Vec<Option<f64>>> {
    let mut out = Vec::new();
    for a in arrays {
        if !a.data_type().is_numeric() {
            return Err(Error::invalid(
                "column",
                format!("{name:?} is {}, not numeric", a.data_type()),
            ));
        }
        let cast = arrow::compute::cast(a, &DataType::Float64).map_err(|e| {
            Error::invalid("column", format!("{name:?} cannot be read as numbers")).with_source(e)
        })?;
        let f = cast.as_primitive::<arrow_array::types::Float64Type>();
        for i in 0..a.len() {
            out.push((!is_null(a, i)).then(|| f.value(i)));
        }
    }
    Ok(out)
}

/// The column-values result shape, from per-value verdicts (`None` = null, ignored).
fn values_result<T: Serialize>(
    verdicts: &[(Option<bool>, Option<T>)],
    mostly: f64,
) -> (bool, serde_json::Value) {
    let element_count = verdicts.len();
    let missing = verdicts.iter().filter(|(v, _)| v.is_none()).count();
    let nonnull = element_count - missing;
    let unexpected: Vec<&T> = verdicts
        .iter()
        .filter(|(v, _)| *v == Some(false))
        .filter_map(|(_, x)| x.as_ref())
        .collect();
    let unexpected_count = verdicts.iter().filter(|(v, _)| *v == Some(false)).count();
    let share_ok = if nonnull == 0 {
        1.0
    } else {
        1.0 - unexpected_count as f64 / nonnull as f64
    };
    let success = share_ok >= mostly;
    let result = serde_json::json!({
        "element_count": element_count,
        "missing_count": missing,
        "unexpected_count": unexpected_count,
        "unexpected_percent": if nonnull == 0 { 0.0 } else { 100.0 * unexpected_count as f64 / nonnull as f64 },
        "partial_unexpected_list": unexpected.iter().take(20).collect::<Vec<_>>(),
    });
    (success, result)
}

fn evaluate(e: &Expectation, batches: &[RecordBatch]) -> Result<ExpectationResult> {
    let (success, result) = match e {
        Expectation::ExpectColumnValuesToNotBeNull { column: c, mostly } => {
            let arrays = column(batches, c)?;
            let total: usize = arrays.iter().map(|a| a.len()).sum();
            let nulls: usize = arrays
                .iter()
                .map(|a| (0..a.len()).filter(|i| is_null(a, *i)).count())
                .sum();
            let share = if total == 0 {
                1.0
            } else {
                1.0 - nulls as f64 / total as f64
            };
            (
                share >= *mostly,
                serde_json::json!({
                    "element_count": total, "unexpected_count": nulls,
                    "unexpected_percent": if total == 0 { 0.0 } else { 100.0 * nulls as f64 / total as f64 },
                }),
            )
        }
        Expectation::ExpectColumnValuesToBeBetween {
            column: c,
            min_value,
            max_value,
            strict_min,
            strict_max,
            mostly,
        } => {
            let values = numbers(&column(batches, c)?, c)?;
            let verdicts: Vec<(Option<bool>, Option<f64>)> = values
                .into_iter()
                .map(|v| match v {
                    None => (None, None),
                    Some(x) => {
                        let lo = min_value.is_none_or(|m| if *strict_min { x > m } else { x >= m });
                        let hi = max_value.is_none_or(|m| if *strict_max { x < m } else { x <= m });
                        (Some(lo && hi), Some(x))
                    }
                })
                .collect();
            values_result(&verdicts, *mostly)
        }
        Expectation::ExpectColumnValuesToBeInSet {
            column: c,
            value_set,
            mostly,
        } => {
            let allowed: HashSet<String> = value_set
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let verdicts: Vec<(Option<bool>, Option<String>)> = texts(&column(batches, c)?)?
                .into_iter()
                .map(|v| match v {
                    None => (None, None),
                    Some(s) => (Some(allowed.contains(&s)), Some(s)),
                })
                .collect();
            values_result(&verdicts, *mostly)
        }
        Expectation::ExpectColumnValuesToBeUnique { column: c, mostly } => {
            let values = texts(&column(batches, c)?)?;
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for v in values.iter().flatten() {
                *counts.entry(v.as_str()).or_insert(0) += 1;
            }
            let verdicts: Vec<(Option<bool>, Option<String>)> = values
                .iter()
                .map(|v| match v {
                    None => (None, None),
                    Some(s) => (Some(counts[s.as_str()] == 1), Some(s.clone())),
                })
                .collect();
            values_result(&verdicts, *mostly)
        }
        Expectation::ExpectColumnValuesToMatchRegex {
            column: c,
            regex,
            mostly,
        } => {
            let re = regex::Regex::new(regex).map_err(|err| {
                Error::invalid("quality suite", format!("bad regex {regex:?}")).with_source(err)
            })?;
            let verdicts: Vec<(Option<bool>, Option<String>)> = texts(&column(batches, c)?)?
                .into_iter()
                .map(|v| match v {
                    None => (None, None),
                    Some(s) => (Some(re.is_match(&s)), Some(s)),
                })
                .collect();
            values_result(&verdicts, *mostly)
        }
        Expectation::ExpectColumnValuesToBeOfType { column: c, type_ } => {
            let arrays = column(batches, c)?;
            let dt = arrays
                .first()
                .map(|a| a.data_type().clone())
                .unwrap_or(DataType::Null);
            let name = format!("{dt}");
            let ok = match type_.to_ascii_lowercase().as_str() {
                "numeric" => dt.is_numeric(),
                "integer" => dt.is_integer(),
                "float" => dt.is_floating(),
                "string" => matches!(
                    dt,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ),
                "boolean" | "bool" => dt == DataType::Boolean,
                _ => name.eq_ignore_ascii_case(type_),
            };
            (ok, serde_json::json!({"observed_value": name}))
        }
        Expectation::ExpectTableColumnsToMatchSet {
            column_set,
            exact_match,
        } => {
            let first = batches
                .first()
                .ok_or_else(|| Error::invalid("data", "no batches given"))?;
            let have: Vec<String> = first
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let missing: Vec<&String> = column_set.iter().filter(|c| !have.contains(c)).collect();
            let extra: Vec<&String> = have.iter().filter(|c| !column_set.contains(c)).collect();
            let ok = missing.is_empty() && (!exact_match || extra.is_empty());
            (
                ok,
                serde_json::json!({"observed_value": have, "details": {"missing": missing, "unexpected": extra}}),
            )
        }
        Expectation::ExpectTableRowCountToBeBetween {
            min_value,
            max_value,
        } => {
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            let ok = min_value.is_none_or(|m| rows >= m) && max_value.is_none_or(|m| rows <= m);
            (ok, serde_json::json!({"observed_value": rows}))
        }
    };
    Ok(ExpectationResult {
        expectation: e.clone(),
        success,
        result,
    })
}
