#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Our metrics against scikit-learn's on the same predictions, to 1e-9 relative.
//!
//! Needs a Python with scikit-learn named by `MLOPS_TEST_PYTHON` (`./scripts/test` provides it);
//! without it the test fails and says so.

use mlops_testkit::rng::SplitMix64 as Rng;
use mlops_train::eval::{self, Average};
use serde_json::json;

const ORACLE: &str = r#"
import json, sys, warnings
import numpy as np
from sklearn import metrics as m
warnings.simplefilter("ignore")
out = []
for c in json.load(open(sys.argv[1])):
    r = {}
    if c["kind"] == "class":
        t, p = c["true"], c["pred"]
        r["accuracy"] = m.accuracy_score(t, p)
        for avg in ("micro", "macro", "weighted"):
            r["precision_" + avg] = m.precision_score(t, p, average=avg, zero_division=0)
            r["recall_" + avg] = m.recall_score(t, p, average=avg, zero_division=0)
            r["f1_" + avg] = m.f1_score(t, p, average=avg, zero_division=0)
        if len(set(t) | set(p)) <= 2:
            for k in ("precision", "recall", "f1"):
                r[k + "_binary"] = getattr(m, k + "_score")(t, p, pos_label=1, zero_division=0)
        r["confusion"] = m.confusion_matrix(t, p).tolist()
        if "proba" in c:
            proba = np.array(c["proba"])
            r["log_loss"] = m.log_loss(c["true_idx"], proba, labels=list(range(proba.shape[1])))
            if proba.shape[1] == 2:
                r["roc_auc"] = m.roc_auc_score(c["true_idx"], proba[:, 1])
            else:
                r["roc_auc"] = m.roc_auc_score(c["true_idx"], proba, multi_class="ovr", average="macro")
    else:
        t, p = c["true"], c["pred"]
        r["rmse"] = m.root_mean_squared_error(t, p)
        r["mae"] = m.mean_absolute_error(t, p)
        r["r2"] = m.r2_score(t, p)
    out.append(r)
json.dump(out, open(sys.argv[2], "w"))
"#;

struct ClassCase {
    truth: Vec<i64>,
    pred: Vec<i64>,
    proba: Option<Vec<Vec<f64>>>,
}

fn class_cases(rng: &mut Rng) -> Vec<ClassCase> {
    let mut out = Vec::new();
    for &(n, k, skill) in &[
        (20usize, 2usize, 0.7),
        (200, 2, 0.9),
        (1000, 2, 0.55),
        (300, 3, 0.6),
        (500, 5, 0.4),
        (50, 4, 0.0),
    ] {
        let truth: Vec<i64> = (0..n).map(|_| (rng.next_u64() % k as u64) as i64).collect();
        // Probabilities leaning towards the truth by `skill`, with ties (rounded to 0.05).
        let proba: Vec<Vec<f64>> = truth
            .iter()
            .map(|t| {
                let mut row: Vec<f64> = (0..k).map(|_| rng.unit()).collect();
                row[*t as usize] += skill * k as f64;
                let s: f64 = row.iter().sum();
                let mut row: Vec<f64> = row.iter().map(|v| (v / s * 20.0).round() / 20.0).collect();
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
                row
            })
            .collect();
        let pred: Vec<i64> = proba
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap()
                    .0 as i64
            })
            .collect();
        out.push(ClassCase {
            truth,
            pred,
            proba: Some(proba),
        });
    }
    // A class never predicted (zero division), and labels that are not 0..k.
    out.push(ClassCase {
        truth: vec![0, 1, 2, 2, 1, 0, 2],
        pred: vec![0, 0, 0, 2, 2, 0, 2],
        proba: None,
    });
    out.push(ClassCase {
        truth: vec![-3, 7, 7, 10, -3],
        pred: vec![7, 7, -3, 10, 10],
        proba: None,
    });
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn metrics_equal_scikit_learn() {
    let python = mlops_testkit::python::interpreter("scikit-learn");
    let mut rng = Rng::new(3);
    let classes = class_cases(&mut rng);
    let regressions: Vec<(Vec<f64>, Vec<f64>)> = vec![
        (
            (0..500).map(|i| f64::from(i) * 0.3).collect(),
            (0..500)
                .map(|i| f64::from(i) * 0.3 + (rng.unit() - 0.5))
                .collect(),
        ),
        (
            (0..50).map(|_| rng.unit() * 1e6).collect(),
            (0..50).map(|_| rng.unit() * 1e6).collect(),
        ),
        (vec![2.0; 10], vec![2.0; 10]),
        (vec![2.0; 10], (0..10).map(f64::from).collect()),
    ];
    let mut docs = Vec::new();
    for c in &classes {
        let mut d = json!({"kind": "class", "true": c.truth, "pred": c.pred});
        if let Some(p) = &c.proba {
            d["proba"] = json!(p);
            d["true_idx"] = json!(c.truth);
        }
        docs.push(d);
    }
    for (t, p) in &regressions {
        docs.push(json!({"kind": "reg", "true": t, "pred": p}));
    }
    let dir = tempfile::tempdir().unwrap();
    let (cases, results) = (
        dir.path().join("cases.json"),
        dir.path().join("results.json"),
    );
    std::fs::write(&cases, serde_json::to_vec(&docs).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            ORACLE,
            cases.to_str().unwrap(),
            results.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();

    let mut failures = Vec::new();
    let mut compared = 0;
    let mut check = |case: usize, what: &str, ours: f64, theirs: &serde_json::Value| {
        compared += 1;
        let t = theirs
            .as_f64()
            .unwrap_or_else(|| panic!("{case} {what}: {theirs}"));
        if !close(ours, t) {
            failures.push(format!("case {case} {what}: ours {ours}, scikit-learn {t}"));
        }
    };
    for (i, c) in classes.iter().enumerate() {
        let r = &theirs[i];
        check(
            i,
            "accuracy",
            eval::accuracy(&c.truth, &c.pred).unwrap(),
            &r["accuracy"],
        );
        for (name, avg) in [
            ("micro", Average::Micro),
            ("macro", Average::Macro),
            ("weighted", Average::Weighted),
        ] {
            check(
                i,
                &format!("precision {name}"),
                eval::precision(&c.truth, &c.pred, avg).unwrap(),
                &r[format!("precision_{name}")],
            );
            check(
                i,
                &format!("recall {name}"),
                eval::recall(&c.truth, &c.pred, avg).unwrap(),
                &r[format!("recall_{name}")],
            );
            check(
                i,
                &format!("f1 {name}"),
                eval::f1(&c.truth, &c.pred, avg).unwrap(),
                &r[format!("f1_{name}")],
            );
        }
        if r.get("f1_binary").is_some() {
            let b = Average::Binary { pos_label: 1 };
            check(
                i,
                "precision binary",
                eval::precision(&c.truth, &c.pred, b).unwrap(),
                &r["precision_binary"],
            );
            check(
                i,
                "recall binary",
                eval::recall(&c.truth, &c.pred, b).unwrap(),
                &r["recall_binary"],
            );
            check(
                i,
                "f1 binary",
                eval::f1(&c.truth, &c.pred, b).unwrap(),
                &r["f1_binary"],
            );
        }
        let cm = eval::confusion_matrix(&c.truth, &c.pred).unwrap();
        assert_eq!(json!(cm.counts), r["confusion"], "case {i}");
        if let Some(p) = &c.proba {
            let idx: Vec<usize> = c.truth.iter().map(|t| *t as usize).collect();
            check(
                i,
                "log loss",
                eval::log_loss(&idx, p).unwrap(),
                &r["log_loss"],
            );
            let auc = if p[0].len() == 2 {
                let y: Vec<bool> = idx.iter().map(|t| *t == 1).collect();
                let s: Vec<f64> = p.iter().map(|r| r[1]).collect();
                eval::roc_auc(&y, &s).unwrap()
            } else {
                eval::roc_auc_ovr(&idx, p).unwrap()
            };
            check(i, "roc auc", auc, &r["roc_auc"]);
        }
    }
    for (j, (t, p)) in regressions.iter().enumerate() {
        let r = &theirs[classes.len() + j];
        check(j, "rmse", eval::rmse(t, p).unwrap(), &r["rmse"]);
        check(j, "mae", eval::mae(t, p).unwrap(), &r["mae"]);
        check(j, "r2", eval::r2(t, p).unwrap(), &r["r2"]);
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared > 100, "{compared}");
}
