#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Explainers over real `Model`s through `ModelFunction`, KernelSHAP's sampled plan, and bad
//! input named in `InvalidArgument`.

use std::sync::Arc;

use mlops_core::model::Model;
use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{DataType, ErrorKind, Tensor};
use mlops_explain::{
    Features, KernelExplainer, KernelOptions, LinearExplainer, MaxSamples, ModelFunction,
    PermutationOptions, Shuffles, permutation_importance, sample_background,
};
use mlops_serve::linear::{LinearModel, LinearParams, Link};
use mlops_testkit::rng::SplitMix64;

/// A broken model: one value whatever the batch.
#[derive(Debug)]
struct ShortModel(Signature);

impl Model for ShortModel {
    fn flavor(&self) -> &str {
        "short"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn predict(&self, _: &[Tensor]) -> mlops_core::Result<Vec<Tensor>> {
        Ok(vec![Tensor::from_f64("y", vec![1], &[0.0])?])
    }
    fn to_artifact(&self) -> mlops_core::Result<mlops_core::model::ModelArtifact> {
        Err(mlops_core::Error::invalid("short", "not saved"))
    }
}

fn model_signature() -> Signature {
    Signature::tensors(
        vec![TensorSpec::new("x", DataType::Fp64, vec![-1, 4])],
        vec![TensorSpec::new("y", DataType::Fp64, vec![-1])],
    )
}

fn features(rows: usize, width: usize, seed: u64) -> Features {
    let mut rng = SplitMix64::new(seed);
    let names = (0..width).map(|j| format!("f{j}")).collect();
    Features::new(names, (0..rows * width).map(|_| rng.normal()).collect()).unwrap()
}

#[test]
fn a_served_linear_model_is_explained_exactly() {
    let coef = vec![1.5, -2.0, 0.0, 0.25];
    let model = LinearModel::new(LinearParams {
        coef: vec![coef.clone()],
        intercept: vec![0.5],
        link: Link::Identity,
    })
    .unwrap();
    let f = ModelFunction::new(Arc::new(model), "y", 0).unwrap();
    let bg = features(30, 4, 1);
    let x = features(5, 4, 2);
    let kernel = KernelExplainer::new(f.clone(), bg.clone(), KernelOptions::default())
        .unwrap()
        .explain(&x)
        .unwrap();
    let exact = LinearExplainer::new(coef, 0.5, &bg)
        .unwrap()
        .explain(&x)
        .unwrap();
    // The model computes in f32: the attributions agree to its precision.
    for (a, b) in kernel.values.iter().zip(&exact.values) {
        for (p, q) in a.iter().zip(b) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }
    assert!(kernel.additivity_error < 1e-9);
    assert_eq!(kernel.mean_abs()[0].0, "f1");
    assert!(
        kernel.mean_abs()[3].1 < 1e-9,
        "an unused feature gets nothing"
    );
    let wrong = ModelFunction::new(
        Arc::new(
            LinearModel::new(LinearParams {
                coef: vec![vec![1.0; 4]],
                intercept: vec![0.0],
                link: Link::Identity,
            })
            .unwrap(),
        ),
        "nope",
        0,
    )
    .unwrap();
    let short = ModelFunction::new(Arc::new(ShortModel(model_signature())), "y", 0).unwrap();
    let e = KernelExplainer::new(short, bg.clone(), KernelOptions::default()).unwrap_err();
    assert!(e.to_string().contains("has shape [1] for 30 rows"), "{e}");
    let err = KernelExplainer::new(wrong, bg, KernelOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("\"nope\" is not an output"),
        "{err}"
    );
}

#[test]
fn sampled_coalitions_approach_the_exact_values() {
    // 14 features: 2^14 − 2 coalitions do not fit in the default 2076, so most are drawn.
    let width = 14;
    let coef: Vec<f64> = (0..width).map(|j| (j as f64 - 6.0) / 3.0).collect();
    let c = coef.clone();
    // A model with an interaction, so the values are not linear in the coalition.
    let f = move |x: &Features| -> mlops_core::Result<Vec<f64>> {
        Ok((0..x.rows())
            .map(|i| {
                let r = x.row(i);
                r.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>() + r[0] * r[1]
            })
            .collect())
    };
    let bg = features(10, width, 3);
    let x = features(2, width, 4);
    let sampled = KernelExplainer::new(f.clone(), bg.clone(), KernelOptions::default())
        .unwrap()
        .explain(&x)
        .unwrap();
    let exact = KernelExplainer::new(
        f.clone(),
        bg.clone(),
        KernelOptions {
            nsamples: Some((1 << width) - 2),
            ..KernelOptions::default()
        },
    )
    .unwrap()
    .explain(&x)
    .unwrap();
    let again = KernelExplainer::new(f, bg, KernelOptions::default())
        .unwrap()
        .explain(&x)
        .unwrap();
    assert_eq!(sampled, again, "seeded: the same draws every time");
    for (a, b) in sampled.values.iter().zip(&exact.values) {
        for (p, q) in a.iter().zip(b) {
            assert!((p - q).abs() < 0.05, "{p} vs exact {q}");
        }
    }
    assert!(sampled.additivity_error < 1e-9);
}

#[test]
fn bad_input_is_named() {
    let x = features(20, 3, 5);
    let f = |x: &Features| -> mlops_core::Result<Vec<f64>> {
        Ok((0..x.rows()).map(|i| x.row(i)[0]).collect())
    };
    let score = |y: &[f64], p: &[f64]| -> mlops_core::Result<f64> {
        Ok(-y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>())
    };
    let y = vec![0.0; 20];
    let invalid = |r: mlops_core::Result<mlops_explain::Importances>, needle: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains(needle), "{e} should say {needle}");
    };
    invalid(
        permutation_importance(&f, &x, &y[..3], &score, &PermutationOptions::default()),
        "3 targets for 20 rows",
    );
    invalid(
        permutation_importance(
            &f,
            &x,
            &y,
            &score,
            &PermutationOptions {
                max_samples: MaxSamples::Fraction(1.5),
                ..PermutationOptions::default()
            },
        ),
        "max_samples",
    );
    invalid(
        permutation_importance(
            &f,
            &x,
            &y,
            &score,
            &PermutationOptions {
                shuffles: Shuffles::Explicit {
                    rows: None,
                    orders: vec![vec![0; 20]],
                },
                ..PermutationOptions::default()
            },
        ),
        "order 0 is not a permutation",
    );
    let short = |x: &Features| -> mlops_core::Result<Vec<f64>> { Ok(vec![0.0; x.rows() / 2]) };
    invalid(
        permutation_importance(&short, &x, &y, &score, &PermutationOptions::default()),
        "predictions for 20 rows",
    );
    let e = Features::new(vec!["a".into(), "b".into()], vec![1.0, f64::NAN]).unwrap_err();
    assert!(e.to_string().contains("\"b\" is NaN at row 0"), "{e}");
    let other = Features::new(vec!["z".into(); 3], vec![0.0; 3]).unwrap();
    let e = KernelExplainer::new(f, x.clone(), KernelOptions::default())
        .unwrap()
        .explain(&other)
        .unwrap_err();
    assert!(e.to_string().contains("explained rows"), "{e}");
    let nan = |x: &Features| -> mlops_core::Result<Vec<f64>> { Ok(vec![f64::NAN; x.rows()]) };
    let e = KernelExplainer::new(nan, x.clone(), KernelOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("the model answered NaN for row 0"),
        "{e}"
    );
    // The logit link takes probabilities only.
    let e = KernelExplainer::new(
        f,
        x.clone(),
        KernelOptions {
            link: mlops_explain::Link::Logit,
            ..KernelOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("probabilities in (0, 1)"), "{e}");
    let e = KernelExplainer::new(
        f,
        x.clone(),
        KernelOptions {
            nsamples: Some(usize::MAX),
            ..KernelOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("coalitions: between 1 and"), "{e}");
    assert_eq!(sample_background(&x, 5, 0).unwrap().rows(), 5);
    assert_eq!(sample_background(&x, 50, 0).unwrap().rows(), 20);
}
