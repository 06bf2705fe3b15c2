//! # mlops-policy
//!
//! An implementation of [`mlops_core::PolicyEngine`] on regorus (Rego).
//!
//! **Status: empty.** This crate is filled by the policy issue. It will hold:
//!
//! - `RegoPolicyEngine`: policies from files, directories and strings (Rego v1, and v0 on
//!   request), data documents, compile once and evaluate from many threads;
//! - a shipped policy library (approval before production, metric thresholds, no deploy while
//!   drift is flagged, lineage required, PII and licence rules);
//! - `Governed<R: Registry>`, a decorator that asks the engine before versions, aliases and stages
//!   change and answers [`mlops_core::Error::PolicyDenied`];
//! - a hash-chained decision log with OPA's fields, and secret providers.
