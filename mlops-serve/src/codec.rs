//! The Open Inference Protocol's REST encoding of tensors: JSON `data` (flat or nested, row-major)
//! and the binary tensor extension (raw little-endian bytes after the JSON header).

use bytes::{Bytes, BytesMut};
use mlops_core::serve::{InferRequest, InferResponse, Parameters, RequestedOutput};
use mlops_core::{DataType, Error, ModelName, Result, Tensor, Version};
use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The header naming the JSON part's length when a body carries binary tensors.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestInput<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Parameters,
    /// Kept as the body's own text: decoded straight into the tensor's bytes once the
    /// datatype is known, never as a generic JSON tree (which costs ~10x the payload).
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
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
struct RequestBody<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Parameters,
    #[serde(borrow)]
    inputs: Vec<RequestInput<'a>>,
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
    let parsed: RequestBody<'_> =
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
            (None, Some(data)) => json_tensor(&input.name, datatype, shape, data)?,
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

/// A tensor from JSON `data`, nested or flat (row-major), checked element by element as it is
/// parsed: the text goes straight into the tensor's little-endian bytes.
fn json_tensor(
    name: &str,
    datatype: DataType,
    shape: Vec<usize>,
    data: &RawValue,
) -> Result<Tensor> {
    let count: usize = mlops_core::tensor::element_count(&shape)
        .map_err(|e| bad(format!("input {name:?}")).with_source(e))?;
    if matches!(datatype, DataType::Fp16 | DataType::Bf16) {
        return Err(bad(format!(
            "input {name:?}: {datatype} has no JSON form; send it as binary data"
        )));
    }
    let text = data.get();
    // Every element takes at least one character and a separator: a shape that claims more
    // than the text can hold does not get to reserve memory for it.
    let width = datatype.size().unwrap_or(4);
    let capacity = count.min(text.len() / 2 + 1).saturating_mul(width);
    let mut sink = Elements {
        name,
        datatype,
        limit: count,
        seen: 0,
        bytes: Vec::with_capacity(capacity),
        error: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = ElementSeed(&mut sink)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = parsed {
        return Err(sink
            .error
            .take()
            .unwrap_or_else(|| bad(format!("input {name:?}: malformed data")).with_source(e)));
    }
    if sink.seen != count {
        return Err(bad(format!(
            "input {name:?}: shape {shape:?} needs {count} elements, data has {}",
            sink.seen
        )));
    }
    Tensor::new(name, datatype, shape, sink.bytes)
        .map_err(|e| bad(format!("input {name:?}")).with_source(e))
}

/// Where [`ElementSeed`] writes: the tensor's bytes, up to the element count the shape names
/// (elements past it are counted, for the error, but not stored).
struct Elements<'n> {
    name: &'n str,
    datatype: DataType,
    limit: usize,
    seen: usize,
    bytes: Vec<u8>,
    /// The typed error behind a failed parse (serde's own error only carries text).
    error: Option<Error>,
}

impl Elements<'_> {
    fn push(&mut self, raw: &[u8]) {
        if self.seen < self.limit {
            self.bytes.extend_from_slice(raw);
        }
        self.seen += 1;
    }

    /// Records why element `seen` does not fit and stops the parse.
    fn reject<E: serde::de::Error>(&mut self, what: &str) -> E {
        self.error = Some(bad(format!(
            "input {:?} element {} is not {what}",
            self.name, self.seen
        )));
        E::custom("rejected element")
    }

    /// What an element of this datatype must be, for errors about a value of another kind.
    fn expected(&self) -> &'static str {
        match self.datatype {
            DataType::Bool => "a boolean",
            DataType::Bytes => "a string",
            _ => "a number",
        }
    }

    fn integer<E: serde::de::Error>(&mut self, v: i128) -> std::result::Result<(), E> {
        macro_rules! int {
            ($t:ty) => {
                match <$t>::try_from(v) {
                    Ok(x) => self.push(&x.to_le_bytes()),
                    Err(_) => {
                        return Err(self.reject(concat!("an integer in range of ", stringify!($t))))
                    }
                }
            };
        }
        match self.datatype {
            DataType::Uint8 => int!(u8),
            DataType::Uint16 => int!(u16),
            DataType::Uint32 => int!(u32),
            DataType::Uint64 => int!(u64),
            DataType::Int8 => int!(i8),
            DataType::Int16 => int!(i16),
            DataType::Int32 => int!(i32),
            DataType::Int64 => int!(i64),
            // JSON numbers are f64 to the protocol, whatever their spelling.
            #[allow(clippy::cast_precision_loss)]
            DataType::Fp32 => self.push(&((v as f64) as f32).to_le_bytes()),
            #[allow(clippy::cast_precision_loss)]
            DataType::Fp64 => self.push(&(v as f64).to_le_bytes()),
            _ => return Err(self.reject(self.expected())),
        }
        Ok(())
    }
}

/// Parses one `data` value — an element, or an array of elements or arrays — into [`Elements`].
struct ElementSeed<'s, 'n>(&'s mut Elements<'n>);

impl<'de> serde::de::DeserializeSeed<'de> for ElementSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ElementSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a tensor element or an array of them")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(ElementSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<(), E> {
        if self.0.datatype != DataType::Bool {
            return Err(self.0.reject(self.0.expected()));
        }
        self.0.push(&[u8::from(v)]);
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.0.integer(i128::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.0.integer(i128::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<(), E> {
        match self.0.datatype {
            #[allow(clippy::cast_possible_truncation)]
            DataType::Fp32 => self.0.push(&(v as f32).to_le_bytes()),
            DataType::Fp64 => self.0.push(&v.to_le_bytes()),
            DataType::Bool | DataType::Bytes => return Err(self.0.reject(self.0.expected())),
            // An integer tensor given 1.5 (or 1.0: JSON's spelling decides, as before).
            dt => {
                let what = format!("an integer in range of {}", int_name(dt));
                return Err(self.0.reject(&what));
            }
        }
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<(), E> {
        if self.0.datatype != DataType::Bytes {
            return Err(self.0.reject(self.0.expected()));
        }
        let Ok(len) = u32::try_from(v.len()) else {
            return Err(self.0.reject("shorter than 4 GiB"));
        };
        if self.0.seen < self.0.limit {
            self.0.bytes.extend_from_slice(&len.to_le_bytes());
            self.0.bytes.extend_from_slice(v.as_bytes());
        }
        self.0.seen += 1;
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        Err(self.0.reject(self.0.expected()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> std::result::Result<(), A::Error> {
        Err(self.0.reject(self.0.expected()))
    }
}

/// The Rust name of an integer datatype, as errors about its range spell it.
fn int_name(dt: DataType) -> &'static str {
    match dt {
        DataType::Uint8 => "u8",
        DataType::Uint16 => "u16",
        DataType::Uint32 => "u32",
        DataType::Uint64 => "u64",
        DataType::Int8 => "i8",
        DataType::Int16 => "i16",
        DataType::Int32 => "i32",
        _ => "i64",
    }
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
