#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The shipped policy library, against the data-driven cases in `policies/tests/cases.json`
//! (policy path, data, input, expected decision and reasons).

use mlops_core::policy::{PolicyEngine, PolicyQuery};
use mlops_policy::RegoPolicyEngine;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    path: String,
    input: serde_json::Value,
    allowed: bool,
    /// Each must be a substring of one reason; the number of reasons must match when allowed.
    reasons: Vec<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

#[test]
fn every_library_case_decides_as_expected() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/tests/cases.json"
    ))
    .unwrap();
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 30);
    for compiled in [true, false] {
        run_cases(&cases, compiled);
    }
}

fn builder(compiled: bool) -> mlops_policy::RegoPolicyBuilder {
    let b = RegoPolicyEngine::builder().library().unwrap();
    if compiled { b } else { b.interpreter_only() }
}

fn run_cases(cases: &[Case], compiled: bool) {
    let plain = builder(compiled).build().unwrap();
    if compiled {
        // Every decision rule of the library runs on the bytecode VM.
        assert_eq!(
            plain.compiled_rules(),
            [
                "approval",
                "datasets",
                "drift",
                "fairness",
                "governance",
                "lineage",
                "metrics"
            ]
            .map(|p| format!("data.mlops.{p}.deny"))
        );
    } else {
        assert!(plain.compiled_rules().is_empty());
    }
    for case in cases {
        let with_data;
        let engine = match &case.data {
            Some(data) => {
                with_data = builder(compiled)
                    .data(data.clone())
                    .unwrap()
                    .build()
                    .unwrap();
                &with_data
            }
            None => &plain,
        };
        let d = engine
            .evaluate(&PolicyQuery::new(&case.path, case.input.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            d.allowed, case.allowed,
            "{} (compiled: {compiled}): {:?}",
            case.name, d.reasons
        );
        if case.allowed {
            assert!(d.reasons.is_empty(), "{}: {:?}", case.name, d.reasons);
        } else {
            assert!(!d.reasons.is_empty(), "{}", case.name);
        }
        for want in &case.reasons {
            assert!(
                d.reasons.iter().any(|r| r.contains(want.as_str())),
                "{}: no reason contains {want:?}: {:?}",
                case.name,
                d.reasons
            );
        }
    }
}

#[test]
fn the_library_is_also_loadable_from_its_folder() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/mlops");
    let engine = RegoPolicyEngine::from_path(dir).unwrap();
    assert!(
        engine
            .packages()
            .contains(&"data.mlops.governance".to_string())
    );
    assert_eq!(engine.packages().len(), 9);
}
