//! # mlops-policy
//!
//! Policy and governance as code:
//!
//! - [`RegoPolicyEngine`] implements [`mlops_core::PolicyEngine`] on
//!   [regorus](https://github.com/microsoft/regorus): Rego v1 (v0 on request) from files,
//!   folders and strings, data documents, compiled once and evaluated from many threads; a runner
//!   for Rego `test_` rules.
//! - [`library`]: shipped policies under `data.mlops` — approval before production, metric
//!   thresholds, no promotion while drift is flagged, lineage required, PII and licence rules.
//! - [`Governed`]: a [`Registry`](mlops_core::Registry) decorator that asks the engine before a
//!   version is registered, an alias moves or a stage changes, and answers
//!   [`Error::PolicyDenied`](mlops_core::Error::PolicyDenied) with every reason; [`Facts`]
//!   providers add run metrics or drift state to the input.
//! - [`DecisionLog`]: every decision with OPA's decision-log fields, hash-chained in a
//!   [`Store`](mlops_core::Store), with masking; [`log::verify`] names the first bad entry.
//!
//! ```
//! use mlops_core::policy::{PolicyEngine, PolicyQuery};
//! use mlops_policy::RegoPolicyEngine;
//!
//! # fn main() -> mlops_core::Result<()> {
//! // The seed's example, verbatim, in Rego v0.
//! let engine = RegoPolicyEngine::builder()
//!     .rego_v0(true)
//!     .policy("deploy.rego", r#"package ml.deployment
//! deny[msg] { input.model.approved == false; msg = "Model lacks approval metadata" }"#)?
//!     .build()?;
//! let input = serde_json::json!({"model": {"approved": false}});
//! let decision = engine.evaluate(&PolicyQuery::new("data.ml.deployment", input))?;
//! assert!(!decision.allowed);
//! assert_eq!(decision.reasons, ["Model lacks approval metadata"]);
//! # Ok(())
//! # }
//! ```

mod engine;
mod governed;
pub mod library;
pub mod log;

pub use engine::{DEFAULT_TIME_LIMIT, RegoPolicyBuilder, RegoPolicyEngine, TestResult};
pub use governed::{Facts, Governed, RunMetrics, SharedFacts};
pub use log::{DecisionLog, LogEntry, LogHead, LogOptions, Logged, VerifyLogReport};
