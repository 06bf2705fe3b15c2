//! KernelSHAP over Arrow columns of any type: coalitions take whole columns (numbers, text,
//! categories) from the explained row or from the background rows, so models with string
//! inputs are explained as they are served.

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::datatypes::DataType as ArrowType;
use rayon::prelude::*;

use crate::columns::{PredictBatch, predict_batch_checked};
use crate::shap::{Explanation, KernelOptions, check_setup, close, expected, shapley_row};
use mlops_core::{Error, Result};

/// [`KernelExplainer`](crate::KernelExplainer)'s algorithm — shap's coalition plan and
/// weighting, exact enumeration when it fits, the efficiency constraint eliminated — with
/// features that are Arrow columns: a numeric column is "varying" when some background value
/// is not `allclose` to the row's, any other column when some background value differs as
/// text (nulls equal nulls). On numeric columns it gives the numeric explainer's values.
pub struct ColumnKernelExplainer<P> {
    model: P,
    columns: Vec<String>,
    background: RecordBatch,
    weights: Vec<f64>,
    options: KernelOptions,
    fnull: f64,
}

impl<P> std::fmt::Debug for ColumnKernelExplainer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnKernelExplainer")
            .field("columns", &self.columns)
            .field("background_rows", &self.background.num_rows())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn project(batch: &RecordBatch, columns: &[String], what: &'static str) -> Result<RecordBatch> {
    let schema = batch.schema();
    let indices = columns
        .iter()
        .map(|c| {
            schema
                .index_of(c)
                .map_err(|_| Error::invalid(what, format!("column {c:?} is not in the data")))
        })
        .collect::<Result<Vec<_>>>()?;
    batch
        .project(&indices)
        .map_err(|e| Error::backend("arrow", e))
}

fn text(array: &dyn Array) -> Result<ArrayRef> {
    arrow::compute::cast(array, &ArrowType::Utf8).map_err(|e| {
        Error::invalid(
            "feature column",
            format!("{} values cannot be compared", array.data_type()),
        )
        .with_source(e)
    })
}

/// Whether background column `bg` holds a value other than `x`'s (one row).
fn varies(bg: &dyn Array, x: &dyn Array) -> Result<bool> {
    if bg.data_type().is_numeric() {
        let (b, v) = (
            arrow::compute::cast(bg, &ArrowType::Float64)
                .map_err(|e| Error::backend("arrow", e))?,
            arrow::compute::cast(x, &ArrowType::Float64).map_err(|e| Error::backend("arrow", e))?,
        );
        let (b, v) = (
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(&b),
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(&v),
        );
        let xv = v.is_valid(0).then(|| v.value(0));
        return Ok(
            (0..b.len()).any(|i| match (b.is_valid(i).then(|| b.value(i)), xv) {
                (Some(a), Some(c)) => !close(c, a),
                (None, None) => false,
                _ => true,
            }),
        );
    }
    let (b, v) = (text(bg)?, text(x)?);
    let (b, v) = (
        arrow::array::AsArray::as_string::<i32>(&b),
        arrow::array::AsArray::as_string::<i32>(&v),
    );
    let xv = v.is_valid(0).then(|| v.value(0));
    Ok((0..b.len()).any(|i| b.is_valid(i).then(|| b.value(i)) != xv))
}

impl<P: PredictBatch> ColumnKernelExplainer<P> {
    /// An explainer of `model` over `columns` against the rows of `background` (equally
    /// weighted). The model is called with batches of exactly these columns.
    pub fn new(
        model: P,
        background: &RecordBatch,
        columns: &[&str],
        options: KernelOptions,
    ) -> Result<Self> {
        let weights = vec![1.0; background.num_rows()];
        Self::with_weights(model, background, columns, weights, options)
    }

    /// As [`new`](Self::new), with a weight per background row.
    pub fn with_weights(
        model: P,
        background: &RecordBatch,
        columns: &[&str],
        weights: Vec<f64>,
        options: KernelOptions,
    ) -> Result<Self> {
        if columns.is_empty() {
            return Err(Error::invalid("columns", "no columns to explain"));
        }
        let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        let background = project(background, &columns, "background")?;
        check_setup(background.num_rows(), &weights, &options)?;
        let f = predict_batch_checked(&model, &background)?;
        let fnull = expected(&f, &weights, options.link)?;
        Ok(Self {
            model,
            columns,
            background,
            weights,
            options,
            fnull,
        })
    }

    /// The expected output over the background, in the link's space.
    pub fn base_value(&self) -> f64 {
        self.options.link.apply(self.fnull)
    }

    /// The attributions of every row of `x` (which must hold the explained columns, of the
    /// background's types).
    pub fn explain(&self, x: &RecordBatch) -> Result<Explanation> {
        let x = project(x, &self.columns, "explained rows")?;
        for (a, b) in x
            .schema()
            .fields()
            .iter()
            .zip(self.background.schema().fields())
        {
            if a.data_type() != b.data_type() {
                return Err(Error::invalid(
                    "explained rows",
                    format!(
                        "column {:?} is {} in the rows and {} in the background",
                        a.name(),
                        a.data_type(),
                        b.data_type()
                    ),
                ));
            }
        }
        let fx = predict_batch_checked(&self.model, &x)?;
        let link = self.options.link;
        link.check(&fx)?;
        let values = (0..x.num_rows())
            .into_par_iter()
            .map(|i| self.explain_row(&x.slice(i, 1), fx[i], i as u64))
            .collect::<Result<Vec<_>>>()?;
        Ok(Explanation::new(
            self.columns.clone(),
            self.base_value(),
            values,
            fx.iter().map(|v| link.apply(*v)).collect(),
        ))
    }

    fn explain_row(&self, x: &RecordBatch, fx: f64, row: u64) -> Result<Vec<f64>> {
        let width = self.columns.len();
        let mut varying = Vec::new();
        for j in 0..width {
            if varies(self.background.column(j).as_ref(), x.column(j).as_ref())? {
                varying.push(j);
            }
        }
        shapley_row(
            width,
            &varying,
            fx,
            self.fnull,
            &self.options,
            row,
            |masks| self.evaluate(x, &varying, masks),
        )
    }

    /// The weighted mean output over the background of each coalition's synthetic rows.
    fn evaluate(
        &self,
        x: &RecordBatch,
        varying: &[usize],
        masks: &[Vec<bool>],
    ) -> Result<Vec<f64>> {
        let bg = &self.background;
        let n = bg.num_rows();
        let total_w: f64 = self.weights.iter().sum();
        // ~64k synthetic rows per model call.
        let per_call = ((1usize << 16) / n.max(1)).max(1);
        // Which varying slot each column is, if any.
        let mut slot = vec![None; self.columns.len()];
        for (k, &j) in varying.iter().enumerate() {
            slot[j] = Some(k);
        }
        let mut ey = Vec::with_capacity(masks.len());
        for chunk in masks.chunks(per_call) {
            let rows = chunk.len() * n;
            let arrays = (0..self.columns.len())
                .map(|j| {
                    let indices: Vec<(usize, usize)> = match slot[j] {
                        None => (0..rows).map(|r| (0, r % n)).collect(),
                        Some(k) => chunk
                            .iter()
                            .flat_map(|mask| {
                                (0..n).map(move |b| if mask[k] { (1, 0) } else { (0, b) })
                            })
                            .collect(),
                    };
                    arrow::compute::interleave(
                        &[bg.column(j).as_ref(), x.column(j).as_ref()],
                        &indices,
                    )
                    .map_err(|e| Error::backend("arrow", e))
                })
                .collect::<Result<Vec<_>>>()?;
            let synth = RecordBatch::try_new(bg.schema(), arrays)
                .map_err(|e| Error::backend("arrow", e))?;
            let f = predict_batch_checked(&self.model, &synth)?;
            self.options.link.check(&f)?;
            for c in 0..chunk.len() {
                let s: f64 = f[c * n..(c + 1) * n]
                    .iter()
                    .zip(&self.weights)
                    .map(|(f, w)| f * w)
                    .sum();
                ey.push(s / total_w);
            }
        }
        Ok(ey)
    }
}

/// `k` rows of `batch` drawn without replacement (the batch form of
/// [`sample_background`](crate::sample_background), with the same draw); all rows when there
/// are no more than `k`.
pub fn sample_rows(batch: &RecordBatch, k: usize, seed: u64) -> Result<RecordBatch> {
    if k == 0 {
        return Err(Error::invalid("background", "a background of 0 rows"));
    }
    let n = batch.num_rows();
    if n <= k {
        return Ok(batch.clone());
    }
    let idx = crate::shap::sample_indices(n, k, seed);
    let indices = UInt32Array::from_iter_values(idx.iter().map(|&i| i as u32));
    arrow::compute::take_record_batch(batch, &indices).map_err(|e| Error::backend("arrow", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::{Features, KernelExplainer};
    use arrow::array::{AsArray, Float64Array, StringArray};

    fn batch(a: Vec<f64>, b: Vec<f64>, plan: Vec<&str>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
            ("b", Arc::new(Float64Array::from(b))),
            ("plan", Arc::new(StringArray::from(plan))),
        ])
        .unwrap()
    }

    fn nums(batch: &RecordBatch, name: &str) -> Vec<f64> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn numeric_columns_give_the_numeric_explainers_values() {
        let bg = batch(vec![0.0, 1.0, 3.0], vec![2.0, -1.0, 0.5], vec!["x"; 3]);
        let x = batch(vec![2.0, -1.0], vec![1.0, 4.0], vec!["x"; 2]);
        // Not additive: the interaction makes the Shapley values differ from a linear split.
        let on_batch = |b: &RecordBatch| -> Result<Vec<f64>> {
            Ok(nums(b, "a")
                .iter()
                .zip(nums(b, "b"))
                .map(|(a, b)| a * b + a)
                .collect())
        };
        let on_matrix = |f: &Features| -> Result<Vec<f64>> {
            Ok((0..f.rows())
                .map(|i| f.row(i)[0] * f.row(i)[1] + f.row(i)[0])
                .collect())
        };
        let by_columns =
            ColumnKernelExplainer::new(on_batch, &bg, &["a", "b"], KernelOptions::default())
                .unwrap()
                .explain(&x)
                .unwrap();
        let names = vec!["a".to_owned(), "b".to_owned()];
        let fbg = Features::new(names.clone(), vec![0.0, 2.0, 1.0, -1.0, 3.0, 0.5]).unwrap();
        let fx = Features::new(names, vec![2.0, 1.0, -1.0, 4.0]).unwrap();
        let by_matrix = KernelExplainer::new(on_matrix, fbg, KernelOptions::default())
            .unwrap()
            .explain(&fx)
            .unwrap();
        for (r, s) in by_columns.values.iter().zip(&by_matrix.values) {
            for (p, q) in r.iter().zip(s) {
                assert!((p - q).abs() < 1e-12, "{p} vs {q}");
            }
        }
        assert!(by_columns.additivity_error < 1e-12);
    }

    #[test]
    fn text_columns_get_their_share() {
        // f = 2a + [plan = "pro"]: additive, so φ_a = 2(a − mean a), φ_plan = [pro] − P(pro).
        let bg = batch(
            vec![0.0, 1.0, 2.0, 3.0],
            vec![0.0; 4],
            vec!["pro", "basic", "basic", "basic"],
        );
        let x = batch(vec![3.0], vec![0.0], vec!["pro"]);
        let f = |b: &RecordBatch| -> Result<Vec<f64>> {
            let plan = b.column_by_name("plan").unwrap().as_string::<i32>().clone();
            Ok(nums(b, "a")
                .iter()
                .enumerate()
                .map(|(i, a)| 2.0 * a + f64::from(u8::from(plan.value(i) == "pro")))
                .collect())
        };
        let e = ColumnKernelExplainer::new(f, &bg, &["a", "b", "plan"], KernelOptions::default())
            .unwrap()
            .explain(&x)
            .unwrap();
        assert!((e.values[0][0] - 2.0 * (3.0 - 1.5)).abs() < 1e-12, "{e:?}");
        assert_eq!(e.values[0][1], 0.0, "b never varies");
        assert!((e.values[0][2] - (1.0 - 0.25)).abs() < 1e-12, "{e:?}");
        let wrong = batch(vec![1.0], vec![0.0], vec!["pro"])
            .project(&[0, 1])
            .unwrap();
        let err = ColumnKernelExplainer::new(f, &bg, &["a", "b", "plan"], KernelOptions::default())
            .unwrap()
            .explain(&wrong)
            .unwrap_err();
        assert!(err.to_string().contains("\"plan\""), "{err}");
        assert_eq!(sample_rows(&bg, 2, 1).unwrap().num_rows(), 2);
    }
}
