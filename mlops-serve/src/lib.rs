//! # mlops-serve
//!
//! An implementation of [`mlops_core::Server`] and its HTTP transport.
//!
//! **Status: empty.** This crate is filled by the serving issue. It will hold:
//!
//! - a multi-model, multi-version repository loading models from any
//!   [`mlops_core::Registry`] by `models:/` URI, ready only after warm-up, with hot swaps that fail
//!   no request;
//! - dynamic batching per model and weighted canary / shadow routing between versions;
//! - the Open Inference Protocol v2 REST API on axum (JSON and the binary tensor extension,
//!   KServe's repository endpoints), bearer-token auth and graceful shutdown;
//! - `/metrics` in the Prometheus text format and tracing spans per request;
//! - export of a KServe `InferenceService` manifest.
