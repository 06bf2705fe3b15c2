//! # mlops-drift
//!
//! Implementations of [`mlops_core::DriftDetector`] over Arrow data.
//!
//! **Status: empty.** This crate is filled by the drift issue. It will hold:
//!
//! - per-column tests with Evidently's semantics and default selection: Kolmogorov–Smirnov,
//!   chi-square, two-proportion z-test, normed Wasserstein, Jensen–Shannon and PSI, checked
//!   against scipy;
//! - [`mlops_core::ReferenceProfile`]s computed once from training data and stored beside a model
//!   version;
//! - data-quality expectations (Great Expectations' job) and JSON / standalone HTML reports;
//! - a windowed online monitor exporting drift scores as Prometheus gauges, and the retraining
//!   trigger rule.
