//! Drift and data quality: [`detect`] (Evidently's default tests and thresholds, per column
//! and for the dataset), [`Profile`] (a reference summary to keep instead of the data),
//! [`DriftReport`] (dict, JSON, standalone HTML) and [`QualitySuite`] (Great Expectations'
//! expectation names).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use mlops::DriftDetector as _;
use mlops::drift::{
    ColumnOverride, DetectOptions, ProfileOptions, Report, StatDetector, profiles, quality::Suite,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{OrPy, type_error};
use crate::registry::Registry;
use crate::runtime::block_on;
use crate::store::{json_to_py, to_py};
use crate::table::batches_of;

/// A reference dataset's summary (per column: sample of values or category counts, missing
/// counts): what drift is measured against, kept instead of the data.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Profile {
    inner: mlops::ReferenceProfile,
}

#[pymethods]
impl Profile {
    /// Rows profiled.
    #[getter]
    fn rows(&self) -> u64 {
        self.inner.rows
    }

    /// Columns profiled, with their kind: `{column: "numerical" | "categorical"}`.
    #[getter]
    fn columns(&self) -> BTreeMap<String, &'static str> {
        self.inner
            .columns
            .iter()
            .map(|c| {
                let kind = match c.kind() {
                    mlops::drift::ColumnKind::Numerical => "numerical",
                    mlops::drift::ColumnKind::Categorical => "categorical",
                };
                (c.name.clone(), kind)
            })
            .collect()
    }

    /// The profile as JSON (what `mlops drift --save-profile` writes).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        serde_json::to_string(&self.inner)
            .map_err(|e| mlops::Error::backend("json", e))
            .or_py(py)
    }

    /// A profile from its JSON.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Profile> {
        let inner = serde_json::from_str(text)
            .map_err(|e| mlops::Error::invalid("profile", format!("not a drift profile: {e}")))
            .or_py(py)?;
        Ok(Profile { inner })
    }

    /// Stores the profile with a registered model version (tag `mlops.drift.profile`), where
    /// monitoring finds it; returns the stored blob's digest.
    fn attach(
        &self,
        py: Python<'_>,
        registry: &Bound<'_, Registry>,
        name: &str,
        version: u64,
    ) -> PyResult<String> {
        let registry = registry.get();
        let store = Arc::clone(&registry.store_ref().inner);
        let r = Arc::clone(&registry.inner);
        let name: mlops::ModelName = name.parse().or_py(py)?;
        let version = mlops::Version::new(version).or_py(py)?;
        let profile = self.inner.clone();
        let digest = block_on(py, async move {
            profiles::attach(store.as_ref(), r.as_ref(), &name, version, &profile).await
        })?
        .or_py(py)?;
        Ok(digest.to_hex())
    }

    /// The profile attached to a registered model version (`NotFound` when it has none).
    #[staticmethod]
    fn for_version(
        py: Python<'_>,
        registry: &Bound<'_, Registry>,
        name: &str,
        version: u64,
    ) -> PyResult<Profile> {
        let registry = registry.get();
        let store = Arc::clone(&registry.store_ref().inner);
        let r = Arc::clone(&registry.inner);
        let name: mlops::ModelName = name.parse().or_py(py)?;
        let version = mlops::Version::new(version).or_py(py)?;
        let inner = block_on(py, async move {
            profiles::for_version(store.as_ref(), r.as_ref(), &name, version).await
        })?
        .or_py(py)?;
        Ok(Profile { inner })
    }

    fn __repr__(&self) -> String {
        format!(
            "<Profile: {} rows, {} columns>",
            self.inner.rows,
            self.inner.columns.len()
        )
    }
}

/// The drift between a reference and current data: per-column tests, scores and thresholds,
/// and the dataset decision (`dataset_drift`: the share of drifted columns reached
/// `drift_share`). The full report — histograms of every column, for `to_dict`, `to_json` and
/// the HTML page — is drawn on first use from the profile and the current data it keeps.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct DriftReport {
    drift: mlops::DriftReport,
    profile: mlops::ReferenceProfile,
    current: Vec<RecordBatch>,
    names: (String, String),
    report: OnceLock<Report>,
}

impl DriftReport {
    /// The full report, drawn once.
    fn report(&self, py: Python<'_>) -> PyResult<&Report> {
        if let Some(report) = self.report.get() {
            return Ok(report);
        }
        let drawn = py
            .detach(|| {
                Report::new(
                    &self.drift,
                    &self.profile,
                    &self.current,
                    self.names.0.as_str(),
                    self.names.1.as_str(),
                )
            })
            .or_py(py)?;
        Ok(self.report.get_or_init(|| drawn))
    }
}

#[pymethods]
impl DriftReport {
    /// Whether the dataset drifted.
    #[getter]
    fn dataset_drift(&self) -> bool {
        self.drift.dataset_drift
    }

    /// Drifted columns / judged columns.
    #[getter]
    fn share_drifted(&self) -> f64 {
        self.drift.share_drifted
    }

    /// The share at which the dataset counts as drifted.
    #[getter]
    fn drift_share(&self) -> f64 {
        self.drift.drift_share
    }

    /// How many columns drifted.
    #[getter]
    fn drifted_columns(&self) -> usize {
        self.drift.drifted_columns
    }

    /// Per column: `{column: {"kind", "test", "score", "threshold", "drifted", ...}}`.
    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for c in &self.drift.columns {
            dict.set_item(&c.column, to_py(py, c)?)?;
        }
        Ok(dict)
    }

    /// Columns that could not be tested, with the reason: `{column: reason}`.
    #[getter]
    fn untested(&self) -> BTreeMap<String, String> {
        self.drift
            .untested
            .iter()
            .map(|u| (u.column.clone(), u.reason.clone()))
            .collect()
    }

    /// The report as a dict (the JSON's structure, histograms included).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.report(py)?)
    }

    /// The report as JSON (`mlops.drift.report/v1`).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        self.report(py)?.to_json().or_py(py)
    }

    /// Writes the report as a standalone HTML page (no network assets) to `path`.
    fn save_html(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let html = self.report(py)?.to_html();
        py.detach(move || {
            write_atomically(&path, html.as_bytes())
                .map_err(|e| mlops::Error::io("report", "write", &path, e))
        })
        .or_py(py)
    }

    /// The HTML page (what notebooks display).
    fn _repr_html_(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.report(py)?.to_html())
    }

    fn __repr__(&self) -> String {
        format!(
            "<DriftReport: dataset_drift={}, {}/{} columns drifted>",
            if self.drift.dataset_drift {
                "True"
            } else {
                "False"
            },
            self.drift.drifted_columns,
            self.drift.columns_judged()
        )
    }
}

/// Writes `path` through a temporary file in the same folder, so a reader never sees half a
/// file.
fn write_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn profile_options(
    columns: Option<Vec<String>>,
    categorical: Option<Vec<String>>,
    max_values: Option<usize>,
) -> ProfileOptions {
    let mut options = ProfileOptions::default();
    options.columns = columns.unwrap_or_default();
    options.categorical = categorical.unwrap_or_default();
    options.max_values = max_values;
    options
}

/// Profiles `data` (any Arrow-exporting table) as a drift reference.
#[pyfunction]
#[pyo3(signature = (data, columns=None, categorical=None, max_values=None))]
pub(crate) fn profile(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    columns: Option<Vec<String>>,
    categorical: Option<Vec<String>>,
    max_values: Option<usize>,
) -> PyResult<Profile> {
    let (_, batches) = batches_of("data", data)?;
    let options = profile_options(columns, categorical, max_values);
    let inner = py
        .detach(move || StatDetector::new().profile(&batches, &options))
        .or_py(py)?;
    Ok(Profile { inner })
}

/// Per-column tests: `{column: "psi"}` or `{column: ("psi", 0.2)}`.
fn overrides(tests: Option<&Bound<'_, PyDict>>) -> PyResult<BTreeMap<String, ColumnOverride>> {
    let mut out = BTreeMap::new();
    let Some(tests) = tests else {
        return Ok(out);
    };
    for (k, v) in tests.iter() {
        let column: String = k
            .extract()
            .map_err(|_| type_error("a key of tests", "a column name (str)", &k))?;
        let mut o = ColumnOverride::default();
        if let Ok(name) = v.extract::<String>() {
            o.test = Some(name);
        } else if let Ok(pair) = v.cast::<PyTuple>() {
            let (name, threshold): (Option<String>, Option<f64>) =
                pair.extract().map_err(|_| {
                    type_error(&format!("tests[{column:?}]"), "(test name, threshold)", &v)
                })?;
            o.test = name;
            o.threshold = threshold;
        } else if let Ok(threshold) = v.extract::<f64>() {
            o.threshold = Some(threshold);
        } else {
            return Err(type_error(
                &format!("tests[{column:?}]"),
                "a test name, a threshold, or (test name, threshold)",
                &v,
            ));
        }
        out.insert(column, o);
    }
    Ok(out)
}

/// Detects drift between `reference` (a table or a `Profile`) and `current` (a table).
///
/// Tests default as in Evidently (by column kind, rows and distinct values: KS or chi-square
/// on small data, Wasserstein or Jensen–Shannon on large); `tests` sets a column's test and
/// threshold (`{"age": "psi"}`, `{"age": ("ks", 0.01)}`); the dataset drifts when the share of
/// drifted columns reaches `drift_share`.
#[pyfunction]
#[pyo3(signature = (reference, current, drift_share=0.5, columns=None, categorical=None, tests=None, max_values=None, reference_name="reference", current_name="current"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn detect(
    py: Python<'_>,
    reference: &Bound<'_, PyAny>,
    current: &Bound<'_, PyAny>,
    drift_share: f64,
    columns: Option<Vec<String>>,
    categorical: Option<Vec<String>>,
    tests: Option<&Bound<'_, PyDict>>,
    max_values: Option<usize>,
    reference_name: &str,
    current_name: &str,
) -> PyResult<DriftReport> {
    let reference = match reference.cast::<Profile>() {
        Ok(p) => Reference::Saved(p.get().inner.clone()),
        Err(_) => Reference::Data(batches_of("reference", reference)?.1),
    };
    let (_, current) = batches_of("current", current)?;
    let mut options = DetectOptions::default();
    options.drift_share = drift_share;
    options.overrides = overrides(tests)?;
    let profile_options = profile_options(columns, categorical, max_values);
    let (profile, drift, current) = py
        .detach(move || {
            let detector = StatDetector::new();
            let profile = match reference {
                Reference::Saved(p) => p,
                Reference::Data(batches) => detector.profile(&batches, &profile_options)?,
            };
            let drift = detector.detect(&profile, &current, &options)?;
            Ok::<_, mlops::Error>((profile, drift, current))
        })
        .or_py(py)?;
    Ok(DriftReport {
        drift,
        profile,
        current,
        names: (reference_name.to_owned(), current_name.to_owned()),
        report: OnceLock::new(),
    })
}

/// What drift is measured against.
enum Reference {
    /// A profile made earlier.
    Saved(mlops::ReferenceProfile),
    /// Data, profiled exactly.
    Data(Vec<RecordBatch>),
}

/// A data-quality suite: Great Expectations' expectation names
/// (`expect_column_values_to_not_be_null`, `expect_column_values_to_be_between`, …), from YAML
/// or JSON.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct QualitySuite {
    inner: Suite,
}

#[pymethods]
impl QualitySuite {
    /// A suite from YAML or JSON text.
    #[staticmethod]
    fn from_yaml(py: Python<'_>, text: &str) -> PyResult<QualitySuite> {
        Ok(QualitySuite {
            inner: Suite::from_yaml(text).or_py(py)?,
        })
    }

    /// A suite from a YAML or JSON file.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<QualitySuite> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| mlops::Error::io("suite", "read", &path, e))
            .or_py(py)?;
        Self::from_yaml(py, &text)
    }

    /// A suite from a dict: `{"name": ..., "expectations": [{"expectation_type": ..., ...}]}`.
    #[staticmethod]
    fn from_dict(py: Python<'_>, suite: &Bound<'_, PyAny>) -> PyResult<QualitySuite> {
        let json = crate::store::py_to_json("suite", suite)?;
        Self::from_yaml(py, &json.to_string())
    }

    /// Its name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// Validates `data` (any Arrow-exporting table): `{"suite", "success",
    /// "evaluated_expectations", "successful_expectations", "results": [...]}`.
    fn validate<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (_, batches) = batches_of("data", data)?;
        let suite = self.inner.clone();
        let report = py.detach(move || suite.validate(&batches)).or_py(py)?;
        let json = serde_json::to_value(&report)
            .map_err(|e| mlops::Error::backend("json", e))
            .or_py(py)?;
        json_to_py(py, &json)
    }

    /// The suite as YAML.
    fn to_yaml(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.to_yaml().or_py(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "<QualitySuite: {:?}, {} expectations>",
            self.inner.name,
            self.inner.expectations.len()
        )
    }
}
