//! # mlops-mlflow
//!
//! MLflow's languages, spoken by mlops: for teams whose clients, UI or servers are MLflow's.
//!
//! | type | what |
//! |---|---|
//! | [`MlflowTracker`], [`MlflowRegistry`] | the core [`Tracker`](mlops_core::Tracker) and [`Registry`](mlops_core::Registry) over a real MLflow server's REST API 2.0 (both pass the conformance suites against `mlflow server`) |
//! | [`MlflowClient`] | the HTTP client underneath: MLflow's error codes mapped onto [`mlops_core::Error`]'s categories |
//! | [`export_mlflow`], [`import_mlflow`] | any tracker and registry as MLflow's file-store layout (`mlruns/`), and back |
//! | [`model`] | MLflow model directories (`MLmodel`): read and write them, serve them by their `onnx` flavor ([`model::MlflowModelLoader`]), fetch a registered version's directory from an MLflow server's artifact proxy ([`model::MlflowArtifacts`]) |
//! | [`Replicator`] | local-first tracking: an embedded tracker copied into another one (typically an MLflow server) incrementally, surviving outages |
//! | `server::MlflowServer` (feature `server`) | the other way round: MLflow's REST API and artifact proxy served over any tracker and registry, so MLflow's own clients log into an mlops store |
//!
//! It depends only on mlops-core: the tracker and registry it copies from or to can be any
//! implementation (mlops-storage's embedded ones, in practice).
//!
//! ```no_run
//! use mlops_core::{RunStatus, Tracker, TrackerExt, tracker::CreateRunOptions};
//! use mlops_mlflow::MlflowTracker;
//!
//! # async fn example() -> mlops_core::Result<()> {
//! let tracker = MlflowTracker::new("http://127.0.0.1:5000")?;
//! let run = tracker.create_run(CreateRunOptions::default()).await?;
//! tracker.log_metric(&run.info.run_id, "f1", 0.91, 0).await?;
//! tracker.end_run(&run.info.run_id, RunStatus::Finished).await?;
//! # Ok(())
//! # }
//! ```

mod client;
mod files;
mod json;
pub mod model;
mod registry;
mod replicate;
#[cfg(feature = "server")]
pub mod server;
mod tracker;

pub use client::MlflowClient;
pub use files::{IMPORTED_RUN_ID_TAG, MlflowTransfer, export_mlflow, import_mlflow};
pub use registry::MlflowRegistry;
pub use replicate::{REPLICA_OF_TAG, Replicator, SyncReport};
pub use tracker::MlflowTracker;

/// Locks a mutex, taking its data even when another thread panicked holding it (the maps kept
/// here stay consistent between statements).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
