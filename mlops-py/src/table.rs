//! Tables crossing the boundary as Arrow, zero-copy: into Rust from any object that exports the
//! Arrow PyCapsule stream interface (`__arrow_c_stream__`: pyarrow, polars, pandas ≥ 2.2, duckdb),
//! and out as [`Table`], which exports it too — so no dataframe library is required, and each
//! one reads the batches without a copy.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow::pyarrow::FromPyArrow;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::type_error;

/// The batches of any object exporting `__arrow_c_stream__`, with their schema. `argument`
/// names it in a `TypeError`.
pub(crate) fn batches_of(
    argument: &str,
    data: &Bound<'_, PyAny>,
) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    if !data.hasattr("__arrow_c_stream__")? {
        return Err(type_error(
            argument,
            "a table exporting the Arrow PyCapsule interface (__arrow_c_stream__: a pyarrow \
             Table, a polars or pandas DataFrame, an mlops Table, …)",
            data,
        ));
    }
    let reader = RecordBatchStreamReader::from_pyarrow_bound(data)?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{argument}: {e}")))?;
    Ok((schema, batches))
}

/// An Arrow table held by the SDK: a schema and its record batches. Any dataframe library reads
/// it through `__arrow_c_stream__` (`pyarrow.table(t)`, `polars.from_arrow(t)`,
/// `pandas.DataFrame(t)` with pandas ≥ 2.2… or `t.to_pandas()`).
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Table {
    schema: SchemaRef,
    batches: Arc<Vec<RecordBatch>>,
}

impl Table {
    pub(crate) fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            schema,
            batches: Arc::new(batches),
        }
    }
}

#[pymethods]
impl Table {
    /// The Arrow C stream of the batches, as the PyCapsule interface defines it.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // A requested schema is a hint; the batches are given as they are (the interface allows
        // it), and the consumer casts.
        let _ = requested_schema;
        let batches: Vec<Result<RecordBatch, arrow::error::ArrowError>> =
            self.batches.iter().cloned().map(Ok).collect();
        let reader: Box<dyn RecordBatchReader + Send> =
            Box::new(RecordBatchIterator::new(batches, Arc::clone(&self.schema)));
        PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(reader), c"arrow_array_stream")
    }

    /// Rows.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Columns.
    #[getter]
    fn num_columns(&self) -> usize {
        self.schema.fields().len()
    }

    /// Column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// A `pyarrow.Table` (needs pyarrow).
    fn to_pyarrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let pyarrow = import_optional(slf.py(), "pyarrow", "to_pyarrow()")?;
        pyarrow.call_method1("table", (slf,))
    }

    /// A `pandas.DataFrame` (needs pandas and pyarrow).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        import_optional(slf.py(), "pandas", "to_pandas()")?;
        Self::to_pyarrow(slf)?.call_method0("to_pandas")
    }

    /// A `polars.DataFrame` (needs polars), reading the batches without a copy.
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let polars = import_optional(slf.py(), "polars", "to_polars()")?;
        polars.getattr("DataFrame")?.call1((slf,))
    }

    fn __len__(&self) -> usize {
        self.num_rows()
    }

    fn __repr__(&self) -> String {
        let columns: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect();
        format!(
            "mlops.Table({} rows; {})",
            self.num_rows(),
            columns.join(", ")
        )
    }
}

/// `module`, or an `ImportError` saying which method needs it.
fn import_optional<'py>(
    py: Python<'py>,
    module: &str,
    method: &str,
) -> PyResult<Bound<'py, PyModule>> {
    py.import(module).map_err(|e| {
        pyo3::exceptions::PyImportError::new_err(format!(
            "Table.{method} needs the {module} package (pip install {module}): {e}"
        ))
    })
}
