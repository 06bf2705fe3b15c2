//! Reading sources: the [`SourceReader`] trait, and [`ParquetFiles`] for Parquet paths.
//!
//! Datasets of the store are read by a reader the composition layer provides
//! (`mlops_steps::features::StoreSources`, over `mlops_storage::Datasets`), since this crate
//! depends on core alone; it hands Parquet paths to [`ParquetFiles`].

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::{Digest, Digester, Error, Result, Version};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::definitions::{DataSource, SourceLocation};
use crate::historical::arrow_err;

/// Exactly what a source read: recorded in training sets' lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SourceLineage {
    /// The source's name.
    pub source: String,
    /// Where it was read: `dataset <name>@<version>` or `parquet <path>`.
    pub location: String,
    /// The dataset version read, for dataset sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// The digest of what was read (a dataset version's manifest, or the Parquet bytes).
    pub digest: Digest,
}

impl SourceLineage {
    /// Lineage of a read.
    pub fn new(
        source: impl Into<String>,
        location: impl Into<String>,
        version: Option<Version>,
        digest: Digest,
    ) -> Self {
        Self {
            source: source.into(),
            location: location.into(),
            version,
            digest,
        }
    }
}

/// A source's rows, read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceTable {
    /// The rows (one batch; possibly empty, with the schema).
    pub rows: RecordBatch,
    /// What was read.
    pub lineage: SourceLineage,
}

impl SourceTable {
    /// Rows with their lineage.
    pub fn new(rows: RecordBatch, lineage: SourceLineage) -> Self {
        Self { rows, lineage }
    }
}

/// A source's rows as a stream of batches, for reading sources larger than memory.
#[non_exhaustive]
pub struct SourceStream {
    /// The rows' schema (also when there are none).
    pub schema: SchemaRef,
    /// The rows, batch by batch, in the source's order.
    pub batches: futures::stream::BoxStream<'static, Result<RecordBatch>>,
    /// What is read.
    pub lineage: SourceLineage,
}

impl SourceStream {
    /// A stream of `batches` with `schema`.
    pub fn new(
        schema: SchemaRef,
        batches: futures::stream::BoxStream<'static, Result<RecordBatch>>,
        lineage: SourceLineage,
    ) -> Self {
        Self {
            schema,
            batches,
            lineage,
        }
    }
}

impl std::fmt::Debug for SourceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceStream")
            .field("schema", &self.schema)
            .field("lineage", &self.lineage)
            .finish_non_exhaustive()
    }
}

/// Reads the rows of data sources.
///
/// # Contract
///
/// `read` answers the source's rows projected to `columns` (every column when `None`), in one
/// batch, with the lineage of exactly what was read; a missing column is
/// [`Error::InvalidArgument`] naming it, a missing source [`Error::NotFound`]; a location the
/// reader cannot read is [`Error::NotSupported`].
///
/// `append` (an offline push) adds rows to the source atomically — all of them become
/// visible in one new version, or none — and answers the lineage of the version it made. The
/// rows carry the source's columns (by name, in any order, each castable to the source's
/// type); a missing or unknown column is [`Error::InvalidArgument`] naming it. Readers that
/// cannot write a location answer [`Error::NotSupported`] (the default).
#[async_trait]
pub trait SourceReader: Debug + Send + Sync + 'static {
    /// Reads a source.
    async fn read(&self, source: &DataSource, columns: Option<&[String]>) -> Result<SourceTable>;

    /// The rows of [`read`](Self::read) as a stream of batches (materialization reads sources
    /// this way, holding one batch at a time). By default `read`'s one batch.
    async fn read_stream(
        &self,
        source: &DataSource,
        columns: Option<&[String]>,
    ) -> Result<SourceStream> {
        let table = self.read(source, columns).await?;
        let schema = table.rows.schema();
        Ok(SourceStream::new(
            schema,
            Box::pin(futures::stream::once(async move { Ok(table.rows) })),
            table.lineage,
        ))
    }

    /// The lineage a read of `source` would record now, without its rows: what a cached
    /// training set compares against to know whether its sources moved. By default a read of
    /// the timestamp column.
    async fn current(&self, source: &DataSource) -> Result<SourceLineage> {
        Ok(self
            .read(source, Some(std::slice::from_ref(&source.timestamp_field)))
            .await?
            .lineage)
    }

    /// Appends rows to a source (see the contract above).
    async fn append(&self, source: &DataSource, rows: &RecordBatch) -> Result<SourceLineage> {
        let _ = rows;
        Err(Error::not_supported(
            "offline push",
            format!("source {} ({})", source.name, source.location),
            match source.location {
                SourceLocation::Parquet { .. } => {
                    "Parquet path sources are read-only; define the source with `dataset: NAME` to push rows offline"
                }
                _ => "this source reader cannot write",
            },
        ))
    }
}

#[async_trait]
impl<T: SourceReader + ?Sized> SourceReader for Arc<T> {
    async fn read(&self, source: &DataSource, columns: Option<&[String]>) -> Result<SourceTable> {
        (**self).read(source, columns).await
    }

    async fn read_stream(
        &self,
        source: &DataSource,
        columns: Option<&[String]>,
    ) -> Result<SourceStream> {
        (**self).read_stream(source, columns).await
    }

    async fn current(&self, source: &DataSource) -> Result<SourceLineage> {
        (**self).current(source).await
    }

    async fn append(&self, source: &DataSource, rows: &RecordBatch) -> Result<SourceLineage> {
        (**self).append(source, rows).await
    }
}

/// `rows` in the order and types of `schema`: every column of `schema` must be present (by
/// name) and castable without loss; no other column may be. For appending to a source.
pub fn conform_rows(source: &str, schema: &SchemaRef, rows: &RecordBatch) -> Result<RecordBatch> {
    let given = rows.schema();
    if let Some(extra) = given
        .fields()
        .iter()
        .find(|f| schema.field_with_name(f.name()).is_err())
    {
        return Err(Error::invalid(
            "offline push",
            format!(
                "source {source} has no column {} (its columns: {})",
                extra.name(),
                names(schema)
            ),
        ));
    }
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let col = rows.column_by_name(f.name()).ok_or_else(|| {
                Error::invalid(
                    "offline push",
                    format!(
                        "the pushed rows have no column {} of source {source}",
                        f.name()
                    ),
                )
            })?;
            if col.data_type() == f.data_type() {
                return Ok(col.clone());
            }
            arrow::compute::cast_with_options(col, f.data_type(), &options).map_err(|e| {
                Error::invalid(
                    "offline push",
                    format!(
                        "column {} ({}) does not fit source {source}'s {}: {e}",
                        f.name(),
                        col.data_type(),
                        f.data_type()
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
        Error::invalid(
            "offline push",
            format!("the pushed rows do not fit source {source}: {e}"),
        )
    })
}

fn names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parquet files and folders, relative paths resolved against a root (the feature repo's
/// folder). Dataset sources are [`Error::NotSupported`] here.
#[derive(Debug, Clone)]
pub struct ParquetFiles {
    root: PathBuf,
}

impl ParquetFiles {
    /// Resolves relative paths against `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder relative paths start from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads a Parquet file or a folder of `*.parquet` files (in name order) synchronously.
    pub fn read_path(
        &self,
        source: &str,
        path: &str,
        columns: Option<&[String]>,
    ) -> Result<SourceTable> {
        let (readers, schema, lineage) = self.open_path(source, path, columns)?;
        let mut batches = Vec::new();
        for (file, reader) in readers {
            for b in reader {
                batches.push(
                    b.map_err(|e| Error::corrupt("parquet file", file.display(), e.to_string()))?,
                );
            }
        }
        let rows = arrow::compute::concat_batches(&schema, &batches).map_err(arrow_err)?;
        Ok(SourceTable::new(rows, lineage))
    }

    /// The decoders of a Parquet file or folder (its bytes read and digested), their schema
    /// and the lineage.
    #[allow(clippy::type_complexity)]
    fn open_path(
        &self,
        source: &str,
        path: &str,
        columns: Option<&[String]>,
    ) -> Result<(
        Vec<(
            PathBuf,
            parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        )>,
        SchemaRef,
        SourceLineage,
    )> {
        let full = self.root.join(path);
        let files = if full.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&full)
                .map_err(|e| Error::io("parquet folder", "list", &full, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::invalid(
                    "source",
                    format!(
                        "source {source}: {} holds no .parquet files",
                        full.display()
                    ),
                ));
            }
            files
        } else {
            vec![full.clone()]
        };
        let mut digester = Digester::new();
        let mut readers = Vec::with_capacity(files.len());
        let mut schema: Option<Arc<Schema>> = None;
        for file in &files {
            let bytes =
                std::fs::read(file).map_err(|e| Error::io("parquet file", "read", file, e))?;
            let digest = Digest::of(&bytes);
            digester.update(digest.to_string().as_bytes());
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).map_err(|e| {
                    Error::invalid("source", format!("{} is not Parquet: {e}", file.display()))
                })?;
            let mask = match columns {
                None => ProjectionMask::all(),
                Some(cols) => {
                    let arrow_schema = builder.schema();
                    let mut idx = Vec::with_capacity(cols.len());
                    for c in cols {
                        idx.push(arrow_schema.index_of(c).map_err(|_| {
                            let names: Vec<&str> = arrow_schema
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect();
                            Error::invalid(
                                "column",
                                format!(
                                    "source {source}: {} has no column {c:?}; it has {}",
                                    file.display(),
                                    names.join(", ")
                                ),
                            )
                        })?);
                    }
                    ProjectionMask::roots(builder.parquet_schema(), idx)
                }
            };
            let reader = builder
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|e| Error::invalid("source", format!("{}: {e}", file.display())))?;
            let this_schema = arrow::array::RecordBatchReader::schema(&reader);
            match &schema {
                None => schema = Some(this_schema),
                Some(s) if s.fields() != this_schema.fields() => {
                    return Err(Error::invalid(
                        "source",
                        format!(
                            "source {source}: {} has another schema than the folder's first file",
                            file.display()
                        ),
                    ));
                }
                Some(_) => {}
            }
            readers.push((file.clone(), reader));
        }
        let schema = schema.unwrap_or_else(|| Arc::new(Schema::empty()));
        Ok((
            readers,
            schema,
            SourceLineage::new(source, format!("parquet {path}"), None, digester.finalize()),
        ))
    }
}

#[async_trait]
impl SourceReader for ParquetFiles {
    async fn read(&self, source: &DataSource, columns: Option<&[String]>) -> Result<SourceTable> {
        match &source.location {
            SourceLocation::Parquet { path } => {
                let this = self.clone();
                let (name, path) = (source.name.clone(), path.clone());
                let columns = columns.map(<[String]>::to_vec);
                tokio::task::spawn_blocking(move || {
                    this.read_path(&name, &path, columns.as_deref())
                })
                .await
                .map_err(|e| Error::backend("tokio", e))?
            }
            other => Err(not_parquet(source, other)),
        }
    }

    async fn read_stream(
        &self,
        source: &DataSource,
        columns: Option<&[String]>,
    ) -> Result<SourceStream> {
        let SourceLocation::Parquet { path } = &source.location else {
            return Err(not_parquet(source, &source.location));
        };
        let this = self.clone();
        let (name, path) = (source.name.clone(), path.clone());
        let columns = columns.map(<[String]>::to_vec);
        let (readers, schema, lineage) =
            tokio::task::spawn_blocking(move || this.open_path(&name, &path, columns.as_deref()))
                .await
                .map_err(|e| Error::backend("tokio", e))??;
        // Decoded on a blocking thread, a batch or two ahead of the consumer.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        tokio::task::spawn_blocking(move || {
            for (file, reader) in readers {
                for b in reader {
                    let b = b
                        .map_err(|e| Error::corrupt("parquet file", file.display(), e.to_string()));
                    let failed = b.is_err();
                    if tx.blocking_send(b).is_err() || failed {
                        return;
                    }
                }
            }
        });
        let batches =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Ok(SourceStream::new(schema, Box::pin(batches), lineage))
    }
}

fn not_parquet(source: &DataSource, location: &SourceLocation) -> Error {
    Error::not_supported(
        "source",
        source.name.clone(),
        format!(
            "{location} needs a reader of the store's datasets (mlops_steps::features::StoreSources)"
        ),
    )
}
