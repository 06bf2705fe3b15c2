//! The search grammar of mlops-core against MLflow's own parser and evaluator
//! (`SearchUtils.filter`, run by `MLOPS_TEST_PYTHON`): the same filters over the same runs
//! select the same runs, and what MLflow refuses we refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use mlops_core::search::Filter;
use mlops_core::tracking::{LifecycleStage, Metric, Run, RunData, RunInfo, RunInputs, RunStatus};
use serde_json::{Value, json};

fn runs() -> Value {
    json!([
        {"id": "a", "tags": {"team": "fraud"}, "params": {"lr": "0.1"}, "metrics": {"acc": 0.9}},
        {"id": "b", "tags": {"team": ""}, "params": {}, "metrics": {"acc": 0.5}},
        {"id": "c", "tags": {}, "params": {"lr": "0.2", "epochs": "3"}, "metrics": {}},
    ])
}

fn core_run(i: usize, r: &Value) -> Run {
    let id = r["id"].as_str().unwrap();
    let map = |k: &str| -> Vec<(String, String)> {
        r[k].as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };
    let mut data = RunData::default();
    for (k, v) in map("tags") {
        data.tags.insert(k.parse().unwrap(), v);
    }
    for (k, v) in map("params") {
        data.params.insert(k.parse().unwrap(), v);
    }
    for (k, v) in r["metrics"].as_object().unwrap() {
        let key: mlops_core::MetricKey = k.parse().unwrap();
        data.metrics
            .insert(key.clone(), Metric::new(key, v.as_f64().unwrap(), 0));
    }
    Run {
        info: RunInfo {
            run_id: id.parse().unwrap(),
            run_name: format!("run-{id}"),
            experiment_id: "0".parse().unwrap(),
            user_id: "alice".into(),
            status: RunStatus::Finished,
            start_time: i as i64,
            end_time: Some(i as i64 + 1),
            artifact_uri: String::new(),
            lifecycle_stage: LifecycleStage::Active,
        },
        data,
        inputs: RunInputs::default(),
    }
}

#[test]
fn our_filters_select_what_mlflows_select_and_refuse_what_it_refuses() {
    let filters = [
        "tags.team IS NULL",
        "tags.team IS NOT NULL",
        "tags.owner IS NULL",
        "tags.`team` is not null",
        "params.lr IS NULL",
        "params.lr IS NOT NULL",
        "param.epochs IS NOT NULL AND params.lr = '0.2'",
        "tags.team IS NOT NULL AND metrics.acc > 0.6",
        "tags.team != 'fraud'",
        "tags.team = ''",
        "params.lr LIKE '0.%'",
        "metrics.acc >= 0.5",
        "metrics.acc IS NULL",
        "metrics.acc IS NOT NULL",
        "attributes.run_name IS NULL",
        "status IS NOT NULL",
    ];
    let runs = runs();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/search_grammar.py");
    let theirs = mlops_testkit::python::run_json(
        &script,
        &json!({"runs": runs, "filters": filters}),
        "mlflow",
    );
    let ours: Vec<Run> = runs
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, r)| core_run(i, r))
        .collect();
    for (f, their) in filters.iter().zip(theirs.as_array().unwrap()) {
        match (Filter::parse(f), their.get("ids")) {
            (Ok(filter), Some(ids)) => {
                let mine: Vec<&str> = ours
                    .iter()
                    .filter(|r| filter.matches(*r))
                    .map(|r| r.info.run_id.as_str())
                    .collect();
                let ids: Vec<&str> = ids
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(mine, ids, "{f}");
            }
            (Err(e), None) => {
                assert!(e.is_invalid_argument(), "{f}: {e}");
            }
            (Ok(_), None) => panic!("{f}: MLflow refuses it ({their}), we accept it"),
            (Err(e), Some(_)) => panic!("{f}: MLflow accepts it, we refuse it: {e}"),
        }
    }
}
