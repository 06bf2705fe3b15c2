//! Tensors at API boundaries, with exactly the Open Inference Protocol's datatypes.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A tensor element type: the Open Inference Protocol's datatypes plus `BF16` (which the protocol
/// mentions and KServe carries as raw 2-byte data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    /// One byte, 0 or 1.
    Bool,
    /// Unsigned 8-bit.
    Uint8,
    /// Unsigned 16-bit.
    Uint16,
    /// Unsigned 32-bit.
    Uint32,
    /// Unsigned 64-bit.
    Uint64,
    /// Signed 8-bit.
    Int8,
    /// Signed 16-bit.
    Int16,
    /// Signed 32-bit.
    Int32,
    /// Signed 64-bit.
    Int64,
    /// IEEE half precision.
    Fp16,
    /// IEEE single precision.
    Fp32,
    /// IEEE double precision.
    Fp64,
    /// bfloat16 (extension).
    Bf16,
    /// Variable-length byte strings; each element is a 4-byte little-endian length and the bytes.
    Bytes,
}

impl DataType {
    /// Every datatype, in the protocol's table order (BF16 last but one, BYTES last).
    pub const ALL: [DataType; 14] = [
        Self::Bool,
        Self::Uint8,
        Self::Uint16,
        Self::Uint32,
        Self::Uint64,
        Self::Int8,
        Self::Int16,
        Self::Int32,
        Self::Int64,
        Self::Fp16,
        Self::Fp32,
        Self::Fp64,
        Self::Bf16,
        Self::Bytes,
    ];

    /// The protocol's name: `BOOL`, `UINT8`, ..., `FP32`, `BYTES`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bool => "BOOL",
            Self::Uint8 => "UINT8",
            Self::Uint16 => "UINT16",
            Self::Uint32 => "UINT32",
            Self::Uint64 => "UINT64",
            Self::Int8 => "INT8",
            Self::Int16 => "INT16",
            Self::Int32 => "INT32",
            Self::Int64 => "INT64",
            Self::Fp16 => "FP16",
            Self::Fp32 => "FP32",
            Self::Fp64 => "FP64",
            Self::Bf16 => "BF16",
            Self::Bytes => "BYTES",
        }
    }

    /// Bytes per element; `None` for variable-length `BYTES`.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            Self::Bool | Self::Uint8 | Self::Int8 => 1,
            Self::Uint16 | Self::Int16 | Self::Fp16 | Self::Bf16 => 2,
            Self::Uint32 | Self::Int32 | Self::Fp32 => 4,
            Self::Uint64 | Self::Int64 | Self::Fp64 => 8,
            Self::Bytes => return None,
        })
    }

    /// NumPy's name for it (`float32`, `int64`, `bool`, `object` for BYTES), as MLflow's tensor
    /// signatures write it.
    pub fn numpy_name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Uint8 => "uint8",
            Self::Uint16 => "uint16",
            Self::Uint32 => "uint32",
            Self::Uint64 => "uint64",
            Self::Int8 => "int8",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Fp16 => "float16",
            Self::Fp32 => "float32",
            Self::Fp64 => "float64",
            Self::Bf16 => "bfloat16",
            Self::Bytes => "object",
        }
    }

    /// From NumPy's name (`float32`, `int64`, `bool`, `object`/`str`/`bytes` → BYTES).
    pub fn from_numpy_name(s: &str) -> Result<Self> {
        Ok(match s {
            "bool" => Self::Bool,
            "uint8" => Self::Uint8,
            "uint16" => Self::Uint16,
            "uint32" => Self::Uint32,
            "uint64" => Self::Uint64,
            "int8" => Self::Int8,
            "int16" => Self::Int16,
            "int32" => Self::Int32,
            "int64" => Self::Int64,
            "float16" => Self::Fp16,
            "float32" => Self::Fp32,
            "float64" => Self::Fp64,
            "bfloat16" => Self::Bf16,
            "object" | "str" | "bytes" => Self::Bytes,
            other => {
                return Err(Error::invalid(
                    "tensor dtype",
                    format!("unknown numpy dtype {other:?}"),
                ));
            }
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "datatype",
                    format!("{s:?} is not an Open Inference Protocol datatype (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BF16, BYTES)"),
                )
            })
    }
}

/// A named tensor: datatype, shape and contiguous row-major little-endian data.
///
/// The layout is the Open Inference Protocol's binary tensor layout, so a tensor moves between
/// the HTTP binary extension, safetensors and candle without re-encoding. `BYTES` elements are
/// each a 4-byte little-endian length followed by that many bytes.
///
/// Construction validates that the data holds exactly `product(shape)` elements.
#[derive(Clone, PartialEq, Eq)]
pub struct Tensor {
    name: String,
    datatype: DataType,
    shape: Vec<usize>,
    data: Bytes,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("name", &self.name)
            .field("datatype", &self.datatype)
            .field("shape", &self.shape)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Element count of `shape`, or an error on overflow.
pub fn element_count(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| Error::invalid("tensor shape", format!("{shape:?} overflows")))
    })
}

impl Tensor {
    /// A tensor from raw little-endian bytes, validated against `shape` and `datatype`.
    pub fn new(
        name: impl Into<String>,
        datatype: DataType,
        shape: Vec<usize>,
        data: impl Into<Bytes>,
    ) -> Result<Self> {
        let name = name.into();
        let data = data.into();
        let count = element_count(&shape)?;
        match datatype.size() {
            Some(size) => {
                let want = count.checked_mul(size).ok_or_else(|| {
                    Error::invalid("tensor shape", format!("{name}: {shape:?} overflows"))
                })?;
                if data.len() != want {
                    return Err(Error::invalid(
                        "tensor data",
                        format!(
                            "{name}: shape {shape:?} of {datatype} needs {want} bytes ({count} elements), got {}",
                            data.len()
                        ),
                    ));
                }
                if let Some(pos) = data
                    .iter()
                    .position(|b| *b > 1)
                    .filter(|_| datatype == DataType::Bool)
                {
                    return Err(Error::invalid(
                        "tensor data",
                        format!("{name}: BOOL element {pos} is {}, not 0 or 1", data[pos]),
                    ));
                }
            }
            None => {
                let found = count_bytes_elements(&name, &data)?;
                if found != count {
                    return Err(Error::invalid(
                        "tensor data",
                        format!(
                            "{name}: shape {shape:?} needs {count} BYTES elements, got {found}"
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            name,
            datatype,
            shape,
            data,
        })
    }

    /// An FP32 tensor from values.
    pub fn from_f32(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Result<Self> {
        Self::new(
            name,
            DataType::Fp32,
            shape,
            le_bytes(values, |v| v.to_le_bytes()),
        )
    }

    /// An FP64 tensor from values.
    pub fn from_f64(name: impl Into<String>, shape: Vec<usize>, values: &[f64]) -> Result<Self> {
        Self::new(
            name,
            DataType::Fp64,
            shape,
            le_bytes(values, |v| v.to_le_bytes()),
        )
    }

    /// An INT64 tensor from values.
    pub fn from_i64(name: impl Into<String>, shape: Vec<usize>, values: &[i64]) -> Result<Self> {
        Self::new(
            name,
            DataType::Int64,
            shape,
            le_bytes(values, |v| v.to_le_bytes()),
        )
    }

    /// An INT32 tensor from values.
    pub fn from_i32(name: impl Into<String>, shape: Vec<usize>, values: &[i32]) -> Result<Self> {
        Self::new(
            name,
            DataType::Int32,
            shape,
            le_bytes(values, |v| v.to_le_bytes()),
        )
    }

    /// A BOOL tensor from values.
    pub fn from_bool(name: impl Into<String>, shape: Vec<usize>, values: &[bool]) -> Result<Self> {
        let data: Vec<u8> = values.iter().map(|b| u8::from(*b)).collect();
        Self::new(name, DataType::Bool, shape, data)
    }

    /// A BYTES tensor from byte strings.
    pub fn from_byte_strings<B: AsRef<[u8]>>(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &[B],
    ) -> Result<Self> {
        let name = name.into();
        let mut data = Vec::new();
        for v in values {
            let v = v.as_ref();
            let len = u32::try_from(v.len()).map_err(|_| {
                Error::invalid(
                    "tensor data",
                    format!("{name}: a BYTES element exceeds 4 GiB"),
                )
            })?;
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(v);
        }
        Self::new(name, DataType::Bytes, shape, data)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same tensor under another name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Its datatype.
    pub fn datatype(&self) -> DataType {
        self.datatype
    }

    /// Its shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw little-endian bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Values as f32; FP32 only.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        self.expect(DataType::Fp32)?;
        Ok(decode_le(&self.data, f32::from_le_bytes))
    }

    /// Values as f64; FP64 only.
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        self.expect(DataType::Fp64)?;
        Ok(decode_le(&self.data, f64::from_le_bytes))
    }

    /// Values as i64; INT64 only.
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        self.expect(DataType::Int64)?;
        Ok(decode_le(&self.data, i64::from_le_bytes))
    }

    /// Values as i32; INT32 only.
    pub fn to_i32(&self) -> Result<Vec<i32>> {
        self.expect(DataType::Int32)?;
        Ok(decode_le(&self.data, i32::from_le_bytes))
    }

    /// Values as bool; BOOL only.
    pub fn to_bool(&self) -> Result<Vec<bool>> {
        self.expect(DataType::Bool)?;
        Ok(self.data.iter().map(|b| *b != 0).collect())
    }

    /// Any numeric tensor (not BYTES) widened to f64; FP16/BF16 are decoded exactly.
    pub fn to_f64_lossy(&self) -> Result<Vec<f64>> {
        let d = &self.data;
        Ok(match self.datatype {
            DataType::Bool | DataType::Uint8 => d.iter().map(|b| f64::from(*b)).collect(),
            DataType::Int8 => d.iter().map(|b| f64::from(*b as i8)).collect(),
            DataType::Uint16 => decode_le(d, u16::from_le_bytes)
                .into_iter()
                .map(f64::from)
                .collect(),
            DataType::Int16 => decode_le(d, i16::from_le_bytes)
                .into_iter()
                .map(f64::from)
                .collect(),
            DataType::Uint32 => decode_le(d, u32::from_le_bytes)
                .into_iter()
                .map(f64::from)
                .collect(),
            DataType::Int32 => decode_le(d, i32::from_le_bytes)
                .into_iter()
                .map(f64::from)
                .collect(),
            DataType::Uint64 => decode_le(d, u64::from_le_bytes)
                .into_iter()
                .map(|v| v as f64)
                .collect(),
            DataType::Int64 => decode_le(d, i64::from_le_bytes)
                .into_iter()
                .map(|v| v as f64)
                .collect(),
            DataType::Fp16 => decode_le(d, u16::from_le_bytes)
                .into_iter()
                .map(|b| half::f16::from_bits(b).to_f64())
                .collect(),
            DataType::Bf16 => decode_le(d, u16::from_le_bytes)
                .into_iter()
                .map(|b| half::bf16::from_bits(b).to_f64())
                .collect(),
            DataType::Fp32 => decode_le(d, f32::from_le_bytes)
                .into_iter()
                .map(f64::from)
                .collect(),
            DataType::Fp64 => decode_le(d, f64::from_le_bytes),
            DataType::Bytes => {
                return Err(Error::invalid(
                    "tensor datatype",
                    format!("{}: BYTES cannot be read as numbers", self.name),
                ));
            }
        })
    }

    /// The elements of a BYTES tensor.
    pub fn to_byte_strings(&self) -> Result<Vec<&[u8]>> {
        self.expect(DataType::Bytes)?;
        let mut out = Vec::with_capacity(self.len());
        let mut rest = &self.data[..];
        while !rest.is_empty() {
            // Validated at construction; the checks keep this panic-free regardless.
            let (len, tail) = split_len_prefix(&self.name, rest)?;
            out.push(&tail[..len]);
            rest = &tail[len..];
        }
        Ok(out)
    }

    fn expect(&self, want: DataType) -> Result<()> {
        if self.datatype == want {
            Ok(())
        } else {
            Err(Error::invalid(
                "tensor datatype",
                format!("{}: expected {want}, got {}", self.name, self.datatype),
            ))
        }
    }
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * N);
    for v in values {
        out.extend_from_slice(&f(*v));
    }
    out
}

fn decode_le<T, const N: usize>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

fn split_len_prefix<'a>(name: &str, rest: &'a [u8]) -> Result<(usize, &'a [u8])> {
    let bad = || Error::invalid("tensor data", format!("{name}: truncated BYTES element"));
    let (prefix, tail) = rest.split_at_checked(4).ok_or_else(bad)?;
    let mut len = [0u8; 4];
    len.copy_from_slice(prefix);
    let len = u32::from_le_bytes(len) as usize;
    if tail.len() < len {
        return Err(bad());
    }
    Ok((len, tail))
}

fn count_bytes_elements(name: &str, mut data: &[u8]) -> Result<usize> {
    let mut n = 0;
    while !data.is_empty() {
        let (len, tail) = split_len_prefix(name, data)?;
        data = &tail[len..];
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatype_names_are_the_protocols() {
        for d in DataType::ALL {
            assert_eq!(d.as_str().parse::<DataType>().unwrap(), d);
            assert_eq!(DataType::from_numpy_name(d.numpy_name()).unwrap(), d);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
        assert!("FLOAT".parse::<DataType>().is_err());
        assert!("fp32".parse::<DataType>().is_err());
    }

    #[test]
    fn construction_checks_element_count() {
        let t = Tensor::from_f32("x", vec![2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
        assert_eq!(t.len(), 6);
        assert_eq!(t.to_f32().unwrap()[5], 6.0);
        let err = Tensor::from_f32("x", vec![2, 2], &[1., 2., 3.]).unwrap_err();
        assert!(err.to_string().contains("needs 16 bytes"), "{err}");
        assert!(Tensor::new("x", DataType::Fp64, vec![usize::MAX, 2], vec![]).is_err());
        assert!(Tensor::new("b", DataType::Bool, vec![2], vec![0u8, 2]).is_err());
        assert!(t.to_f64().is_err());
    }

    #[test]
    fn bytes_tensors_are_length_prefixed() {
        let t = Tensor::from_byte_strings("s", vec![3], &["a", "", "xyz"]).unwrap();
        assert_eq!(t.data().len(), 4 * 3 + 4);
        assert_eq!(t.to_byte_strings().unwrap(), vec![&b"a"[..], b"", b"xyz"]);
        // Shape says 2, data holds 3.
        assert!(Tensor::new("s", DataType::Bytes, vec![2], t.data().clone()).is_err());
        // Truncated element.
        assert!(Tensor::new("s", DataType::Bytes, vec![1], vec![5u8, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn half_precision_widens_exactly() {
        let bits = half::f16::from_f32(1.5).to_bits().to_le_bytes();
        let t = Tensor::new("h", DataType::Fp16, vec![1], bits.to_vec()).unwrap();
        assert_eq!(t.to_f64_lossy().unwrap(), vec![1.5]);
        let bits = half::bf16::from_f32(-2.0).to_bits().to_le_bytes();
        let t = Tensor::new("h", DataType::Bf16, vec![1], bits.to_vec()).unwrap();
        assert_eq!(t.to_f64_lossy().unwrap(), vec![-2.0]);
    }
}
