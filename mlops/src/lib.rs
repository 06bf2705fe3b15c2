//! # mlops
//!
//! The facade of the mlops SDK: one dependency that re-exports the crates you enable, and only
//! adds to what is there without them.
//!
//! Everything in [`mlops_core`] is re-exported at the root (traits, ids, entities, tensors,
//! errors) and as [`core`]. The core modules that an implementation crate extends —
//! [`drift`], [`policy`], [`secret`], [`serve`], [`train`] — always hold core's items (the trait, its
//! options and results), and gain the implementation crate's items when its feature is on:
//! `mlops::drift::DetectOptions` means the same with or without the `drift` feature, and
//! `mlops::drift::StatDetector` appears with it. (Cargo unifies features across a build, so a
//! path that changed meaning when some other crate turned a feature on would break user code
//! that never asked for the feature.) The other implementation crates are modules of their own
//! name behind their feature.
//!
//! | feature | module | what it holds | default |
//! |---|---|---|---|
//! | `storage` | `storage` | `Store`, `Tracker`, `Registry` implementations | yes |
//! | `train` | [`train`] + | candle trainers, model flavor, evaluation, tracked jobs, tuning | no |
//! | `serve` | [`serve`] + | Open Inference Protocol server | no |
//! | `grpc` | `serve::grpc` | the Open Inference Protocol over gRPC (tonic) | no |
//! | `drift` | [`drift`] + | drift detectors, data quality, reports | no |
//! | `policy` | [`policy`] + | Rego policy engine, governed registry, decision log | no |
//! | `secrets` | [`secret`] + | secret providers: environment, files, HashiCorp Vault KV v2 | no |
//! | `pipeline` | `pipeline` | DAG runner, Argo/Kubernetes export | no |
//! | `steps` | `steps` | the built-in pipeline steps (dataset, train, drift, promote, …) | no |
//! | `k8s` | `k8s` | the Kubernetes building blocks the exports share | no |
//! | `mlflow` | `mlflow` | `MlflowTracker`/`MlflowRegistry` over MLflow's REST API, MLflow's file layout both ways, `Replicator` | no |
//! | `mlflow-server` | `mlflow::server` | an MLflow-compatible tracking server (REST API and artifact proxy) over any tracker and registry | no |
//! | `features` | `features` | the feature store: definitions (Feast's), registry, point-in-time training sets, materialization, online stores and lookups | no |
//! | `features-redis` | `features::RedisOnlineStore` | Redis as the online store | no |
//! | `features-server` | `features::http` | Feast's feature server API (`/get-online-features`, `/push`) as an axum router | no |
//! | `onnx` | `onnx` | the `onnx` flavor: ONNX models (scikit-learn, PyTorch, …) run in pure Rust by tract, signatures from the graph; with `steps`, `steps::export` (candle models as ONNX, MLflow model directories) | no |
//! | `onnx-ort` | `onnx` | onnxruntime as a second runtime for `onnx` models, loaded at run time from `ORT_DYLIB_PATH` | no |
//! | `explain` | `explain` | permutation importance, exact linear SHAP, KernelSHAP over any model | no |
//! | `fairness` | `fairness` | fairlearn's and AIF360's group-fairness metrics, bootstrap intervals | no |
//! | `testkit` | `testkit` | conformance suites for your own implementations | no |
//! | `full` | all of the above but `testkit` | | no |
//! | `s3`, `azure`, `gcp` | — | cloud URLs for `storage::ObjectStoreStore` | no |
//! | `cuda` | — | `train` on NVIDIA GPUs (candle's `cuda`; building needs `nvcc`) | no |
//!
//! (+: a core module that the feature extends.)
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

// A name an implementation crate shares with its core module would make the merged module's
// path ambiguous: refuse it here, where it is defined, not in a user's build.
#![deny(ambiguous_glob_reexports)]

/// mlops-core itself.
pub use mlops_core as core;
pub use mlops_core::*;

/// Drift detection: core's [`DriftDetector`] trait, profiles,
/// options and reports; with the `drift` feature, also mlops-drift (`StatDetector`, data
/// quality suites, HTML reports, the online monitor).
pub mod drift {
    pub use mlops_core::drift::*;
    #[cfg(feature = "drift")]
    pub use mlops_drift::*;
}

/// Policy: core's [`PolicyEngine`] trait, decisions and the
/// governance input; with the `policy` feature, also mlops-policy (`RegoPolicyEngine`,
/// `Governed`, the decision log).
pub mod policy {
    pub use mlops_core::policy::*;
    #[cfg(feature = "policy")]
    pub use mlops_policy::*;
}

/// Secrets: core's [`SecretProvider`](mlops_core::secret::SecretProvider) trait, [`SecretString`](mlops_core::secret::SecretString)
/// and the `secret:<name>` option form; with the `secrets` feature, also mlops-secrets
/// (`EnvSecrets`, `FileSecrets`, `VaultKv2`, `SecretChain`).
pub mod secret {
    pub use mlops_core::secret::*;
    #[cfg(feature = "secrets")]
    pub use mlops_secrets::*;
}

/// Serving: core's [`Server`] trait and the Open Inference
/// Protocol's types; with the `serve` feature, also mlops-serve (`ModelServer`, HTTP, batching,
/// routing, KServe export).
pub mod serve {
    pub use mlops_core::serve::*;
    #[cfg(feature = "serve")]
    pub use mlops_serve::*;
}

/// Training: core's [`Trainer`] trait and fit options; with the
/// `train` feature, also mlops-train (`CandleTrainer`, the candle flavor, `TrainingJob`,
/// `Tuner`, evaluation metrics, Job export).
pub mod train {
    pub use mlops_core::train::*;
    #[cfg(feature = "train")]
    pub use mlops_train::*;
}

#[cfg(feature = "explain")]
pub use mlops_explain as explain;
#[cfg(feature = "fairness")]
pub use mlops_fairness as fairness;
#[cfg(feature = "features")]
pub use mlops_features as features;
#[cfg(feature = "k8s")]
pub use mlops_k8s as k8s;
#[cfg(feature = "mlflow")]
pub use mlops_mlflow as mlflow;
#[cfg(feature = "onnx")]
pub use mlops_onnx as onnx;
#[cfg(feature = "pipeline")]
pub use mlops_pipeline as pipeline;
#[cfg(feature = "steps")]
pub use mlops_steps as steps;
#[cfg(feature = "storage")]
pub use mlops_storage as storage;
#[cfg(feature = "testkit")]
pub use mlops_testkit as testkit;

/// The README's code blocks, compiled and run as doc tests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
