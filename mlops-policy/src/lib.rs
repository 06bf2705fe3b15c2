//! # mlops-policy
//!
//! Policy and governance: [`RegoPolicyEngine`] implements [`mlops_core::PolicyEngine`] on
//! [regorus](https://github.com/microsoft/regorus) (Rego v1, and v0 on request).
#![doc = ""]

mod engine;
pub mod library;

pub use engine::{RegoPolicyBuilder, RegoPolicyEngine, TestResult};
