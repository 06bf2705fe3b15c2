#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `StoreTrackerOptions::refresh_interval`: a reader sees other writers' runs at most that late,
//! and its own writes at once.

use std::sync::Arc;
use std::time::Duration;

use mlops_core::tracker::{CreateRunOptions, SearchRunsOptions};
use mlops_core::{Store, Tracker};
use mlops_storage::{MemoryStore, StoreTracker, StoreTrackerOptions};

async fn count(t: &StoreTracker) -> usize {
    t.search_runs(SearchRunsOptions::default())
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn other_writers_show_up_within_the_interval_own_writes_at_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let quiet = StoreTrackerOptions::default().with_flush_interval(None);
    let writer = StoreTracker::open(store.clone(), quiet.clone())
        .await
        .unwrap();
    let reader = StoreTracker::open(
        store.clone(),
        quiet
            .clone()
            .with_refresh_interval(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let always = StoreTracker::open(store.clone(), quiet).await.unwrap();
    assert_eq!(count(&reader).await, 0, "the first read replays");

    writer
        .create_run(CreateRunOptions::default())
        .await
        .unwrap();
    writer.flush().await.unwrap();
    assert_eq!(count(&always).await, 1, "the default reads are current");
    assert_eq!(
        count(&reader).await,
        0,
        "within the interval the reader has not replayed"
    );

    reader
        .create_run(CreateRunOptions::default())
        .await
        .unwrap();
    assert_eq!(count(&reader).await, 1, "its own write is visible at once");

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(count(&reader).await, 2, "after the interval it replays");
}
