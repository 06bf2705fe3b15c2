//! # mlops-pipeline
//!
//! Pipelines as Rust code, run in process, handed to real engines when a team outgrows one
//! machine.
//!
//! **Status: empty.** This crate is filled by the pipelines issue. It will hold:
//!
//! - a DAG runner on tokio: steps with declared inputs and outputs, parallel independent steps,
//!   retries with backoff, timeouts, cooperative cancellation;
//! - step caching with `dvc repro` semantics, every pipeline run tracked through a
//!   [`mlops_core::Tracker`] with one child run per step;
//! - per-step resource accounting priced by a rate card;
//! - export of the same DAG as an Argo Workflow, Kubernetes Jobs and a GitOps folder;
//! - the continuous-retraining loop: monitor, retrain, validate, register, canary deploy.
