//! Benchmarks of the mlops SDK.
//!
//! ```text
//! cargo bench -p mlops-benches                 # everything
//! cargo bench -p mlops-benches -- search_runs  # one group
//! ```
//!
//! Groups are named `<impl>/<op>/<size>` and set a throughput, so criterion reports elements or
//! bytes per second. Comparisons with the Python tools we replace are scripts beside the benches
//! that run both sides on the same data in one invocation and print the ratio; they arrive with
//! the crates they measure.
