//! What a server needs to know about an ONNX graph before running it: the signature, the
//! operators, scikit-learn's ZipMap, and the rewrites that let the pure-Rust runtime run common
//! scikit-learn exports.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use mlops_core::signature::TensorSpec;
use mlops_core::{DataType, Error, Result};
use tract_onnx::pb::{self, tensor_shape_proto::dimension, type_proto};

/// What a failure is about, in errors.
pub(crate) const WHAT: &str = "onnx model";

/// The skl2onnx option that makes a classifier's probabilities a plain tensor.
pub(crate) const ZIPMAP_HINT: &str = "re-export with skl2onnx's options={id(model): {\"zipmap\": False}} (or \
     options={type(model): {\"zipmap\": False}})";

/// A parsed model and what was learned from it.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    pub(crate) proto: pb::ModelProto,
    pub(crate) inputs: Vec<TensorSpec>,
    pub(crate) outputs: Vec<TensorSpec>,
    /// The ZipMap whose maps the probability output carries, if the graph ends in one.
    pub(crate) zipmap: Option<ZipMap>,
    /// Every operator the graph uses (subgraphs included), by `domain:op_type` (`op_type` alone in
    /// the default domain).
    pub(crate) operators: BTreeSet<String>,
}

/// scikit-learn's ZipMap at the end of a classifier: its output and class labels.
#[derive(Debug, Clone)]
pub(crate) struct ZipMap {
    /// The output it produced (the name is kept for the tensor that replaces it).
    pub(crate) output: String,
    pub(crate) labels: ClassLabels,
}

/// The class labels of an unwrapped ZipMap: the columns of the probability output, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClassLabels {
    /// Integer classes (`classlabels_int64s`).
    Int64(Vec<i64>),
    /// String classes (`classlabels_strings`).
    Strings(Vec<String>),
}

impl ClassLabels {
    /// How many classes.
    pub fn len(&self) -> usize {
        match self {
            Self::Int64(v) => v.len(),
            Self::Strings(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Graph {
    /// Parses an ONNX file (a serialized `ModelProto`) and derives its signature.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        use prost::Message;
        let proto = pb::ModelProto::decode(bytes).map_err(|e| {
            Error::invalid(WHAT, format!("not an ONNX model (ModelProto): {e}")).with_source(e)
        })?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| Error::invalid(WHAT, "the ONNX model has no graph"))?;
        if graph.node.is_empty() {
            return Err(Error::invalid(WHAT, "the ONNX graph has no nodes"));
        }
        if let Some(name) = external_tensor(graph) {
            return Err(Error::not_supported(
                "onnx tensor",
                name,
                "its data is in a file beside the model (external data), which is not read: \
                 save the model with every tensor inside it \
                 (onnx.save(model, path, save_as_external_data=False))",
            ));
        }
        let mut operators = BTreeSet::new();
        collect_operators(graph, &mut operators);
        let zipmap = find_zipmap(graph)?;
        let initializers: BTreeSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|i| !initializers.contains(i.name.as_str()))
            .map(|i| tensor_spec(i, "input"))
            .collect::<Result<Vec<_>>>()?;
        if inputs.is_empty() {
            return Err(Error::invalid(WHAT, "the ONNX graph has no inputs"));
        }
        if graph.output.is_empty() {
            return Err(Error::invalid(WHAT, "the ONNX graph has no outputs"));
        }
        let outputs = graph
            .output
            .iter()
            .map(|o| match &zipmap {
                Some(z) if z.output == o.name => Ok(TensorSpec::new(
                    o.name.clone(),
                    DataType::Fp32,
                    vec![-1, i64::try_from(z.labels.len()).unwrap_or(i64::MAX)],
                )),
                _ => tensor_spec(o, "output"),
            })
            .collect::<Result<Vec<_>>>()?;
        for spec in inputs.iter().chain(&outputs) {
            if matches!(spec.datatype, DataType::Fp16 | DataType::Bf16) {
                return Err(Error::not_supported(
                    "onnx value",
                    spec.name.clone().unwrap_or_default(),
                    format!(
                        "{} graph inputs and outputs are not served (cast to FP32 in the graph)",
                        spec.datatype
                    ),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for name in inputs
            .iter()
            .chain(&outputs)
            .filter_map(|s| s.name.as_deref())
        {
            if name.is_empty() {
                return Err(Error::invalid(WHAT, "a graph input or output has no name"));
            }
            if !seen.insert(name) {
                return Err(Error::invalid(
                    WHAT,
                    format!("{name:?} names two graph inputs or outputs"),
                ));
            }
        }
        Ok(Self {
            proto,
            inputs,
            outputs,
            zipmap,
            operators,
        })
    }

    /// What the graph says about where it came from: `producer_name`, `producer_version`,
    /// `domain`, `model_version`, `opset.<domain>` and the model's `metadata_props`.
    pub(crate) fn provenance(&self) -> BTreeMap<String, String> {
        let p = &self.proto;
        let mut out = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            if !v.is_empty() {
                out.insert(k.to_owned(), v);
            }
        };
        put("producer_name", p.producer_name.clone());
        put("producer_version", p.producer_version.clone());
        put("domain", p.domain.clone());
        if p.model_version != 0 {
            put("model_version", p.model_version.to_string());
        }
        put("ir_version", p.ir_version.to_string());
        for o in &p.opset_import {
            let domain = if o.domain.is_empty() {
                "ai.onnx"
            } else {
                o.domain.as_str()
            };
            put(&format!("opset.{domain}"), o.version.to_string());
        }
        for m in &p.metadata_props {
            put(&format!("metadata.{}", m.key), m.value.clone());
        }
        out
    }

    /// The ONNX file onnxruntime runs: the file as given, or — when it ends in a ZipMap — the
    /// graph with the ZipMap replaced by the tensor it wraps, re-encoded (reading the maps back
    /// row by row cost more than the model: 1.5 ms for 1024 rows of a logistic regression).
    pub(crate) fn for_onnxruntime(&self, original: &Bytes) -> Result<Bytes> {
        let Some(z) = &self.zipmap else {
            return Ok(original.clone());
        };
        let mut proto = self.proto.clone();
        let Some(graph) = proto.graph.as_mut() else {
            return Err(Error::invalid(WHAT, "the ONNX model has no graph"));
        };
        unwrap_zipmap(graph, z);
        Ok(Bytes::from(prost::Message::encode_to_vec(&proto)))
    }

    /// The graph as tract will run it: a ZipMap replaced by the tensor it wraps, scikit-learn's
    /// `Scaler` expanded into `Cast`, `Sub` and `Mul`.
    pub(crate) fn for_tract(&self) -> Result<pb::ModelProto> {
        let mut proto = self.proto.clone();
        let Some(graph) = proto.graph.as_mut() else {
            return Err(Error::invalid(WHAT, "the ONNX model has no graph"));
        };
        if let Some(z) = &self.zipmap {
            unwrap_zipmap(graph, z);
        }
        let labelled = label_tree_classifiers(graph)?;
        if (expand_scalers(graph)? || labelled)
            && !proto.opset_import.iter().any(|o| o.domain.is_empty())
        {
            // The expansion's operators live in the default domain, which a graph of ai.onnx.ml
            // operators alone may not import.
            proto.opset_import.push(pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            });
        }
        Ok(proto)
    }
}

/// The name of a tensor whose data lives outside the file (`data_location: EXTERNAL`), in
/// initializers, constant attributes or subgraphs.
fn external_tensor(graph: &pb::GraphProto) -> Option<String> {
    let external = |t: &pb::TensorProto| {
        t.data_location == Some(pb::tensor_proto::DataLocation::External as i32)
            || !t.external_data.is_empty()
    };
    if let Some(t) = graph.initializer.iter().find(|t| external(t)) {
        return Some(t.name.clone());
    }
    for node in &graph.node {
        for attr in &node.attribute {
            if let Some(t) = attr.t.iter().chain(&attr.tensors).find(|t| external(t)) {
                return Some(if t.name.is_empty() {
                    node.name.clone()
                } else {
                    t.name.clone()
                });
            }
            for g in attr.g.iter().chain(&attr.graphs) {
                if let Some(name) = external_tensor(g) {
                    return Some(name);
                }
            }
        }
    }
    None
}

/// `op_type`, or `domain:op_type` outside the default domain.
fn operator_name(node: &pb::NodeProto) -> String {
    if node.domain.is_empty() || node.domain == "ai.onnx" {
        node.op_type.clone()
    } else {
        format!("{}:{}", node.domain, node.op_type)
    }
}

fn collect_operators(graph: &pb::GraphProto, out: &mut BTreeSet<String>) {
    for node in &graph.node {
        out.insert(operator_name(node));
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                collect_operators(g, out);
            }
        }
    }
}

/// The operator's `op_type` from a `domain:op_type` name.
pub(crate) fn op_type(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// The ZipMap ending the graph, if any. A ZipMap anywhere else (its maps feeding other nodes, or
/// two of them) has no tensor form and is refused with the skl2onnx option that avoids it.
fn find_zipmap(graph: &pb::GraphProto) -> Result<Option<ZipMap>> {
    let outputs: BTreeSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut found: Option<ZipMap> = None;
    for node in graph.node.iter().filter(|n| n.op_type == "ZipMap") {
        let refuse = |why: &str| {
            Error::not_supported(
                "onnx operator",
                "ZipMap",
                format!("{why}, which no tensor protocol carries; {ZIPMAP_HINT}"),
            )
        };
        let output = match (node.input.as_slice(), node.output.as_slice()) {
            ([_], [o]) if outputs.contains(o.as_str()) => o.clone(),
            _ => return Err(refuse("a ZipMap whose maps feed other nodes")),
        };
        if found.is_some() {
            return Err(refuse("more than one ZipMap output"));
        }
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        let labels = match (attr("classlabels_int64s"), attr("classlabels_strings")) {
            (Some(a), _) if !a.ints.is_empty() => ClassLabels::Int64(a.ints.clone()),
            (_, Some(a)) if !a.strings.is_empty() => ClassLabels::Strings(
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => {
                return Err(Error::invalid(
                    WHAT,
                    "a ZipMap node without classlabels_int64s or classlabels_strings",
                ));
            }
        };
        found = Some(ZipMap { output, labels });
    }
    Ok(found)
}

/// Replaces the ZipMap by an `Identity` of the probability tensor it read and declares the
/// output as FP32 `[N, classes]`.
fn unwrap_zipmap(graph: &mut pb::GraphProto, z: &ZipMap) {
    for node in graph
        .node
        .iter_mut()
        .filter(|n| n.op_type == "ZipMap" && n.output.first() == Some(&z.output))
    {
        node.op_type = "Identity".into();
        node.domain = String::new();
        node.attribute.clear();
    }
    for o in graph.output.iter_mut().filter(|o| o.name == z.output) {
        o.r#type = Some(tensor_type(
            ELEM_FLOAT,
            &[
                None,
                Some(i64::try_from(z.labels.len()).unwrap_or(i64::MAX)),
            ],
        ));
    }
}

/// Expands every `ai.onnx.ml` `Scaler` (`y = (x - offset) * scale`, what skl2onnx writes for a
/// `StandardScaler`) into `Cast` to float, `Sub` and `Mul` by constants, which tract runs.
fn expand_scalers(graph: &mut pb::GraphProto) -> Result<bool> {
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut constants = Vec::new();
    for (index, node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if node.op_type != "Scaler" || node.domain != "ai.onnx.ml" {
            nodes.push(node);
            continue;
        }
        let (input, output) = match (node.input.as_slice(), node.output.as_slice()) {
            ([i], [o]) => (i.clone(), o.clone()),
            _ => {
                return Err(Error::invalid(
                    WHAT,
                    "a Scaler without one input and one output",
                ));
            }
        };
        let floats = |name: &str| {
            node.attribute
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.floats.clone())
                .unwrap_or_default()
        };
        let (offset, scale) = (floats("offset"), floats("scale"));
        let prefix = format!("mlops_scaler_{index}");
        let cast = format!("{prefix}_cast");
        let centred = format!("{prefix}_centred");
        let offset_name = format!("{prefix}_offset");
        let scale_name = format!("{prefix}_scale");
        constants.push(float_tensor(&offset_name, offset));
        constants.push(float_tensor(&scale_name, scale));
        nodes.push(simple_node(
            "Cast",
            &[&input],
            &cast,
            vec![int_attribute("to", i64::from(ELEM_FLOAT))],
        ));
        nodes.push(simple_node(
            "Sub",
            &[&cast, &offset_name],
            &centred,
            Vec::new(),
        ));
        nodes.push(simple_node(
            "Mul",
            &[&centred, &scale_name],
            &output,
            Vec::new(),
        ));
    }
    graph.node = nodes;
    let expanded = !constants.is_empty();
    graph.initializer.extend(constants);
    Ok(expanded)
}

/// Computes the label of every `ai.onnx.ml` `TreeEnsembleClassifier` as the class of the
/// highest probability (the first on ties, as onnxruntime), from the probabilities it outputs:
/// tract 0.23 takes the label of a two-class ensemble from the wrong axis (always the first
/// class) while its probabilities are right. Says whether it rewrote any.
fn label_tree_classifiers(graph: &mut pb::GraphProto) -> Result<bool> {
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut constants = Vec::new();
    for (index, mut node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        let outputs = match node.output.as_slice() {
            [label, probabilities]
                if node.op_type == "TreeEnsembleClassifier"
                    && node.domain == "ai.onnx.ml"
                    && !label.is_empty()
                    && !probabilities.is_empty() =>
            {
                Some((label.clone(), probabilities.clone()))
            }
            _ => None,
        };
        let Some((label, probabilities)) = outputs else {
            nodes.push(node);
            continue;
        };
        let prefix = format!("mlops_tree_{index}");
        let classes = format!("{prefix}_classes");
        let winner = format!("{prefix}_argmax");
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        let constant = match (attr("classlabels_int64s"), attr("classlabels_strings")) {
            (Some(a), _) if !a.ints.is_empty() => pb::TensorProto {
                name: classes.clone(),
                data_type: pb::tensor_proto::DataType::Int64 as i32,
                dims: vec![i64::try_from(a.ints.len()).unwrap_or(i64::MAX)],
                int64_data: a.ints.clone(),
                ..pb::TensorProto::default()
            },
            (_, Some(a)) if !a.strings.is_empty() => pb::TensorProto {
                name: classes.clone(),
                data_type: pb::tensor_proto::DataType::String as i32,
                dims: vec![i64::try_from(a.strings.len()).unwrap_or(i64::MAX)],
                string_data: a.strings.clone(),
                ..pb::TensorProto::default()
            },
            _ => {
                nodes.push(node);
                continue;
            }
        };
        // The node's own label goes nowhere; ours takes its name, right after it.
        node.output[0] = format!("{prefix}_tract_label");
        nodes.push(node);
        constants.push(constant);
        nodes.push(simple_node(
            "ArgMax",
            &[&probabilities],
            &winner,
            vec![int_attribute("axis", 1), int_attribute("keepdims", 0)],
        ));
        nodes.push(simple_node(
            "Gather",
            &[&classes, &winner],
            &label,
            vec![int_attribute("axis", 0)],
        ));
    }
    graph.node = nodes;
    let rewrote = !constants.is_empty();
    graph.initializer.extend(constants);
    Ok(rewrote)
}

/// A 1-D float constant (a Scaler's one value per column, or a single value broadcast to all).
fn float_tensor(name: &str, values: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        data_type: ELEM_FLOAT,
        dims: vec![i64::try_from(values.len()).unwrap_or(i64::MAX)],
        float_data: values,
        ..pb::TensorProto::default()
    }
}

fn simple_node(
    op_type: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: output.to_owned(),
        op_type: op_type.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        attribute,
        ..pb::NodeProto::default()
    }
}

fn int_attribute(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_owned(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..pb::AttributeProto::default()
    }
}

/// A tensor type with these dimensions (`None`: variable).
fn tensor_type(elem_type: i32, dims: &[Option<i64>]) -> pb::TypeProto {
    pb::TypeProto {
        denotation: String::new(),
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type,
            shape: Some(pb::TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|d| pb::tensor_shape_proto::Dimension {
                        denotation: String::new(),
                        value: d.map(dimension::Value::DimValue),
                    })
                    .collect(),
            }),
        })),
    }
}

// ONNX's TensorProto.DataType codes.
pub(crate) const ELEM_FLOAT: i32 = 1;

/// Our datatype of an ONNX element type; `None` for the ones we do not carry.
pub(crate) fn elem_type(code: i32) -> Option<DataType> {
    Some(match code {
        1 => DataType::Fp32,
        2 => DataType::Uint8,
        3 => DataType::Int8,
        4 => DataType::Uint16,
        5 => DataType::Int16,
        6 => DataType::Int32,
        7 => DataType::Int64,
        8 => DataType::Bytes,
        9 => DataType::Bool,
        10 => DataType::Fp16,
        11 => DataType::Fp64,
        12 => DataType::Uint32,
        13 => DataType::Uint64,
        16 => DataType::Bf16,
        _ => return None,
    })
}

fn elem_name(code: i32) -> String {
    pb::tensor_proto::DataType::try_from(code)
        .map(|d| d.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("type {code}"))
}

/// A graph input or output as a tensor spec: every dimension that is not a fixed number (a
/// `dim_param` such as `N`, or no value) is `-1`. A sequence, a map or an element type we do
/// not carry is [`Error::NotSupported`] naming it.
fn tensor_spec(info: &pb::ValueInfoProto, role: &str) -> Result<TensorSpec> {
    let name = &info.name;
    let Some(type_proto::Value::TensorType(t)) =
        info.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(Error::not_supported(
            "onnx value",
            name,
            format!(
                "{role} {name:?} is not a tensor (a sequence or a map); only tensors are served"
            ),
        ));
    };
    let datatype = elem_type(t.elem_type).ok_or_else(|| {
        Error::not_supported(
            "onnx value",
            name,
            format!(
                "{role} {name:?} has element type {}, which is not served",
                elem_name(t.elem_type)
            ),
        )
    })?;
    let shape = match &t.shape {
        Some(s) => s
            .dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(n)) if n >= 0 => n,
                _ => -1,
            })
            .collect(),
        None => {
            return Err(Error::not_supported(
                "onnx value",
                name,
                format!("{role} {name:?} has no declared shape (not even its rank)"),
            ));
        }
    };
    Ok(TensorSpec::new(name.clone(), datatype, shape))
}

/// The variable dimensions of a graph input, by axis: their `dim_param` names where the graph
/// gives usable ones. Inputs that share a name share a size.
pub(crate) fn dim_params(graph: &pb::GraphProto, input: &str) -> Vec<Option<String>> {
    let Some(info) = graph.input.iter().find(|i| i.name == input) else {
        return Vec::new();
    };
    let Some(type_proto::Value::TensorType(t)) =
        info.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Vec::new();
    };
    t.shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(dimension::Value::DimParam(p)) if is_symbol(p) => Some(p.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a `dim_param` is a plain identifier (torch writes expressions such as `2*s0`; those
/// get a symbol of their own).
fn is_symbol(p: &str) -> bool {
    let mut chars = p.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
