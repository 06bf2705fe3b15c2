//! The in-memory implementations pass every conformance suite, directly and through `Arc<dyn …>`
//! and `Box<dyn …>`.

// Test helpers may panic: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::FutureExt;
use mlops_core::{Digest, Registry, Store, Tracker};
use mlops_storage::{
    MemoryRegistry, MemoryStore, MemoryTracker, ObjectStoreStore, StoreRegistry, StoreTracker,
    StoreTrackerOptions,
};

fn memory_hook(
    store: Arc<MemoryStore>,
) -> impl Fn(Digest) -> futures::future::BoxFuture<'static, bool> {
    move |d| {
        let store = store.clone();
        async move { store.tamper_with(&d) }.boxed()
    }
}

fn object_hook(
    store: Arc<ObjectStoreStore>,
) -> impl Fn(Digest) -> futures::future::BoxFuture<'static, bool> {
    move |d| {
        let store = store.clone();
        async move { store.tamper_with(&d).await }.boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_store_on_memory_passes_the_store_suite() {
    let store = Arc::new(ObjectStoreStore::open("memory://", &[]).unwrap());
    mlops_testkit::store::run_all(store.as_ref(), &object_hook(store.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_store_on_a_local_directory_passes_the_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("store");
    let store = Arc::new(ObjectStoreStore::open(url.to_str().unwrap(), &[]).unwrap());
    mlops_testkit::store::run_all(store.as_ref(), &object_hook(store.clone())).await;
    // Through Arc<dyn Store>, on a second store over the same directory: it sees the first's data.
    let again: Arc<dyn Store> =
        Arc::new(ObjectStoreStore::open(url.to_str().unwrap(), &[]).unwrap());
    assert!(!again.list_refs(None).await.unwrap().is_empty());
    let hook = Arc::new(ObjectStoreStore::open(url.to_str().unwrap(), &[]).unwrap());
    mlops_testkit::store::run_all(&again, &object_hook(hook)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_store_suite() {
    let store = Arc::new(MemoryStore::new());
    mlops_testkit::store::run_all(store.as_ref(), &memory_hook(store.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arc_dyn_store_passes_the_store_suite() {
    let inner = Arc::new(MemoryStore::new());
    let hook = memory_hook(inner.clone());
    let store: Arc<dyn Store> = inner;
    mlops_testkit::store::run_all(&store, &hook).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_tracker_passes_the_tracker_suite() {
    mlops_testkit::tracker::run_all(&MemoryTracker::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arc_and_box_dyn_tracker_pass_the_tracker_suite() {
    let arc: Arc<dyn Tracker> = Arc::new(MemoryTracker::new());
    mlops_testkit::tracker::run_all(&arc).await;
    let boxed: Box<dyn Tracker> = Box::new(MemoryTracker::new());
    mlops_testkit::tracker::run_all(&boxed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_registry_passes_the_registry_suite() {
    mlops_testkit::registry::run_all(&MemoryRegistry::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arc_and_box_dyn_registry_pass_the_registry_suite() {
    let arc: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    mlops_testkit::registry::run_all(&arc).await;
    let boxed: Box<dyn Registry> = Box::new(MemoryRegistry::new());
    mlops_testkit::registry::run_all(&boxed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_registry_on_a_local_directory_passes_the_registry_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap());
    let registry = StoreRegistry::new(store.clone());
    mlops_testkit::registry::run_all(&registry).await;
    // A second registry over the same directory sees everything, through Arc<dyn Registry>.
    let again: Arc<dyn Registry> = Arc::new(StoreRegistry::new(store));
    let page = again
        .search_registered_models(mlops_core::registry::SearchRegistryOptions::default())
        .await
        .unwrap();
    assert!(!page.items.is_empty());
    let fresh = Arc::new(ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap());
    let report = mlops_storage::verify(fresh).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.models >= 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_registry_on_memory_passes_the_registry_suite() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    mlops_testkit::registry::run_all(&StoreRegistry::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_tracker_on_a_local_directory_passes_the_tracker_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(ObjectStoreStore::open(dir.path().to_str().unwrap(), &[]).unwrap());
    let tracker = StoreTracker::open(store.clone(), StoreTrackerOptions::default())
        .await
        .unwrap();
    mlops_testkit::tracker::run_all(&tracker).await;
    tracker.flush().await.unwrap();
    // A second tracker over the same directory replays everything the first flushed.
    let reader: Arc<dyn Tracker> = Arc::new(
        StoreTracker::open(store.clone(), StoreTrackerOptions::default())
            .await
            .unwrap(),
    );
    let all = mlops_core::TrackerExt::search_all_runs(
        &reader,
        mlops_core::tracker::SearchRunsOptions::default().with_view_type(mlops_core::ViewType::All),
    )
    .await
    .unwrap();
    let mine = mlops_core::TrackerExt::search_all_runs(
        &tracker,
        mlops_core::tracker::SearchRunsOptions::default().with_view_type(mlops_core::ViewType::All),
    )
    .await
    .unwrap();
    assert_eq!(all.len(), mine.len());
    assert_eq!(
        all, mine,
        "a fresh tracker sees exactly what the writer sees"
    );
    let report = mlops_storage::verify(store.clone()).await.unwrap();
    assert!(report.is_ok() && report.runs == all.len(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_tracker_on_memory_passes_the_tracker_suite() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let options = StoreTrackerOptions::default()
        .with_flush_interval(Some(std::time::Duration::from_millis(5)));
    let tracker = StoreTracker::open(store, options).await.unwrap();
    mlops_testkit::tracker::run_all(&tracker).await;
}
