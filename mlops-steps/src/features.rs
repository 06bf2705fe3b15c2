//! The feature store over the store's datasets: [`StoreSources`] reads dataset sources through
//! [`Datasets`] (and Parquet paths through [`ParquetFiles`]), and [`write_training_set`] keeps
//! a training set as a dataset version that records its lineage.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use mlops_core::store::RefVersion;
use mlops_core::{DatasetName, Error, Result, Store};
use mlops_features::{
    DataSource, ParquetFiles, SourceLineage, SourceLocation, SourceReader, SourceTable, TrainingSet,
};
use mlops_storage::dataset::DatasetVersion;
use mlops_storage::{Datasets, ReadOptions, WriteOptions};

/// Reads feature sources from the store's datasets and from Parquet paths (relative to
/// `root`, the feature repo's folder).
#[derive(Debug, Clone)]
pub struct StoreSources {
    datasets: Datasets,
    files: ParquetFiles,
}

impl StoreSources {
    /// Dataset sources from `store`, Parquet paths resolved against `root`.
    pub fn new(store: Arc<dyn Store>, root: impl Into<PathBuf>) -> Self {
        Self {
            datasets: Datasets::new(store),
            files: ParquetFiles::new(root),
        }
    }
}

#[async_trait]
impl SourceReader for StoreSources {
    async fn read(&self, source: &DataSource, columns: Option<&[String]>) -> Result<SourceTable> {
        let (name, version) = match &source.location {
            SourceLocation::Dataset { name, version } => (name, *version),
            _ => return self.files.read(source, columns).await,
        };
        let at = version.map_or(RefVersion::Latest, RefVersion::Exact);
        // Pin the version first, so the rows and the lineage are of the same one.
        let found = self.datasets.version(name, at).await?;
        let options = match columns {
            Some(cols) => ReadOptions::default().with_columns(cols.iter().cloned()),
            None => ReadOptions::default(),
        };
        let stream = self
            .datasets
            .read(name, RefVersion::Exact(found.version), options)
            .await
            .map_err(|e| e.context(format!("source {}", source.name)))?;
        let schema = stream.schema.clone();
        let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream.batches).await?;
        let rows = arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| Error::invalid("source", e.to_string()))?;
        Ok(SourceTable::new(
            rows,
            SourceLineage::new(
                source.name.clone(),
                format!("dataset {name}@{}", found.version),
                Some(found.version),
                found.digest,
            ),
        ))
    }
}

/// Writes a training set as the next version of dataset `name`, its lineage in the version's
/// metadata (`features.*` keys: project, registry version and digest, service, and the whole
/// lineage as JSON), so training on it records where every feature came from.
pub async fn write_training_set(
    datasets: &Datasets,
    name: &DatasetName,
    set: &TrainingSet,
    message: &str,
) -> Result<DatasetVersion> {
    let mut options = WriteOptions::default().with_message(message);
    for (k, v) in set.lineage.to_metadata() {
        options = options.with_metadata(k, v);
    }
    let batch = set.rows.clone();
    datasets
        .write(
            name,
            batch.schema(),
            futures::stream::once(async move { Ok(batch) }),
            options,
        )
        .await
}
