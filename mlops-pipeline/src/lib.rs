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

pub mod export;
pub mod pipeline;
pub mod resources;
pub mod runner;
pub mod spec;
pub mod step;

pub use export::{PipelineExport, StepArgs};
pub use pipeline::{Pipeline, StepDef};
pub use resources::{RateCard, Usage};
pub use runner::{
    CacheRecord, PipelineReport, Runner, StepEvent, StepObserver, StepReport, StepStatus,
};
pub use spec::{PipelineSpec, StepRegistry, StepSpec};
pub use step::{BlockingStep, FnStep, Output, Outputs, Step, StepContext};
