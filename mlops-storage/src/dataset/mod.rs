//! Versioned datasets on a [`Store`]: Parquet part files plus a manifest, committed under the ref
//! `datasets/<name>`.
//!
//! A version is written from a stream of Arrow record batches into zstd-compressed Parquet parts
//! (a new part every [`WriteOptions::part_bytes`]), each stored as a blob; then the manifest —
//! schema, row count, per-column statistics, part digests, user metadata — is stored, and a
//! commit points at it and retains the parts. Until that commit succeeds nothing is visible, so a
//! failed or killed write leaves no version (only blobs that `gc` reclaims).

mod manifest;
mod stats;

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use mlops_core::store::{Commit, CommitOptions, RefVersion, Store, StoreExt};
use mlops_core::{DatasetName, Digest, Error, RefName, Result, Version};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

pub use manifest::{FieldChange, FieldInfo, MANIFEST_FORMAT, Manifest, PartInfo, SchemaDiff};
pub use stats::ColumnStats;

use stats::StatsBuilder;

/// What happens when a new version's schema differs from the latest one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaPolicy {
    /// Any schema is accepted; the change is reported by [`Datasets::diff`].
    #[default]
    Allow,
    /// The commit fails with [`Error::InvalidArgument`] listing the changes.
    MustMatch,
}

/// Options for writing a dataset version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Rows per Parquet row group (default 1 Mi, as pyarrow).
    pub row_group_rows: usize,
    /// Start a new part file once the current one reaches this many bytes (default 128 MiB); with
    /// the row group in progress, this bounds the memory a write holds.
    pub part_bytes: usize,
    /// User metadata kept in the manifest (`source`, `license`, `pii`, …).
    pub metadata: BTreeMap<String, String>,
    /// Schema-change policy.
    pub schema_policy: SchemaPolicy,
    /// Commit message.
    pub message: String,
    /// Commit only while this version is the dataset's latest (else [`Error::Conflict`]): for
    /// read-modify-write updates such as appends.
    pub if_latest: Option<Version>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 1024 * 1024,
            part_bytes: 128 << 20,
            metadata: BTreeMap::new(),
            schema_policy: SchemaPolicy::Allow,
            message: String::new(),
            if_latest: None,
        }
    }
}

impl WriteOptions {
    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the schema policy.
    pub fn with_schema_policy(mut self, policy: SchemaPolicy) -> Self {
        self.schema_policy = policy;
        self
    }

    /// Sets rows per row group.
    pub fn with_row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows.max(1);
        self
    }

    /// Sets the part size.
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(1);
        self
    }

    /// Sets the commit message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Commits only while `version` is the dataset's latest; otherwise the write fails with
    /// [`Error::Conflict`] and commits nothing (read it again and retry).
    pub fn with_if_latest(mut self, version: Version) -> Self {
        self.if_latest = Some(version);
        self
    }
}

/// Options for reading a dataset version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Only these columns, in this order; all when `None`.
    pub columns: Option<Vec<String>>,
}

impl ReadOptions {
    /// Projects to `columns`.
    pub fn with_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }
}

/// A committed dataset version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetVersion {
    /// The dataset.
    pub name: DatasetName,
    /// Its version number.
    pub version: Version,
    /// Digest of the manifest blob (what lineage records).
    pub digest: Digest,
    /// Commit time, ms.
    pub committed_ms: i64,
    /// Commit message.
    pub message: String,
    /// The manifest.
    pub manifest: Manifest,
}

/// A stream of record batches with its schema.
pub struct BatchStream {
    /// Schema of every batch.
    pub schema: SchemaRef,
    /// The batches.
    pub batches: BoxStream<'static, Result<RecordBatch>>,
}

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Versioned Parquet datasets on any [`Store`].
#[derive(Debug, Clone)]
pub struct Datasets {
    store: Arc<dyn Store>,
}

fn ref_name(name: &DatasetName) -> Result<RefName> {
    RefName::new(format!("datasets/{name}"))
}

fn parquet_err(what: &'static str) -> impl Fn(parquet::errors::ParquetError) -> Error {
    move |e| Error::invalid(what, "cannot write it as parquet").with_source(e)
}

/// A Parquet writer's failure while exporting to `path`: the disk's when it is an I/O error.
fn export_err(path: &FsPath) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => Error::io("output file", "write", path, *io),
                Err(other) => {
                    Error::invalid("export", "cannot write it as parquet").with_source(other)
                }
            }
        }
        other => Error::invalid("export", "cannot write it as parquet").with_source(other),
    }
}

/// Times a write retries its commit when another writer committed first.
const COMMIT_RETRIES: usize = 16;

impl Datasets {
    /// Datasets stored in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Writes a new version of `name` from `batches`, which must all have `schema`.
    pub async fn write<S>(
        &self,
        name: &DatasetName,
        schema: SchemaRef,
        batches: S,
        options: WriteOptions,
    ) -> Result<DatasetVersion>
    where
        S: Stream<Item = Result<RecordBatch>> + Send,
    {
        check_columns(name, &schema)?;
        check_metadata(&options.metadata)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .build();
        let new_writer = || {
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))
                .map_err(parquet_err("dataset schema"))
        };
        let mut writer = new_writer()?;
        let mut part_rows = 0u64;
        let mut parts: Vec<PartInfo> = Vec::new();
        let mut stats: Vec<StatsBuilder> = schema
            .fields()
            .iter()
            .map(|f| StatsBuilder::new(f.name(), f.data_type()))
            .collect();
        let mut batches = std::pin::pin!(batches);
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            check_schema(&schema, &batch)?;
            for (s, col) in stats.iter_mut().zip(batch.columns()) {
                s.update(col.as_ref());
            }
            writer.write(&batch).map_err(parquet_err("dataset batch"))?;
            part_rows += batch.num_rows() as u64;
            if writer.bytes_written() + writer.in_progress_size() >= options.part_bytes {
                let full = std::mem::replace(&mut writer, new_writer()?);
                parts.push(self.store_part(full, part_rows).await?);
                part_rows = 0;
            }
        }
        if part_rows > 0 || parts.is_empty() {
            // The last part; a dataset with no rows still gets one part carrying its schema.
            parts.push(self.store_part(writer, part_rows).await?);
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            name: name.clone(),
            schema: FieldInfo::of(&schema),
            rows: parts.iter().map(|p| p.rows).sum(),
            bytes: parts.iter().map(|p| p.bytes).sum(),
            parts,
            columns: stats.into_iter().map(StatsBuilder::finish).collect(),
            metadata: options.metadata.clone(),
            created_ms: mlops_core::time::now_ms(),
        };
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::backend("serde_json", e))?;
        let digest = self.store.put_bytes(Bytes::from(json)).await?.digest;
        let commit = self.commit(name, &manifest, digest, &options).await?;
        Ok(DatasetVersion {
            name: name.clone(),
            version: commit.version,
            digest,
            committed_ms: commit.timestamp_ms,
            message: commit.message,
            manifest,
        })
    }

    async fn store_part(&self, writer: ArrowWriter<Vec<u8>>, rows: u64) -> Result<PartInfo> {
        let buf = writer.into_inner().map_err(parquet_err("dataset part"))?;
        let info = self.store.put_bytes(Bytes::from(buf)).await?;
        Ok(PartInfo {
            digest: info.digest,
            rows,
            bytes: info.size,
        })
    }

    async fn commit(
        &self,
        name: &DatasetName,
        manifest: &Manifest,
        digest: Digest,
        options: &WriteOptions,
    ) -> Result<Commit> {
        let refname = ref_name(name)?;
        for _ in 0..COMMIT_RETRIES {
            let latest = match self.version(name, RefVersion::Latest).await {
                Ok(v) => Some(v),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            if let Some(expected) = options.if_latest
                && latest.as_ref().map(|v| v.version) != Some(expected)
            {
                return Err(Error::conflict(
                    "dataset",
                    name,
                    format!(
                        "version {expected} is no longer the latest ({})",
                        latest.map_or("the dataset is gone".to_owned(), |v| format!(
                            "version {} is",
                            v.version
                        ))
                    ),
                ));
            }
            if let (Some(prev), SchemaPolicy::MustMatch) = (&latest, options.schema_policy) {
                let diff = SchemaDiff::between(&prev.manifest.schema, &manifest.schema);
                if !diff.is_empty() {
                    return Err(Error::invalid(
                        "dataset schema",
                        format!(
                            "{name}: the schema must not change, but against version {}: {}",
                            prev.version,
                            diff.lines().join(", ")
                        ),
                    ));
                }
            }
            let commit = CommitOptions::default()
                .with_parent(latest.map(|v| v.version))
                .with_retains(manifest.parts.iter().map(|p| p.digest))
                .with_message(options.message.clone())
                .with_metadata("rows", manifest.rows.to_string())
                .with_metadata("kind", "dataset");
            match self.store.commit(&refname, digest, commit).await {
                Err(e) if e.is_conflict() => continue,
                other => return other,
            }
        }
        Err(Error::conflict(
            "dataset",
            name,
            format!("gave up after {COMMIT_RETRIES} concurrent commits got there first"),
        ))
    }

    /// One version's manifest.
    pub async fn version(&self, name: &DatasetName, at: RefVersion) -> Result<DatasetVersion> {
        let commit = self
            .store
            .get_ref(&ref_name(name)?, at)
            .await
            .map_err(|e| match &e {
                Error::NotFound {
                    kind: "ref", name, ..
                } => {
                    let name = name.trim_start_matches("datasets/").to_owned();
                    Error::not_found("dataset", name).with_source(e)
                }
                _ => e,
            })?;
        self.load_commit(commit).await
    }

    async fn load_commit(&self, commit: Commit) -> Result<DatasetVersion> {
        let raw = self.store.get_bytes(&commit.target).await?;
        let manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| {
            Error::corrupt("dataset manifest", commit.target, "unreadable").with_source(e)
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(Error::not_supported(
                "dataset manifest format",
                format!("{:?}", manifest.format),
                format!("this version reads {MANIFEST_FORMAT}"),
            ));
        }
        Ok(DatasetVersion {
            name: manifest.name.clone(),
            version: commit.version,
            digest: commit.target,
            committed_ms: commit.timestamp_ms,
            message: commit.message,
            manifest,
        })
    }

    /// Every version of a dataset, oldest first.
    pub async fn log(&self, name: &DatasetName) -> Result<Vec<DatasetVersion>> {
        let history = self.store.history(&ref_name(name)?).await.map_err(|e| {
            if e.is_not_found() {
                Error::not_found("dataset", name).with_source(e)
            } else {
                e
            }
        })?;
        let mut out = Vec::with_capacity(history.len());
        for c in history {
            out.push(self.load_commit(c).await?);
        }
        Ok(out)
    }

    /// The latest version of every dataset, by name.
    pub async fn list(&self) -> Result<Vec<DatasetVersion>> {
        let prefix = RefName::new("datasets")?;
        let mut out = Vec::new();
        for r in self.store.list_refs(Some(&prefix)).await? {
            let loaded = match self.store.get_ref(&r, RefVersion::Latest).await {
                Ok(commit) => self.load_commit(commit).await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok(v) => out.push(v),
                // One damaged dataset does not hide the others; verify reports it.
                Err(e) if e.is_corrupt() => {
                    tracing::warn!(dataset = %r, error = %e, "skipped a damaged dataset; `mlops store verify` reports it");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// How the schema changed from `from` to `to`.
    pub async fn diff(&self, name: &DatasetName, from: Version, to: Version) -> Result<SchemaDiff> {
        let a = self.version(name, RefVersion::Exact(from)).await?;
        let b = self.version(name, RefVersion::Exact(to)).await?;
        Ok(SchemaDiff::between(&a.manifest.schema, &b.manifest.schema))
    }

    /// Reads a whole version into memory, with the version it read (so `RefVersion::Latest`
    /// says which one it was): what training and lineage need together. There is always at
    /// least one batch: a version without rows reads as one empty batch carrying its schema, so
    /// checks on its columns (and on its zero rows) can still run.
    pub async fn read_all(
        &self,
        name: &DatasetName,
        at: RefVersion,
    ) -> Result<(DatasetVersion, Vec<RecordBatch>)> {
        let version = self.version(name, at).await?;
        let stream = self
            .read(
                name,
                RefVersion::Exact(version.version),
                ReadOptions::default(),
            )
            .await?;
        let schema = stream.schema.clone();
        let mut batches: Vec<RecordBatch> =
            futures::TryStreamExt::try_collect(stream.batches).await?;
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(schema));
        }
        Ok((version, batches))
    }

    /// Reads a version back as a stream of batches, optionally projected to some columns.
    pub async fn read(
        &self,
        name: &DatasetName,
        at: RefVersion,
        options: ReadOptions,
    ) -> Result<BatchStream> {
        let version = self.version(name, at).await?;
        let fields = &version.manifest.schema;
        let indices: Option<Vec<usize>> = match &options.columns {
            None => None,
            Some(cols) => Some(
                cols.iter()
                    .map(|c| {
                        fields.iter().position(|f| f.name == *c).ok_or_else(|| {
                            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                            Error::invalid(
                                "column",
                                format!(
                                    "{name}@{} has no column {c:?}; it has {}",
                                    version.version,
                                    names.join(", ")
                                ),
                            )
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        let parts: Vec<PartInfo> = version.manifest.parts.clone();
        // The schema comes from the first part (every version has at least one).
        let first = parts
            .first()
            .ok_or_else(|| Error::corrupt("dataset manifest", version.digest, "lists no parts"))?;
        let first_bytes = self.store.get_bytes(&first.digest).await?;
        let (schema, _) = decode_part(first_bytes.clone(), indices.as_deref(), first.digest)?;
        let store = self.store.clone();
        // Two parts in flight: one decodes on a blocking thread while the next is fetched and
        // decoded on another (decoding is CPU work; it stays off the async threads).
        let batches = stream::iter(parts.into_iter().enumerate())
            .map(move |(i, part)| {
                let store = store.clone();
                let first_bytes = first_bytes.clone();
                let indices = indices.clone();
                async move {
                    let bytes = if i == 0 {
                        first_bytes
                    } else {
                        store.get_bytes(&part.digest).await?
                    };
                    let decoded = tokio::task::spawn_blocking(move || {
                        decode_part(bytes, indices.as_deref(), part.digest)
                    })
                    .await
                    .map_err(|e| Error::backend("tokio", e))??;
                    Ok::<_, Error>(stream::iter(decoded.1))
                }
            })
            .buffered(2)
            .try_flatten()
            .boxed();
        Ok(BatchStream { schema, batches })
    }

    /// Imports a `.parquet` or `.csv` file as a new version, recording the file as the version's
    /// `source` metadata (which the caller may not set). A CSV file must have a header, its
    /// quotes must close, and column names must be unique (CSV types are inferred from the first
    /// 10 000 rows).
    pub async fn import_file(
        &self,
        name: &DatasetName,
        path: &FsPath,
        options: WriteOptions,
    ) -> Result<DatasetVersion> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("file", "open", path, e))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let shown = path.display().to_string();
        let (schema, batches): (
            SchemaRef,
            Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
        ) = match ext.as_str() {
            "parquet" | "pq" => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| Error::invalid("parquet file", &shown).with_source(e))?;
                let schema = builder.schema().clone();
                let reader = builder
                    .build()
                    .map_err(|e| Error::invalid("parquet file", &shown).with_source(e))?;
                let shown = shown.clone();
                (
                    schema,
                    Box::new(reader.map(move |b| {
                        b.map_err(|e| Error::invalid("parquet file", &shown).with_source(e))
                    })),
                )
            }
            "csv" => {
                let mut file = file;
                check_quotes(&mut file, path)?;
                let format = arrow::csv::reader::Format::default().with_header(true);
                let (schema, _) = format
                    .infer_schema(&mut file, Some(10_000))
                    .map_err(|e| Error::invalid("csv file", &shown).with_source(e))?;
                if schema.fields().is_empty() {
                    return Err(Error::invalid(
                        "csv file",
                        format!(
                            "{shown} is empty: a CSV file starts with a header of column names"
                        ),
                    ));
                }
                std::io::Seek::rewind(&mut file)
                    .map_err(|e| Error::io("csv file", "read", path, e))?;
                let schema = Arc::new(schema);
                let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                    .with_format(format)
                    .with_batch_size(64 * 1024)
                    .build(file)
                    .map_err(|e| Error::invalid("csv file", &shown).with_source(e))?;
                let shown = shown.clone();
                (
                    schema,
                    Box::new(reader.map(move |b| {
                        b.map_err(|e| Error::invalid("csv file", &shown).with_source(e))
                    })),
                )
            }
            other => {
                return Err(Error::invalid(
                    "file",
                    format!("{shown} has extension {other:?}; import .parquet or .csv files"),
                ));
            }
        };
        // The provenance is the import's to record, not the caller's to override.
        if options.metadata.contains_key(SOURCE_KEY) {
            return Err(Error::invalid(
                "metadata",
                format!(
                    "{SOURCE_KEY:?} is recorded by the import (the file it read); keep your own under another key, e.g. origin"
                ),
            ));
        }
        let mut options = options;
        options
            .metadata
            .insert(SOURCE_KEY.to_owned(), shown.clone());
        self.write(name, schema, stream::iter(batches), options)
            .await
    }

    /// Exports a version to one Parquet file at `path` (written to a temporary file beside it,
    /// then renamed: a failed export leaves no partial file). Returns the rows written.
    pub async fn export_parquet(
        &self,
        name: &DatasetName,
        at: RefVersion,
        path: &FsPath,
    ) -> Result<u64> {
        let BatchStream {
            schema,
            mut batches,
        } = self.read(name, at, ReadOptions::default()).await?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(FsPath::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::io("output directory", "write", dir, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut writer = ArrowWriter::try_new(
            tmp.reopen()
                .map_err(|e| Error::io("output file", "write", tmp.path(), e))?,
            schema,
            Some(props),
        )
        .map_err(export_err(path))?;
        let mut rows = 0u64;
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(export_err(path))?;
        }
        writer.close().map_err(export_err(path))?;
        tmp.persist(path)
            .map_err(|e| Error::io("output file", "write", path, e.error))?;
        Ok(rows)
    }
}

fn check_schema(schema: &SchemaRef, batch: &RecordBatch) -> Result<()> {
    let got = batch.schema();
    if got.fields().len() != schema.fields().len() {
        return Err(Error::invalid(
            "record batch",
            format!(
                "has {} columns, the dataset has {}",
                got.fields().len(),
                schema.fields().len()
            ),
        ));
    }
    for (want, have) in schema.fields().iter().zip(got.fields()) {
        if want.name() != have.name() || want.data_type() != have.data_type() {
            return Err(Error::invalid(
                "record batch",
                format!(
                    "column {} is {} where the dataset has {} {}",
                    have.name(),
                    have.data_type(),
                    want.name(),
                    want.data_type()
                ),
            ));
        }
    }
    Ok(())
}

fn decode_part(
    bytes: Bytes,
    indices: Option<&[usize]>,
    digest: Digest,
) -> Result<(SchemaRef, Vec<Result<RecordBatch>>)> {
    let corrupt = |e: parquet::errors::ParquetError| {
        Error::corrupt("dataset part", digest, "cannot decode parquet").with_source(e)
    };
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(corrupt)?;
    if let Some(idx) = indices {
        let mask = ProjectionMask::roots(builder.parquet_schema(), idx.iter().copied());
        builder = builder.with_projection(mask);
    }
    let reader = builder.build().map_err(corrupt)?;
    let schema = reader.schema();
    let batches = reader.map(|b| {
        b.map_err(|e| {
            Error::corrupt("dataset part", digest, "cannot decode parquet").with_source(e)
        })
    });
    // Parquet returns projected columns in file order; callers asked for their own order.
    let Some(idx) = indices else {
        return Ok((schema, batches.collect()));
    };
    let mut sorted: Vec<usize> = idx.to_vec();
    sorted.sort_unstable();
    let order: Vec<usize> = idx
        .iter()
        .filter_map(|i| sorted.iter().position(|s| s == i))
        .collect();
    let schema = Arc::new(
        schema
            .project(&order)
            .map_err(|e| Error::backend("arrow", e))?,
    );
    let batches = batches
        .map(|b| b.and_then(|b| b.project(&order).map_err(|e| Error::backend("arrow", e))))
        .collect();
    Ok((schema, batches))
}

/// The metadata key under which an import records the file it read.
pub const SOURCE_KEY: &str = "source";

/// Column names of a version are unique and not empty: a reader picks columns by name.
fn check_columns(name: &DatasetName, schema: &Schema) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for f in schema.fields() {
        if f.name().trim().is_empty() {
            return Err(Error::invalid(
                "dataset schema",
                format!("{name}: a column has an empty name"),
            ));
        }
        if !seen.insert(f.name().as_str()) {
            return Err(Error::invalid(
                "dataset schema",
                format!("{name}: column {:?} appears twice", f.name()),
            ));
        }
    }
    Ok(())
}

/// Metadata keys are names: not empty, no control characters.
fn check_metadata(metadata: &std::collections::BTreeMap<String, String>) -> Result<()> {
    for key in metadata.keys() {
        if key.trim().is_empty() || key.chars().any(char::is_control) {
            return Err(Error::invalid(
                "metadata",
                format!("{key:?}: keys must be non-empty names without control characters"),
            ));
        }
    }
    Ok(())
}

/// A CSV file's quoted fields must close: one that does not runs to the end of the file, which a
/// reader would take as data. Quotes are read as the CSV reader reads them — a field is quoted
/// only when it starts with `"`, `""` inside it is a quote, and a `"` inside an unquoted field
/// (`12" pipe`) is just a character. Reads the file once, in 1 MiB chunks, and rewinds it.
fn check_quotes(file: &mut std::fs::File, path: &FsPath) -> Result<()> {
    use std::io::{Read, Seek};
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        FieldStart,
        Unquoted,
        Quoted,
        /// A `"` inside a quoted field: the end of it, or the first half of `""`.
        QuoteInQuoted,
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut at = At::FieldStart;
    let mut line = 1u64;
    let mut open_at = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("csv file", "read", path, e))?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                line += 1;
            }
            at = match (at, b) {
                (At::Quoted, b'"') => At::QuoteInQuoted,
                (At::Quoted, _) => At::Quoted,
                (At::QuoteInQuoted, b'"') => At::Quoted,
                (At::FieldStart, b'"') => {
                    open_at = line;
                    At::Quoted
                }
                // The reader ends a record at `\n`, `\r` or both.
                (_, b',' | b'\n' | b'\r') => At::FieldStart,
                _ => At::Unquoted,
            };
        }
    }
    file.rewind()
        .map_err(|e| Error::io("csv file", "read", path, e))?;
    if at == At::Quoted {
        return Err(Error::invalid(
            "csv file",
            format!(
                "{}: the quote opened on line {open_at} is never closed",
                path.display()
            ),
        ));
    }
    Ok(())
}
