#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! RegoPolicyEngine: decisions, syntax versions, errors, threads.

use std::sync::Arc;

use mlops_core::policy::{PolicyEngine, PolicyEngineExt, PolicyQuery};
use mlops_policy::RegoPolicyEngine;
use serde_json::json;

/// The seed's example, verbatim (Rego v0).
const SEED_V0: &str = r#"package ml.deployment
deny[msg] { input.model.approved == false; msg = "Model lacks approval metadata" }"#;

const APPROVAL_V1: &str = r#"package ml.deployment

default allow := false

allow if {
    input.model.approved
    count(deny) == 0
}

deny contains msg if {
    not input.model.approved
    msg := sprintf("model %s lacks approval", [input.model.name])
}

deny contains msg if {
    input.model.metrics.f1 < 0.8
    msg := sprintf("f1 %v is below 0.8", [input.model.metrics.f1])
}
"#;

#[test]
fn the_seed_v0_example_works_verbatim_with_the_v0_option() {
    let engine = RegoPolicyEngine::builder()
        .rego_v0(true)
        .policy("seed.rego", SEED_V0)
        .unwrap()
        .build()
        .unwrap();
    let denied = engine
        .evaluate(&PolicyQuery::new(
            "data.ml.deployment",
            json!({"model": {"approved": false}}),
        ))
        .unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.reasons, vec!["Model lacks approval metadata"]);
    let allowed = engine
        .evaluate(&PolicyQuery::new(
            "ml/deployment",
            json!({"model": {"approved": true}}),
        ))
        .unwrap();
    assert!(allowed.allowed, "{allowed:?}");
    assert!(allowed.reasons.is_empty());
    // The rule path decides by its set of messages.
    let rule = engine
        .evaluate(&PolicyQuery::new(
            "data.ml.deployment.deny",
            json!({"model": {"approved": false}}),
        ))
        .unwrap();
    assert!(!rule.allowed);
    assert_eq!(rule.result, json!(["Model lacks approval metadata"]));
}

#[test]
fn v0_syntax_without_the_option_is_a_located_error() {
    let err = RegoPolicyEngine::builder()
        .policy("seed.rego", SEED_V0)
        .unwrap_err();
    assert!(err.is_invalid_argument(), "{err}");
    let text = err.to_string();
    assert!(text.contains("seed.rego:2:"), "{text}");
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.rego");
    std::fs::write(&path, "package p\n\nallow if {\n    input.x ==\n}\n").unwrap();
    let err = RegoPolicyEngine::from_path(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(err.is_invalid_argument());
    assert!(text.contains("broken.rego:"), "{text}");
    let after = text.split("broken.rego:").nth(1).unwrap();
    let mut nums = after.split(':').take(2).map(|s| s.trim().parse::<u32>());
    assert!(matches!(nums.next(), Some(Ok(4 | 5))), "{text}");
    assert!(matches!(nums.next(), Some(Ok(_))), "{text}");
}

#[test]
fn v1_packages_decide_by_allow_and_every_deny_message() {
    let engine = RegoPolicyEngine::builder()
        .policy("approval.rego", APPROVAL_V1)
        .unwrap()
        .build()
        .unwrap();
    let q = |input| PolicyQuery::new("data.ml.deployment", input);
    let d = engine
        .evaluate(&q(
            json!({"model": {"name": "m", "approved": false, "metrics": {"f1": 0.5}}}),
        ))
        .unwrap();
    assert!(!d.allowed);
    let mut reasons = d.reasons.clone();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            "data.ml.deployment.allow is not true",
            "f1 0.5 is below 0.8",
            "model m lacks approval"
        ]
    );
    assert_eq!(d.result["allow"], json!(false));
    assert!(d.revision.is_some());
    let ok = engine
        .check(&q(
            json!({"model": {"name": "m", "approved": true, "metrics": {"f1": 0.9}}}),
        ))
        .unwrap();
    assert!(ok.allowed);
    let err = engine
        .check(&q(
            json!({"model": {"name": "m", "approved": true, "metrics": {"f1": 0.1}}}),
        ))
        .unwrap_err();
    assert!(err.is_policy_denied());
    assert!(err.to_string().contains("f1 0.1 is below 0.8"), "{err}");
}

#[test]
fn unknown_paths_and_non_decisions_are_invalid_arguments() {
    let engine = RegoPolicyEngine::builder()
        .policy("p.rego", "package p\nx := 3\nallow if input.ok\n")
        .unwrap()
        .build()
        .unwrap();
    for path in ["data.nope", "data.p.nope.deeper", "data.nope.allow"] {
        let err = engine
            .evaluate(&PolicyQuery::new(path, json!({})))
            .unwrap_err();
        assert!(err.is_invalid_argument(), "{path}: {err}");
    }
    let err = engine
        .evaluate(&PolicyQuery::new("data.p.x", json!({})))
        .unwrap_err();
    assert!(err.to_string().contains("is a number"), "{err}");
    // Undefined allow is a denial, as in OPA.
    let d = engine
        .evaluate(&PolicyQuery::new("data.p", json!({})))
        .unwrap();
    assert!(!d.allowed);
    let d = engine
        .evaluate(&PolicyQuery::new("data.p.allow", json!({"ok": true})))
        .unwrap();
    assert!(d.allowed);
}

#[test]
fn data_documents_merge_and_conflicts_are_errors() {
    let engine = RegoPolicyEngine::builder()
        .policy(
            "t.rego",
            "package t\ndeny contains m if { input.f1 < data.thresholds.f1; m := \"low f1\" }\n",
        )
        .unwrap()
        .data(json!({"thresholds": {"f1": 0.9}}))
        .unwrap()
        .build()
        .unwrap();
    assert!(
        !engine
            .evaluate(&PolicyQuery::new("t", json!({"f1": 0.85})))
            .unwrap()
            .allowed
    );
    assert!(
        engine
            .evaluate(&PolicyQuery::new("t", json!({"f1": 0.95})))
            .unwrap()
            .allowed
    );
    let err = RegoPolicyEngine::builder()
        .data(json!({"a": {"b": 1}}))
        .unwrap()
        .data(json!({"a": {"b": 2}}))
        .unwrap_err();
    assert!(err.is_invalid_argument());
    assert!(
        RegoPolicyEngine::builder()
            .data(json!([1]))
            .unwrap_err()
            .is_invalid_argument()
    );
}

#[test]
fn revision_is_a_digest_of_what_was_loaded() {
    let a = RegoPolicyEngine::builder()
        .policy("a.rego", APPROVAL_V1)
        .unwrap()
        .build()
        .unwrap();
    let b = RegoPolicyEngine::builder()
        .policy("a.rego", APPROVAL_V1)
        .unwrap()
        .build()
        .unwrap();
    let c = RegoPolicyEngine::builder()
        .policy("a.rego", APPROVAL_V1.replace("0.8", "0.7"))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(a.revision(), b.revision());
    assert_ne!(a.revision(), c.revision());
    let named = RegoPolicyEngine::builder()
        .policy("a.rego", APPROVAL_V1)
        .unwrap()
        .revision("v42")
        .build()
        .unwrap();
    assert_eq!(named.revision(), "v42");
}

#[test]
fn many_threads_share_one_engine_and_agree() {
    let engine = Arc::new(
        RegoPolicyEngine::builder()
            .policy("approval.rego", APPROVAL_V1)
            .unwrap()
            .build()
            .unwrap(),
    );
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..200 {
                    let f1 = f64::from((t * 200 + i) % 100) / 100.0;
                    let approved = i % 3 != 0;
                    let d = engine
                        .evaluate(&PolicyQuery::new(
                            "ml.deployment",
                            json!({"model": {"name": "m", "approved": approved, "metrics": {"f1": f1}}}),
                        ))
                        .unwrap();
                    assert_eq!(d.allowed, approved && f1 >= 0.8, "t{t} i{i} f1={f1}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn rego_test_rules_run_like_opa_test() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("approval.rego"), APPROVAL_V1).unwrap();
    std::fs::write(
        dir.path().join("approval_test.rego"),
        r#"package ml.deployment_test

import data.ml.deployment

test_unapproved_is_denied if {
    not deployment.allow with input as {"model": {"name": "m", "approved": false}}
}

test_good_model_is_allowed if {
    deployment.allow with input as {"model": {"name": "m", "approved": true, "metrics": {"f1": 0.9}}}
}

test_this_one_fails if {
    deployment.allow with input as {"model": {"name": "m", "approved": false}}
}
"#,
    )
    .unwrap();
    let engine = RegoPolicyEngine::from_path(dir.path()).unwrap();
    let results = engine.run_tests().unwrap();
    let summary: Vec<(String, bool)> = results.iter().map(|r| (r.name.clone(), r.passed)).collect();
    assert_eq!(
        summary,
        vec![
            ("test_unapproved_is_denied".to_string(), true),
            ("test_good_model_is_allowed".to_string(), true),
            ("test_this_one_fails".to_string(), false),
        ]
    );
    assert_eq!(results[2].failure.as_deref(), Some("undefined"));
}

/// A recursive function would overflow the evaluating thread's stack and abort the process
/// (`policy eval`, `policy test`, a server's deploy gate): it is refused when the engine is
/// built, naming the function and where it is. So are rules that depend on each other.
#[test]
fn recursion_is_refused_at_load() {
    for (label, text, needle) in [
        (
            "f.rego",
            "package rec\n\nf(x) := y if {\n\ty := f(x)\n}\n\nallow if { f(1) == 1 }\n",
            "f.rego:3:1: recursion: data.rec.f calls itself",
        ),
        (
            "g.rego",
            "package rec\n\neven(n) if { n == 0 }\neven(n) if { odd(n - 1) }\nodd(n) if { even(n - 1) }\n",
            "data.rec.even depends on itself through data.rec.even -> data.rec.odd -> data.rec.even",
        ),
        (
            "m.rego",
            "package mut\n\na if { b }\nb if { a }\nallow if { a }\n",
            "recursion: data.mut.a depends on itself",
        ),
    ] {
        let err = RegoPolicyEngine::builder()
            .policy(label, text)
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.is_invalid_argument(), "{label}: {err}");
        assert!(err.to_string().contains(needle), "{label}: {err}");
    }
    // Across packages, through an import alias.
    let err = RegoPolicyEngine::builder()
        .policy("a.rego", "package a\nimport data.b\nf(x) := b.g(x)\n")
        .unwrap()
        .policy("b.rego", "package b\nimport data.a\ng(x) := a.f(x)\n")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("recursion: data.a.f"), "{err}");

    // Names that only look like rules are not references to them: a local variable, a
    // function argument, an `every` variable, another package's rule of the same name.
    let fine = r#"package ok

x := 1

double(x) := y if { y := x * 2 }

allow if {
    x := 3
    double(x) == 6
    every x in [1, 2] { x > 0 }
}

allow if { data.other.allow }
"#;
    let engine = RegoPolicyEngine::builder()
        .policy("ok.rego", fine)
        .unwrap()
        .policy("other.rego", "package other\nallow := true\n")
        .unwrap()
        .build()
        .unwrap();
    assert!(
        engine
            .evaluate(&PolicyQuery::new("data.ok", json!({})))
            .unwrap()
            .allowed
    );
    // The shipped library, which references rules across packages, loads.
    RegoPolicyEngine::builder()
        .library()
        .unwrap()
        .build()
        .unwrap();
}

/// An evaluation that would run (and grow) without end stops at the time limit with a typed
/// error, on the bytecode VM and on the interpreter alike.
#[test]
fn runaway_evaluation_stops_at_the_time_limit() {
    let runaway = r#"package heavy

ping := true

big := [x | some x in numbers.range(1, 100000)]

allow if {
    pairs := [[a, b] | some a in big; some b in big]
    count(pairs) > 0
}
"#;
    for interpreter_only in [false, true] {
        let mut builder = RegoPolicyEngine::builder()
            .time_limit(std::time::Duration::from_millis(300))
            .policy("heavy.rego", runaway)
            .unwrap();
        if interpreter_only {
            builder = builder.interpreter_only();
        }
        let engine = builder.build().unwrap();
        let started = std::time::Instant::now();
        let err = engine
            .evaluate(&PolicyQuery::new("data.heavy", json!({})))
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(
            err.to_string()
                .contains("policy evaluation of data.heavy.allow"),
            "{err}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "stopped after {:?}",
            started.elapsed()
        );
        // The engine keeps answering other questions.
        assert_eq!(
            engine.eval_value("data.heavy.ping", &json!({})).unwrap(),
            json!(true)
        );
    }
    assert_eq!(
        mlops_policy::DEFAULT_TIME_LIMIT,
        std::time::Duration::from_secs(1)
    );
}
