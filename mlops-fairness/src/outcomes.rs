//! Binary outcomes: the true and predicted labels of every row, and optional instance weights.

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::DataType;
use mlops_core::{Error, Result};

/// True and predicted binary labels per row (`true` is the positive label), with optional
/// non-negative instance weights (AIF360's `instance_weights`, fairlearn's `sample_weight`).
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryOutcomes {
    pub(crate) y_true: Vec<bool>,
    pub(crate) y_pred: Vec<bool>,
    pub(crate) weights: Option<Vec<f64>>,
}

impl BinaryOutcomes {
    /// Outcomes from booleans (`true` = positive).
    pub fn from_bools(y_true: Vec<bool>, y_pred: Vec<bool>) -> Result<Self> {
        if y_true.len() != y_pred.len() {
            return Err(Error::invalid(
                "y_pred",
                format!("has {} labels, y_true {}", y_pred.len(), y_true.len()),
            ));
        }
        if y_true.is_empty() {
            return Err(Error::invalid("y_true", "no rows"));
        }
        Ok(Self {
            y_true,
            y_pred,
            weights: None,
        })
    }

    /// Outcomes from integer labels, `pos_label` being the positive one.
    ///
    /// Together, `y_true` and `y_pred` may hold `pos_label` and at most one other value (as
    /// fairlearn checks the union of both); a third value is [`Error::InvalidArgument`] naming
    /// the array and the values found.
    pub fn from_labels(y_true: &[i64], y_pred: &[i64], pos_label: i64) -> Result<Self> {
        let mut distinct: Vec<i64> = y_true.iter().chain(y_pred).copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let negatives: Vec<i64> = distinct
            .iter()
            .copied()
            .filter(|&v| v != pos_label)
            .collect();
        if negatives.len() > 1 {
            let which = if binary(y_true, pos_label) {
                "y_pred"
            } else {
                "y_true"
            };
            let shown: Vec<String> = distinct.iter().take(10).map(i64::to_string).collect();
            return Err(Error::invalid(
                which,
                format!(
                    "binary metrics need two labels (the positive one is {pos_label}); the labels hold {} distinct values: {}",
                    distinct.len(),
                    shown.join(", ")
                ),
            ));
        }
        Self::from_bools(
            y_true.iter().map(|&v| v == pos_label).collect(),
            y_pred.iter().map(|&v| v == pos_label).collect(),
        )
    }

    /// Outcomes from two integer or boolean columns of `batch`.
    pub fn from_batch(
        batch: &RecordBatch,
        target: &str,
        prediction: &str,
        pos_label: i64,
    ) -> Result<Self> {
        let y_true = label_column(batch, target)?;
        let y_pred = label_column(batch, prediction)?;
        Self::from_labels(&y_true, &y_pred, pos_label)
    }

    /// Sets instance weights: one finite, non-negative number per row, not all zero.
    pub fn with_weights(mut self, weights: Vec<f64>) -> Result<Self> {
        if weights.len() != self.y_true.len() {
            return Err(Error::invalid(
                "weights",
                format!("{} weights for {} rows", weights.len(), self.y_true.len()),
            ));
        }
        if let Some(row) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(Error::invalid(
                "weights",
                format!(
                    "the weight of row {row} is {}: weights are finite and non-negative",
                    weights[row]
                ),
            ));
        }
        if weights.iter().all(|w| *w == 0.0) {
            return Err(Error::invalid("weights", "every weight is zero"));
        }
        self.weights = Some(weights);
        Ok(self)
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.y_true.len()
    }

    /// Whether there are no rows (never: construction refuses it).
    pub fn is_empty(&self) -> bool {
        self.y_true.is_empty()
    }

    pub(crate) fn weight(&self, row: usize) -> f64 {
        self.weights.as_ref().map_or(1.0, |w| w[row])
    }
}

fn binary(values: &[i64], pos_label: i64) -> bool {
    let mut other = None;
    for &v in values {
        if v == pos_label {
            continue;
        }
        match other {
            None => other = Some(v),
            Some(o) if o == v => {}
            Some(_) => return false,
        }
    }
    true
}

/// The instance weights in column `name` of `batch` (any numeric type), for
/// [`BinaryOutcomes::with_weights`].
pub fn weight_column(batch: &RecordBatch, name: &str) -> Result<Vec<f64>> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::invalid("weight column", format!("{name:?} is not in the data")))?;
    if !column.data_type().is_numeric() {
        return Err(Error::invalid(
            "weight column",
            format!("{name:?} is {}, not numbers", column.data_type()),
        ));
    }
    if let Some(row) = (0..column.len()).find(|&i| column.is_null(i)) {
        return Err(Error::invalid(
            "weight column",
            format!("{name:?} is null at row {row}"),
        ));
    }
    let floats = arrow::compute::cast(column, &DataType::Float64)
        .map_err(|e| Error::invalid("weight column", format!("{name:?}")).with_source(e))?;
    let floats = floats
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .ok_or_else(|| Error::invalid("weight column", format!("{name:?}: not numbers")))?;
    Ok(floats.values().to_vec())
}

fn label_column(batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::invalid("label column", format!("{name:?} is not in the data")))?;
    if column.data_type().is_floating() {
        // Casting would truncate a score column (0.7 → 0) into labels without a word.
        let floats = arrow::compute::cast(column, &DataType::Float64)
            .map_err(|e| Error::invalid("label column", format!("{name:?}")).with_source(e))?;
        let floats = floats
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .ok_or_else(|| Error::invalid("label column", format!("{name:?}: not numbers")))?;
        if let Some((row, v)) = floats.iter().enumerate().find_map(|(i, v)| {
            v.filter(|v| v.fract() != 0.0 || !v.is_finite())
                .map(|v| (i, v))
        }) {
            return Err(Error::invalid(
                "label column",
                format!(
                    "{name:?} holds {v} at row {row}: binary metrics take labels, not scores (threshold them first)"
                ),
            ));
        }
    }
    if let Some(row) = (0..column.len()).find(|&i| column.is_null(i)) {
        return Err(Error::invalid(
            "label column",
            format!("{name:?} is null at row {row}"),
        ));
    }
    let ints = arrow::compute::cast(column, &DataType::Int64).map_err(|e| {
        Error::invalid(
            "label column",
            format!(
                "{name:?} of type {} is not integer or boolean labels",
                column.data_type()
            ),
        )
        .with_source(e)
    })?;
    if ints.null_count() > 0 {
        return Err(Error::invalid(
            "label column",
            format!(
                "{name:?} of type {} holds values that are not integer labels",
                column.data_type()
            ),
        ));
    }
    let ints = ints
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::invalid("label column", format!("{name:?}: not integers")))?;
    Ok(ints.values().to_vec())
}
