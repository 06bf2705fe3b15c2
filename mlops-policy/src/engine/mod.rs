//! [`RegoPolicyEngine`]: the core [`PolicyEngine`] on regorus — loaded and compiled by the
//! `builder`, decisions read by `decision`, evaluated on the `rvm` where compiled (the
//! interpreter otherwise), regorus's errors mapped by `error`, Rego tests run by `testing`.

mod builder;
mod decision;
mod error;
mod recursion;
mod rvm;
mod testing;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use mlops_core::policy::{Decision, PolicyEngine, PolicyQuery};
use mlops_core::{Error, Result};
use regorus::Value;

pub use builder::{DEFAULT_TIME_LIMIT, RegoPolicyBuilder};
pub use testing::TestResult;

use builder::{Module, PackageRules};
use decision::{allow_deny_reasons, deny_messages, not_a_decision, to_json, to_value};
use error::RegoError;
use rvm::Compiled;

/// Rego policies compiled once and evaluated from many threads.
///
/// # Decisions
///
/// [`evaluate`](PolicyEngine::evaluate) takes a decision path, written `data.ml.deployment`,
/// `ml.deployment` or `ml/deployment`:
///
/// - **A package** decides through its `deny` and `allow` rules. Every message of `deny` (a set of
///   strings, the `deny contains msg if { ... }` pattern; objects with a `msg` field give that
///   field) is a reason. If the package declares `allow`, it must be `true`. The decision is
///   allowed when there is no reason. A package with neither rule is [`Error::InvalidArgument`].
/// - **A rule** (`data.ml.deployment.deny`) decides by its value: a boolean is the decision; a set
///   or array lists deny reasons (empty = allowed); an object with `allow`/`deny` fields decides
///   like a package. An undefined rule whose name starts with `deny` or `violation` is allowed;
///   any other undefined rule is a denial (OPA's "undefined is not allowed").
///
/// # Threads
///
/// `evaluate` takes `&self`: each call checks out a prepared clone of the compiled engine from a
/// pool (clones share the compiled policy), so threads never wait on each other's evaluation.
pub struct RegoPolicyEngine {
    template: regorus::Engine,
    pool: Mutex<Vec<regorus::Engine>>,
    compiled: BTreeMap<String, Compiled>,
    packages: BTreeMap<String, PackageRules>,
    modules: Vec<Module>,
    revision: String,
    time_limit: std::time::Duration,
}

impl fmt::Debug for RegoPolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegoPolicyEngine")
            .field("packages", &self.packages.keys().collect::<Vec<_>>())
            .field("revision", &self.revision)
            .field("compiled", &self.compiled.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Most idle engines kept for reuse.
pub(super) const POOL_MAX: usize = 64;

impl RegoPolicyEngine {
    /// A builder.
    pub fn builder() -> RegoPolicyBuilder {
        RegoPolicyBuilder::new()
    }

    /// An engine from one file or directory of policies (Rego v1).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().policy_path(path)?.build()
    }

    /// The packages loaded, `data.`-prefixed and sorted.
    pub fn packages(&self) -> Vec<String> {
        self.packages.keys().cloned().collect()
    }

    /// The policy revision recorded with each decision.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// An evaluation that failed: out of time is [`Error::timed_out`] (naming the path and the
    /// limit), anything else [`Error::InvalidArgument`] at the policy's `file:line:col`.
    fn eval_error(&self, e: RegoError, path: &str) -> Error {
        if e.is_time_limit() {
            Error::timed_out(format!("policy evaluation of {path}"), self.time_limit)
        } else {
            e.into_error("policy path", path)
        }
    }

    /// Evaluates any rule or query path and returns its value as JSON (`null` when undefined):
    /// what `opa eval` prints for a single expression.
    pub fn eval_value(&self, path: &str, input: &serde_json::Value) -> Result<serde_json::Value> {
        let path = normalize_path(path)?;
        let value = self.with_engine(input, |engine| {
            engine
                .eval_rule(path.clone())
                .map_err(|e| self.eval_error(RegoError::new(e), &path))
        })?;
        to_json(&value)
    }

    fn with_engine<T>(
        &self,
        input: &serde_json::Value,
        f: impl FnOnce(&mut regorus::Engine) -> Result<T>,
    ) -> Result<T> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut engine = pooled.unwrap_or_else(|| self.template.clone());
        engine.set_input(to_value(input)?);
        let out = f(&mut engine);
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_MAX {
            pool.push(engine);
        }
        out
    }

    /// The package's `allow` and `deny` values: on the VM where compiled, else (or when the VM
    /// fails) on the interpreter.
    fn eval_package(
        &self,
        path: &str,
        rules: PackageRules,
        input: &serde_json::Value,
    ) -> Result<(Option<Value>, Option<Value>)> {
        let wanted = [(rules.allow, "allow"), (rules.deny, "deny")];
        if !self.compiled.is_empty() {
            let value = to_value(input)?;
            let mut out = [None, None];
            let mut all = true;
            for (slot, (declared, rule)) in out.iter_mut().zip(wanted) {
                if !declared {
                    continue;
                }
                match self
                    .compiled
                    .get(&format!("{path}.{rule}"))
                    .map(|c| c.eval(&value))
                {
                    Some(Ok(v)) => *slot = Some(v),
                    // Out of time on the VM is out of time: the interpreter would only run it again.
                    Some(Err(e)) if e.is_time_limit() => {
                        return Err(self.eval_error(e, &format!("{path}.{rule}")));
                    }
                    Some(Err(e)) => {
                        tracing::debug!(path, rule, error = %e.line(), "RVM failed; using the interpreter");
                        all = false;
                    }
                    None => all = false,
                }
            }
            if all {
                let [allow, deny] = out;
                return Ok((allow, deny));
            }
        }
        self.with_engine(input, |engine| {
            let mut eval = |rule: &str| {
                let p = format!("{path}.{rule}");
                engine
                    .eval_rule(p.clone())
                    .map_err(|e| self.eval_error(RegoError::new(e), &p))
            };
            let allow = if rules.allow {
                Some(eval("allow")?)
            } else {
                None
            };
            let deny = if rules.deny {
                Some(eval("deny")?)
            } else {
                None
            };
            Ok((allow, deny))
        })
    }

    /// Rule paths compiled to the bytecode VM.
    pub fn compiled_rules(&self) -> Vec<String> {
        self.compiled.keys().cloned().collect()
    }

    /// Evaluates `path` and returns every deny reason (none means allowed) and the result
    /// document.
    fn decide(
        &self,
        path: &str,
        input: &serde_json::Value,
    ) -> Result<(Vec<String>, serde_json::Value)> {
        if let Some(rules) = self.packages.get(path).copied() {
            if !rules.allow && !rules.deny {
                return Err(Error::invalid(
                    "policy path",
                    format!("package {path} declares neither an allow nor a deny rule"),
                ));
            }
            let (allow, deny) = self.eval_package(path, rules, input)?;
            let mut result = serde_json::Map::new();
            if let Some(deny) = &deny {
                result.insert("deny".into(), to_json(deny)?);
            }
            if let Some(allow) = &allow {
                result.insert("allow".into(), to_json(allow)?);
            }
            let reasons = allow_deny_reasons(path, allow.as_ref(), deny.as_ref())?;
            return Ok((reasons, serde_json::Value::Object(result)));
        }
        let (package, rule) = path.rsplit_once('.').unwrap_or(("", path));
        if !self.packages.contains_key(package) {
            return Err(Error::invalid(
                "policy path",
                format!(
                    "{path} names no loaded package or rule (packages: {})",
                    self.packages().join(", ")
                ),
            ));
        }
        let value = self.with_engine(input, |engine| {
            engine
                .eval_rule(path.to_string())
                .map_err(|e| self.eval_error(RegoError::new(e), path))
        })?;
        let reasons = match &value {
            Value::Undefined if rule.starts_with("deny") || rule.starts_with("violation") => {
                Vec::new()
            }
            Value::Undefined => vec![format!("{path} is undefined")],
            Value::Bool(true) => Vec::new(),
            Value::Bool(false) => vec![format!("{path} is false")],
            Value::Set(_) | Value::Array(_) => deny_messages(&value)?,
            Value::Object(obj) => {
                let field = |k: &str| obj.get(&Value::from(k));
                let (allow, deny) = (field("allow"), field("deny"));
                if allow.is_none() && deny.is_none() {
                    return Err(not_a_decision(path, &value));
                }
                allow_deny_reasons(path, allow, deny)?
            }
            _ => return Err(not_a_decision(path, &value)),
        };
        Ok((reasons, to_json(&value)?))
    }
}

impl PolicyEngine for RegoPolicyEngine {
    fn evaluate(&self, query: &PolicyQuery) -> Result<Decision> {
        let path = normalize_path(&query.path)?;
        let (reasons, result) = self.decide(&path, &query.input)?;
        Ok(Decision {
            decision_id: mlops_core::id::random_uuid().to_string(),
            allowed: reasons.is_empty(),
            reasons,
            result,
            revision: Some(self.revision.clone()),
        })
    }
}

/// `ml/deployment`, `ml.deployment` and `data.ml.deployment` all name `data.ml.deployment`.
pub(crate) fn normalize_path(path: &str) -> Result<String> {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::invalid("policy path", "must not be empty"));
    }
    let dotted = trimmed.replace('/', ".");
    let full = if dotted == "data" || dotted.starts_with("data.") {
        dotted
    } else {
        format!("data.{dotted}")
    };
    let ok = full
        .split('.')
        .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !ok || full == "data" {
        return Err(Error::invalid(
            "policy path",
            format!("{path:?} is not a path like data.ml.deployment or ml/deployment"),
        ));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise() {
        assert_eq!(
            normalize_path("ml/deployment").unwrap(),
            "data.ml.deployment"
        );
        assert_eq!(
            normalize_path("data.ml.deployment").unwrap(),
            "data.ml.deployment"
        );
        assert_eq!(
            normalize_path("/ml/deployment/deny").unwrap(),
            "data.ml.deployment.deny"
        );
        for bad in ["", "data", "ml..x", "ml.deploy-ment", "ml[0]"] {
            assert!(
                normalize_path(bad).unwrap_err().is_invalid_argument(),
                "{bad}"
            );
        }
    }
}
