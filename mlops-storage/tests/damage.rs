//! Damage to a store costs only what it holds, `verify` finds it — including what only shows in
//! what refers to what — and `repair` makes the rest usable again without losing anything
//! readable. Each test damages a local store's files the way a partial restore, a bad disk or a
//! stray `rm` would.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use mlops_core::registry::{CreateVersionOptions, DatasetLineage, Lineage};
use mlops_core::store::RefVersion;
use mlops_core::tracker::{CreateRunOptions, SearchRunsOptions};
use mlops_core::{
    Digest, ExperimentId, Registry, RunId, Store, Tracker, TrackerExt, Version, ViewType,
};
use mlops_storage::{
    Datasets, ObjectStoreStore, StoreRegistry, StoreTracker, StoreTrackerOptions, WriteOptions,
    repair, verify,
};

fn store_at(dir: &Path) -> Arc<dyn Store> {
    Arc::new(ObjectStoreStore::open(dir.to_str().unwrap(), &[]).unwrap())
}

async fn tracker(store: &Arc<dyn Store>) -> StoreTracker {
    StoreTracker::open(
        store.clone(),
        StoreTrackerOptions::default().with_flush_interval(None),
    )
    .await
    .unwrap()
}

async fn all_runs(t: &StoreTracker) -> Vec<mlops_core::Run> {
    t.search_all_runs(SearchRunsOptions::default().with_view_type(ViewType::All))
        .await
        .unwrap()
}

async fn run_in(t: &StoreTracker, experiment: &ExperimentId, name: &str) -> RunId {
    let run = t
        .create_run(
            CreateRunOptions::default()
                .in_experiment(experiment.clone())
                .with_name(name),
        )
        .await
        .unwrap()
        .info
        .run_id;
    t.log_metric(&run, "loss", 0.5, 0).await.unwrap();
    run
}

/// A store whose one tracker log holds a segment per run: runs `r0`, `r1`, … in experiment `e`.
async fn one_segment_per_run(root: &Path, runs: usize) -> (Arc<dyn Store>, ExperimentId) {
    let store = store_at(root);
    let t = tracker(&store).await;
    let exp = t
        .get_or_create_experiment(&"e".parse().unwrap())
        .await
        .unwrap();
    for i in 0..runs {
        run_in(&t, &exp, &format!("r{i}")).await;
        t.flush().await.unwrap();
    }
    (store, exp)
}

/// The one writer log under `refs/tracker/segments`, and its version records in order.
fn segment_records(root: &Path) -> (String, Vec<PathBuf>) {
    let logs: Vec<_> = std::fs::read_dir(root.join("refs/tracker/segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let dir = root.join("refs/tracker/segments").join(&logs[0]).join(".v");
    let mut records: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    records.sort();
    (logs[0].clone(), records)
}

#[tokio::test]
async fn a_lost_experiment_record_hides_runs_until_repair_recreates_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    let t = tracker(&store).await;
    let lost = t
        .get_or_create_experiment(&"lost".parse().unwrap())
        .await
        .unwrap();
    let kept = t
        .get_or_create_experiment(&"kept".parse().unwrap())
        .await
        .unwrap();
    for i in 0..15 {
        run_in(&t, &lost, &format!("l{i}")).await;
    }
    for i in 0..2 {
        run_in(&t, &kept, &format!("k{i}")).await;
    }
    t.flush().await.unwrap();
    drop(t);
    assert!(verify(store.clone()).await.unwrap().is_ok());

    // The experiment's ref directory goes (records and marker alike).
    let hex = Digest::of(b"lost").to_hex();
    let ref_dir = dir.path().join("refs/tracker/experiments").join(&hex[..32]);
    assert!(ref_dir.is_dir(), "{}", ref_dir.display());
    std::fs::remove_dir_all(&ref_dir).unwrap();

    // Tracking still works; the hidden runs are reported, not silently gone.
    let t = tracker(&store).await;
    assert_eq!(all_runs(&t).await.len(), 2);
    let damage = t.damage();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0].experiment.as_ref(), Some(&lost));
    assert!(damage[0].problem.contains("15 run(s)"), "{damage:?}");
    // Compacting now would fold the hidden runs out of every later replay: refused.
    let err = t.compact().await.unwrap_err();
    assert!(
        err.is_corrupt() && err.to_string().contains("repair"),
        "{err}"
    );
    drop(t);
    let report = verify(store.clone()).await.unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("experiment {lost}")) && p.contains("15 run(s)")),
        "{report:?}"
    );

    let repaired = repair(store.clone()).await.unwrap();
    assert_eq!(repaired.recovered.len(), 1, "{repaired:?}");
    assert!(repaired.quarantined.is_empty(), "{repaired:?}");
    assert!(repaired.after.is_ok(), "{:?}", repaired.after);
    assert_eq!(repaired.after.runs, 17);

    let t = tracker(&store).await;
    assert!(t.damage().is_empty());
    let runs = all_runs(&t).await;
    assert_eq!(runs.len(), 17);
    let recovered = t
        .get_experiment_by_name(&format!("recovered-experiment-{lost}").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(recovered.experiment_id, lost);
    assert!(recovered.tags.contains_key("mlops.recovered"));
    let in_recovered: Vec<_> = runs
        .iter()
        .filter(|r| r.info.experiment_id == lost)
        .collect();
    assert_eq!(in_recovered.len(), 15);
    assert!(
        in_recovered
            .iter()
            .all(|r| r.data.metrics.keys().any(|k| k.as_str() == "loss")),
        "their metrics come back with them"
    );
    // And they can be written to again.
    let id = in_recovered[0].info.run_id.clone();
    t.log_metric(&id, "loss", 0.25, 1).await.unwrap();
    t.flush().await.unwrap();
    assert!(verify(store.clone()).await.unwrap().is_ok());
}

/// What each kind of segment damage looks like, and that repair quarantines it for good.
async fn damaged_segment_case(damage: impl FnOnce(&Path, &str, &[PathBuf])) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (store, exp) = one_segment_per_run(dir.path(), 3).await;
    let (writer, records) = segment_records(dir.path());
    assert_eq!(records.len(), 3, "one segment per run's flush: {records:?}");
    damage(dir.path(), &writer, &records);

    // The tracker opens; what is left replays; the damage is reported.
    let t = tracker(&store).await;
    let visible: Vec<String> = all_runs(&t)
        .await
        .into_iter()
        .map(|r| r.info.run_name)
        .collect();
    let found = t.damage();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].at.contains(&writer), "{found:?}");
    drop(t);
    let report = verify(store.clone()).await.unwrap();
    assert!(!report.is_ok(), "{report:?}");
    assert!(
        report.problems.iter().any(|p| p.contains(&writer)),
        "{report:?}"
    );

    let repaired = repair(store.clone()).await.unwrap();
    assert!(!repaired.quarantined.is_empty(), "{repaired:?}");
    assert!(repaired.after.is_ok(), "{:?}", repaired.after);
    assert!(
        repaired
            .after
            .quarantined
            .iter()
            .any(|q| q.contains(&writer)),
        "{:?}",
        repaired.after
    );
    // Quarantined damage is known: a tracker opened later replays without a report, and a
    // second repair has nothing to do.
    let t = tracker(&store).await;
    assert!(t.damage().is_empty(), "{:?}", t.damage());
    let again: Vec<String> = all_runs(&t)
        .await
        .into_iter()
        .map(|r| r.info.run_name)
        .collect();
    assert_eq!(again.len(), visible.len());
    // New runs still go in (a fresh writer log).
    run_in(&t, &exp, "after").await;
    t.flush().await.unwrap();
    drop(t);
    let second = repair(store.clone()).await.unwrap();
    assert!(second.quarantined.is_empty() && second.recovered.is_empty());
    assert!(second.after.is_ok(), "{:?}", second.after);
    let mut visible = visible;
    visible.sort();
    visible
}

#[tokio::test]
async fn a_truncated_segment_blob_costs_only_its_own_runs() {
    let visible = damaged_segment_case(|root, _, records| {
        // The segment of the second run's flush: find its blob through the commit record.
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&records[1]).unwrap()).unwrap();
        let target = record["target"].as_str().unwrap().to_owned();
        let blob = root.join("blobs").join(&target[..2]).join(&target);
        let bytes = std::fs::read(&blob).unwrap();
        std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
    })
    .await;
    assert_eq!(visible, ["r0", "r2"]);
}

#[tokio::test]
async fn a_missing_middle_segment_record_costs_only_its_own_runs() {
    let visible = damaged_segment_case(|_, _, records| {
        std::fs::remove_file(&records[1]).unwrap();
    })
    .await;
    assert_eq!(visible, ["r0", "r2"]);
}

#[tokio::test]
async fn a_lost_newest_segment_record_keeps_everything_before_it() {
    let visible = damaged_segment_case(|_, _, records| {
        std::fs::remove_file(records.last().unwrap()).unwrap();
    })
    .await;
    assert_eq!(visible, ["r0", "r1"]);
}

fn numbers(values: &[i64]) -> (Arc<Schema>, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(values.to_vec())) as ArrayRef],
    )
    .unwrap();
    (schema, batch)
}

#[tokio::test]
async fn a_reused_dataset_version_shows_in_the_lineage_of_models_trained_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    let datasets = Datasets::new(store.clone());
    let name = "churn".parse().unwrap();
    let mut trained_on = Vec::new();
    for values in [[1, 2], [3, 4]] {
        let (schema, batch) = numbers(&values);
        let v = datasets
            .write(
                &name,
                schema,
                futures::stream::iter([Ok(batch)]),
                WriteOptions::default(),
            )
            .await
            .unwrap();
        trained_on.push(v);
    }
    let registry = StoreRegistry::new(store.clone());
    let model = "churn-model".parse().unwrap();
    registry
        .create_registered_model(&model, Default::default())
        .await
        .unwrap();
    let newest = &trained_on[1];
    registry
        .create_model_version(
            &model,
            CreateVersionOptions::new("file:///m").with_lineage(Lineage {
                datasets: vec![DatasetLineage {
                    name: newest.name.clone(),
                    version: newest.version,
                    digest: newest.digest,
                }],
                ..Lineage::default()
            }),
        )
        .await
        .unwrap();
    assert!(verify(store.clone()).await.unwrap().is_ok());

    // A partial restore loses version 2's record and its head marker: nothing in the ref
    // itself shows it, and the next put takes number 2 for other content.
    let v_dir = dir.path().join("refs/datasets/churn/.v");
    std::fs::remove_file(v_dir.join(format!("{:020}.json", 2))).unwrap();
    std::fs::remove_file(v_dir.join(format!("head-{:020}", 2))).unwrap();
    let (schema, batch) = numbers(&[5, 6, 7]);
    let reused = datasets
        .write(
            &name,
            schema,
            futures::stream::iter([Ok(batch)]),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(reused.version, Version::new(2).unwrap());
    assert_ne!(reused.digest, newest.digest);

    let report = verify(store.clone()).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("churn-model@1") && p.contains("churn@2") && p.contains("reused")),
        "{report:?}"
    );
    // Nothing repair can do brings the old content's number back: it stays a problem.
    let repaired = repair(store.clone()).await.unwrap();
    assert!(!repaired.after.is_ok());
}

#[tokio::test]
async fn a_lost_newest_registry_record_is_loud_not_a_silent_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    let registry = StoreRegistry::new(store.clone());
    let model = "churn".parse().unwrap();
    let champion = "champion".parse().unwrap();
    registry
        .create_registered_model(&model, Default::default())
        .await
        .unwrap();
    for _ in 0..2 {
        registry
            .create_model_version(&model, CreateVersionOptions::new("file:///m"))
            .await
            .unwrap();
    }
    registry
        .set_alias(&model, &champion, Version::new(1).unwrap())
        .await
        .unwrap();
    registry
        .set_alias(&model, &champion, Version::new(2).unwrap())
        .await
        .unwrap();
    assert!(verify(store.clone()).await.unwrap().is_ok());

    // The newest document record goes; the one before has champion at version 1.
    let refs = dir.path().join("refs");
    let mut v_dirs = Vec::new();
    for e in walk(&refs) {
        if e.ends_with(".v") && e.to_string_lossy().contains("churn") {
            v_dirs.push(e);
        }
    }
    assert_eq!(v_dirs.len(), 1, "{v_dirs:?}");
    let mut records: Vec<PathBuf> = std::fs::read_dir(&v_dirs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    records.sort();
    std::fs::remove_file(records.last().unwrap()).unwrap();

    let err = registry
        .get_version_by_alias(&model, &champion)
        .await
        .unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    let err = registry
        .set_alias(&model, &champion, Version::new(1).unwrap())
        .await
        .unwrap_err();
    assert!(err.is_corrupt(), "no write on top of the loss: {err}");
    let report = verify(store.clone()).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("churn") && p.contains("records were lost")),
        "{report:?}"
    );
    // Also through a ref read by exact version: the older records are all still there.
    let r = mlops_core::RefName::new(
        v_dirs[0]
            .parent()
            .unwrap()
            .strip_prefix(&refs)
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    store
        .get_ref(&r, RefVersion::Exact(Version::FIRST))
        .await
        .unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push(p.clone());
            out.extend(walk(&p));
        }
    }
    out
}

fn blob_of(root: &Path, record: &Path) -> PathBuf {
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    let target = record["target"].as_str().unwrap().to_owned();
    root.join("blobs").join(&target[..2]).join(&target)
}

/// Several kinds of damage in one log — a missing record (a gap), a missing blob and a lost
/// tail — each cost only their own segment: everything between them still replays.
#[tokio::test]
async fn a_gap_a_missing_blob_and_a_lost_tail_cost_only_their_own_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = one_segment_per_run(dir.path(), 5).await;
    let (writer, records) = segment_records(dir.path());
    assert_eq!(records.len(), 5);
    std::fs::remove_file(&records[1]).unwrap();
    std::fs::remove_file(blob_of(dir.path(), &records[2])).unwrap();
    std::fs::remove_file(&records[4]).unwrap();

    let t = tracker(&store).await;
    let mut visible: Vec<String> = all_runs(&t)
        .await
        .into_iter()
        .map(|r| r.info.run_name)
        .collect();
    visible.sort();
    assert_eq!(visible, ["r0", "r3"]);
    let mut at: Vec<String> = t.damage().into_iter().map(|d| d.at).collect();
    at.sort();
    let log = format!("tracker/segments/{writer}");
    assert_eq!(at, [log.clone(), format!("{log}@2"), format!("{log}@3")]);
    drop(t);
    let report = verify(store.clone()).await.unwrap();
    for needle in [
        format!("{log}@2"),
        format!("{log}@3"),
        "records were lost".to_owned(),
    ] {
        assert!(
            report.problems.iter().any(|p| p.contains(&needle)),
            "{needle}: {report:?}"
        );
    }
    let repaired = repair(store.clone()).await.unwrap();
    assert!(repaired.after.is_ok(), "{:?}", repaired.after);
    assert_eq!(repaired.quarantined.len(), 3, "{repaired:?}");
}

/// A damaged snapshot costs time, not data: every segment is replayed instead, the damage is
/// reported and repaired like any other, and compaction is refused while a replay skipped
/// something (it would make the loss permanent).
#[tokio::test]
async fn a_damaged_snapshot_falls_back_to_the_segments_and_damage_blocks_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    let t = tracker(&store).await;
    let exp = t
        .get_or_create_experiment(&"snap".parse().unwrap())
        .await
        .unwrap();
    for i in 0..3 {
        run_in(&t, &exp, &format!("s{i}")).await;
    }
    t.flush().await.unwrap();
    t.compact().await.unwrap();
    drop(t);
    // Every blob the snapshot's manifest names goes.
    let snap = store
        .get_ref(&"tracker/snapshots".parse().unwrap(), RefVersion::Latest)
        .await
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &mlops_core::store::StoreExt::get_bytes(&*store, &snap.target)
            .await
            .unwrap(),
    )
    .unwrap();
    let runs_blob = manifest["runs"].as_str().unwrap().to_owned();
    std::fs::remove_file(
        dir.path()
            .join("blobs")
            .join(&runs_blob[..2])
            .join(&runs_blob),
    )
    .unwrap();

    let t = tracker(&store).await;
    assert_eq!(all_runs(&t).await.len(), 3, "replayed from the segments");
    let damage = t.damage();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0].at, "tracker/snapshots@1");
    let err = t.compact().await.unwrap_err();
    assert!(
        err.is_corrupt() && err.to_string().contains("repair"),
        "{err}"
    );
    drop(t);
    assert!(!verify(store.clone()).await.unwrap().is_ok());
    let repaired = repair(store.clone()).await.unwrap();
    assert!(repaired.after.is_ok(), "{:?}", repaired.after);
    let t = tracker(&store).await;
    assert!(t.damage().is_empty());
    assert_eq!(all_runs(&t).await.len(), 3);
    t.compact().await.unwrap();
    drop(t);
    let t = tracker(&store).await;
    assert_eq!(all_runs(&t).await.len(), 3, "from the new snapshot");

    // The snapshot holds the experiments too: losing an experiment's ref now hides nothing.
    let hex = Digest::of(b"snap").to_hex();
    std::fs::remove_dir_all(dir.path().join("refs/tracker/experiments").join(&hex[..32])).unwrap();
    drop(t);
    let t = tracker(&store).await;
    assert_eq!(all_runs(&t).await.len(), 3);
    assert!(t.damage().is_empty(), "{:?}", t.damage());
}

/// A change one process makes to a run another process created (`mlops runs end` on a killed
/// training's run) survives replay whatever order the two logs are replayed in: logs replay by
/// writer id, which is random, so the change may come before the run's creation.
#[tokio::test]
async fn a_change_to_another_writers_run_survives_any_replay_order() {
    for _ in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(dir.path());
        let creator = tracker(&store).await;
        let exp = creator
            .get_or_create_experiment(&"e".parse().unwrap())
            .await
            .unwrap();
        let run = run_in(&creator, &exp, "r").await;
        creator.flush().await.unwrap();
        drop(creator);
        let ender = tracker(&store).await;
        ender
            .end_run(&run, mlops_core::RunStatus::Killed)
            .await
            .unwrap();
        drop(ender);
        let reader = tracker(&store).await;
        let r = reader.get_run(&run).await.unwrap();
        assert_eq!(r.info.status, mlops_core::RunStatus::Killed);
        assert!(r.data.metrics.keys().any(|k| k.as_str() == "loss"));
    }
}
