//! [`RegoPolicyBuilder`]: modules and data documents loaded, then compiled once into a
//! [`RegoPolicyEngine`] (analysis, schedule, the RVM programs of each package's decision rules).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use mlops_core::{Error, Result};
use regorus::Value;

use super::RegoPolicyEngine;
use super::error::RegoError;
use super::rvm::compile_rvm;

/// Which decision rules a package declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PackageRules {
    pub(super) allow: bool,
    pub(super) deny: bool,
}

/// One loaded policy module.
#[derive(Debug, Clone)]
pub(super) struct Module {
    /// The label it was loaded under (a file path, or the name given with a string).
    pub(super) label: String,
    /// `data.`-prefixed package path.
    pub(super) package: String,
    /// The Rego text.
    pub(super) text: String,
}

/// Builds a [`RegoPolicyEngine`]: policies and data are added, then compiled once.
///
/// Rego v1 is the default syntax (rule bodies need `if`, multi-value rules `contains`);
/// [`rego_v0`](Self::rego_v0) switches the modules added after it to v0, the syntax of most
/// published OPA examples.
pub struct RegoPolicyBuilder {
    engine: regorus::Engine,
    modules: Vec<Module>,
    digester: blake3::Hasher,
    revision: Option<String>,
    v0: bool,
    compiled: bool,
    time_limit: Duration,
}

/// How long one evaluation may run by default: a decision of the shipped library takes tens of
/// microseconds, so a second means a runaway policy (an enormous comprehension), not a slow one.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(1);

impl fmt::Debug for RegoPolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegoPolicyBuilder")
            .field("modules", &self.modules.len())
            .finish_non_exhaustive()
    }
}

impl Default for RegoPolicyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RegoPolicyBuilder {
    /// An empty builder (Rego v1).
    pub fn new() -> Self {
        Self {
            engine: regorus::Engine::new(),
            modules: Vec::new(),
            digester: blake3::Hasher::new(),
            revision: None,
            v0: false,
            compiled: true,
            time_limit: DEFAULT_TIME_LIMIT,
        }
    }

    /// Parses the modules added from now on as Rego v0 (`deny[msg] { ... }`) when `v0` is true.
    pub fn rego_v0(mut self, v0: bool) -> Self {
        self.engine.set_rego_v0(v0);
        self.v0 = v0;
        self
    }

    /// Adds one module from a string; `label` names it in errors (use a file-like name).
    ///
    /// A syntax error is [`Error::InvalidArgument`] naming the label, line and column.
    pub fn policy(mut self, label: impl Into<String>, rego: impl Into<String>) -> Result<Self> {
        let label = label.into();
        let text = rego.into();
        if self.modules.iter().any(|m| m.label == label) {
            return Err(Error::invalid(
                "policy",
                format!("a module labelled {label:?} is already loaded"),
            ));
        }
        let package = self
            .engine
            .add_policy(label.clone(), text.clone())
            .map_err(|e| {
                let mut e = RegoError::new(e);
                if !self.v0 && e.message.contains("keyword is required") {
                    e.message
                        .push_str(" (is this Rego v0? load it with the rego_v0 option, --rego-v0)");
                }
                e.into_error("policy", &label)
            })?;
        self.digester.update(b"module\0");
        self.digester.update(label.as_bytes());
        self.digester.update(b"\0");
        self.digester.update(text.as_bytes());
        self.digester.update(b"\0");
        self.modules.push(Module {
            label,
            package,
            text,
        });
        Ok(self)
    }

    /// Adds the shipped policy library (see [`crate::library`]) under `data.mlops`.
    pub fn library(mut self) -> Result<Self> {
        for (label, text) in crate::library::MODULES {
            self = self.policy(*label, *text)?;
        }
        Ok(self)
    }

    /// Adds one `.rego` file.
    pub fn policy_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("policy file", "read", path, e))?;
        self.policy(path.display().to_string(), text)
    }

    /// Adds every `.rego` file under `dir`, recursively, in path order. Files named
    /// `*_test.rego` are included (they hold `test_` rules for [`RegoPolicyEngine::run_tests`]).
    /// A `data.json` file in any folder is merged into the data document.
    pub fn policy_dir(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut rego = Vec::new();
        let mut data = Vec::new();
        walk(dir, &mut rego, &mut data)?;
        if rego.is_empty() {
            return Err(Error::invalid(
                "policy",
                format!("{} holds no .rego files", dir.display()),
            ));
        }
        for path in rego {
            self = self.policy_file(path)?;
        }
        for path in data {
            self = self.data_file(path)?;
        }
        Ok(self)
    }

    /// Adds a file or a directory (see [`policy_file`](Self::policy_file) and
    /// [`policy_dir`](Self::policy_dir)).
    pub fn policy_path(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            self.policy_dir(path)
        } else {
            self.policy_file(path)
        }
    }

    /// Deep-merges a JSON object into the data document (`data.*`). A value conflicting with
    /// one already there is [`Error::InvalidArgument`].
    pub fn data(mut self, data: serde_json::Value) -> Result<Self> {
        if !data.is_object() {
            return Err(Error::invalid(
                "policy data",
                "the data document must be a JSON object",
            ));
        }
        let bytes = serde_json::to_vec(&data)
            .map_err(|e| Error::invalid("policy data", "cannot serialise it").with_source(e))?;
        self.engine
            .add_data(Value::from(data))
            .map_err(|e| RegoError::new(e).into_error("policy data", "cannot merge it"))?;
        self.digester.update(b"data\0");
        self.digester.update(&bytes);
        self.digester.update(b"\0");
        Ok(self)
    }

    /// Reads a JSON data document from a file.
    pub fn data_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("policy data file", "read", path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::invalid("policy data", path.display().to_string()).with_source(e)
        })?;
        self.data(value)
            .map_err(|e| Error::invalid("policy data", path.display().to_string()).with_source(e))
    }

    /// Names the policy revision recorded with each decision (OPA's bundle revision). The
    /// default is a digest of every module and data document loaded, so two engines with the
    /// same policies report the same revision.
    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    /// Bounds every evaluation (a decision, a rule's value, a Rego test) to `limit` of work, on
    /// the interpreter and the bytecode VM alike: a policy that runs longer answers
    /// [`Error::Unavailable`] with [`Error::is_timeout`] true instead of holding its caller — a
    /// server's deploy gate, a registry write — or growing without end. The default is
    /// [`DEFAULT_TIME_LIMIT`].
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Evaluates every decision with regorus's tree-walking interpreter only. By default the
    /// `allow`/`deny` rules of each package are also compiled to regorus's bytecode VM (RVM),
    /// 2–3× faster, and the interpreter serves what the VM cannot compile or run.
    pub fn interpreter_only(mut self) -> Self {
        self.compiled = false;
        self
    }

    /// Compiles the policies. Errors that only show when rules are analysed together (a
    /// conflicting rule, an unsafe variable) are [`Error::InvalidArgument`] here.
    pub fn build(mut self) -> Result<RegoPolicyEngine> {
        // A recursive function would overflow the evaluating thread's stack: refuse it now.
        super::recursion::check(self.engine.get_modules())?;
        let timer = regorus::utils::limits::ExecutionTimerConfig {
            limit: self.time_limit,
            check_interval: std::num::NonZeroU32::MIN.saturating_add(63),
        };
        self.engine.set_execution_timer_config(timer);
        // Preparing analyses every module once; clones share the result.
        self.engine.set_input(Value::new_object());
        if let Some(first) = self.modules.first() {
            let probe = format!("{}.__mlops_probe__", first.package);
            if let Err(e) = self.engine.eval_query(probe, false) {
                return Err(RegoError::new(e).into_error("policy", "cannot compile the policies"));
            }
        }
        let mut packages: BTreeMap<String, PackageRules> = BTreeMap::new();
        for m in &self.modules {
            let declared = |rule: &str| {
                self.engine
                    .has_declared_rule_rooted_at(&m.label, rule)
                    .map_err(|e| RegoError::new(e).into_error("policy", &m.label))
            };
            let rules = packages.entry(m.package.clone()).or_default();
            rules.allow |= declared("allow")?;
            rules.deny |= declared("deny")?;
        }
        let mut compiled = BTreeMap::new();
        if self.compiled {
            let data = self.engine.get_data();
            for (package, rules) in &packages {
                for (declared, rule) in [(rules.allow, "allow"), (rules.deny, "deny")] {
                    if !declared {
                        continue;
                    }
                    let path = format!("{package}.{rule}");
                    match compile_rvm(&mut self.engine, &path, &data, timer) {
                        Ok(vm) => {
                            compiled.insert(path, vm);
                        }
                        Err(e) => tracing::debug!(
                            %path,
                            error = %e.line(),
                            "not compiled to the RVM; the interpreter evaluates it"
                        ),
                    }
                }
            }
        }
        let revision = self
            .revision
            .unwrap_or_else(|| self.digester.finalize().to_hex()[..16].to_string());
        Ok(RegoPolicyEngine {
            template: self.engine,
            pool: Mutex::new(Vec::new()),
            compiled,
            packages,
            modules: self.modules,
            revision,
            time_limit: self.time_limit,
        })
    }
}

fn walk(dir: &Path, rego: &mut Vec<PathBuf>, data: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("policy folder", "read", dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io("policy folder", "read", dir, e))?;
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, rego, data)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            rego.push(path);
        } else if path.file_name().is_some_and(|n| n == "data.json") {
            data.push(path);
        }
    }
    Ok(())
}
