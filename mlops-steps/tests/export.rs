#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Candle models exported as ONNX compute what the candle model computes: a logistic
//! regression over numeric, float, boolean and string columns, a softmax regression with string
//! classes, a GELU MLP with integer classes and a regression — loaded back as ONNX models (tract
//! where it can, onnxruntime otherwise when built with it) and compared on rows the models did
//! not train on: equal labels, probabilities and predictions within 1e-5. The MLflow model
//! directory wraps the same graph with a named-tensor signature.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use mlops_core::signature::Schema;
use mlops_core::{CancelToken, DataType, FitOptions, Model, Tensor};
use mlops_onnx::{OnnxModel, OnnxOptions, Runtime};
use mlops_steps::export::{MlflowExport, candle_to_onnx, mlflow_model, onnx_artifact};
use mlops_testkit::rng::SplitMix64;
use mlops_train::{CandleModel, CandleTrainer, DeviceSpec, ModelKind, TrainConfig};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Mixed columns: tenure (FP64), spend (FP32), promo (BOOL), plan (string); a boolean target.
fn churn(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut tenure, mut spend, mut promo, mut plan, mut churned) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let t = r.normal() * 12.0 + 24.0;
        let s = r.normal() as f32;
        let p = (r.next_u64() % 3) as usize;
        let pr = r.unit() > 0.6;
        let z = -0.15 * (t - 24.0) + 2.0 * f64::from(s) + [0.0, 1.0, 2.5][p] - 1.0
            + if pr { 0.7 } else { 0.0 };
        churned.push(z + r.normal() * 0.5 > 0.0);
        tenure.push(t);
        spend.push(s);
        promo.push(pr);
        plan.push(["basic", "plus", "pro"][p]);
    }
    batch(vec![
        ("tenure", Arc::new(Float64Array::from(tenure))),
        ("spend", Arc::new(Float32Array::from(spend))),
        ("promo", Arc::new(BooleanArray::from(promo))),
        ("plan", Arc::new(StringArray::from(plan))),
        ("churned", Arc::new(BooleanArray::from(churned))),
    ])
}

/// Three string classes from two numeric columns.
fn colours(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut a, mut b, mut label) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let (x, y) = (r.normal(), r.normal());
        let scores = [2.0 * x, -x + 1.7 * y, -x - 1.7 * y];
        let best = (0..3).fold(0, |m, i| if scores[i] > scores[m] { i } else { m });
        a.push(x);
        b.push(y);
        label.push(["red", "green", "blue"][best]);
    }
    batch(vec![
        ("a", Arc::new(Float64Array::from(a))),
        ("b", Arc::new(Float64Array::from(b))),
        ("colour", Arc::new(StringArray::from(label))),
    ])
}

/// XOR with integer classes (an MLP's job).
fn xor(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut x, mut y, mut label) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let (u, v) = (r.unit() * 2.0 - 1.0, r.unit() * 2.0 - 1.0);
        x.push(u);
        y.push(v);
        label.push(i64::from(u * v > 0.0) + 7);
    }
    batch(vec![
        ("x", Arc::new(Float64Array::from(x))),
        ("y", Arc::new(Float64Array::from(y))),
        ("label", Arc::new(Int64Array::from(label))),
    ])
}

/// `target = 3a - 2b + 5·[kind = "big"] + 10 + noise`.
fn regression(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut a, mut b, mut kind, mut t) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let (x, y) = (r.normal(), r.normal() * 4.0);
        let big = r.unit() > 0.5;
        a.push(x);
        b.push(y);
        kind.push(if big { "big" } else { "small" });
        t.push(3.0 * x - 2.0 * y + if big { 5.0 } else { 0.0 } + 10.0 + r.normal() * 0.1);
    }
    batch(vec![
        ("a", Arc::new(Float64Array::from(a))),
        ("b", Arc::new(Float64Array::from(b))),
        ("kind", Arc::new(StringArray::from(kind))),
        ("target", Arc::new(Float64Array::from(t))),
    ])
}

fn train(
    kind: ModelKind,
    params: &[(&str, &str)],
    data: &RecordBatch,
    target: &str,
) -> CandleModel {
    let mut c = TrainConfig::new(kind);
    c.device = DeviceSpec::Cpu;
    c.apply(params.iter().copied()).unwrap();
    CandleTrainer::new(c)
        .train(
            std::slice::from_ref(data),
            &FitOptions::new(target),
            &(),
            &CancelToken::new(),
        )
        .unwrap()
        .model
}

/// The model's input columns of `data` as tensors.
fn inputs(model: &CandleModel, data: &RecordBatch) -> Vec<Tensor> {
    let Schema::Columns(cols) = &model.signature().inputs else {
        panic!("columns")
    };
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_deref().unwrap()).collect();
    mlops_core::arrow::tensors_by_name(data, &names).unwrap()
}

fn assert_close(what: &str, ours: &Tensor, theirs: &Tensor) {
    assert_eq!(ours.datatype(), theirs.datatype(), "{what}: datatype");
    assert_eq!(ours.shape(), theirs.shape(), "{what}: shape");
    match ours.datatype() {
        DataType::Fp64 => {
            for (i, (a, b)) in ours
                .to_f64()
                .unwrap()
                .iter()
                .zip(theirs.to_f64().unwrap())
                .enumerate()
            {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{what}[{i}]: onnx {a}, candle {b}"
                );
            }
        }
        _ => assert_eq!(ours.data(), theirs.data(), "{what}"),
    }
}

/// The ONNX graph of `model` on every runtime that runs it, against the candle model.
fn check(case: &str, model: &CandleModel, test: &RecordBatch) {
    let onnx = candle_to_onnx(model).unwrap();
    let x = inputs(model, test);
    let want = model.predict(&x).unwrap();
    // tract always; onnxruntime too where this build has it and ORT_DYLIB_PATH names it
    // (./scripts/test).
    let mut runtimes = vec![Runtime::Tract];
    if mlops_onnx::onnxruntime_available(None).is_ok() {
        runtimes.push(Runtime::OnnxRuntime);
    }
    for runtime in runtimes {
        let loaded =
            OnnxModel::from_bytes_with(onnx.clone(), &OnnxOptions::default().with_runtime(runtime))
                .unwrap_or_else(|e| panic!("{case} on {runtime}: {e}"));
        let got = loaded
            .predict(&x)
            .unwrap_or_else(|e| panic!("{case} on {runtime}: {e}"));
        assert_eq!(got.len(), want.len(), "{case}: outputs");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.name(), w.name(), "{case}");
            assert_close(
                &format!("{case} on {} output {}", loaded.runtime(), g.name()),
                g,
                w,
            );
        }
    }
}

#[test]
fn a_logistic_regression_over_mixed_columns_exports_equal() {
    let model = train(
        ModelKind::Logistic,
        &[("epochs", "10"), ("learning_rate", "0.05")],
        &churn(1500, 1),
        "churned",
    );
    check("logistic", &model, &churn(200, 99));
    // A category never seen in training encodes as all zeros, in both.
    let mut unseen = churn(5, 7);
    let plan = Arc::new(StringArray::from(vec!["gold"; 5])) as ArrayRef;
    unseen = RecordBatch::try_new(unseen.schema(), {
        let mut cols = unseen.columns().to_vec();
        cols[3] = plan;
        cols
    })
    .unwrap();
    check("logistic, unseen category", &model, &unseen);
}

#[test]
fn a_softmax_regression_with_string_classes_exports_equal() {
    let model = train(
        ModelKind::Softmax,
        &[("epochs", "10"), ("learning_rate", "0.1")],
        &colours(900, 2),
        "colour",
    );
    check("softmax", &model, &colours(200, 98));
}

#[test]
fn a_gelu_mlp_with_integer_classes_exports_equal() {
    let model = train(
        ModelKind::Mlp,
        &[
            ("epochs", "20"),
            ("hidden", "16,8"),
            ("activation", "gelu"),
            ("learning_rate", "0.05"),
        ],
        &xor(800, 3),
        "label",
    );
    check("mlp", &model, &xor(200, 97));
}

#[test]
fn a_regression_exports_equal() {
    let model = train(
        ModelKind::Linear,
        &[("epochs", "20"), ("learning_rate", "0.05")],
        &regression(800, 4),
        "target",
    );
    check("regression", &model, &regression(200, 96));
}

#[test]
fn the_mlflow_directory_wraps_the_graph_with_a_named_tensor_signature() {
    let model = train(
        ModelKind::Logistic,
        &[("epochs", "2")],
        &churn(300, 5),
        "churned",
    );
    let artifact = model.to_artifact().unwrap();
    let onnx = onnx_artifact(&artifact).unwrap();
    assert_eq!(onnx.flavor, "onnx");
    let dir = mlflow_model(&artifact, &MlflowExport::default().with_run_id("abc")).unwrap();
    assert_eq!(dir.flavor, "mlflow");
    assert_eq!(
        dir.file("model.onnx").unwrap(),
        onnx.file("model.onnx").unwrap()
    );
    let mlmodel = mlops_mlflow::model::MlModel::parse(dir.file("MLmodel").unwrap()).unwrap();
    assert_eq!(mlmodel.onnx_file(), Some("model.onnx"));
    assert_eq!(
        mlmodel.flavor_setting("python_function", "loader_module"),
        Some("mlflow.onnx")
    );
    assert_eq!(mlmodel.run_id.as_deref(), Some("abc"));
    let sig = mlmodel.signature().unwrap().unwrap();
    let Schema::Tensors(specs) = sig.inputs else {
        panic!("named tensors")
    };
    let names: Vec<_> = specs
        .iter()
        .map(|t| (t.name.clone().unwrap(), t.datatype, t.shape.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("tenure".into(), DataType::Fp64, vec![-1]),
            ("spend".into(), DataType::Fp32, vec![-1]),
            ("promo".into(), DataType::Bool, vec![-1]),
            ("plan".into(), DataType::Bytes, vec![-1]),
        ]
    );
    // Loaded back through the MLflow loader, it predicts as the candle model does.
    let loader = mlops_mlflow::model::MlflowModelLoader::new()
        .with_onnx(Arc::new(mlops_onnx::OnnxLoader::new()));
    let loaded = mlops_core::ModelLoader::load(&loader, &dir).unwrap();
    let test = churn(50, 11);
    let x = inputs(&model, &test);
    let (got, want) = (loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
    assert_eq!(got[0], want[0]);
}

#[test]
fn flavors_without_an_onnx_form_are_not_supported() {
    let e = onnx_artifact(&mlops_core::ModelArtifact::new("linear")).unwrap_err();
    assert!(e.is_not_supported(), "{e}");
}
