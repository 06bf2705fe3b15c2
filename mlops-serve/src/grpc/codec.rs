//! The Open Inference Protocol's gRPC messages to and from core's types: tensors from
//! `raw_input_contents` (shared, not copied) or typed `contents`, answers always in
//! `raw_output_contents` (tritonclient reads only those), parameters both ways, and errors as
//! gRPC status codes.

use bytes::Bytes;
use mlops_core::serve::{InferRequest, InferResponse, ModelMetadata, Parameters, RequestedOutput};
use mlops_core::{DataType, Error, ErrorKind, ModelName, Result, Tensor, Version};
use serde_json::Value;
use tonic::Status;

use super::proto::{
    InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse,
    ModelMetadataResponse, infer_parameter::ParameterChoice, model_infer_response,
    model_metadata_response,
};

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid("request", msg)
}

/// A model name from a request. One that is not a valid model name cannot be served: the
/// answer is NOT_FOUND, as for any unknown model (and as over HTTP).
pub fn model_name(raw: &str) -> Result<ModelName> {
    if raw.is_empty() {
        return Err(bad("model_name is empty"));
    }
    raw.parse()
        .map_err(|e: Error| Error::not_found("model", raw).with_source(e))
}

/// A version from a request: empty is none (the server routes); one that is not a version
/// number is not served (NOT_FOUND).
pub fn model_version(model: &str, raw: &str) -> Result<Option<Version>> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|e: Error| {
        Error::not_found("model version", format!("{model} v{raw}")).with_source(e)
    })
}

/// A parameter's value as core's JSON form.
fn parameter(key: &str, p: &InferParameter) -> Result<Value> {
    match &p.parameter_choice {
        Some(ParameterChoice::BoolParam(b)) => Ok(Value::Bool(*b)),
        Some(ParameterChoice::Int64Param(i)) => Ok(Value::from(*i)),
        Some(ParameterChoice::StringParam(s)) => Ok(Value::from(s.as_str())),
        Some(ParameterChoice::DoubleParam(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .ok_or_else(|| bad(format!("parameter {key:?} is not a finite number"))),
        Some(ParameterChoice::Uint64Param(u)) => Ok(Value::from(*u)),
        None => Err(bad(format!("parameter {key:?} has no value"))),
    }
}

fn decode_parameters(
    map: &std::collections::HashMap<String, InferParameter>,
) -> Result<Parameters> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), parameter(k, v)?)))
        .collect()
}

/// Core's JSON parameter as the protocol's: numbers keep their kind, anything that is not a
/// scalar travels as its JSON text.
fn infer_parameter(value: &Value) -> InferParameter {
    let choice = match value {
        Value::Bool(b) => ParameterChoice::BoolParam(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ParameterChoice::Int64Param(i),
            (None, Some(u), _) => ParameterChoice::Uint64Param(u),
            (None, None, Some(d)) => ParameterChoice::DoubleParam(d),
            _ => ParameterChoice::StringParam(n.to_string()),
        },
        Value::String(s) => ParameterChoice::StringParam(s.clone()),
        other => ParameterChoice::StringParam(other.to_string()),
    };
    InferParameter {
        parameter_choice: Some(choice),
    }
}

fn out_parameters(params: &Parameters) -> std::collections::HashMap<String, InferParameter> {
    params
        .iter()
        .map(|(k, v)| (k.clone(), infer_parameter(v)))
        .collect()
}

/// Whether typed contents hold any element.
fn has_contents(c: &InferTensorContents) -> bool {
    !(c.bool_contents.is_empty()
        && c.int_contents.is_empty()
        && c.int64_contents.is_empty()
        && c.uint_contents.is_empty()
        && c.uint64_contents.is_empty()
        && c.fp32_contents.is_empty()
        && c.fp64_contents.is_empty()
        && c.bytes_contents.is_empty())
}

/// The field of typed contents a datatype's elements travel in.
fn contents_field(datatype: DataType) -> &'static str {
    match datatype {
        DataType::Bool => "bool_contents",
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "int_contents",
        DataType::Int64 => "int64_contents",
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => "uint_contents",
        DataType::Uint64 => "uint64_contents",
        DataType::Fp32 => "fp32_contents",
        DataType::Fp64 => "fp64_contents",
        DataType::Bytes => "bytes_contents",
        DataType::Fp16 | DataType::Bf16 => "raw_input_contents",
    }
}

/// A tensor from typed contents: exactly `count` elements in the field of its datatype, each
/// in range, and nothing in the other fields.
fn from_contents(
    name: &str,
    datatype: DataType,
    shape: Vec<usize>,
    count: usize,
    c: &InferTensorContents,
) -> Result<Tensor> {
    let field = contents_field(datatype);
    let lengths = [
        ("bool_contents", c.bool_contents.len()),
        ("int_contents", c.int_contents.len()),
        ("int64_contents", c.int64_contents.len()),
        ("uint_contents", c.uint_contents.len()),
        ("uint64_contents", c.uint64_contents.len()),
        ("fp32_contents", c.fp32_contents.len()),
        ("fp64_contents", c.fp64_contents.len()),
        ("bytes_contents", c.bytes_contents.len()),
    ];
    if matches!(datatype, DataType::Fp16 | DataType::Bf16) {
        return Err(bad(format!(
            "input {name:?} is {datatype}, which travels only as raw_input_contents"
        )));
    }
    if let Some((other, _)) = lengths.iter().find(|(f, n)| *f != field && *n > 0) {
        return Err(bad(format!(
            "input {name:?} is {datatype}: its values go in {field}, not {other}"
        )));
    }
    let given = lengths
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(0, |(_, n)| *n);
    if given != count {
        return Err(bad(format!(
            "input {name:?}: shape {shape:?} needs {count} elements, {field} has {given}"
        )));
    }
    macro_rules! narrow {
        ($values:expr, $ty:ty) => {{
            let mut data = Vec::with_capacity(count * std::mem::size_of::<$ty>());
            for (i, v) in $values.iter().enumerate() {
                let v = <$ty>::try_from(*v).map_err(|_| {
                    bad(format!(
                        "input {name:?} element {i} is {v}, out of {datatype}'s range"
                    ))
                })?;
                data.extend_from_slice(&v.to_le_bytes());
            }
            data
        }};
    }
    macro_rules! words {
        ($values:expr) => {{
            let mut data = Vec::with_capacity(count * 8);
            for v in $values {
                data.extend_from_slice(&v.to_le_bytes());
            }
            data
        }};
    }
    let data: Vec<u8> = match datatype {
        DataType::Bool => c.bool_contents.iter().map(|b| u8::from(*b)).collect(),
        DataType::Int8 => narrow!(c.int_contents, i8),
        DataType::Int16 => narrow!(c.int_contents, i16),
        DataType::Int32 => words!(&c.int_contents),
        DataType::Int64 => words!(&c.int64_contents),
        DataType::Uint8 => narrow!(c.uint_contents, u8),
        DataType::Uint16 => narrow!(c.uint_contents, u16),
        DataType::Uint32 => words!(&c.uint_contents),
        DataType::Uint64 => words!(&c.uint64_contents),
        DataType::Fp32 => words!(&c.fp32_contents),
        DataType::Fp64 => words!(&c.fp64_contents),
        DataType::Bytes => return Tensor::from_byte_strings(name, shape, &c.bytes_contents),
        DataType::Fp16 | DataType::Bf16 => Vec::new(),
    };
    Tensor::new(name, datatype, shape, data)
}

/// Decodes a `ModelInferRequest`. Raw contents are used as they are (no copy); typed contents
/// are accepted too, but not both in one request.
pub fn decode_request(mut request: ModelInferRequest) -> Result<InferRequest> {
    let model = model_name(&request.model_name)?;
    let version = model_version(&request.model_name, &request.model_version)?;
    let raw = std::mem::take(&mut request.raw_input_contents);
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(bad(format!(
            "raw_input_contents has {} entries for {} inputs (one per input, in order)",
            raw.len(),
            request.inputs.len()
        )));
    }
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for (i, input) in request.inputs.iter().enumerate() {
        let name = input.name.as_str();
        if name.is_empty() {
            return Err(bad(format!("input {i} has no name")));
        }
        let datatype: DataType = input.datatype.parse().map_err(|_| {
            bad(format!(
                "input {name:?}: unknown datatype {:?}",
                input.datatype
            ))
        })?;
        let shape: Vec<usize> = input
            .shape
            .iter()
            .map(|d| usize::try_from(*d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                bad(format!(
                    "input {name:?}: shape {:?} has a negative dimension",
                    input.shape
                ))
            })?;
        let count = mlops_core::tensor::element_count(&shape)
            .map_err(|e| bad(format!("input {name:?}: {e}")))?;
        let typed = input.contents.as_ref().filter(|c| has_contents(c));
        let tensor = match (raw.get(i), typed) {
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "input {name:?} has contents while the request uses raw_input_contents \
                     (one or the other for all inputs)"
                )));
            }
            (Some(bytes), None) => Tensor::new(name, datatype, shape, bytes.clone())
                .map_err(|e| bad(format!("raw_input_contents of input {name:?}: {e}")))?,
            (None, Some(contents)) => from_contents(name, datatype, shape, count, contents)?,
            // No elements at all: only an empty tensor may have none.
            (None, None) => from_contents(
                name,
                datatype,
                shape,
                count,
                &InferTensorContents::default(),
            )?,
        };
        inputs.push(tensor);
    }
    let mut parameters = decode_parameters(&request.parameters)?;
    // Only in-process callers (an explainer) mark requests synthetic.
    parameters.remove(crate::SYNTHETIC);
    let outputs = request
        .outputs
        .iter()
        .map(|o| {
            Ok(RequestedOutput {
                name: o.name.clone(),
                parameters: decode_parameters(&o.parameters)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut core = InferRequest::new(model, inputs);
    core.model_version = version;
    core.id = (!request.id.is_empty()).then(|| std::mem::take(&mut request.id));
    core.parameters = parameters;
    core.outputs = outputs;
    Ok(core)
}

/// Encodes a response: every output's bytes in `raw_output_contents`, in output order, shared
/// with the tensor (no copy).
pub fn encode_response(response: InferResponse) -> ModelInferResponse {
    let mut outputs = Vec::with_capacity(response.outputs.len());
    let mut raw: Vec<Bytes> = Vec::with_capacity(response.outputs.len());
    for t in &response.outputs {
        outputs.push(model_infer_response::InferOutputTensor {
            name: t.name().to_owned(),
            datatype: t.datatype().as_str().to_owned(),
            shape: t
                .shape()
                .iter()
                .map(|d| i64::try_from(*d).unwrap_or(i64::MAX))
                .collect(),
            parameters: Default::default(),
            contents: None,
        });
        raw.push(t.data().clone());
    }
    ModelInferResponse {
        model_name: response.model_name.to_string(),
        model_version: response
            .model_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        id: response.id.unwrap_or_default(),
        parameters: out_parameters(&response.parameters),
        outputs,
        raw_output_contents: raw,
    }
}

/// Model metadata as the protocol's message.
pub fn metadata(m: ModelMetadata) -> ModelMetadataResponse {
    let tensor = |t: mlops_core::serve::TensorMetadata| model_metadata_response::TensorMetadata {
        name: t.name,
        datatype: t.datatype.as_str().to_owned(),
        shape: t.shape,
    };
    ModelMetadataResponse {
        name: m.name,
        versions: m.versions,
        platform: m.platform,
        inputs: m.inputs.into_iter().map(tensor).collect(),
        outputs: m.outputs.into_iter().map(tensor).collect(),
    }
}

/// The gRPC status of an error: its category's code and its message.
pub fn status(e: &Error) -> Status {
    let message = e.to_string();
    if e.is_timeout() {
        return Status::deadline_exceeded(message);
    }
    match e.kind() {
        ErrorKind::InvalidArgument => Status::invalid_argument(message),
        ErrorKind::NotFound => Status::not_found(message),
        ErrorKind::PolicyDenied | ErrorKind::PermissionDenied => Status::permission_denied(message),
        ErrorKind::Unavailable => Status::unavailable(message),
        ErrorKind::NotSupported => Status::unimplemented(message),
        ErrorKind::AlreadyExists => Status::already_exists(message),
        ErrorKind::Conflict => Status::aborted(message),
        _ => Status::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::proto::model_infer_request;

    type InputTensor = model_infer_request::InferInputTensor;

    fn input(name: &str, datatype: &str, shape: Vec<i64>) -> InputTensor {
        InputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            parameters: Default::default(),
            contents: None,
        }
    }

    fn request(inputs: Vec<InputTensor>, raw: Vec<Bytes>) -> ModelInferRequest {
        ModelInferRequest {
            model_name: "m".into(),
            model_version: String::new(),
            id: "r1".into(),
            parameters: Default::default(),
            inputs,
            outputs: Vec::new(),
            raw_input_contents: raw,
        }
    }

    #[test]
    fn raw_contents_become_tensors_without_a_copy() {
        let raw = Bytes::from(
            [1.5f32, -2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        let r = decode_request(request(
            vec![input("x", "FP32", vec![1, 2])],
            vec![raw.clone()],
        ))
        .unwrap();
        assert_eq!(r.inputs[0].to_f32().unwrap(), vec![1.5, -2.0]);
        assert_eq!(r.inputs[0].data().as_ptr(), raw.as_ptr());
        assert_eq!(r.id.as_deref(), Some("r1"));
        assert_eq!(r.model_version, None);
    }

    #[test]
    fn typed_contents_are_accepted_for_every_datatype() {
        let mut x = input("i8", "INT8", vec![2]);
        x.contents = Some(InferTensorContents {
            int_contents: vec![-128, 127],
            ..Default::default()
        });
        let mut s = input("s", "BYTES", vec![2]);
        s.contents = Some(InferTensorContents {
            bytes_contents: vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")],
            ..Default::default()
        });
        let mut b = input("b", "BOOL", vec![1]);
        b.contents = Some(InferTensorContents {
            bool_contents: vec![true],
            ..Default::default()
        });
        let r = decode_request(request(vec![x, s, b], Vec::new())).unwrap();
        assert_eq!(r.inputs[0].data().as_ref(), &[0x80, 0x7f]);
        assert_eq!(
            r.inputs[1].to_byte_strings().unwrap(),
            vec![b"a".as_slice(), b"bc"]
        );
        assert_eq!(r.inputs[2].to_bool().unwrap(), vec![true]);
    }

    #[test]
    fn malformed_requests_are_invalid_naming_what_is_wrong() {
        let fp16 = {
            let mut x = input("h", "FP16", vec![1]);
            x.contents = Some(InferTensorContents {
                fp32_contents: vec![1.0],
                ..Default::default()
            });
            x
        };
        let out_of_range = {
            let mut x = input("u", "UINT8", vec![1]);
            x.contents = Some(InferTensorContents {
                uint_contents: vec![300],
                ..Default::default()
            });
            x
        };
        let wrong_field = {
            let mut x = input("x", "INT64", vec![1]);
            x.contents = Some(InferTensorContents {
                fp32_contents: vec![1.0],
                ..Default::default()
            });
            x
        };
        let cases = [
            (
                request(vec![input("x", "FP99", vec![1])], Vec::new()),
                "unknown datatype",
            ),
            (
                request(vec![input("x", "FP32", vec![-1])], Vec::new()),
                "negative dimension",
            ),
            (
                request(vec![input("x", "FP32", vec![2])], Vec::new()),
                "needs 2 elements",
            ),
            (
                request(
                    vec![input("x", "FP32", vec![2])],
                    vec![Bytes::from_static(&[0; 4])],
                ),
                "needs 8 bytes",
            ),
            (
                request(
                    vec![input("x", "FP32", vec![1])],
                    vec![Bytes::new(), Bytes::new()],
                ),
                "2 entries for 1 inputs",
            ),
            (
                request(vec![fp16], Vec::new()),
                "only as raw_input_contents",
            ),
            (
                request(vec![out_of_range], Vec::new()),
                "out of UINT8's range",
            ),
            (
                request(vec![wrong_field], Vec::new()),
                "go in int64_contents",
            ),
            (
                request(
                    vec![input("s", "BYTES", vec![1])],
                    vec![Bytes::from_static(&[9, 0, 0, 0, b'a'])],
                ),
                "raw_input_contents of input \"s\"",
            ),
            (
                request(
                    vec![input("x", "FP32", vec![i64::MAX, i64::MAX])],
                    Vec::new(),
                ),
                "overflows",
            ),
        ];
        for (r, want) in cases {
            let e = decode_request(r).unwrap_err();
            assert!(e.is_invalid_argument(), "{e}");
            assert!(e.to_string().contains(want), "{e} should say {want}");
            assert_eq!(status(&e).code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn unknown_models_and_versions_are_not_found() {
        let mut r = request(Vec::new(), Vec::new());
        r.model_name = "../x".into();
        assert_eq!(
            status(&decode_request(r).unwrap_err()).code(),
            tonic::Code::NotFound
        );
        let mut r = request(Vec::new(), Vec::new());
        r.model_version = "latest".into();
        assert_eq!(
            status(&decode_request(r).unwrap_err()).code(),
            tonic::Code::NotFound
        );
    }

    #[test]
    fn parameters_travel_both_ways() {
        let mut r = request(Vec::new(), Vec::new());
        for (k, v) in [
            ("b", ParameterChoice::BoolParam(true)),
            ("i", ParameterChoice::Int64Param(-3)),
            ("u", ParameterChoice::Uint64Param(u64::MAX)),
            ("d", ParameterChoice::DoubleParam(0.5)),
            ("s", ParameterChoice::StringParam("x".into())),
            (crate::SYNTHETIC, ParameterChoice::BoolParam(true)),
        ] {
            r.parameters.insert(
                k.into(),
                InferParameter {
                    parameter_choice: Some(v),
                },
            );
        }
        let decoded = decode_request(r).unwrap();
        assert_eq!(decoded.parameters["u"], Value::from(u64::MAX));
        assert!(!decoded.parameters.contains_key(crate::SYNTHETIC));
        let mut response = InferResponse {
            model_name: "m".parse().unwrap(),
            model_version: Some(Version::FIRST),
            id: None,
            parameters: decoded.parameters.clone(),
            outputs: vec![Tensor::from_i64("y", vec![1], &[7]).unwrap()],
        };
        response
            .parameters
            .insert("list".into(), serde_json::json!([1, 2]));
        let encoded = encode_response(response);
        assert_eq!(encoded.model_version, "1");
        assert_eq!(
            encoded.parameters["d"].parameter_choice,
            Some(ParameterChoice::DoubleParam(0.5))
        );
        assert_eq!(
            encoded.parameters["list"].parameter_choice,
            Some(ParameterChoice::StringParam("[1,2]".into()))
        );
        assert_eq!(encoded.raw_output_contents[0].as_ref(), &7i64.to_le_bytes());
        assert!(encoded.outputs[0].contents.is_none());
    }
}
