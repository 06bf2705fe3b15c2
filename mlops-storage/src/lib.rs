//! # mlops-storage
//!
//! Implementations of the storage-side traits of [`mlops_core`]: [`Store`](mlops_core::Store),
//! [`Tracker`](mlops_core::Tracker) and [`Registry`](mlops_core::Registry).
//!
//! Today it holds the **in-memory reference implementations** — [`MemoryStore`],
//! [`MemoryTracker`] and [`MemoryRegistry`]. They define the semantics every durable backend must
//! match (each passes `mlops_testkit`'s `run_all`), and they are what tests and examples use when
//! nothing needs to outlive the process.
//!
//! Next (see the project's issues): `ObjectStoreStore` over any `object_store` backend (local
//! directory by default, `memory://`, and `s3://`, `az://`, `gs://` behind the `s3`, `azure`,
//! `gcp` features), versioned Parquet datasets, a log-structured tracker and a registry on a
//! `Store`, and MLflow REST backends behind the `mlflow` feature.
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
//! None yet; `s3`, `azure`, `gcp` and `mlflow` arrive with the durable backends.

pub mod artifact;
pub mod dataset;
mod maintenance;
pub(crate) mod memory;
mod mlflow_files;
#[cfg(feature = "mlflow")]
mod mlflow_rest;
mod object;
mod registry;
mod registry_state;
mod replicate;
mod tracker;
mod tracker_snapshot;
mod tracker_state;

pub use artifact::{Artifacts, StoredTree, Tree};
pub use dataset::{Datasets, ReadOptions, SchemaPolicy, WriteOptions};
pub use maintenance::{VerifyReport, verify};
pub use memory::{MemoryRegistry, MemoryStore, MemoryTracker};
pub use mlflow_files::{
    IMPORTED_RUN_ID_TAG, MlflowExport, MlflowImport, export_mlflow, import_mlflow,
};
#[cfg(feature = "mlflow")]
pub use mlflow_rest::{MlflowClient, MlflowRegistry, MlflowTracker};
pub use object::{DEFAULT_STORE, GcOptions, GcReport, ObjectStoreStore, StoreUrl};
pub use registry::StoreRegistry;
pub use replicate::{REPLICA_OF_TAG, Replicator, SyncReport};
pub use tracker::{CompactReport, StoreTracker, StoreTrackerOptions};
