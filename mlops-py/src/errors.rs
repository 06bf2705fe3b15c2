//! Rust errors as the Python exceptions of their category (`mlops.errors`), and Python type
//! errors naming the argument.

use pyo3::prelude::*;
use pyo3::types::PyType;

/// The exception class of an error's category, by name in `mlops.errors`.
fn class_name(e: &mlops::Error) -> &'static str {
    if e.is_timeout() {
        return "TimedOut";
    }
    match e.kind() {
        mlops::ErrorKind::NotFound => "NotFound",
        mlops::ErrorKind::AlreadyExists => "AlreadyExists",
        mlops::ErrorKind::Conflict => "Conflict",
        mlops::ErrorKind::InvalidArgument => "InvalidArgument",
        mlops::ErrorKind::PolicyDenied => "PolicyDenied",
        mlops::ErrorKind::NotSupported => "NotSupported",
        mlops::ErrorKind::PermissionDenied => "PermissionDenied",
        mlops::ErrorKind::Unavailable => "Unavailable",
        mlops::ErrorKind::Corrupt => "Corrupt",
        _ => "BackendError",
    }
}

/// `e` as the Python exception of its category, its message the Rust error's.
pub(crate) fn to_py(py: Python<'_>, e: &mlops::Error) -> PyErr {
    let class = py
        .import("mlops.errors")
        .and_then(|m| m.getattr(class_name(e)))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(class) => PyErr::from_type(class, e.to_string()),
        Err(import) => import,
    }
}

/// `Result<T, mlops::Error>` into a `PyResult`.
pub(crate) trait OrPy<T> {
    /// The value, or the error as its Python exception.
    fn or_py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrPy<T> for mlops::Result<T> {
    fn or_py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}

/// A `TypeError` naming the argument and what it must be.
pub(crate) fn type_error(argument: &str, must_be: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let got = got
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    pyo3::exceptions::PyTypeError::new_err(format!("{argument} must be {must_be}, not {got}"))
}
