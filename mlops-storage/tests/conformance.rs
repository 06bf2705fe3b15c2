//! The in-memory implementations pass every conformance suite, directly and through `Arc<dyn …>`
//! and `Box<dyn …>`.

use std::sync::Arc;

use mlops_core::{Registry, Store, Tracker};
use mlops_storage::{MemoryRegistry, MemoryStore, MemoryTracker};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_store_suite() {
    let store = Arc::new(MemoryStore::new());
    let hook = store.clone();
    mlops_testkit::store::run_all(store.as_ref(), &move |d| hook.tamper_with(d)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arc_dyn_store_passes_the_store_suite() {
    let inner = Arc::new(MemoryStore::new());
    let hook = inner.clone();
    let store: Arc<dyn Store> = inner;
    mlops_testkit::store::run_all(&store, &move |d| hook.tamper_with(d)).await;
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
