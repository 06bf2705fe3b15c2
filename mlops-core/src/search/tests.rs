use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::tracking::{
    Dataset, DatasetInput, LifecycleStage, Metric, Run, RunData, RunInfo, RunInputs, RunStatus,
};

fn run(id: &str, start: i64) -> Run {
    Run {
        info: RunInfo {
            run_id: id.parse().unwrap(),
            run_name: format!("run-{id}"),
            experiment_id: "0".parse().unwrap(),
            user_id: "alice".into(),
            status: RunStatus::Finished,
            start_time: start,
            end_time: Some(start + 10),
            artifact_uri: format!("mem://0/{id}/artifacts"),
            lifecycle_stage: LifecycleStage::Active,
        },
        data: RunData::default(),
        inputs: RunInputs::default(),
    }
}

fn with_metric(mut r: Run, key: &str, value: f64) -> Run {
    r.data.metrics.insert(
        key.parse().unwrap(),
        Metric {
            key: key.parse().unwrap(),
            value,
            timestamp_ms: 0,
            step: 0,
        },
    );
    r
}

fn with_param(mut r: Run, key: &str, value: &str) -> Run {
    r.data.params.insert(key.parse().unwrap(), value.into());
    r
}

fn with_tag(mut r: Run, key: &str, value: &str) -> Run {
    r.data.tags.insert(key.parse().unwrap(), value.into());
    r
}

fn matches(filter: &str, r: &Run) -> bool {
    Filter::parse(filter)
        .unwrap_or_else(|e| panic!("{filter}: {e}"))
        .matches(r)
}

#[test]
fn metric_comparisons_use_the_latest_value() {
    let r = with_metric(run("a", 1), "acc", 0.9);
    for (f, want) in [
        ("metrics.acc > 0.8", true),
        ("metrics.acc >= 0.9", true),
        ("metrics.acc < 0.9", false),
        ("metrics.acc <= 0.9", true),
        ("metrics.acc = 0.9", true),
        ("metrics.acc != 0.9", false),
        ("metric.acc > -1", true),
        ("metrics.acc > 9e-1", false),
        ("metrics.missing != 1", false),
        ("metrics.`acc` = 0.9", true),
        ("metrics.\"acc\" = 0.9", true),
    ] {
        assert_eq!(matches(f, &r), want, "{f}");
    }
}

#[test]
fn params_and_tags_compare_strings() {
    let r = with_tag(
        with_param(run("a", 1), "model", "MLP-2"),
        "mlflow.user",
        "bob",
    );
    for (f, want) in [
        ("params.model = 'MLP-2'", true),
        ("params.model = \"MLP-2\"", true),
        ("param.model != 'x'", true),
        ("parameters.model LIKE 'MLP%'", true),
        ("params.model LIKE 'mlp%'", false),
        ("params.model ILIKE 'mlp%'", true),
        ("params.model like 'MLP-_'", true),
        ("params.absent != 'x'", false),
        ("tags.mlflow.user = 'bob'", true),
        ("tags.`mlflow.user` = 'bob'", true),
        ("tag.\"mlflow.user\" ILIKE 'B%'", true),
    ] {
        assert_eq!(matches(f, &r), want, "{f}");
    }
}

#[test]
fn attributes_with_and_without_prefix() {
    let r = run("abc", 1000);
    for (f, want) in [
        ("attributes.status = 'FINISHED'", true),
        ("status = 'FINISHED'", true),
        ("attr.run_name LIKE 'run-%'", true),
        ("run.user_id = 'alice'", true),
        ("attributes.start_time >= 1000", true),
        ("created > 999", true),
        ("`Run name` = 'run-abc'", true),
        ("attributes.`run name` = 'run-abc'", true),
        ("end_time = 1010", true),
        ("run_id IN ('abc', 'def')", true),
        ("run_id NOT IN ('abc')", false),
        ("attributes.run_id in ('x')", false),
        ("artifact_uri LIKE '%/artifacts'", true),
    ] {
        assert_eq!(matches(f, &r), want, "{f}");
    }
    let mut running = run("r", 5);
    running.info.end_time = None;
    assert!(!matches("end_time > 0", &running));
    assert!(!matches("end_time != 0", &running));
}

#[test]
fn datasets_match_any_input() {
    let mut r = run("a", 1);
    let mut tags = BTreeMap::new();
    tags.insert("mlflow.data.context".to_owned(), "training".to_owned());
    r.inputs.dataset_inputs.push(DatasetInput {
        dataset: Dataset {
            name: "churn".into(),
            digest: "abc123".into(),
            source_type: "mlops-store".into(),
            source: "datasets/churn@1".into(),
            schema: None,
            profile: None,
        },
        tags,
    });
    for (f, want) in [
        ("datasets.name = 'churn'", true),
        ("dataset.digest IN ('x', 'abc123')", true),
        ("datasets.context = 'training'", true),
        ("datasets.name LIKE 'ch%'", true),
        ("datasets.name NOT IN ('churn')", false),
        ("datasets.name = 'other'", false),
    ] {
        assert_eq!(matches(f, &r), want, "{f}");
    }
    assert!(!matches("datasets.name = 'churn'", &run("b", 1)));
}

#[test]
fn clauses_are_anded() {
    let r = with_param(with_metric(run("a", 1), "acc", 0.9), "lr", "0.1");
    assert!(matches("metrics.acc > 0.5 AND params.lr = '0.1'", &r));
    assert!(matches(
        "metrics.acc > 0.5 and params.lr = '0.1' AND status = 'FINISHED'",
        &r
    ));
    assert!(!matches("metrics.acc > 0.5 AND params.lr = '0.2'", &r));
    assert!(Filter::parse("").unwrap().matches(&r));
    assert!(Filter::parse("   ").unwrap().is_empty());
}

#[test]
fn malformed_filters_name_the_offending_token() {
    for (f, needle) in [
        ("metrics.acc > 0.5 OR params.x = 'y'", "'OR'"),
        ("metrics.acc > 'high'", "compares with a number"),
        ("params.lr > '0.1'", "operator > cannot compare params.lr"),
        ("params.lr = 0.1", "compares with a quoted string"),
        ("foo.bar = 'x'", "unknown prefix 'foo'"),
        ("attributes.color = 'red'", "unknown attribute 'color'"),
        ("datasets.size = 'x'", "unknown dataset key 'size'"),
        ("status IN ('a')", "only run_id"),
        ("run_id = ('a')", "a list needs IN"),
        ("run_id IN 'a'", "parenthesised list"),
        ("metrics.acc >", "expected a value"),
        ("metrics.acc 0.5", "expected a comparison"),
        ("metrics.acc > 0.5 AND", "expected a clause after AND"),
        ("metrics.acc > 0.5 metrics.b > 1", "expected AND"),
        ("params.x = 'open", "unterminated"),
        ("start_time > 1.5", "whole numbers"),
        ("run_id IN ('a' 'b')", "expected ',' or ')'"),
        ("metrics.acc NOT 5", "expected IN after NOT"),
        ("metrics.a.b.c >= 1; DROP", "unexpected ';'"),
    ] {
        let err = Filter::parse(f).unwrap_err();
        assert!(err.is_invalid_argument(), "{f}: {err}");
        assert!(
            err.to_string().contains(needle),
            "{f}: {err} (wanted {needle})"
        );
    }
}

#[test]
fn order_by_follows_mlflow() {
    let runs = vec![
        with_metric(run("a", 1), "acc", 0.5),
        with_metric(run("b", 2), "acc", f64::NAN),
        run("c", 3),
        with_metric(run("d", 4), "acc", 0.9),
        with_metric(run("e", 4), "acc", 0.5),
    ];
    let order = |items: &[&str]| {
        let page = select(
            SearchTarget::Runs,
            runs.clone(),
            None,
            &items.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            run_tiebreak,
            100,
            None,
        )
        .unwrap();
        page.items
            .iter()
            .map(|r| r.info.run_id.to_string())
            .collect::<Vec<_>>()
            .join("")
    };
    // Natural order: start_time DESC, then run_id ASC.
    assert_eq!(order(&[]), "decba");
    // Values first, then NaN, then missing — in both directions.
    assert_eq!(order(&["metrics.acc"]), "eadbc");
    assert_eq!(order(&["metrics.acc DESC"]), "deabc");
    assert_eq!(
        order(&["metrics.acc desc", "attributes.start_time ASC"]),
        "daebc"
    );
    assert_eq!(order(&["run_id DESC"]), "edcba");
    assert_eq!(order(&["metrics.`acc` ASC"]), "eadbc");
    for bad in [
        "metrics.acc UP",
        "datasets.name",
        "colour",
        "metrics.acc ASC extra",
        "",
    ] {
        assert!(OrderBy::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn registry_targets_have_their_own_keys() {
    assert!(Filter::parse_for(SearchTarget::RegisteredModels, "name LIKE 'churn%'").is_ok());
    assert!(Filter::parse_for(SearchTarget::RegisteredModels, "tags.team = 'x'").is_ok());
    assert!(Filter::parse_for(SearchTarget::RegisteredModels, "metrics.a > 1").is_err());
    assert!(Filter::parse_for(SearchTarget::ModelVersions, "run_id IN ('a')").is_ok());
    assert!(Filter::parse_for(SearchTarget::ModelVersions, "version_number > 2").is_ok());
    assert!(Filter::parse_for(SearchTarget::Experiments, "creation_time > 5").is_ok());
    assert!(Filter::parse_for(SearchTarget::Experiments, "status = 'x'").is_err());
    let logged = |f| Filter::parse_for(SearchTarget::LoggedModels, f);
    assert!(logged("source_run_id = 'abc' AND status = 'READY'").is_ok());
    assert!(logged("params.alpha = '0.5' AND tags.team = 'x'").is_ok());
    assert!(logged("creation_timestamp > 5").is_ok());
    assert!(logged("metrics.acc > 0.9").is_err());
    assert!(logged("run_id = 'abc'").is_err());
    assert!(logged("tags.team IS NULL").is_err());
}

#[test]
fn pagination_walks_every_match_once() {
    let runs: Vec<Run> = (0..25).map(|i| run(&format!("r{i:02}"), i)).collect();
    let mut token = None;
    let mut seen = Vec::new();
    loop {
        let page = select(
            SearchTarget::Runs,
            runs.clone(),
            Some("start_time >= 5"),
            &[],
            run_tiebreak,
            7,
            token.as_deref(),
        )
        .unwrap();
        seen.extend(page.items.into_iter().map(|r| r.info.start_time));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, (5..25).rev().collect::<Vec<_>>());
    let bad = select(
        SearchTarget::Runs,
        runs,
        None,
        &[],
        run_tiebreak,
        7,
        Some("junk"),
    );
    assert!(bad.unwrap_err().is_invalid_argument());
}

const ALPHABET: &str = "metrics.params.tags.attributes.datasets.run_idstatusstart_timeANDORNOTINLIKEILIKE=!<>'\"`(),.- 0123456789eE%_\\;";

fn token_soup() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "metrics.acc",
        "params.lr",
        "tags.`a b`",
        "attributes.status",
        "run_id",
        "start_time",
        "datasets.name",
        "AND",
        "and",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ILIKE",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "<>",
        "'x'",
        "\"y\"",
        "(",
        ")",
        ",",
        "0.5",
        "-1e3",
        "'",
        "\"",
        "`",
        ".",
        "foo",
    ]);
    prop::collection::vec(words, 0..12).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in "\\PC{0,80}") {
        let _ = Filter::parse(&s);
        let _ = OrderBy::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_filter_like_text(
        s in prop::collection::vec(prop::sample::select(ALPHABET.chars().collect::<Vec<_>>()), 0..60)
    ) {
        let s: String = s.into_iter().collect();
        let _ = Filter::parse(&s);
        let _ = OrderBy::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_token_soup(s in token_soup()) {
        if let Ok(f) = Filter::parse(&s) {
            // Whatever parses must also evaluate without panicking.
            let _ = f.matches(&with_metric(run("a", 1), "acc", 0.5));
        }
    }
}

#[test]
fn is_null_tests_whether_a_tag_or_param_is_set() {
    let r = with_param(with_tag(run("a", 1), "team", ""), "lr", "0.1");
    for (f, want) in [
        ("tags.team IS NULL", false),
        ("tags.team IS NOT NULL", true),
        ("tags.owner IS NULL", true),
        ("tags.owner IS NOT NULL", false),
        ("tags.`team` is not null", true),
        ("params.lr IS NOT NULL", true),
        ("params.epochs IS NULL", true),
        ("param.epochs is null AND params.lr = '0.1'", true),
        ("tags.owner IS NULL AND tags.team IS NULL", false),
    ] {
        assert_eq!(matches(f, &r), want, "{f}");
    }
    let parsed = Filter::parse("tags.owner IS NOT NULL").unwrap();
    assert_eq!(parsed.clauses()[0].op, Op::IsNotNull);
    assert_eq!(parsed.clauses()[0].value, Literal::Null);
    // Experiments test tags only.
    assert!(Filter::parse_for(SearchTarget::Experiments, "tags.x IS NULL").is_ok());
}

#[test]
fn is_null_elsewhere_is_refused_as_mlflow_refuses_it() {
    for (target, f, needle) in [
        (
            SearchTarget::Runs,
            "metrics.acc IS NULL",
            "only supported for tags and params, not for metrics.acc",
        ),
        (
            SearchTarget::Runs,
            "attributes.run_name IS NOT NULL",
            "only supported for tags and params",
        ),
        (
            SearchTarget::Runs,
            "status IS NULL",
            "only supported for tags and params",
        ),
        (
            SearchTarget::Runs,
            "datasets.name IS NULL",
            "only supported for tags and params",
        ),
        (
            SearchTarget::Experiments,
            "name IS NULL",
            "only supported for tags, not for attributes.name",
        ),
        (
            SearchTarget::RegisteredModels,
            "tags.x IS NULL",
            "not supported when searching RegisteredModels",
        ),
        (
            SearchTarget::ModelVersions,
            "tags.x IS NOT NULL",
            "not supported when searching ModelVersions",
        ),
        (
            SearchTarget::Runs,
            "tags.x IS 'a'",
            "expected NULL or NOT NULL after IS",
        ),
        (
            SearchTarget::Runs,
            "tags.x IS NOT 'a'",
            "expected NULL after IS NOT",
        ),
        (
            SearchTarget::Runs,
            "tags.x IS",
            "expected NULL or NOT NULL after IS",
        ),
        (SearchTarget::Runs, "tags.x IS NULL 'a'", "expected AND"),
        (SearchTarget::Runs, "tags.x = NULL", "expected a value"),
    ] {
        let err = Filter::parse_for(target, f).unwrap_err();
        assert!(err.is_invalid_argument(), "{f}: {err}");
        assert!(
            err.to_string().contains(needle),
            "{f}: {err} (wanted {needle})"
        );
    }
}
