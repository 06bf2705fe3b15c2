#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mlops policy`: eval exit codes on the seed's v0 example, tests, the log and verify-log on a
//! tampered log.

mod common;
use common::{mlops, text};

const SEED: &str = "package ml.deployment\ndeny[msg] { input.model.approved == false; msg = \"Model lacks approval metadata\" }\n";

#[test]
fn eval_answers_with_exit_codes_and_logs_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("seed.rego"), SEED).unwrap();
    std::fs::write(d.join("bad.json"), r#"{"model": {"approved": false}}"#).unwrap();
    std::fs::write(d.join("good.json"), r#"{"model": {"approved": true}}"#).unwrap();
    let q = [
        "--query",
        "data.ml.deployment.deny",
        "--rego-v0",
        "--log",
        "--mask",
        "/input/model",
    ];
    let denied = mlops(
        d,
        &[
            &[
                "policy",
                "eval",
                "--policy",
                "seed.rego",
                "--input",
                "bad.json",
            ][..],
            &q,
        ]
        .concat(),
    );
    assert_eq!(denied.status.code(), Some(1), "{}", text(&denied));
    let v: serde_json::Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(v["reasons"][0], "Model lacks approval metadata");
    let allowed = mlops(
        d,
        &[
            &[
                "policy",
                "eval",
                "--policy",
                "seed.rego",
                "--input",
                "good.json",
            ][..],
            &q,
        ]
        .concat(),
    );
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));

    // Without --rego-v0 the v0 policy is a located syntax error with a hint: exit 2.
    let err = mlops(
        d,
        &[
            "policy",
            "eval",
            "--policy",
            "seed.rego",
            "--input",
            "bad.json",
            "--query",
            "ml.deployment",
        ],
    );
    assert_eq!(err.status.code(), Some(2));
    assert!(text(&err).contains("seed.rego:2:"), "{}", text(&err));
    assert!(text(&err).contains("--rego-v0"), "{}", text(&err));
    // Missing policy, bad JSON input, unknown path: exit 2.
    for args in [
        &[
            "policy",
            "eval",
            "--policy",
            "nope.rego",
            "--input",
            "bad.json",
            "--query",
            "x",
        ][..],
        &[
            "policy",
            "eval",
            "--policy",
            "seed.rego",
            "--rego-v0",
            "--input",
            "seed.rego",
            "--query",
            "ml.deployment",
        ][..],
        &[
            "policy",
            "eval",
            "--policy",
            "seed.rego",
            "--rego-v0",
            "--input",
            "bad.json",
            "--query",
            "data.other",
        ][..],
    ] {
        let o = mlops(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }

    let log = mlops(d, &["policy", "log"]);
    assert!(log.status.success());
    let shown = text(&log);
    assert!(
        shown.contains("deny ") && shown.contains("allow"),
        "{shown}"
    );
    assert!(shown.contains("Model lacks approval metadata"), "{shown}");
    let ok = mlops(d, &["policy", "verify-log"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("ok: 2 entries"), "{}", text(&ok));

    // Point segment 2 at segment 1's blob: the chain breaks at segment 2, line 1.
    let refs = d.join("mlops-data/refs/policy/decisions/.v");
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(refs.join(format!("{:020}.json", 1))).unwrap())
            .unwrap();
    let second_path = refs.join(format!("{:020}.json", 2));
    let mut second: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&second_path).unwrap()).unwrap();
    second["target"] = first["target"].clone();
    std::fs::write(&second_path, serde_json::to_vec(&second).unwrap()).unwrap();
    let bad = mlops(d, &["policy", "verify-log"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        text(&bad).contains("bad entry: segment 2 line 1 (seq 0"),
        "{}",
        text(&bad)
    );
    let json = mlops(d, &["policy", "verify-log", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["first_bad"]["segment"], 2);
    assert_eq!(report["verified"], 1);
}

#[test]
fn test_runs_rego_tests_and_library_writes_the_shipped_policies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lib = mlops(d, &["policy", "library", "--out", "lib"]);
    assert!(lib.status.success(), "{}", text(&lib));
    assert!(d.join("lib/mlops/approval.rego").is_file());
    std::fs::write(
        d.join("lib/approval_test.rego"),
        r#"package mlops.approval_test

import data.mlops.approval

test_unapproved_champion_is_denied if {
    count(approval.deny) == 1 with input as {"action": "set_alias", "alias": "champion", "model": {"name": "m", "version": 1, "approved": false}}
}

test_approved_champion_is_allowed if {
    count(approval.deny) == 0 with input as {"action": "set_alias", "alias": "champion", "model": {"name": "m", "version": 1, "approved": true}}
}
"#,
    )
    .unwrap();
    let ok = mlops(d, &["policy", "test", "lib"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        text(&ok).contains("ok: 2 passed, 0 failed"),
        "{}",
        text(&ok)
    );
    std::fs::write(
        d.join("lib/failing_test.rego"),
        "package mlops.failing_test\n\ntest_wrong if { 1 == 2 }\n",
    )
    .unwrap();
    let failed = mlops(d, &["policy", "test", "lib"]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(
        text(&failed).contains("FAIL data.mlops.failing_test.test_wrong"),
        "{}",
        text(&failed)
    );
    let none = mlops(d, &["policy", "test", "lib/mlops"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
}
