#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Models trained elsewhere, served by us: scikit-learn exports through skl2onnx (linear,
//! scaled, tree, neural, regression, string classes, a ColumnTransformer with a string column)
//! and a small network built with `onnx.helper`, all built by `tests/make_models.py` in the
//! peers' Python. Our outputs must equal onnxruntime's (Python) on the same inputs within 1e-5,
//! on every runtime that runs the model; what tract cannot run is refused at load naming the
//! operator.
//!
//! Needs a Python with scikit-learn, skl2onnx, onnx and onnxruntime named by
//! `MLOPS_TEST_PYTHON`, and with the `ort` feature the onnxruntime library in `ORT_DYLIB_PATH`
//! (`./scripts/test` sets both).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use mlops_core::signature::{Schema, TensorSpec};
use mlops_core::{DataType, Model, ModelArtifact, ModelLoader, Tensor};
use mlops_onnx::{ClassLabels, OnnxLoader, OnnxModel, OnnxOptions, Runtime};
use serde_json::Value;

const NEEDS: &str = "scikit-learn, skl2onnx, onnx and onnxruntime";

struct Cases {
    dir: tempfile::TempDir,
    cases: BTreeMap<String, Value>,
}

fn cases() -> &'static Cases {
    static CASES: OnceLock<Cases> = OnceLock::new();
    CASES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/make_models.py");
        let out = Command::new(mlops_testkit::python::interpreter(NEEDS))
            .arg(&script)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make_models.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cases: BTreeMap<String, Value> =
            serde_json::from_slice(&std::fs::read(dir.path().join("cases.json")).unwrap()).unwrap();
        Cases { dir, cases }
    })
}

fn model_bytes(case: &str) -> Vec<u8> {
    std::fs::read(cases().dir.path().join(format!("{case}.onnx"))).unwrap()
}

fn tensor(name: &str, t: &Value) -> Tensor {
    let datatype: DataType = t["datatype"].as_str().unwrap().parse().unwrap();
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = t["data"].as_array().unwrap();
    match datatype {
        DataType::Fp32 => {
            let v: Vec<f32> = data.iter().map(|x| x.as_f64().unwrap() as f32).collect();
            Tensor::from_f32(name, shape, &v).unwrap()
        }
        DataType::Int64 => {
            let v: Vec<i64> = data.iter().map(|x| x.as_i64().unwrap()).collect();
            Tensor::from_i64(name, shape, &v).unwrap()
        }
        DataType::Bytes => {
            let v: Vec<&str> = data.iter().map(|x| x.as_str().unwrap()).collect();
            Tensor::from_byte_strings(name, shape, &v).unwrap()
        }
        other => panic!("no test data of type {other}"),
    }
}

fn inputs(case: &str) -> Vec<Tensor> {
    cases().cases[case]["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| tensor(name, t))
        .collect()
}

/// Our outputs equal onnxruntime's: names, types, shapes, values (floats within 1e-5).
fn assert_matches(case: &str, runtime: Runtime, got: &[Tensor]) {
    let expected = cases().cases[case]["outputs"].as_object().unwrap();
    assert_eq!(got.len(), expected.len(), "{case} on {runtime}: outputs");
    for out in got {
        let want = tensor(out.name(), &expected[out.name()]);
        let what = format!("{case} on {runtime}, output {:?}", out.name());
        assert_eq!(out.datatype(), want.datatype(), "{what}: datatype");
        assert_eq!(out.shape(), want.shape(), "{what}: shape");
        match out.datatype() {
            DataType::Fp32 => {
                for (i, (a, b)) in out
                    .to_f32()
                    .unwrap()
                    .iter()
                    .zip(want.to_f32().unwrap())
                    .enumerate()
                {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{what}: element {i} is {a}, onnxruntime says {b}"
                    );
                }
            }
            DataType::Int64 => assert_eq!(out.to_i64().unwrap(), want.to_i64().unwrap(), "{what}"),
            DataType::Bytes => assert_eq!(
                out.to_byte_strings().unwrap(),
                want.to_byte_strings().unwrap(),
                "{what}"
            ),
            other => panic!("{what}: unexpected {other}"),
        }
    }
}

fn runs_on_tract(case: &str) -> bool {
    cases().cases[case]["tract"].as_bool().unwrap()
}

#[test]
fn tract_runs_what_it_can_equal_to_onnxruntime() {
    let options = OnnxOptions::default().with_runtime(Runtime::Tract);
    for case in cases().cases.keys() {
        let loaded = OnnxModel::from_bytes_with(model_bytes(case), &options);
        if runs_on_tract(case) {
            let model = loaded.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(model.runtime(), Runtime::Tract);
            let got = model
                .predict(&inputs(case))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_matches(case, Runtime::Tract, &got);
        } else {
            let e = loaded.expect_err(case);
            assert!(e.is_not_supported(), "{case}: {e}");
        }
    }
}

#[test]
fn what_tract_lacks_is_refused_at_load_naming_the_operator() {
    let options = OnnxOptions::default().with_runtime(Runtime::Tract);
    let e = OnnxModel::from_bytes_with(model_bytes("gradient_boosting_regressor"), &options)
        .unwrap_err();
    assert!(e.is_not_supported(), "{e}");
    assert!(
        e.to_string().contains("ai.onnx.ml:TreeEnsembleRegressor"),
        "{e}"
    );
    let e = OnnxModel::from_bytes_with(model_bytes("column_transformer"), &options).unwrap_err();
    assert!(e.to_string().contains("ai.onnx.ml:OneHotEncoder"), "{e}");
}

#[cfg(not(feature = "ort"))]
#[test]
fn without_onnxruntime_auto_refuses_what_tract_lacks() {
    let e = OnnxModel::from_bytes(model_bytes("gradient_boosting_regressor")).unwrap_err();
    assert!(e.is_not_supported(), "{e}");
    let text = e.to_string();
    assert!(text.contains("TreeEnsembleRegressor"), "{text}");
    assert!(text.contains("`ort` feature"), "{text}");
}

#[cfg(feature = "ort")]
fn onnxruntime_library() {
    assert!(
        std::env::var_os(mlops_onnx::LIBRARY_ENV).is_some(),
        "{} is not set: point it at libonnxruntime.so (./scripts/test sets it from the peers' \
         onnxruntime wheel)",
        mlops_onnx::LIBRARY_ENV
    );
}

#[cfg(feature = "ort")]
#[test]
fn onnxruntime_runs_every_case_equal_to_python() {
    onnxruntime_library();
    let options = OnnxOptions::default().with_runtime(Runtime::OnnxRuntime);
    for case in cases().cases.keys() {
        let model = OnnxModel::from_bytes_with(model_bytes(case), &options)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(model.runtime(), Runtime::OnnxRuntime);
        let got = model
            .predict(&inputs(case))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_matches(case, Runtime::OnnxRuntime, &got);
    }
}

#[cfg(feature = "ort")]
#[test]
fn auto_takes_onnxruntime_when_it_is_there() {
    onnxruntime_library();
    for case in cases().cases.keys() {
        let model =
            OnnxModel::from_bytes(model_bytes(case)).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(model.runtime(), Runtime::OnnxRuntime, "{case}");
        let got = model.predict(&inputs(case)).unwrap();
        assert_matches(case, Runtime::OnnxRuntime, &got);
    }
}

#[cfg(not(feature = "ort"))]
#[test]
fn without_onnxruntime_auto_takes_tract() {
    for case in cases().cases.keys().filter(|c| runs_on_tract(c)) {
        let model =
            OnnxModel::from_bytes(model_bytes(case)).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(model.runtime(), Runtime::Tract, "{case}");
    }
}

#[cfg(feature = "ort")]
#[test]
fn onnxruntime_sessions_serve_concurrent_predictions() {
    onnxruntime_library();
    let options = OnnxOptions::default()
        .with_runtime(Runtime::OnnxRuntime)
        .with_sessions(2);
    let model = std::sync::Arc::new(
        OnnxModel::from_bytes_with(model_bytes("gradient_boosting_regressor"), &options).unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let got = model
                        .predict(&inputs("gradient_boosting_regressor"))
                        .unwrap();
                    assert_matches("gradient_boosting_regressor", Runtime::OnnxRuntime, &got);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn the_signature_comes_from_the_graph() {
    let model = OnnxModel::from_bytes(model_bytes("logistic_regression")).unwrap();
    let sig = model.signature();
    assert_eq!(
        sig.inputs,
        Schema::Tensors(vec![TensorSpec::new(
            "float_input",
            DataType::Fp32,
            vec![-1, 4]
        )])
    );
    assert_eq!(
        sig.outputs,
        Some(Schema::Tensors(vec![
            TensorSpec::new("output_label", DataType::Int64, vec![-1]),
            // The ZipMap's maps, unwrapped: one column per class.
            TensorSpec::new("output_probability", DataType::Fp32, vec![-1, 2]),
        ]))
    );
    assert_eq!(model.class_labels(), Some(&ClassLabels::Int64(vec![0, 1])));
    assert_eq!(model.provenance()["producer_name"], "skl2onnx");

    // (Read without a runtime: tract alone cannot run string classes.)
    let strings = mlops_onnx::inspect(&model_bytes("multiclass_string_labels")).unwrap();
    assert_eq!(
        strings.class_labels.as_ref(),
        Some(&ClassLabels::Strings(vec![
            "setosa".into(),
            "versicolor".into(),
            "virginica".into()
        ]))
    );

    // A named batch dimension is variable; fixed ones stay.
    let cnn = OnnxModel::from_bytes(model_bytes("small_cnn")).unwrap();
    assert_eq!(
        cnn.signature().inputs,
        Schema::Tensors(vec![TensorSpec::new(
            "input",
            DataType::Fp32,
            vec![-1, 1, 8, 8]
        )])
    );
}

#[test]
fn requests_that_do_not_fit_the_signature_are_invalid_naming_the_input() {
    let model = OnnxModel::from_bytes(model_bytes("logistic_regression")).unwrap();
    let cases = [
        (
            vec![Tensor::from_f64("float_input", vec![1, 4], &[0.0; 4]).unwrap()],
            "must be FP32",
        ),
        (
            vec![Tensor::from_f32("float_input", vec![1, 3], &[0.0; 3]).unwrap()],
            "must have shape",
        ),
        (vec![], "missing input \"float_input\""),
        (
            vec![
                Tensor::from_f32("float_input", vec![1, 4], &[0.0; 4]).unwrap(),
                Tensor::from_f32("other", vec![1], &[0.0]).unwrap(),
            ],
            "unexpected input \"other\"",
        ),
    ];
    for (inputs, want) in cases {
        let e = model.predict(&inputs).unwrap_err();
        assert!(e.is_invalid_argument(), "{e}");
        assert!(e.to_string().contains(want), "{e} should say {want}");
    }
    // Zero rows answer zero rows.
    let empty = model
        .predict(&[Tensor::from_f32("float_input", vec![0, 4], &[]).unwrap()])
        .unwrap();
    assert_eq!(empty[1].shape(), &[0, 2]);
}

#[test]
fn bytes_that_are_not_a_model_are_invalid() {
    for bad in [b"".as_slice(), b"not an onnx model", &[0xff; 64]] {
        let e = OnnxModel::from_bytes(bad.to_vec()).unwrap_err();
        assert!(e.is_invalid_argument(), "{e}");
    }
}

#[test]
fn the_artifact_is_the_file_and_loads_back() {
    let bytes = model_bytes("random_forest");
    let model = OnnxModel::from_bytes(bytes.clone()).unwrap();
    let artifact = model.to_artifact().unwrap();
    assert_eq!(artifact.flavor, "onnx");
    assert_eq!(
        artifact.file("model.onnx").unwrap().as_ref(),
        bytes.as_slice()
    );
    let loaded = OnnxLoader::new().load(&artifact).unwrap();
    let x = inputs("random_forest");
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());

    let e = OnnxLoader::new()
        .load(&ModelArtifact::new("onnx"))
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

/// `small_cnn` with `edit` applied to its `ModelProto`.
fn edited(edit: impl FnOnce(&mut tract_onnx::pb::ModelProto)) -> Vec<u8> {
    use prost::Message;
    let mut proto =
        tract_onnx::pb::ModelProto::decode(model_bytes("small_cnn").as_slice()).unwrap();
    edit(&mut proto);
    proto.encode_to_vec()
}

#[test]
fn tensors_stored_beside_the_model_are_refused_at_load() {
    let external = edited(|m| {
        let w = &mut m.graph.as_mut().unwrap().initializer[0];
        w.data_location = Some(tract_onnx::pb::tensor_proto::DataLocation::External as i32);
        w.external_data
            .push(tract_onnx::pb::StringStringEntryProto {
                key: "location".into(),
                value: "../../etc/passwd".into(),
            });
        w.float_data.clear();
    });
    for e in [
        OnnxModel::from_bytes(external.clone()).unwrap_err(),
        mlops_onnx::inspect(&external).unwrap_err(),
    ] {
        assert!(e.is_not_supported(), "{e}");
        assert!(e.to_string().contains("external data"), "{e}");
    }
}

#[test]
fn half_precision_inputs_are_refused_when_registering_too() {
    let half = edited(|m| {
        let input = &mut m.graph.as_mut().unwrap().input[0];
        if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
            input.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.elem_type = tract_onnx::pb::tensor_proto::DataType::Float16 as i32;
        }
    });
    for e in [
        OnnxModel::from_bytes(half.clone()).unwrap_err(),
        mlops_onnx::inspect(&half).unwrap_err(),
    ] {
        assert!(e.is_not_supported(), "{e}");
        assert!(e.to_string().contains("FP16"), "{e}");
    }
}

#[test]
fn without_zipmap_gives_the_tensor_the_model_serves() {
    let bytes = bytes::Bytes::from(model_bytes("logistic_regression"));
    let plain = mlops_onnx::without_zipmap(&bytes).unwrap();
    let info = mlops_onnx::inspect(&plain).unwrap();
    assert_eq!(info.class_labels, None, "no ZipMap left");
    assert_eq!(
        info.signature,
        mlops_onnx::inspect(&bytes).unwrap().signature,
        "the same signature"
    );
    let a = OnnxModel::from_bytes(plain).unwrap();
    assert_matches(
        "logistic_regression",
        a.runtime(),
        &a.predict(&inputs("logistic_regression")).unwrap(),
    );
    // A model without one is returned as it is.
    let cnn = bytes::Bytes::from(model_bytes("small_cnn"));
    assert_eq!(mlops_onnx::without_zipmap(&cnn).unwrap(), cnn);
}
