//! Tracker snapshots: the replayed state folded into Parquet tables, so a new tracker loads one
//! snapshot instead of replaying every segment since the beginning.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use bytes::Bytes;
use mlops_core::tracker::ArtifactInfo;
use mlops_core::tracking::{Experiment, LifecycleStage, Run, RunData, RunInfo, RunInputs};
use mlops_core::{Digest, Error, RefName, Result, RunId, Version};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::tracker_state::{Point, Tables};

pub(crate) const SNAPSHOT_FORMAT: &str = "mlops.tracker-snapshot/1";

/// The snapshot's manifest blob: small things inline, the two big tables as Parquet blobs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotManifest {
    pub(crate) format: String,
    pub(crate) experiments: Vec<Experiment>,
    pub(crate) artifacts: Vec<(RunId, ArtifactInfo)>,
    /// `runs.parquet`: one row per run.
    pub(crate) runs: Digest,
    /// `metrics.parquet`: one row per metric value.
    pub(crate) metrics: Digest,
    /// Per segment log, the newest version the snapshot includes.
    pub(crate) covered: BTreeMap<RefName, Version>,
}

/// Run fields with no column of their own (params, tags, latest metrics, inputs), as JSON.
#[derive(Serialize, Deserialize)]
struct RunRest {
    data: RunData,
    inputs: RunInputs,
}

fn parquet_bytes(batch: &RecordBatch) -> Result<Bytes> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))
        .map_err(|e| Error::backend("parquet", e))?;
    w.write(batch).map_err(|e| Error::backend("parquet", e))?;
    Ok(Bytes::from(
        w.into_inner().map_err(|e| Error::backend("parquet", e))?,
    ))
}

fn read_batches(bytes: Bytes, what: &'static str) -> Result<Vec<RecordBatch>> {
    let corrupt = |e: parquet::errors::ParquetError| {
        Error::corrupt("tracker snapshot", what, "cannot decode parquet").with_source(e)
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(corrupt)?
        .build()
        .map_err(corrupt)?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::corrupt("tracker snapshot", what, "cannot decode parquet").with_source(e)
        })
}

/// Encodes the runs and metrics tables.
pub(crate) fn encode(tables: &Tables) -> Result<(Bytes, Bytes)> {
    let runs = &tables.runs;
    let s = |f: &dyn Fn(&Run) -> String| -> ArrayRef {
        Arc::new(StringArray::from(runs.iter().map(f).collect::<Vec<_>>()))
    };
    let rest: Vec<String> = runs
        .iter()
        .map(|r| {
            serde_json::to_string(&RunRest {
                data: r.data.clone(),
                inputs: r.inputs.clone(),
            })
            .map_err(|e| Error::backend("serde_json", e))
        })
        .collect::<Result<_>>()?;
    let run_schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("experiment_id", DataType::Utf8, false),
        Field::new("run_name", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("start_time", DataType::Int64, false),
        Field::new("end_time", DataType::Int64, true),
        Field::new("artifact_uri", DataType::Utf8, false),
        Field::new("lifecycle_stage", DataType::Utf8, false),
        Field::new("rest", DataType::Utf8, false),
    ]));
    let run_batch = RecordBatch::try_new(
        run_schema,
        vec![
            s(&|r| r.info.run_id.to_string()),
            s(&|r| r.info.experiment_id.to_string()),
            s(&|r| r.info.run_name.clone()),
            s(&|r| r.info.user_id.clone()),
            s(&|r| r.info.status.as_str().to_owned()),
            Arc::new(Int64Array::from(
                runs.iter().map(|r| r.info.start_time).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                runs.iter().map(|r| r.info.end_time).collect::<Vec<_>>(),
            )),
            s(&|r| r.info.artifact_uri.clone()),
            s(&|r| r.info.lifecycle_stage.as_str().to_owned()),
            Arc::new(StringArray::from(rest)),
        ],
    )
    .map_err(|e| Error::backend("arrow", e))?;
    let m = &tables.metrics;
    let metric_schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("step", DataType::Int64, false),
    ]));
    let metric_batch = RecordBatch::try_new(
        metric_schema,
        vec![
            Arc::new(StringArray::from(
                m.iter().map(|(r, _, _)| r.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                m.iter().map(|(_, k, _)| k.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                m.iter().map(|(_, _, p)| p.value).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                m.iter().map(|(_, _, p)| p.timestamp_ms).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                m.iter().map(|(_, _, p)| p.step).collect::<Vec<_>>(),
            )),
        ],
    )
    .map_err(|e| Error::backend("arrow", e))?;
    Ok((parquet_bytes(&run_batch)?, parquet_bytes(&metric_batch)?))
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| Error::corrupt("tracker snapshot", name, "missing column"))
}

/// Decodes the runs and metrics tables into `tables`.
pub(crate) fn decode(runs: Bytes, metrics: Bytes, tables: &mut Tables) -> Result<()> {
    for b in read_batches(runs, "runs")? {
        let text = |name: &str| -> Result<&StringArray> {
            col(&b, name)?.as_string_opt::<i32>().ok_or_else(|| {
                Error::corrupt("tracker snapshot", "runs", format!("{name} is not text"))
            })
        };
        let int = |name: &str| -> Result<&Int64Array> {
            col(&b, name)?
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| {
                    Error::corrupt("tracker snapshot", "runs", format!("{name} is not int64"))
                })
        };
        let (ids, exps, names, users, statuses) = (
            text("run_id")?,
            text("experiment_id")?,
            text("run_name")?,
            text("user_id")?,
            text("status")?,
        );
        let (starts, ends, uris, stages, rests) = (
            int("start_time")?,
            int("end_time")?,
            text("artifact_uri")?,
            text("lifecycle_stage")?,
            text("rest")?,
        );
        for i in 0..b.num_rows() {
            let rest: RunRest = serde_json::from_str(rests.value(i)).map_err(|e| {
                Error::corrupt("tracker snapshot", "runs", "unreadable run record").with_source(e)
            })?;
            tables.runs.push(Run {
                info: RunInfo {
                    run_id: ids.value(i).parse()?,
                    run_name: names.value(i).to_owned(),
                    experiment_id: exps.value(i).parse()?,
                    user_id: users.value(i).to_owned(),
                    status: statuses.value(i).parse()?,
                    start_time: starts.value(i),
                    end_time: (!ends.is_null(i)).then(|| ends.value(i)),
                    artifact_uri: uris.value(i).to_owned(),
                    lifecycle_stage: if stages.value(i) == "deleted" {
                        LifecycleStage::Deleted
                    } else {
                        LifecycleStage::Active
                    },
                },
                data: rest.data,
                inputs: rest.inputs,
            });
        }
    }
    for b in read_batches(metrics, "metrics")? {
        let bad =
            |n: &str| Error::corrupt("tracker snapshot", "metrics", format!("bad column {n}"));
        let ids = col(&b, "run_id")?
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("run_id"))?;
        let keys = col(&b, "key")?
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("key"))?;
        let values = col(&b, "value")?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| bad("value"))?;
        let ts = col(&b, "timestamp_ms")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad("timestamp_ms"))?;
        let steps = col(&b, "step")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad("step"))?;
        // Consecutive rows share run and key: parse each once.
        let mut last: Option<(RunId, mlops_core::MetricKey)> = None;
        for i in 0..b.num_rows() {
            let same = last
                .as_ref()
                .is_some_and(|(r, k)| r.as_str() == ids.value(i) && k.as_str() == keys.value(i));
            if !same {
                last = Some((ids.value(i).parse()?, keys.value(i).parse()?));
            }
            if let Some((r, k)) = &last {
                tables.metrics.push((
                    r.clone(),
                    k.clone(),
                    Point {
                        value: values.value(i),
                        timestamp_ms: ts.value(i),
                        step: steps.value(i),
                    },
                ));
            }
        }
    }
    Ok(())
}
