//! ONNX inference in process, tract against onnxruntime, per batch size: scikit-learn exports
//! (logistic regression, random forest, MLP classifier; a gradient-boosting regressor, which
//! only onnxruntime runs) and a small convolutional network, built by
//! `mlops-onnx/tests/make_models.py`.
//!
//! Needs a Python with scikit-learn, skl2onnx, onnx and onnxruntime (`MLOPS_TEST_PYTHON`, else
//! `.venv-peers/bin/python`) to build the models, and `ORT_DYLIB_PATH` for the onnxruntime
//! side; without the Python the group is skipped with a message, without the library only tract
//! is measured.
//!
//! ```text
//! ORT_DYLIB_PATH=$(ls $PWD/.venv-peers/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*) \
//!   cargo bench -p mlops-benches -- onnx/
//! ```

use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use mlops::onnx::{OnnxModel, OnnxOptions, Runtime};
use mlops::{DataType, Model, Tensor};

const BATCHES: [usize; 3] = [1, 32, 1024];

/// The models' folder, built once; `None` (and a message) without a Python to build them.
fn models() -> Option<tempfile::TempDir> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("MLOPS_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let venv = root.join(".venv-peers/bin/python");
            venv.exists().then_some(venv)
        });
    let Some(python) = python else {
        eprintln!(
            "onnx benches skipped: no Python with skl2onnx (set MLOPS_TEST_PYTHON or run ./scripts/test once)"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(python)
        .arg(root.join("mlops-onnx/tests/make_models.py"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "make_models.py failed");
    Some(dir)
}

/// `rows` rows of deterministic inputs for every input of `model`.
fn inputs(model: &OnnxModel, rows: usize) -> Vec<Tensor> {
    let mlops::signature::Schema::Tensors(specs) = &model.signature().inputs else {
        unreachable!("onnx signatures are tensors")
    };
    specs
        .iter()
        .map(|spec| {
            assert_eq!(
                spec.datatype,
                DataType::Fp32,
                "the benches feed FP32 inputs"
            );
            let shape: Vec<usize> = spec
                .shape
                .iter()
                .enumerate()
                .map(|(axis, d)| if axis == 0 { rows } else { *d as usize })
                .collect();
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
                .collect();
            Tensor::from_f32(spec.name.clone().unwrap_or_default(), shape, &values).unwrap()
        })
        .collect()
}

fn onnx(c: &mut Criterion) {
    let Some(dir) = models() else { return };
    let onnxruntime = match mlops::onnx::onnxruntime_available(None) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("onnx benches: onnxruntime not measured ({e})");
            false
        }
    };
    let mut group = c.benchmark_group("onnx");
    for case in [
        "logistic_regression",
        "random_forest",
        "mlp_classifier",
        "gradient_boosting_regressor",
        "small_cnn",
    ] {
        let bytes = std::fs::read(dir.path().join(format!("{case}.onnx"))).unwrap();
        let mut runtimes = vec![(Runtime::Tract, "tract")];
        if onnxruntime {
            runtimes.push((Runtime::OnnxRuntime, "onnxruntime"));
        }
        for (runtime, label) in runtimes {
            // One session with one thread: the per-call cost of each runtime, single-threaded.
            let options = OnnxOptions::default()
                .with_runtime(runtime)
                .with_sessions(1)
                .with_threads_per_session(1);
            let Ok(model) = OnnxModel::from_bytes_with(bytes.clone(), &options) else {
                continue; // tract lacks an operator of this graph
            };
            for rows in BATCHES {
                let x = inputs(&model, rows);
                group.throughput(Throughput::Elements(rows as u64));
                group.bench_with_input(
                    BenchmarkId::new(format!("{label}/{case}"), rows),
                    &x,
                    |b, x| b.iter(|| model.predict(x).unwrap()),
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, onnx);
