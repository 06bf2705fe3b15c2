//! Preprocessing fitted on the training split and saved with the model: standardisation of
//! numeric columns, one-hot encoding of string columns (unknown categories become all-zero
//! rows), imputation of missing values; and the encoding of the target.
//!
//! The same code turns training data (Arrow) and inference inputs (one 1-D tensor per column)
//! into the feature matrix, so a served model sees exactly what it was trained on.

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType as ArrowType, Float64Type};
use mlops_core::signature::{ColumnSpec, ColumnType};
use mlops_core::{DataType, Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// How string columns with many distinct values are encoded.
pub const DEFAULT_MAX_CATEGORIES: usize = 100;

/// One column's values, as the encoders read them (missing values are `None`; NaN and ±inf
/// count as missing).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ColumnData {
    /// Numbers (booleans as 0/1).
    Numeric(Vec<Option<f64>>),
    /// Labels.
    Text(Vec<Option<String>>),
}

impl ColumnData {
    fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Text(v) => v.len(),
        }
    }

    /// An Arrow column: numbers, booleans, strings or dictionary-encoded strings.
    pub(crate) fn from_arrow(name: &str, array: &ArrayRef) -> Result<(Self, ColumnType)> {
        let ty = array.data_type();
        let kind = column_type_of(ty).ok_or_else(|| {
            Error::invalid(
                "feature column",
                format!(
                    "{name} has type {ty}, which is neither numeric, boolean nor string \
                     (drop it or choose the features explicitly)"
                ),
            )
        })?;
        let cast_err = |e| Error::backend("arrow", e);
        Ok(if kind == ColumnType::String {
            let strings = cast(array, &ArrowType::Utf8).map_err(cast_err)?;
            let values = strings
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_owned))
                .collect();
            (Self::Text(values), kind)
        } else {
            let numbers = cast(array, &ArrowType::Float64).map_err(cast_err)?;
            let values = numbers
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.filter(|x| x.is_finite()))
                .collect();
            (Self::Numeric(values), kind)
        })
    }

    /// A 1-D (or `[n, 1]`) inference tensor.
    fn from_tensor(tensor: &Tensor, text: bool) -> Result<Self> {
        if text {
            if tensor.datatype() != DataType::Bytes {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "{} is a string column: send BYTES, not {}",
                        tensor.name(),
                        tensor.datatype()
                    ),
                ));
            }
            let values = tensor
                .to_byte_strings()?
                .into_iter()
                .map(|b| Some(String::from_utf8_lossy(b).into_owned()))
                .collect();
            Ok(Self::Text(values))
        } else {
            let values = tensor
                .to_f64_lossy()
                .map_err(|_| {
                    Error::invalid(
                        "input",
                        format!(
                            "{} is a numeric column: send numbers, not BYTES",
                            tensor.name()
                        ),
                    )
                })?
                .into_iter()
                .map(|x| x.is_finite().then_some(x))
                .collect();
            Ok(Self::Numeric(values))
        }
    }
}

/// The column type a feature of this Arrow type has in the model's signature.
fn column_type_of(ty: &ArrowType) -> Option<ColumnType> {
    Some(match ty {
        ArrowType::Boolean => ColumnType::Boolean,
        ArrowType::Int8 | ArrowType::Int16 | ArrowType::Int32 => ColumnType::Integer,
        ArrowType::Int64
        | ArrowType::UInt8
        | ArrowType::UInt16
        | ArrowType::UInt32
        | ArrowType::UInt64 => ColumnType::Long,
        ArrowType::Float16 | ArrowType::Float32 => ColumnType::Float,
        ArrowType::Float64 | ArrowType::Decimal128(..) | ArrowType::Decimal256(..) => {
            ColumnType::Double
        }
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => ColumnType::String,
        ArrowType::Dictionary(_, v) if column_type_of(v) == Some(ColumnType::String) => {
            ColumnType::String
        }
        _ => return None,
    })
}

/// The encoder of one feature column, fitted on the training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureEncoder {
    /// `(x - mean) / scale`; a missing value becomes `mean` (so 0 after scaling).
    Numeric {
        /// Column name.
        column: String,
        /// Its type in the signature.
        column_type: ColumnType,
        /// Mean of the training values.
        mean: f64,
        /// Population standard deviation of the training values (1 when it is 0).
        scale: f64,
    },
    /// One 0/1 feature per category; a missing value becomes `fill` (the most frequent
    /// category), a category not seen in training becomes all zeros.
    Categorical {
        /// Column name.
        column: String,
        /// The categories, sorted.
        categories: Vec<String>,
        /// The imputed category.
        fill: Option<String>,
    },
}

impl FeatureEncoder {
    /// The column it reads.
    pub fn column(&self) -> &str {
        match self {
            Self::Numeric { column, .. } | Self::Categorical { column, .. } => column,
        }
    }

    /// How many features it writes.
    pub fn width(&self) -> usize {
        match self {
            Self::Numeric { .. } => 1,
            Self::Categorical { categories, .. } => categories.len(),
        }
    }

    fn spec(&self) -> ColumnSpec {
        match self {
            Self::Numeric {
                column,
                column_type,
                ..
            } => ColumnSpec::new(column.clone(), *column_type),
            Self::Categorical { column, .. } => ColumnSpec::new(column.clone(), ColumnType::String),
        }
    }

    fn fit(column: &str, kind: ColumnType, data: &ColumnData, rows: &[usize], max: usize) -> Self {
        match data {
            ColumnData::Numeric(values) => {
                let (mut n, mut sum) = (0usize, 0.0f64);
                for x in rows.iter().filter_map(|&r| values[r]) {
                    n += 1;
                    sum += x;
                }
                let mean = if n == 0 { 0.0 } else { sum / n as f64 };
                let var = if n == 0 {
                    0.0
                } else {
                    rows.iter()
                        .filter_map(|&r| values[r])
                        .map(|x| (x - mean).powi(2))
                        .sum::<f64>()
                        / n as f64
                };
                let std = var.sqrt();
                Self::Numeric {
                    column: column.to_owned(),
                    column_type: kind,
                    mean,
                    scale: if std > 0.0 && std.is_finite() {
                        std
                    } else {
                        1.0
                    },
                }
            }
            ColumnData::Text(values) => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for v in rows.iter().filter_map(|&r| values[r].as_deref()) {
                    *counts.entry(v).or_default() += 1;
                }
                // The most frequent first (ties by name), as many as allowed, then sorted.
                let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
                by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let fill = by_count.first().map(|(v, _)| (*v).to_owned());
                let mut categories: Vec<String> = by_count
                    .into_iter()
                    .take(max.max(1))
                    .map(|(v, _)| v.to_owned())
                    .collect();
                categories.sort();
                Self::Categorical {
                    column: column.to_owned(),
                    categories,
                    fill,
                }
            }
        }
    }

    /// Writes this column's features for every row into `out` (row-major, `stride` wide,
    /// starting at column `offset`).
    fn write(
        &self,
        data: &ColumnData,
        out: &mut [f32],
        stride: usize,
        offset: usize,
    ) -> Result<()> {
        match (self, data) {
            (Self::Numeric { mean, scale, .. }, ColumnData::Numeric(values)) => {
                for (row, v) in values.iter().enumerate() {
                    out[row * stride + offset] = ((v.unwrap_or(*mean) - mean) / scale) as f32;
                }
            }
            (
                Self::Categorical {
                    categories, fill, ..
                },
                ColumnData::Text(values),
            ) => {
                for (row, v) in values.iter().enumerate() {
                    let label = v.as_deref().or(fill.as_deref());
                    if let Some(i) =
                        label.and_then(|l| categories.binary_search_by(|c| c.as_str().cmp(l)).ok())
                    {
                        out[row * stride + offset + i] = 1.0;
                    }
                }
            }
            _ => {
                return Err(Error::invalid(
                    "feature column",
                    format!(
                        "{} was {} in training",
                        self.column(),
                        if matches!(self, Self::Numeric { .. }) {
                            "numeric"
                        } else {
                            "a string column"
                        }
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Every feature column's encoder, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// The encoders.
    pub features: Vec<FeatureEncoder>,
}

impl Preprocessor {
    /// Fits encoders for `columns` on the rows `rows` (the training split).
    pub(crate) fn fit(
        columns: &[(String, ColumnType, ColumnData)],
        rows: &[usize],
        max_categories: usize,
    ) -> Self {
        Self {
            features: columns
                .iter()
                .map(|(name, kind, data)| {
                    FeatureEncoder::fit(name, *kind, data, rows, max_categories)
                })
                .collect(),
        }
    }

    /// Width of the feature matrix.
    pub fn width(&self) -> usize {
        self.features.iter().map(FeatureEncoder::width).sum()
    }

    /// The model's inputs: one column per feature column.
    pub fn input_specs(&self) -> Vec<ColumnSpec> {
        self.features.iter().map(FeatureEncoder::spec).collect()
    }

    /// The feature matrix (row-major, `rows × width`) of columns read from Arrow.
    pub(crate) fn transform_columns(
        &self,
        columns: &[(String, ColumnType, ColumnData)],
    ) -> Result<Vec<f32>> {
        let rows = columns.first().map(|c| c.2.len()).unwrap_or(0);
        let width = self.width();
        let mut out = vec![0.0f32; rows * width];
        let mut offset = 0;
        for (encoder, (_, _, data)) in self.features.iter().zip(columns) {
            encoder.write(data, &mut out, width, offset)?;
            offset += encoder.width();
        }
        Ok(out)
    }

    /// The feature matrix of inference inputs: one tensor per feature column, by name, each of
    /// shape `[n]` or `[n, 1]`. Returns it with `n`.
    pub fn transform_tensors(&self, inputs: &[Tensor]) -> Result<(Vec<f32>, usize)> {
        let mut rows = None;
        let mut columns = Vec::with_capacity(self.features.len());
        for encoder in &self.features {
            let name = encoder.column();
            let tensor = inputs
                .iter()
                .find(|t| t.name() == name)
                .ok_or_else(|| Error::invalid("input", format!("missing input {name:?}")))?;
            let n = match tensor.shape() {
                [n] | [n, 1] => *n,
                other => {
                    return Err(Error::invalid(
                        "input",
                        format!("{name} must have shape [n] or [n, 1], got {other:?}"),
                    ));
                }
            };
            match rows {
                None => rows = Some(n),
                Some(r) if r != n => {
                    return Err(Error::invalid(
                        "input",
                        format!("{name} has {n} rows, other inputs {r}"),
                    ));
                }
                Some(_) => {}
            }
            let text = matches!(encoder, FeatureEncoder::Categorical { .. });
            columns.push((
                String::new(),
                ColumnType::Double,
                ColumnData::from_tensor(tensor, text)?,
            ));
        }
        if let Some(extra) = inputs
            .iter()
            .find(|t| !self.features.iter().any(|f| f.column() == t.name()))
        {
            return Err(Error::invalid(
                "input",
                format!("unexpected input {:?}", extra.name()),
            ));
        }
        let rows = rows.unwrap_or(0);
        Ok((self.transform_columns(&columns)?, rows))
    }
}

/// A class label, as the target column held it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Label {
    /// A boolean target.
    Bool(bool),
    /// An integer target (or a float one holding only integers).
    Int(i64),
    /// A string target.
    Text(String),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

/// How the target column is encoded for training and decoded from the network's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum TargetEncoder {
    /// A number, standardised while training.
    Regression {
        /// Column name.
        column: String,
        /// Mean of the training targets.
        mean: f64,
        /// Their population standard deviation (1 when it is 0).
        scale: f64,
    },
    /// Class labels, sorted (class `i` is output `i`; for binary models the positive class is
    /// the second, as in scikit-learn).
    Classification {
        /// Column name.
        column: String,
        /// The classes.
        classes: Vec<Label>,
    },
}

impl TargetEncoder {
    /// The target column.
    pub fn column(&self) -> &str {
        match self {
            Self::Regression { column, .. } | Self::Classification { column, .. } => column,
        }
    }

    /// The classes of a classifier (empty for regression).
    pub fn classes(&self) -> &[Label] {
        match self {
            Self::Regression { .. } => &[],
            Self::Classification { classes, .. } => classes,
        }
    }
}

/// The target column, read for training.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TargetData {
    /// Numbers.
    Numeric(Vec<f64>),
    /// Labels.
    Labels(Vec<Label>),
}

impl TargetData {
    /// Reads `array` for a regression (`classify == false`) or a classification.
    pub(crate) fn from_arrow(name: &str, array: &ArrayRef, classify: bool) -> Result<Self> {
        if array.null_count() > 0 {
            return Err(Error::invalid(
                "target column",
                format!("{name} has {} missing values", array.null_count()),
            ));
        }
        let ty = array.data_type();
        let kind = column_type_of(ty);
        let cast_err = |e| Error::backend("arrow", e);
        let numbers = |array: &ArrayRef| -> Result<Vec<f64>> {
            let numbers = cast(array, &ArrowType::Float64).map_err(cast_err)?;
            let values: Vec<f64> = numbers.as_primitive::<Float64Type>().values().to_vec();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    "target column",
                    format!("{name} row {i} is {}", values[i]),
                ));
            }
            Ok(values)
        };
        match (kind, classify) {
            (None, _) => Err(Error::invalid(
                "target column",
                format!("{name} has type {ty}; a target is numeric, boolean or string"),
            )),
            (Some(ColumnType::String), false) => Err(Error::invalid(
                "target column",
                format!("{name} holds strings: choose a classifier, not a regression"),
            )),
            (Some(_), false) => Ok(Self::Numeric(numbers(array)?)),
            (Some(ColumnType::String), true) => {
                let strings = cast(array, &ArrowType::Utf8).map_err(cast_err)?;
                Ok(Self::Labels(
                    strings
                        .as_string::<i32>()
                        .iter()
                        .map(|v| Label::Text(v.unwrap_or_default().to_owned()))
                        .collect(),
                ))
            }
            (Some(ColumnType::Boolean), true) => Ok(Self::Labels(
                array
                    .as_boolean()
                    .iter()
                    .map(|v| Label::Bool(v.unwrap_or_default()))
                    .collect(),
            )),
            (Some(_), true) => {
                let values = numbers(array)?;
                if let Some(i) = values
                    .iter()
                    .position(|v| v.fract() != 0.0 || v.abs() > 9.0e15)
                {
                    return Err(Error::invalid(
                        "target column",
                        format!(
                            "{name} row {i} is {}: class labels must be integers, booleans or \
                             strings (use a regression for continuous targets)",
                            values[i]
                        ),
                    ));
                }
                Ok(Self::Labels(
                    values.into_iter().map(|v| Label::Int(v as i64)).collect(),
                ))
            }
        }
    }

    /// Fits the encoder on the rows `rows`.
    pub(crate) fn fit(&self, column: &str, rows: &[usize]) -> TargetEncoder {
        match self {
            Self::Numeric(values) => {
                let n = rows.len().max(1) as f64;
                let mean = rows.iter().map(|&r| values[r]).sum::<f64>() / n;
                let var = rows
                    .iter()
                    .map(|&r| (values[r] - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let std = var.sqrt();
                TargetEncoder::Regression {
                    column: column.to_owned(),
                    mean,
                    scale: if std > 0.0 && std.is_finite() {
                        std
                    } else {
                        1.0
                    },
                }
            }
            Self::Labels(labels) => {
                let mut classes: Vec<Label> = rows.iter().map(|&r| labels[r].clone()).collect();
                classes.sort();
                classes.dedup();
                TargetEncoder::Classification {
                    column: column.to_owned(),
                    classes,
                }
            }
        }
    }
}

/// A batch's columns other than the target (or exactly `features` when given), read for
/// encoding.
pub(crate) fn feature_columns(
    batch: &RecordBatch,
    target: &str,
    features: Option<&[String]>,
) -> Result<Vec<(String, ColumnType, ColumnData)>> {
    let names: Vec<String> = match features {
        Some(f) => f.to_vec(),
        None => batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != target)
            .collect(),
    };
    if names.is_empty() {
        return Err(Error::invalid(
            "features",
            format!("no feature columns besides the target {target:?}"),
        ));
    }
    names
        .into_iter()
        .map(|name| {
            if name == target {
                return Err(Error::invalid(
                    "features",
                    format!("the target {target:?} cannot also be a feature"),
                ));
            }
            let array = batch.column_by_name(&name).ok_or_else(|| {
                Error::invalid("features", format!("no column {name:?} in the data"))
            })?;
            let (data, kind) = ColumnData::from_arrow(&name, array)?;
            Ok((name, kind, data))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("age", ArrowType::Float64, true),
            Field::new("plan", ArrowType::Utf8, true),
            Field::new("n", ArrowType::Int32, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![
                    Some(10.0),
                    None,
                    Some(30.0),
                    Some(f64::NAN),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("b"),
                    Some("a"),
                    None,
                    Some("b"),
                ])),
                Arc::new(Int32Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn fits_standardises_one_hots_and_imputes() {
        let b = batch();
        let cols = feature_columns(&b, "n", None).unwrap();
        let pre = Preprocessor::fit(&cols, &[0, 1, 2, 3], DEFAULT_MAX_CATEGORIES);
        assert_eq!(pre.width(), 3);
        let FeatureEncoder::Numeric { mean, scale, .. } = &pre.features[0] else {
            panic!("numeric")
        };
        assert_eq!((*mean, *scale), (20.0, 10.0));
        let x = pre.transform_columns(&cols).unwrap();
        #[rustfmt::skip]
        let want = [
            -1.0, 0.0, 1.0, // 10, b
            0.0, 1.0, 0.0,  // missing -> mean; a
            1.0, 0.0, 1.0,  // 30; missing -> most frequent (b)
            0.0, 0.0, 1.0,  // NaN -> mean; b
        ];
        assert_eq!(x, want);
        assert_eq!(
            pre.input_specs()
                .iter()
                .map(|c| c.col_type)
                .collect::<Vec<_>>(),
            [ColumnType::Double, ColumnType::String]
        );
    }

    #[test]
    fn tensors_encode_like_arrow_and_unknowns_are_zero() {
        let b = batch();
        let cols = feature_columns(&b, "n", None).unwrap();
        let pre = Preprocessor::fit(&cols, &[0, 1, 2, 3], DEFAULT_MAX_CATEGORIES);
        let age = Tensor::from_f64("age", vec![2], &[30.0, f64::NAN]).unwrap();
        let plan = Tensor::from_byte_strings("plan", vec![2, 1], &["a", "zzz"]).unwrap();
        let (x, rows) = pre.transform_tensors(&[plan.clone(), age.clone()]).unwrap();
        assert_eq!(rows, 2);
        assert_eq!(x, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        // Wrong kinds, shapes, missing and extra inputs are named.
        let e = pre
            .transform_tensors(std::slice::from_ref(&age))
            .unwrap_err();
        assert!(e.to_string().contains("missing input \"plan\""), "{e}");
        let wrong = Tensor::from_f64("plan", vec![2], &[1.0, 2.0]).unwrap();
        let e = pre.transform_tensors(&[age.clone(), wrong]).unwrap_err();
        assert!(e.to_string().contains("send BYTES"), "{e}");
        let extra = Tensor::from_f64("zip", vec![2], &[1.0, 2.0]).unwrap();
        let e = pre
            .transform_tensors(&[age.clone(), plan.clone(), extra])
            .unwrap_err();
        assert!(e.to_string().contains("unexpected input \"zip\""), "{e}");
        let short = Tensor::from_f64("age", vec![1], &[1.0]).unwrap();
        let e = pre.transform_tensors(&[short, plan]).unwrap_err();
        assert!(e.to_string().contains("rows"), "{e}");
    }

    #[test]
    fn max_categories_keeps_the_most_frequent() {
        let data = ColumnData::Text(
            ["a", "b", "b", "c", "c", "c"]
                .iter()
                .map(|s| Some((*s).to_owned()))
                .collect(),
        );
        let enc = FeatureEncoder::fit("x", ColumnType::String, &data, &[0, 1, 2, 3, 4, 5], 2);
        assert_eq!(
            enc,
            FeatureEncoder::Categorical {
                column: "x".into(),
                categories: vec!["b".into(), "c".into()],
                fill: Some("c".into()),
            }
        );
    }

    #[test]
    fn targets_are_checked() {
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![0.0, 1.0, 1.0]));
        let TargetData::Labels(l) = TargetData::from_arrow("y", &floats, true).unwrap() else {
            panic!("labels")
        };
        assert_eq!(l, [Label::Int(0), Label::Int(1), Label::Int(1)]);
        let frac: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 1.0]));
        let e = TargetData::from_arrow("y", &frac, true).unwrap_err();
        assert!(e.to_string().contains("must be integers"), "{e}");
        let nulls: ArrayRef = Arc::new(Float64Array::from(vec![Some(0.5), None]));
        let e = TargetData::from_arrow("y", &nulls, false).unwrap_err();
        assert!(e.to_string().contains("1 missing"), "{e}");
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let e = TargetData::from_arrow("y", &strings, false).unwrap_err();
        assert!(e.to_string().contains("choose a classifier"), "{e}");
        let enc = TargetData::from_arrow("y", &strings, true)
            .unwrap()
            .fit("y", &[1, 0]);
        assert_eq!(
            enc.classes(),
            [Label::Text("x".into()), Label::Text("y".into())]
        );
        let json = serde_json::to_string(&enc).unwrap();
        assert_eq!(serde_json::from_str::<TargetEncoder>(&json).unwrap(), enc);
    }
}
