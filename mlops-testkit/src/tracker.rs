//! The [`Tracker`] conformance suite.

use std::collections::BTreeMap;

use bytes::Bytes;
use mlops_core::tracker::{
    CreateExperimentOptions, CreateRunOptions, LogBatch, PageOptions, SearchExperimentsOptions,
    SearchRunsOptions, Tracker, TrackerExt, UpdateRunOptions,
};
use mlops_core::tracking::{
    Dataset, DatasetInput, LifecycleStage, Metric, Param, RunStatus, Tag, ViewType, tags,
};
use mlops_core::{ArtifactPath, Error, ExperimentId, ExperimentName, MetricKey, RunId};

use crate::{in_parallel, unique};

fn exp_name(prefix: &str) -> ExperimentName {
    unique(prefix).parse().unwrap()
}

async fn new_experiment(t: &dyn Tracker, prefix: &str) -> ExperimentId {
    t.create_experiment(&exp_name(prefix), CreateExperimentOptions::default())
        .await
        .unwrap()
}

async fn new_run(t: &dyn Tracker, exp: &ExperimentId) -> RunId {
    t.create_run(CreateRunOptions::default().in_experiment(exp.clone()))
        .await
        .unwrap()
        .info
        .run_id
}

fn metric(key: &str, value: f64, timestamp_ms: i64, step: i64) -> Metric {
    Metric {
        key: key.parse().unwrap(),
        value,
        timestamp_ms,
        step,
    }
}

fn param(key: &str, value: &str) -> Param {
    Param::new(key.parse().unwrap(), value).unwrap()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::new(key.parse().unwrap(), value).unwrap()
}

/// Runs every clause.
pub async fn run_all(t: &dyn Tracker) {
    default_experiment_exists(t).await;
    experiments_round_trip(t).await;
    get_or_create_is_idempotent_under_concurrency(t).await;
    runs_round_trip(t).await;
    unknown_ids_are_not_found(t).await;
    params_are_write_once(t).await;
    metrics_append_in_order(t).await;
    latest_metric_is_max_by_step_timestamp_value(t).await;
    tags_overwrite_and_delete(t).await;
    batches_are_limited_and_atomic(t).await;
    search_filters_orders_and_pages(t).await;
    runs_soft_delete_and_restore(t).await;
    experiments_soft_delete_and_restore(t).await;
    parent_runs_are_tagged(t).await;
    dataset_inputs_are_recorded_and_searchable(t).await;
    artifacts_round_trip(t).await;
    concurrent_logging_loses_nothing(t).await;
}

/// MLflow's default experiment `"0"` named `Default` always exists and cannot be deleted.
pub async fn default_experiment_exists(t: &dyn Tracker) {
    let e = t
        .get_experiment(&ExperimentId::default_experiment())
        .await
        .unwrap();
    assert_eq!(e.name.as_str(), "Default");
    assert_eq!(e.lifecycle_stage, LifecycleStage::Active);
    let err = t
        .set_experiment_lifecycle(&e.experiment_id, LifecycleStage::Deleted)
        .await
        .unwrap_err();
    assert!(
        err.is_invalid_argument(),
        "deleting experiment 0 must fail: {err}"
    );
}

/// Experiments read back by id and name; names are unique.
pub async fn experiments_round_trip(t: &dyn Tracker) {
    let name = exp_name("exp");
    let id = t
        .create_experiment(
            &name,
            CreateExperimentOptions::default().with_tag(tag("team", "fraud")),
        )
        .await
        .unwrap();
    let by_id = t.get_experiment(&id).await.unwrap();
    let by_name = t.get_experiment_by_name(&name).await.unwrap();
    assert_eq!(by_id, by_name);
    assert_eq!(by_id.name, name);
    assert_eq!(by_id.tags.get("team").map(String::as_str), Some("fraud"));
    assert!(!by_id.artifact_location.is_empty());
    let err = t
        .create_experiment(&name, CreateExperimentOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.is_already_exists(),
        "duplicate name must be AlreadyExists: {err}"
    );
    t.set_experiment_tag(&id, tag("team", "risk"))
        .await
        .unwrap();
    assert_eq!(
        t.get_experiment(&id)
            .await
            .unwrap()
            .tags
            .get("team")
            .map(String::as_str),
        Some("risk")
    );
    let filter = format!("name = '{name}'");
    let page = t
        .search_experiments(SearchExperimentsOptions::default().with_filter(filter))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].experiment_id, id);
}

/// Sixteen threads asking for the same experiment all get the same id.
pub async fn get_or_create_is_idempotent_under_concurrency(t: &dyn Tracker) {
    let name = exp_name("racy-exp");
    let ids = in_parallel(16, |_| t.get_or_create_experiment(&name));
    let ids: Vec<ExperimentId> = ids.into_iter().map(|r| r.unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one experiment for one name: {ids:?}"
    );
}

/// Runs get a 32-hex id, a name mirrored in `mlflow.runName`, and record status and end time.
pub async fn runs_round_trip(t: &dyn Tracker) {
    let exp = new_experiment(t, "runs").await;
    let run = t
        .create_run(
            CreateRunOptions::default()
                .in_experiment(exp.clone())
                .with_user("alice")
                .with_start_time(1_000),
        )
        .await
        .unwrap();
    let id = run.info.run_id.clone();
    assert_eq!(id.as_str().len(), 32, "run ids are uuid4 hex");
    assert!(
        !run.info.run_name.is_empty(),
        "a run without a name gets a generated one"
    );
    assert_eq!(run.data.tags.get(tags::RUN_NAME), Some(&run.info.run_name));
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(run.info.user_id, "alice");
    assert_eq!(run.info.start_time, 1_000);
    assert_eq!(run.info.experiment_id, exp);
    assert!(run.info.end_time.is_none());

    let named = t
        .create_run(
            CreateRunOptions::default()
                .in_experiment(exp.clone())
                .with_name("baseline"),
        )
        .await
        .unwrap();
    assert_eq!(named.info.run_name, "baseline");

    let info = t
        .update_run(
            &id,
            UpdateRunOptions::default()
                .with_status(RunStatus::Finished)
                .with_end_time(2_000)
                .with_run_name("renamed"),
        )
        .await
        .unwrap();
    assert_eq!(info.status, RunStatus::Finished);
    assert_eq!(info.end_time, Some(2_000));
    let run = t.get_run(&id).await.unwrap();
    assert_eq!(run.info, info);
    assert_eq!(
        run.data.tags.get(tags::RUN_NAME).map(String::as_str),
        Some("renamed")
    );

    let default_run = t.create_run(CreateRunOptions::default()).await.unwrap();
    assert_eq!(
        default_run.info.experiment_id,
        ExperimentId::default_experiment()
    );
    let ended = t
        .end_run(&default_run.info.run_id, RunStatus::Failed)
        .await
        .unwrap();
    assert_eq!(ended.status, RunStatus::Failed);
    assert!(ended.end_time.is_some());
}

/// Unknown experiments and runs are `NotFound` with the right kind.
pub async fn unknown_ids_are_not_found(t: &dyn Tracker) {
    let missing_run = RunId::generate();
    let missing_exp: ExperimentId = "987654321987654321".parse().unwrap();
    let expect = |err: Option<Error>, want: &str| match err {
        Some(Error::NotFound { kind, .. }) if kind == want => {}
        other => panic!("expected NotFound for {want}, got {other:?}"),
    };
    expect(t.get_run(&missing_run).await.err(), "run");
    expect(t.log_metric(&missing_run, "m", 1.0, 0).await.err(), "run");
    expect(
        t.update_run(&missing_run, UpdateRunOptions::default())
            .await
            .err(),
        "run",
    );
    expect(
        t.get_metric_history(&missing_run, &"m".parse().unwrap(), PageOptions::default())
            .await
            .err(),
        "run",
    );
    expect(t.get_experiment(&missing_exp).await.err(), "experiment");
    expect(
        t.get_experiment_by_name(&exp_name("missing")).await.err(),
        "experiment",
    );
    expect(
        t.create_run(CreateRunOptions::default().in_experiment(missing_exp))
            .await
            .err(),
        "experiment",
    );
    let exp = new_experiment(t, "nf").await;
    let run = new_run(t, &exp).await;
    expect(
        t.get_artifact(&run, &"nope.txt".parse().unwrap())
            .await
            .err(),
        "artifact",
    );
    let history = t
        .get_metric_history(
            &run,
            &"never-logged".parse().unwrap(),
            PageOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        history.items.is_empty(),
        "an unlogged metric has an empty history, as in MLflow"
    );
}

/// Same value again is a no-op; a different value is `InvalidArgument` and the batch is rejected
/// whole.
pub async fn params_are_write_once(t: &dyn Tracker) {
    let exp = new_experiment(t, "params").await;
    let run = new_run(t, &exp).await;
    t.log_param(&run, "lr", "0.01").await.unwrap();
    t.log_param(&run, "lr", "0.01").await.unwrap();
    let err = t.log_param(&run, "lr", "0.02").await.unwrap_err();
    assert!(
        err.is_invalid_argument(),
        "changing a param must be InvalidArgument: {err}"
    );
    let batch = LogBatch::new()
        .param(param("epochs", "10"))
        .param(param("lr", "0.5"))
        .metric(metric("loss", 1.0, 1, 0));
    assert!(
        t.log_batch(&run, batch)
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    let r = t.get_run(&run).await.unwrap();
    assert_eq!(r.data.params.get("lr").map(String::as_str), Some("0.01"));
    assert!(
        !r.data.params.contains_key("epochs"),
        "a rejected batch writes nothing"
    );
    assert!(r.data.metrics.is_empty(), "a rejected batch writes nothing");
    let dup = LogBatch::new()
        .param(param("a", "1"))
        .param(param("a", "2"));
    assert!(
        t.log_batch(&run, dup)
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    let long = "x".repeat(6001);
    assert!(
        t.log_param(&run, "long", &long)
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
}

/// Every value is kept with its step and timestamp (in an order of the backend's choosing).
pub async fn metrics_append_in_order(t: &dyn Tracker) {
    let exp = new_experiment(t, "metrics").await;
    let run = new_run(t, &exp).await;
    let points = vec![
        metric("loss", 0.9, 100, 0),
        metric("loss", 0.7, 101, 1),
        metric("loss", 0.8, 99, 1),
        metric("loss", f64::NAN, 102, 2),
        metric("loss", 0.5, 103, 3),
    ];
    let mut batch = LogBatch::new();
    for p in points.iter().take(3) {
        batch = batch.metric(p.clone());
    }
    t.log_batch(&run, batch).await.unwrap();
    for p in points.iter().skip(3) {
        t.log_batch(&run, LogBatch::new().metric(p.clone()))
            .await
            .unwrap();
    }
    let key: MetricKey = "loss".parse().unwrap();
    let mut history = t.metric_history(&run, &key).await.unwrap();
    assert_eq!(history.len(), points.len());
    // Backends differ on order (logging order; MLflow's SQL store sorts by timestamp), not on
    // content: compare in one order.
    let order = |a: &mlops_core::Metric, b: &mlops_core::Metric| {
        (a.timestamp_ms, a.step).cmp(&(b.timestamp_ms, b.step))
    };
    history.sort_by(order);
    let mut points = points;
    points.sort_by(order);
    for (got, want) in history.iter().zip(&points) {
        assert_eq!((got.step, got.timestamp_ms), (want.step, want.timestamp_ms));
        assert!(got.value == want.value || (got.value.is_nan() && want.value.is_nan()));
    }
    let streamed: Vec<mlops_core::Metric> =
        futures::TryStreamExt::try_collect(t.metric_history_stream(&run, &key))
            .await
            .unwrap();
    assert_eq!(
        streamed.len(),
        points.len(),
        "the history stream yields every value"
    );
    let page = t
        .get_metric_history(&run, &key, PageOptions::default().with_max_results(2))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.next_page_token.is_some(), "history pages");
}

/// The latest value is the max by `(step, timestamp, value)`, not the last logged.
pub async fn latest_metric_is_max_by_step_timestamp_value(t: &dyn Tracker) {
    let exp = new_experiment(t, "latest").await;
    let run = new_run(t, &exp).await;
    let batch = LogBatch::new()
        .metric(metric("acc", 0.5, 500, 5))
        .metric(metric("acc", 0.9, 900, 2))
        .metric(metric("acc", 0.4, 400, 5))
        .metric(metric("f1", 0.3, 10, 1))
        .metric(metric("f1", 0.6, 10, 1));
    t.log_batch(&run, batch).await.unwrap();
    let r = t.get_run(&run).await.unwrap();
    let acc = r.data.metrics.get("acc").unwrap();
    assert_eq!((acc.value, acc.step, acc.timestamp_ms), (0.5, 5, 500));
    assert_eq!(
        r.metric("f1"),
        Some(0.6),
        "ties on step and timestamp go to the larger value"
    );
}

/// Tags overwrite; in a batch the last value wins; deleting works once.
pub async fn tags_overwrite_and_delete(t: &dyn Tracker) {
    let exp = new_experiment(t, "tags").await;
    let run = new_run(t, &exp).await;
    t.set_tag(&run, "stage", "dev").await.unwrap();
    t.log_batch(
        &run,
        LogBatch::new()
            .tag(tag("stage", "qa"))
            .tag(tag("stage", "prod")),
    )
    .await
    .unwrap();
    let r = t.get_run(&run).await.unwrap();
    assert_eq!(r.data.tags.get("stage").map(String::as_str), Some("prod"));
    t.set_tag(&run, tags::RUN_NAME, "via-tag").await.unwrap();
    assert_eq!(t.get_run(&run).await.unwrap().info.run_name, "via-tag");
    let key = "stage".parse().unwrap();
    t.delete_run_tag(&run, &key).await.unwrap();
    assert!(
        !t.get_run(&run)
            .await
            .unwrap()
            .data
            .tags
            .contains_key("stage")
    );
    assert!(
        t.delete_run_tag(&run, &key)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// MLflow's batch limits hold; a too-large batch changes nothing.
pub async fn batches_are_limited_and_atomic(t: &dyn Tracker) {
    let exp = new_experiment(t, "limits").await;
    let run = new_run(t, &exp).await;
    let mut big = LogBatch::new();
    for i in 0..1001 {
        big = big.metric(metric("m", f64::from(i), 1, i64::from(i)));
    }
    assert!(
        t.log_batch(&run, big)
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    let mut params = LogBatch::new();
    for i in 0..101 {
        params = params.param(param(&format!("p{i}"), "v"));
    }
    assert!(
        t.log_batch(&run, params)
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    let r = t.get_run(&run).await.unwrap();
    assert!(r.data.metrics.is_empty() && r.data.params.is_empty());
    let mut ok = LogBatch::new();
    for i in 0..1000 {
        ok = ok.metric(metric("m", f64::from(i), 1, i64::from(i)));
    }
    t.log_batch(&run, ok).await.unwrap();
    assert_eq!(
        t.metric_history(&run, &"m".parse().unwrap())
            .await
            .unwrap()
            .len(),
        1000
    );
}

/// Filters, `order_by` and pagination behave as MLflow's.
pub async fn search_filters_orders_and_pages(t: &dyn Tracker) {
    let exp = new_experiment(t, "search").await;
    let mut ids = Vec::new();
    for i in 0..12i64 {
        let run = t
            .create_run(
                CreateRunOptions::default()
                    .in_experiment(exp.clone())
                    .with_name(format!("trial-{i:02}"))
                    .with_start_time(10_000 + i),
            )
            .await
            .unwrap()
            .info
            .run_id;
        let model = if i % 2 == 0 { "mlp" } else { "logistic" };
        t.log_batch(
            &run,
            LogBatch::new()
                .metric(metric("acc", 0.5 + i as f64 / 100.0, 1, 0))
                .param(param("model", model))
                .tag(tag("parity", if i % 2 == 0 { "even" } else { "odd" })),
        )
        .await
        .unwrap();
        ids.push(run);
    }
    let search = |filter: Option<&str>, order: &[&str]| {
        let mut o = SearchRunsOptions::default().in_experiment(exp.clone());
        if let Some(f) = filter {
            o = o.with_filter(f);
        }
        for item in order {
            o = o.order_by(*item);
        }
        async move { t.search_all_runs(o).await.unwrap() }
    };
    let all = search(None, &[]).await;
    assert_eq!(all.len(), 12);
    // Natural order: start_time DESC.
    assert_eq!(all[0].info.run_id, ids[11]);
    let mlp = search(Some("params.model = 'mlp' AND metrics.acc >= 0.55"), &[]).await;
    assert_eq!(
        mlp.iter()
            .map(|r| r.info.run_name.as_str())
            .collect::<Vec<_>>(),
        vec!["trial-10", "trial-08", "trial-06"]
    );
    let like = search(
        Some("attributes.run_name LIKE 'trial-0%' AND tags.parity = 'odd'"),
        &[],
    )
    .await;
    assert_eq!(like.len(), 5);
    let by_acc = search(None, &["metrics.acc ASC"]).await;
    assert_eq!(by_acc[0].info.run_id, ids[0]);
    let by_param = search(None, &["params.model DESC", "metrics.acc DESC"]).await;
    assert_eq!(
        by_param[0].info.run_id, ids[10],
        "mlp > logistic, then acc desc"
    );
    let picked = format!("run_id IN ('{}', '{}')", ids[3], ids[4]);
    assert_eq!(search(Some(&picked), &[]).await.len(), 2);

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = t
            .search_runs(
                SearchRunsOptions::default()
                    .in_experiment(exp.clone())
                    .with_max_results(5)
                    .with_page_token(token.clone()),
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 5);
        seen.extend(page.items.into_iter().map(|r| r.info.run_id));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12, "pages cover every run once");
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 12, "no run appears on two pages");

    let bad = t
        .search_runs(SearchRunsOptions::default().with_filter("metrics.acc > 'x'"))
        .await
        .unwrap_err();
    assert!(bad.is_invalid_argument());
}

/// Deleted runs leave default searches, reject writes, and come back on restore.
pub async fn runs_soft_delete_and_restore(t: &dyn Tracker) {
    let exp = new_experiment(t, "rundel").await;
    let keep = new_run(t, &exp).await;
    let gone = new_run(t, &exp).await;
    t.set_run_lifecycle(&gone, LifecycleStage::Deleted)
        .await
        .unwrap();
    let search = |view: ViewType| {
        let o = SearchRunsOptions::default()
            .in_experiment(exp.clone())
            .with_view_type(view);
        async move {
            t.search_all_runs(o)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.info.run_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search(ViewType::ActiveOnly).await, vec![keep.clone()]);
    assert_eq!(search(ViewType::DeletedOnly).await, vec![gone.clone()]);
    assert_eq!(search(ViewType::All).await.len(), 2);
    assert_eq!(
        t.get_run(&gone).await.unwrap().info.lifecycle_stage,
        LifecycleStage::Deleted
    );
    assert!(
        t.log_metric(&gone, "m", 1.0, 0)
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    t.set_run_lifecycle(&gone, LifecycleStage::Active)
        .await
        .unwrap();
    t.log_metric(&gone, "m", 1.0, 0).await.unwrap();
    assert_eq!(search(ViewType::ActiveOnly).await.len(), 2);
}

/// Deleted experiments keep their name, take no runs, hide their runs, and restore.
pub async fn experiments_soft_delete_and_restore(t: &dyn Tracker) {
    let name = exp_name("expdel");
    let exp = t
        .create_experiment(&name, CreateExperimentOptions::default())
        .await
        .unwrap();
    let run = new_run(t, &exp).await;
    t.set_experiment_lifecycle(&exp, LifecycleStage::Deleted)
        .await
        .unwrap();
    assert_eq!(
        t.get_experiment(&exp).await.unwrap().lifecycle_stage,
        LifecycleStage::Deleted
    );
    assert!(
        t.create_experiment(&name, CreateExperimentOptions::default())
            .await
            .unwrap_err()
            .is_already_exists(),
        "a deleted experiment's name stays taken"
    );
    assert!(
        t.create_run(CreateRunOptions::default().in_experiment(exp.clone()))
            .await
            .unwrap_err()
            .is_invalid_argument()
    );
    let active = t
        .search_all_runs(SearchRunsOptions::default().in_experiment(exp.clone()))
        .await
        .unwrap();
    assert!(
        active.is_empty(),
        "runs of a deleted experiment are deleted too"
    );
    let filter = format!("name = '{name}'");
    let listed = t
        .search_experiments(SearchExperimentsOptions::default().with_filter(filter.clone()))
        .await
        .unwrap();
    assert!(
        listed.items.is_empty(),
        "deleted experiments are hidden by default"
    );
    let deleted = t
        .search_experiments(
            SearchExperimentsOptions::default()
                .with_filter(filter)
                .with_view_type(ViewType::DeletedOnly),
        )
        .await
        .unwrap();
    assert_eq!(deleted.items.len(), 1);
    t.set_experiment_lifecycle(&exp, LifecycleStage::Active)
        .await
        .unwrap();
    assert_eq!(
        t.get_run(&run).await.unwrap().info.lifecycle_stage,
        LifecycleStage::Active
    );
}

/// A child run carries `mlflow.parentRunId` and is searchable by it.
pub async fn parent_runs_are_tagged(t: &dyn Tracker) {
    let exp = new_experiment(t, "nested").await;
    let parent = new_run(t, &exp).await;
    for _ in 0..3 {
        t.create_run(
            CreateRunOptions::default()
                .in_experiment(exp.clone())
                .with_parent(parent.clone()),
        )
        .await
        .unwrap();
    }
    let filter = format!("tags.`mlflow.parentRunId` = '{parent}'");
    let children = t
        .search_all_runs(
            SearchRunsOptions::default()
                .in_experiment(exp.clone())
                .with_filter(filter),
        )
        .await
        .unwrap();
    assert_eq!(children.len(), 3);
    assert!(
        children
            .iter()
            .all(|c| c.parent_run_id() == Some(parent.as_str()))
    );
    let missing = t
        .create_run(CreateRunOptions::default().with_parent(RunId::generate()))
        .await
        .unwrap_err();
    assert!(
        missing.is_not_found(),
        "a missing parent is NotFound: {missing}"
    );
}

/// Dataset inputs are kept once each and searchable with `datasets.`.
pub async fn dataset_inputs_are_recorded_and_searchable(t: &dyn Tracker) {
    let exp = new_experiment(t, "inputs").await;
    let run = new_run(t, &exp).await;
    let name = unique("churn");
    let input = DatasetInput {
        dataset: Dataset {
            name: name.clone(),
            digest: "0f1e2d3c".into(),
            source_type: "mlops-store".into(),
            source: format!("datasets/{name}@1"),
            schema: None,
            profile: Some(r#"{"rows": 100}"#.into()),
        },
        tags: BTreeMap::from([(tags::DATASET_CONTEXT.to_owned(), "training".to_owned())]),
    };
    t.log_inputs(&run, vec![input.clone()]).await.unwrap();
    t.log_inputs(&run, vec![input.clone()]).await.unwrap();
    let r = t.get_run(&run).await.unwrap();
    assert_eq!(r.inputs.dataset_inputs, vec![input]);
    let filter = format!("datasets.name = '{name}' AND datasets.context = 'training'");
    let hits = t
        .search_all_runs(
            SearchRunsOptions::default()
                .in_experiment(exp)
                .with_filter(filter),
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

/// Artifacts read back byte for byte and list by prefix.
pub async fn artifacts_round_trip(t: &dyn Tracker) {
    let exp = new_experiment(t, "artifacts").await;
    let run = new_run(t, &exp).await;
    let path = |p: &str| -> ArtifactPath { p.parse().unwrap() };
    let weights = Bytes::from_static(b"\x00\x01weights");
    let info = t
        .put_artifact(&run, &path("model/weights.safetensors"), weights.clone())
        .await
        .unwrap();
    assert_eq!(info.size, weights.len() as u64);
    assert_eq!(info.digest, mlops_core::Digest::of(&weights));
    t.put_artifact(&run, &path("model/card.json"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    t.put_artifact(&run, &path("report.html"), Bytes::from_static(b"<html>"))
        .await
        .unwrap();
    assert_eq!(
        t.get_artifact(&run, &path("model/weights.safetensors"))
            .await
            .unwrap(),
        weights
    );
    let listed: Vec<String> = t
        .list_artifacts(&run, Some(&path("model")))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.path.into_string())
        .collect();
    assert_eq!(listed, vec!["model/card.json", "model/weights.safetensors"]);
    assert_eq!(t.list_artifacts(&run, None).await.unwrap().len(), 3);
}

/// Sixteen threads logging into one run and into their own runs lose nothing.
pub async fn concurrent_logging_loses_nothing(t: &dyn Tracker) {
    let exp = new_experiment(t, "concurrent").await;
    let shared = new_run(t, &exp).await;
    let own = in_parallel(16, |i| {
        let (shared, exp) = (shared.clone(), exp.clone());
        async move {
            let mine = new_run(t, &exp).await;
            for step in 0..50 {
                t.log_metric(&shared, "shared", i as f64, step)
                    .await
                    .unwrap();
                t.log_metric(&mine, "own", step as f64, step).await.unwrap();
            }
            t.log_param(&mine, "worker", &i.to_string()).await.unwrap();
            t.flush().await.unwrap();
            mine
        }
    });
    let history = t
        .metric_history(&shared, &"shared".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(history.len(), 16 * 50, "every concurrent metric is kept");
    for (i, run) in own.iter().enumerate() {
        let r = t.get_run(run).await.unwrap();
        assert_eq!(r.data.params.get("worker"), Some(&i.to_string()));
        assert_eq!(
            t.metric_history(run, &"own".parse().unwrap())
                .await
                .unwrap()
                .len(),
            50
        );
    }
}
