//! # mlops-storage
//!
//! Implementations of the storage-side traits of [`mlops_core`]: [`Store`](mlops_core::Store),
//! [`Tracker`](mlops_core::Tracker) and [`Registry`](mlops_core::Registry), and what is built on
//! them.
//!
//! | type | what |
//! |---|---|
//! | [`ObjectStoreStore`] | the durable `Store` over any object_store backend, by URL ([`StoreUrl`]): a local directory (default `./mlops-data`), `memory://`, `s3://`, `az://`, `gs://`; verified (ranged) reads, CAS refs, [`gc`](ObjectStoreStore::gc) |
//! | [`Datasets`] | versioned Parquet datasets with manifests and column statistics |
//! | [`Artifacts`] | directory trees (model folders) as manifests of blobs |
//! | [`StoreTracker`], [`StoreRegistry`] | a log-structured tracker and a registry on any `Store` |
//! | [`verify`] | an fsck for any `Store` |
//! | [`MemoryStore`], [`MemoryTracker`], [`MemoryRegistry`] | the in-memory reference semantics every backend must match |
//!
//! Every implementation passes `mlops_testkit`'s suites. MLflow's REST API, its file layout and
//! replication into another tracker live in `mlops-mlflow`.
//!
//! ## Example
//!
//! ```
//! use mlops_core::{RunStatus, TrackerExt, tracker::CreateRunOptions, Tracker};
//! use mlops_storage::MemoryTracker;
//!
//! # futures::executor::block_on(async {
//! let tracker = MemoryTracker::new();
//! let exp = tracker.get_or_create_experiment(&"churn".parse()?).await?;
//! let run = tracker.create_run(CreateRunOptions::default().in_experiment(exp)).await?;
//! let id = &run.info.run_id;
//! tracker.log_param(id, "lr", "0.01").await?;
//! for step in 0..3 {
//!     tracker.log_metric(id, "loss", 1.0 / (step + 1) as f64, step).await?;
//! }
//! tracker.end_run(id, RunStatus::Finished).await?;
//! let run = tracker.get_run(id).await?;
//! assert_eq!(run.metric("loss"), Some(1.0 / 3.0));
//! # Ok::<(), mlops_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `s3`, `azure`, `gcp` | cloud store URLs, with object_store's credential chains |

pub mod artifact;
pub mod dataset;
mod maintenance;
pub(crate) mod memory;
mod object;
mod ref_walk;
mod registry;
mod registry_state;
mod tracker;
mod tracker_snapshot;
mod tracker_state;

pub use artifact::{Artifacts, MODEL_SOURCE_PREFIX, StoredTree, Tree};
pub use dataset::{Datasets, ReadOptions, SchemaPolicy, WriteOptions};
pub use maintenance::{RepairReport, VerifyReport, repair, verify, verify_objects};
pub use memory::{MemoryRegistry, MemoryStore, MemoryTracker};
pub use object::{DEFAULT_STORE, GcOptions, GcReport, ObjectStoreStore, StoreUrl};
pub use registry::StoreRegistry;
pub use tracker::{
    CompactReport, QuarantineEntry, StoreTracker, StoreTrackerOptions, TrackerDamage,
    read_quarantine,
};
