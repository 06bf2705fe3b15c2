//! Compaction folds the segment logs into a Parquet snapshot; trackers opened later load it and
//! replay only newer segments, and see exactly what the writer sees.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mlops_core::tracker::{CreateRunOptions, SearchRunsOptions};
use mlops_core::{LifecycleStage, RunStatus, Store, Tag, Tracker, TrackerExt, ViewType};
use mlops_storage::{GcOptions, ObjectStoreStore, StoreTracker, StoreTrackerOptions, verify};

async fn open(store: &Arc<ObjectStoreStore>) -> StoreTracker {
    let store: Arc<dyn Store> = store.clone();
    StoreTracker::open(
        store,
        StoreTrackerOptions::default().with_flush_interval(None),
    )
    .await
    .unwrap()
}

async fn everything(t: &StoreTracker) -> Vec<mlops_core::Run> {
    let mut runs = t
        .search_all_runs(SearchRunsOptions::default().with_view_type(ViewType::All))
        .await
        .unwrap();
    runs.sort_by(|a, b| a.info.run_id.cmp(&b.info.run_id));
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackers_opened_after_compaction_see_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap());
    let a = open(&store).await;
    let exp = a
        .get_or_create_experiment(&"compacted".parse().unwrap())
        .await
        .unwrap();
    a.set_experiment_tag(&exp, Tag::new("team".parse().unwrap(), "ml").unwrap())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for r in 0..300 {
        let run = a
            .create_run(
                CreateRunOptions::default()
                    .in_experiment(exp.clone())
                    .with_name(format!("r{r}")),
            )
            .await
            .unwrap()
            .info
            .run_id;
        a.log_param(&run, "r", &r.to_string()).await.unwrap();
        for step in 0..5 {
            a.log_metric(&run, "loss", (r * 10 + step) as f64, step)
                .await
                .unwrap();
        }
        if r % 50 == 0 {
            a.flush().await.unwrap();
        }
        ids.push(run);
    }
    a.put_artifact(
        &ids[0],
        &"model/w.bin".parse().unwrap(),
        Bytes::from_static(b"weights"),
    )
    .await
    .unwrap();
    a.end_run(&ids[0], RunStatus::Finished).await.unwrap();
    a.set_run_lifecycle(&ids[1], LifecycleStage::Deleted)
        .await
        .unwrap();

    let report = a.compact().await.unwrap();
    assert_eq!(report.runs, 300);
    assert_eq!(report.metric_values, 1500);
    assert!(report.segments >= 6, "{report:?}");

    // Written after the snapshot: replayed on top of it.
    a.log_metric(&ids[2], "loss", -1.0, 99).await.unwrap();
    let late = a
        .create_run(CreateRunOptions::default().in_experiment(exp.clone()))
        .await
        .unwrap()
        .info
        .run_id;
    a.flush().await.unwrap();

    let b = open(&store).await;
    assert_eq!(
        everything(&b).await,
        everything(&a).await,
        "snapshot + newer segments = the writer's view"
    );
    assert_eq!(
        b.metric_history(&ids[2], &"loss".parse().unwrap())
            .await
            .unwrap()
            .len(),
        6
    );
    assert!(b.get_run(&late).await.is_ok());
    assert_eq!(
        b.get_experiment(&exp)
            .await
            .unwrap()
            .tags
            .get("team")
            .map(String::as_str),
        Some("ml")
    );
    assert_eq!(
        b.get_artifact(&ids[0], &"model/w.bin".parse().unwrap())
            .await
            .unwrap(),
        Bytes::from_static(b"weights")
    );

    // A second compaction, by another instance, then a third reader.
    b.compact().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store
        .gc(GcOptions::default().with_grace(Duration::ZERO))
        .await
        .unwrap();
    let c = open(&store).await;
    assert_eq!(everything(&c).await, everything(&a).await);
    assert_eq!(
        c.get_artifact(&ids[0], &"model/w.bin".parse().unwrap())
            .await
            .unwrap()
            .len(),
        7
    );
    assert!(verify(store.clone()).await.unwrap().is_ok());
}
