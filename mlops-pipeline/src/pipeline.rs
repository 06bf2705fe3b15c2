//! Pipelines as Rust values: named steps, their inputs (other steps' outputs), parameters, code
//! versions and run policies, checked into a DAG.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use mlops_core::{Error, Result};

use crate::step::{Outputs, Step};

/// One step of a pipeline.
#[derive(Debug, Clone)]
pub struct StepDef {
    pub(crate) name: String,
    pub(crate) step: Arc<dyn Step>,
    /// Input name → (upstream step, its output).
    pub(crate) inputs: BTreeMap<String, (String, String)>,
    pub(crate) after: BTreeSet<String>,
    pub(crate) params: serde_json::Value,
    pub(crate) code_version: String,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cache: bool,
    pub(crate) condition: Option<Condition>,
}

/// A step's `when`: a boolean field of an upstream step's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The upstream step.
    pub step: String,
    /// Its output.
    pub output: String,
    /// The field, as a JSON pointer into the output's value (`/retrain`); empty for the whole
    /// value.
    pub pointer: String,
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}{}",
            self.step,
            self.output,
            self.pointer.replace('/', ".")
        )
    }
}

impl Condition {
    /// Reads the condition from the upstream step's outputs: a boolean, or an error naming it.
    pub fn holds(&self, upstream: Option<&Outputs>) -> Result<bool> {
        let value = upstream
            .and_then(|outputs| outputs.get(&self.output))
            .and_then(|o| o.value.pointer(&self.pointer))
            .ok_or_else(|| Error::invalid("when", format!("{self}: no such output field")))?;
        value
            .as_bool()
            .ok_or_else(|| Error::invalid("when", format!("{self} is {value}, not true or false")))
    }
}

impl StepDef {
    /// A step named `name` (letters, digits, `-`, `_`; it names its run, cache record and
    /// container).
    pub fn new(name: impl Into<String>, step: impl Step) -> Self {
        Self::from_arc(name, Arc::new(step))
    }

    /// [`new`](Self::new) for a shared step.
    pub fn from_arc(name: impl Into<String>, step: Arc<dyn Step>) -> Self {
        Self {
            name: name.into(),
            step,
            inputs: BTreeMap::new(),
            after: BTreeSet::new(),
            params: serde_json::Value::Object(Default::default()),
            code_version: String::new(),
            retries: 0,
            backoff: Duration::from_millis(200),
            timeout: None,
            cache: true,
            condition: None,
        }
    }

    /// Reads `output` of step `from` as the input `name`.
    pub fn input(
        mut self,
        name: impl Into<String>,
        from: impl Into<String>,
        output: impl Into<String>,
    ) -> Self {
        self.inputs
            .insert(name.into(), (from.into(), output.into()));
        self
    }

    /// Runs after `step` (besides the steps it reads from).
    pub fn after(mut self, step: impl Into<String>) -> Self {
        self.after.insert(step.into());
        self
    }

    /// The step's parameters (part of its cache key).
    pub fn params(mut self, params: serde_json::Value) -> Self {
        self.params = params;
        self
    }

    /// The code version (part of its cache key): bump it when the step's code changes.
    pub fn code_version(mut self, version: impl Into<String>) -> Self {
        self.code_version = version.into();
        self
    }

    /// Retries transient failures (`Unavailable`, `Backend`, `Conflict`, timeouts) up to `n`
    /// times, waiting `backoff`, then twice that, … between attempts.
    pub fn retries(mut self, n: u32, backoff: Duration) -> Self {
        self.retries = n;
        self.backoff = backoff;
        self
    }

    /// Fails an attempt that runs longer than `timeout` (its cancel token fires).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs only when `field` (dot-separated) of `output` of step `step` is `true`; otherwise the
    /// step and its dependants are `bypassed` and the pipeline still succeeds.
    pub fn when(mut self, step: impl Into<String>, output: impl Into<String>, field: &str) -> Self {
        let pointer: String = field
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| format!("/{s}"))
            .collect();
        self.condition = Some(Condition {
            step: step.into(),
            output: output.into(),
            pointer,
        });
        self
    }

    /// Never serves this step from the cache (a step that reads the outside world).
    pub fn no_cache(mut self) -> Self {
        self.cache = false;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The steps it depends on.
    pub fn dependencies(&self) -> BTreeSet<&str> {
        self.inputs
            .values()
            .map(|(s, _)| s.as_str())
            .chain(self.after.iter().map(String::as_str))
            .chain(self.condition.iter().map(|c| c.step.as_str()))
            .collect()
    }
}

/// A named DAG of steps.
#[derive(Debug, Clone)]
pub struct Pipeline {
    name: String,
    steps: Vec<StepDef>,
}

pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!(
                "{name:?}: use letters, digits, '-' and '_' (at most 63, starting with a letter or digit)"
            ),
        ))
    }
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    /// Adds a step.
    pub fn step(mut self, step: StepDef) -> Self {
        self.steps.push(step);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its steps, as added.
    pub fn steps(&self) -> &[StepDef] {
        &self.steps
    }

    /// A step by name.
    pub fn get(&self, name: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Checks names, references and acyclicity; returns the steps in a topological order (ties
    /// in the order they were added). Every problem is [`Error::InvalidArgument`] naming the
    /// step.
    pub fn validate(&self) -> Result<Vec<&StepDef>> {
        check_name("pipeline name", &self.name)?;
        let mut seen = BTreeSet::new();
        for s in &self.steps {
            check_name("step name", &s.name)?;
            if !seen.insert(s.name.as_str()) {
                return Err(Error::invalid(
                    "pipeline",
                    format!("two steps are named {:?}", s.name),
                ));
            }
        }
        if self.steps.is_empty() {
            return Err(Error::invalid(
                "pipeline",
                format!("{} has no steps", self.name),
            ));
        }
        for s in &self.steps {
            for dep in s.dependencies() {
                if dep == s.name {
                    return Err(Error::invalid(
                        "pipeline",
                        format!("step {} depends on itself", s.name),
                    ));
                }
                if !seen.contains(dep) {
                    return Err(Error::invalid(
                        "pipeline",
                        format!("step {} depends on {dep:?}, which is not a step", s.name),
                    ));
                }
            }
        }
        // Kahn's algorithm, stable in insertion order.
        let mut indegree: BTreeMap<&str, usize> = self
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.dependencies().len()))
            .collect();
        let mut order: Vec<&StepDef> = Vec::with_capacity(self.steps.len());
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while order.len() < self.steps.len() {
            let next = self
                .steps
                .iter()
                .find(|s| !done.contains(s.name.as_str()) && indegree[s.name.as_str()] == 0);
            let Some(next) = next else {
                let stuck: Vec<&str> = self
                    .steps
                    .iter()
                    .filter(|s| !done.contains(s.name.as_str()))
                    .map(|s| s.name.as_str())
                    .collect();
                return Err(Error::invalid(
                    "pipeline",
                    format!("the steps {} form a cycle", stuck.join(", ")),
                ));
            };
            done.insert(&next.name);
            order.push(next);
            for s in &self.steps {
                if s.dependencies().contains(next.name.as_str())
                    && let Some(d) = indegree.get_mut(s.name.as_str())
                {
                    *d -= 1;
                }
            }
        }
        Ok(order)
    }

    /// Every step that depends on `step`, directly or not.
    pub fn dependants(&self, step: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut frontier = vec![step.to_owned()];
        while let Some(s) = frontier.pop() {
            for d in &self.steps {
                if d.dependencies().contains(s.as_str()) && out.insert(d.name.clone()) {
                    frontier.push(d.name.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::FnStep;

    fn noop() -> FnStep {
        FnStep::new(|_| async { Ok(Default::default()) })
    }

    #[test]
    fn orders_and_rejects_bad_graphs() {
        let p = Pipeline::new("p")
            .step(StepDef::new("train", noop()).input("data", "prep", "dataset"))
            .step(StepDef::new("prep", noop()))
            .step(StepDef::new("report", noop()).after("train").after("prep"));
        let order: Vec<&str> = p.validate().unwrap().iter().map(|s| s.name()).collect();
        assert_eq!(order, ["prep", "train", "report"]);
        assert_eq!(
            p.dependants("prep"),
            BTreeSet::from(["train".into(), "report".into()])
        );

        let cycle = Pipeline::new("p")
            .step(StepDef::new("a", noop()).after("b"))
            .step(StepDef::new("b", noop()).after("a"))
            .step(StepDef::new("c", noop()));
        assert!(
            cycle
                .validate()
                .unwrap_err()
                .to_string()
                .contains("a, b form a cycle")
        );
        let missing = Pipeline::new("p").step(StepDef::new("a", noop()).input("x", "nope", "out"));
        assert!(
            missing
                .validate()
                .unwrap_err()
                .to_string()
                .contains("\"nope\", which is not a step")
        );
        let dup = Pipeline::new("p")
            .step(StepDef::new("a", noop()))
            .step(StepDef::new("a", noop()));
        assert!(
            dup.validate()
                .unwrap_err()
                .to_string()
                .contains("two steps")
        );
        let bad = Pipeline::new("p").step(StepDef::new("a b", noop()));
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("step name")
        );
        assert!(Pipeline::new("p").validate().is_err());
    }
}
