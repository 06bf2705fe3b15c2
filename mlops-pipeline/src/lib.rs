//! # mlops-pipeline
//!
//! Pipelines as Rust code, run in process, handed to real engines when a team outgrows one
//! machine.
//!
//! - [`Pipeline`] is a DAG of [`StepDef`]s: each wraps a [`Step`] (an async trait; closures
//!   through [`FnStep`], CPU-bound work through [`BlockingStep`] or
//!   [`StepContext::blocking`]), reads named outputs of other steps, and carries parameters, a
//!   code version, retries with backoff, a timeout, a cache switch and a `when` condition (a
//!   boolean of an upstream output; false bypasses the step and its dependants).
//! - [`Runner`] runs it on tokio: independent steps in parallel, a failed step stops its
//!   dependants (they are reported `skipped`), cancellation stops scheduling and asks running
//!   steps to stop. Caching has `dvc repro` semantics: a step is skipped when the digest of its
//!   name, code version, parameters and inputs' digests matches its last successful run's and
//!   its outputs still exist (`force` re-runs). Records live in the store at
//!   `pipelines/<pipeline>/<step>`.
//! - With a tracker, every pipeline run is a run with one child run per step (status, timings,
//!   cache hit or miss, outputs' digests), and each step's [`Usage`] (wall time, CPU time,
//!   peak resident memory, GPU time) is priced by a [`RateCard`] and summed per run.
//! - [`PipelineSpec`] reads the same pipelines from YAML, taking steps from a
//!   [`StepRegistry`], so `mlops pipeline run pipeline.yaml` needs no Rust.
//! - [`PipelineExport`] hands the same DAG to Argo Workflows (a DAG template with `depends`) or
//!   to Kubernetes as one Job per step; each pod runs one step (`--step <name>`, parsed by
//!   [`StepArgs`]) with [`Runner::only`] against the shared store.
//!
//! ## Example
//!
//! Two steps, the second reading the first's output; the second run is served from the cache
//! because nothing changed:
//!
//! ```
//! use std::sync::Arc;
//! use mlops_pipeline::{FnStep, Output, Outputs, Pipeline, Runner, StepDef, StepStatus};
//! use mlops_storage::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mlops_core::Result<()> {
//! let prepare = FnStep::new(|_ctx| async {
//!     Ok(Outputs::from([("rows".to_owned(), Output::value(serde_json::json!(1000)))]))
//! });
//! let train = FnStep::new(|ctx| async move {
//!     let rows: u64 = ctx.input("rows")?.get()?;
//!     Ok(Outputs::from([("model".to_owned(), Output::value(serde_json::json!({"rows": rows})))]))
//! });
//! let pipeline = Pipeline::new("churn")
//!     .step(StepDef::new("prepare", prepare))
//!     .step(StepDef::new("train", train).input("rows", "prepare", "rows"));
//!
//! let runner = Runner::new(Arc::new(MemoryStore::new()));
//! let first = runner.run(&pipeline).await?.into_result()?;
//! assert_eq!(first.executed(), ["prepare", "train"]);
//! let again = runner.run(&pipeline).await?.into_result()?;
//! assert!(again.steps.iter().all(|s| s.status == StepStatus::Cached));
//! # Ok(())
//! # }
//! ```

pub mod cache;
mod execute;
pub mod export;
pub mod pipeline;
pub mod report;
pub mod resources;
pub mod runner;
pub mod spec;
pub mod step;
pub mod tracking;

pub use cache::CacheRecord;
pub use export::{PipelineExport, StepArgs};
pub use pipeline::{Condition, Pipeline, StepDef};
pub use report::{PipelineReport, StepReport, StepStatus};
pub use resources::{RateCard, Usage};
pub use runner::{Runner, StepEvent, StepObserver};
pub use spec::{PipelineSpec, StepRegistry, StepSpec};
pub use step::{BlockingStep, FnStep, Output, Outputs, Step, StepContext, parse_params};
pub use tracking::{PipelineRun, StepRun, history};
