//! Test helpers shared by the integration tests of this crate.

use arrow::array::RecordBatch;
use async_trait::async_trait;
use mlops_core::Result;
use mlops_features::{DataSource, ParquetFiles, SourceReader, SourceStream, SourceTable};

/// Parquet files whose streams arrive in batches of `.1` rows, so that a test sees a source
/// cross batch boundaries that one file's single batch would not.
#[derive(Debug)]
pub struct Batched(pub ParquetFiles, pub usize);

#[async_trait]
impl SourceReader for Batched {
    async fn read(&self, source: &DataSource, columns: Option<&[String]>) -> Result<SourceTable> {
        self.0.read(source, columns).await
    }

    async fn read_stream(
        &self,
        source: &DataSource,
        columns: Option<&[String]>,
    ) -> Result<SourceStream> {
        let table = self.0.read(source, columns).await?;
        let rows = table.rows;
        let size = self.1.max(1);
        let batches: Vec<Result<RecordBatch>> = (0..rows.num_rows())
            .step_by(size)
            .map(|at| Ok(rows.slice(at, size.min(rows.num_rows() - at))))
            .collect();
        Ok(SourceStream::new(
            rows.schema(),
            Box::pin(futures::stream::iter(batches)),
            table.lineage,
        ))
    }
}
