//! Criterion entry point: one module per area.
//!
//! ```text
//! cargo bench -p mlops-benches
//! ```

// Benchmarks may unwrap: a failure is a broken benchmark, not a user-facing error.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod digest;
mod drift;
mod explain;
mod features;
mod onnx;
mod pipeline;
mod policy;
mod search;
mod store;
mod tracker;
mod train;

criterion::criterion_main!(
    digest::benches,
    drift::benches,
    explain::benches,
    features::benches,
    onnx::benches,
    pipeline::benches,
    policy::benches,
    search::benches,
    store::benches,
    tracker::benches,
    train::benches
);
