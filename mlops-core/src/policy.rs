//! The [`PolicyEngine`] trait: policy-as-code decisions.

use std::fmt::Debug;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A question for the policy engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyQuery {
    /// The decision path (`data.ml.deployment`), whose `allow`/`deny` rules decide.
    pub path: String,
    /// The input document.
    pub input: serde_json::Value,
}

impl PolicyQuery {
    /// A query at `path` with `input`.
    pub fn new(path: impl Into<String>, input: serde_json::Value) -> Self {
        Self {
            path: path.into(),
            input,
        }
    }
}

/// A policy decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique id (OPA's `decision_id`), for the decision log.
    pub decision_id: String,
    /// Whether the action may proceed.
    pub allowed: bool,
    /// Every deny message, when not allowed.
    pub reasons: Vec<String>,
    /// The raw result document at the path.
    pub result: serde_json::Value,
    /// Revision of the policy bundle that decided.
    pub revision: Option<String>,
}

/// Evaluates decisions. Synchronous compute, safe from many threads at once.
///
/// # Contract
///
/// - An unknown path or a malformed input is [`Error::InvalidArgument`]; a policy that denies is a
///   successful evaluation with `allowed == false` and every reason listed.
/// - The same policies, data and input give the same decision.
pub trait PolicyEngine: Debug + Send + Sync + 'static {
    /// Evaluates one query.
    fn evaluate(&self, query: &PolicyQuery) -> Result<Decision>;
}

/// Conveniences over [`PolicyEngine`].
pub trait PolicyEngineExt: PolicyEngine {
    /// Evaluates and turns a denial into [`Error::PolicyDenied`].
    fn check(&self, query: &PolicyQuery) -> Result<Decision> {
        let decision = self.evaluate(query)?;
        if decision.allowed {
            Ok(decision)
        } else {
            Err(Error::PolicyDenied {
                policy: query.path.clone(),
                reasons: decision.reasons,
            })
        }
    }
}

impl<P: PolicyEngine + ?Sized> PolicyEngineExt for P {}

macro_rules! forward_policy {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<P: PolicyEngine + ?Sized> PolicyEngine for $ty {
            fn evaluate(&self, query: &PolicyQuery) -> Result<Decision> {
                (**self).evaluate(query)
            }
        }
    };
}

forward_policy!(Arc<P>);
forward_policy!(Box<P>);
