//! Writing ONNX graphs: what an exporter needs to turn a model of ours into a `model.onnx` that
//! onnxruntime (and so MLflow's `mlflow.onnx` flavor, Triton, KServe) runs.
//!
//! ```
//! use mlops_core::DataType;
//! use mlops_onnx::builder::{Attr, GraphBuilder};
//!
//! let mut g = GraphBuilder::new("affine", 19);
//! g.input("x", DataType::Fp32, &[-1, 2]);
//! g.constant_f32("w", &[1, 2], &[0.5, -1.0]);
//! g.constant_f32("b", &[1], &[0.25]);
//! g.node("Gemm", &["x", "w", "b"], &["y"], vec![Attr::int("transB", 1)]);
//! g.output("y", DataType::Fp32, &[-1, 1]);
//! let bytes = g.build()?;
//!
//! // A constant whose values do not fill its shape is refused when the graph is built.
//! let mut bad = GraphBuilder::new("bad", 19);
//! bad.constant_f32("w", &[2, 2], &[1.0]);
//! assert!(bad.build().unwrap_err().is_invalid_argument());
//! # Ok::<(), mlops_core::Error>(())
//! ```

use bytes::Bytes;
use mlops_core::{DataType, Error, Result};
use prost::Message;
use tract_onnx::pb::{self, tensor_shape_proto::dimension, type_proto};

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr(pb::AttributeProto);

impl Attr {
    fn base(name: &str, kind: pb::attribute_proto::AttributeType) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.to_owned(),
            r#type: kind as i32,
            ..pb::AttributeProto::default()
        }
    }

    /// An integer attribute (`axis`, `to`, `transB`, …).
    pub fn int(name: &str, value: i64) -> Self {
        let mut a = Self::base(name, pb::attribute_proto::AttributeType::Int);
        a.i = value;
        Self(a)
    }

    /// A float attribute (`alpha`, …).
    pub fn float(name: &str, value: f32) -> Self {
        let mut a = Self::base(name, pb::attribute_proto::AttributeType::Float);
        a.f = value;
        Self(a)
    }

    /// A list of integers (`axes`, `perm`, …).
    pub fn ints(name: &str, values: &[i64]) -> Self {
        let mut a = Self::base(name, pb::attribute_proto::AttributeType::Ints);
        a.ints = values.to_vec();
        Self(a)
    }

    /// A string attribute (`mode`, …).
    pub fn string(name: &str, value: &str) -> Self {
        let mut a = Self::base(name, pb::attribute_proto::AttributeType::String);
        a.s = value.as_bytes().to_vec();
        Self(a)
    }
}

/// ONNX's element type code of one of our datatypes.
pub fn elem_type(datatype: DataType) -> i32 {
    use pb::tensor_proto::DataType as D;
    (match datatype {
        DataType::Bool => D::Bool,
        DataType::Uint8 => D::Uint8,
        DataType::Uint16 => D::Uint16,
        DataType::Uint32 => D::Uint32,
        DataType::Uint64 => D::Uint64,
        DataType::Int8 => D::Int8,
        DataType::Int16 => D::Int16,
        DataType::Int32 => D::Int32,
        DataType::Int64 => D::Int64,
        DataType::Fp16 => D::Float16,
        DataType::Fp32 => D::Float,
        DataType::Fp64 => D::Double,
        DataType::Bf16 => D::Bfloat16,
        DataType::Bytes => D::String,
    }) as i32
}

/// Builds one ONNX model: inputs, constants, nodes and outputs, in the default domain at one
/// opset.
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    graph: pb::GraphProto,
    opset: i64,
    producer_version: String,
    metadata: Vec<(String, String)>,
    /// The first mistake made while building, reported by [`build`](Self::build).
    mistake: Option<Error>,
}

/// The name of a variable first dimension: the batch, shared by every input and output.
const BATCH: &str = "batch";

fn value_info(name: &str, datatype: DataType, shape: &[i64]) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type(datatype),
                shape: Some(pb::TensorShapeProto {
                    dim: shape
                        .iter()
                        .enumerate()
                        .map(|(axis, d)| pb::tensor_shape_proto::Dimension {
                            denotation: String::new(),
                            value: Some(match (*d < 0, axis) {
                                (true, 0) => dimension::Value::DimParam(BATCH.to_owned()),
                                // Other variable dimensions vary on their own.
                                (true, _) => dimension::Value::DimParam(format!("{name}_{axis}")),
                                (false, _) => dimension::Value::DimValue(*d),
                            }),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: String::new(),
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape
        .iter()
        .map(|d| i64::try_from(*d).unwrap_or(i64::MAX))
        .collect()
}

impl GraphBuilder {
    /// An empty graph called `name`, using operators of the default domain at `opset`.
    pub fn new(name: &str, opset: i64) -> Self {
        Self {
            graph: pb::GraphProto {
                name: name.to_owned(),
                ..pb::GraphProto::default()
            },
            opset,
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            metadata: Vec::new(),
            mistake: None,
        }
    }

    /// Whether a constant's values fill its shape; the first mismatch is kept for `build`.
    fn fits(&mut self, name: &str, shape: &[usize], values: usize) -> bool {
        let elements = shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
        if elements == Some(values) {
            return true;
        }
        if self.mistake.is_none() {
            self.mistake = Some(Error::invalid(
                "onnx graph",
                format!("constant {name:?} of shape {shape:?} was given {values} values"),
            ));
        }
        false
    }

    /// Adds a graph input; `-1` dimensions are variable (the batch).
    pub fn input(&mut self, name: &str, datatype: DataType, shape: &[i64]) -> &mut Self {
        self.graph.input.push(value_info(name, datatype, shape));
        self
    }

    /// Declares a graph output (a value some node computes).
    pub fn output(&mut self, name: &str, datatype: DataType, shape: &[i64]) -> &mut Self {
        self.graph.output.push(value_info(name, datatype, shape));
        self
    }

    /// Adds a node.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<Attr>,
    ) -> &mut Self {
        let name = format!("{op_type}_{}", self.graph.node.len());
        self.graph.node.push(pb::NodeProto {
            name,
            op_type: op_type.to_owned(),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            attribute: attributes.into_iter().map(|a| a.0).collect(),
            ..pb::NodeProto::default()
        });
        self
    }

    fn constant(&mut self, tensor: pb::TensorProto) -> &mut Self {
        self.graph.initializer.push(tensor);
        self
    }

    /// A float constant.
    pub fn constant_f32(&mut self, name: &str, shape: &[usize], values: &[f32]) -> &mut Self {
        if !self.fits(name, shape, values.len()) {
            return self;
        }
        self.constant(pb::TensorProto {
            name: name.to_owned(),
            data_type: elem_type(DataType::Fp32),
            dims: dims(shape),
            float_data: values.to_vec(),
            ..pb::TensorProto::default()
        })
    }

    /// A double constant.
    pub fn constant_f64(&mut self, name: &str, shape: &[usize], values: &[f64]) -> &mut Self {
        if !self.fits(name, shape, values.len()) {
            return self;
        }
        self.constant(pb::TensorProto {
            name: name.to_owned(),
            data_type: elem_type(DataType::Fp64),
            dims: dims(shape),
            double_data: values.to_vec(),
            ..pb::TensorProto::default()
        })
    }

    /// An int64 constant (shapes, axes, class labels).
    pub fn constant_i64(&mut self, name: &str, shape: &[usize], values: &[i64]) -> &mut Self {
        if !self.fits(name, shape, values.len()) {
            return self;
        }
        self.constant(pb::TensorProto {
            name: name.to_owned(),
            data_type: elem_type(DataType::Int64),
            dims: dims(shape),
            int64_data: values.to_vec(),
            ..pb::TensorProto::default()
        })
    }

    /// A boolean constant.
    pub fn constant_bool(&mut self, name: &str, shape: &[usize], values: &[bool]) -> &mut Self {
        if !self.fits(name, shape, values.len()) {
            return self;
        }
        self.constant(pb::TensorProto {
            name: name.to_owned(),
            data_type: elem_type(DataType::Bool),
            dims: dims(shape),
            int32_data: values.iter().map(|b| i32::from(*b)).collect(),
            ..pb::TensorProto::default()
        })
    }

    /// A string constant.
    pub fn constant_strings(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[impl AsRef<str>],
    ) -> &mut Self {
        if !self.fits(name, shape, values.len()) {
            return self;
        }
        self.constant(pb::TensorProto {
            name: name.to_owned(),
            data_type: elem_type(DataType::Bytes),
            dims: dims(shape),
            string_data: values
                .iter()
                .map(|s| s.as_ref().as_bytes().to_vec())
                .collect(),
            ..pb::TensorProto::default()
        })
    }

    /// Adds a `metadata_props` entry (shown by Netron, kept by onnxruntime).
    pub fn metadata(&mut self, key: &str, value: &str) -> &mut Self {
        self.metadata.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The serialized `ModelProto`, checked by parsing it back as a model we serve (every input
    /// and output a named tensor). A constant whose values did not fill its shape is
    /// `InvalidArgument` naming it. (Whether the nodes compute what was meant is the caller's to
    /// test: run the graph.)
    pub fn build(self) -> Result<Bytes> {
        if let Some(mistake) = self.mistake {
            return Err(mistake);
        }
        // IR version 9 is the first to carry opset 19; older opsets keep IR 8.
        let ir_version = if self.opset >= 19 { 9 } else { 8 };
        let model = pb::ModelProto {
            ir_version,
            producer_name: "mlops".to_owned(),
            producer_version: self.producer_version,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            metadata_props: self
                .metadata
                .into_iter()
                .map(|(key, value)| pb::StringStringEntryProto { key, value })
                .collect(),
            graph: Some(self.graph),
            ..pb::ModelProto::default()
        };
        let bytes = Bytes::from(model.encode_to_vec());
        crate::graph::Graph::parse(&bytes).map_err(|e| {
            Error::invalid("onnx graph", "the graph built is not a servable model").with_source(e)
        })?;
        Ok(bytes)
    }
}
