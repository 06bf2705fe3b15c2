//! Serving with features: [`FeatureLookup`], a [`Preprocessor`] that completes a request to a
//! model with its features looked up by entity key in the online store — KServe's transformer
//! pattern, in process and without the hop.
//!
//! A request carries the feature service's join keys (`customer_id: [1001, 1002]`, integer or
//! BYTES tensors of shape `[n]` or `[n, 1]`) and, optionally, some features itself. For each
//! feature of the service that the model reads (an input of its signature), the lookup
//! supplies a tensor of the signature's type (`double` as FP64, `long` as INT64, `string` as
//! BYTES, …):
//!
//! - a feature the request carries is the request's (request features override);
//! - a value the online store lacks (`NOT_FOUND`, `NULL_VALUE`, `OUTSIDE_MAX_AGE`) is the
//!   feature's declared default ([`FeatureLookup::with_default`]); for an input the signature
//!   marks optional (`required: false`), a float NaN (which our models impute); otherwise
//!   the request fails with [`Error::InvalidArgument`] naming the features and rows (a 400);
//! - the join keys (and request fields) are dropped unless the model reads them too;
//! - on-demand features of the service are computed from the looked-up features and the
//!   request fields the request carries (as inputs of the same names).
//!
//! ```no_run
//! # async fn demo(online: mlops_features::OnlineFeatures) -> mlops_core::Result<()> {
//! use std::sync::Arc;
//! use mlops_features::{FeatureLookup, FeatureSelection, FeatureValue};
//!
//! let lookup = FeatureLookup::new(online, FeatureSelection::service("churn_v1"))
//!     .with_default("spend", FeatureValue::Float64(0.0));
//! let server = mlops_serve::ModelServer::builder("mlops")
//!     .preprocessor("churn".parse()?, Arc::new(lookup))
//!     .build();
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use async_trait::async_trait;
use mlops_core::serve::Preprocessor;
use mlops_core::signature::{ColumnType, Schema, Signature};
use mlops_core::tensor::DataType;
use mlops_core::{Error, ModelName, Result, Tensor};

use crate::definitions::FeatureSelection;
use crate::online::{FeatureStatus, FeatureValue, OnlineFeatures};

/// Looks up a feature service's features for each request (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct FeatureLookup {
    online: OnlineFeatures,
    selection: FeatureSelection,
    defaults: HashMap<String, FeatureValue>,
}

/// What a model input wants: its name, type and whether it may be missing.
struct Wanted {
    column: Option<ColumnType>,
    required: bool,
}

impl FeatureLookup {
    /// Features of `selection` (a service, or references), looked up in `online`.
    pub fn new(online: OnlineFeatures, selection: FeatureSelection) -> Self {
        Self {
            online,
            selection,
            defaults: HashMap::new(),
        }
    }

    /// The value feature `name` takes when the online store has none for an entity.
    pub fn with_default(mut self, name: impl Into<String>, value: FeatureValue) -> Self {
        self.defaults.insert(name.into(), value);
        self
    }

    /// The online features it reads.
    pub fn online(&self) -> &OnlineFeatures {
        &self.online
    }
}

/// The model's named inputs, when its signature names them.
fn inputs_of(signature: &Signature) -> Option<HashMap<String, Wanted>> {
    match &signature.inputs {
        Schema::Columns(cols) => Some(
            cols.iter()
                .filter_map(|c| {
                    c.name.clone().map(|n| {
                        (
                            n,
                            Wanted {
                                column: Some(c.col_type),
                                required: c.required,
                            },
                        )
                    })
                })
                .collect(),
        ),
        Schema::Tensors(t) if t.iter().all(|s| s.name.is_some()) => Some(
            t.iter()
                .filter_map(|s| {
                    s.name.clone().map(|n| {
                        let column = match s.datatype {
                            DataType::Fp64 => Some(ColumnType::Double),
                            DataType::Fp32 => Some(ColumnType::Float),
                            DataType::Int64 => Some(ColumnType::Long),
                            DataType::Int32 => Some(ColumnType::Integer),
                            DataType::Bool => Some(ColumnType::Boolean),
                            DataType::Bytes => Some(ColumnType::String),
                            _ => None,
                        };
                        (
                            n,
                            Wanted {
                                column,
                                required: true,
                            },
                        )
                    })
                })
                .collect(),
        ),
        Schema::Tensors(_) => None,
    }
}

/// A join key's values from a request tensor of shape `[n]` or `[n, 1]`.
fn key_values(t: &Tensor) -> Result<Vec<FeatureValue>> {
    if !matches!(t.shape(), [_] | [_, 1]) {
        return Err(Error::invalid(
            "entity key",
            format!(
                "{} must have shape [n] or [n, 1], not {:?}",
                t.name(),
                t.shape()
            ),
        ));
    }
    Ok(match t.datatype() {
        DataType::Int64 => t.to_i64()?.into_iter().map(FeatureValue::Int64).collect(),
        DataType::Int32 => t.to_i32()?.into_iter().map(FeatureValue::Int32).collect(),
        DataType::Bytes => t
            .to_byte_strings()?
            .into_iter()
            .map(|b| {
                String::from_utf8(b.to_vec())
                    .map(FeatureValue::String)
                    .map_err(|_| Error::invalid("entity key", format!("{} is not UTF-8", t.name())))
            })
            .collect::<Result<_>>()?,
        other => {
            return Err(Error::invalid(
                "entity key",
                format!("{} must be INT64, INT32 or BYTES, not {other}", t.name()),
            ));
        }
    })
}

/// A column of values as a tensor of the input's type (`None` for missing values, which the
/// caller has resolved to a default or NaN already).
fn to_tensor(name: &str, values: &[Option<FeatureValue>], column: ColumnType) -> Result<Tensor> {
    let n = values.len();
    let bad = |v: &FeatureValue| {
        Error::invalid(
            "feature",
            format!("{name}: {v:?} does not fit the model's {column:?} input"),
        )
    };
    let float = |v: &Option<FeatureValue>| -> Result<f64> {
        Ok(match v {
            None | Some(FeatureValue::Null) => f64::NAN,
            Some(FeatureValue::Float64(f)) => *f,
            Some(FeatureValue::Float32(f)) => f64::from(*f),
            Some(FeatureValue::Int64(i)) => *i as f64,
            Some(FeatureValue::Int32(i)) => f64::from(*i),
            Some(FeatureValue::Bool(b)) => f64::from(u8::from(*b)),
            Some(other) => return Err(bad(other)),
        })
    };
    let int = |v: &Option<FeatureValue>| -> Result<i64> {
        match v {
            Some(FeatureValue::Int64(i)) => Ok(*i),
            Some(FeatureValue::Int32(i)) => Ok(i64::from(*i)),
            Some(FeatureValue::Bool(b)) => Ok(i64::from(*b)),
            Some(other) => Err(bad(other)),
            None => Err(Error::invalid(
                "feature",
                format!("{name}: an integer input cannot be missing"),
            )),
        }
    };
    match column {
        ColumnType::Double | ColumnType::Datetime => {
            let v = values.iter().map(float).collect::<Result<Vec<_>>>()?;
            Tensor::from_f64(name, vec![n], &v)
        }
        ColumnType::Float => {
            let v = values
                .iter()
                .map(|x| float(x).map(|f| f as f32))
                .collect::<Result<Vec<_>>>()?;
            Tensor::from_f32(name, vec![n], &v)
        }
        ColumnType::Long => {
            let v = values.iter().map(int).collect::<Result<Vec<_>>>()?;
            Tensor::from_i64(name, vec![n], &v)
        }
        ColumnType::Integer => {
            let v = values
                .iter()
                .map(|x| {
                    int(x).and_then(|i| {
                        i32::try_from(i).map_err(|_| {
                            Error::invalid("feature", format!("{name}: {i} does not fit INT32"))
                        })
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::from_i32(name, vec![n], &v)
        }
        ColumnType::Boolean => {
            let v = values
                .iter()
                .map(|x| match x {
                    Some(FeatureValue::Bool(b)) => Ok(*b),
                    Some(other) => Err(bad(other)),
                    None => Err(Error::invalid(
                        "feature",
                        format!("{name}: a boolean input cannot be missing"),
                    )),
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::from_bool(name, vec![n], &v)
        }
        ColumnType::String | ColumnType::Binary => {
            let v = values
                .iter()
                .map(|x| match x {
                    Some(FeatureValue::String(s)) => Ok(s.clone().into_bytes()),
                    Some(FeatureValue::Bytes(b)) => Ok(b.clone()),
                    None | Some(FeatureValue::Null) => Ok(Vec::new()),
                    Some(other) => Ok(other.to_json().to_string().into_bytes()),
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::from_byte_strings(name, vec![n], &v)
        }
    }
}

/// The input type a feature takes when the model's signature does not say.
fn natural(values: &[FeatureValue]) -> ColumnType {
    match values.iter().find(|v| !v.is_null()) {
        Some(FeatureValue::String(_) | FeatureValue::Bytes(_)) => ColumnType::String,
        Some(FeatureValue::Bool(_)) => ColumnType::Boolean,
        Some(FeatureValue::Int64(_) | FeatureValue::Int32(_)) => ColumnType::Long,
        _ => ColumnType::Double,
    }
}

#[async_trait]
impl Preprocessor for FeatureLookup {
    async fn preprocess(
        &self,
        model: &ModelName,
        signature: &Signature,
        mut inputs: Vec<Tensor>,
    ) -> Result<Vec<Tensor>> {
        let (keys, request_fields) = self.online.lookup_inputs(&self.selection)?;
        let mut entities = Vec::with_capacity(keys.len());
        for (key, _) in &keys {
            let t = inputs.iter().find(|t| t.name() == key).ok_or_else(|| {
                Error::invalid(
                    "entity key",
                    format!(
                        "{model} looks its features up by {}: the request has no input {key}",
                        keys.iter()
                            .map(|(k, _)| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            entities.push((key.clone(), key_values(t)?));
        }
        // Request fields of on-demand features travel with the entities.
        for (field, _) in request_fields {
            let t = inputs.iter().find(|t| t.name() == field).ok_or_else(|| {
                Error::invalid(
                    "request field",
                    format!("{model}'s on-demand features read {field}: the request has no input {field}"),
                )
            })?;
            let values = match t.datatype() {
                DataType::Bytes => key_values(t)?,
                _ => t
                    .to_f64_lossy()?
                    .into_iter()
                    .map(|v| {
                        if v.is_nan() {
                            FeatureValue::Null
                        } else {
                            FeatureValue::Float64(v)
                        }
                    })
                    .collect(),
            };
            entities.push((field, values));
        }
        let rows = entities.first().map_or(0, |(_, v)| v.len());
        let response = self
            .online
            .get_online_features(&self.selection, &entities, false)
            .await?;
        let wanted = inputs_of(signature);
        let mut missing: Vec<String> = Vec::new();
        let mut added = Vec::new();
        for (name, vector) in response.feature_names.iter().zip(&response.results) {
            if entities.iter().any(|(k, _)| k == name) || inputs.iter().any(|t| t.name() == name) {
                continue; // a join key or request field, or a feature the request overrides
            }
            let want = match &wanted {
                Some(w) => match w.get(name) {
                    Some(want) => Some(want),
                    None => continue, // the model does not read it
                },
                None => None,
            };
            let default = self.defaults.get(name);
            let optional = want.is_some_and(|w| !w.required);
            let mut values = Vec::with_capacity(rows);
            let mut lacking = Vec::new();
            for (row, (v, status)) in vector.values.iter().zip(&vector.statuses).enumerate() {
                if *status == FeatureStatus::Present {
                    values.push(Some(v.clone()));
                } else if let Some(d) = default {
                    values.push(Some(d.clone()));
                } else if optional {
                    values.push(None);
                } else {
                    lacking.push(format!(
                        "row {row}: {}",
                        serde_json::to_value(status)
                            .ok()
                            .and_then(|s| s.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ));
                    values.push(None);
                }
            }
            if !lacking.is_empty() {
                missing.push(format!("{name} ({})", lacking.join(", ")));
                continue;
            }
            let column = want
                .and_then(|w| w.column)
                .unwrap_or_else(|| natural(&vector.values));
            added.push(to_tensor(name, &values, column)?);
        }
        if !missing.is_empty() {
            return Err(Error::invalid(
                "features",
                format!(
                    "{model}: no value for {}; declare a default for them or materialize/push the entities",
                    missing.join("; ")
                ),
            ));
        }
        // The join keys stay only when the model reads them.
        if let Some(w) = &wanted {
            inputs.retain(|t| {
                !entities.iter().any(|(k, _)| k == t.name()) || w.contains_key(t.name())
            });
        }
        inputs.extend(added);
        Ok(inputs)
    }
}

/// Parses a `FEATURE=VALUE` default (`spend=0`, `plan=basic`, `active=true`) for command
/// lines: JSON numbers and booleans as such, anything else as a string.
pub fn parse_default(spec: &str) -> Result<(String, FeatureValue)> {
    let (name, value) = spec
        .split_once('=')
        .filter(|(n, _)| !n.trim().is_empty())
        .ok_or_else(|| {
            Error::invalid("feature default", format!("{spec:?} is not FEATURE=VALUE"))
        })?;
    let v = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(i) => FeatureValue::Int64(i),
            None => FeatureValue::Float64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Ok(serde_json::Value::Bool(b)) => FeatureValue::Bool(b),
        _ => FeatureValue::String(value.to_owned()),
    };
    Ok((name.trim().to_owned(), v))
}
