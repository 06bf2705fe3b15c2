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

mod column;
mod detector;
pub mod monitor;
pub mod profiles;
pub mod quality;
pub mod report;
pub mod stats;

pub use detector::{NUMBER_UNIQUE_AS_CATEGORICAL, StatDetector, StatTest, default_test};
pub use monitor::{DriftMonitor, MonitorOptions, RetrainEvent, RetrainRule};
pub use report::Report;
