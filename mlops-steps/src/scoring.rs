//! Scoring a model on labelled rows, shared by `monitor` (accuracy on production feedback) and
//! `validate` (champion and challenger on the same holdout).

use arrow::array::RecordBatch;
use mlops_core::{Error, Result};

/// Share of rows whose predicted label equals the target column.
pub(crate) fn accuracy_of(
    model: &mlops_train::CandleModel,
    rows: &[RecordBatch],
    target: &str,
) -> Result<f64> {
    use mlops_core::Model;
    let batch = arrow::compute::concat_batches(
        &rows
            .first()
            .ok_or_else(|| Error::invalid("data", "no rows"))?
            .schema(),
        rows,
    )
    .map_err(|e| Error::backend("arrow", e))?;
    let names: Vec<String> = model
        .card()
        .preprocessing
        .input_specs()
        .into_iter()
        .map(|spec| spec.name.unwrap_or_default())
        .collect();
    let inputs = mlops_core::arrow::tensors_by_name(&batch, &names)?;
    let out = model.predict(&inputs)?;
    let labels = arrow::compute::cast(
        batch
            .column_by_name(target)
            .ok_or_else(|| Error::invalid("data", format!("no column {target:?}")))?,
        &arrow::datatypes::DataType::Utf8,
    )
    .map_err(|e| Error::backend("arrow", e))?;
    let truth: Vec<String> = arrow::array::AsArray::as_string::<i32>(&labels)
        .iter()
        .map(|v| v.unwrap_or_default().to_owned())
        .collect();
    let predicted: Vec<String> = match out[0].datatype() {
        mlops_core::DataType::Bool => out[0]
            .to_bool()?
            .into_iter()
            .map(|b| b.to_string())
            .collect(),
        mlops_core::DataType::Int64 => out[0]
            .to_i64()?
            .into_iter()
            .map(|i| i.to_string())
            .collect(),
        _ => out[0]
            .to_byte_strings()?
            .into_iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect(),
    };
    let hits = truth.iter().zip(&predicted).filter(|(a, b)| a == b).count();
    Ok(hits as f64 / truth.len().max(1) as f64)
}
