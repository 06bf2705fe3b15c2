#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Training and validation assess the model: permutation importance always, group fairness when
//! the dataset declares sensitive columns — as version tags (what the fairness policy reads), in
//! the model card and in the run's model report; bad declarations are errors naming them.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use futures::stream;
use mlops_core::model::ArtifactSource;
use mlops_core::{Registry, RegistryExt, Store, Tracker};
use mlops_pipeline::{PipelineSpec, Runner};
use mlops_steps::{StepEnv, Verdict, builtin};
use mlops_storage::{
    Artifacts, Datasets, ObjectStoreStore, StoreRegistry, StoreTracker, StoreTrackerOptions,
    WriteOptions,
};

/// `a` decides the label; `group` is unrelated noise with three values, `region` a constant.
fn data(n: usize, seed: u64) -> RecordBatch {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut a, mut b, mut group, mut y) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let x = next() * 4.0 - 2.0;
        a.push(x);
        b.push(next());
        group.push(["g1", "g2", "g3"][(next() * 3.0) as usize % 3]);
        y.push(if x + (next() - 0.5) * 0.5 > 0.0 {
            "yes"
        } else {
            "no"
        });
    }
    RecordBatch::try_from_iter([
        ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
        ("b", Arc::new(Float64Array::from(b))),
        ("group", Arc::new(StringArray::from(group))),
        ("region", Arc::new(StringArray::from(vec!["north"; n]))),
        ("churned", Arc::new(StringArray::from(y))),
    ])
    .unwrap()
}

struct Env {
    store: Arc<dyn Store>,
    tracker: Arc<dyn Tracker>,
    registry: Arc<StoreRegistry>,
    datasets: Datasets,
}

async fn env() -> Env {
    let store: Arc<dyn Store> = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
    let tracker: Arc<dyn Tracker> = Arc::new(
        StoreTracker::open(store.clone(), StoreTrackerOptions::default())
            .await
            .unwrap(),
    );
    Env {
        registry: Arc::new(StoreRegistry::new(store.clone())),
        datasets: Datasets::new(store.clone()),
        store,
        tracker,
    }
}

impl Env {
    async fn write(&self, name: &str, batch: RecordBatch, options: WriteOptions) {
        self.datasets
            .write(
                &name.parse().unwrap(),
                batch.schema(),
                stream::iter([Ok(batch)]),
                options,
            )
            .await
            .unwrap();
    }

    async fn run(&self, yaml: &str) -> mlops_core::Result<mlops_pipeline::PipelineReport> {
        let steps = builtin(StepEnv {
            store: self.store.clone(),
            tracker: self.tracker.clone(),
            registry: self.registry.clone(),
            experiment: "assess".into(),
        });
        let pipeline = PipelineSpec::from_yaml(yaml)?.build(&steps)?;
        Runner::new(self.store.clone())
            .run(&pipeline)
            .await?
            .into_result()
    }
}

fn train(assess: &str) -> String {
    format!(
        "pipeline: p\nsteps:\n  - {{name: data, uses: dataset, with: {{name: churn}}}}\n  - name: train\n    uses: train\n    needs: {{data: data.dataset}}\n    with: {{target: churned, model: logistic, epochs: 8, learning_rate: 0.1, register: churn{assess}}}\n"
    )
}

#[tokio::test]
async fn training_assesses_on_the_validation_rows_when_the_dataset_declares_sensitive_columns() {
    let env = env().await;
    env.write(
        "churn",
        data(1000, 3),
        WriteOptions::default().with_metadata("sensitive", "group"),
    )
    .await;
    env.run(&train(", assess: {pos_label: \"yes\", bootstrap: 50}"))
        .await
        .unwrap();
    let v = env
        .registry
        .resolve(&"models:/churn/1".parse().unwrap())
        .await
        .unwrap();
    let tag = |k: &str| -> f64 {
        v.tags
            .get(k)
            .unwrap_or_else(|| panic!("no tag {k}: {:?}", v.tags))
            .parse()
            .unwrap()
    };
    // The deciding column matters, the noise does not.
    assert!(tag("explain.importance.a") > 0.1, "{:?}", v.tags);
    assert!(tag("explain.importance.b").abs() < 0.05, "{:?}", v.tags);
    assert_eq!(v.tags["fairness.sensitive_columns"], "group");
    let dpd = tag("fairness.demographic_parity_difference");
    assert!((0.0..=1.0).contains(&dpd));
    assert!(tag("fairness.demographic_parity_difference.low") <= dpd + 1e-12);
    assert!(tag("fairness.demographic_parity_difference.high") >= dpd - 1e-12);

    // The card carries the same findings, on the 200 validation rows.
    let artifact = Artifacts::new(env.store.clone()).fetch(&v).await.unwrap();
    let card = mlops_train::ModelCard::read(&artifact).unwrap();
    let fairness = &card.assessment["fairness"];
    let rows: u64 = fairness["frame"]["by_group"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rates"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 200);
    assert_eq!(card.assessment["explain"]["rows"], 200);

    // And the run has the model report and the findings.
    let run = v.run_id.clone().unwrap();
    let html = env
        .tracker
        .get_artifact(&run, &"assessment/report.html".parse().unwrap())
        .await
        .unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    for part in [
        "Permutation importance",
        "Group metrics",
        "demographic_parity_difference",
        "g2",
    ] {
        assert!(html.contains(part), "the report lacks {part}");
    }
    let run = env.tracker.get_run(&run).await.unwrap();
    assert_eq!(run.data.tags["mlops.assessment.rows"], "validation");
    assert_eq!(run.data.tags["fairness.sensitive_columns"], "group");
}

#[tokio::test]
async fn without_declared_columns_only_importance_is_measured_and_it_can_be_turned_off() {
    let env = env().await;
    env.write("churn", data(400, 5), WriteOptions::default())
        .await;
    env.run(&train("")).await.unwrap();
    let v1 = env
        .registry
        .resolve(&"models:/churn/1".parse().unwrap())
        .await
        .unwrap();
    assert!(
        v1.tags.contains_key("explain.importance.group"),
        "{:?}",
        v1.tags
    );
    assert!(
        !v1.tags.keys().any(|k| k.as_str().starts_with("fairness.")),
        "{:?}",
        v1.tags
    );
    env.write("churn", data(401, 6), WriteOptions::default())
        .await;
    env.run(&train(", assess: false")).await.unwrap();
    let v2 = env
        .registry
        .resolve(&"models:/churn/2".parse().unwrap())
        .await
        .unwrap();
    assert!(
        !v2.tags.keys().any(|k| k.as_str().starts_with("explain.")),
        "{:?}",
        v2.tags
    );
}

#[tokio::test]
async fn bad_declarations_are_errors_naming_them() {
    let env = env().await;
    env.write("churn", data(300, 7), WriteOptions::default())
        .await;
    let cases = [
        (
            ", assess: {sensitive: [gender], pos_label: \"yes\"}",
            "\"gender\"",
        ),
        // A constant column has one group: no disparity to measure.
        (
            ", assess: {sensitive: [region], pos_label: \"yes\"}",
            "region",
        ),
        // The default positive label of a text target is "1", which it does not hold.
        (", assess: {sensitive: [group]}", "positive label"),
        (", assess: {sensitive: [group], colour: red}", "colour"),
        (", assess: 3", "assess"),
        (", assess: {privileged: \"group=g1\"}", "sensitive"),
    ];
    for (assess, needle) in cases {
        let err = env.run(&train(assess)).await.unwrap_err();
        let text = format!("{err:#}");
        assert!(
            err.is_invalid_argument() && text.contains(needle),
            "{assess}: {text}"
        );
    }
    // Nothing was registered by the failed runs.
    assert!(
        env.registry
            .get_model_version(&"churn".parse().unwrap(), 1.try_into().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn validation_on_a_holdout_tags_the_candidate_with_its_fairness_there() {
    let env = env().await;
    env.write("churn", data(600, 8), WriteOptions::default())
        .await;
    env.write(
        "feedback",
        data(300, 9),
        WriteOptions::default()
            .with_metadata("sensitive", "group")
            .with_metadata("privileged", "group=g1"),
    )
    .await;
    let yaml = format!(
        "{}  - {{name: holdout, uses: dataset, with: {{name: feedback}}}}\n  - name: validate\n    uses: validate\n    needs: {{candidate: train.model, holdout: holdout.dataset}}\n    with: {{model: churn, target: churned, assess: {{pos_label: \"yes\", bootstrap: 0}}}}\n",
        train(", assess: false")
    );
    let report = env.run(&yaml).await.unwrap();
    let verdict: Verdict = report.step("validate").unwrap().outputs["verdict"]
        .get()
        .unwrap();
    assert!(
        verdict
            .assessment
            .contains_key("fairness.aif360.disparate_impact"),
        "{verdict:?}"
    );
    let v = env
        .registry
        .resolve(&"models:/churn/1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        v.tags["fairness.aif360.disparate_impact"],
        verdict.assessment["fairness.aif360.disparate_impact"]
    );
    assert_eq!(v.tags["fairness.aif360.privileged"], "group=g1");
}

/// `data` with the label as 0.0/1.0 floats or booleans, and a column whose name no tag key can
/// hold as it is.
fn typed(n: usize, seed: u64, label: &str) -> RecordBatch {
    let b = data(n, seed);
    let y: Vec<bool> = b
        .column_by_name("churned")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .iter()
        .map(|v| v == Some("yes"))
        .collect();
    let target: ArrayRef = match label {
        "float" => Arc::new(Float64Array::from(
            y.iter()
                .map(|v| f64::from(u8::from(*v)))
                .collect::<Vec<_>>(),
        )),
        _ => Arc::new(arrow::array::BooleanArray::from(y)),
    };
    RecordBatch::try_from_iter([
        ("a", b.column_by_name("a").unwrap().clone()),
        ("income ($)", b.column_by_name("b").unwrap().clone()),
        ("group", b.column_by_name("group").unwrap().clone()),
        ("churned", target),
    ])
    .unwrap()
}

#[tokio::test]
async fn float_and_boolean_labels_are_judged_like_text_ones() {
    for label in ["float", "bool"] {
        let env = env().await;
        env.write(
            "churn",
            typed(800, 11, label),
            WriteOptions::default().with_metadata("sensitive", "group"),
        )
        .await;
        env.run(&train(", assess: {bootstrap: 0}")).await.unwrap();
        let v = env
            .registry
            .resolve(&"models:/churn/1".parse().unwrap())
            .await
            .unwrap();
        let num = |k: &str| -> f64 {
            v.tags
                .get(k)
                .unwrap_or_else(|| panic!("{label}: no {k}: {:?}", v.tags))
                .parse()
                .unwrap()
        };
        assert!(num("explain.baseline") > 0.8, "{label}: {:?}", v.tags);
        assert!(num("explain.importance.a") > 0.1, "{label}: {:?}", v.tags);
        // The column name became a tag key.
        assert!(
            num("explain.importance.income ___").abs() < 0.05,
            "{label}: {:?}",
            v.tags
        );
        let dpr = num("fairness.demographic_parity_ratio");
        assert!(dpr > 0.5 && dpr <= 1.0, "{label}: {:?}", v.tags);
    }
}

#[tokio::test]
async fn a_regressor_on_a_dataset_with_sensitive_columns_trains_without_fairness() {
    let env = env().await;
    let b = typed(300, 12, "float");
    env.write(
        "churn",
        b,
        WriteOptions::default().with_metadata("sensitive", "group"),
    )
    .await;
    let yaml = train(", model: linear").replace("model: logistic, ", "");
    env.run(&yaml).await.unwrap();
    let v = env
        .registry
        .resolve(&"models:/churn/1".parse().unwrap())
        .await
        .unwrap();
    assert!(
        v.tags["fairness.skipped"].contains("binary classifier"),
        "{:?}",
        v.tags
    );
    assert_eq!(v.tags["explain.scorer"], "r2");
    // Declared on the call, the same is an error.
    let err = env
        .run(
            &train(", model: linear, assess: {sensitive: [group]}")
                .replace("model: logistic, ", ""),
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("binary classifier"), "{err:#}");
}

#[tokio::test]
async fn validation_replaces_the_training_findings() {
    let env = env().await;
    env.write(
        "churn",
        data(600, 13),
        WriteOptions::default()
            .with_metadata("sensitive", "group")
            .with_metadata("privileged", "group=g1"),
    )
    .await;
    env.write(
        "feedback",
        data(300, 14),
        WriteOptions::default().with_metadata("sensitive", "group"),
    )
    .await;
    // Training measures with intervals and AIF360's metrics; the holdout without either.
    let yaml = format!(
        "{}  - {{name: holdout, uses: dataset, with: {{name: feedback}}}}\n  - name: validate\n    uses: validate\n    needs: {{candidate: train.model, holdout: holdout.dataset}}\n    with: {{model: churn, target: churned, assess: {{pos_label: \"yes\", bootstrap: 0}}}}\n",
        train(", assess: {pos_label: \"yes\", bootstrap: 20}")
    );
    env.run(&yaml).await.unwrap();
    let v = env
        .registry
        .resolve(&"models:/churn/1".parse().unwrap())
        .await
        .unwrap();
    let keys: Vec<&str> = v.tags.keys().map(|k| k.as_str()).collect();
    assert!(
        keys.contains(&"fairness.demographic_parity_ratio"),
        "{keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with(".low") || k.starts_with("fairness.aif360")),
        "training's intervals and AIF360 metrics stayed: {keys:?}"
    );
    assert_eq!(v.tags["mlops.assessment.data"], "feedback@1");
}
