//! Explanations over Arrow columns of any type: a model fed record batches through its
//! signature, and permutation importance that shuffles whole columns (text and categories
//! included), so models with string inputs are explained as they are served.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt32Array};
use mlops_core::model::Model;
use mlops_core::signature::Schema;
use mlops_core::{Error, Result};
use rayon::prelude::*;

use crate::importance::{FeatureImportance, Importances, PermutationOptions, Scorer, plan};

/// A model as column-level explainers see it: a record batch in, one number per row out.
/// Closures `Fn(&RecordBatch) -> Result<Vec<f64>>` are batch predictors.
pub trait PredictBatch: Sync {
    /// One output per row of `batch`.
    fn predict_batch(&self, batch: &RecordBatch) -> Result<Vec<f64>>;
}

impl<F> PredictBatch for F
where
    F: Fn(&RecordBatch) -> Result<Vec<f64>> + Sync,
{
    fn predict_batch(&self, batch: &RecordBatch) -> Result<Vec<f64>> {
        self(batch)
    }
}

/// Any [`Model`] fed Arrow columns: each input of its signature is taken from the column of
/// the same name (any type the model accepts, strings included), and one column of one output
/// comes back, as [`ModelFunction`](crate::ModelFunction) does for numeric matrices.
#[derive(Debug, Clone)]
pub struct ModelColumns {
    model: Arc<dyn Model>,
    inputs: Vec<String>,
    output: String,
    column: usize,
}

impl ModelColumns {
    /// `model`'s output `output`, column `column` (0 for a `[n]` output; the positive class's
    /// probability of a two-class `[n, 2]` output is column 1). A signature without named
    /// inputs is [`Error::NotSupported`].
    pub fn new(model: Arc<dyn Model>, output: impl Into<String>, column: usize) -> Result<Self> {
        let names: Vec<Option<String>> = match &model.signature().inputs {
            Schema::Columns(specs) => specs.iter().map(|s| s.name.clone()).collect(),
            Schema::Tensors(specs) => specs.iter().map(|s| s.name.clone()).collect(),
        };
        let inputs = names
            .into_iter()
            .map(|n| {
                n.filter(|n| !n.is_empty()).ok_or_else(|| {
                    Error::not_supported(
                        "model signature",
                        model.flavor(),
                        "an unnamed input: columns are matched to inputs by name",
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            model,
            inputs,
            output: output.into(),
            column,
        })
    }

    /// The model's input names, which are the columns it reads.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }
}

impl PredictBatch for ModelColumns {
    fn predict_batch(&self, batch: &RecordBatch) -> Result<Vec<f64>> {
        let rows = batch.num_rows();
        let inputs = mlops_core::arrow::tensors_by_name(batch, &self.inputs)?;
        let outputs = self.model.predict(&inputs)?;
        crate::features::output_column(&outputs, &self.output, self.column, rows)
    }
}

pub(crate) fn predict_batch_checked(p: &dyn PredictBatch, batch: &RecordBatch) -> Result<Vec<f64>> {
    let out = p.predict_batch(batch)?;
    crate::features::check_predictions(out, batch.num_rows())
}

fn take(batch: &RecordBatch, rows: &[usize]) -> Result<RecordBatch> {
    let indices = UInt32Array::from_iter_values(rows.iter().map(|&r| r as u32));
    arrow::compute::take_record_batch(batch, &indices).map_err(|e| Error::backend("arrow", e))
}

/// [`permutation_importance`](crate::permutation_importance) over the Arrow columns `columns`
/// of `batch`, of any type: each repeat reorders one whole column (nulls travel with their
/// values) and asks `model` again. With the same options it draws the same row subsample and
/// shuffles as the numeric version, so on numeric columns both give the same numbers.
pub fn permutation_importance_columns(
    model: &dyn PredictBatch,
    batch: &RecordBatch,
    columns: &[&str],
    y: &[f64],
    scorer: Scorer<'_>,
    options: &PermutationOptions,
) -> Result<Importances> {
    let n = batch.num_rows();
    if y.len() != n {
        return Err(Error::invalid(
            "y",
            format!("{} targets for {n} rows", y.len()),
        ));
    }
    if n == 0 {
        return Err(Error::invalid("data", "no rows"));
    }
    if n > u32::MAX as usize {
        return Err(Error::invalid(
            "data",
            format!("{n} rows: at most {} per call", u32::MAX),
        ));
    }
    if columns.is_empty() {
        return Err(Error::invalid("columns", "no columns to permute"));
    }
    let positions = columns
        .iter()
        .map(|c| {
            batch
                .schema()
                .index_of(c)
                .map_err(|_| Error::invalid("feature column", format!("{c:?} is not in the data")))
        })
        .collect::<Result<Vec<_>>>()?;
    let (rows, orders) = plan(n, options)?;
    let baseline = scorer(y, &predict_batch_checked(model, batch)?)?;
    let (xs, ys) = match &rows {
        None => (batch.clone(), y.to_vec()),
        Some(r) => (take(batch, r)?, r.iter().map(|&i| y[i]).collect()),
    };
    let features = positions
        .par_iter()
        .zip(columns.par_iter())
        .map(|(&j, name)| {
            let mut drops = Vec::with_capacity(orders.len());
            for order in &orders {
                let indices = UInt32Array::from_iter_values(order.iter().map(|&r| r as u32));
                let permuted = arrow::compute::take(xs.column(j).as_ref(), &indices, None)
                    .map_err(|e| Error::backend("arrow", e))?;
                let mut arrays: Vec<Arc<dyn Array>> = xs.columns().to_vec();
                arrays[j] = permuted;
                let shuffled = RecordBatch::try_new(xs.schema(), arrays)
                    .map_err(|e| Error::backend("arrow", e))?;
                let score = scorer(&ys, &predict_batch_checked(model, &shuffled)?)?;
                drops.push(baseline - score);
            }
            Ok(FeatureImportance::from_drops((*name).to_owned(), drops))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Importances { baseline, features })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Features, Shuffles, permutation_importance};
    use arrow::array::{Float64Array, StringArray};

    fn batch() -> RecordBatch {
        let a: Vec<f64> = (0..40).map(|i| f64::from(i % 7) - 3.0).collect();
        let b: Vec<f64> = (0..40).map(|i| f64::from((i * 5) % 11)).collect();
        RecordBatch::try_from_iter([
            ("a", Arc::new(Float64Array::from(a)) as Arc<dyn Array>),
            ("b", Arc::new(Float64Array::from(b))),
        ])
        .unwrap()
    }

    fn col(batch: &RecordBatch, name: &str) -> Vec<f64> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    #[test]
    fn columns_and_matrix_permutations_agree_on_numbers() {
        let batch = batch();
        let y: Vec<f64> = col(&batch, "a")
            .iter()
            .zip(col(&batch, "b"))
            .map(|(a, b)| 2.0 * a + 0.1 * b)
            .collect();
        let neg_mse = |y: &[f64], p: &[f64]| -> Result<f64> {
            Ok(-y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / y.len() as f64)
        };
        let options = PermutationOptions {
            n_repeats: 4,
            max_samples: crate::MaxSamples::Count(30),
            shuffles: Shuffles::Seeded(9),
        };
        let on_columns = |b: &RecordBatch| -> Result<Vec<f64>> {
            Ok(col(b, "a")
                .iter()
                .zip(col(b, "b"))
                .map(|(a, b)| 2.0 * a + 0.1 * b)
                .collect())
        };
        let on_matrix = |x: &Features| -> Result<Vec<f64>> {
            Ok((0..x.rows())
                .map(|i| 2.0 * x.row(i)[0] + 0.1 * x.row(i)[1])
                .collect())
        };
        let by_columns = permutation_importance_columns(
            &on_columns,
            &batch,
            &["a", "b"],
            &y,
            &neg_mse,
            &options,
        )
        .unwrap();
        let x = Features::from_batch(&batch, &["a", "b"]).unwrap();
        let by_matrix = permutation_importance(&on_matrix, &x, &y, &neg_mse, &options).unwrap();
        assert_eq!(by_columns, by_matrix);
        assert!(by_columns.features[0].mean > by_columns.features[1].mean);
    }

    #[test]
    fn text_columns_are_permuted_whole() {
        let words: Vec<&str> = (0..30)
            .map(|i| if i % 3 == 0 { "pro" } else { "basic" })
            .collect();
        let batch = RecordBatch::try_from_iter([(
            "plan",
            Arc::new(StringArray::from(words.clone())) as Arc<dyn Array>,
        )])
        .unwrap();
        let y: Vec<f64> = words
            .iter()
            .map(|w| f64::from(u8::from(*w == "pro")))
            .collect();
        let predict = |b: &RecordBatch| -> Result<Vec<f64>> {
            Ok(b.column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .map(|w| f64::from(u8::from(w == Some("pro"))))
                .collect())
        };
        let accuracy = |y: &[f64], p: &[f64]| -> Result<f64> {
            Ok(y.iter().zip(p).filter(|(a, b)| a == b).count() as f64 / y.len() as f64)
        };
        let imp = permutation_importance_columns(
            &predict,
            &batch,
            &["plan"],
            &y,
            &accuracy,
            &PermutationOptions::default(),
        )
        .unwrap();
        assert_eq!(imp.baseline, 1.0);
        assert!(imp.features[0].mean > 0.1, "{imp:?}");
        let missing = permutation_importance_columns(
            &predict,
            &batch,
            &["tier"],
            &y,
            &accuracy,
            &PermutationOptions::default(),
        )
        .unwrap_err();
        assert!(missing.to_string().contains("\"tier\""), "{missing}");
    }
}
