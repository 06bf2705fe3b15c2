#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The REST decoders against hostile input: a kept corpus (`tests/corpus`: `ok_*` must decode,
//! `err_*` must be refused as invalid; `NAME.<json length>.bin` carry binary tensors) and
//! property tests throwing random bytes, random framings and random JSON requests at them.
//! Nothing may panic; every refusal is `InvalidArgument`. Failing cases proptest finds are kept
//! in `proptest-regressions/` beside this file and replayed first.

use bytes::Bytes;
use mlops_serve::codec::decode_request;
use proptest::prelude::*;

fn decode(
    body: &[u8],
    json_len: Option<usize>,
) -> mlops_core::Result<mlops_core::serve::InferRequest> {
    decode_request(
        "m".parse().expect("a model name"),
        None,
        &Bytes::copy_from_slice(body),
        json_len,
    )
}

#[test]
fn the_corpus_decodes_as_labelled() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let body = std::fs::read(&path).unwrap();
        let json_len = name
            .strip_suffix(".bin")
            .and_then(|stem| stem.rsplit_once('.'))
            .map(|(_, n)| n.parse::<usize>().unwrap());
        let result = decode(&body, json_len);
        if name.starts_with("ok_") {
            let req = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!req.inputs.is_empty(), "{name}");
        } else {
            let err = result.err().unwrap_or_else(|| panic!("{name} decoded"));
            assert!(err.is_invalid_argument(), "{name}: {err}");
        }
        seen += 1;
    }
    assert!(seen >= 10, "corpus has {seen} files");
}

fn datatype() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
        "FP32", "FP64", "BF16", "BYTES", "FP33", "",
    ])
}

fn element() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |v| v.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ]
}

fn data() -> impl Strategy<Value = serde_json::Value> {
    element().prop_recursive(3, 24, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(serde_json::Value::from)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), cut in prop::option::of(0usize..600)) {
        if let Err(e) = decode(&body, cut) {
            prop_assert!(e.is_invalid_argument(), "{e}");
        }
    }

    #[test]
    fn random_requests_are_decoded_or_refused(
        name in "[a-z]{0,3}",
        dt in datatype(),
        shape in prop::collection::vec(prop_oneof![0i64..5, -2i64..0, Just(i64::MAX), Just(1i64 << 40)], 0..4),
        data in data(),
        binary in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        claimed in 0usize..80,
    ) {
        let mut input = serde_json::json!({"name": name, "shape": shape, "datatype": dt});
        let mut body;
        let json_len;
        match &binary {
            Some(raw) => {
                input["parameters"] = serde_json::json!({"binary_data_size": claimed});
                let header = serde_json::to_vec(&serde_json::json!({"inputs": [input]})).unwrap();
                json_len = Some(header.len());
                body = header;
                body.extend_from_slice(raw);
            }
            None => {
                input["data"] = data;
                body = serde_json::to_vec(&serde_json::json!({"inputs": [input]})).unwrap();
                json_len = None;
            }
        }
        match decode(&body, json_len) {
            Ok(req) => {
                // Whatever decodes is a valid tensor of the declared shape.
                let t = &req.inputs[0];
                let dims: Vec<i64> = t.shape().iter().map(|d| i64::try_from(*d).unwrap()).collect();
                prop_assert_eq!(dims, shape);
            }
            Err(e) => prop_assert!(e.is_invalid_argument(), "{}", e),
        }
    }
}
