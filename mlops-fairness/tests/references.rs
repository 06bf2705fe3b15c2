#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every metric against fairlearn 0.15 and AIF360 0.6 on generated data with several groups,
//! imbalance, instance weights, a group with no positives and an empty intersection cell.
//!
//! Needs a Python with fairlearn and aif360 named by `MLOPS_TEST_PYTHON` (`./scripts/test`
//! creates `.venv-peers` and sets it); without it the test fails and says so.

use std::collections::BTreeMap;
use std::path::Path;

use mlops_fairness::{
    Aggregate, AssessOptions, BinaryOutcomes, Convention, Groups, Method, MetricFrame, Privileged,
    TwoGroupMetrics, assess,
};
use mlops_testkit::rng::SplitMix64;
use serde_json::{Value, json};

struct Case {
    y_true: Vec<i64>,
    y_pred: Vec<i64>,
    weights: Option<Vec<f64>>,
    sensitive: Vec<(&'static str, Vec<String>)>,
    privileged: Option<Vec<&'static str>>,
}

/// `rows` rows: race a/b/c/d at 60/25/10/5 %, sex f/m; race d has no positives and no
/// (d, f) rows (an empty cell); the rates differ by group.
type Generated = (Vec<i64>, Vec<i64>, Vec<f64>, Vec<String>, Vec<String>);

fn generate(seed: u64, rows: usize) -> Generated {
    let mut rng = SplitMix64::new(seed);
    let (mut yt, mut yp, mut w, mut race, mut sex) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rows {
        let u = rng.unit();
        let r = if u < 0.6 {
            "a"
        } else if u < 0.85 {
            "b"
        } else if u < 0.95 {
            "c"
        } else {
            "d"
        };
        let s = if r == "d" || rng.unit() < 0.5 {
            "m"
        } else {
            "f"
        };
        let base = match (r, s) {
            ("a", "m") => 0.5,
            ("a", _) => 0.4,
            ("b", _) => 0.3,
            ("c", _) => 0.55,
            _ => 0.0,
        };
        let truth = rng.unit() < base;
        let hit = if truth { 0.8 } else { 0.15 } + if r == "b" { -0.1 } else { 0.0 };
        let pred = rng.unit() < hit;
        yt.push(i64::from(truth));
        yp.push(i64::from(pred));
        w.push(0.5 + 1.5 * rng.unit());
        race.push(r.to_owned());
        sex.push(s.to_owned());
    }
    (yt, yp, w, race, sex)
}

fn cases() -> Vec<Case> {
    let (yt, yp, w, race, sex) = generate(7, 3000);
    let (yt2, yp2, w2, race2, sex2) = generate(11, 500);
    vec![
        Case {
            y_true: yt.clone(),
            y_pred: yp.clone(),
            weights: None,
            sensitive: vec![("race", race.clone())],
            privileged: Some(vec!["a"]),
        },
        Case {
            y_true: yt.clone(),
            y_pred: yp.clone(),
            weights: Some(w.clone()),
            sensitive: vec![("race", race.clone())],
            privileged: Some(vec!["a"]),
        },
        Case {
            y_true: yt,
            y_pred: yp,
            weights: Some(w),
            sensitive: vec![("race", race), ("sex", sex)],
            privileged: Some(vec!["a", "m"]),
        },
        // The group with no positives is the privileged one: zero divisions on AIF360's side.
        Case {
            y_true: yt2,
            y_pred: yp2,
            weights: Some(w2),
            sensitive: vec![("race", race2), ("sex", sex2)],
            privileged: Some(vec!["d", "m"]),
        },
    ]
}

fn references(cases: &[Case]) -> Vec<Value> {
    let json_cases: Vec<Value> = cases
        .iter()
        .map(|c| {
            let sensitive: serde_json::Map<String, Value> = c
                .sensitive
                .iter()
                .map(|(n, v)| ((*n).to_owned(), json!(v)))
                .collect();
            json!({
                "y_true": c.y_true, "y_pred": c.y_pred, "weights": c.weights,
                "sensitive": sensitive, "privileged": c.privileged,
            })
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/references.py");
    let out = mlops_testkit::python::run_json(&script, &json!(json_cases), "fairlearn and aif360");
    serde_json::from_value(out).unwrap()
}

fn close(what: &str, ours: f64, theirs: &Value) {
    assert!(
        !theirs.is_null() || ours.is_nan(),
        "{what}: ours {ours}, the reference's null"
    );
    match theirs.as_f64() {
        None => assert!(ours.is_nan(), "{what}: ours {ours}, the reference's NaN"),
        Some(t) => assert!(
            (ours - t).abs() <= 1e-12,
            "{what}: ours {ours}, the reference's {t}"
        ),
    }
}

#[test]
fn fairlearn_and_aif360_agree_to_1e_12() {
    let cases = cases();
    let refs = references(&cases);
    assert_eq!(refs.len(), cases.len());
    for (i, (c, r)) in cases.iter().zip(&refs).enumerate() {
        let mut outcomes = BinaryOutcomes::from_labels(&c.y_true, &c.y_pred, 1).unwrap();
        if let Some(w) = &c.weights {
            outcomes = outcomes.with_weights(w.clone()).unwrap();
        }
        let groups = Groups::from_values(&c.sensitive).unwrap();
        let frame = MetricFrame::new(&outcomes, &groups).unwrap();
        // Every reference key the checks below read is there (a mistyped key reads as null).
        let keys = r.as_object().unwrap();
        // 8 fairlearn metrics × 2 methods, by_group, 5 AIF360 metrics.
        assert_eq!(keys.len(), 22, "case {i}: {keys:?}");
        assert!(
            keys.values().filter(|v| v.is_number()).count() >= 18,
            "case {i}"
        );
        for (name, method) in [
            ("between_groups", Method::BetweenGroups),
            ("to_overall", Method::ToOverall),
        ] {
            let at = |k: &str| format!("case {i} {k}.{name}");
            close(
                &at("dpd"),
                frame.demographic_parity_difference(method),
                &r[format!("dpd.{name}")],
            );
            close(
                &at("dpr"),
                frame.demographic_parity_ratio(method),
                &r[format!("dpr.{name}")],
            );
            close(
                &at("eopd"),
                frame.equal_opportunity_difference(method),
                &r[format!("eopd.{name}")],
            );
            close(
                &at("eopr"),
                frame.equal_opportunity_ratio(method),
                &r[format!("eopr.{name}")],
            );
            for (agg_name, agg) in [
                ("worst_case", Aggregate::WorstCase),
                ("mean", Aggregate::Mean),
            ] {
                close(
                    &at(&format!("eod.{agg_name}")),
                    frame.equalized_odds_difference(method, agg),
                    &r[format!("eod.{name}.{agg_name}")],
                );
                close(
                    &at(&format!("eor.{agg_name}")),
                    frame.equalized_odds_ratio(method, agg),
                    &r[format!("eor.{name}.{agg_name}")],
                );
            }
        }
        // by_group: the same groups with the same rates; the empty cell is NaN there.
        let ours: BTreeMap<Vec<String>, _> = frame
            .by_group
            .iter()
            .map(|g| (g.group.values().to_vec(), g.rates))
            .collect();
        let theirs = r["by_group"].as_array().unwrap();
        let mut empty = 0;
        for g in theirs {
            let key: Vec<String> = serde_json::from_value(g["group"].clone()).unwrap();
            let Some(rates) = ours.get(&key) else {
                assert!(g["selection_rate"].is_null(), "case {i}: {key:?} missing");
                assert!(
                    frame
                        .empty_cells
                        .iter()
                        .any(|e| e.values() == key.as_slice()),
                    "case {i}: {key:?} is not reported as an empty cell"
                );
                empty += 1;
                continue;
            };
            let at = |m: &str| format!("case {i} {key:?} {m}");
            close(
                &at("selection_rate"),
                rates.selection_rate,
                &g["selection_rate"],
            );
            close(
                &at("tpr"),
                rates.true_positive_rate,
                &g["true_positive_rate"],
            );
            close(
                &at("fpr"),
                rates.false_positive_rate,
                &g["false_positive_rate"],
            );
            close(
                &at("tnr"),
                rates.true_negative_rate,
                &g["true_negative_rate"],
            );
            close(
                &at("fnr"),
                rates.false_negative_rate,
                &g["false_negative_rate"],
            );
            assert_eq!(
                rates.count as f64,
                g["count"].as_f64().unwrap(),
                "{}",
                at("count")
            );
        }
        assert_eq!(empty, frame.empty_cells.len(), "case {i}");
        assert_eq!(theirs.len(), frame.by_group.len() + empty, "case {i}");

        if let Some(values) = &c.privileged {
            let mut privileged = Privileged::new(c.sensitive[0].0, values[0]);
            for ((column, _), value) in c.sensitive.iter().zip(values).skip(1) {
                privileged = privileged.and(*column, *value);
            }
            let two = TwoGroupMetrics::new(&outcomes, &groups, &privileged).unwrap();
            let at = |m: &str| format!("case {i} aif360.{m}");
            for (name, ours) in [
                (
                    "statistical_parity_difference",
                    two.statistical_parity_difference,
                ),
                ("disparate_impact", two.disparate_impact),
                (
                    "equal_opportunity_difference",
                    two.equal_opportunity_difference,
                ),
                ("average_odds_difference", two.average_odds_difference),
                (
                    "average_abs_odds_difference",
                    two.average_abs_odds_difference,
                ),
            ] {
                close(&at(name), ours, &r[format!("aif360.{name}")]);
            }
            // assess() reports the same numbers under the same names.
            let report = assess(
                &outcomes,
                &groups,
                &AssessOptions {
                    privileged: Some(privileged),
                    bootstrap: None,
                },
            )
            .unwrap();
            close(
                &at("assess.disparate_impact"),
                report
                    .disparity(Convention::Aif360, "disparate_impact")
                    .unwrap()
                    .value,
                &r["aif360.disparate_impact"],
            );
            close(
                &format!("case {i} assess.equalized_odds_difference"),
                report
                    .disparity(Convention::Fairlearn, "equalized_odds_difference")
                    .unwrap()
                    .value,
                &r["eod.between_groups.worst_case"],
            );
        }
    }
}
