#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The trainers end to end: accuracy on synthetic data with known structure, determinism,
//! save → load, checkpoints and resume, cancellation, early stopping, and typed errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Float32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampSecondArray,
};
use arrow::datatypes::Int32Type;
use mlops_core::signature::{ColumnType, Schema as SigSchema};
use mlops_core::train::EpochReport;
use mlops_core::{CancelToken, DataType, Error, FitOptions, Model, ModelLoader, Tensor, Trainer};
use mlops_testkit::rng::SplitMix64;
use mlops_train::{
    CandleLoader, CandleTrainer, DeviceSpec, ModelCard, ModelKind, TrainConfig, latest_checkpoint,
};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns.into_iter().map(|(n, a)| (n.to_owned(), a))).unwrap()
}

const PLANS: [&str; 3] = ["basic", "plus", "pro"];
const REGIONS: [&str; 3] = ["apac", "eu", "us"];

/// Churn: numeric (with missing values), string and dictionary columns; a boolean target from a
/// known logistic model.
fn churn(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let mut tenure = Vec::new();
    let mut spend = Vec::new();
    let mut plan = Vec::new();
    let mut region = Vec::new();
    let mut churned = Vec::new();
    for _ in 0..n {
        let t = r.normal() * 12.0 + 24.0;
        let s = r.normal() as f32;
        let p = (r.next_u64() % 3) as usize;
        let g = (r.next_u64() % 3) as usize;
        let z = -0.15 * (t - 24.0) + 2.0 * f64::from(s) + [0.0, 1.0, 2.5][p] - 1.0;
        let u = r.unit().clamp(1e-9, 1.0 - 1e-9);
        churned.push(z + (u / (1.0 - u)).ln() * 0.3 > 0.0);
        tenure.push((r.unit() > 0.05).then_some(t));
        spend.push(s);
        plan.push(PLANS[p]);
        region.push(REGIONS[g]);
    }
    let region: DictionaryArray<Int32Type> = region.into_iter().collect();
    batch(vec![
        ("tenure", Arc::new(Float64Array::from(tenure))),
        ("spend", Arc::new(Float32Array::from(spend))),
        ("plan", Arc::new(StringArray::from(plan))),
        ("region", Arc::new(region)),
        ("churned", Arc::new(BooleanArray::from(churned))),
    ])
}

/// Three classes (strings) from the argmax of three linear scores.
fn three_classes(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut a, mut b, mut label) = (Vec::new(), Vec::new(), Vec::new());
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

/// XOR: the class is the sign of x·y, which no linear model separates.
fn xor(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut x, mut y, mut label) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (u, v) = (r.unit() * 2.0 - 1.0, r.unit() * 2.0 - 1.0);
        x.push(u);
        y.push(v);
        label.push(i64::from(u * v > 0.0));
    }
    batch(vec![
        ("x", Arc::new(Float64Array::from(x))),
        ("y", Arc::new(Float64Array::from(y))),
        ("label", Arc::new(Int64Array::from(label))),
    ])
}

/// `target = 3a - 2b + 5·[kind = "big"] + 10 + noise(0.1)`.
fn regression(n: usize, seed: u64) -> RecordBatch {
    let mut r = SplitMix64::new(seed);
    let (mut a, mut b, mut kind, mut t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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

fn config(model: ModelKind, params: &[(&str, &str)]) -> TrainConfig {
    let mut c = TrainConfig::new(model);
    c.device = DeviceSpec::Cpu;
    c.apply(params.iter().copied()).unwrap();
    c
}

fn train(c: TrainConfig, data: &RecordBatch, target: &str) -> mlops_train::Training {
    CandleTrainer::new(c)
        .train(
            std::slice::from_ref(data),
            &FitOptions::new(target),
            &(),
            &CancelToken::new(),
        )
        .unwrap()
}

#[test]
fn logistic_regression_learns_churn_with_mixed_columns() {
    let data = churn(4000, 1);
    let t = train(
        config(
            ModelKind::Logistic,
            &[("epochs", "15"), ("learning_rate", "0.05")],
        ),
        &data,
        "churned",
    );
    assert!(t.metrics["val_accuracy"] > 0.85, "{:?}", t.metrics);
    assert!(t.metrics["val_roc_auc"] > 0.9, "{:?}", t.metrics);
    for key in ["val_f1", "val_precision", "val_recall", "val_log_loss"] {
        assert!(t.metrics.contains_key(key), "{key} in {:?}", t.metrics);
    }
    assert_eq!(t.history.len(), 15);
    assert!(t.history[14].train_loss < t.history[0].train_loss);

    // The signature: one column per feature, typed as the data; label typed as the target.
    let sig = t.model.signature();
    let SigSchema::Columns(cols) = &sig.inputs else {
        panic!("column inputs")
    };
    let kinds: Vec<_> = cols
        .iter()
        .map(|c| (c.name.clone().unwrap(), c.col_type))
        .collect();
    assert_eq!(
        kinds,
        [
            ("tenure".to_owned(), ColumnType::Double),
            ("spend".to_owned(), ColumnType::Float),
            ("plan".to_owned(), ColumnType::String),
            ("region".to_owned(), ColumnType::String),
        ]
    );
    // Predict from raw columns, including a missing number and an unknown category.
    let inputs = vec![
        Tensor::from_f64("tenure", vec![3], &[1.0, 60.0, f64::NAN]).unwrap(),
        Tensor::from_f32("spend", vec![3], &[2.0, -2.0, 0.0]).unwrap(),
        Tensor::from_byte_strings("plan", vec![3], &["pro", "basic", "enterprise"]).unwrap(),
        Tensor::from_byte_strings("region", vec![3], &["eu", "us", "mars"]).unwrap(),
    ];
    let out = t.model.predict(&inputs).unwrap();
    assert_eq!(out[0].name(), "label");
    assert_eq!(out[0].datatype(), DataType::Bool);
    assert_eq!(out[0].to_bool().unwrap()[..2], [true, false]);
    assert_eq!(out[1].shape(), [3, 2]);
    let p = out[1].to_f64().unwrap();
    for row in p.chunks(2) {
        assert!((row[0] + row[1] - 1.0).abs() < 1e-12 && row[1].is_finite());
    }
}

#[test]
fn softmax_regression_separates_three_string_classes() {
    let data = three_classes(3000, 2);
    let t = train(
        config(
            ModelKind::Softmax,
            &[("epochs", "20"), ("learning_rate", "0.05")],
        ),
        &data,
        "colour",
    );
    assert!(t.metrics["val_accuracy"] > 0.93, "{:?}", t.metrics);
    assert!(t.metrics.contains_key("val_f1_macro"), "{:?}", t.metrics);
    assert!(t.metrics["val_roc_auc_ovr"] > 0.97, "{:?}", t.metrics);
    let out = t
        .model
        .predict(&[
            Tensor::from_f64("a", vec![2], &[3.0, -1.0]).unwrap(),
            Tensor::from_f64("b", vec![2], &[0.0, 2.0]).unwrap(),
        ])
        .unwrap();
    let labels: Vec<&[u8]> = out[0].to_byte_strings().unwrap();
    assert_eq!(labels, [b"red".as_slice(), b"green"]);
    assert_eq!(out[1].shape(), [2, 3]);
}

#[test]
fn mlp_learns_xor_which_logistic_regression_cannot() {
    let data = xor(3000, 3);
    let linear = train(
        config(
            ModelKind::Logistic,
            &[("epochs", "10"), ("learning_rate", "0.05")],
        ),
        &data,
        "label",
    );
    let mlp = train(
        config(
            ModelKind::Mlp,
            &[
                ("hidden", "32,16"),
                ("activation", "gelu"),
                ("epochs", "40"),
                ("learning_rate", "0.01"),
                ("batch_size", "64"),
            ],
        ),
        &data,
        "label",
    );
    assert!(linear.metrics["val_accuracy"] < 0.7, "{:?}", linear.metrics);
    assert!(mlp.metrics["val_accuracy"] > 0.93, "{:?}", mlp.metrics);
    // Integer labels come back as INT64.
    let out = mlp
        .model
        .predict(&[
            Tensor::from_f64("x", vec![2], &[0.8, -0.8]).unwrap(),
            Tensor::from_f64("y", vec![2], &[0.8, 0.8]).unwrap(),
        ])
        .unwrap();
    assert_eq!(out[0].to_i64().unwrap(), [1, 0]);
}

#[test]
fn linear_and_mlp_regression_fit_a_known_function() {
    let data = regression(3000, 4);
    for (kind, params) in [
        (
            ModelKind::Linear,
            vec![("epochs", "30"), ("learning_rate", "0.05")],
        ),
        (
            ModelKind::Mlp,
            vec![
                ("task", "regression"),
                ("hidden", "16"),
                ("epochs", "40"),
                ("learning_rate", "0.01"),
            ],
        ),
    ] {
        let t = train(config(kind, &params), &data, "target");
        assert!(t.metrics["val_r2"] > 0.99, "{kind:?}: {:?}", t.metrics);
        assert!(t.metrics["val_rmse"] < 0.8, "{kind:?}: {:?}", t.metrics);
        // Predictions are in the target's units.
        let out = t
            .model
            .predict(&[
                Tensor::from_f64("a", vec![1], &[1.0]).unwrap(),
                Tensor::from_f64("b", vec![1], &[-1.0]).unwrap(),
                Tensor::from_byte_strings("kind", vec![1], &["big"]).unwrap(),
            ])
            .unwrap();
        assert_eq!(out[0].name(), "prediction");
        let y = out[0].to_f64().unwrap()[0];
        assert!((y - 20.0).abs() < 1.0, "{kind:?}: predicted {y}, want 20");
    }
}

#[test]
fn same_seed_same_weights_bit_for_bit() {
    let data = churn(1500, 5);
    let c = config(
        ModelKind::Mlp,
        &[
            ("hidden", "16,8"),
            ("dropout", "0.2"),
            ("epochs", "4"),
            ("batch_size", "32"),
        ],
    );
    let a = train(c.clone(), &data, "churned");
    let b = train(c.clone(), &data, "churned");
    let wa: Vec<u32> = a
        .model
        .weights()
        .unwrap()
        .iter()
        .map(|w| w.to_bits())
        .collect();
    let wb: Vec<u32> = b
        .model
        .weights()
        .unwrap()
        .iter()
        .map(|w| w.to_bits())
        .collect();
    assert_eq!(wa, wb);
    assert_eq!(a.history, b.history);
    let other = CandleTrainer::new(c)
        .train(
            &[data],
            &FitOptions::new("churned").with_seed(43),
            &(),
            &CancelToken::new(),
        )
        .unwrap();
    assert_ne!(other.model.weights().unwrap(), a.model.weights().unwrap());
}

#[test]
fn save_then_load_predicts_identically_without_training_code() {
    let data = churn(1000, 6);
    let t = train(
        config(ModelKind::Mlp, &[("hidden", "8"), ("epochs", "3")]),
        &data,
        "churned",
    );
    let artifact = t.model.to_artifact().unwrap();
    assert_eq!(artifact.flavor, "candle");
    let card = ModelCard::read(&artifact).unwrap();
    assert_eq!(card.metrics, t.metrics);
    assert_eq!(card.params["hidden"], "8");
    assert_eq!(card.training.epochs, 3);
    // The weights are plain safetensors, in PyTorch's [out, in] layout.
    let st =
        safetensors::SafeTensors::deserialize(artifact.file("model.safetensors").unwrap()).unwrap();
    assert_eq!(
        st.tensor("layers.0.weight").unwrap().shape(),
        [8, card.network.inputs]
    );

    let loaded = CandleLoader::new().load(&artifact).unwrap();
    assert_eq!(loaded.signature(), t.model.signature());
    let inputs = vec![
        Tensor::from_f64("tenure", vec![4], &[1.0, 12.0, 40.0, f64::NAN]).unwrap(),
        Tensor::from_f32("spend", vec![4], &[0.5, -1.0, 0.0, 3.0]).unwrap(),
        Tensor::from_byte_strings("plan", vec![4], &["pro", "basic", "plus", "pro"]).unwrap(),
        Tensor::from_byte_strings("region", vec![4], &["eu", "us", "apac", "eu"]).unwrap(),
    ];
    assert_eq!(
        loaded.predict(&inputs).unwrap(),
        t.model.predict(&inputs).unwrap()
    );
    assert_eq!(loaded.to_artifact().unwrap(), artifact);

    // A damaged artifact is a typed error, not a panic.
    let mut broken = artifact.clone();
    broken.files.insert(
        "model.safetensors".parse().unwrap(),
        bytes::Bytes::from_static(b"nope"),
    );
    assert!(matches!(
        CandleLoader::new().load(&broken),
        Err(Error::Corrupt { .. })
    ));
    let mut no_card = artifact;
    no_card.files.retain(|p, _| p.as_str() != "model_card.json");
    assert!(matches!(
        CandleLoader::new().load(&no_card),
        Err(Error::NotFound { .. })
    ));
}

/// Cancels when the `n`th epoch report arrives.
struct CancelAt {
    n: usize,
    seen: AtomicUsize,
    token: CancelToken,
}

impl mlops_core::train::FitObserver for CancelAt {
    fn on_epoch(&self, _r: &EpochReport) {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            self.token.cancel();
        }
    }
}

#[test]
fn cancel_checkpoint_and_resume_equal_an_uninterrupted_run() {
    let data = churn(1200, 7);
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        ModelKind::Mlp,
        &[
            ("hidden", "8"),
            ("dropout", "0.1"),
            ("epochs", "6"),
            ("early_stopping", "100"),
            ("optimizer", "adamw"),
            ("weight_decay", "0.01"),
            ("batch_size", "50"),
        ],
    );
    let straight = train(c.clone(), &data, "churned");

    let token = CancelToken::new();
    let observer = CancelAt {
        n: 3,
        seen: AtomicUsize::new(0),
        token: token.clone(),
    };
    let trainer = CandleTrainer::new(c.clone()).with_checkpoints(dir.path(), 2);
    let e = trainer
        .train(
            std::slice::from_ref(&data),
            &FitOptions::new("churned"),
            &observer,
            &token,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("cancelled after 3 epochs"), "{e}");
    let latest = latest_checkpoint(dir.path()).unwrap().unwrap();
    assert!(latest.ends_with("epoch-000003.safetensors"), "{latest:?}");
    assert!(dir.path().join("epoch-000002.safetensors").exists());

    let resumed = CandleTrainer::new(c.clone())
        .with_checkpoints(dir.path(), 2)
        .resume_from(&latest)
        .train(
            std::slice::from_ref(&data),
            &FitOptions::new("churned"),
            &(),
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(
        resumed.model.weights().unwrap(),
        straight.model.weights().unwrap()
    );
    assert_eq!(resumed.history, straight.history);
    assert_eq!(resumed.metrics, straight.metrics);

    // A checkpoint does not resume a different run.
    let mut other = c;
    other.learning_rate = 0.5;
    let e = CandleTrainer::new(other)
        .resume_from(&latest)
        .train(
            &[data],
            &FitOptions::new("churned"),
            &(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("different configuration"), "{e}");
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // Labels independent of the features: validation loss stops improving quickly.
    let mut r = SplitMix64::new(8);
    let n = 800;
    let x: Vec<f64> = (0..n).map(|_| r.normal()).collect();
    let z: Vec<f64> = (0..n).map(|_| r.normal()).collect();
    let y: Vec<bool> = (0..n).map(|_| r.unit() > 0.5).collect();
    let data = batch(vec![
        ("x", Arc::new(Float64Array::from(x))),
        ("z", Arc::new(Float64Array::from(z))),
        ("y", Arc::new(BooleanArray::from(y))),
    ]);
    let reports = Mutex::new(Vec::new());
    let t = CandleTrainer::new(config(
        ModelKind::Mlp,
        &[
            ("hidden", "64,64"),
            ("epochs", "200"),
            ("early_stopping", "3"),
            ("learning_rate", "0.02"),
            ("batch_size", "16"),
        ],
    ))
    .train(
        &[data],
        &FitOptions::new("y"),
        &|r: &EpochReport| reports.lock().unwrap().push(r.clone()),
        &CancelToken::new(),
    )
    .unwrap();
    assert!(t.stopped_early);
    let reports = reports.into_inner().unwrap();
    assert_eq!(reports, t.history);
    assert!(reports.len() < 200);
    let best = t.model.card().training.best_epoch.unwrap();
    assert_eq!(best, reports.len() - 3, "patience 3 after the best epoch");
    let best_loss = reports[best - 1].val_loss.unwrap();
    assert!(reports.iter().all(|r| r.val_loss.unwrap() >= best_loss));
}

#[test]
fn sgd_with_momentum_and_schedules_train_too() {
    let data = churn(2000, 9);
    let t = train(
        config(
            ModelKind::Logistic,
            &[
                ("optimizer", "sgd"),
                ("momentum", "0.9"),
                ("nesterov", "true"),
                ("learning_rate", "0.05"),
                ("schedule", "cosine"),
                ("l2", "0.001"),
                ("epochs", "10"),
            ],
        ),
        &data,
        "churned",
    );
    assert!(t.metrics["val_accuracy"] > 0.85, "{:?}", t.metrics);
    let lrs: Vec<f64> = t
        .history
        .iter()
        .map(|r| r.metrics["learning_rate"])
        .collect();
    assert!(lrs.windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
    assert_eq!(t.model.card().params["optimizer"], "sgd");
}

#[test]
fn bad_input_is_a_typed_error_naming_the_problem() {
    let data = churn(100, 10);
    let fit = |c: TrainConfig, data: &RecordBatch, target: &str, frac: f64| {
        CandleTrainer::new(c)
            .fit(
                std::slice::from_ref(data),
                &FitOptions::new(target).with_validation_fraction(frac),
                &(),
                &CancelToken::new(),
            )
            .unwrap_err()
    };
    let logistic = config(ModelKind::Logistic, &[("epochs", "1")]);
    let cases: Vec<(Error, &str)> = vec![
        (
            fit(logistic.clone(), &data, "nope", 0.2),
            "\"nope\" is not in the data",
        ),
        (
            fit(logistic.clone(), &data, "churned", 1.0),
            "validation_fraction",
        ),
        (
            fit(config(ModelKind::Linear, &[]), &data, "plan", 0.2),
            "choose a classifier",
        ),
        (
            fit(logistic.clone(), &three_classes(50, 1), "colour", 0.2),
            "use softmax",
        ),
        (
            fit(
                config(
                    ModelKind::Softmax,
                    &[("epochs", "1"), ("features", "plan,zip")],
                ),
                &data,
                "churned",
                0.2,
            ),
            "no column \"zip\"",
        ),
        (
            fit(
                config(ModelKind::Logistic, &[("early_stopping", "2")]),
                &data,
                "churned",
                0.0,
            ),
            "needs a validation split",
        ),
        (
            fit(
                config(
                    ModelKind::Linear,
                    &[
                        ("optimizer", "sgd"),
                        ("learning_rate", "1e3"),
                        ("epochs", "50"),
                    ],
                ),
                &regression(200, 1),
                "target",
                0.2,
            ),
            "diverged",
        ),
    ];
    for (e, want) in cases {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        assert!(e.to_string().contains(want), "{e} should say {want}");
    }
    // A feature column of an unsupported type is named.
    let ts = batch(vec![
        ("when", Arc::new(TimestampSecondArray::from(vec![1, 2, 3]))),
        ("y", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
    ]);
    let e = fit(config(ModelKind::Linear, &[]), &ts, "y", 0.0);
    assert!(e.to_string().contains("when has type Timestamp"), "{e}");
    // Empty input.
    let e = CandleTrainer::new(logistic.clone())
        .fit(&[], &FitOptions::new("y"), &(), &CancelToken::new())
        .unwrap_err();
    assert!(e.to_string().contains("no record batches"), "{e}");
    let empty = batch(vec![
        ("x", Arc::new(Float64Array::from(Vec::<f64>::new()))),
        ("y", Arc::new(Float64Array::from(Vec::<f64>::new()))),
    ]);
    let e = fit(config(ModelKind::Linear, &[]), &empty, "y", 0.0);
    assert!(e.to_string().contains("0 rows"), "{e}");
    // CUDA in a build without it.
    if !DeviceSpec::cuda_compiled() {
        let mut c = logistic;
        c.device = DeviceSpec::Cuda(0);
        let e = fit(c, &data, "churned", 0.2);
        assert!(e.is_not_supported(), "{e:?}");
    }
    // Inputs that do not match the model are named at predict time.
    let t = train(
        config(ModelKind::Logistic, &[("epochs", "1")]),
        &data,
        "churned",
    );
    let e = t
        .model
        .predict(&[Tensor::from_f64("tenure", vec![1], &[1.0]).unwrap()])
        .unwrap_err();
    assert!(e.to_string().contains("missing input \"spend\""), "{e}");
}
