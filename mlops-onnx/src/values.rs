//! Tensors' elements as typed vectors, the form both runtimes take and give.

use mlops_core::{DataType, Error, Result, Tensor};

/// The elements of a tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Strings(Vec<String>),
}

macro_rules! le_words {
    ($data:expr, $ty:ty) => {{
        const N: usize = std::mem::size_of::<$ty>();
        $data
            .chunks_exact(N)
            .map(|c| {
                let mut w = [0u8; N];
                w.copy_from_slice(c);
                <$ty>::from_le_bytes(w)
            })
            .collect()
    }};
}

macro_rules! to_le {
    ($values:expr, $ty:ty) => {{
        let mut out = Vec::with_capacity($values.len() * std::mem::size_of::<$ty>());
        for v in $values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }};
}

impl Values {
    /// The elements of an input tensor. FP16 and BF16 are refused (no ONNX model we load takes
    /// them: the loader refuses such graphs), and BYTES elements must be UTF-8 (ONNX strings).
    pub(crate) fn of(t: &Tensor) -> Result<Self> {
        let data = t.data();
        Ok(match t.datatype() {
            DataType::Bool => Self::Bool(data.iter().map(|b| *b != 0).collect()),
            DataType::Uint8 => Self::U8(data.to_vec()),
            DataType::Int8 => Self::I8(le_words!(data, i8)),
            DataType::Uint16 => Self::U16(le_words!(data, u16)),
            DataType::Int16 => Self::I16(le_words!(data, i16)),
            DataType::Uint32 => Self::U32(le_words!(data, u32)),
            DataType::Int32 => Self::I32(le_words!(data, i32)),
            DataType::Uint64 => Self::U64(le_words!(data, u64)),
            DataType::Int64 => Self::I64(le_words!(data, i64)),
            DataType::Fp32 => Self::F32(le_words!(data, f32)),
            DataType::Fp64 => Self::F64(le_words!(data, f64)),
            DataType::Bytes => Self::Strings(
                t.to_byte_strings()?
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| {
                        std::str::from_utf8(b).map(str::to_owned).map_err(|_| {
                            Error::invalid(
                                "input",
                                format!(
                                    "input {:?} element {i} is not UTF-8 text (ONNX strings are)",
                                    t.name()
                                ),
                            )
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            other @ (DataType::Fp16 | DataType::Bf16) => {
                return Err(Error::invalid(
                    "input",
                    format!("input {:?}: {other} is not served by onnx models", t.name()),
                ));
            }
        })
    }

    /// Our datatype of these elements.
    pub(crate) fn datatype(&self) -> DataType {
        match self {
            Self::Bool(_) => DataType::Bool,
            Self::U8(_) => DataType::Uint8,
            Self::I8(_) => DataType::Int8,
            Self::U16(_) => DataType::Uint16,
            Self::I16(_) => DataType::Int16,
            Self::U32(_) => DataType::Uint32,
            Self::I32(_) => DataType::Int32,
            Self::U64(_) => DataType::Uint64,
            Self::I64(_) => DataType::Int64,
            Self::F32(_) => DataType::Fp32,
            Self::F64(_) => DataType::Fp64,
            Self::Strings(_) => DataType::Bytes,
        }
    }

    /// A tensor of these elements.
    pub(crate) fn into_tensor(self, name: String, shape: Vec<usize>) -> Result<Tensor> {
        let datatype = self.datatype();
        let data = match self {
            Self::Bool(v) => v.into_iter().map(u8::from).collect(),
            Self::U8(v) => v,
            Self::I8(v) => to_le!(v, i8),
            Self::U16(v) => to_le!(v, u16),
            Self::I16(v) => to_le!(v, i16),
            Self::U32(v) => to_le!(v, u32),
            Self::I32(v) => to_le!(v, i32),
            Self::U64(v) => to_le!(v, u64),
            Self::I64(v) => to_le!(v, i64),
            Self::F32(v) => to_le!(v, f32),
            Self::F64(v) => to_le!(v, f64),
            Self::Strings(v) => return Tensor::from_byte_strings(name, shape, &v),
        };
        Tensor::new(name, datatype, shape, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips() {
        let cases = [
            Values::Bool(vec![true, false]),
            Values::U8(vec![0, 255]),
            Values::I8(vec![-128, 127]),
            Values::U16(vec![0, 65535]),
            Values::I16(vec![-3, 3]),
            Values::U32(vec![7, u32::MAX]),
            Values::I32(vec![i32::MIN, 5]),
            Values::U64(vec![1, u64::MAX]),
            Values::I64(vec![i64::MIN, -1]),
            Values::F32(vec![0.5, -2.25]),
            Values::F64(vec![1e300, -0.0]),
            Values::Strings(vec!["a".into(), "ünï".into()]),
        ];
        for values in cases {
            let t = values.clone().into_tensor("x".into(), vec![2]).unwrap();
            assert_eq!(t.datatype(), values.datatype());
            assert_eq!(Values::of(&t).unwrap(), values);
        }
    }

    #[test]
    fn non_utf8_strings_are_refused_naming_the_element() {
        let t =
            Tensor::from_byte_strings("s", vec![2], &[b"ok".as_slice(), &[0xff, 0xfe]]).unwrap();
        let e = Values::of(&t).unwrap_err();
        assert!(e.is_invalid_argument(), "{e}");
        assert!(e.to_string().contains("element 1"), "{e}");
    }
}
