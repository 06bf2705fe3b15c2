#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The gRPC decoder against hostile input, as the REST codec is fuzzed (`tests/fuzz.rs`):
//! random bytes decoded as a `ModelInferRequest` message, and random requests — datatypes,
//! shapes (negative, huge), raw contents of any length, typed contents of any field and range —
//! must decode into valid tensors of the declared shape or be refused as invalid (or, for a
//! model name that cannot be one, not found). Nothing may panic. Failing cases proptest finds
//! are kept in `proptest-regressions/` and replayed first.

use bytes::Bytes;
use mlops_serve::grpc::codec::decode_request;
use mlops_serve::grpc::proto::{InferTensorContents, ModelInferRequest, model_infer_request};
use proptest::prelude::*;

fn datatype() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
        "FP32", "FP64", "BF16", "BYTES", "FP33", "",
    ])
}

fn contents() -> impl Strategy<Value = InferTensorContents> {
    (
        prop::collection::vec(any::<bool>(), 0..4),
        prop::collection::vec(any::<i32>(), 0..4),
        prop::collection::vec(any::<i64>(), 0..4),
        prop::collection::vec(any::<u32>(), 0..4),
        prop::collection::vec(any::<f32>(), 0..4),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..4),
        0u8..8,
    )
        .prop_map(|(b, i, l, u, f, s, which)| {
            // Mostly one field filled, sometimes several.
            let mut c = InferTensorContents::default();
            match which {
                0 => c.bool_contents = b,
                1 => c.int_contents = i,
                2 => c.int64_contents = l,
                3 => c.uint_contents = u,
                4 => c.fp32_contents = f,
                5 => c.bytes_contents = s.into_iter().map(Bytes::from).collect(),
                6 => {
                    c.fp64_contents = f.iter().map(|v| f64::from(*v)).collect();
                    c.uint64_contents = u.iter().map(|v| u64::from(*v)).collect();
                }
                _ => {}
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_messages_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        use prost::Message;
        if let Ok(request) = ModelInferRequest::decode(body.as_slice())
            && let Err(e) = decode_request(request)
        {
            prop_assert!(e.is_invalid_argument() || e.is_not_found(), "{e}");
        }
    }

    #[test]
    fn random_requests_are_decoded_or_refused(
        model in prop::sample::select(vec!["m", "", "a/b", "x@y"]),
        version in prop::sample::select(vec!["", "1", "0", "v2", "18446744073709551616"]),
        inputs in prop::collection::vec(
            (
                "[a-z]{0,3}",
                datatype(),
                prop::collection::vec(prop_oneof![0i64..5, -2i64..0, Just(i64::MAX), Just(1i64 << 40)], 0..4),
                prop::option::of(contents()),
            ),
            0..3,
        ),
        raw in prop::option::of(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..4)),
    ) {
        let request = ModelInferRequest {
            model_name: model.into(),
            model_version: version.into(),
            id: String::new(),
            parameters: Default::default(),
            inputs: inputs
                .iter()
                .map(|(name, dt, shape, contents)| model_infer_request::InferInputTensor {
                    name: name.clone(),
                    datatype: (*dt).into(),
                    shape: shape.clone(),
                    parameters: Default::default(),
                    contents: contents.clone(),
                })
                .collect(),
            outputs: Vec::new(),
            raw_input_contents: raw.unwrap_or_default().into_iter().map(Bytes::from).collect(),
        };
        match decode_request(request) {
            Ok(req) => {
                // Whatever decodes is a valid tensor of the declared name, type and shape.
                prop_assert_eq!(req.inputs.len(), inputs.len());
                for (t, (name, dt, shape, _)) in req.inputs.iter().zip(&inputs) {
                    prop_assert_eq!(t.name(), name.as_str());
                    prop_assert_eq!(t.datatype().as_str(), *dt);
                    let dims: Vec<i64> = t.shape().iter().map(|d| i64::try_from(*d).unwrap()).collect();
                    prop_assert_eq!(&dims, shape);
                }
            }
            Err(e) => prop_assert!(e.is_invalid_argument() || e.is_not_found(), "{}", e),
        }
    }
}
