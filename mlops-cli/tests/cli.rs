//! The `mlops` binary: every `--help` works, commands print what they parsed, bad input exits 2.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::{Command, Output};

fn mlops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlops"))
        .args(args)
        .output()
        .expect("the mlops binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_help_works() {
    for args in [
        vec!["--help"],
        vec!["datasets", "--help"],
        vec!["datasets", "put", "--help"],
        vec!["datasets", "list", "--help"],
        vec!["datasets", "log", "--help"],
        vec!["datasets", "show", "--help"],
        vec!["datasets", "get", "--help"],
        vec!["datasets", "diff", "--help"],
        vec!["experiments", "--help"],
        vec!["experiments", "list", "--help"],
        vec!["runs", "--help"],
        vec!["runs", "list", "--help"],
        vec!["runs", "show", "--help"],
        vec!["runs", "compare", "--help"],
        vec!["models", "--help"],
        vec!["models", "list", "--help"],
        vec!["models", "show", "--help"],
        vec!["models", "alias", "--help"],
        vec!["export", "--help"],
        vec!["export", "mlflow", "--help"],
        vec!["import", "--help"],
        vec!["import", "mlflow", "--help"],
        vec!["store", "--help"],
        vec!["store", "verify", "--help"],
        vec!["store", "gc", "--help"],
        vec!["serve", "--help"],
        vec!["models", "kserve", "--help"],
        vec!["drift", "--help"],
        vec!["quality", "--help"],
        vec!["policy", "--help"],
        vec!["policy", "eval", "--help"],
        vec!["policy", "test", "--help"],
        vec!["policy", "verify-log", "--help"],
        vec!["policy", "log", "--help"],
        vec!["policy", "library", "--help"],
        vec!["filter", "--help"],
        vec!["filter", "check", "--help"],
        vec!["uri", "--help"],
        vec!["uri", "parse", "--help"],
    ] {
        let o = mlops(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("Usage: mlops"),
            "{args:?}: {}",
            stdout(&o)
        );
    }
    let top = stdout(&mlops(&["--help"]));
    for cmd in [
        "datasets",
        "store",
        "filter",
        "uri",
        "--store",
        "MLOPS_STORE",
    ] {
        assert!(top.contains(cmd), "{cmd} missing from --help: {top}");
    }
    let check = stdout(&mlops(&["filter", "check", "--help"]));
    assert!(check.contains("Example: mlops filter check"), "{check}");
    assert!(mlops(&["--version"]).status.success());
}

#[test]
fn filter_check_prints_clauses_and_order() {
    let o = mlops(&[
        "filter",
        "check",
        "metrics.f1 >= 0.8 AND params.model = 'mlp'",
        "--order-by",
        "metrics.f1 DESC",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("1. metrics.f1 >= 0.8"), "{out}");
    assert!(out.contains("2. params.model = \"mlp\""), "{out}");
    assert!(out.contains("order by metrics.f1 DESC"), "{out}");

    let o = mlops(&[
        "filter",
        "check",
        "--json",
        "tags.team = 'risk'",
        "--target",
        "models",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(json["clauses"][0]["entity"], "tags");
    assert_eq!(json["clauses"][0]["value"], "risk");
}

#[test]
fn bad_filters_exit_2_with_the_reason() {
    let o = mlops(&["filter", "check", "metrics.f1 > 0.5 OR params.a = 'b'"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("only AND may join clauses"),
        "{}",
        stderr(&o)
    );
    let o = mlops(&["filter", "check", "metrics.x > 1", "--target", "models"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn uri_parse_names_the_parts() {
    let o = mlops(&["uri", "parse", "--json", "models:/churn/3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(json["kind"], "version");
    assert_eq!(json["version"], 3);
    let o = mlops(&["uri", "parse", "s3://bucket/model"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown scheme"), "{}", stderr(&o));
}
