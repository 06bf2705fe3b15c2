//! [`RegoPolicyEngine`]: the core [`PolicyEngine`] on regorus.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use mlops_core::policy::{Decision, PolicyEngine, PolicyQuery};
use mlops_core::{Error, Result};
use regorus::Value;

/// Which decision rules a package declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PackageRules {
    allow: bool,
    deny: bool,
}

/// One loaded policy module.
#[derive(Debug, Clone)]
struct Module {
    /// The label it was loaded under (a file path, or the name given with a string).
    label: String,
    /// `data.`-prefixed package path.
    package: String,
    /// The Rego text.
    text: String,
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
}

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
                let mut msg = one_line(&e);
                if !self.v0 && msg.contains("keyword is required") {
                    msg.push_str(" (is this Rego v0? load it with the rego_v0 option, --rego-v0)");
                }
                if located(&msg, &label) {
                    Error::invalid("policy", msg)
                } else {
                    Error::invalid("policy", format!("{label}: {msg}"))
                }
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
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid("policy", format!("cannot read {}: {e}", path.display()))
        })?;
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
        let bytes =
            serde_json::to_vec(&data).map_err(|e| Error::invalid("policy data", e.to_string()))?;
        self.engine
            .add_data(Value::from(data))
            .map_err(|e| Error::invalid("policy data", one_line(&e)))?;
        self.digester.update(b"data\0");
        self.digester.update(&bytes);
        self.digester.update(b"\0");
        Ok(self)
    }

    /// Reads a JSON data document from a file.
    pub fn data_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(
                "policy data",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::invalid("policy data", format!("{}: {e}", path.display())))?;
        self.data(value)
            .map_err(|e| Error::invalid("policy data", format!("{}: {e}", path.display())))
    }

    /// Names the policy revision recorded with each decision (OPA's bundle revision). The
    /// default is a digest of every module and data document loaded, so two engines with the
    /// same policies report the same revision.
    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
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
        // Preparing analyses every module once; clones share the result.
        self.engine.set_input(Value::new_object());
        if let Some(first) = self.modules.first() {
            let probe = format!("{}.__mlops_probe__", first.package);
            if let Err(e) = self.engine.eval_query(probe, false) {
                return Err(Error::invalid("policy", one_line(&e)));
            }
        }
        let mut packages: BTreeMap<String, PackageRules> = BTreeMap::new();
        for m in &self.modules {
            let declared = |rule: &str| {
                self.engine
                    .has_declared_rule_rooted_at(&m.label, rule)
                    .map_err(|e| Error::invalid("policy", format!("{}: {}", m.label, one_line(&e))))
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
                    match compile_rvm(&mut self.engine, &path, &data) {
                        Ok(vm) => {
                            compiled.insert(path, vm);
                        }
                        Err(e) => tracing::debug!(
                            %path,
                            error = %one_line(&e),
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
        })
    }
}

/// A rule compiled to regorus's bytecode VM, with idle VMs ready to run it.
struct Compiled {
    path: String,
    program: std::sync::Arc<regorus::rvm::program::Program>,
    data: Value,
    idle: Mutex<Vec<regorus::rvm::RegoVM>>,
}

fn compile_rvm(engine: &mut regorus::Engine, path: &str, data: &Value) -> anyhow::Result<Compiled> {
    let policy = engine.compile_with_entrypoint(&path.into())?;
    let program =
        regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[path])?;
    Ok(Compiled {
        path: path.to_string(),
        program,
        data: data.clone(),
        idle: Mutex::new(Vec::new()),
    })
}

impl Compiled {
    fn eval(&self, input: &Value) -> anyhow::Result<Value> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut vm = match idle {
            Some(vm) => vm,
            None => {
                let mut vm = regorus::rvm::RegoVM::new();
                vm.load_program(std::sync::Arc::clone(&self.program));
                vm.set_data(self.data.clone())?;
                vm
            }
        };
        vm.set_input(input.clone());
        let out = vm
            .execute_entry_point_by_name(&self.path)
            .map_err(|e| anyhow::anyhow!("{e}"));
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL_MAX {
            idle.push(vm);
        }
        out
    }
}

fn walk(dir: &Path, rego: &mut Vec<PathBuf>, data: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::invalid("policy", format!("cannot read {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::invalid("policy", format!("cannot read {}: {e}", dir.display())))?;
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

/// regorus errors carry a source excerpt over several lines (`--> file:line:col`, the line, a
/// caret, `error: message`); keep `file:line:col: message` on one line.
fn one_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let location = lines.iter().find_map(|l| l.strip_prefix("--> "));
    let message = lines
        .iter()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| {
            lines
                .iter()
                .find(|l| !l.starts_with("-->") && !l.contains('|'))
                .copied()
        })
        .unwrap_or("unknown policy error");
    match location {
        Some(at) => format!("{at}: {message}"),
        None => message.to_string(),
    }
}

/// Whether a one-line error already names its location.
fn located(message: &str, label: &str) -> bool {
    message.starts_with(label)
}

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
const POOL_MAX: usize = 64;

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

    /// Evaluates any rule or query path and returns its value as JSON (`null` when undefined):
    /// what `opa eval` prints for a single expression.
    pub fn eval_value(&self, path: &str, input: &serde_json::Value) -> Result<serde_json::Value> {
        let path = normalize_path(path)?;
        let value = self.with_engine(input, |engine| {
            engine
                .eval_rule(path.clone())
                .map_err(|e| Error::invalid("policy path", format!("{path}: {}", one_line(&e))))
        })?;
        to_json(&value)
    }

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
                    Err(e) => (false, Some(one_line(&e))),
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
                    Some(Err(e)) => {
                        tracing::debug!(path, rule, error = %one_line(&e), "RVM failed; using the interpreter");
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
                    .map_err(|e| Error::invalid("policy path", format!("{p}: {}", one_line(&e))))
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
                .map_err(|e| Error::invalid("policy path", format!("{path}: {}", one_line(&e))))
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

fn not_a_decision(path: &str, value: &Value) -> Error {
    let kind = match value {
        Value::Null => "null",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        _ => "an object without allow or deny",
    };
    Error::invalid(
        "policy path",
        format!(
            "{path} is {kind}; a decision is a boolean, a set of deny messages, or an object with allow/deny"
        ),
    )
}

/// The reasons an `allow`/`deny` pair gives: every deny message, and a reason when `allow` is
/// present but not `true`.
fn allow_deny_reasons(
    path: &str,
    allow: Option<&Value>,
    deny: Option<&Value>,
) -> Result<Vec<String>> {
    let mut reasons = match deny {
        Some(d) => deny_messages(d)?,
        None => Vec::new(),
    };
    if allow.is_some_and(|a| *a != Value::Bool(true)) {
        reasons.push(format!("{path}.allow is not true"));
    }
    Ok(reasons)
}

/// Messages of a deny rule's value: a set or array of messages (objects give their `msg`), or
/// `true`.
fn deny_messages(deny: &Value) -> Result<Vec<String>> {
    let items: Vec<&Value> = match deny {
        Value::Undefined | Value::Bool(false) | Value::Null => Vec::new(),
        Value::Bool(true) => return Ok(vec!["denied".to_string()]),
        Value::Set(s) => s.iter().collect(),
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| {
            Ok(match item {
                Value::String(s) => s.to_string(),
                Value::Object(o) => match o.get(&Value::from("msg")) {
                    Some(Value::String(s)) => s.to_string(),
                    _ => to_json(item)?.to_string(),
                },
                other => to_json(other)?.to_string(),
            })
        })
        .collect()
}

impl PolicyEngine for RegoPolicyEngine {
    fn evaluate(&self, query: &PolicyQuery) -> Result<Decision> {
        let path = normalize_path(&query.path)?;
        let (reasons, result) = self.decide(&path, &query.input)?;
        Ok(Decision {
            decision_id: uuid::Uuid::new_v4().to_string(),
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

/// The input as a regorus value, converted by reference (`null` is "no input").
fn to_value(input: &serde_json::Value) -> Result<Value> {
    if input.is_null() {
        return Ok(Value::Undefined);
    }
    <Value as serde::Deserialize>::deserialize(input)
        .map_err(|e| Error::invalid("policy input", e.to_string()))
}

fn to_json(value: &Value) -> Result<serde_json::Value> {
    if *value == Value::Undefined {
        return Ok(serde_json::Value::Null);
    }
    serde_json::to_value(value).map_err(|e| Error::backend("regorus", e))
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

    #[test]
    fn test_names_are_found_once() {
        let text = "package p\ntest_a if { true }\n  test_b if { true }\ntest_a if { false }\n# test_c\nx := 1";
        assert_eq!(test_rule_names(text), vec!["test_a", "test_b"]);
    }
}
