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

/// The subcommand names listed under "Commands:" (or "… commands:" groups) in a help text.
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut listing = false;
    for line in help.lines() {
        if !line.starts_with(' ') {
            listing = line.starts_with("Commands:") || line.ends_with("commands:");
            continue;
        }
        if listing && let Some(c) = line.split_whitespace().next().filter(|c| *c != "help") {
            out.push(c.to_owned());
        }
    }
    out
}

/// Walks the whole command tree from `mlops --help` down (no hand-kept list to fall behind):
/// every page answers, every leaf command has an example, and every flag an example uses is one
/// the command has.
#[test]
fn every_command_has_help_with_an_example() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut visited: Vec<String> = Vec::new();
    let mut missing_examples = Vec::new();
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = mlops(&args);
        let help = stdout(&o);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(help.contains("Usage: mlops"), "{args:?}: {help}");
        visited.push(path.join(" "));
        let subs = subcommands(&help);
        if subs.is_empty() && !path.is_empty() {
            missing_examples.extend((!help.contains("Example")).then(|| path.join(" ")));
            let example: String = help
                .lines()
                .skip_while(|l| !l.trim_start().starts_with("Example"))
                .take_while(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            for flag in example.split_whitespace().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    help.lines()
                        .skip_while(|l| !l.starts_with("Options:"))
                        .any(|l| l.trim_start().split([' ', ',']).any(|w| w == flag)),
                    "{path:?}: the example uses {flag}, which the command does not have"
                );
            }
        }
        for sub in subs {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
    }
    assert!(visited.len() > 40, "only {} help pages", visited.len());
    // The walk reaches the commands a hand-kept list once missed.
    for cmd in [
        "train",
        "pipeline run",
        "pipeline export",
        "pipeline steps",
        "cost",
    ] {
        assert!(
            visited.iter().any(|v| v == cmd),
            "{cmd} not reached: {visited:?}"
        );
    }
    assert!(
        missing_examples.is_empty(),
        "commands without an example: {missing_examples:?}"
    );
    let top = stdout(&mlops(&["--help"]));
    for global in [
        "--store",
        "MLOPS_STORE",
        "--store-option",
        "--secrets",
        "Exit codes",
    ] {
        assert!(top.contains(global), "{global} missing from --help: {top}");
    }
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

/// Output piped into a reader that has gone (`mlops … | head`) ends the command quietly with
/// SIGPIPE's status, not a panic.
#[test]
fn a_closed_stdout_exits_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlops"))
        .args(["pipeline", "steps"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mlops binary runs");
    // Close the reading end before the command prints: its first write fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("it ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
