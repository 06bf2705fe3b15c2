//! [`PolicyEngine`]: Rego policies (files, folders, the shipped governance library) evaluated
//! in process by regorus, and the decision log's verification.

use std::path::PathBuf;
use std::sync::Arc;

use mlops::PolicyEngine as _;
use mlops::policy::{PolicyQuery, RegoPolicyEngine};
use pyo3::prelude::*;

use crate::errors::OrPy;
use crate::runtime::block_on;
use crate::store::{py_to_json, store_of, to_py};

/// One policy decision: `allowed`, the deny `reasons`, the rule's raw `result`, an id, and the
/// policy revision that made it.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Decision {
    inner: mlops::policy::Decision,
}

#[pymethods]
impl Decision {
    /// Whether the query was allowed (no deny reasons).
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.allowed
    }

    /// Why it was denied, one line per rule.
    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.inner.reasons.clone()
    }

    /// The rule's value as evaluated (JSON-like).
    #[getter]
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::store::json_to_py(py, &self.inner.result)
    }

    /// A unique id (what the decision log records).
    #[getter]
    fn decision_id(&self) -> String {
        self.inner.decision_id.clone()
    }

    /// The policies' revision.
    #[getter]
    fn revision(&self) -> Option<String> {
        self.inner.revision.clone()
    }

    /// Everything as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    fn __bool__(&self) -> bool {
        self.inner.allowed
    }

    fn __repr__(&self) -> String {
        format!(
            "<Decision: allowed={}, reasons={:?}>",
            if self.inner.allowed { "True" } else { "False" },
            self.inner.reasons
        )
    }
}

/// Rego policies evaluated in process (regorus, Rego v1 unless `rego_v0`).
///
/// `policies` are `.rego` files or folders of them (a folder's `data.json` files are merged
/// into `data`); `library=True` adds the shipped `data.mlops.*` governance library (approval,
/// metric and fairness thresholds, drift, lineage, datasets); `data` is merged into `data.*`
/// (thresholds: `{"mlops": {"thresholds": {"val_accuracy": {"min": 0.8}}}}`); `modules` are
/// sources by label.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct PolicyEngine {
    pub(crate) inner: Arc<dyn mlops::PolicyEngine>,
    rego: Arc<RegoPolicyEngine>,
}

#[pymethods]
impl PolicyEngine {
    #[new]
    #[pyo3(signature = (policies=None, library=false, data=None, modules=None, rego_v0=false, revision=None))]
    fn new(
        py: Python<'_>,
        policies: Option<Vec<PathBuf>>,
        library: bool,
        data: Option<&Bound<'_, PyAny>>,
        modules: Option<std::collections::BTreeMap<String, String>>,
        rego_v0: bool,
        revision: Option<String>,
    ) -> PyResult<Self> {
        let data = data
            .filter(|d| !d.is_none())
            .map(|d| py_to_json("data", d))
            .transpose()?;
        let build = move || -> mlops::Result<RegoPolicyEngine> {
            let mut builder = RegoPolicyEngine::builder().rego_v0(rego_v0);
            if library {
                builder = builder.library()?;
            }
            for path in policies.unwrap_or_default() {
                builder = builder.policy_path(path)?;
            }
            for (label, source) in modules.unwrap_or_default() {
                builder = builder.policy(label, source)?;
            }
            if let Some(data) = data {
                builder = builder.data(data)?;
            }
            if let Some(revision) = revision {
                builder = builder.revision(revision);
            }
            builder.build()
        };
        let engine = Arc::new(py.detach(build).or_py(py)?);
        Ok(Self {
            inner: Arc::clone(&engine) as Arc<dyn mlops::PolicyEngine>,
            rego: engine,
        })
    }

    /// Evaluates the rule or package at `path` (`data.ml.deploy`, `ml/deploy`) with `input`
    /// (JSON-like). A package decides by its `allow`/`deny` rules; a rule by its value.
    #[pyo3(signature = (path, input=None))]
    fn evaluate(
        &self,
        py: Python<'_>,
        path: String,
        input: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        let input = match input {
            Some(i) => py_to_json("input", i)?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        let engine = Arc::clone(&self.inner);
        let inner = py
            .detach(move || engine.evaluate(&PolicyQuery::new(path, input)))
            .or_py(py)?;
        Ok(Decision { inner })
    }

    /// Like `evaluate`, but a denial raises `PolicyDenied` naming the reasons.
    #[pyo3(signature = (path, input=None))]
    fn check(
        &self,
        py: Python<'_>,
        path: String,
        input: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        let decision = self.evaluate(py, path.clone(), input)?;
        if decision.inner.allowed {
            return Ok(decision);
        }
        Err(crate::errors::to_py(
            py,
            &mlops::Error::policy_denied(path, decision.inner.reasons),
        ))
    }

    /// The loaded packages (`data.`-prefixed, sorted).
    #[getter]
    fn packages(&self) -> Vec<String> {
        self.rego.packages()
    }

    /// The policies' revision (a digest of their sources and data unless given).
    #[getter]
    fn revision(&self) -> String {
        self.rego.revision().to_owned()
    }

    /// Runs the policies' `test_` rules: `[{"package", "name", "file", "passed", "failure"}]`.
    fn run_tests<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rego = Arc::clone(&self.rego);
        let results = py.detach(move || rego.run_tests()).or_py(py)?;
        to_py(py, &results)
    }

    fn __repr__(&self) -> String {
        format!("mlops.PolicyEngine(packages={:?})", self.rego.packages())
    }
}

/// Verifies the hash chain of a store's decision log (every decision a governed registry
/// made): `{"segments", "verified", "head": {"entries", "hash"}, "first_bad", "ok"}`.
#[pyfunction]
pub(crate) fn verify_decision_log<'py>(
    py: Python<'py>,
    store: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let store = store_of(py, store)?;
    let backing = Arc::clone(&store.get().inner);
    let report = block_on(py, async move {
        let name: mlops::RefName = mlops::policy::log::DEFAULT_LOG.parse()?;
        mlops::policy::log::verify(backing.as_ref(), &name).await
    })?
    .or_py(py)?;
    let ok = report.is_ok();
    let dict = to_py(py, &report)?;
    dict.set_item("ok", ok)?;
    Ok(dict)
}
