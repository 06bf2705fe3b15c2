#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Numerical equality with scipy and Evidently: generated data (several distributions, sizes
//! from 20 to 1,000,000, ties, integers, categories) is scored by `tests/oracle.py` — scipy's
//! `ks_2samp` and `wasserstein_distance`, and Evidently's own stat-test functions — and by us;
//! scores must agree to 1e-9 relative, and the default test Evidently picks must be ours.
//!
//! Needs a Python with scipy, pandas and evidently named by `MLOPS_TEST_PYTHON`
//! (`./scripts/test` creates `.venv-peers` and sets it); without it the test fails and says so.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use mlops_core::drift::{ColumnOverride, DetectOptions, DriftDetector, ProfileOptions};
use mlops_drift::StatDetector;
use mlops_drift::stats::{ks, wasserstein_sorted};
use mlops_testkit::rng::SplitMix64 as Rng;

#[derive(Clone, Copy)]
enum Gen {
    Normal(f64, f64),
    Uniform(f64, f64),
    Exponential(f64),
    /// Normal rounded to this many decimals: ties.
    Rounded(f64, i32),
    /// Integers 0..k with the first value's weight boosted.
    Categories(u32, f64),
}

fn draw(rng: &mut Rng, g: Gen, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| match g {
            Gen::Normal(mu, sd) => mu + sd * rng.normal(),
            Gen::Uniform(lo, hi) => lo + (hi - lo) * rng.unit(),
            Gen::Exponential(rate) => -(1.0 - rng.unit()).ln() / rate,
            Gen::Rounded(mu, dec) => {
                let p = 10f64.powi(dec);
                ((mu + rng.normal()) * p).round() / p
            }
            Gen::Categories(k, boost) => {
                if rng.unit() < boost {
                    0.0
                } else {
                    f64::from((rng.next_u64() % u64::from(k)) as u32)
                }
            }
        })
        .collect()
}

struct Case {
    name: String,
    categorical: bool,
    reference: Vec<f64>,
    current: Vec<f64>,
    tests: Vec<&'static str>,
}

fn cases() -> Vec<Case> {
    let mut rng = Rng::new(42);
    let mut out = Vec::new();
    let numeric_tests = vec!["ks", "wasserstein", "jensenshannon", "psi"];
    let sizes: &[(usize, usize)] = &[
        (20, 20),
        (20, 35),
        (50, 50),
        (100, 73),
        (250, 400),
        (999, 1001),
        (1000, 1000),
        (3000, 2000),
        (10_000, 10_000),
        (10_000, 9_999),
        (10_001, 500),
        (25_000, 40_000),
        (100_000, 100_000),
    ];
    let gens = [
        ("normal", Gen::Normal(0.0, 1.0), Gen::Normal(0.0, 1.0)),
        ("shifted", Gen::Normal(0.0, 1.0), Gen::Normal(0.25, 1.1)),
        (
            "uniform-vs-normal",
            Gen::Uniform(-2.0, 2.0),
            Gen::Normal(0.0, 1.0),
        ),
        ("exponential", Gen::Exponential(1.0), Gen::Exponential(0.9)),
        ("ties", Gen::Rounded(0.0, 1), Gen::Rounded(0.1, 1)),
        (
            "few-integers",
            Gen::Categories(4, 0.0),
            Gen::Categories(4, 0.1),
        ),
    ];
    for (i, &(n1, n2)) in sizes.iter().enumerate() {
        // Every generator at small sizes; two of them (rotating) at large ones.
        for (j, (gname, g1, g2)) in gens.iter().enumerate() {
            if n1 >= 10_000 && (i + j) % 3 != 0 {
                continue;
            }
            out.push(Case {
                name: format!("{gname}-{n1}x{n2}"),
                categorical: false,
                reference: draw(&mut rng, *g1, n1),
                current: draw(&mut rng, *g2, n2),
                tests: numeric_tests.clone(),
            });
        }
    }
    out.push(Case {
        name: "normal-1Mx1M".into(),
        categorical: false,
        reference: draw(&mut rng, Gen::Normal(0.0, 1.0), 1_000_000),
        current: draw(&mut rng, Gen::Normal(0.002, 1.0), 1_000_000),
        tests: vec!["ks", "wasserstein"],
    });
    for &(n1, n2) in &[
        (20, 30),
        (200, 200),
        (1000, 1500),
        (5000, 5000),
        (50_000, 40_000),
    ] {
        for (k, b1, b2) in [
            (2, 0.0, 0.05),
            (3, 0.0, 0.0),
            (8, 0.0, 0.1),
            (30, 0.05, 0.0),
        ] {
            out.push(Case {
                name: format!("categories{k}-{n1}x{n2}-{b2}"),
                categorical: true,
                reference: draw(&mut rng, Gen::Categories(k, b1), n1),
                current: draw(&mut rng, Gen::Categories(k, b2), n2),
                tests: vec!["chisquare", "z", "jensenshannon", "psi"],
            });
        }
    }
    // A category that only the current side has: chi-square's expected count is 0.
    out.push(Case {
        name: "new-category".into(),
        categorical: true,
        reference: draw(&mut rng, Gen::Categories(3, 0.0), 300),
        current: [draw(&mut rng, Gen::Categories(3, 0.0), 290), vec![7.0; 10]].concat(),
        tests: vec!["chisquare", "z", "jensenshannon", "psi"],
    });
    out
}

fn write_f64(path: &Path, values: &[f64]) {
    let mut bytes = Vec::with_capacity(values.len() * 8);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

fn batch(values: &[f64], categorical: bool) -> RecordBatch {
    let (dt, array): (DataType, ArrayRef) = if categorical {
        let labels: StringArray = values
            .iter()
            .map(|v| Some(format!("c{}", *v as i64)))
            .collect();
        (DataType::Utf8, Arc::new(labels))
    } else {
        (
            DataType::Float64,
            Arc::new(Float64Array::from(values.to_vec())),
        )
    };
    let schema = Arc::new(Schema::new(vec![Field::new("x", dt, false)]));
    RecordBatch::try_new(schema, vec![array]).unwrap()
}

fn close(ours: f64, theirs: f64) -> bool {
    if ours == theirs {
        return true;
    }
    let scale = ours.abs().max(theirs.abs());
    (ours - theirs).abs() <= 1e-9 * scale
}

#[test]
fn scores_equal_scipy_and_evidently() {
    let python = mlops_testkit::python::interpreter("scipy, pandas and evidently");
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    let mut manifest = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let (r, k) = (
            dir.path().join(format!("{i}-r.bin")),
            dir.path().join(format!("{i}-c.bin")),
        );
        write_f64(&r, &c.reference);
        write_f64(&k, &c.current);
        manifest.push(serde_json::json!({
            "name": c.name, "kind": if c.categorical { "categorical" } else { "numerical" },
            "reference": r, "current": k, "tests": c.tests,
        }));
    }
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec(&serde_json::json!({"cases": manifest})).unwrap(),
    )
    .unwrap();
    let results_path = dir.path().join("results.json");
    let oracle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle.py");
    let out = std::process::Command::new(&python)
        .args([
            oracle,
            manifest_path.to_str().unwrap(),
            results_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&results_path).unwrap()).unwrap();

    let detector = StatDetector::new();
    let mut failures = Vec::new();
    let mut compared = 0;
    for (c, r) in cases.iter().zip(&results) {
        assert_eq!(r["name"], c.name.as_str());
        let reference = batch(&c.reference, c.categorical);
        let current = batch(&c.current, c.categorical);
        let profile = detector
            .profile(&[reference], &ProfileOptions::default())
            .unwrap();
        let mut check = |what: String, ours: f64, theirs: f64| {
            compared += 1;
            if !close(ours, theirs) {
                failures.push(format!(
                    "{}: {what}: ours {ours:e}, theirs {theirs:e}",
                    c.name
                ));
            }
        };
        if !c.categorical {
            let (mut a, mut b) = (c.reference.clone(), c.current.clone());
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            let k = ks::ks_2samp_sorted(&a, &b);
            check(
                "ks statistic".into(),
                k.statistic,
                r["ks_statistic"].as_f64().unwrap(),
            );
            check(
                "ks p-value".into(),
                k.pvalue,
                r["ks_pvalue"].as_f64().unwrap(),
            );
            check(
                "wasserstein_distance".into(),
                wasserstein_sorted(&a, &b),
                r["wasserstein_distance"].as_f64().unwrap(),
            );
        }
        for test in &c.tests {
            let mut options = DetectOptions::default();
            options.overrides = BTreeMap::from([(
                "x".to_string(),
                ColumnOverride {
                    test: Some((*test).to_string()),
                    threshold: None,
                },
            )]);
            let report = detector
                .detect(&profile, std::slice::from_ref(&current), &options)
                .unwrap();
            let col = &report.columns[0];
            assert_eq!(col.test, *test);
            check(
                format!("{test} score"),
                col.score,
                r["scores"][*test].as_f64().unwrap(),
            );
        }
        let default = detector
            .detect(&profile, &[current], &DetectOptions::default())
            .unwrap();
        if default.columns[0].test != r["default_test"].as_str().unwrap() {
            failures.push(format!(
                "{}: default test ours {} theirs {}",
                c.name, default.columns[0].test, r["default_test"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared > 250, "only {compared} comparisons");
}
