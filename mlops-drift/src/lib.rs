//! # mlops-drift
//!
//! Drift detection with Evidently's semantics, computed natively:
//!
//! - [`StatDetector`] implements [`mlops_core::DriftDetector`]: per-column Kolmogorov–Smirnov
//!   (scipy's exact and asymptotic p-values), chi-square, two-proportion z, normed Wasserstein,
//!   Jensen–Shannon on Sturges bins and PSI, chosen by column kind, reference size and distinct
//!   values as Evidently chooses them, with Evidently's thresholds and comparisons; dataset drift
//!   when the share of drifted columns reaches `drift_share`. Columns run in parallel.
//! - Reference profiles ([`mlops_core::ReferenceProfile`]) keep the sorted reference values (or a
//!   bounded quantile sample, which makes the tests approximate and says so) and label counts,
//!   so detection needs no raw reference data.
//! - [`stats`]: the statistics themselves, each matching the scipy function Evidently calls.
//! - [`report`]: the stable JSON report and a standalone HTML page; [`quality`]: data-quality
//!   suites with Great Expectations' expectation names; [`monitor`]: windows over served inputs,
//!   Prometheus gauges and the retraining rule; [`profiles`]: profiles stored beside model
//!   versions.
//!
//! ## Example
//!
//! A reference profile from training data, then today's data tested against it:
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
//! use mlops_core::drift::{DetectOptions, DriftDetector, ProfileOptions};
//! use mlops_drift::{Report, StatDetector};
//!
//! # fn main() -> mlops_core::Result<()> {
//! let batch = |shift: f64, pro_every: usize| {
//!     let age: Vec<f64> = (0..1000).map(|i| 30.0 + (i % 40) as f64 + shift).collect();
//!     let plan: Vec<&str> = (0..1000)
//!         .map(|i| if i % pro_every == 0 { "pro" } else { "basic" })
//!         .collect();
//!     RecordBatch::try_from_iter([
//!         ("age", Arc::new(Float64Array::from(age)) as ArrayRef),
//!         ("plan", Arc::new(StringArray::from(plan))),
//!     ])
//!     .map_err(|e| mlops_core::Error::backend("arrow", e))
//! };
//! let detector = StatDetector::new();
//! let reference = batch(0.0, 4)?;
//! let profile = detector.profile(&[reference], &ProfileOptions::default())?;
//!
//! let calm = detector.detect(&profile, &[batch(0.0, 4)?], &DetectOptions::default())?;
//! assert!(!calm.dataset_drift);
//! let today = batch(8.0, 2)?;
//! let shifted = detector.detect(&profile, &[today.clone()], &DetectOptions::default())?;
//! assert!(shifted.dataset_drift);
//! assert_eq!(shifted.drifted_columns, 2);
//!
//! let html = Report::new(&shifted, &profile, &[today], "training", "today")?.to_html();
//! assert!(html.contains("age"));
//! # Ok(())
//! # }
//! ```

mod column;
mod detector;
pub mod history;
pub mod monitor;
pub mod profiles;
pub mod quality;
pub mod report;
pub mod stats;

pub use detector::{NUMBER_UNIQUE_AS_CATEGORICAL, StatDetector, StatTest, default_test};
pub use monitor::{DriftMonitor, MonitorOptions, RetrainEvent, RetrainRule};
pub use report::Report;
