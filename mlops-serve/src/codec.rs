//! The Open Inference Protocol's REST encoding of tensors: JSON `data` (flat or nested, row-major)
//! and the binary tensor extension (raw little-endian bytes after the JSON header).

use bytes::{Bytes, BytesMut};
use mlops_core::serve::{InferRequest, InferResponse, Parameters, RequestedOutput};
use mlops_core::{DataType, Error, ModelName, Result, Tensor, Version};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The header naming the JSON part's length when a body carries binary tensors.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Parameters,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestOutput {
    name: String,
    #[serde(default)]
    parameters: Parameters,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Parameters,
    inputs: Vec<RequestInput>,
    #[serde(default)]
    outputs: Vec<RequestOutput>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid("request", msg)
}

/// Decodes a request body. `json_len` is the `Inference-Header-Content-Length` header: the
/// JSON part's length when binary tensor data follows it.
pub fn decode_request(
    model: ModelName,
    version: Option<Version>,
    body: &Bytes,
    json_len: Option<usize>,
) -> Result<InferRequest> {
    let (json, mut binary) = match json_len {
        Some(n) if n > body.len() => {
            return Err(bad(format!(
                "Inference-Header-Content-Length is {n} but the body has {} bytes",
                body.len()
            )));
        }
        Some(n) => (body.slice(..n), body.slice(n..)),
        None => (body.clone(), Bytes::new()),
    };
    let parsed: RequestBody =
        serde_json::from_slice(&json).map_err(|e| bad("malformed JSON").with_source(e))?;
    let mut inputs = Vec::with_capacity(parsed.inputs.len());
    for input in parsed.inputs {
        let datatype: DataType = input.datatype.parse().map_err(|_| {
            bad(format!(
                "input {:?}: unknown datatype {:?}",
                input.name, input.datatype
            ))
        })?;
        let shape: Vec<usize> = input
            .shape
            .iter()
            .map(|d| usize::try_from(*d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                bad(format!(
                    "input {:?}: shape {:?} has a negative dimension",
                    input.name, input.shape
                ))
            })?;
        let binary_size = match input.parameters.get("binary_data_size") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "input {:?}: binary_data_size must be a count of bytes",
                            input.name
                        ))
                    })?,
            ),
        };
        let tensor = match (binary_size, input.data) {
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "input {:?} has both data and binary_data_size",
                    input.name
                )));
            }
            (Some(size), None) => {
                if size > binary.len() {
                    return Err(bad(format!(
                        "input {:?}: binary_data_size {size} but only {} binary bytes remain",
                        input.name,
                        binary.len()
                    )));
                }
                let raw = binary.split_to(size);
                Tensor::new(&input.name, datatype, shape, raw)
                    .map_err(|e| bad(format!("input {:?}", input.name)).with_source(e))?
            }
            (None, Some(data)) => json_tensor(&input.name, datatype, shape, &data)?,
            (None, None) => {
                return Err(bad(format!(
                    "input {:?} has neither data nor binary_data_size",
                    input.name
                )));
            }
        };
        inputs.push(tensor);
    }
    if !binary.is_empty() {
        return Err(bad(format!(
            "{} bytes of binary data are not claimed by any input",
            binary.len()
        )));
    }
    let mut request = InferRequest::new(model, inputs);
    request.model_version = version;
    request.id = parsed.id;
    request.parameters = parsed.parameters;
    request.outputs = parsed
        .outputs
        .into_iter()
        .map(|o| RequestedOutput {
            name: o.name,
            parameters: o.parameters,
        })
        .collect();
    Ok(request)
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// A tensor from JSON `data`, nested or flat, checked element by element.
fn json_tensor(name: &str, datatype: DataType, shape: Vec<usize>, data: &Value) -> Result<Tensor> {
    let mut flat = Vec::new();
    flatten(data, &mut flat);
    let count: usize = mlops_core::tensor::element_count(&shape)
        .map_err(|e| bad(format!("input {name:?}")).with_source(e))?;
    if flat.len() != count {
        return Err(bad(format!(
            "input {name:?}: shape {shape:?} needs {count} elements, data has {}",
            flat.len()
        )));
    }
    let elem = |i: usize, what: &str| bad(format!("input {name:?} element {i} is not {what}"));
    macro_rules! ints {
        ($t:ty) => {{
            let mut bytes = Vec::with_capacity(count * std::mem::size_of::<$t>());
            for (i, v) in flat.iter().enumerate() {
                let x: $t = match v {
                    Value::Number(n) => n
                        .as_i64()
                        .and_then(|x| <$t>::try_from(x).ok())
                        .or_else(|| n.as_u64().and_then(|x| <$t>::try_from(x).ok()))
                        .ok_or_else(|| {
                            elem(i, concat!("an integer in range of ", stringify!($t)))
                        })?,
                    _ => return Err(elem(i, "a number")),
                };
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            bytes
        }};
    }
    let bytes: Vec<u8> = match datatype {
        DataType::Bool => flat
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_bool()
                    .map(u8::from)
                    .ok_or_else(|| elem(i, "a boolean"))
            })
            .collect::<Result<_>>()?,
        DataType::Uint8 => ints!(u8),
        DataType::Uint16 => ints!(u16),
        DataType::Uint32 => ints!(u32),
        DataType::Uint64 => ints!(u64),
        DataType::Int8 => ints!(i8),
        DataType::Int16 => ints!(i16),
        DataType::Int32 => ints!(i32),
        DataType::Int64 => ints!(i64),
        DataType::Fp32 => {
            let mut b = Vec::with_capacity(count * 4);
            for (i, v) in flat.iter().enumerate() {
                let x = v.as_f64().ok_or_else(|| elem(i, "a number"))? as f32;
                b.extend_from_slice(&x.to_le_bytes());
            }
            b
        }
        DataType::Fp64 => {
            let mut b = Vec::with_capacity(count * 8);
            for (i, v) in flat.iter().enumerate() {
                let x = v.as_f64().ok_or_else(|| elem(i, "a number"))?;
                b.extend_from_slice(&x.to_le_bytes());
            }
            b
        }
        DataType::Fp16 | DataType::Bf16 => {
            return Err(bad(format!(
                "input {name:?}: {datatype} has no JSON form; send it as binary data"
            )));
        }
        DataType::Bytes => {
            let mut b = Vec::new();
            for (i, v) in flat.iter().enumerate() {
                let s = v.as_str().ok_or_else(|| elem(i, "a string"))?;
                let len = u32::try_from(s.len()).map_err(|_| elem(i, "shorter than 4 GiB"))?;
                b.extend_from_slice(&len.to_le_bytes());
                b.extend_from_slice(s.as_bytes());
            }
            b
        }
    };
    Tensor::new(name, datatype, shape, bytes)
        .map_err(|e| bad(format!("input {name:?}")).with_source(e))
}

/// JSON `data` of a tensor (flat, row-major), typed so it serialises without an intermediate
/// document.
#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    Bool(Vec<bool>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Str(Vec<&'a str>),
}

fn json_data(t: &Tensor) -> Result<Data<'_>> {
    Ok(match t.datatype() {
        DataType::Bool => Data::Bool(t.to_bool()?),
        DataType::Fp32 => Data::F32(t.to_f32()?),
        DataType::Bytes => Data::Str(
            t.to_byte_strings()?
                .into_iter()
                .map(|b| {
                    std::str::from_utf8(b).map_err(|_| {
                        bad(format!(
                            "output {:?} holds bytes that are not UTF-8; request it as binary data",
                            t.name()
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            Data::I64(t.to_i64()?)
        }
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 | DataType::Uint64 => {
            // Exact, also above 2^53: read the little-endian words directly.
            let size = t.datatype().size().unwrap_or(1);
            Data::U64(
                t.data()
                    .chunks_exact(size)
                    .map(|c| {
                        let mut word = [0u8; 8];
                        word[..size].copy_from_slice(c);
                        u64::from_le_bytes(word)
                    })
                    .collect(),
            )
        }
        DataType::Fp64 | DataType::Fp16 | DataType::Bf16 => Data::F64(t.to_f64_lossy()?),
    })
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

#[derive(Serialize)]
struct OutputDoc<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data<'a>>,
}

#[derive(Serialize)]
struct ResponseDoc<'a> {
    model_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Parameters::is_empty")]
    parameters: &'a Parameters,
    outputs: Vec<OutputDoc<'a>>,
}

/// An encoded response: its body and, when binary outputs follow the JSON, the JSON length.
#[derive(Debug)]
pub struct EncodedResponse {
    /// The body.
    pub body: Bytes,
    /// Set when the body carries binary outputs after the JSON header.
    pub json_len: Option<usize>,
}

/// Encodes a response; outputs go binary when the request asked (per output
/// `binary_data: true`, or request-level `binary_data_output: true`).
pub fn encode_response(
    request_outputs: &[RequestedOutput],
    request_params: &Parameters,
    response: &InferResponse,
) -> Result<EncodedResponse> {
    let all_binary = request_params
        .get("binary_data_output")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut binary = BytesMut::new();
    let mut outputs = Vec::with_capacity(response.outputs.len());
    for t in &response.outputs {
        let wants_binary = all_binary
            || request_outputs.iter().any(|o| {
                o.name == t.name()
                    && o.parameters.get("binary_data").and_then(Value::as_bool) == Some(true)
            });
        let (parameters, data) = if wants_binary {
            binary.extend_from_slice(t.data());
            (
                Some(BinarySize {
                    binary_data_size: t.data().len(),
                }),
                None,
            )
        } else {
            (None, Some(json_data(t)?))
        };
        outputs.push(OutputDoc {
            name: t.name(),
            datatype: t.datatype().as_str(),
            shape: t.shape(),
            parameters,
            data,
        });
    }
    let version = response.model_version.map(|v| v.to_string());
    let doc = ResponseDoc {
        model_name: response.model_name.as_str(),
        model_version: version.as_deref(),
        id: response.id.as_deref(),
        parameters: &response.parameters,
        outputs,
    };
    let mut body = serde_json::to_vec(&doc).map_err(|e| Error::backend("serde_json", e))?;
    if binary.is_empty() {
        Ok(EncodedResponse {
            body: Bytes::from(body),
            json_len: None,
        })
    } else {
        let len = body.len();
        body.extend_from_slice(&binary);
        Ok(EncodedResponse {
            body: Bytes::from(body),
            json_len: Some(len),
        })
    }
}

/// Request-level parameters and requested outputs, kept to encode the response.
pub fn response_options(request: &InferRequest) -> (Vec<RequestedOutput>, Parameters) {
    (request.outputs.clone(), request.parameters.clone())
}
