#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! onnxruntime is loaded at run time, so a missing or wrong library must be an error naming it —
//! never a panic — and `Runtime::Auto` then runs the model on tract. Its own test binary: the
//! library a process loads is process-wide.
#![cfg(feature = "ort")]

use mlops_core::{Model, Tensor};
use mlops_onnx::builder::{Attr, GraphBuilder};
use mlops_onnx::{OnnxModel, OnnxOptions, Runtime, onnxruntime_available};

fn affine() -> bytes::Bytes {
    let mut g = GraphBuilder::new("affine", 13);
    g.input("x", mlops_core::DataType::Fp32, &[-1, 2]);
    g.constant_f32("w", &[1, 2], &[0.5, -1.0]);
    g.constant_f32("b", &[1], &[0.25]);
    g.node(
        "Gemm",
        &["x", "w", "b"],
        &["y"],
        vec![Attr::int("transB", 1)],
    );
    g.output("y", mlops_core::DataType::Fp32, &[-1, 1]);
    g.build().unwrap()
}

#[test]
fn a_missing_or_wrong_library_is_an_error_and_auto_falls_back_to_tract() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_library = dir.path().join("libonnxruntime.so");
    std::fs::write(&not_a_library, b"not a shared library").unwrap();
    for bad in [dir.path().join("missing.so"), not_a_library] {
        let e = onnxruntime_available(Some(&bad)).unwrap_err();
        assert!(e.is_not_supported(), "{e}");
        assert!(e.to_string().contains(bad.to_str().unwrap()), "{e}");

        let strict = OnnxOptions::default()
            .with_runtime(Runtime::OnnxRuntime)
            .with_onnxruntime_library(&bad);
        assert!(
            OnnxModel::from_bytes_with(affine(), &strict)
                .unwrap_err()
                .is_not_supported()
        );

        let auto = OnnxOptions::default().with_onnxruntime_library(&bad);
        let model = OnnxModel::from_bytes_with(affine(), &auto).unwrap();
        assert_eq!(model.runtime(), Runtime::Tract);
        let y = model
            .predict(&[Tensor::from_f32("x", vec![1, 2], &[2.0, 1.0]).unwrap()])
            .unwrap();
        assert_eq!(y[0].to_f32().unwrap(), vec![0.25]);
    }
    // After failed attempts, the real library (./scripts/test sets ORT_DYLIB_PATH) still loads.
    if let Some(real) = std::env::var_os(mlops_onnx::LIBRARY_ENV) {
        onnxruntime_available(Some(std::path::Path::new(&real))).unwrap();
    }
}
