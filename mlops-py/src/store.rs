//! [`Store`]: one opened store (a local directory, `memory://`) that trackers, registries and
//! datasets share, and the conversions every class uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::errors::{OrPy, type_error};

/// Where the data lives: a directory (created when missing), `memory://`, `s3://bucket/prefix`,
/// `az://…`, `gs://…`. `options` are object_store's keys for the backend (`aws_endpoint`,
/// `aws_access_key_id`, `aws_allow_http`, …), over the environment's (`AWS_*`, `AZURE_*`,
/// `GOOGLE_*`). Trackers, registries and datasets made from one `Store` see the same data.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Store {
    pub(crate) url: String,
    pub(crate) inner: Arc<dyn mlops::Store>,
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (url, options=None))]
    fn new(py: Python<'_>, url: &str, options: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let options: Vec<(String, String)> = string_map("options", options)?.into_iter().collect();
        let url_owned = url.to_owned();
        let store = py
            .detach(move || mlops::storage::ObjectStoreStore::open(&url_owned, &options))
            .or_py(py)?;
        Ok(Self {
            url: url.to_owned(),
            inner: Arc::new(store),
        })
    }

    /// The URL it was opened with.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    fn __repr__(&self) -> String {
        format!("mlops.Store({:?})", self.url)
    }
}

/// The store a constructor was given: a [`Store`], or a URL to open.
pub(crate) fn store_of(py: Python<'_>, store: &Bound<'_, PyAny>) -> PyResult<Py<Store>> {
    if let Ok(s) = store.cast::<Store>() {
        return Ok(s.clone().unbind());
    }
    if let Ok(url) = store.extract::<String>() {
        return Py::new(py, Store::new(py, &url, None)?);
    }
    Err(type_error(
        "store",
        "a store URL (str) or an mlops.Store",
        store,
    ))
}

/// A `{str: str}` argument (values of other scalar types are written as text, as MLflow does).
pub(crate) fn string_map(
    argument: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<BTreeMap<String, String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(BTreeMap::new());
    };
    let dict = value
        .cast::<PyDict>()
        .map_err(|_| type_error(argument, "a dict of str to str", value))?;
    let mut out = BTreeMap::new();
    for (k, v) in dict.iter() {
        let key: String = k
            .extract()
            .map_err(|_| type_error(&format!("a key of {argument}"), "a str", &k))?;
        out.insert(key, scalar_text(argument, &v)?);
    }
    Ok(out)
}

/// A param or tag value as text: str as it is, anything else as `str()` writes it (as MLflow
/// does: `3`, `0.1`, `True`, `[64, 32]`, a NumPy scalar's value).
pub(crate) fn scalar_text(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    value
        .str()
        .and_then(|s| Ok(s.to_cow()?.into_owned()))
        .map_err(|_| {
            type_error(
                &format!("a value of {argument}"),
                "printable with str()",
                value,
            )
        })
}

/// A JSON value as the Python object `json.loads` would give.
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    Ok(match value {
        serde_json::Value::Null => py.None().into_bound(py),
        serde_json::Value::Bool(b) => b.into_bound_py_any(py)?,
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into_bound_py_any(py)?,
            (None, Some(u), _) => u.into_bound_py_any(py)?,
            (None, None, Some(f)) => f.into_bound_py_any(py)?,
            _ => n.to_string().into_bound_py_any(py)?,
        },
        serde_json::Value::String(s) => s.into_bound_py_any(py)?,
        serde_json::Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        serde_json::Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Something serializable as the Python object of its JSON.
pub(crate) fn to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("mlops: {e}")))?;
    json_to_py(py, &json)
}

/// A Python value as JSON: None, bool, int, float, str, lists and tuples, dicts with str keys.
/// `argument` names it in a `TypeError`.
pub(crate) fn py_to_json(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    use pyo3::types::{PyList as List, PyTuple};
    if value.is_none() {
        return Ok(serde_json::Value::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(serde_json::Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(i.into());
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(u.into());
        }
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{argument}: the integer {} does not fit in 64 bits",
            value.str()?
        )));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return serde_json::Number::from_f64(f.value())
            .map(serde_json::Value::Number)
            .ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "{argument}: {} has no JSON form",
                    f.value()
                ))
            });
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(serde_json::Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = value.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key: String = k
                .extract()
                .map_err(|_| type_error(&format!("a key in {argument}"), "a str", &k))?;
            let inner = py_to_json(&format!("{argument}[{key:?}]"), &v)?;
            map.insert(key, inner);
        }
        return Ok(serde_json::Value::Object(map));
    }
    if value.is_instance_of::<List>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in value.try_iter()?.enumerate() {
            items.push(py_to_json(&format!("{argument}[{i}]"), &item?)?);
        }
        return Ok(serde_json::Value::Array(items));
    }
    Err(type_error(
        argument,
        "JSON-like data (None, bool, int, float, str, list, tuple, dict with str keys)",
        value,
    ))
}
