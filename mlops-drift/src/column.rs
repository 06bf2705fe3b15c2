//! Pulling one column out of Arrow batches as finite numbers or as category labels, dropping
//! nulls, NaN and ±infinity as Evidently does.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use mlops_core::{Error, Result};

/// Whether Arrow values of this type are numbers, labels, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Physical {
    Float,
    Integer,
    Boolean,
    Text,
}

pub(crate) fn physical(dt: &DataType) -> Option<Physical> {
    match dt {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Some(Physical::Float),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Some(Physical::Integer),
        DataType::Boolean => Some(Physical::Boolean),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Physical::Text),
        DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8) => {
            Some(Physical::Text)
        }
        _ => None,
    }
}

/// The arrays of column `name` across batches; [`Error::InvalidArgument`] when a batch lacks it.
pub(crate) fn arrays<'a>(
    batches: &'a [RecordBatch],
    name: &str,
    side: &str,
) -> Result<Vec<&'a ArrayRef>> {
    batches
        .iter()
        .map(|b| {
            b.column_by_name(name).ok_or_else(|| {
                Error::invalid("column", format!("{side} data has no column {name:?}"))
            })
        })
        .collect()
}

/// Column values as finite `f64`s (numbers only), and how many were missing.
pub(crate) fn numbers(arrays: &[&ArrayRef], name: &str) -> Result<(Vec<f64>, u64)> {
    let mut out = Vec::with_capacity(arrays.iter().map(|a| a.len()).sum());
    let mut missing = 0u64;
    for a in arrays {
        if a.logical_null_count() == a.len() {
            // All missing: its type (null, or a reader's guess for an empty column) says nothing.
            missing += a.len() as u64;
            continue;
        }
        let before = out.len();
        macro_rules! push {
            ($t:ty) => {{
                let arr = a.as_primitive::<$t>();
                for v in arr.iter() {
                    match v {
                        Some(v) => {
                            let f = v as f64;
                            if f.is_finite() {
                                out.push(f);
                            }
                        }
                        None => {}
                    }
                }
            }};
        }
        match a.data_type() {
            DataType::Float16 => {
                for v in a.as_primitive::<Float16Type>().iter().flatten() {
                    let f = f64::from(v);
                    if f.is_finite() {
                        out.push(f);
                    }
                }
            }
            DataType::Float32 => push!(Float32Type),
            DataType::Float64 => push!(Float64Type),
            DataType::Int8 => push!(Int8Type),
            DataType::Int16 => push!(Int16Type),
            DataType::Int32 => push!(Int32Type),
            DataType::Int64 => push!(Int64Type),
            DataType::UInt8 => push!(UInt8Type),
            DataType::UInt16 => push!(UInt16Type),
            DataType::UInt32 => push!(UInt32Type),
            DataType::UInt64 => push!(UInt64Type),
            other => {
                return Err(Error::invalid(
                    "column",
                    format!("{name:?} is {other}, not numeric; treat it as categorical"),
                ));
            }
        }
        missing += (a.len() - (out.len() - before)) as u64;
    }
    Ok((out, missing))
}

/// Column values as labels (numbers print as Python would print them), and how many were
/// missing.
pub(crate) fn labels(arrays: &[&ArrayRef], name: &str) -> Result<(Vec<String>, u64)> {
    let mut out = Vec::new();
    let mut missing = 0u64;
    for a in arrays {
        if a.logical_null_count() == a.len() {
            // All missing: its type (null, or a reader's guess for an empty column) says nothing.
            missing += a.len() as u64;
            continue;
        }
        let before = out.len();
        match physical(a.data_type()) {
            Some(Physical::Text) => {
                let cast = arrow::compute::cast(a, &DataType::Utf8)
                    .map_err(|e| Error::invalid("column", format!("{name:?}")).with_source(e))?;
                for v in cast.as_string::<i32>().iter().flatten() {
                    out.push(v.to_string());
                }
            }
            Some(Physical::Boolean) => {
                for v in a.as_boolean().iter().flatten() {
                    out.push(if v { "True" } else { "False" }.to_string());
                }
            }
            Some(Physical::Integer | Physical::Float) => {
                let (nums, _) = numbers(&[*a], name)?;
                let integer = physical(a.data_type()) == Some(Physical::Integer);
                for v in nums {
                    out.push(number_label(v, integer));
                }
            }
            None => {
                return Err(Error::invalid(
                    "column",
                    format!(
                        "{name:?} has type {}, which drift tests do not handle",
                        a.data_type()
                    ),
                ));
            }
        }
        missing += (a.len() - (out.len() - before)) as u64;
    }
    Ok((out, missing))
}

/// `3` for integers, `2.5` / `3.0` for floats (Python's `str`).
pub(crate) fn number_label(v: f64, integer: bool) -> String {
    if integer {
        format!("{}", v as i64)
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
