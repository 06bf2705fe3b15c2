//! # mlops
//!
//! The facade of the mlops SDK: one dependency that re-exports the crates you enable.
//!
//! Everything in [`mlops_core`] is re-exported at the root (traits, ids, entities, tensors,
//! errors) and as [`core`]; each implementation crate is a module behind a feature of the same
//! name (which then takes that name over from core's trait module, still at `mlops::core::…`).
//!
//! | feature | module | what it holds | default |
//! |---|---|---|---|
//! | `storage` | [`storage`] | `Store`, `Tracker`, `Registry` implementations | yes |
//! | `train` | `train` | candle trainers, model flavor, evaluation, tracked jobs, tuning | no |
//! | `serve` | `serve` | Open Inference Protocol server | no |
//! | `drift` | `drift` | drift detectors, data quality, reports | no |
//! | `policy` | `policy` | Rego policy engine, governed registry | no |
//! | `pipeline` | `pipeline` | DAG runner, Argo/Kubernetes export | no |
//! | `steps` | `steps` | the built-in pipeline steps (dataset, train, drift, promote) | no |
//! | `testkit` | `testkit` | conformance suites for your own implementations | no |
//! | `full` | all of the above but `testkit` | | no |
//! | `s3`, `azure`, `gcp` | — | cloud URLs for `storage::ObjectStoreStore` | no |
//! | `mlflow` | — | `storage::MlflowTracker`, `storage::MlflowRegistry` | no |
//! | `cuda` | — | `train` on NVIDIA GPUs (candle's `cuda`; building needs `nvcc`) | no |
//!
//! ## Example
//!
//! ```
//! use mlops::storage::{MemoryRegistry, MemoryTracker};
//! use mlops::{Registry, RegistryExt, RunStatus, Tracker, TrackerExt};
//! use mlops::registry::{CreateModelOptions, CreateVersionOptions};
//! use mlops::tracker::CreateRunOptions;
//!
//! # futures::executor::block_on(async {
//! let tracker = MemoryTracker::new();
//! let run = tracker.create_run(CreateRunOptions::default()).await?;
//! tracker.log_metric(&run.info.run_id, "f1", 0.91, 0).await?;
//! tracker.end_run(&run.info.run_id, RunStatus::Finished).await?;
//!
//! let registry = MemoryRegistry::new();
//! let name = "churn".parse()?;
//! registry.create_registered_model(&name, CreateModelOptions::default()).await?;
//! let source = format!("runs:/{}/model", run.info.run_id);
//! let v1 = registry.create_model_version(&name, CreateVersionOptions::new(source)).await?;
//! registry.set_alias(&name, &"champion".parse()?, v1.version).await?;
//! let champion = registry.resolve(&"models:/churn@champion".parse()?).await?;
//! assert_eq!(champion.version, v1.version);
//! # Ok::<(), mlops::Error>(())
//! # }).unwrap();
//! ```

/// mlops-core itself, for its modules that a feature module below shadows (`core::drift`, …).
pub use mlops_core as core;
pub use mlops_core::*;

// Explicit re-exports shadow the glob's modules of the same name: with the `drift` feature,
// `mlops::drift` is the implementation crate and the trait module stays at `mlops::core::drift`.
#[cfg(feature = "drift")]
pub use mlops_drift as drift;
#[cfg(feature = "pipeline")]
pub use mlops_pipeline as pipeline;
#[cfg(feature = "policy")]
pub use mlops_policy as policy;
#[cfg(feature = "serve")]
pub use mlops_serve as serve;
#[cfg(feature = "storage")]
pub use mlops_storage as storage;
#[cfg(feature = "testkit")]
pub use mlops_testkit as testkit;
#[cfg(feature = "train")]
pub use mlops_train as train;

#[cfg(feature = "steps")]
pub mod steps;

/// The README's code blocks, compiled and run as doc tests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
