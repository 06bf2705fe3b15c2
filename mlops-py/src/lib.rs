//! The native module of the `mlops` Python package (`mlops._native`): PyO3 classes over the
//! Rust SDK. The package's pure-Python layer (`mlops-py/python/mlops`) adds MLflow's fluent
//! API, the exceptions and the type stubs; users import `mlops`, not this module.
//!
//! Conventions every class follows:
//! - the GIL is released around every I/O call and every computation (`runtime::block_on`,
//!   `Python::detach`), so Python threads run in parallel;
//! - Rust errors become the exception of their category (`errors`); wrong Python types are
//!   `TypeError`s naming the argument; nothing panics across the boundary;
//! - one tokio runtime per process, rebuilt after `fork()` (`runtime`);
//! - tables cross as Arrow C streams, zero-copy both ways (`table`).

mod arrays;
mod datasets;
mod drift;
mod errors;
mod model;
mod pipeline;
mod policy;
mod registry;
mod runtime;
mod serve;
mod store;
mod table;
mod tracking;

use pyo3::prelude::*;

/// The SDK's classes and functions.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // What benchmarks check before they report a number.
    m.add(
        "__build_profile__",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    m.add_class::<store::Store>()?;
    m.add_class::<table::Table>()?;
    m.add_class::<tracking::Tracker>()?;
    m.add_class::<tracking::Experiment>()?;
    m.add_class::<tracking::Run>()?;
    m.add_class::<tracking::RunInfo>()?;
    m.add_class::<tracking::RunData>()?;
    m.add_class::<tracking::MetricValue>()?;
    m.add_function(wrap_pyfunction!(tracking::flush_all, m)?)?;
    m.add_class::<registry::Registry>()?;
    m.add_class::<registry::RegisteredModel>()?;
    m.add_class::<registry::ModelVersion>()?;
    m.add_function(wrap_pyfunction!(registry::current_git_commit, m)?)?;
    m.add_class::<datasets::Datasets>()?;
    m.add_class::<datasets::DatasetVersion>()?;
    m.add_class::<policy::PolicyEngine>()?;
    m.add_class::<policy::Decision>()?;
    m.add_function(wrap_pyfunction!(policy::verify_decision_log, m)?)?;
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(model::train, m)?)?;
    m.add_function(wrap_pyfunction!(model::tune, m)?)?;
    m.add_function(wrap_pyfunction!(model::load_model, m)?)?;
    m.add_class::<serve::Server>()?;
    m.add_class::<serve::HttpServer>()?;
    m.add_class::<drift::Profile>()?;
    m.add_class::<drift::DriftReport>()?;
    m.add_class::<drift::QualitySuite>()?;
    m.add_function(wrap_pyfunction!(drift::profile, m)?)?;
    m.add_function(wrap_pyfunction!(drift::detect, m)?)?;
    m.add_class::<pipeline::PipelineReport>()?;
    m.add_function(wrap_pyfunction!(pipeline::run_pipeline, m)?)?;
    Ok(())
}
