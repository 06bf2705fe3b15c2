//! NumPy arrays and SDK tensors: an array (or anything `numpy.asarray` takes) becomes a tensor
//! in one pass over its elements, and a tensor's data moves into a new array without another
//! copy (the decoded vector becomes the array's memory). Strings travel as BYTES tensors and
//! come back as object arrays of `str`.

use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods, dtype,
};
use pyo3::prelude::*;

use mlops::{DataType, Tensor};

use crate::errors::{OrPy, type_error};

/// Element types that cross as little-endian bytes.
trait Le: Element + Copy {
    const DATATYPE: DataType;
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! le {
    ($($t:ty => $dt:ident),* $(,)?) => {$(
        impl Le for $t {
            const DATATYPE: DataType = DataType::$dt;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}

le!(f32 => Fp32, f64 => Fp64, i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => Uint8, u16 => Uint16, u32 => Uint32, u64 => Uint64);

impl Le for bool {
    const DATATYPE: DataType = DataType::Bool;
    const SIZE: usize = 1;
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn get(bytes: &[u8]) -> Self {
        bytes.first().is_some_and(|b| *b != 0)
    }
}

/// The tensor of a typed array: its elements in row-major order, whatever its strides.
fn typed<T: Le>(name: &str, array: &Bound<'_, PyUntypedArray>) -> PyResult<Tensor> {
    let array = array.cast::<PyArrayDyn<T>>()?;
    let readonly = array
        .try_readonly()
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("input {name:?}: {e}")))?;
    let shape = readonly.shape().to_vec();
    let mut data = Vec::with_capacity(readonly.len() * T::SIZE);
    match readonly.as_slice() {
        Ok(slice) => slice.iter().for_each(|v| v.put(&mut data)),
        Err(_) => readonly.as_array().iter().for_each(|v| v.put(&mut data)),
    }
    Tensor::new(name, T::DATATYPE, shape, data).or_py(array.py())
}

/// A tensor named `name` from `value`: a NumPy array of a numeric, bool or string dtype, or
/// anything `numpy.asarray` turns into one (lists, scalars, pandas and polars series).
pub(crate) fn tensor_from_py(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let py = value.py();
    let array = match value.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let numpy = py.import("numpy").map_err(|e| {
                pyo3::exceptions::PyImportError::new_err(format!(
                    "input {name:?} is not a NumPy array, and numpy (which converts it) is \
                     missing: {e}"
                ))
            })?;
            let converted = numpy.call_method1("asarray", (value,)).map_err(|_| {
                type_error(
                    &format!("input {name:?}"),
                    "an array-like of numbers, bools or strings",
                    value,
                )
            })?;
            converted
                .cast_into::<PyUntypedArray>()
                .map_err(|e| pyo3::exceptions::PyTypeError::new_err(e.to_string()))?
        }
    };
    let descr = array.dtype();
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if descr.is_equiv_to(&dtype::<$t>(py)) {
                return typed::<$t>(name, &array);
            }
        )*};
    }
    try_types!(f64, f32, i64, i32, i16, i8, u64, u32, u16, u8, bool);
    match descr.kind() {
        b'U' | b'S' | b'O' => strings(name, &array),
        _ => Err(crate::errors::to_py(
            py,
            &mlops::Error::invalid(
                "input",
                format!(
                    "{name:?} has dtype {}; inputs are float32/64, (u)int8–64, bool or strings",
                    descr.str().map(|s| s.to_string()).unwrap_or_default()
                ),
            ),
        )),
    }
}

/// A BYTES tensor from an array of str (UTF-8) or bytes elements.
fn strings(name: &str, array: &Bound<'_, PyUntypedArray>) -> PyResult<Tensor> {
    let py = array.py();
    let shape = array.shape().to_vec();
    let flat = array.call_method0("ravel")?.call_method0("tolist")?;
    let mut values: Vec<Vec<u8>> = Vec::with_capacity(array.len());
    for item in flat.try_iter()? {
        let item = item?;
        if let Ok(s) = item.extract::<String>() {
            values.push(s.into_bytes());
        } else if let Ok(b) = item.extract::<Vec<u8>>() {
            values.push(b);
        } else {
            return Err(type_error(
                &format!("an element of input {name:?}"),
                "a str or bytes",
                &item,
            ));
        }
    }
    Tensor::from_byte_strings(name, shape, &values).or_py(py)
}

fn decoded<T: Le>(tensor: &Tensor) -> Vec<T> {
    tensor.data().chunks_exact(T::SIZE).map(T::get).collect()
}

fn shaped<'py, T: Element>(
    py: Python<'py>,
    values: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, values)
        .reshape(shape.to_vec())?
        .into_any())
}

/// A tensor as a NumPy array of its shape (BYTES as an object array of `str`, or of `bytes`
/// where an element is not UTF-8).
pub(crate) fn tensor_to_py<'py>(py: Python<'py>, tensor: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let shape = tensor.shape();
    match tensor.datatype() {
        DataType::Fp32 => shaped(py, decoded::<f32>(tensor), shape),
        DataType::Fp64 => shaped(py, decoded::<f64>(tensor), shape),
        DataType::Int8 => shaped(py, decoded::<i8>(tensor), shape),
        DataType::Int16 => shaped(py, decoded::<i16>(tensor), shape),
        DataType::Int32 => shaped(py, decoded::<i32>(tensor), shape),
        DataType::Int64 => shaped(py, decoded::<i64>(tensor), shape),
        DataType::Uint8 => shaped(py, decoded::<u8>(tensor), shape),
        DataType::Uint16 => shaped(py, decoded::<u16>(tensor), shape),
        DataType::Uint32 => shaped(py, decoded::<u32>(tensor), shape),
        DataType::Uint64 => shaped(py, decoded::<u64>(tensor), shape),
        DataType::Bool => shaped(py, decoded::<bool>(tensor), shape),
        DataType::Bytes => {
            let mut objects: Vec<Py<PyAny>> = Vec::with_capacity(tensor.len());
            for b in tensor.to_byte_strings().or_py(py)? {
                objects.push(match std::str::from_utf8(b) {
                    Ok(s) => pyo3::types::PyString::new(py, s).into_any().unbind(),
                    Err(_) => pyo3::types::PyBytes::new(py, b).into_any().unbind(),
                });
            }
            shaped(py, objects, shape)
        }
        // FP16 and BF16 widen to float32 (NumPy has no bfloat16).
        DataType::Fp16 | DataType::Bf16 => {
            let values: Vec<f32> = tensor
                .to_f64_lossy()
                .or_py(py)?
                .into_iter()
                .map(|v| v as f32)
                .collect();
            shaped(py, values, shape)
        }
    }
}

/// Outputs as `{name: array}`.
pub(crate) fn tensors_to_dict<'py>(
    py: Python<'py>,
    tensors: &[Tensor],
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let dict = pyo3::types::PyDict::new(py);
    for t in tensors {
        dict.set_item(t.name(), tensor_to_py(py, t)?)?;
    }
    Ok(dict)
}

/// `{name: array-like}` as tensors, in the dict's order.
pub(crate) fn tensors_from_dict(
    argument: &str,
    inputs: &Bound<'_, PyAny>,
) -> PyResult<Vec<Tensor>> {
    let dict = inputs
        .cast::<pyo3::types::PyDict>()
        .map_err(|_| type_error(argument, "a dict of input name to array", inputs))?;
    let mut out = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let name: String = k
            .extract()
            .map_err(|_| type_error(&format!("a key of {argument}"), "a str", &k))?;
        out.push(tensor_from_py(&name, &v)?);
    }
    Ok(out)
}
