//! Pipelines declared in YAML, assembled from registered steps, so a pipeline runs without
//! writing Rust (`mlops pipeline run pipeline.yaml`):
//!
//! ```yaml
//! pipeline: churn
//! steps:
//!   - name: data
//!     uses: dataset               # a step registered under this name
//!     with: {name: churn}         # its parameters
//!   - name: train
//!     uses: train
//!     needs: {data: data.dataset} # input name: step.output
//!     with: {target: churned, model: logistic, epochs: 20}
//!     code_version: "2"
//!     retries: 2                  # transient failures
//!     backoff: 1s
//!     timeout: 30m
//!   - name: report
//!     uses: report
//!     after: [train]              # order without reading outputs
//!     cache: false
//!     when: train.model.registered  # run only when this output field is true
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::pipeline::{Pipeline, StepDef};
use crate::step::Step;

/// A pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its steps.
    pub steps: Vec<StepSpec>,
}

/// One step of a pipeline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Its name.
    pub name: String,
    /// The registered step it runs.
    pub uses: String,
    /// Inputs: input name → `step.output`.
    #[serde(default)]
    pub needs: BTreeMap<String, String>,
    /// Steps it runs after without reading their outputs.
    #[serde(default)]
    pub after: Vec<String>,
    /// Parameters.
    #[serde(default, rename = "with")]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Code version (part of the cache key).
    #[serde(default)]
    pub code_version: Option<String>,
    /// Retries of transient failures.
    #[serde(default)]
    pub retries: u32,
    /// First wait between attempts (`500ms`, `2s`).
    #[serde(default)]
    pub backoff: Option<String>,
    /// Attempt timeout (`30s`, `10m`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Whether results may be served from the cache.
    #[serde(default = "yes")]
    pub cache: bool,
    /// Run only when this boolean field of an upstream output is true: `step.output.field`
    /// (otherwise the step and its dependants are bypassed).
    #[serde(default)]
    pub when: Option<String>,
}

fn yes() -> bool {
    true
}

/// Steps available to pipeline files, by name.
#[derive(Debug, Clone, Default)]
pub struct StepRegistry {
    steps: BTreeMap<String, Arc<dyn Step>>,
}

impl StepRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `step` as `name` (replacing one of that name).
    pub fn register(mut self, name: impl Into<String>, step: impl Step) -> Self {
        self.steps.insert(name.into(), Arc::new(step));
        self
    }

    /// The registered names.
    pub fn names(&self) -> Vec<&str> {
        self.steps.keys().map(String::as_str).collect()
    }

    /// A step by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Step>> {
        self.steps.get(name)
    }
}

fn duration(what: &str, step: &str, text: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        Error::invalid("pipeline file", format!("step {step}: {what} {text:?}")).with_source(e)
    })
}

impl PipelineSpec {
    /// Parses a pipeline file; unknown keys are errors naming them.
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        serde_yaml_ng::from_str(yaml)
            .map_err(|e| Error::invalid("pipeline file", "").with_source(e))
    }

    /// The pipeline, with each step taken from `registry` and its parameters checked by it
    /// ([`Step::check`]); then validated as a DAG.
    pub fn build(&self, registry: &StepRegistry) -> Result<Pipeline> {
        let mut pipeline = Pipeline::new(self.pipeline.clone());
        for s in &self.steps {
            let step = registry.get(&s.uses).ok_or_else(|| {
                Error::invalid(
                    "pipeline file",
                    format!(
                        "step {} uses {:?}, which is not a known step (known: {})",
                        s.name,
                        s.uses,
                        registry.names().join(", ")
                    ),
                )
            })?;
            let params = serde_json::Value::Object(s.params.clone());
            step.check(&params).map_err(|mut e| {
                // Name the step of the file, keeping the cause.
                if let Error::InvalidArgument { what, message, .. } = &mut e {
                    *what = "pipeline file";
                    *message = format!("step {}: {message}", s.name);
                }
                e
            })?;
            let mut def = StepDef::from_arc(s.name.clone(), step.clone()).params(params);
            for (input, from) in &s.needs {
                let (step_name, output) = from.split_once('.').ok_or_else(|| {
                    Error::invalid(
                        "pipeline file",
                        format!(
                            "step {}: needs {input}: {from:?} is not step.output",
                            s.name
                        ),
                    )
                })?;
                def = def.input(input.clone(), step_name, output);
            }
            for a in &s.after {
                def = def.after(a.clone());
            }
            if let Some(v) = &s.code_version {
                def = def.code_version(v.clone());
            }
            let backoff = match &s.backoff {
                Some(b) => duration("backoff", &s.name, b)?,
                None => Duration::from_millis(500),
            };
            if s.retries > 0 || s.backoff.is_some() {
                def = def.retries(s.retries, backoff);
            }
            if let Some(t) = &s.timeout {
                def = def.timeout(duration("timeout", &s.name, t)?);
            }
            if !s.cache {
                def = def.no_cache();
            }
            if let Some(when) = &s.when {
                let mut parts = when.splitn(3, '.');
                let (Some(step), Some(output)) = (parts.next(), parts.next()) else {
                    return Err(Error::invalid(
                        "pipeline file",
                        format!("step {}: when {when:?} is not step.output.field", s.name),
                    ));
                };
                def = def.when(step, output, parts.next().unwrap_or(""));
            }
            pipeline = pipeline.step(def);
        }
        pipeline.validate()?;
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::{FnStep, Outputs};

    #[derive(Debug)]
    struct NeedsTarget;

    #[async_trait::async_trait]
    impl Step for NeedsTarget {
        async fn run(&self, _ctx: Arc<crate::StepContext>) -> Result<Outputs> {
            Ok(Outputs::new())
        }

        fn check(&self, params: &serde_json::Value) -> Result<()> {
            match params.get("target") {
                Some(serde_json::Value::String(_)) => Ok(()),
                _ => Err(Error::invalid("step param", "needs target (a column name)")),
            }
        }
    }

    fn registry() -> StepRegistry {
        StepRegistry::new()
            .register("noop", FnStep::new(|_| async { Ok(Outputs::new()) }))
            .register("train", NeedsTarget)
    }

    #[test]
    fn builds_a_pipeline_from_yaml() {
        let yaml = r#"
pipeline: churn
steps:
  - {name: data, uses: noop, with: {name: churn}}
  - name: train
    uses: train
    needs: {data: data.dataset}
    with: {target: churned, epochs: 3}
    code_version: "2"
    retries: 2
    backoff: 10ms
    timeout: 5m
  - {name: report, uses: noop, after: [train], cache: false, when: train.model.ok}
"#;
        let p = PipelineSpec::from_yaml(yaml)
            .unwrap()
            .build(&registry())
            .unwrap();
        assert_eq!(p.name(), "churn");
        let train = p.get("train").unwrap();
        assert_eq!(train.params["epochs"], 3);
        assert_eq!(
            train.dependencies().into_iter().collect::<Vec<_>>(),
            ["data"]
        );
        let report = p.get("report").unwrap();
        assert_eq!(
            report.dependencies().into_iter().collect::<Vec<_>>(),
            ["train"]
        );
        assert_eq!(
            report.condition.as_ref().unwrap().to_string(),
            "train.model.ok"
        );
    }

    #[test]
    fn bad_files_are_named() {
        let r = registry();
        for (yaml, want) in [
            (
                "pipeline: p\nsteps: [{name: a, uses: nope}]",
                "not a known step (known: noop, train)",
            ),
            (
                "pipeline: p\nsteps: [{name: a, uses: train}]",
                "step a: needs target",
            ),
            (
                "pipeline: p\nsteps: [{name: a, uses: noop, needs: {x: b}}]",
                "\"b\" is not step.output",
            ),
            (
                "pipeline: p\nsteps: [{name: a, uses: noop, timeout: soon}]",
                "timeout \"soon\"",
            ),
            (
                "pipeline: p\nsteps: [{name: a, uses: noop, colour: red}]",
                "unknown field `colour`",
            ),
            (
                "pipeline: p\nsteps: [{name: a, uses: noop, after: [a]}]",
                "depends on itself",
            ),
        ] {
            let e = PipelineSpec::from_yaml(yaml)
                .and_then(|s| s.build(&r))
                .unwrap_err();
            assert!(e.to_string().contains(want), "{yaml}: {e}");
        }
    }
}
