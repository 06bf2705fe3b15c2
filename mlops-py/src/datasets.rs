//! [`Datasets`]: versioned Parquet datasets in a store, written from and read as Arrow tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlops::storage::{ReadOptions, SchemaPolicy, WriteOptions};
use mlops::store::RefVersion;
use mlops::{DatasetName, Version};
use pyo3::prelude::*;

use crate::errors::{OrPy, type_error};
use crate::runtime::block_on;
use crate::store::{Store, store_of, string_map, to_py};
use crate::table::{Table, batches_of};

/// `name` or `name@version`, as the CLI writes dataset references.
pub(crate) fn dataset_ref(py: Python<'_>, s: &str) -> PyResult<(DatasetName, RefVersion)> {
    match s.split_once('@') {
        Some((name, v)) => Ok((
            name.parse().or_py(py)?,
            RefVersion::Exact(v.parse::<Version>().or_py(py)?),
        )),
        None => Ok((s.parse().or_py(py)?, RefVersion::Latest)),
    }
}

/// A point in time as ms since the epoch: an `int` (ms) or a `datetime.datetime` (naive
/// datetimes are local time, as Python's `timestamp()` reads them).
pub(crate) fn millis(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_error(
            argument,
            "an int (ms since the epoch) or a datetime",
            value,
        ));
    }
    if let Ok(ms) = value.extract::<i64>() {
        return Ok(ms);
    }
    if value.is_instance_of::<pyo3::types::PyDateTime>() {
        let seconds: f64 = value.call_method0("timestamp")?.extract()?;
        return Ok((seconds * 1000.0).round() as i64);
    }
    Err(type_error(
        argument,
        "an int (ms since the epoch) or a datetime",
        value,
    ))
}

/// A committed dataset version: name, number, digest, rows, schema, statistics, metadata.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct DatasetVersion {
    inner: mlops::storage::dataset::DatasetVersion,
}

#[pymethods]
impl DatasetVersion {
    /// The dataset's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.to_string()
    }

    /// The version number (1, 2, …).
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version.get()
    }

    /// The manifest's blake3 digest (what lineage records).
    #[getter]
    fn digest(&self) -> String {
        self.inner.digest.to_hex()
    }

    /// Rows.
    #[getter]
    fn rows(&self) -> u64 {
        self.inner.manifest.rows
    }

    /// Bytes of its Parquet files.
    #[getter]
    fn bytes(&self) -> u64 {
        self.inner.manifest.bytes
    }

    /// Commit time, ms since the epoch.
    #[getter]
    fn committed_ms(&self) -> i64 {
        self.inner.committed_ms
    }

    /// Commit message.
    #[getter]
    fn message(&self) -> String {
        self.inner.message.clone()
    }

    /// User metadata.
    #[getter]
    fn metadata(&self) -> BTreeMap<String, String> {
        self.inner.manifest.metadata.clone()
    }

    /// The schema: `[(name, arrow type, nullable)]`.
    #[getter]
    fn schema(&self) -> Vec<(String, String, bool)> {
        self.inner
            .manifest
            .schema
            .iter()
            .map(|f| (f.name.clone(), f.data_type.clone(), f.nullable))
            .collect()
    }

    /// Per-column statistics: `{column: {data_type, null_count, min, max, distinct_estimate}}`.
    fn statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let by_name: BTreeMap<&str, _> = self
            .inner
            .manifest
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        to_py(py, &by_name)
    }

    /// `name@version`, the reference that reads exactly this version.
    fn reference(&self) -> String {
        format!("{}@{}", self.inner.name, self.inner.version)
    }

    /// Everything as a dict (what `json.dumps` writes as the CLI's `--json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "<DatasetVersion: {}@{}, {} rows>",
            self.inner.name, self.inner.version, self.inner.manifest.rows
        )
    }
}

/// Versioned Parquet datasets in a store: every write is a new immutable version; reads pick
/// one by number (`"name@3"`), by time (`as_of`) or the latest.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Datasets {
    store: Py<Store>,
    inner: mlops::storage::Datasets,
}

impl Datasets {
    fn version_at(
        &self,
        py: Python<'_>,
        reference: &str,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(DatasetName, RefVersion)> {
        let (name, at) = dataset_ref(py, reference)?;
        match (at, as_of.filter(|a| !a.is_none())) {
            (at, None) => Ok((name, at)),
            (RefVersion::Latest, Some(t)) => Ok((name, RefVersion::AsOf(millis("as_of", t)?))),
            (_, Some(_)) => Err(crate::errors::to_py(
                py,
                &mlops::Error::invalid(
                    "as_of",
                    format!("{reference:?} names a version already; give a version or a time"),
                ),
            )),
        }
    }
}

#[pymethods]
impl Datasets {
    /// The datasets of `store` (a URL or an `mlops.Store`).
    #[new]
    fn new(py: Python<'_>, store: &Bound<'_, PyAny>) -> PyResult<Self> {
        let store = store_of(py, store)?;
        let inner = mlops::storage::Datasets::new(Arc::clone(&store.get().inner));
        Ok(Self { store, inner })
    }

    /// The store.
    #[getter]
    fn store(&self, py: Python<'_>) -> Py<Store> {
        self.store.clone_ref(py)
    }

    /// Writes `data` (any object exporting `__arrow_c_stream__`: a pyarrow Table, a polars or
    /// pandas DataFrame, an `mlops.Table`) as the next version of `name`. With
    /// `schema_must_match`, a schema different from the latest version's is
    /// `InvalidArgument`; with `if_latest`, the write commits only while that version is the
    /// latest (`Conflict` otherwise).
    #[pyo3(signature = (name, data, metadata=None, message="", schema_must_match=false, if_latest=None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        name: &str,
        data: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        message: &str,
        schema_must_match: bool,
        if_latest: Option<u64>,
    ) -> PyResult<DatasetVersion> {
        let name: DatasetName = name.parse().or_py(py)?;
        let mut options = WriteOptions::default().with_message(message);
        for (k, v) in string_map("metadata", metadata)? {
            options = options.with_metadata(k, v);
        }
        if schema_must_match {
            options = options.with_schema_policy(SchemaPolicy::MustMatch);
        }
        if let Some(v) = if_latest {
            options = options.with_if_latest(Version::new(v).or_py(py)?);
        }
        let (schema, batches) = batches_of("data", data)?;
        let datasets = self.inner.clone();
        let version = block_on(py, async move {
            datasets
                .write(
                    &name,
                    schema,
                    futures::stream::iter(batches.into_iter().map(Ok)),
                    options,
                )
                .await
        })?
        .or_py(py)?;
        Ok(DatasetVersion { inner: version })
    }

    /// Reads a version (`"name"` for the latest, `"name@3"`, or the latest at `as_of`: an int of
    /// ms since the epoch or a datetime) as a table, projected to `columns` when given.
    #[pyo3(signature = (reference, columns=None, as_of=None))]
    fn read(
        &self,
        py: Python<'_>,
        reference: &str,
        columns: Option<Vec<String>>,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Table> {
        let (name, at) = self.version_at(py, reference, as_of)?;
        let mut options = ReadOptions::default();
        if let Some(columns) = columns {
            options = options.with_columns(columns);
        }
        let datasets = self.inner.clone();
        let (schema, batches) = block_on(py, async move {
            let stream = datasets.read(&name, at, options).await?;
            let schema = stream.schema.clone();
            let batches: Vec<_> = futures::TryStreamExt::try_collect(stream.batches).await?;
            Ok::<_, mlops::Error>((schema, batches))
        })?
        .or_py(py)?;
        Ok(Table::new(schema, batches))
    }

    /// A version's description (no data read): `"name"`, `"name@3"` or the latest at `as_of`.
    #[pyo3(signature = (reference, as_of=None))]
    fn version(
        &self,
        py: Python<'_>,
        reference: &str,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<DatasetVersion> {
        let (name, at) = self.version_at(py, reference, as_of)?;
        let datasets = self.inner.clone();
        let inner = block_on(py, async move { datasets.version(&name, at).await })?.or_py(py)?;
        Ok(DatasetVersion { inner })
    }

    /// Every version of `name`, oldest first.
    fn log(&self, py: Python<'_>, name: &str) -> PyResult<Vec<DatasetVersion>> {
        let name: DatasetName = name.parse().or_py(py)?;
        let datasets = self.inner.clone();
        let versions = block_on(py, async move { datasets.log(&name).await })?.or_py(py)?;
        Ok(versions
            .into_iter()
            .map(|inner| DatasetVersion { inner })
            .collect())
    }

    /// The latest version of every dataset, by name.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<DatasetVersion>> {
        let datasets = self.inner.clone();
        let versions = block_on(py, async move { datasets.list().await })?.or_py(py)?;
        Ok(versions
            .into_iter()
            .map(|inner| DatasetVersion { inner })
            .collect())
    }

    /// How the schema changed between two versions of `name`: `{"added": [...], "removed":
    /// [...], "changed": [...]}`.
    fn diff<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        from_version: u64,
        to_version: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let name: DatasetName = name.parse().or_py(py)?;
        let from = Version::new(from_version).or_py(py)?;
        let to = Version::new(to_version).or_py(py)?;
        let datasets = self.inner.clone();
        let diff = block_on(py, async move { datasets.diff(&name, from, to).await })?.or_py(py)?;
        to_py(py, &diff)
    }

    fn __repr__(&self) -> String {
        format!("mlops.Datasets({:?})", self.store.get().url)
    }
}
