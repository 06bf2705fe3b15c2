#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Against the references: scikit-learn 1.9's permutation importance (fed the permutations it
//! draws), shap 0.51's LinearExplainer (1e-9) and KernelExplainer with every coalition
//! enumerated (1e-6), on generated data.
//!
//! Needs a Python with scikit-learn and shap named by `MLOPS_TEST_PYTHON` (`./scripts/test`
//! creates `.venv-peers` and sets it); without it the test fails and says so.

use std::path::Path;

use mlops_explain::{
    Features, KernelExplainer, KernelOptions, LinearExplainer, Link, MaxSamples,
    PermutationOptions, Shuffles, permutation_importance,
};
use mlops_testkit::rng::SplitMix64;
use serde_json::{Value, json};

const FEATURES: usize = 6;
const ROWS: usize = 400;

fn data() -> (Features, Vec<f64>, Vec<i64>) {
    let mut rng = SplitMix64::new(42);
    let mut x = Vec::with_capacity(ROWS * FEATURES);
    let (mut y, mut label) = (Vec::new(), Vec::new());
    for _ in 0..ROWS {
        let row: Vec<f64> = (0..FEATURES).map(|_| rng.normal()).collect();
        let signal = 2.0 * row[0] - 1.0 * row[1] + 0.5 * row[2] * row[3] + 0.1 * row[4];
        y.push(signal + 0.3 * rng.normal());
        label.push(i64::from(signal + 0.5 * rng.normal() > 0.0));
        x.extend(row);
    }
    let names = (0..FEATURES).map(|j| format!("f{j}")).collect();
    (Features::new(names, x).unwrap(), y, label)
}

fn floats(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

fn close(what: &str, ours: f64, theirs: f64, tolerance: f64) {
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{what}: ours {ours}, the reference's {theirs}"
    );
}

fn r2(y: &[f64], p: &[f64]) -> mlops_core::Result<f64> {
    mlops_train::eval::r2(y, p)
}

#[test]
fn scikit_learn_and_shap_agree() {
    let (x, y, label) = data();
    let (background, explained) = (40, 12);
    let rows: Vec<Vec<f64>> = (0..x.rows()).map(|i| x.row(i).to_vec()).collect();
    let case = json!({"x": rows, "y": y, "label": label, "background": background, "explained": explained});
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/references.py");
    let r: Value = mlops_testkit::python::run_json(&script, &case, "scikit-learn and shap");

    // Permutation importance of the same regression, with scikit-learn's permutations.
    let coef = floats(&r["regression"]["coef"]);
    let intercept = r["regression"]["intercept"].as_f64().unwrap();
    let regression = |x: &Features| -> mlops_core::Result<Vec<f64>> {
        Ok((0..x.rows())
            .map(|i| x.row(i).iter().zip(&coef).map(|(a, b)| a * b).sum::<f64>() + intercept)
            .collect())
    };
    let imp = &r["importance"];
    let options = PermutationOptions {
        n_repeats: 4,
        max_samples: MaxSamples::Fraction(0.7),
        shuffles: Shuffles::Explicit {
            rows: Some(serde_json::from_value(imp["rows"].clone()).unwrap()),
            orders: serde_json::from_value(imp["orders"].clone()).unwrap(),
        },
    };
    let ours = permutation_importance(&regression, &x, &y, &r2, &options).unwrap();
    let (mean, std) = (floats(&imp["mean"]), floats(&imp["std"]));
    let raw: Vec<Vec<f64>> = serde_json::from_value(imp["importances"].clone()).unwrap();
    assert_eq!((mean.len(), ours.features.len()), (FEATURES, FEATURES));
    for (j, f) in ours.features.iter().enumerate() {
        close(&format!("{} mean", f.feature), f.mean, mean[j], 1e-12);
        close(&format!("{} std", f.feature), f.std, std[j], 1e-12);
        for (k, d) in f.drops.iter().enumerate() {
            close(&format!("{} repeat {k}", f.feature), *d, raw[j][k], 1e-12);
        }
    }
    assert_eq!(
        ours.ranked()[0].feature,
        "f0",
        "the strongest feature ranks first"
    );
    // Seeded shuffles rank the features the same way.
    let seeded =
        permutation_importance(&regression, &x, &y, &r2, &PermutationOptions::default()).unwrap();
    assert_eq!(seeded.ranked()[0].feature, "f0");
    assert_eq!(seeded.features[0].drops.len(), 5);

    // SHAP of the same logistic regression.
    let coef = floats(&r["logistic"]["coef"]);
    let intercept = r["logistic"]["intercept"].as_f64().unwrap();
    let bg = x.select(&(0..background).collect::<Vec<_>>()).unwrap();
    let rows_explained = x
        .select(&(background..background + explained).collect::<Vec<_>>())
        .unwrap();
    let linear = LinearExplainer::new(coef.clone(), intercept, &bg)
        .unwrap()
        .explain(&rows_explained)
        .unwrap();
    let theirs: Vec<Vec<f64>> = serde_json::from_value(r["linear"]["values"].clone()).unwrap();
    close(
        "linear base",
        linear.base_value,
        r["linear"]["base"].as_f64().unwrap(),
        1e-9,
    );
    assert_eq!(theirs.len(), explained);
    assert_eq!(linear.values.len(), explained);
    for (i, (a, b)) in linear.values.iter().zip(&theirs).enumerate() {
        for j in 0..FEATURES {
            close(&format!("linear row {i} f{j}"), a[j], b[j], 1e-9);
        }
    }
    assert!(linear.additivity_error < 1e-9);

    let probability = |x: &Features| -> mlops_core::Result<Vec<f64>> {
        Ok((0..x.rows())
            .map(|i| {
                let z = x.row(i).iter().zip(&coef).map(|(a, b)| a * b).sum::<f64>() + intercept;
                1.0 / (1.0 + (-z).exp())
            })
            .collect())
    };
    for (key, link) in [
        ("kernel_identity", Link::Identity),
        ("kernel_logit", Link::Logit),
    ] {
        let explainer = KernelExplainer::new(
            probability,
            bg.clone(),
            KernelOptions {
                link,
                ..KernelOptions::default()
            },
        )
        .unwrap();
        let ours = explainer.explain(&rows_explained).unwrap();
        close(
            &format!("{key} base"),
            ours.base_value,
            r[key]["base"].as_f64().unwrap(),
            1e-9,
        );
        let theirs: Vec<Vec<f64>> = serde_json::from_value(r[key]["values"].clone()).unwrap();
        assert_eq!((theirs.len(), ours.values.len()), (explained, explained));
        for (i, (a, b)) in ours.values.iter().zip(&theirs).enumerate() {
            for j in 0..FEATURES {
                close(&format!("{key} row {i} f{j}"), a[j], b[j], 1e-6);
            }
        }
        assert!(ours.additivity_error < 1e-9, "{}", ours.additivity_error);
    }
}
