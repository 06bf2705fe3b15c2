//! Conversions between Arrow arrays / record batches and [`Tensor`]s.
//!
//! - One Arrow array ↔ one 1-D tensor: primitive numerics keep their type, `Boolean` ↔ `BOOL`,
//!   `Utf8`/`LargeUtf8`/`Binary`/`LargeBinary` → `BYTES` (and `BYTES` → `Binary`).
//! - A record batch of numeric columns ↔ one 2-D `[rows, columns]` tensor, row-major, cast to
//!   `FP32` or `FP64` — the shape models take.
//!
//! Tensors have no nulls: a null is [`Error::InvalidArgument`] naming the column and row.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BinaryArray, BooleanArray, PrimitiveArray, RecordBatch,
};
use arrow_schema::{DataType as ArrowType, Field, Schema};

use crate::error::{Error, Result};
use crate::tensor::{DataType, Tensor};

fn no_nulls(name: &str, array: &dyn Array) -> Result<()> {
    if array.null_count() > 0 {
        let row = (0..array.len()).find(|i| array.is_null(*i)).unwrap_or(0);
        return Err(Error::invalid(
            "tensor data",
            format!(
                "column {name} has a null at row {row}; tensors cannot hold nulls (impute first)"
            ),
        ));
    }
    Ok(())
}

fn primitive_bytes<T: ArrowPrimitiveType>(array: &dyn Array) -> Vec<u8> {
    // Arrow buffers are little-endian on every platform Arrow supports, like our tensors.
    array
        .as_primitive::<T>()
        .values()
        .inner()
        .as_slice()
        .to_vec()
}

/// The tensor datatype an Arrow type maps to, if any.
pub fn tensor_type_of(ty: &ArrowType) -> Option<DataType> {
    Some(match ty {
        ArrowType::Boolean => DataType::Bool,
        ArrowType::UInt8 => DataType::Uint8,
        ArrowType::UInt16 => DataType::Uint16,
        ArrowType::UInt32 => DataType::Uint32,
        ArrowType::UInt64 => DataType::Uint64,
        ArrowType::Int8 => DataType::Int8,
        ArrowType::Int16 => DataType::Int16,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::Int64 => DataType::Int64,
        ArrowType::Float16 => DataType::Fp16,
        ArrowType::Float32 => DataType::Fp32,
        ArrowType::Float64 => DataType::Fp64,
        ArrowType::Utf8
        | ArrowType::LargeUtf8
        | ArrowType::Utf8View
        | ArrowType::Binary
        | ArrowType::LargeBinary
        | ArrowType::BinaryView => DataType::Bytes,
        _ => return None,
    })
}

/// One 1-D tensor per name, from `batch`'s column of that name: the inputs of a model whose
/// signature names one input per column. A missing column is [`Error::InvalidArgument`]
/// naming it.
pub fn tensors_by_name<S: AsRef<str>>(batch: &RecordBatch, names: &[S]) -> Result<Vec<Tensor>> {
    names
        .iter()
        .map(|name| {
            let name = name.as_ref();
            let column = batch.column_by_name(name).ok_or_else(|| {
                Error::invalid(
                    "data",
                    format!("the model needs column {name:?}, which the data lacks"),
                )
            })?;
            tensor_from_array(name, column.as_ref())
        })
        .collect()
}

/// A 1-D tensor named `name` holding `array`'s values.
pub fn tensor_from_array(name: &str, array: &dyn Array) -> Result<Tensor> {
    no_nulls(name, array)?;
    let shape = vec![array.len()];
    let unsupported = || {
        Error::invalid(
            "arrow type",
            format!(
                "column {name} has type {}, which has no tensor datatype",
                array.data_type()
            ),
        )
    };
    let dtype = tensor_type_of(array.data_type()).ok_or_else(unsupported)?;
    let data = match array.data_type() {
        ArrowType::Boolean => array
            .as_boolean()
            .iter()
            .map(|v| u8::from(v.unwrap_or(false)))
            .collect(),
        ArrowType::UInt8 => primitive_bytes::<UInt8Type>(array),
        ArrowType::UInt16 => primitive_bytes::<UInt16Type>(array),
        ArrowType::UInt32 => primitive_bytes::<UInt32Type>(array),
        ArrowType::UInt64 => primitive_bytes::<UInt64Type>(array),
        ArrowType::Int8 => primitive_bytes::<Int8Type>(array),
        ArrowType::Int16 => primitive_bytes::<Int16Type>(array),
        ArrowType::Int32 => primitive_bytes::<Int32Type>(array),
        ArrowType::Int64 => primitive_bytes::<Int64Type>(array),
        ArrowType::Float16 => primitive_bytes::<Float16Type>(array),
        ArrowType::Float32 => primitive_bytes::<Float32Type>(array),
        ArrowType::Float64 => primitive_bytes::<Float64Type>(array),
        ArrowType::Utf8 => {
            let v: Vec<&str> = array.as_string::<i32>().iter().flatten().collect();
            return Tensor::from_byte_strings(name, shape, &v);
        }
        ArrowType::LargeUtf8 => {
            let v: Vec<&str> = array.as_string::<i64>().iter().flatten().collect();
            return Tensor::from_byte_strings(name, shape, &v);
        }
        ArrowType::Utf8View => {
            let v: Vec<&str> = array.as_string_view().iter().flatten().collect();
            return Tensor::from_byte_strings(name, shape, &v);
        }
        ArrowType::BinaryView => {
            let v: Vec<&[u8]> = array.as_binary_view().iter().flatten().collect();
            return Tensor::from_byte_strings(name, shape, &v);
        }
        ArrowType::Binary => {
            let v: Vec<&[u8]> = array.as_binary::<i32>().iter().flatten().collect();
            return Tensor::from_byte_strings(name, shape, &v);
        }
        ArrowType::LargeBinary => {
            let v: Vec<&[u8]> = array.as_binary::<i64>().iter().flatten().collect();
            return Tensor::from_byte_strings(name, shape, &v);
        }
        _ => return Err(unsupported()),
    };
    Tensor::new(name, dtype, shape, data)
}

fn primitive_array<T: ArrowPrimitiveType>(tensor: &Tensor) -> PrimitiveArray<T> {
    let values = arrow_buffer::ScalarBuffer::<T::Native>::from(arrow_buffer::Buffer::from(
        tensor.data().to_vec(),
    ));
    PrimitiveArray::<T>::new(values, None)
}

/// The Arrow array holding a 1-D tensor's values (`BYTES` becomes `Binary`).
pub fn array_from_tensor(tensor: &Tensor) -> Result<ArrayRef> {
    if tensor.shape().len() != 1 {
        return Err(Error::invalid(
            "tensor shape",
            format!(
                "{}: only 1-D tensors convert to one Arrow array, got shape {:?}",
                tensor.name(),
                tensor.shape()
            ),
        ));
    }
    Ok(match tensor.datatype() {
        DataType::Bool => Arc::new(BooleanArray::from(tensor.to_bool()?)),
        DataType::Uint8 => Arc::new(primitive_array::<UInt8Type>(tensor)) as ArrayRef,
        DataType::Uint16 => Arc::new(primitive_array::<UInt16Type>(tensor)),
        DataType::Uint32 => Arc::new(primitive_array::<UInt32Type>(tensor)),
        DataType::Uint64 => Arc::new(primitive_array::<UInt64Type>(tensor)),
        DataType::Int8 => Arc::new(primitive_array::<Int8Type>(tensor)),
        DataType::Int16 => Arc::new(primitive_array::<Int16Type>(tensor)),
        DataType::Int32 => Arc::new(primitive_array::<Int32Type>(tensor)),
        DataType::Int64 => Arc::new(primitive_array::<Int64Type>(tensor)),
        DataType::Fp16 => Arc::new(primitive_array::<Float16Type>(tensor)),
        DataType::Fp32 => Arc::new(primitive_array::<Float32Type>(tensor)),
        DataType::Fp64 => Arc::new(primitive_array::<Float64Type>(tensor)),
        DataType::Bf16 => {
            return Err(Error::not_supported(
                "tensor datatype",
                "BF16",
                format!(
                    "Arrow has no bfloat16 type; convert tensor {} to FP32 first",
                    tensor.name()
                ),
            ));
        }
        DataType::Bytes => Arc::new(BinaryArray::from_vec(tensor.to_byte_strings()?)),
    })
}

/// Reads any numeric or boolean column as f64 (for [`tensor_from_batch`]).
fn column_as_f64(name: &str, array: &dyn Array) -> Result<Vec<f64>> {
    no_nulls(name, array)?;
    let t = tensor_from_array(name, array)?;
    if t.datatype() == DataType::Bytes {
        return Err(Error::invalid(
            "arrow type",
            format!(
                "column {name} is {}; a numeric tensor needs numeric columns (one-hot encode strings first)",
                array.data_type()
            ),
        ));
    }
    t.to_f64_lossy()
}

/// A 2-D `[rows, columns]` tensor of `dtype` (`FP32` or `FP64`) from the numeric and boolean
/// columns of `batch`, in column order.
pub fn tensor_from_batch(name: &str, batch: &RecordBatch, dtype: DataType) -> Result<Tensor> {
    let rows = batch.num_rows();
    let cols = batch.num_columns();
    let mut values = vec![0f64; rows * cols];
    for (j, (field, column)) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .enumerate()
    {
        let col = column_as_f64(field.name(), column.as_ref())?;
        for (i, v) in col.into_iter().enumerate() {
            values[i * cols + j] = v;
        }
    }
    match dtype {
        DataType::Fp64 => Tensor::from_f64(name, vec![rows, cols], &values),
        DataType::Fp32 => {
            let v: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
            Tensor::from_f32(name, vec![rows, cols], &v)
        }
        other => Err(Error::invalid(
            "tensor datatype",
            format!("{name}: a batch converts to FP32 or FP64, not {other}"),
        )),
    }
}

/// A record batch with one column per tensor column, named `columns`, from a 2-D tensor.
pub fn batch_from_tensor(tensor: &Tensor, columns: &[&str]) -> Result<RecordBatch> {
    let [rows, cols] = tensor.shape() else {
        return Err(Error::invalid(
            "tensor shape",
            format!(
                "{}: expected a 2-D tensor, got shape {:?}",
                tensor.name(),
                tensor.shape()
            ),
        ));
    };
    let (rows, cols) = (*rows, *cols);
    if columns.len() != cols {
        return Err(Error::invalid(
            "column names",
            format!(
                "{}: {} names for {cols} columns",
                tensor.name(),
                columns.len()
            ),
        ));
    }
    let size = tensor.datatype().size().ok_or_else(|| {
        Error::invalid(
            "tensor datatype",
            format!("{}: BYTES tensors are not 2-D tables", tensor.name()),
        )
    })?;
    let data = tensor.data();
    let mut fields = Vec::with_capacity(cols);
    let mut arrays = Vec::with_capacity(cols);
    for (j, col_name) in columns.iter().enumerate() {
        let mut col = Vec::with_capacity(rows * size);
        for i in 0..rows {
            let at = (i * cols + j) * size;
            col.extend_from_slice(&data[at..at + size]);
        }
        let t = Tensor::new(*col_name, tensor.datatype(), vec![rows], col)?;
        let array = array_from_tensor(&t)?;
        fields.push(Field::new(*col_name, array.data_type().clone(), false));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Error::invalid("record batch", "the tensors do not form one").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float32Array, Float64Array, Int32Array, Int64Array, StringArray};

    #[test]
    fn numeric_arrays_round_trip() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![1, -2, 3]));
        let t = tensor_from_array("a", a.as_ref()).unwrap();
        assert_eq!(t.datatype(), DataType::Int32);
        assert_eq!(t.to_i32().unwrap(), vec![1, -2, 3]);
        let back = array_from_tensor(&t).unwrap();
        assert_eq!(back.as_ref(), a.as_ref());

        let f: ArrayRef = Arc::new(Float64Array::from(vec![0.5, f64::NAN]));
        let t = tensor_from_array("f", f.as_ref()).unwrap();
        assert_eq!(array_from_tensor(&t).unwrap().len(), 2);

        let b: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
        let t = tensor_from_array("b", b.as_ref()).unwrap();
        assert_eq!(t.datatype(), DataType::Bool);
        assert_eq!(array_from_tensor(&t).unwrap().as_ref(), b.as_ref());
    }

    #[test]
    fn strings_become_bytes() {
        let s: ArrayRef = Arc::new(StringArray::from(vec!["yes", "no"]));
        let t = tensor_from_array("s", s.as_ref()).unwrap();
        assert_eq!(t.datatype(), DataType::Bytes);
        assert_eq!(t.to_byte_strings().unwrap(), vec![&b"yes"[..], b"no"]);
        let back = array_from_tensor(&t).unwrap();
        assert_eq!(back.as_binary::<i32>().value(1), b"no");
    }

    #[test]
    fn string_and_binary_views_become_bytes() {
        // Polars exports its strings as views.
        let s: ArrayRef = Arc::new(arrow_array::StringViewArray::from(vec![
            "yes",
            "a string longer than twelve bytes",
        ]));
        let t = tensor_from_array("s", s.as_ref()).unwrap();
        assert_eq!(t.datatype(), DataType::Bytes);
        assert_eq!(
            t.to_byte_strings().unwrap(),
            vec![&b"yes"[..], &b"a string longer than twelve bytes"[..]]
        );
        let b: ArrayRef = Arc::new(arrow_array::BinaryViewArray::from(vec![&b"\x00\x01"[..]]));
        let t = tensor_from_array("b", b.as_ref()).unwrap();
        assert_eq!(t.to_byte_strings().unwrap(), vec![&b"\x00\x01"[..]]);
    }

    #[test]
    fn nulls_are_named() {
        let a: ArrayRef = Arc::new(Float32Array::from(vec![Some(1.0), None]));
        let err = tensor_from_array("age", a.as_ref()).unwrap_err();
        assert!(
            err.to_string().contains("column age has a null at row 1"),
            "{err}"
        );
    }

    #[test]
    fn batches_round_trip_through_2d_tensors() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", ArrowType::Float64, false),
            Field::new("n", ArrowType::Int64, false),
            Field::new("flag", ArrowType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![1.5, 2.5])),
                Arc::new(Int64Array::from(vec![10, 20])),
                Arc::new(BooleanArray::from(vec![true, false])),
            ],
        )
        .unwrap();
        let t = tensor_from_batch("input", &batch, DataType::Fp64).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.to_f64().unwrap(), vec![1.5, 10.0, 1.0, 2.5, 20.0, 0.0]);
        let back = batch_from_tensor(&t, &["x", "n", "flag"]).unwrap();
        assert_eq!(back.num_rows(), 2);
        let n = back.column(1).as_primitive::<Float64Type>();
        assert_eq!(n.values().to_vec(), vec![10.0, 20.0]);
        assert!(batch_from_tensor(&t, &["x"]).is_err());
        let t32 = tensor_from_batch("input", &batch, DataType::Fp32).unwrap();
        assert_eq!(t32.to_f32().unwrap()[3], 2.5);
        assert!(tensor_from_batch("input", &batch, DataType::Int8).is_err());
    }

    #[test]
    fn string_columns_are_rejected_for_numeric_tensors() {
        let schema = Arc::new(Schema::new(vec![Field::new("c", ArrowType::Utf8, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap();
        let err = tensor_from_batch("input", &batch, DataType::Fp32).unwrap_err();
        assert!(err.to_string().contains("column c"), "{err}");
    }
}
