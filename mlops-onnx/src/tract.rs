//! The pure-Rust runtime: tract plans the graph once at load; every prediction runs the plan.

use std::collections::BTreeSet;
use std::sync::Arc;

use mlops_core::signature::TensorSpec;
use mlops_core::{DataType, Error, Result, Tensor};
use tract_onnx::prelude::{
    Framework, InferenceFact, InferenceModelExt, IntoRunnable, IntoTensor, TValue, TVec,
    TypedRunnableModel, tract_ndarray,
};
use tract_onnx::tract_hir::internal::{DatumType, TDim};

use crate::graph::{self, Graph, WHAT};
use crate::values::Values;

/// A graph planned by tract.
#[derive(Clone)]
pub(crate) struct TractEngine {
    plan: Arc<TypedRunnableModel>,
}

impl std::fmt::Debug for TractEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractEngine").finish_non_exhaustive()
    }
}

/// The operators tract cannot run, by `domain:op_type` name, after the rewrites of
/// [`Graph::for_tract`] (a ZipMap that ends the graph and `Scaler`s are rewritten).
pub(crate) fn missing_operators(graph: &Graph) -> BTreeSet<String> {
    let register = tract_onnx::onnx().op_register;
    graph
        .operators
        .iter()
        .filter(|name| {
            let op = graph::op_type(name);
            let rewritten =
                (op == "ZipMap" && graph.zipmap.is_some()) || (*name == "ai.onnx.ml:Scaler");
            !rewritten && !register.0.contains_key(op)
        })
        .cloned()
        .collect()
}

impl TractEngine {
    /// Plans `graph`; the caller checked [`missing_operators`] first.
    pub(crate) fn plan(graph: &Graph) -> Result<Self> {
        let proto = graph.for_tract()?;
        let onnx = tract_onnx::onnx().with_ignore_output_shapes(true);
        let mut model = onnx
            .model_for_proto_model(&proto)
            .map_err(|e| refused("cannot read the graph", &e))?;
        let Some(pb_graph) = proto.graph.as_ref() else {
            return Err(Error::invalid(WHAT, "the ONNX model has no graph"));
        };
        for (i, spec) in graph.inputs.iter().enumerate() {
            let name = spec.name.as_deref().unwrap_or_default();
            let params = graph::dim_params(pb_graph, name);
            let mut shape = Vec::with_capacity(spec.shape.len());
            for (axis, d) in spec.shape.iter().enumerate() {
                shape.push(if *d >= 0 {
                    TDim::Val(*d)
                } else {
                    // Named dimensions keep their names, so inputs sharing `N` share a batch
                    // size; an unnamed first dimension is the batch, shared by every input.
                    let symbol = match params.get(axis).cloned().flatten() {
                        Some(p) => p,
                        None if axis == 0 => "N".to_owned(),
                        None => format!("mlops_in{i}_d{axis}"),
                    };
                    TDim::Sym(model.symbols.sym(&symbol))
                });
            }
            model = model
                .with_input_fact(
                    i,
                    InferenceFact::dt_shape(datum_type(spec.datatype)?, shape),
                )
                .map_err(|e| refused("cannot set the input types", &e))?;
        }
        let plan = model
            .into_optimized()
            .map_err(|e| refused("cannot analyse the graph", &e))?
            .into_runnable()
            .map_err(|e| refused("cannot plan the graph", &e))?;
        let engine = Self { plan };
        // tract checks some kernels' types only when they run (no double Sigmoid, say): one
        // prediction on zeros now refuses such a graph at load, not at a request.
        if let Some(warm) = graph
            .inputs
            .iter()
            .map(zeros)
            .collect::<Option<Vec<Tensor>>>()
        {
            let warm: Vec<&Tensor> = warm.iter().collect();
            engine.run(&warm, &graph.outputs).map_err(|e| {
                Error::not_supported(
                    WHAT,
                    "on the pure-Rust runtime (tract)",
                    format!("tract fails on a zero-valued input: {e}"),
                )
            })?;
        }
        Ok(engine)
    }

    /// Runs the plan on inputs already checked against `inputs` (in that order).
    pub(crate) fn run(&self, inputs: &[&Tensor], outputs: &[TensorSpec]) -> Result<Vec<Tensor>> {
        let mut values: TVec<TValue> = TVec::new();
        for t in inputs {
            values.push(to_tract(t)?.into());
        }
        // The inputs were checked against the signature: a failure now is the model's (or the
        // runtime's), not the request's.
        let results = self
            .plan
            .run(values)
            .map_err(|e| Error::backend("tract", RuntimeError(format!("{e:#}"))))?;
        if results.len() != outputs.len() {
            return Err(Error::backend(
                "tract",
                RuntimeError(format!(
                    "{} outputs for the {} the graph declares",
                    results.len(),
                    outputs.len()
                )),
            ));
        }
        results
            .into_iter()
            .zip(outputs)
            .map(|(value, spec)| from_tract(&value.into_tensor(), spec))
            .collect()
    }
}

/// A runtime's failure, as the source of an [`Error::Backend`].
#[derive(Debug)]
pub(crate) struct RuntimeError(pub(crate) String);

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuntimeError {}

/// Elements of a warm-up input at most (a graph declaring larger fixed dimensions is planned
/// but not warmed up: the server's own warm-up, or the first request, runs it).
const WARM_UP_ELEMENTS: usize = 1 << 24;

/// A zero-valued input of one row (variable dimensions 1; empty strings), if it is small.
fn zeros(spec: &TensorSpec) -> Option<Tensor> {
    let shape: Vec<usize> = spec
        .shape
        .iter()
        .map(|d| usize::try_from(*d).ok().filter(|d| *d > 0).unwrap_or(1))
        .collect();
    let n = shape
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d))
        .filter(|n| *n <= WARM_UP_ELEMENTS)?;
    let name = spec.name.clone().unwrap_or_default();
    let bytes = n.checked_mul(spec.datatype.size().unwrap_or(4))?;
    Tensor::new(name, spec.datatype, shape, vec![0u8; bytes]).ok()
}

/// A model tract refused: [`Error::NotSupported`] with its reasons.
fn refused(stage: &str, e: &tract_onnx::prelude::TractError) -> Error {
    Error::not_supported(
        WHAT,
        "on the pure-Rust runtime (tract)",
        format!("tract {stage}: {e:#}"),
    )
}

fn datum_type(dt: DataType) -> Result<DatumType> {
    Ok(match dt {
        DataType::Bool => DatumType::Bool,
        DataType::Uint8 => DatumType::U8,
        DataType::Uint16 => DatumType::U16,
        DataType::Uint32 => DatumType::U32,
        DataType::Uint64 => DatumType::U64,
        DataType::Int8 => DatumType::I8,
        DataType::Int16 => DatumType::I16,
        DataType::Int32 => DatumType::I32,
        DataType::Int64 => DatumType::I64,
        DataType::Fp32 => DatumType::F32,
        DataType::Fp64 => DatumType::F64,
        DataType::Bytes => DatumType::String,
        other @ (DataType::Fp16 | DataType::Bf16) => {
            return Err(Error::not_supported(
                "onnx value",
                other.to_string(),
                "FP16 and BF16 graph inputs and outputs are not served",
            ));
        }
    })
}

/// Our tensor as a tract tensor.
fn to_tract(t: &Tensor) -> Result<tract_onnx::prelude::Tensor> {
    use tract_onnx::prelude::Tensor as T;
    let shape = t.shape();
    let bad = |e: tract_onnx::prelude::TractError| {
        Error::invalid("input", format!("input {:?}: {e:#}", t.name()))
    };
    match Values::of(t)? {
        Values::Bool(v) => T::from_shape(shape, &v).map_err(bad),
        Values::U8(v) => T::from_shape(shape, &v).map_err(bad),
        Values::I8(v) => T::from_shape(shape, &v).map_err(bad),
        Values::U16(v) => T::from_shape(shape, &v).map_err(bad),
        Values::I16(v) => T::from_shape(shape, &v).map_err(bad),
        Values::U32(v) => T::from_shape(shape, &v).map_err(bad),
        Values::I32(v) => T::from_shape(shape, &v).map_err(bad),
        Values::U64(v) => T::from_shape(shape, &v).map_err(bad),
        Values::I64(v) => T::from_shape(shape, &v).map_err(bad),
        Values::F32(v) => T::from_shape(shape, &v).map_err(bad),
        Values::F64(v) => T::from_shape(shape, &v).map_err(bad),
        Values::Strings(v) => tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), v)
            .map(IntoTensor::into_tensor)
            .map_err(|e| Error::invalid("input", format!("input {:?}: {e}", t.name()))),
    }
}

/// A tract result as our tensor of the output's declared type (tract sometimes computes in
/// another type than the graph declares: it is cast).
fn from_tract(value: &tract_onnx::prelude::Tensor, spec: &TensorSpec) -> Result<Tensor> {
    let name = spec.name.clone().unwrap_or_default();
    let shape = value.shape().to_vec();
    let target = datum_type(spec.datatype)?;
    let value = value.cast_to_dt(target).map_err(|e| {
        Error::invalid(
            WHAT,
            format!(
                "output {name:?} is {:?}, not {}: {e:#}",
                value.datum_type(),
                spec.datatype
            ),
        )
    })?;
    let fail = |e: tract_onnx::prelude::TractError| {
        Error::invalid(WHAT, format!("output {name:?}: {e:#}"))
    };
    let view = value.try_as_plain_ram().map_err(fail)?;
    macro_rules! slice {
        ($variant:ident, $ty:ty) => {
            Values::$variant(view.as_slice::<$ty>().map_err(fail)?.to_vec())
        };
    }
    let values = match spec.datatype {
        DataType::Bool => slice!(Bool, bool),
        DataType::Uint8 => slice!(U8, u8),
        DataType::Int8 => slice!(I8, i8),
        DataType::Uint16 => slice!(U16, u16),
        DataType::Int16 => slice!(I16, i16),
        DataType::Uint32 => slice!(U32, u32),
        DataType::Int32 => slice!(I32, i32),
        DataType::Uint64 => slice!(U64, u64),
        DataType::Int64 => slice!(I64, i64),
        DataType::Fp32 => slice!(F32, f32),
        DataType::Fp64 => slice!(F64, f64),
        DataType::Bytes => slice!(Strings, String),
        other @ (DataType::Fp16 | DataType::Bf16) => {
            return Err(Error::not_supported(
                "onnx value",
                name,
                format!("{other} outputs are not served"),
            ));
        }
    };
    values.into_tensor(name, shape)
}
