//! KernelSHAP behind a serving endpoint: [`ShapService`] implements core's
//! [`Explainer`](mlops_core::serve::Explainer), so `POST /v2/models/{name}/explain` answers
//! per-row attributions for any served model with numeric inputs.

use std::collections::BTreeMap;

use mlops_core::serve::{Explainer, InferFn, InferRequest, InferResponse, Parameters};
use mlops_core::{DataType, Error, Result, Tensor};

use arrow::array::RecordBatch;

use crate::column_shap::ColumnKernelExplainer;
use crate::features::{Features, tensor};
use crate::shap::{Explanation, KernelExplainer, KernelOptions, Link};

/// The most rows one explain request may carry (each costs a model call per coalition batch).
pub const DEFAULT_MAX_ROWS: usize = 100;
/// The most coalitions per row a request may ask for (`nsamples`): above shap's auto value
/// (2M + 2048) for every model under ~4000 features, and a bound on one request's work.
pub const DEFAULT_MAX_NSAMPLES: usize = 10_000;

/// How a request's inputs hold the features.
#[derive(Debug, Clone)]
enum Layout {
    /// One `[n, width]` tensor.
    Matrix { name: String, datatype: DataType },
    /// One `[n]` tensor per feature.
    Columns(Vec<(String, DataType)>),
}

/// KernelSHAP for explain requests. Each model may have a background (rows that summarise its
/// training data, e.g. [`sample_background`](crate::sample_background) or
/// [`sample_rows`](crate::sample_rows) of them); without one, a request of at least two rows is
/// explained against its own rows. A request of one `[n, width]` tensor is explained by
/// [`KernelExplainer`]; one of a `[n]` tensor per feature by
/// [`ColumnKernelExplainer`](crate::ColumnKernelExplainer), so text inputs have attributions
/// too.
///
/// Request parameters: `output` (the output to explain; default `probabilities` when the model
/// has it, else the first numeric output),
/// `output_column` (default the last column: the positive class of a two-class
/// probability), `link` (`identity` or `logit`), `nsamples` (coalitions per row; default
/// shap's auto, 2M + 2048; at most [`DEFAULT_MAX_NSAMPLES`] unless set otherwise), `seed`. The response's outputs are `shap_values` (FP64 `[n, features]`),
/// `base_value` (FP64 `[n]`) and `explained_output` (FP64 `[n]`: the model's value, in the
/// link's space); its parameters name the `features`, the `output`, and the
/// `additivity_error`.
#[derive(Debug, Clone)]
pub struct ShapService {
    backgrounds: BTreeMap<String, Features>,
    column_backgrounds: BTreeMap<String, RecordBatch>,
    max_rows: usize,
    max_nsamples: usize,
}

impl Default for ShapService {
    fn default() -> Self {
        Self {
            backgrounds: BTreeMap::new(),
            column_backgrounds: BTreeMap::new(),
            max_rows: DEFAULT_MAX_ROWS,
            max_nsamples: DEFAULT_MAX_NSAMPLES,
        }
    }
}

impl ShapService {
    /// A service with no backgrounds yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Explains `model` against `background` (its feature names are the input names of a
    /// column-per-feature model; a matrix model's width must match).
    pub fn with_background(mut self, model: impl Into<String>, background: Features) -> Self {
        self.backgrounds.insert(model.into(), background);
        self
    }

    /// Explains `model`, whose inputs are one `[n]` tensor per feature (any datatype, text
    /// included), against the rows of `background`, whose columns are named as the inputs.
    pub fn with_column_background(
        mut self,
        model: impl Into<String>,
        background: RecordBatch,
    ) -> Self {
        self.column_backgrounds.insert(model.into(), background);
        self
    }

    /// At most `n` coalitions per row (`nsamples`, asked for or automatic).
    pub fn with_max_nsamples(mut self, n: usize) -> Self {
        self.max_nsamples = n.max(1);
        self
    }

    /// At most `rows` rows per request.
    pub fn with_max_rows(mut self, rows: usize) -> Self {
        self.max_rows = rows.max(1);
        self
    }
}

fn layout(inputs: &[Tensor]) -> Result<(Layout, usize)> {
    let numeric = |t: &Tensor| {
        if t.datatype() == DataType::Bytes {
            Err(Error::not_supported(
                "explain input",
                t.name(),
                "a BYTES input: KernelSHAP perturbs numeric features",
            ))
        } else {
            Ok(t.datatype())
        }
    };
    match inputs {
        [] => Err(Error::invalid("explain request", "no inputs")),
        [one] if one.shape().len() == 2 => Ok((
            Layout::Matrix {
                name: one.name().to_owned(),
                datatype: numeric(one)?,
            },
            one.shape()[0],
        )),
        many => {
            let rows = many[0].shape().first().copied().unwrap_or(0);
            for t in many {
                if t.shape() != [rows] {
                    return Err(Error::invalid(
                        "explain input",
                        format!(
                            "{:?} has shape {:?}: explain takes one [n, features] tensor or one [n] tensor per feature, all with n = {rows}",
                            t.name(),
                            t.shape()
                        ),
                    ));
                }
            }
            Ok((
                Layout::Columns(
                    many.iter()
                        .map(|t| (t.name().to_owned(), t.datatype()))
                        .collect(),
                ),
                rows,
            ))
        }
    }
}

fn features(layout: &Layout, inputs: &[Tensor], rows: usize) -> Result<Features> {
    match layout {
        Layout::Matrix { name, .. } => {
            let width = inputs[0].shape()[1];
            let names = (0..width).map(|j| format!("{name}[{j}]")).collect();
            Features::new(names, inputs[0].to_f64_lossy()?)
        }
        Layout::Columns(columns) => {
            let width = columns.len();
            let mut values = vec![0.0; rows * width];
            for (j, t) in inputs.iter().enumerate() {
                for (i, v) in t.to_f64_lossy()?.into_iter().enumerate() {
                    values[i * width + j] = v;
                }
            }
            Features::new(columns.iter().map(|(n, _)| n.clone()).collect(), values)
        }
    }
}

fn tensors(layout: &Layout, x: &Features) -> Result<Vec<Tensor>> {
    match layout {
        Layout::Matrix { name, datatype } => Ok(vec![tensor(
            name,
            *datatype,
            vec![x.rows(), x.width()],
            x.values(),
        )?]),
        Layout::Columns(columns) => columns
            .iter()
            .enumerate()
            .map(|(j, (name, datatype))| {
                let column: Vec<f64> = (0..x.rows()).map(|i| x.row(i)[j]).collect();
                tensor(name, *datatype, vec![x.rows()], &column)
            })
            .collect(),
    }
}

fn param_str<'a>(p: &'a Parameters, key: &str) -> Result<Option<&'a str>> {
    match p.get(key) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::invalid(
            "explain parameter",
            format!("{key} must be a string, not {other}"),
        )),
    }
}

fn param_u64(p: &Parameters, key: &str) -> Result<Option<u64>> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            Error::invalid(
                "explain parameter",
                format!("{key} must be a non-negative integer, not {v}"),
            )
        }),
    }
}

fn no_background(model: &str) -> Error {
    Error::invalid(
        "explain request",
        format!(
            "{model} has no background to explain against: send at least 2 rows, or give the server one (mlops serve --explain-background {model}=FILE)"
        ),
    )
}

fn mismatch(model: &str, inputs: &[String], background: &[String]) -> Error {
    Error::invalid(
        "explain request",
        format!(
            "the inputs ({}) do not match the background of {model} ({})",
            inputs.join(", "),
            background.join(", ")
        ),
    )
}

impl ShapService {
    /// A `[n, width]` request: numeric features.
    fn explain_matrix(
        &self,
        request: &InferRequest,
        layout: &Layout,
        rows: usize,
        predict: &(dyn Fn(Vec<Tensor>) -> Result<Vec<f64>> + Sync),
        options: KernelOptions,
    ) -> Result<Explanation> {
        let model = request.model_name.as_str();
        let x = features(layout, &request.inputs, rows)?;
        let background = match self.backgrounds.get(model) {
            // A matrix model's background columns are its input's, whatever the file called
            // them.
            Some(bg) if bg.width() == x.width() => {
                Features::new(x.names().to_vec(), bg.values().to_vec())?
            }
            Some(bg) => return Err(mismatch(model, x.names(), bg.names())),
            None if rows >= 2 => x.clone(),
            None => return Err(no_background(model)),
        };
        let f = |f: &Features| predict(tensors(layout, f)?);
        KernelExplainer::new(f, background, options)?.explain(&x)
    }

    /// A request of one `[n]` tensor per feature: columns of any datatype.
    fn explain_columns(
        &self,
        request: &InferRequest,
        rows: usize,
        predict: &(dyn Fn(Vec<Tensor>) -> Result<Vec<f64>> + Sync),
        options: KernelOptions,
    ) -> Result<Explanation> {
        let model = request.model_name.as_str();
        let names: Vec<String> = request.inputs.iter().map(|t| t.name().to_owned()).collect();
        let arrays = request
            .inputs
            .iter()
            .map(mlops_core::arrow::array_from_tensor)
            .collect::<Result<Vec<_>>>()?;
        let x = RecordBatch::try_from_iter(names.iter().cloned().zip(arrays)).map_err(|e| {
            Error::invalid("explain request", "inputs that are no table").with_source(e)
        })?;
        let background = match (
            self.column_backgrounds.get(model),
            self.backgrounds.get(model),
        ) {
            (Some(bg), _) => bg.clone(),
            (None, Some(bg)) => {
                // A numeric background given as features: its columns as FP64 arrays, cast to
                // the request's types.
                let mut columns = Vec::with_capacity(bg.width());
                for (j, name) in bg.names().iter().enumerate() {
                    let values: Vec<f64> = (0..bg.rows()).map(|i| bg.row(i)[j]).collect();
                    let column: arrow::array::ArrayRef =
                        std::sync::Arc::new(arrow::array::Float64Array::from(values));
                    let ty = x
                        .column_by_name(name)
                        .map(|c| c.data_type().clone())
                        .ok_or_else(|| mismatch(model, &names, bg.names()))?;
                    columns.push((
                        name.clone(),
                        arrow::compute::cast(&column, &ty)
                            .map_err(|e| Error::backend("arrow", e))?,
                    ));
                }
                RecordBatch::try_from_iter(columns).map_err(|e| Error::backend("arrow", e))?
            }
            (None, None) if rows >= 2 => x.clone(),
            (None, None) => return Err(no_background(model)),
        };
        let f = |b: &RecordBatch| -> Result<Vec<f64>> {
            predict(mlops_core::arrow::tensors_by_name(b, &names)?)
        };
        let columns: Vec<&str> = names.iter().map(String::as_str).collect();
        ColumnKernelExplainer::new(f, &background, &columns, options)
            .map_err(|e| e.context(format!("the background of {model}")))?
            .explain(&x)
    }
}

impl Explainer for ShapService {
    fn explain(&self, request: &InferRequest, infer: InferFn<'_>) -> Result<InferResponse> {
        let p = &request.parameters;
        let (layout, rows) = layout(&request.inputs)?;
        if rows == 0 || rows > self.max_rows {
            return Err(Error::invalid(
                "explain request",
                format!(
                    "{rows} rows: explain takes 1 to {} rows a request",
                    self.max_rows
                ),
            ));
        }
        // The output to explain: named, or the first numeric one of the first answer.
        let first = infer(request.inputs.clone())?;
        let output = match param_str(p, "output")? {
            Some(name) => first.iter().find(|t| t.name() == name).ok_or_else(|| {
                Error::invalid(
                    "explain parameter",
                    format!(
                        "output {name:?} is not an output of the model (it has: {})",
                        first
                            .iter()
                            .map(Tensor::name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?,
            // A classifier's probabilities (what shap explains), else the first numeric output.
            None => first
                .iter()
                .find(|t| t.name() == "probabilities")
                .or_else(|| first.iter().find(|t| t.datatype() != DataType::Bytes))
                .ok_or_else(|| {
                    Error::not_supported(
                        "model output",
                        request.model_name.as_str(),
                        "no numeric output to explain",
                    )
                })?,
        };
        let output_name = output.name().to_owned();
        let width: usize = output.shape().iter().skip(1).product();
        let column = match param_u64(p, "output_column")? {
            Some(c) => usize::try_from(c).unwrap_or(usize::MAX),
            None => width.saturating_sub(1),
        };
        let link = match param_str(p, "link")? {
            None | Some("identity") => Link::Identity,
            Some("logit") => Link::Logit,
            Some(other) => {
                return Err(Error::invalid(
                    "explain parameter",
                    format!("link {other:?}: identity or logit"),
                ));
            }
        };
        let width_in = match &layout {
            Layout::Matrix { .. } => request.inputs[0].shape()[1],
            Layout::Columns(c) => c.len(),
        };
        let nsamples = match param_u64(p, "nsamples")? {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => (2 * width_in + 2048).min(self.max_nsamples),
        };
        if nsamples > self.max_nsamples {
            return Err(Error::invalid(
                "explain parameter",
                format!(
                    "nsamples {nsamples}: this server allows at most {} coalitions a row",
                    self.max_nsamples
                ),
            ));
        }
        let options = KernelOptions {
            nsamples: Some(nsamples),
            link,
            seed: param_u64(p, "seed")?.unwrap_or(0),
        };
        let predict = |inputs: Vec<Tensor>| -> Result<Vec<f64>> {
            let rows = inputs
                .first()
                .and_then(|t| t.shape().first().copied())
                .unwrap_or(0);
            let outputs = infer(inputs)?;
            crate::features::output_column(&outputs, &output_name, column, rows)
        };
        let explanation = match &layout {
            Layout::Matrix { .. } => {
                self.explain_matrix(request, &layout, rows, &predict, options)?
            }
            Layout::Columns(_) => self.explain_columns(request, rows, &predict, options)?,
        };
        let m = explanation.features.len();
        let flat: Vec<f64> = explanation.values.iter().flatten().copied().collect();
        let mut parameters = Parameters::new();
        parameters.insert("method".into(), "kernel_shap".into());
        parameters.insert("features".into(), serde_json::json!(explanation.features));
        parameters.insert("output".into(), output_name.clone().into());
        parameters.insert("output_column".into(), column.into());
        parameters.insert(
            "additivity_error".into(),
            serde_json::Number::from_f64(explanation.additivity_error)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
        );
        Ok(InferResponse {
            model_name: request.model_name.clone(),
            model_version: None,
            id: request.id.clone(),
            parameters,
            outputs: vec![
                Tensor::from_f64("shap_values", vec![rows, m], &flat)?,
                Tensor::from_f64(
                    "base_value",
                    vec![rows],
                    &vec![explanation.base_value; rows],
                )?,
                Tensor::from_f64("explained_output", vec![rows], &explanation.outputs)?,
            ],
        })
    }
}
