//! KernelSHAP behind a serving endpoint: [`ShapService`] implements core's
//! [`Explainer`](mlops_core::serve::Explainer), so `POST /v2/models/{name}/explain` answers
//! per-row attributions for any served model with numeric inputs.

use std::collections::BTreeMap;

use mlops_core::serve::{Explainer, InferFn, InferRequest, InferResponse, Parameters};
use mlops_core::{DataType, Error, Result, Tensor};

use crate::features::{Features, tensor};
use crate::shap::{KernelExplainer, KernelOptions, Link};

/// The most rows one explain request may carry (each costs a model call per coalition batch).
pub const DEFAULT_MAX_ROWS: usize = 100;

/// How a request's inputs hold the features.
#[derive(Debug, Clone)]
enum Layout {
    /// One `[n, width]` tensor.
    Matrix { name: String, datatype: DataType },
    /// One `[n]` tensor per feature.
    Columns(Vec<(String, DataType)>),
}

/// KernelSHAP for explain requests. Each model may have a background (rows that summarise its
/// training data, e.g. [`sample_background`](crate::sample_background) of them); without one, a
/// request of at least two rows is explained against its own rows.
///
/// Request parameters: `output` (the output to explain; default the first numeric one),
/// `output_column` (default the last column: the positive class of a two-class
/// probability), `link` (`identity` or `logit`), `nsamples` (coalitions per row; default
/// shap's auto), `seed`. The response's outputs are `shap_values` (FP64 `[n, features]`),
/// `base_value` (FP64 `[n]`) and `explained_output` (FP64 `[n]`: the model's value, in the
/// link's space); its parameters name the `features`, the `output`, and the
/// `additivity_error`.
#[derive(Debug, Clone)]
pub struct ShapService {
    backgrounds: BTreeMap<String, Features>,
    max_rows: usize,
}

impl Default for ShapService {
    fn default() -> Self {
        Self {
            backgrounds: BTreeMap::new(),
            max_rows: DEFAULT_MAX_ROWS,
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
                        .map(|t| Ok((t.name().to_owned(), numeric(t)?)))
                        .collect::<Result<_>>()?,
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
        let x = features(&layout, &request.inputs, rows)?;
        let background = match self.backgrounds.get(request.model_name.as_str()) {
            Some(bg) => {
                let fits = bg.width() == x.width()
                    && (matches!(layout, Layout::Matrix { .. }) || bg.names() == x.names());
                if !fits {
                    return Err(Error::invalid(
                        "explain request",
                        format!(
                            "the inputs ({}) do not match the background of {} ({})",
                            x.names().join(", "),
                            request.model_name,
                            bg.names().join(", ")
                        ),
                    ));
                }
                // A matrix model's background columns are its input's, whatever the file
                // called them.
                Features::new(x.names().to_vec(), bg.values().to_vec())?
            }
            None if rows >= 2 => x.clone(),
            None => {
                return Err(Error::invalid(
                    "explain request",
                    format!(
                        "{} has no background to explain against: send at least 2 rows, or give the server one (mlops serve --explain-background {}=FILE)",
                        request.model_name, request.model_name
                    ),
                ));
            }
        };
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
            None => first
                .iter()
                .find(|t| t.datatype() != DataType::Bytes)
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
        let options = KernelOptions {
            nsamples: param_u64(p, "nsamples")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            link,
            seed: param_u64(p, "seed")?.unwrap_or(0),
        };
        let predict = |f: &Features| -> Result<Vec<f64>> {
            let outputs = infer(tensors(&layout, f)?)?;
            crate::features::output_column(&outputs, &output_name, column, f.rows())
        };
        let explanation = KernelExplainer::new(predict, background, options)?.explain(&x)?;
        let m = x.width();
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
