//! Model signatures: what a model takes and returns, in MLflow's vocabulary (column-based or
//! tensor-based schemas) with converters to and from MLflow's JSON encoding.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::DataType;

/// A column type of a column-based schema (MLflow's `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Boolean.
    Boolean,
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    Long,
    /// 32-bit float.
    Float,
    /// 64-bit float.
    Double,
    /// UTF-8 string.
    String,
    /// Bytes.
    Binary,
    /// Timestamp.
    Datetime,
}

impl ColumnType {
    /// MLflow's name (`double`, `long`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::Long => "long",
            Self::Float => "float",
            Self::Double => "double",
            Self::String => "string",
            Self::Binary => "binary",
            Self::Datetime => "datetime",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "long" => Self::Long,
            "float" => Self::Float,
            "double" => Self::Double,
            "string" => Self::String,
            "binary" => Self::Binary,
            "datetime" => Self::Datetime,
            other => {
                return Err(Error::invalid(
                    "signature",
                    format!("unknown column type {other:?}"),
                ));
            }
        })
    }

    /// The tensor datatype a column of this type travels as.
    pub fn tensor_type(self) -> DataType {
        match self {
            Self::Boolean => DataType::Bool,
            Self::Integer => DataType::Int32,
            Self::Long | Self::Datetime => DataType::Int64,
            Self::Float => DataType::Fp32,
            Self::Double => DataType::Fp64,
            Self::String | Self::Binary => DataType::Bytes,
        }
    }
}

/// One column of a column-based schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Column name (MLflow allows unnamed columns).
    pub name: Option<String>,
    /// Its type.
    #[serde(rename = "type")]
    pub col_type: ColumnType,
    /// Whether a value must be present (MLflow's default: true).
    pub required: bool,
}

impl ColumnSpec {
    /// A required named column.
    pub fn new(name: impl Into<String>, col_type: ColumnType) -> Self {
        Self {
            name: Some(name.into()),
            col_type,
            required: true,
        }
    }
}

/// One tensor of a tensor-based schema; `-1` in `shape` is a variable dimension (usually the
/// batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Tensor name (the Open Inference Protocol input or output name).
    pub name: Option<String>,
    /// Element type.
    pub datatype: DataType,
    /// Shape, `-1` for variable dimensions.
    pub shape: Vec<i64>,
}

impl TensorSpec {
    /// A named tensor spec.
    pub fn new(name: impl Into<String>, datatype: DataType, shape: Vec<i64>) -> Self {
        Self {
            name: Some(name.into()),
            datatype,
            shape,
        }
    }

    /// Whether a concrete `shape` fits this spec (same rank; fixed dimensions equal).
    pub fn accepts_shape(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self.shape.iter().zip(shape).all(|(want, got)| {
                *want < 0 || u64::try_from(*want).ok() == u64::try_from(*got).ok()
            })
    }
}

/// A schema: a list of columns or a list of tensors (MLflow's `Schema`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schema {
    /// Column-based (tabular) schema.
    Columns(Vec<ColumnSpec>),
    /// Tensor-based schema.
    Tensors(Vec<TensorSpec>),
}

impl Schema {
    /// MLflow's JSON encoding of this schema (the string stored under `signature.inputs` in an
    /// `MLmodel` file).
    pub fn to_mlflow_json(&self) -> String {
        let items: Vec<serde_json::Value> = match self {
            Self::Columns(cols) => cols
                .iter()
                .map(|c| {
                    let mut o =
                        serde_json::json!({"type": c.col_type.as_str(), "required": c.required});
                    if let (Some(name), Some(map)) = (&c.name, o.as_object_mut()) {
                        map.insert("name".into(), name.clone().into());
                    }
                    o
                })
                .collect(),
            Self::Tensors(ts) => ts
                .iter()
                .map(|t| {
                    let mut o = serde_json::json!({
                        "type": "tensor",
                        "tensor-spec": {"dtype": t.datatype.numpy_name(), "shape": t.shape},
                    });
                    if let (Some(name), Some(map)) = (&t.name, o.as_object_mut()) {
                        map.insert("name".into(), name.clone().into());
                    }
                    o
                })
                .collect(),
        };
        serde_json::Value::Array(items).to_string()
    }

    /// Parses MLflow's JSON encoding of a schema.
    pub fn from_mlflow_json(json: &str) -> Result<Self> {
        let bad = |m: String| Error::invalid("signature", m);
        let items: Vec<serde_json::Value> =
            serde_json::from_str(json).map_err(|e| bad("not a JSON list".into()).with_source(e))?;
        let is_tensor =
            |v: &serde_json::Value| v.get("type").and_then(|t| t.as_str()) == Some("tensor");
        let name_of =
            |v: &serde_json::Value| v.get("name").and_then(|n| n.as_str()).map(str::to_owned);
        if items.iter().all(is_tensor) && !items.is_empty() {
            let mut out = Vec::with_capacity(items.len());
            for v in &items {
                let spec = v
                    .get("tensor-spec")
                    .ok_or_else(|| bad(format!("tensor entry without tensor-spec: {v}")))?;
                let dtype = spec
                    .get("dtype")
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| bad(format!("tensor-spec without dtype: {spec}")))?;
                let shape = spec
                    .get("shape")
                    .and_then(|s| s.as_array())
                    .ok_or_else(|| bad(format!("tensor-spec without shape: {spec}")))?
                    .iter()
                    .map(|d| d.as_i64().ok_or_else(|| bad(format!("bad dimension {d}"))))
                    .collect::<Result<Vec<_>>>()?;
                out.push(TensorSpec {
                    name: name_of(v),
                    datatype: DataType::from_numpy_name(dtype)?,
                    shape,
                });
            }
            Ok(Self::Tensors(out))
        } else if items.iter().any(is_tensor) {
            Err(bad("a schema mixes tensor and column entries".into()))
        } else {
            let mut out = Vec::with_capacity(items.len());
            for v in &items {
                let ty = v
                    .get("type")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| bad(format!("column entry without type: {v}")))?;
                out.push(ColumnSpec {
                    name: name_of(v),
                    col_type: ColumnType::parse(ty)?,
                    required: v.get("required").and_then(|r| r.as_bool()).unwrap_or(true),
                });
            }
            Ok(Self::Columns(out))
        }
    }
}

/// What a model takes and returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Inputs.
    pub inputs: Schema,
    /// Outputs, when known.
    pub outputs: Option<Schema>,
}

impl Signature {
    /// A tensor-in, tensor-out signature.
    pub fn tensors(inputs: Vec<TensorSpec>, outputs: Vec<TensorSpec>) -> Self {
        Self {
            inputs: Schema::Tensors(inputs),
            outputs: Some(Schema::Tensors(outputs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_json_round_trips() {
        let cols = Schema::Columns(vec![
            ColumnSpec::new("age", ColumnType::Double),
            ColumnSpec {
                name: Some("plan".into()),
                col_type: ColumnType::String,
                required: false,
            },
        ]);
        let json = cols.to_mlflow_json();
        assert!(json.contains(r#""type":"double""#), "{json}");
        assert_eq!(Schema::from_mlflow_json(&json).unwrap(), cols);

        let ts = Schema::Tensors(vec![TensorSpec::new("x", DataType::Fp32, vec![-1, 4])]);
        let json = ts.to_mlflow_json();
        assert!(json.contains(r#""dtype":"float32""#), "{json}");
        assert_eq!(Schema::from_mlflow_json(&json).unwrap(), ts);
    }

    #[test]
    fn mlflow_json_written_by_mlflow_parses() {
        let json = r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]"#;
        let Schema::Tensors(t) = Schema::from_mlflow_json(json).unwrap() else {
            panic!("expected tensors")
        };
        assert_eq!(t[0].datatype, DataType::Fp64);
        assert!(t[0].accepts_shape(&[10, 3]));
        assert!(!t[0].accepts_shape(&[10, 4]));
        assert!(!t[0].accepts_shape(&[10]));
        assert!(Schema::from_mlflow_json("{").is_err());
        assert!(Schema::from_mlflow_json(r#"[{"type":"decimal"}]"#).is_err());
    }
}
