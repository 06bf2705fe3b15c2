//! The numeric feature matrix explainers perturb, and the prediction function they call.

use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType as ArrowType;
use mlops_core::model::Model;
use mlops_core::signature::{ColumnType, Schema};
use mlops_core::{DataType, Error, Result, Tensor};

/// Named numeric features, row-major: `rows × names.len()` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    names: Vec<String>,
    rows: usize,
    values: Vec<f64>,
}

impl Features {
    /// Features from row-major values; every value finite.
    pub fn new(names: Vec<String>, values: Vec<f64>) -> Result<Self> {
        if names.is_empty() {
            return Err(Error::invalid("features", "no feature names"));
        }
        if !values.len().is_multiple_of(names.len()) {
            return Err(Error::invalid(
                "features",
                format!(
                    "{} values do not fill rows of {} features",
                    values.len(),
                    names.len()
                ),
            ));
        }
        let rows = values.len() / names.len();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "features",
                format!(
                    "{:?} is {} at row {}",
                    names[i % names.len()],
                    values[i],
                    i / names.len()
                ),
            ));
        }
        Ok(Self {
            names,
            rows,
            values,
        })
    }

    /// The numeric columns `columns` of `batch` (integers, floats, booleans), as f64. A missing
    /// or non-numeric column, or a null, is [`Error::InvalidArgument`] naming it.
    pub fn from_batch(batch: &RecordBatch, columns: &[&str]) -> Result<Self> {
        let width = columns.len();
        let rows = batch.num_rows();
        let mut values = vec![0.0; rows * width];
        for (j, name) in columns.iter().enumerate() {
            let column = batch.column_by_name(name).ok_or_else(|| {
                Error::invalid("feature column", format!("{name:?} is not in the data"))
            })?;
            if !(column.data_type().is_numeric() || *column.data_type() == ArrowType::Boolean) {
                return Err(Error::invalid(
                    "feature column",
                    format!(
                        "{name:?} is {}: explainers perturb numeric features (encode it first)",
                        column.data_type()
                    ),
                ));
            }
            if let Some(row) = (0..rows).find(|&i| column.is_null(i)) {
                return Err(Error::invalid(
                    "feature column",
                    format!("{name:?} is null at row {row}"),
                ));
            }
            let t = mlops_core::arrow::tensor_from_array(name, column.as_ref())?;
            for (i, v) in t.to_f64_lossy()?.into_iter().enumerate() {
                values[i * width + j] = v;
            }
        }
        Self::new(columns.iter().map(|c| (*c).to_owned()).collect(), values)
    }

    /// The feature names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of features.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.width()..(i + 1) * self.width()]
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        let mut values = Vec::with_capacity(indices.len() * self.width());
        for &i in indices {
            if i >= self.rows {
                return Err(Error::invalid(
                    "rows",
                    format!("row {i} of {} rows", self.rows),
                ));
            }
            values.extend_from_slice(self.row(i));
        }
        Ok(Self {
            names: self.names.clone(),
            rows: indices.len(),
            values,
        })
    }

    pub(crate) fn from_parts(names: Vec<String>, rows: usize, values: Vec<f64>) -> Self {
        debug_assert_eq!(values.len(), rows * names.len());
        Self {
            names,
            rows,
            values,
        }
    }

    pub(crate) fn values_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }

    pub(crate) fn check_same_features(&self, other: &Features, what: &'static str) -> Result<()> {
        if self.names != other.names {
            return Err(Error::invalid(
                what,
                format!(
                    "has features [{}], the explainer [{}]",
                    other.names.join(", "),
                    self.names.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// A model as explainers see it: features in, one number per row out (a score, a probability,
/// a regression value). Closures `Fn(&Features) -> Result<Vec<f64>>` are predictors.
pub trait Predict: Sync {
    /// One output per row of `x`.
    fn predict(&self, x: &Features) -> Result<Vec<f64>>;
}

impl<F> Predict for F
where
    F: Fn(&Features) -> Result<Vec<f64>> + Sync,
{
    fn predict(&self, x: &Features) -> Result<Vec<f64>> {
        self(x)
    }
}

pub(crate) fn predict_checked(p: &dyn Predict, x: &Features) -> Result<Vec<f64>> {
    check_predictions(p.predict(x)?, x.rows())
}

/// `out`, when it holds one finite number per row.
pub(crate) fn check_predictions(out: Vec<f64>, rows: usize) -> Result<Vec<f64>> {
    if out.len() != rows {
        return Err(Error::invalid(
            "predictions",
            format!("{} predictions for {rows} rows", out.len()),
        ));
    }
    if let Some(row) = out.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "predictions",
            format!(
                "the model answered {} for row {row}: explainers need finite outputs",
                out[row]
            ),
        ));
    }
    Ok(out)
}

/// Column `column` of the output `output` of a prediction over `rows` rows.
pub(crate) fn output_column(
    outputs: &[Tensor],
    output: &str,
    column: usize,
    rows: usize,
) -> Result<Vec<f64>> {
    let out = outputs.iter().find(|t| t.name() == output).ok_or_else(|| {
        let names: Vec<&str> = outputs.iter().map(Tensor::name).collect();
        Error::invalid(
            "model output",
            format!(
                "{output:?} is not an output of the model (it has: {})",
                names.join(", ")
            ),
        )
    })?;
    let values = out.to_f64_lossy()?;
    let shape = out.shape();
    let width: usize = shape.iter().skip(1).product();
    if shape.first() != Some(&rows) || values.len() != rows * width || width == 0 {
        return Err(Error::invalid(
            "model output",
            format!(
                "{output:?} has shape {shape:?} for {rows} rows: one row of values per input row is needed"
            ),
        ));
    }
    if column >= width {
        return Err(Error::invalid(
            "model output",
            format!("column {column} of {output:?}, which has {width}"),
        ));
    }
    Ok((0..rows).map(|i| values[i * width + column]).collect())
}

#[derive(Debug, Clone)]
enum Layout {
    /// One `[n, width]` tensor.
    Matrix { name: String, datatype: DataType },
    /// One `[n]` tensor per feature, by name.
    Columns(Vec<(String, DataType)>),
}

/// Any [`Model`] (linear, candle, ONNX, …) as a [`Predict`]: features go in through the
/// model's signature, and one column of one output comes back.
#[derive(Debug, Clone)]
pub struct ModelFunction {
    model: Arc<dyn Model>,
    layout: Layout,
    output: String,
    column: usize,
}

impl ModelFunction {
    /// `model`'s output `output`, column `column` (0 for a `[n]` output; the positive class's
    /// probability of a two-class `[n, 2]` output is column 1).
    ///
    /// The inputs are read from the signature: one `[-1, width]` tensor takes the feature
    /// matrix; otherwise each input is a feature column, matched by name when called. A text
    /// input is [`Error::NotSupported`]: explainers perturb numbers.
    pub fn new(model: Arc<dyn Model>, output: impl Into<String>, column: usize) -> Result<Self> {
        let output = output.into();
        let layout = match &model.signature().inputs {
            Schema::Tensors(specs) if specs.len() == 1 && specs[0].shape.len() == 2 => {
                Layout::Matrix {
                    name: specs[0].name.clone().unwrap_or_default(),
                    datatype: specs[0].datatype,
                }
            }
            Schema::Tensors(specs) => Layout::Columns(
                specs
                    .iter()
                    .map(|s| Ok((s.name.clone().unwrap_or_default(), numeric(s.datatype)?)))
                    .collect::<Result<_>>()?,
            ),
            Schema::Columns(specs) => Layout::Columns(
                specs
                    .iter()
                    .map(|s| {
                        let name = s.name.clone().unwrap_or_default();
                        let datatype = match s.col_type {
                            ColumnType::Boolean => DataType::Bool,
                            ColumnType::Integer => DataType::Int32,
                            ColumnType::Long => DataType::Int64,
                            ColumnType::Float => DataType::Fp32,
                            ColumnType::Double => DataType::Fp64,
                            other => {
                                return Err(Error::not_supported(
                                    "model input",
                                    &name,
                                    format!(
                                        "a {} input: explainers perturb numeric features",
                                        other.as_str()
                                    ),
                                ));
                            }
                        };
                        Ok((name, datatype))
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        Ok(Self {
            model,
            layout,
            output,
            column,
        })
    }
}

fn numeric(datatype: DataType) -> Result<DataType> {
    if datatype == DataType::Bytes {
        return Err(Error::not_supported(
            "model input",
            "BYTES",
            "explainers perturb numeric features",
        ));
    }
    Ok(datatype)
}

pub(crate) fn tensor(
    name: &str,
    datatype: DataType,
    shape: Vec<usize>,
    values: &[f64],
) -> Result<Tensor> {
    match datatype {
        DataType::Fp64 => Tensor::from_f64(name, shape, values),
        DataType::Fp32 => {
            let v: Vec<f32> = values.iter().map(|v| *v as f32).collect();
            Tensor::from_f32(name, shape, &v)
        }
        DataType::Int64 => {
            let v: Vec<i64> = values.iter().map(|v| v.round() as i64).collect();
            Tensor::from_i64(name, shape, &v)
        }
        DataType::Int32 => {
            let v: Vec<i32> = values.iter().map(|v| v.round() as i32).collect();
            Tensor::from_i32(name, shape, &v)
        }
        DataType::Bool => {
            let v: Vec<bool> = values.iter().map(|v| *v != 0.0).collect();
            Tensor::from_bool(name, shape, &v)
        }
        other => Err(Error::not_supported(
            "model input",
            name,
            format!("{other:?} inputs are not built from features"),
        )),
    }
}

impl Predict for ModelFunction {
    fn predict(&self, x: &Features) -> Result<Vec<f64>> {
        let rows = x.rows();
        let inputs = match &self.layout {
            Layout::Matrix { name, datatype } => {
                vec![tensor(name, *datatype, vec![rows, x.width()], x.values())?]
            }
            Layout::Columns(columns) => columns
                .iter()
                .map(|(name, datatype)| {
                    let j = x.names().iter().position(|n| n == name).ok_or_else(|| {
                        Error::invalid(
                            "features",
                            format!("the model needs feature {name:?}, which the data lacks"),
                        )
                    })?;
                    let column: Vec<f64> = (0..rows).map(|i| x.row(i)[j]).collect();
                    tensor(name, *datatype, vec![rows], &column)
                })
                .collect::<Result<_>>()?,
        };
        let outputs = self.model.predict(&inputs)?;
        output_column(&outputs, &self.output, self.column, rows)
    }
}
