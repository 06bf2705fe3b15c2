//! Rego `test_` rules run as `opa test` runs them (`mlops policy test`).

use mlops_core::Result;
use regorus::Value;

use super::RegoPolicyEngine;
use super::decision::to_json;
use super::error::RegoError;

/// The outcome of one Rego `test_` rule (see [`RegoPolicyEngine::run_tests`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestResult {
    /// `data.`-prefixed package.
    pub package: String,
    /// The rule name (`test_…`).
    pub name: String,
    /// The module it is declared in.
    pub file: String,
    /// True when the rule evaluated to `true`.
    pub passed: bool,
    /// Why it failed: the value it had, or the evaluation error.
    pub failure: Option<String>,
}

impl RegoPolicyEngine {
    /// Runs every `test_` rule of the loaded modules, as `opa test` does: a test passes when its
    /// rule is `true`.
    pub fn run_tests(&self) -> Result<Vec<TestResult>> {
        let mut results = Vec::new();
        for m in &self.modules {
            for name in test_rule_names(&m.text) {
                let declared = self
                    .template
                    .has_declared_rule_rooted_at(&m.label, &name)
                    .unwrap_or(false);
                if !declared {
                    continue;
                }
                let path = format!("{}.{name}", m.package);
                let got = self.with_engine(&serde_json::Value::Null, |engine| {
                    Ok(engine.eval_rule(path.clone()))
                })?;
                let (passed, failure) = match got {
                    Ok(Value::Bool(true)) => (true, None),
                    Ok(Value::Undefined) => (false, Some("undefined".to_string())),
                    Ok(other) => (false, Some(format!("{}", to_json(&other)?))),
                    Err(e) => (false, Some(RegoError::new(e).line())),
                };
                results.push(TestResult {
                    package: m.package.clone(),
                    name,
                    file: m.label.clone(),
                    passed,
                    failure,
                });
            }
        }
        Ok(results)
    }
}

/// Names of rules that look like tests (`test_…` at the start of a line), confirmed against the
/// parsed module by the caller.
fn test_rule_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (name.starts_with("test_")).then_some(name)
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_are_found_once() {
        let text = "package p\ntest_a if { true }\n  test_b if { true }\ntest_a if { false }\n# test_c\nx := 1";
        assert_eq!(test_rule_names(text), vec!["test_a", "test_b"]);
    }
}
