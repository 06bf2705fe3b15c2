#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A pipeline file of built-in steps run end to end: dataset → train (registered) → promote,
//! and drift of the newest data against the first version; cached on a re-run; a new dataset
//! version re-runs exactly what depends on it.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use futures::stream;
use mlops_core::{RegistryExt, Store, Tracker};
use mlops_pipeline::{PipelineSpec, Runner, StepStatus};
use mlops_steps::{StepEnv, builtin};
use mlops_storage::{
    Datasets, ObjectStoreStore, StoreRegistry, StoreTracker, StoreTrackerOptions, WriteOptions,
};

fn data(n: usize, shift: f64, seed: u64) -> RecordBatch {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut a, mut plan, mut y) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let x = next() * 4.0 - 2.0 + shift;
        let pro = next() > 0.5;
        a.push(x);
        plan.push(if pro { "pro" } else { "basic" });
        y.push(if x + if pro { 0.5 } else { -0.5 } + (next() - 0.5) > 0.0 {
            "yes"
        } else {
            "no"
        });
    }
    RecordBatch::try_from_iter([
        ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
        ("plan", Arc::new(StringArray::from(plan))),
        ("churned", Arc::new(StringArray::from(y))),
    ])
    .unwrap()
}

const PIPELINE: &str = r#"
pipeline: churn
steps:
  - {name: data, uses: dataset, with: {name: churn}}
  - {name: reference, uses: dataset, with: {name: churn, version: 1}}
  - name: train
    uses: train
    needs: {data: data.dataset}
    with: {target: churned, model: logistic, epochs: 5, learning_rate: 0.05, register: churn}
  - {name: promote, uses: promote, needs: {model: train.model}}
  - {name: drift, uses: drift, needs: {reference: reference.dataset, current: data.dataset}}
"#;

#[tokio::test]
async fn built_in_steps_run_cache_and_rerun_on_new_data() {
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
    let tracker: Arc<dyn Tracker> = Arc::new(
        StoreTracker::open(store.clone(), StoreTrackerOptions::default())
            .await
            .unwrap(),
    );
    let registry = Arc::new(StoreRegistry::new(store.clone()));
    let datasets = Datasets::new(store.clone());
    let write = |batch: RecordBatch| {
        let datasets = datasets.clone();
        async move {
            datasets
                .write(
                    &"churn".parse().unwrap(),
                    batch.schema(),
                    stream::iter([Ok(batch)]),
                    WriteOptions::default(),
                )
                .await
                .unwrap()
        }
    };
    write(data(1000, 0.0, 1)).await;
    let steps = builtin(StepEnv {
        store: store.clone(),
        tracker: tracker.clone(),
        registry: registry.clone(),
        experiment: "churn".into(),
    });
    let pipeline = PipelineSpec::from_yaml(PIPELINE)
        .unwrap()
        .build(&steps)
        .unwrap();
    let runner = Runner::new(store.clone()).tracker(tracker.clone(), "pipelines");

    let first = runner.run(&pipeline).await.unwrap().into_result().unwrap();
    let model = &first.step("train").unwrap().outputs["model"].value;
    assert_eq!(model["version"], 1);
    assert!(
        model["metrics"]["val_accuracy"].as_f64().unwrap() > 0.7,
        "{model}"
    );
    let champion = registry
        .resolve(&"models:/churn@champion".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(champion.version.get(), 1);
    assert_eq!(
        first.step("drift").unwrap().outputs["report"].value["dataset_drift"],
        false
    );

    // Nothing changed: everything is served from the cache.
    let second = runner.run(&pipeline).await.unwrap();
    assert!(
        second.steps.iter().all(|s| s.status == StepStatus::Cached),
        "{:?}",
        second.executed()
    );

    // New data: the latest dataset, training, promotion and drift re-run; the pinned reference
    // does not.
    write(data(1000, 1.5, 2)).await;
    let third = runner.run(&pipeline).await.unwrap().into_result().unwrap();
    assert_eq!(third.executed(), ["data", "train", "promote", "drift"]);
    assert_eq!(third.step("reference").unwrap().status, StepStatus::Cached);
    assert_eq!(
        third.step("drift").unwrap().outputs["report"].value["dataset_drift"],
        true
    );
    let champion = registry
        .resolve(&"models:/churn@champion".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(champion.version.get(), 2);
    assert!(champion.tags.contains_key("metrics.val_accuracy"));
}

#[tokio::test]
async fn bad_pipeline_files_name_the_step() {
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
    let tracker: Arc<dyn Tracker> = Arc::new(
        StoreTracker::open(store.clone(), StoreTrackerOptions::default())
            .await
            .unwrap(),
    );
    let steps = builtin(StepEnv {
        store: store.clone(),
        tracker,
        registry: Arc::new(StoreRegistry::new(store.clone())),
        experiment: "x".into(),
    });
    for (yaml, want) in [
        (
            "pipeline: p\nsteps: [{name: t, uses: train, with: {model: logistic}}]",
            "step t: parameters of train: missing field `target`",
        ),
        (
            "pipeline: p\nsteps: [{name: t, uses: train, with: {target: y, epochs: many}}]",
            "epochs=\"many\"",
        ),
        (
            "pipeline: p\nsteps: [{name: d, uses: dataset, with: {}}]",
            "missing field `name`",
        ),
        (
            "pipeline: p\nsteps: [{name: d, uses: drift, with: {drift_share: 2}}]",
            "drift_share",
        ),
    ] {
        let e = PipelineSpec::from_yaml(yaml)
            .unwrap()
            .build(&steps)
            .unwrap_err();
        assert!(e.to_string().contains(want), "{yaml}: {e}");
    }
    // A missing dataset fails its step, naming it, and skips what depends on it.
    let p = PipelineSpec::from_yaml(
        "pipeline: p\nsteps:\n  - {name: d, uses: dataset, with: {name: nope}}\n  - {name: t, uses: train, needs: {data: d.dataset}, with: {target: y}}\n",
    )
    .unwrap()
    .build(&steps)
    .unwrap();
    let r = Runner::new(store).run(&p).await.unwrap();
    assert_eq!(r.step("d").unwrap().status, StepStatus::Failed);
    assert_eq!(r.step("t").unwrap().status, StepStatus::Skipped);
    assert_eq!(r.failed().map(|s| s.name.as_str()), Some("d"));
    let e = r.into_result().unwrap_err();
    assert!(e.is_not_found(), "the step's own error: {e}");
    assert!(e.to_string().contains("nope"), "{e}");

    // Misspelt parameters are refused before anything runs, naming the key.
    for yaml in [
        "pipeline: p\nsteps: [{name: d, uses: dataset, with: {name: x, verison: 1}}]",
        "pipeline: p\nsteps: [{name: t, uses: train, with: {target: y, epoch: 3}}]",
        "pipeline: p\nsteps: [{name: m, uses: monitor, with: {model: m, alais: x}}]",
        "pipeline: p\nsteps: [{name: v, uses: validate, with: {metirc: f1}}]",
    ] {
        let e = PipelineSpec::from_yaml(yaml)
            .unwrap()
            .build(&steps)
            .unwrap_err();
        let typo = ["verison", "epoch", "alais", "metirc"]
            .into_iter()
            .find(|t| yaml.contains(t))
            .unwrap();
        assert!(e.to_string().contains(typo), "{yaml}: {e}");
    }
}

const RETRAIN: &str = r#"
pipeline: retrain
steps:
  - {name: production, uses: dataset, with: {name: churn-production}}
  - name: monitor
    uses: monitor
    needs: {current: production.dataset}
    with: {model: churn, target: churned}
  - {name: data, uses: dataset, with: {name: churn}}
  - name: retrain
    uses: train
    needs: {data: data.dataset}
    when: monitor.decision.retrain
    with: {target: churned, model: logistic, epochs: 5, learning_rate: 0.05, register: churn}
  - name: validate
    uses: validate
    needs: {candidate: retrain.model, holdout: production.dataset}
    with: {target: churned, min_delta: -0.05}
  - name: canary
    uses: promote
    needs: {model: retrain.model}
    when: validate.verdict.passed
    with: {alias: canary}
"#;

#[tokio::test]
async fn the_retraining_loop_retrains_only_on_drift() {
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
    let tracker: Arc<dyn Tracker> = Arc::new(
        StoreTracker::open(store.clone(), StoreTrackerOptions::default())
            .await
            .unwrap(),
    );
    let registry = Arc::new(StoreRegistry::new(store.clone()));
    let datasets = Datasets::new(store.clone());
    let write = |name: &'static str, batch: RecordBatch| {
        let datasets = datasets.clone();
        async move {
            datasets
                .write(
                    &name.parse().unwrap(),
                    batch.schema(),
                    stream::iter([Ok(batch)]),
                    WriteOptions::default(),
                )
                .await
                .unwrap()
        }
    };
    let steps = builtin(StepEnv {
        store: store.clone(),
        tracker: tracker.clone(),
        registry: registry.clone(),
        experiment: "churn".into(),
    });
    let runner = Runner::new(store.clone()).tracker(tracker.clone(), "pipelines");
    // A champion, trained and promoted by the first pipeline.
    write("churn", data(1000, 0.0, 1)).await;
    let first = PipelineSpec::from_yaml(PIPELINE)
        .unwrap()
        .build(&steps)
        .unwrap();
    runner.run(&first).await.unwrap().into_result().unwrap();
    let retrain = PipelineSpec::from_yaml(RETRAIN)
        .unwrap()
        .build(&steps)
        .unwrap();

    // Production looks like training: no retraining; the pipeline still succeeds.
    write("churn-production", data(500, 0.0, 3)).await;
    let calm = runner.run(&retrain).await.unwrap().into_result().unwrap();
    let decision = &calm.step("monitor").unwrap().outputs["decision"].value;
    assert_eq!(decision["retrain"], false, "{decision}");
    assert!(decision["accuracy"].as_f64().unwrap() > 0.7, "{decision}");
    for s in ["retrain", "validate", "canary"] {
        assert_eq!(calm.step(s).unwrap().status, StepStatus::Bypassed, "{s}");
    }

    // Production shifts: the monitor says why, a challenger is trained on the new data,
    // validated and put on the canary alias.
    write("churn-production", data(500, 1.5, 4)).await;
    write("churn", data(1000, 1.5, 5)).await;
    let shifted = runner.run(&retrain).await.unwrap().into_result().unwrap();
    let decision = &shifted.step("monitor").unwrap().outputs["decision"].value;
    assert_eq!(decision["retrain"], true, "{decision}");
    assert!(
        decision["reasons"][0]
            .as_str()
            .unwrap()
            .contains("drift share"),
        "{decision}"
    );
    assert_eq!(
        shifted.step("retrain").unwrap().outputs["model"].value["version"],
        2
    );
    // Challenger and champion were scored on the same production rows, and the verdict is
    // the documented rule on those two numbers.
    let verdict: mlops_steps::Verdict = shifted.step("validate").unwrap().outputs["verdict"]
        .get()
        .unwrap();
    assert_eq!(verdict.metric, "accuracy");
    let holdout = verdict.holdout.clone().unwrap();
    assert_eq!(
        (holdout.name.as_str(), holdout.version.get()),
        ("churn-production", 2)
    );
    let champion_accuracy = verdict.champion.unwrap();
    assert!(
        verdict.candidate > 0.7 && champion_accuracy > 0.5,
        "{verdict:?}"
    );
    assert_eq!(
        verdict.passed,
        verdict.candidate >= champion_accuracy - 0.05,
        "{verdict:?}"
    );
    assert!(verdict.reason.contains("churn-production@2"), "{verdict:?}");
    assert!(verdict.passed, "{verdict:?}");
    let canary = registry
        .resolve(&"models:/churn@canary".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(canary.version.get(), 2);
    let champion = registry
        .resolve(&"models:/churn@champion".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        champion.version.get(),
        1,
        "promotion to champion is a later decision"
    );
}
