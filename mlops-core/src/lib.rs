//! # mlops-core
//!
//! The vocabulary every mlops crate shares: the seven I/O and compute traits plus [`Model`],
//! the domain types that mirror MLflow's entities, validated ids, the one categorical [`Error`],
//! [`Tensor`]s with the Open Inference Protocol's datatypes and their Arrow conversions, and
//! MLflow's search grammar.
//!
//! Core has light dependencies and exposes no candle, axum, tokio-runtime or object_store types:
//! implementation crates meet through these traits (`Arc<dyn Tracker>` handed to a training loop,
//! `Arc<dyn PolicyEngine>` handed to a registry decorator).
//!
//! | trait | job | I/O or compute |
//! |---|---|---|
//! | [`Store`] | immutable blobs by blake3 digest + named, versioned refs with compare-and-swap | async |
//! | [`Tracker`] | experiments, runs, params, metrics, tags, inputs, artifacts; MLflow search | async |
//! | [`Registry`] | registered models, versions, aliases, stages, lineage; `models:/` URIs | async |
//! | [`Server`] | the Open Inference Protocol in process | async |
//! | [`Trainer`] | fit a [`Model`] on Arrow data | sync |
//! | [`Model`] | a loaded model: signature, `predict` | sync |
//! | [`DriftDetector`] | reference profiles and per-column drift tests | sync |
//! | [`PolicyEngine`] | allow/deny decisions with reasons | sync |
//!
//! Each trait has a `# Contract` section, a few required methods taking option structs, an
//! `…Ext` trait of conveniences, and forwarding impls for `Arc<T>` and `Box<T>`. The conformance
//! suites in `mlops-testkit` check the contracts.
//!
//! ## Example
//!
//! Ids validate at the edge, URIs parse into types, and filters parse into an AST:
//!
//! ```
//! use mlops_core::{ModelName, ModelUri, search::Filter};
//!
//! let name: ModelName = "churn".parse()?;
//! let uri: ModelUri = "models:/churn@champion".parse()?;
//! assert_eq!(uri.model_name(), Some(&name));
//! assert!("../etc".parse::<ModelName>().is_err());
//!
//! let filter = Filter::parse("metrics.f1 >= 0.8 AND params.model = 'mlp'")?;
//! assert_eq!(filter.clauses().len(), 2);
//! assert!(Filter::parse("metrics.f1 >= 'high'").unwrap_err().is_invalid_argument());
//! # Ok::<(), mlops_core::Error>(())
//! ```
//!
//! ## Features
//!
//! mlops-core has no optional features; backends (`s3`, `azure`, `gcp`, `cuda`) are features of
//! the crates that implement them, and whole crates (`mlflow`, `secrets`, …) features of the
//! `mlops` facade.

pub mod arrow;
pub mod cancel;
pub mod drift;
pub mod error;
pub mod html;
pub mod id;
pub mod model;
pub mod online;
pub mod page;
pub mod policy;
pub mod registry;
pub mod search;
pub mod secret;
pub mod serve;
pub mod signature;
pub mod store;
pub mod tensor;
pub mod time;
pub mod tracker;
pub mod tracking;
pub mod train;
pub mod uri;

pub use cancel::CancelToken;
pub use drift::{DriftDetector, DriftReport, ReferenceProfile};
pub use error::{Error, ErrorKind, Result};
pub use id::{
    Alias, ArtifactPath, DatasetName, Digest, Digester, ExperimentId, ExperimentName, MetricKey,
    ModelName, ParamKey, RefName, RunId, TagKey, Version,
};
pub use model::{Model, ModelArtifact, ModelLoader, ModelSink};
pub use online::OnlineStore;
pub use page::Page;
pub use policy::{
    Decision, GovernanceInput, GovernedAction, PolicyEngine, PolicyEngineExt, PolicyQuery,
};
pub use registry::{ModelVersion, RegisteredModel, Registry, RegistryExt, RegistryObject, Stage};
pub use serve::{InferRequest, InferResponse, Server};
pub use signature::Signature;
pub use store::{ByteStream, Commit, Store, StoreExt};
pub use tensor::{DataType, Tensor};
pub use tracker::{LogBatch, Tracker, TrackerExt};
pub use tracking::{
    Experiment, LifecycleStage, Metric, Param, Run, RunInfo, RunStatus, Tag, ViewType,
};
pub use train::{Assessment, Assessor, FitOptions, FitOutcome, Trainer};
pub use uri::ModelUri;

// `async_trait` is part of the public API: implementors annotate their impls with it.
pub use async_trait::async_trait;
